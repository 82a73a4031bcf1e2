"""What every operator page and API route shares: settings, the template environment, pages.

Access control and CSRF (``ctx.access``) are in ``digest.web.access``; error
types and their HTTP statuses in ``digest.web.errors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader
from sqlalchemy.orm import Session, sessionmaker

from digest.core.paths import builtin_templates
from digest.core.settings import Settings
from digest.web.access import CSRF_COOKIE, Access

# Operator pages: no inline script or style at all; frames only from this origin (the preview).
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def page_environment(settings: Settings) -> Environment:
    """The web pages' templates: ``DIGEST_TEMPLATES_DIR/web`` first, then the built-in ones."""
    loaders = []
    if settings.templates_dir is not None:
        loaders.append(FileSystemLoader(str(settings.templates_dir / "web")))
    loaders.append(FileSystemLoader(str(builtin_templates() / "web")))
    return Environment(loader=ChoiceLoader(loaders), autoescape=True)


@dataclass
class WebContext:
    settings: Settings
    factory: sessionmaker[Session]
    env: Environment = field(init=False)
    access: Access = field(init=False)

    def __post_init__(self) -> None:
        self.env = page_environment(self.settings)
        self.access = Access(self.settings, self.factory)

    def page(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        """An operator page, with this browser's CSRF token for its forms."""
        cookie, token = self.access.csrf_token(request)
        html = self.env.get_template(template).render(
            newsletter=self.settings.newsletter_name,
            open_access=self.access.open_access,
            operator=self.access.is_operator(request),
            csrf=token,
            **context,
        )
        response = HTMLResponse(
            html, status_code=status, headers={"Content-Security-Policy": PAGE_CSP}
        )
        if request.cookies.get(CSRF_COOKIE) != cookie:
            response.set_cookie(
                CSRF_COOKIE,
                cookie,
                httponly=True,
                samesite="strict",
                secure=self.settings.base_url.startswith("https://"),
            )
        return response
