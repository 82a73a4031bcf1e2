"""Kill a sending process at random moments: no subscriber is lost or mailed twice by accident."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

from conftest import Captured, Cli
from sending_setup import edition_with


def wait_for(condition, timeout: float = 60.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_send_killed_repeatedly_loses_nothing_and_duplicates_only_on_retry_unknown(
    cli: Cli, captured: Captured
) -> None:
    rng = random.Random(6)
    with edition_with(cli, 1500) as ed:
        env = {**os.environ, **cli.env, "DIGEST_SMTP_CONNECTIONS": "3"}
        for _ in range(3):
            before = len(captured.envelopes)
            proc = subprocess.Popen(
                [sys.executable, "-m", "digest", "send", "1"],
                cwd=cli.cwd,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            target = before + rng.randint(20, 300)
            assert wait_for(
                lambda t=target, p=proc: len(captured.envelopes) >= t or p.poll() is not None
            )
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        out = cli("send", "1", ok=False).output
        assert "now unknown" in out or "unknown 0" in out
        states = ed.states()
        assert not {"pending", "claimed", "sending"} & set(states.values())
        unknown = {email for email, state in states.items() if state == "unknown"}
        got = Counter(r for _, rs, _ in captured.envelopes for r in rs)
        for email in ed.emails:
            if email not in unknown:
                assert got[email] == 1, email
        cli("send", "1", "--retry", "unknown")
        assert set(ed.states().values()) == {"sent"}
        got = Counter(r for _, rs, _ in captured.envelopes for r in rs)
        assert set(got) == set(ed.emails)
        assert all(got[e] == 1 for e in ed.emails if e not in unknown)
        assert all(got[e] <= 2 for e in unknown)


def test_send_sigterm_stops_between_messages_and_leaves_nothing_in_flight(
    cli: Cli, captured: Captured
) -> None:
    with edition_with(cli, 1500) as ed:
        env = {**os.environ, **cli.env, "DIGEST_SMTP_CONNECTIONS": "2"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "digest", "send", "1"],
            cwd=cli.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert wait_for(lambda: len(captured.envelopes) >= 50 or proc.poll() is not None)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        states = ed.states()
        # Stopped between messages: nothing claimed, in flight or of unknown fate.
        assert not {"claimed", "sending", "unknown"} & set(states.values()), out
        sent = {email for email, state in states.items() if state == "sent"}
        got = Counter(r for _, rs, _ in captured.envelopes for r in rs)
        assert set(got) == sent and all(n == 1 for n in got.values())
        if len(sent) < len(ed.emails):  # it stopped early: the rest wait, and a resend finishes
            assert "edition is running" in out
            cli("send", "1")
        got = Counter(r for _, rs, _ in captured.envelopes for r in rs)
        assert set(got) == set(ed.emails) and all(n == 1 for n in got.values())
