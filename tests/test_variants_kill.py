"""Kill a send of personal digests at random moments: everyone still gets their own variant,
and nobody a second message unless an operator resends the unknown ones."""

from __future__ import annotations

import os
import random
from collections import Counter

from conftest import Captured, Cli
from sending_setup import add_subscribers
from sqlalchemy import update
from test_kill import kill_a_send
from test_stored_render import database
from test_variants import KINDS, headline, headlines_in, write_day

from digest.core.db import transaction
from subscribers.models import Subscriber

TOPICS = [["science"], ["arts"], []]


def test_variants_kills_during_a_send_leave_each_reader_their_own_stories_once(
    ready: Cli, captured: Captured
) -> None:
    rng = random.Random(14)
    settings = ready.settings()
    with database(settings) as factory:
        ready("stories", "import", str(write_day(ready.cwd, 0)))
        emails = add_subscribers(factory, 1500)
        with transaction(factory) as s:
            for i, topics in enumerate(TOPICS):
                s.execute(
                    update(Subscriber)
                    .where(Subscriber.email.in_(emails[i :: len(TOPICS)]))
                    .values(topics=topics)
                )
        ready("edition", "build")
        env = {**os.environ, **ready.env, "DIGEST_SMTP_CONNECTIONS": "4"}
        for _ in range(2):
            kill_a_send(ready, env, captured, rng.randint(100, 400))
        ready("send", "1", ok=False)  # the rest; unknown rows make it exit 1
        got = Counter(r for _, rs, _ in captured.envelopes for r in rs)
        assert max(got.values()) == 1  # nobody twice before --retry unknown
        ready("send", "1", "--retry", "unknown")
        wanted = {
            "science": [headline(0, "science"), headline(0, "plain")],
            "arts": [headline(0, "arts"), headline(0, "plain")],
            "": [headline(0, kind) for kind in KINDS],
        }
        for message in captured.messages():
            address = message["To"].addresses[0].addr_spec
            topics = TOPICS[emails.index(address) % len(TOPICS)]
            assert headlines_in(message) == wanted[topics[0] if topics else ""]
        got = Counter(r for _, rs, _ in captured.envelopes for r in rs)
        assert set(got) == set(emails)  # nobody missing
        assert max(got.values()) <= 2
