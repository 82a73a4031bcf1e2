"""``/metrics`` in the Prometheus text format (operator access, like the API)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.core.models import Delivery, Edition, EditionStory, Story
from digest.core.status import DeliveryState, EditionStatus
from digest.delivery.report import returned_counts
from digest.web.context import WebContext

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _family(name: str, kind: str, doc: str, samples: list[tuple[str, float]]) -> list[str]:
    lines = [f"# HELP {name} {doc}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{labels} {value}" for labels, value in samples]
    return lines


def _timestamp(value: datetime | None) -> float:
    return value.timestamp() if value else 0.0


def metrics_text(session: Session) -> str:
    """Every metric, read from the database (the source of truth) at scrape time."""
    stories = session.scalar(select(func.count()).select_from(Story)) or 0
    placed = select(EditionStory.story_id)
    new = session.scalar(select(func.count()).where(Story.id.not_in(placed))) or 0
    by_status = dict.fromkeys(EditionStatus, 0)
    for status, n in session.execute(select(Edition.status, func.count()).group_by(Edition.status)):
        by_status[EditionStatus(status)] = n
    by_state = dict.fromkeys(DeliveryState, 0)
    for state, n in session.execute(select(Delivery.state, func.count()).group_by(Delivery.state)):
        by_state[DeliveryState(state)] = n
    finished = session.scalar(
        select(func.max(Edition.finished_at)).where(Edition.status == EditionStatus.FINISHED)
    )
    last_sent = session.scalar(select(func.max(Delivery.sent_at)))
    last = max(_timestamp(finished), _timestamp(last_sent))
    returned = sorted(returned_counts(session).items())
    lines = [
        *_family("digest_stories_total", "gauge", "Stories stored.", [("", stories)]),
        *_family("digest_stories_new", "gauge", "Stories in no edition yet.", [("", new)]),
        *_family(
            "digest_editions",
            "gauge",
            "Editions by status.",
            [(f'{{status="{s.value}"}}', n) for s, n in by_status.items()],
        ),
        *_family(
            "digest_deliveries",
            "gauge",
            "Delivery ledger rows by state.",
            [(f'{{state="{s.value}"}}', n) for s, n in by_state.items()],
        ),
        *_family(
            "digest_edition_bounces",
            "gauge",
            "Deliveries of an edition that bounced, from verified returned mail.",
            [(f'{{edition="{e}"}}', n["bounces"]) for e, n in returned],
        ),
        *_family(
            "digest_edition_complaints",
            "gauge",
            "Deliveries of an edition that drew a complaint, from verified returned mail.",
            [(f'{{edition="{e}"}}', n["complaints"]) for e, n in returned],
        ),
        *_family(
            "digest_last_successful_send_timestamp_seconds",
            "gauge",
            "Unix time of the last message sent or edition finished (0: never).",
            [("", last)],
        ),
    ]
    return "\n".join(lines) + "\n"


def make_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(dependencies=[Depends(ctx.access.require_operator)], include_in_schema=False)

    @router.get("/metrics")
    def metrics() -> PlainTextResponse:
        with ctx.factory() as s:
            return PlainTextResponse(metrics_text(s), media_type=CONTENT_TYPE)

    return router
