"""The operator's schedule page: the next slots DIGEST_SCHEDULE gives (the clock's own
slot code, ``digest.editions.slots``) and the clock's latest decisions
(``digest.processes.runlog``: built, skipped, missed, failed per slot)."""

from __future__ import annotations

from datetime import UTC
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from digest.core.db import utcnow
from digest.core.errors import ConfigError
from digest.editions import slots
from digest.processes import runlog
from digest.web.context import WebContext

UPCOMING = 10
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def make_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(dependencies=[Depends(ctx.access.require_operator)], include_in_schema=False)

    @router.get("/schedule")
    def schedule_page(request: Request) -> HTMLResponse:
        settings = ctx.settings
        problem = ""
        upcoming = []
        try:
            trigger = slots.make_trigger(settings)
            now = utcnow().astimezone(ZoneInfo(settings.timezone))
            upcoming = slots.upcoming(trigger, now, UPCOMING)
        except ConfigError as exc:
            problem = str(exc)
        with ctx.factory() as s:
            runs = runlog.recent(s)
            return ctx.page(
                request,
                "schedule.html",
                400 if problem else 200,
                schedule=settings.schedule,
                timezone=settings.timezone,
                weekly_day=DAYS[settings.weekly_day],
                upcoming=upcoming,
                runs=runs,
                problem=problem,
                utc=UTC,
            )

    return router
