"""Render an edition once: Jinja2 -> MJML -> HTML, plus a plain-text part.

Per-recipient values are placeholders in the output (random per render, so
story text can never forge one); ``personalize`` splices real values in.
"""

from __future__ import annotations

import re
import secrets
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    select_autoescape,
)
from markupsafe import Markup
from mjml import mjml2html

from digest.core.errors import RenderError
from digest.core.models import Edition, EditionVariant, Story
from digest.core.paths import builtin_templates
from digest.render.body import Body, story_body

if TYPE_CHECKING:
    from digest.core.settings import Settings

HTML_TEMPLATE = "digest.mjml"
TEXT_TEMPLATE = "digest.txt"
RECIPIENT_FIELDS = ("unsubscribe_url", "preferences_url", "name", "topics")
# Invisible characters after the preheader, so clients show no body text in the preview line.
PREHEADER_PADDING = "\u034f\u200c\u00a0" * 80
# Control characters and everything str.splitlines() breaks on: never valid inside a header.
CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
INTRO_LIMIT = 1_000_000  # an intro is never cut (the editor bounds its length)
URL_RE = re.compile(r"https?://[^\s<>\"'()]+[^\s<>\"'().,;:!?]")


@dataclass(frozen=True)
class StoryView:
    headline: str
    summary: str
    bullets: tuple[str, ...]
    url: str | None = None
    image_url: str | None = None
    image_alt: str | None = None
    body: str | None = None  # sanitized HTML (Story.body)

    @property
    def alt(self) -> str:
        """Alt text for the story's image: the headline when none is given."""
        return self.image_alt or self.headline


@dataclass(frozen=True)
class EditionView:
    """What a template needs to know about an edition (stored or not yet built)."""

    number: int | None
    date: datetime
    stories: tuple[StoryView, ...]
    subject: str | None = None  # the operator's subject, instead of the generated one
    intro: str | None = None  # sanitized HTML above the first story (from the intro's Markdown)


@dataclass(frozen=True)
class Rendered:
    subject: str
    preheader: str
    html: str
    text: str
    placeholders: dict[str, str]

    def personalize(self, values: dict[str, str]) -> tuple[str, str]:
        """HTML and text with this recipient's values spliced in."""
        html, text = self.html, self.text
        for field, marker in self.placeholders.items():
            value = values[field]
            html = html.replace(marker, escape(value, quote=True))
            text = text.replace(marker, value)
        return html, text


def render_columns(rendered: Rendered) -> dict[str, object]:
    """The Edition columns that store ``rendered`` (written once, when sending starts)."""
    return {
        "rendered_subject": rendered.subject,
        "rendered_preheader": rendered.preheader,
        "rendered_html": rendered.html,
        "rendered_text": rendered.text,
        "rendered_placeholders": dict(rendered.placeholders),
    }


def stored_render(edition: Edition | EditionVariant) -> Rendered | None:
    """The render stored when ``edition`` started, or None (a draft, or started before
    0010; for a variant: the whole edition's render serves, or none was stored)."""
    if edition.rendered_subject is None or edition.rendered_placeholders is None:
        return None
    html, text = edition.rendered_html, edition.rendered_text
    if html is None or text is None:
        return None
    return Rendered(
        edition.rendered_subject,
        edition.rendered_preheader or "",
        html,
        text,
        {str(k): str(v) for k, v in edition.rendered_placeholders.items()},
    )


def split_links(text: str) -> list[tuple[str, str | None]]:
    """Cut text into (text, None) and (url, url) pieces."""
    pieces: list[tuple[str, str | None]] = []
    pos = 0
    for m in URL_RE.finditer(text):
        if m.start() > pos:
            pieces.append((text[pos : m.start()], None))
        pieces.append((m.group(0), m.group(0)))
        pos = m.end()
    if pos < len(text):
        pieces.append((text[pos:], None))
    return pieces


def linkify(text: str) -> Markup:
    """Escape text and turn bare http(s) URLs into links."""
    out = []
    for piece, url in split_links(text):
        if url is None:
            out.append(escape(piece))
        else:
            out.append(
                f'<a href="{escape(url, quote=True)}" style="color:#1a5fb4;">{escape(piece)}</a>'
            )
    return Markup("".join(out))


def wrap(text: str, width: int = 72, indent: str = "", first: str | None = None) -> str:
    """Wrap plain text without breaking URLs."""
    return textwrap.fill(
        text,
        width=width,
        initial_indent=first if first is not None else indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def is_http_url(value: object) -> bool:
    """Only http(s) URLs become links or images; anything else (javascript:, data:) is dropped."""
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def make_environment(override_dir: Path | None = None) -> Environment:
    loaders = []
    if override_dir is not None:
        loaders.append(FileSystemLoader(str(override_dir)))
    loaders.append(FileSystemLoader(str(builtin_templates())))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("mjml", "html", "xml")),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["linkify"] = linkify
    env.filters["wrap"] = wrap
    env.tests["http_url"] = is_http_url
    env.filters["body"] = body_of
    env.filters["intro"] = intro_of
    return env


def body_of(story: StoryView, max_chars: int) -> Body:
    """The story's body as the digest shows it, cut to ``max_chars`` (0: no body)."""
    return story_body(story.body, max_chars, story.url, story.summary)


def intro_of(edition: EditionView) -> Body:
    """The edition's intro as HTML and plain text (empty when it has none), never cut."""
    return story_body(edition.intro, INTRO_LIMIT, None)


def subject_for(newsletter: str, edition: EditionView) -> str:
    """The subject line; control characters (never valid in a header) become spaces."""
    if edition.subject:
        return CONTROL_RE.sub(" ", edition.subject)
    number = f" #{edition.number}" if edition.number is not None else ""
    top = edition.stories[0].headline if edition.stories else "no stories"
    return CONTROL_RE.sub(" ", f"{newsletter}{number}: {top}")


def render(
    edition: EditionView,
    *,
    newsletter: str,
    base_url: str,
    override_dir: Path | None = None,
    lang: str = "en",
    postal_address: str = "",
    nonce: str | None = None,
    body_max_chars: int = 600,
    env: Environment | None = None,
) -> Rendered:
    """Render the edition's HTML and text once, with recipient placeholders.

    ``nonce`` fixes the placeholders (golden tests); by default it is random.
    ``env``: a template environment to reuse (an edition's variants share one).
    """
    env = env or make_environment(override_dir)
    nonce = nonce or secrets.token_hex(6)
    placeholders = {f: f"@@{nonce}_{f}@@" for f in RECIPIENT_FIELDS}
    subject = subject_for(newsletter, edition)
    preheader = " · ".join(s.headline for s in edition.stories[:3])
    archive = "/archive" if edition.number is None else f"/archive/{edition.number}"
    context = {
        "newsletter": newsletter,
        "edition": edition,
        "stories": edition.stories,
        "subject": subject,
        "preheader": preheader,
        "preheader_padding": PREHEADER_PADDING,
        "base_url": base_url,
        "archive_url": base_url + archive,
        "lang": lang,
        "postal_address": postal_address,
        "recipient": placeholders,
        "body_max_chars": body_max_chars,
    }
    mjml_source = _render_template(env, HTML_TEMPLATE, context)
    text = _render_template(env, TEXT_TEMPLATE, context)
    try:
        html = mjml2html(mjml_source, fonts={}, disable_comments=True)
    except (ValueError, RuntimeError) as exc:
        raise RenderError(HTML_TEMPLATE, f"MJML compile failed: {exc}") from None
    return Rendered(subject, preheader, html, text, placeholders)


def _render_template(env: Environment, name: str, context: dict[str, object]) -> str:
    try:
        return env.get_template(name).render(context)
    except TemplateError as exc:
        lineno = getattr(exc, "lineno", None)
        where = f" line {lineno}" if lineno else ""
        raise RenderError(name, f"{exc.message or exc}{where}") from None


def story_views(stories: Sequence[Story]) -> tuple[StoryView, ...]:
    return tuple(
        StoryView(s.headline, s.summary, tuple(s.bullets), s.url, s.image_url, s.image_alt, s.body)
        for s in stories
    )


def render_with(
    settings: Settings,
    edition: EditionView,
    nonce: str | None = None,
    env: Environment | None = None,
) -> Rendered:
    """``render`` with everything the settings say (the one call the app makes)."""
    return render(
        edition,
        newsletter=settings.newsletter_name,
        base_url=settings.base_url,
        override_dir=settings.templates_dir,
        lang=settings.lang,
        postal_address=settings.postal_address,
        nonce=nonce,
        body_max_chars=settings.body_max_chars,
        env=env,
    )
