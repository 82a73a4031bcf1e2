"""The web app's HTTP status for an error comes from its type, never from its wording."""

from __future__ import annotations

from digest.core.errors import (
    BadEditionRef,
    DigestError,
    EditionError,
    EditionNotFound,
    SubscriberError,
)
from digest.web.errors import WebError, status_for


def test_status_comes_from_the_error_type() -> None:
    assert status_for(EditionNotFound("no edition with id 4", 4)) == (404, "no edition with id 4")
    assert status_for(BadEditionRef("not an edition id: 'x'"))[0] == 400
    assert status_for(EditionError("edition 3 is finished, not running", 3))[0] == 409
    assert status_for(SubscriberError("a@example.com", "already a subscriber"))[0] == 400
    assert status_for(DigestError("anything"))[0] == 400
    assert status_for(WebError(415, "send JSON")) == (415, "send JSON")
    assert status_for(RuntimeError("boom")) == (500, "internal error")


def test_the_wording_does_not_choose_the_status() -> None:
    assert status_for(EditionError("no way: edition 3 is finished", 3))[0] == 409
    assert status_for(EditionNotFound("gone"))[0] == 404
