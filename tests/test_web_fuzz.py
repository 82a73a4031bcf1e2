"""Fuzz the operator API from its OpenAPI document (schemathesis): no input gets a 5xx."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Captured, Cli
from hypothesis import HealthCheck, given, settings
from subscriber_web import web_app
from web_operator import with_stories

MAX_EXAMPLES = 25  # per operation, derandomized: the same cases every run


def test_api_fuzzed_from_openapi_never_answers_5xx(
    ready: Cli, captured: Captured, tmp_path: Any
) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    # Enough readers that fuzzed unsubscribes and erasures leave someone to send to.
    with_stories(ready, *(f"reader{i}@example.com" for i in range(40)))
    ready("edition", "build")
    # schemathesis calls the app as Host "testserver": let it be one the app serves.
    with web_app(ready, allowed_hosts="testserver") as web:
        schema = schemathesis.openapi.from_asgi("/api/openapi.json", web.client.app)
        failures: list[str] = []
        operations = 0
        seen: list[int] = []
        for result in schema.get_all_operations():
            operation = result.ok()
            if not operation.path.startswith("/api/"):
                continue  # subscriber pages are tested on their own (tests/test_web_subscribe)
            operations += 1

            @settings(
                max_examples=MAX_EXAMPLES,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy())
            def run(case: Any) -> None:
                response = case.call()
                seen.append(response.status_code)
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

            run()
    assert operations >= 12
    assert failures == []
    # The fuzzer reached the success paths too, not only refusals (erasing, 204, depends
    # on it drawing a small id; tests/test_web_api.py erases on purpose).
    assert len(seen) >= 10 * operations and {200, 201, 202} <= set(seen)
