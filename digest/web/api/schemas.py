"""The request and response bodies of the operator JSON API (pydantic models).

Their names are the schema names in the OpenAPI document (``/api/openapi.json``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from digest.core.status import EditionStatus

# The error answers every route may give, for the OpenAPI document.
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": why, "content": {"application/json": {"example": {"error": why}}}}
    for code, why in (
        (400, "bad input"),
        (401, "operator token required"),
        (404, "no such object"),
        (409, "not possible in the current state"),
        (413, "body too large"),
    )
}


class Error(BaseModel):
    error: str


# -- stories ----------------------------------------------------------------------


class StoryIn(BaseModel):
    """One story in the JSON story format (see the README's story formats)."""

    model_config = ConfigDict(extra="forbid")
    headline: str
    summary: str
    bullets: list[str] | None = None
    body: str | None = None
    url: str | None = None
    guid: str | None = None
    tags: list[str] | None = None
    image_url: str | None = None
    image_alt: str | None = None
    published: str | None = None
    priority: int | None = None


class StoryOut(BaseModel):
    id: int
    headline: str
    summary: str
    bullets: list[str]
    url: str | None
    source: str
    tags: list[str]
    image_url: str | None
    image_alt: str | None
    priority: int
    published_at: str | None
    ingested_at: str


class StoryImport(BaseModel):
    added: list[int]
    updated: list[int]
    duplicates: int


# -- subscribers ------------------------------------------------------------------


TOPICS = Field(
    None,
    max_length=100,
    description="Story tags wanted (lower-cased, sorted, without duplicates); [] is everything.",
)
CADENCE = Field(None, max_length=20, description="daily or weekly.")


class SubscriberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=320)
    name: str | None = Field(None, max_length=200)
    timezone: str | None = Field(None, max_length=64)
    status: Literal["active", "pending"] = "active"
    topics: list[str] | None = TOPICS
    cadence: str | None = Field(
        None, max_length=20, description="daily or weekly; default DIGEST_DEFAULT_CADENCE."
    )


class SubscriberPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=200)
    timezone: str | None = Field(None, max_length=64)
    status: Literal["active", "paused", "unsubscribed", "bounced", "complained"] | None = None
    topics: list[str] | None = TOPICS
    cadence: str | None = CADENCE


class SubscriberOut(BaseModel):
    id: int
    email: str
    name: str
    status: str
    source: str
    timezone: str | None
    topics: list[str]
    cadence: str
    created_at: datetime


class CsvImport(BaseModel):
    added: int
    already_known: list[str]
    repeated_in_file: list[str]
    suppressed: list[tuple[str, str]]


# -- editions ---------------------------------------------------------------------


class EditionOut(BaseModel):
    id: int
    status: EditionStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    stories: int
    deliveries: dict[str, int]


class LastError(BaseModel):
    email: str
    state: str
    error: str


class Returned(BaseModel):
    bounces: int = Field(0, description="Deliveries that bounced (hard or soft).")
    complaints: int = Field(0, description="Deliveries that drew a complaint.")


class EditionProgress(BaseModel):
    """How far the sending of an edition has got: deliveries by state, rate, ETA, last errors."""

    id: int
    status: EditionStatus
    started_at: str | None
    finished_at: str | None
    deliveries: dict[str, int]
    rate: float
    eta_seconds: float | None
    waiting: str | None = Field(
        None, description="Why pending deliveries are held back (no worker alive, hourly cap)."
    )
    waiting_for_worker: bool = Field(
        False, description="Running with pending deliveries and no worker alive to send them."
    )
    skipped_nothing_new: int = Field(0, description="Active subscribers with no story in it.")
    skipped_not_due: int = Field(0, description="Weekly readers not due at its slot.")
    variants: int = Field(0, description="Story subsets its deliveries are built from.")
    returned: Returned = Field(
        default_factory=lambda: Returned(bounces=0, complaints=0),
        description="Its deliveries named by verified returned mail.",
    )
    last_errors: list[LastError]


class PreviewOut(BaseModel):
    subject: str
    preheader: str
    html: str
    text: str
    html_bytes: int
    gmail_clip_bytes: int
    clipped: bool
    problems: list[str]


class SendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    force: bool = False
