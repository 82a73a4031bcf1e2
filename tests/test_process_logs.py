"""What the clock and the worker write to their logs: one line per decision, per edition
started and finished, and no APScheduler chatter."""

from __future__ import annotations

from conftest import SEEDS, Captured, Cli
from worker_process import digest_process, received, wait_for

READERS = ["ada@example.com", "bob@example.com"]


def test_process_logs_clock_decisions_and_worker_editions_in_one_line_each(
    ready: Cli, captured: Captured
) -> None:
    ready("stories", "import", str(SEEDS / "stories"))
    for email in READERS:
        ready("subscribers", "add", email)
    with digest_process(ready, "clock", "schedule", DIGEST_SCHEDULE="* * * * *") as clock:
        assert wait_for(lambda: "waits for a worker" in clock.log or not clock.running())
        assert clock.stop() == 0, clock.log
    clock_log = clock.log
    with digest_process(ready, "worker", "worker", "--interval", "0.2") as worker:
        assert wait_for(lambda: "edition 1: finished" in worker.log or not worker.running())
        assert worker.stop() == 0, worker.log
    worker_log = worker.log
    assert "clock started" in clock_log and "built edition 1" in clock_log
    assert "apscheduler" not in clock_log, clock_log
    assert "edition 1: sending" in worker_log
    finished = [line for line in worker_log.splitlines() if "edition 1: finished" in line]
    assert len(finished) == 1 and "2 sent, 0 failed, 0 unknown" in finished[0], worker_log
    assert received(captured) == {email: 1 for email in READERS}
