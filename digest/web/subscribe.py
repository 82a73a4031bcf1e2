"""Subscriber web routes: subscribe, confirm, one-click unsubscribe (RFC 8058), preferences.

``POST /subscribe`` answers the same for every address (new, pending, active,
unsubscribed, suppressed), is limited per client address and overall
(``DIGEST_SUBSCRIBE_LIMIT_PER_CLIENT``, ``DIGEST_SUBSCRIBE_LIMIT``: requests
per hour, counted in this process, 429 with ``Retry-After`` past them), and
ignores a request whose hidden honeypot field is filled (the same answer,
nothing stored or mailed).

Every link carries a signed token (subscribers.tokens): a forged or truncated
one answers 400, one for a subscriber who is gone 404, a revoked one (an older
version of the subscriber's links) 410, and none of them changes anything.
GETs never change state (link scanners follow them); only POSTs do.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session, sessionmaker
from starlette.concurrency import run_in_threadpool

from digest.core.db import transaction
from digest.core.errors import SubscriberError
from digest.core.settings import WEEKDAYS, Settings
from digest.mail.confirmation import send_confirmation
from digest.web.access import client_address
from digest.web.context import page_environment
from digest.web.errors import WebError, status_for
from digest.web.limits import WindowLimit
from subscribers import optin, service
from subscribers.addresses import check_name, check_timezone
from subscribers.lifecycle import SUBSCRIBED, TransitionError, transition
from subscribers.models import Subscriber
from subscribers.preferences import recent_tags, set_preferences
from subscribers.status import Cadence, SubscriberStatus
from subscribers.tokens import read_token

MAX_BODY = 16_384
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}
SUBSCRIBE_WINDOW_SECONDS = 3600  # DIGEST_SUBSCRIBE_LIMIT(_PER_CLIENT) count requests per hour
HONEYPOT = "website"  # hidden from people (subscribe.html); a bot that fills it is ignored
SUBSCRIBE_ACK = (
    "Thanks. If this address can receive mail, a confirmation link is on its way; "
    "you are subscribed once you open it."
)


# Preferences actions that pause or resume: the status wanted, what the page then says.
PAUSE_ACTIONS = {
    "pause": (SubscriberStatus.PAUSED, "Paused: no editions until you resume."),
    "resume": (SubscriberStatus.ACTIVE, "Resumed: the next edition is yours."),
}


class BadToken(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


async def read_fields(request: Request) -> tuple[dict[str, str], bool]:
    """The body's fields (URL-encoded form or a JSON object) and whether it was JSON."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if len(body) > MAX_BODY:
        raise WebError(413, "request body too large")
    if ctype == "application/json":
        try:
            data = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise WebError(400, "body is not valid JSON") from None
        if not isinstance(data, dict) or not all(
            isinstance(v, str | type(None)) for v in data.values()
        ):
            raise WebError(400, "expected a JSON object of strings")
        return {k: v or "" for k, v in data.items()}, True
    if ctype in ("application/x-www-form-urlencoded", ""):
        text = body.decode("utf-8", "replace")
        return dict(parse_qsl(text, keep_blank_values=True)), False
    raise WebError(415, "send application/x-www-form-urlencoded or application/json")


async def chosen_topics(
    request: Request, fields: dict[str, str], as_json: bool
) -> list[str] | None:
    """The topics a preferences save asks for; None (unchanged) when it does not say.

    The page sends a ``topic`` field per ticked box and ``topics_shown`` to say
    the boxes were there (none ticked: every topic); JSON sends ``topics`` as
    ``science,climate``.
    """
    if as_json:
        raw = fields.get("topics")
        return None if raw is None else [t for t in raw.split(",") if t.strip()]
    if "topics_shown" not in fields:
        return None
    body = (await request.body()).decode("utf-8", "replace")
    return [v for k, v in parse_qsl(body, keep_blank_values=True) if k == "topic"]


def make_router(settings: Settings, factory: sessionmaker[Session]) -> APIRouter:
    router = APIRouter()
    env = page_environment(settings)
    key = settings.signing_key()
    per_client = WindowLimit(settings.subscribe_limit_per_client, SUBSCRIBE_WINDOW_SECONDS)
    overall = WindowLimit(settings.subscribe_limit, SUBSCRIBE_WINDOW_SECONDS)

    def page(_template: str, _code: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(_template).render(newsletter=settings.newsletter_name, **context)
        return HTMLResponse(html, status_code=_code, headers=PAGE_HEADERS)

    def message(heading: str, text: str, status: int = 200) -> HTMLResponse:
        return page("message.html", status, heading=heading, text=text, error=status >= 400)

    def bad_link(status: int) -> HTMLResponse:
        if status == 410:
            return message(
                "This link no longer works",
                "It was replaced: use the link in the newest email from us.",
                status,
            )
        return message(
            "This link is not valid",
            "It may be incomplete or mistyped: copy the whole link from the email.",
            status,
        )

    def subscriber_for(session: Session, purpose: str, token: str) -> Subscriber:
        claim = read_token(key, purpose, token)
        if claim is None:
            raise BadToken(400)
        sub = service.by_id(session, claim.subscriber_id)
        if sub is None:
            raise BadToken(404)
        if claim.version != sub.token_version:
            raise BadToken(410)  # genuine, but revoked (`digest subscribers revoke-links`)
        return sub

    # -- subscribe ------------------------------------------------------------

    @router.get("/subscribe", response_class=HTMLResponse)
    def subscribe_form() -> HTMLResponse:
        return page("subscribe.html", email="", name="", error="")

    @router.post("/subscribe")
    async def subscribe(request: Request, background: BackgroundTasks) -> Response:
        as_json = "json" in request.headers.get("content-type", "")
        fields: dict[str, str] = {}
        headers: dict[str, str] = {}
        try:
            client = client_address(request)
            wait = max(per_client.retry_after(client) or 0, overall.retry_after("") or 0)
            if wait:
                headers["Retry-After"] = str(wait)
                raise WebError(429, f"too many subscription requests: try again in {wait} s")
            per_client.hit(client)
            overall.hit("")
            fields, as_json = await read_fields(request)
            if fields.get(HONEYPOT):  # only a bot fills the hidden field: it learns nothing
                return subscribed_answer(as_json)

            def record() -> optin.Confirmation | None:
                try:
                    with transaction(factory) as s:
                        return optin.request_subscription(
                            s,
                            settings,
                            fields.get("email", ""),
                            fields.get("name"),
                            fields.get("timezone"),
                            source="api" if as_json else "web",
                        )
                except IntegrityError:  # a concurrent request for the same address won
                    return None

            confirmation = await run_in_threadpool(record)
        except (WebError, SubscriberError) as exc:
            status, problem = status_for(exc)
            if as_json:
                return JSONResponse({"error": problem}, status_code=status, headers=headers)
            answer = page(
                "subscribe.html",
                status,
                email=fields.get("email", ""),
                name=fields.get("name", ""),
                error=problem,
            )
            answer.headers.update(headers)
            return answer
        if confirmation is not None:
            # After the response: a new address costs no more time than a known one.
            background.add_task(send_confirmation, settings, confirmation)
        return subscribed_answer(as_json)

    def subscribed_answer(as_json: bool) -> Response:
        """The one answer to a subscription, whether the address was new, known or ignored."""
        if as_json:
            return JSONResponse({"status": "ok", "message": SUBSCRIBE_ACK}, status_code=202)
        return message("Check your inbox", SUBSCRIBE_ACK)

    # -- confirm --------------------------------------------------------------

    @router.get("/confirm/{token}", response_class=HTMLResponse)
    def confirm_page(token: str) -> HTMLResponse:
        try:
            with factory() as s:
                sub = subscriber_for(s, "confirm", token)
                return page("confirm.html", email=sub.email, token=token)
        except BadToken as exc:
            return bad_link(exc.status)

    @router.post("/confirm/{token}", response_class=HTMLResponse)
    def confirm(token: str) -> HTMLResponse:
        try:
            with transaction(factory) as s:
                sub = subscriber_for(s, "confirm", token)
                optin.confirm(s, sub)
        except BadToken as exc:
            return bad_link(exc.status)
        except TransitionError:
            return message(
                "Nothing to confirm",
                "This address is not waiting for confirmation. To subscribe again, "
                "use the subscription form.",
                409,
            )
        return message("You are subscribed", "Thanks for confirming. The next edition is yours.")

    # -- unsubscribe (RFC 8058 one-click) ---------------------------------------

    @router.get("/unsubscribe/{token}", response_class=HTMLResponse)
    def unsubscribe_page(token: str) -> HTMLResponse:
        try:
            with factory() as s:
                sub = subscriber_for(s, "unsubscribe", token)
                subscribed = sub.status in SUBSCRIBED
                return page("unsubscribe.html", email=sub.email, token=token, subscribed=subscribed)
        except BadToken as exc:
            return bad_link(exc.status)

    @router.post("/unsubscribe/{token}", response_class=HTMLResponse)
    def unsubscribe(token: str) -> HTMLResponse:
        # The token is the authority: whatever the body (providers send
        # "List-Unsubscribe=One-Click", urlencoded or multipart), no cookie or login.
        try:
            with transaction(factory) as s:
                sub = subscriber_for(s, "unsubscribe", token)
                if sub.status in SUBSCRIBED:
                    transition(sub, SubscriberStatus.UNSUBSCRIBED)
                email = sub.email
        except BadToken as exc:
            return bad_link(exc.status)
        return message("You are unsubscribed", f"{email} will receive no more emails from us.")

    # -- preferences --------------------------------------------------------------
    # Name, time zone, topics (a box per tag of the stories of the last 90 days,
    # and per topic the subscriber has) and cadence; pause, resume, leave.

    def preferences_page(
        sub: Subscriber, token: str, code: int = 200, **extra: Any
    ) -> HTMLResponse:
        session = object_session(sub)
        assert session is not None
        return page(
            "preferences.html",
            code,
            token=token,
            email=sub.email,
            name=sub.name,
            timezone=sub.timezone or "",
            tags=sorted({*recent_tags(session), *sub.topics}),
            topics=set(sub.topics),
            cadence=sub.cadence,
            cadences=[c.value for c in Cadence],
            weekly_day=WEEKDAYS[settings.weekly_day].capitalize(),
            current=str(sub.status),
            subscribed=sub.status in SUBSCRIBED,
            paused=sub.status == SubscriberStatus.PAUSED,
            can_pause=sub.status == SubscriberStatus.ACTIVE,
            **{"saved": False, "done": "", "error": "", **extra},
        )

    @router.get("/preferences/{token}", response_class=HTMLResponse)
    def preferences(token: str) -> HTMLResponse:
        try:
            with factory() as s:
                return preferences_page(subscriber_for(s, "preferences", token), token)
        except BadToken as exc:
            return bad_link(exc.status)

    @router.post("/preferences/{token}", response_class=HTMLResponse)
    async def preferences_update(token: str, request: Request) -> Response:
        try:
            fields, as_json = await read_fields(request)
            topics = await chosen_topics(request, fields, as_json)
        except WebError as exc:
            return message("Bad request", exc.problem, exc.status)

        def update() -> Response:
            with transaction(factory) as s:
                sub = subscriber_for(s, "preferences", token)
                action = fields.get("action", "save")
                if action == "leave":
                    if sub.status in SUBSCRIBED:
                        transition(sub, SubscriberStatus.UNSUBSCRIBED)
                    return message(
                        "You are unsubscribed", f"{sub.email} will receive no more emails from us."
                    )
                if action in PAUSE_ACTIONS:
                    wanted, done = PAUSE_ACTIONS[action]
                    try:
                        transition(sub, wanted)
                    except TransitionError:
                        return preferences_page(
                            sub, token, 409, error=f"cannot {action} while {sub.status}"
                        )
                    return preferences_page(sub, token, done=done)
                if action != "save":
                    return message("Bad request", f"unknown action {action!r}", 400)
                try:
                    name = check_name(fields.get("name", sub.name))
                    zone = check_timezone(fields.get("timezone", sub.timezone or ""))
                    set_preferences(sub, topics, fields.get("cadence"))
                except SubscriberError as exc:
                    return preferences_page(sub, token, 400, error=str(exc))
                sub.name, sub.timezone = name, zone
                return preferences_page(sub, token, saved=True)

        try:
            return await run_in_threadpool(update)
        except BadToken as exc:
            return bad_link(exc.status)

    return router
