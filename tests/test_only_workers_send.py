"""Only workers send: the web app and the clock open an edition and leave it to a worker.

Real processes: `digest serve` (uvicorn on 127.0.0.1), `digest schedule`,
`digest worker`, against a real SMTP server and database.
"""

from __future__ import annotations

import time

import httpx
import pytest
from conftest import REFERENCE_STORY, SEEDS, Captured, Cli
from web_operator import CSRF_RE
from worker_process import Process, digest_process, received, wait_for, workers_alive

from digest.processes.sink import free_port

STORY = {"headline": "A second story", "summary": "For a second edition.", "bullets": ["one"]}
READERS = ["ada@example.com", "bob@example.com", "cy@example.com"]


def _served(server: Process, port: int) -> httpx.Client:
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=2).text == "ok"
        except httpx.HTTPError:
            return not server.running()

    assert wait_for(up) and server.running(), server.log
    return httpx.Client(base_url=base, timeout=10, follow_redirects=True)


def _csrf(client: httpx.Client, page: str) -> str:
    found = CSRF_RE.search(client.get(page).text)
    assert found, page
    return found.group(1)


def _quiet(captured: Captured, seconds: float = 1.5) -> bool:
    """Nothing reaches the SMTP server for a while (a background send would within ms)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if captured.envelopes:
            return False
        time.sleep(0.05)
    return True


def test_serve_without_a_worker_leaves_web_and_api_sends_waiting_until_a_worker_runs(
    ready: Cli, captured: Captured
) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    for email in READERS:
        ready("subscribers", "add", email)
    port = free_port()
    with (
        digest_process(ready, "web", "serve", "--port", str(port)) as server,
        _served(server, port) as web,
    ):
        # Edition 1 from the operator page, edition 2 from the API.
        built = web.post("/editions", data={"csrf": _csrf(web, "/login")})
        sent = web.post("/editions/1/send", data={"csrf": _csrf(web, "/editions/1")})
        web.post("/api/stories", json=STORY)
        assert web.post("/api/editions").status_code == 201
        api_sent = web.post("/api/editions/2/send", json={})
        assert _quiet(captured), "the web app sent mail itself"
        page = web.get("/editions/1").text
        status = web.get("/api/editions/2").json()
        with digest_process(ready, "worker", "worker", "--interval", "0.2") as worker:
            # The last outcome is written just after its message arrives: wait for it.
            assert wait_for(lambda: web.get("/api/editions/2").json()["status"] == "finished")
            after = web.get("/api/editions/2").json()
            assert worker.stop() == 0, worker.log
        assert server.stop() == 0, server.log
    assert built.status_code == 200 and sent.status_code == 200  # redirects followed
    assert api_sent.status_code == 202 and api_sent.json()["waiting_for_worker"]
    assert "Waiting for a worker" in page and "running" in page
    assert status["status"] == "running" and status["waiting_for_worker"]
    assert "waiting for a worker" in status["waiting"]
    assert after["status"] == "finished" and not after["waiting_for_worker"]
    assert received(captured) == {email: 2 for email in READERS}
    assert workers_alive(ready) == 0


def test_serve_with_worker_sends_by_itself_and_stops_on_sigterm(
    ready: Cli, captured: Captured
) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    for email in READERS:
        ready("subscribers", "add", email)
    port = free_port()
    with digest_process(ready, "web", "serve", "--worker", "--port", str(port)) as server:
        with _served(server, port) as web:
            assert workers_alive(ready) == 1
            web.post("/api/editions")
            assert web.post("/api/editions/1/send", json={}).status_code == 202
            assert wait_for(lambda: web.get("/api/editions/1").json()["status"] == "finished")
        assert server.stop() == 0, server.log
        log = server.log
    assert received(captured) == {email: 1 for email in READERS}
    assert "Traceback" not in log
    assert workers_alive(ready) == 0


def test_schedule_opens_the_slot_and_a_worker_sends_it(ready: Cli, captured: Captured) -> None:
    ready("stories", "import", str(SEEDS / "stories"))
    for email in READERS:
        ready("subscribers", "add", email)
    with digest_process(ready, "clock", "schedule", DIGEST_SCHEDULE="* * * * *") as clock:
        assert wait_for(lambda: "waits for a worker" in clock.log or not clock.running())
        assert clock.running(), clock.log
        assert _quiet(captured), "the clock sent mail itself"
        assert "waiting for a worker" in ready("status").output
        assert clock.stop() == 0, clock.log
    out = ready("worker", "--once").output
    assert "sent 3, failed 0" in out
    assert received(captured) == {email: 1 for email in READERS}
    assert "finished" in ready("status", "1").output


def test_status_says_waiting_for_a_worker_only_while_none_is_alive(
    ready: Cli, captured: Captured
) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    ready("subscribers", "add", "reader@example.com")
    ready("edition", "build")
    from digest.core.db import make_engine, session_factory
    from digest.processes.handoff import open_for_workers

    settings = ready.settings()
    engine = make_engine(settings.effective_database_url)
    try:
        assert open_for_workers(settings, session_factory(engine), "1").pending == 1
    finally:
        engine.dispose()
    before = ready("status", "1").output
    # A worker that cannot send (nothing listens on its SMTP port) but is alive.
    down = {"DIGEST_SMTP_URL": f"smtp://127.0.0.1:{free_port()}", "DIGEST_MAX_ATTEMPTS": "1"}
    with digest_process(ready, "worker", "worker", "--interval", "0.2", **down) as worker:
        assert wait_for(lambda: workers_alive(ready) == 1 or not worker.running())
        during = ready("status", "1").output
        during_json = ready("status", "1", "--json").output
        assert worker.stop() == 0, worker.log
    after = ready("status", "1").output
    assert "waiting: waiting for a worker" in before
    assert "waiting for a worker" not in during and '"waiting_for_worker": false' in during_json
    assert "waiting: waiting for a worker" in after  # a clean exit removes the heartbeat
    assert captured.envelopes == []


def test_queue_worker_leaves_a_heartbeat_and_takes_what_the_web_app_deferred(
    ready: Cli, captured: Captured, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("the queue needs PostgreSQL")
    ready("stories", "import", str(REFERENCE_STORY))
    for email in READERS:
        ready("subscribers", "add", email)
    ready.env["DIGEST_QUEUE"] = "procrastinate"
    port = free_port()
    with (
        digest_process(ready, "web", "serve", "--port", str(port)) as server,
        _served(server, port) as web,
    ):
        web.post("/api/editions")
        sent = web.post("/api/editions/1/send", json={})
        assert _quiet(captured), "the web app sent mail itself"
        with digest_process(ready, "worker", "worker") as worker:
            assert wait_for(lambda: workers_alive(ready) == 1 or not worker.running())
            assert wait_for(lambda: web.get("/api/editions/1").json()["status"] == "finished")
            assert worker.running(), worker.log
            assert worker.stop() == 0, worker.log
        assert server.stop() == 0, server.log
    assert sent.status_code == 202 and sent.json()["waiting_for_worker"]
    assert received(captured) == {email: 1 for email in READERS}
    assert workers_alive(ready) == 0
