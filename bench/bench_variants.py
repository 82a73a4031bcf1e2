"""Benchmark: personal digests, 10,000 subscribers over 50 variants (run with `make bench`).

A SQLite database with 55 stories (50 tagged t0…t49, 5 untagged) and 10,000
active subscribers, each with one topic: 50 distinct story subsets. The
edition is started as a send starts it (``service.open_send``: the plan, one
render per variant, the ledger), then every row's message is built the way
the delivery manager builds it (the row's variant's byte template, spliced),
and in the same run the same recipients from the single template of one of
the variants (as if every subscriber shared it). Prints the render time of
the 50 variants, the start, and the median per-recipient cost of each, with
PASS/FAIL for the 1.5x target.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUBSCRIBERS = 10_000
VARIANTS = 50
UNTAGGED = 5
RATIO_TARGET = 1.5


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import insert

    from digest.core.db import make_engine, session_factory, transaction, upgrade, utcnow
    from digest.core.models import Story
    from digest.core.settings import load_settings
    from digest.delivery import claims, service
    from digest.delivery.sendable import variant_renderer
    from digest.editions import assemble
    from digest.mail.message import Recipient
    from subscribers.models import Subscriber

    workdir = Path(tempfile.mkdtemp(prefix="digest-bench-variants-"))
    settings = load_settings(
        database_url=f"sqlite:///{workdir / 'bench.db'}",
        var_dir=str(workdir),
        secret_key="bench-secret",
    )
    engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    factory = session_factory(engine)
    now = utcnow()
    with transaction(factory) as s:
        s.execute(
            insert(Story),
            [
                {
                    "headline": f"Story {i}: a headline of ordinary length for a digest",
                    "summary": "A summary of one sentence, as most stories have it here. " * 2,
                    "bullets": ["One bullet point", "Another bullet point"],
                    "source": "bench",
                    "tags": [f"t{i}"] if i < VARIANTS else [],
                    "priority": 0,
                    "content_hash": f"bench-{i}",
                    "ingested_at": now,
                    "url": f"https://example.org/story/{i}",
                }
                for i in range(VARIANTS + UNTAGGED)
            ],
        )
        s.execute(
            insert(Subscriber),
            [
                {
                    "email": f"reader{i}@example.com",
                    "email_key": f"reader{i}@example.com",
                    "name": f"Reader {i}",
                    "status": "active",
                    "source": "cli",
                    "attributes": {},
                    "topics": [f"t{i % VARIANTS}"],
                    "cadence": "daily",
                    "created_at": now,
                    "status_changed_at": now,
                }
                for i in range(SUBSCRIBERS)
            ],
        )
        edition = assemble.build(s)
        assert edition is not None
        edition_id = edition.id

    # The 50 renders alone, as the start makes them (Jinja -> MJML -> HTML, text).
    with factory() as s:
        edition = assemble.get(s, str(edition_id))
        render = variant_renderer(settings, edition)
        by_tag = {f"t{i}": [st for st in edition.stories if f"t{i}" in st.tags] for i in range(50)}
        plain = [st for st in edition.stories if not st.tags]
        began = time.perf_counter()
        for i in range(VARIANTS):
            render(by_tag[f"t{i}"] + plain)
        render_s = time.perf_counter() - began

    began = time.perf_counter()
    _, messages, pending = service.open_send(settings, factory, str(edition_id), force=True)
    start_s = time.perf_counter() - began

    with transaction(factory) as s:  # the rows as a sender claims them
        rows = claims.claim(s, edition_id, SUBSCRIBERS, lease=600).rows
    work = [
        (r.variant_id, Recipient(r.subscriber_id, r.email, r.name, r.token_version, r.topics))
        for r in rows
    ]
    distinct = len({variant for variant, _ in work})

    began = time.perf_counter()
    for variant, _ in work:  # first use per variant: load its render, compile its template
        messages.for_variant(variant)
    compile_s = time.perf_counter() - began

    clock = time.perf_counter_ns
    ours: list[float] = []
    for variant, recipient in work:
        t = clock()
        messages.build(recipient, variant)
        ours.append((clock() - t) / 1000)
    # The single-variant figure: the same recipients all from one variant's template
    # (a message of the same size), so the ratio is what 50 templates cost over one.
    one = messages.for_variant(work[0][0])
    single: list[float] = []
    for _, recipient in work:
        t = clock()
        one.build(recipient)
        single.append((clock() - t) / 1000)
    engine.dispose()

    ours_us, single_us = statistics.median(ours), statistics.median(single)
    ratio = ours_us / single_us
    print(
        f"variants: {SUBSCRIBERS:,} subscribers, {pending:,} deliveries over {distinct}"
        f" variants of a {VARIANTS + UNTAGGED}-story edition"
    )
    print(
        f"  rendering the {VARIANTS} variants: {render_s * 1000:.0f} ms"
        f" ({render_s * 1000 / VARIANTS:.1f} ms each); compiling their byte templates in the"
        f" sender: {compile_s * 1000:.0f} ms"
    )
    print(f"  start (plan, {VARIANTS} renders, ledger of {pending:,} rows): {start_s:.2f} s")
    print(
        f"  per recipient: {ours_us:.1f} µs over {distinct} variants, {single_us:.1f} µs from"
        f" one variant's template; {ratio:.2f}x"
        f" (target <= {RATIO_TARGET}x: {verdict(ratio <= RATIO_TARGET)})"
    )
    return 0 if ratio <= RATIO_TARGET and distinct == VARIANTS else 1


if __name__ == "__main__":
    raise SystemExit(main())
