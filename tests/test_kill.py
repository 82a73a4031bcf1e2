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


def kill_a_send(cli: Cli, env: dict[str, str], captured: Captured, after: int) -> None:
    """Run `digest send 1` in a process and SIGKILL it once ``after`` more messages arrived."""
    target = len(captured.envelopes) + after
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "send", "1"],
        cwd=cli.cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert wait_for(lambda: len(captured.envelopes) >= target or proc.poll() is not None)
    assert proc.poll() is None, "the send finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)


def test_three_kills_during_a_send_leave_at_most_one_unknown_per_connection_each(
    cli: Cli, captured: Captured
) -> None:
    """SIGKILL a 3,000-subscriber send with 4 connections three times, restarting each time.

    Each outcome is durable before its connection sends the next message, so a
    kill leaves at most one row per connection whose fate is unknown; nobody
    gets two messages unless an operator asks for the unknown ones again.
    """
    rng = random.Random(12)
    with edition_with(cli, 3000) as ed:
        env = {**os.environ, **cli.env, "DIGEST_SMTP_CONNECTIONS": "4"}
        unknown_before = 0
        for _ in range(3):
            kill_a_send(cli, env, captured, rng.randint(100, 600))
            states = Counter(ed.states().values())
            # Rows still `sending` become unknown when the next sender reaps them.
            in_doubt = states["sending"] + states["unknown"] - unknown_before
            assert in_doubt <= 4, states
            unknown_before = states["sending"] + states["unknown"]
        out = cli("send", "1", ok=False)
        assert out.exit_code == 1, out.output  # unknown rows remain: not a clean finish
        assert "--retry unknown" in out.output
        states = ed.states()
        assert not {"pending", "claimed", "sending"} & set(states.values())
        unknown = {email for email, state in states.items() if state == "unknown"}
        assert len(unknown) == unknown_before <= 12
        got = Counter(r for _, rs, _ in captured.envelopes for r in rs)
        assert max(got.values()) == 1  # no duplicate before --retry unknown
        assert all(got[e] == 1 for e in ed.emails if e not in unknown)
        cli("send", "1", "--retry", "unknown")
        assert set(ed.states().values()) == {"sent"}
        got = Counter(r for _, rs, _ in captured.envelopes for r in rs)
        assert set(got) == set(ed.emails)  # nobody missing
        assert sum(1 for n in got.values() if n > 1) <= len(unknown)
        assert max(got.values()) <= 2


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
