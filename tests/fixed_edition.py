"""A fixed edition (fixed date, stories and placeholders) for render, MIME and browser tests."""

from __future__ import annotations

from datetime import UTC, datetime
from email.headerregistry import Address

from digest.mail.message import MailOptions, MessageFactory
from digest.render.edition import EditionView, Rendered, StoryView, render

BASE_URL = "https://news.example.org"
NONCE = "fixed"


def fixed_stories(n: int = 3) -> tuple[StoryView, ...]:
    stories = [
        StoryView(
            "Lighthouse keepers adopt solar lanterns",
            "Coastal stations cut diesel use by two thirds in one winter.",
            (
                "The pilot ran at 14 stations; details at https://example.org/solar-report.",
                "Keepers report fewer night-time refuelling trips.",
            ),
            "https://example.org/lighthouses",
            image_url="https://images.example.org/lantern.jpg",
            image_alt="A solar lantern on a lighthouse gallery at dusk",
        ),
        StoryView(
            "City library lends out telescopes",
            "Forty telescopes, booked out for the next three months.",
            ("Each kit comes with a star map and a red torch.",),
            "https://example.org/telescopes",
            image_url="https://images.example.org/telescope.jpg",
        ),
        StoryView(
            "Übersicht: Café owners try four-day weeks",
            "Staff turnover fell; opening hours did not.",
            (),
            None,
        ),
    ]
    for i in range(3, n):
        stories.append(
            StoryView(
                f"Story number {i + 1} about a steady topic",
                "A summary long enough to wrap onto a second line in narrow columns of text.",
                (f"A bullet with a link https://example.org/{i + 1}/more.", "A second bullet."),
                f"https://example.org/story/{i + 1}",
            )
        )
    return tuple(stories[:n])


def fixed_view(n: int = 3, stories: tuple[StoryView, ...] | None = None) -> EditionView:
    return EditionView(42, datetime(2024, 5, 6, 7, 0, tzinfo=UTC), stories or fixed_stories(n))


def fixed_render(view: EditionView | None = None) -> Rendered:
    return render(
        view or fixed_view(),
        newsletter="The Digest",
        base_url=BASE_URL,
        lang="en",
        postal_address="The Digest, 1 Harbour Road, Portsmouth PO1 1AA, UK",
        nonce=NONCE,
    )


def fixed_options(**changes: object) -> MailOptions:
    values: dict[str, object] = {
        "sender": Address("The Digest", "digest", "news.example.org"),
        "base_url": BASE_URL,
        "signing_key": b"test-secret",
        "list_id": "The Digest <digest.news.example.org>",
        "unsubscribe_mailto": "unsubscribe@news.example.org",
        "feedback_id": "42:digest:news",
    }
    values.update(changes)
    return MailOptions(**values)  # type: ignore[arg-type]


def fixed_factory(view: EditionView | None = None, **changes: object) -> MessageFactory:
    return MessageFactory(fixed_render(view), edition_id=42, options=fixed_options(**changes))
