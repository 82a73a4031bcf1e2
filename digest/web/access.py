"""Who may use the operator routes, and CSRF for every operator form.

Access: when ``DIGEST_ADMIN_TOKEN`` is set, operator routes need
``Authorization: Bearer <token>`` or the signed session cookie the login form
sets; without a token (``digest serve`` then only binds to loopback, see
``check_bind``) they are open and the pages say so. CSRF: a random cookie per
browser and, in every form, an HMAC of it under the secret key; a POST without
the matching pair is refused. Requests authenticated by the Bearer header need
no CSRF token (a browser never adds that header on its own).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from fastapi import Request

from digest.core.errors import ConfigError
from digest.core.settings import Settings
from digest.web.errors import WebError

SESSION_COOKIE = "digest_operator"
CSRF_COOKIE = "digest_csrf"
SESSION_SECONDS = 12 * 3600
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_bind(settings: Settings, host: str) -> None:
    """Serving beyond loopback needs an admin token: without one the operator routes are open."""
    if host not in LOOPBACK and not settings.admin_token:
        raise ConfigError("DIGEST_ADMIN_TOKEN", f"required to serve on {host} (not loopback)")


@dataclass
class Access:
    settings: Settings
    key: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.key = self.settings.signing_key()

    # -- operator access ------------------------------------------------------

    @property
    def open_access(self) -> bool:
        return not self.settings.admin_token

    def _sign(self, purpose: str, value: str) -> str:
        token_hash = hashlib.sha256(self.settings.admin_token.encode()).hexdigest()
        message = f"{purpose}:{token_hash}:{value}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def bearer_ok(self, request: Request) -> bool:
        if not self.settings.admin_token:
            return False
        given = request.headers.get("authorization", "").encode()
        expected = f"Bearer {self.settings.admin_token}".encode()
        return hmac.compare_digest(given, expected)

    def session_cookie(self) -> str:
        issued = str(int(time.time()))
        return f"{issued}.{self._sign('session', issued)}"

    def session_ok(self, request: Request) -> bool:
        issued, _, signature = request.cookies.get(SESSION_COOKIE, "").partition(".")
        if not issued.isdigit() or time.time() - int(issued) > SESSION_SECONDS:
            return False
        return hmac.compare_digest(signature, self._sign("session", issued))

    def token_ok(self, given: str) -> bool:
        expected = self.settings.admin_token
        return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())

    def is_operator(self, request: Request) -> bool:
        return self.open_access or self.bearer_ok(request) or self.session_ok(request)

    def require_operator(self, request: Request) -> None:
        """A FastAPI dependency: 401 unless the request may use operator routes."""
        if not self.is_operator(request):
            raise WebError(401, "operator login required (DIGEST_ADMIN_TOKEN)")

    # -- CSRF -----------------------------------------------------------------

    def csrf_token(self, request: Request) -> tuple[str, str]:
        """(cookie, form token) for this browser; the cookie is new when it had none."""
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if len(cookie) != 32:
            cookie = secrets.token_hex(16)
        return cookie, self._sign("csrf", cookie)

    def check_csrf(self, request: Request, fields: dict[str, str]) -> None:
        if self.bearer_ok(request):
            return
        cookie = request.cookies.get(CSRF_COOKIE, "")
        given = fields.get("csrf", "")
        if not cookie or not hmac.compare_digest(given, self._sign("csrf", cookie)):
            raise WebError(403, "form expired or forged (CSRF check failed): reload the page")

    async def form(self, request: Request) -> dict[str, str]:
        """A URL-encoded form body, CSRF-checked."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ("application/x-www-form-urlencoded", ""):
            raise WebError(415, "send the form as application/x-www-form-urlencoded")
        body = (await request.body()).decode("utf-8", "replace")
        fields = dict(parse_qsl(body, keep_blank_values=True))
        self.check_csrf(request, fields)
        return fields
