"""``POST /inbound/mail``: returned mail handed over by a relay (a pipe or webhook
from the MTA) instead of read from a mailbox.

The body is the raw RFC 822 message. The relay authenticates with
``Authorization: Bearer DIGEST_INBOUND_SECRET`` (compared in constant time);
without the setting the route does not exist (404), a missing or wrong secret
is 403. A relay posts without ``Origin``, so the Origin guard lets it through;
the secret is what stands guard. The message goes to the same ``handle`` as
``digest bounces scan``: the same policy, and a message posted twice is stored
once.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from digest.core.errors import MailboxError
from digest.delivery import intake
from digest.mail.bounce_parse import NotAnEmail
from digest.web.context import WebContext
from digest.web.errors import WebError

SOURCE = "inbound"


def authorized(secret: str, authorization: str) -> bool:
    """Whether the Authorization header carries the shared secret (constant time)."""
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), secret.encode())


def make_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.post("/inbound/mail")
    async def inbound_mail(request: Request) -> JSONResponse:
        secret = ctx.settings.inbound_secret
        if not secret:
            raise WebError(404, "not found")
        if not authorized(secret, request.headers.get("authorization", "")):
            raise WebError(403, "the inbound secret is missing or wrong")
        data = await request.body()
        try:
            parsed = intake.parse_bytes(ctx.settings, SOURCE, data)
        except NotAnEmail as exc:
            raise MailboxError("the posted message", str(exc)) from None
        summary = await run_in_threadpool(intake.handle, ctx.settings, ctx.factory, [parsed])
        return JSONResponse({**parsed.as_dict(), **summary.as_dict()})

    return router
