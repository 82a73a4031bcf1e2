"""Who may use the operator routes, CSRF for every operator form, and login throttling.

Access: when ``DIGEST_ADMIN_TOKEN`` is set, operator routes need
``Authorization: Bearer <token>`` or the session cookie the login form sets
(a random secret whose HMAC is a row of ``web_sessions``: logging out deletes
it, in every process); without a token (``digest serve`` then only binds to
loopback, see ``check_bind``) they are open and the pages say so. Wrong admin
tokens, in the login form or a Bearer header, are counted per client address:
after ``DIGEST_LOGIN_MAX_FAILURES`` in 15 minutes that address gets 429 with
``Retry-After``, whatever it sends, until the window has passed.

CSRF, in layers: ``digest.web.guards.OriginGuard`` refuses every cross-site
write before a route runs, open mode included; every operator form also
carries a CSRF token (a random cookie per browser and, in the form, an HMAC
of it under the secret key), and a POST without the matching pair is refused.
Requests authenticated by the Bearer header need no CSRF token (a browser
never adds that header on its own). Subscriber forms (confirm, preferences,
unsubscribe) need none either: they act on no cookie or session, only on the
signed token in their URL, which a forger does not know.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker

from digest.core.errors import ConfigError
from digest.core.settings import Settings
from digest.web.errors import WebError
from digest.web.limits import WindowLimit
from digest.web.sessions import close_session, open_session, session_alive

SESSION_COOKIE = "digest_operator"
CSRF_COOKIE = "digest_csrf"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
LOGIN_WINDOW_SECONDS = 15 * 60


def check_bind(settings: Settings, host: str) -> None:
    """Serving beyond loopback needs an admin token: without one the operator routes are open."""
    if host not in LOOPBACK and not settings.admin_token:
        raise ConfigError("DIGEST_ADMIN_TOKEN", f"required to serve on {host} (not loopback)")


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


@dataclass
class Access:
    settings: Settings
    factory: sessionmaker[Session]
    key: bytes = field(init=False)
    failures: WindowLimit = field(init=False)

    def __post_init__(self) -> None:
        self.key = self.settings.signing_key()
        self.failures = WindowLimit(self.settings.login_max_failures, LOGIN_WINDOW_SECONDS)

    # -- operator access ------------------------------------------------------

    @property
    def open_access(self) -> bool:
        return not self.settings.admin_token

    def _sign(self, purpose: str, value: str) -> str:
        token_hash = hashlib.sha256(self.settings.admin_token.encode()).hexdigest()
        message = f"{purpose}:{token_hash}:{value}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def _token_attempt(self, request: Request, given: str, expected: str) -> bool:
        """Compare a guess at the admin token; wrong ones count per client (429 past the limit)."""
        client = client_address(request)
        wait = self.failures.retry_after(client)
        if wait is not None:
            raise WebError(
                429,
                f"too many wrong admin tokens from this address: try again in {wait} s",
                {"Retry-After": str(wait)},
            )
        ok = hmac.compare_digest(given.encode(), expected.encode())
        if ok:
            self.failures.clear(client)
        else:
            self.failures.hit(client)
        return ok

    def bearer_ok(self, request: Request) -> bool:
        given = request.headers.get("authorization")
        if not self.settings.admin_token or given is None:
            return False
        if not hasattr(request.state, "bearer_ok"):  # one request, one attempt
            expected = f"Bearer {self.settings.admin_token}"
            request.state.bearer_ok = self._token_attempt(request, given, expected)
        return bool(request.state.bearer_ok)

    def token_ok(self, request: Request, given: str) -> bool:
        """The login form's token is the admin token (wrong ones are counted)."""
        expected = self.settings.admin_token
        return bool(expected) and self._token_attempt(request, given, expected)

    def start_session(self) -> str:
        """A new operator session: the value of its cookie."""
        secret = secrets.token_urlsafe(32)
        open_session(self.factory, self._sign("session", secret))
        return secret

    def session_ok(self, request: Request) -> bool:
        secret = request.cookies.get(SESSION_COOKIE, "")
        if not self.settings.admin_token or not secret or len(secret) > 100:
            return False
        if not hasattr(request.state, "session_ok"):
            request.state.session_ok = session_alive(self.factory, self._sign("session", secret))
        return bool(request.state.session_ok)

    def end_session(self, request: Request) -> None:
        """Log this browser out server-side: a copy of its cookie opens nothing any more."""
        secret = request.cookies.get(SESSION_COOKIE, "")
        if secret and len(secret) <= 100:
            close_session(self.factory, self._sign("session", secret))

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
