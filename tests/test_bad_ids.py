"""Random edition ids and ports given to the CLI: one line naming what is wrong, never a
traceback (the CLI runs in-process with exceptions not caught, so one fails the test)."""

from __future__ import annotations

from conftest import Cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ID_COMMANDS = (
    ("preview",),
    ("check",),
    ("status",),
    ("send", "--dry-run"),
    ("send",),
    ("pause",),
    ("resume",),
    ("cancel",),
    ("edition", "show"),
)
IDS = st.one_of(
    st.integers(min_value=0, max_value=10**30).map(str),
    st.text(alphabet="0123456789²³٣-+ .eE", min_size=1, max_size=25).filter(
        lambda t: not t.startswith("-")  # an option to click, tested below as '--'
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(command=st.sampled_from(ID_COMMANDS), ref=IDS)
def test_random_edition_ids_get_one_line_and_change_nothing(
    ready: Cli, command: tuple[str, ...], ref: str
) -> None:
    before = ready("edition", "list", "--json").output
    result = ready(*command, ref, ok=False)
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert ref.strip() in lines[0] or "edition" in lines[0]
    assert ready("edition", "list", "--json").output == before


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(port=st.one_of(st.integers(max_value=0), st.integers(min_value=65536)))
def test_out_of_range_ports_get_one_line_naming_the_port(ready: Cli, port: int) -> None:
    result = ready("serve", "--port", str(port), ok=False)
    assert result.exit_code == 2
    assert "Invalid value for '--port'" in result.output


# What an environment can hold: no NUL, no lone surrogates.
ENV_TEXT = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=ENV_TEXT.filter(lambda v: not v.strip().isdigit()))
def test_a_port_setting_that_is_not_a_port_is_named(ready: Cli, value: str) -> None:
    ready.env["PORT"] = value
    try:
        result = ready("serve", ok=False)
    finally:
        del ready.env["PORT"]
    assert result.exit_code != 0
    assert "PORT" in result.output and "Traceback" not in result.output


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(port=st.one_of(st.integers(max_value=0), st.integers(min_value=65536)))
def test_an_out_of_range_port_setting_is_named(ready: Cli, port: int) -> None:
    ready.env["PORT"] = str(port)
    try:
        result = ready("serve", ok=False)
    finally:
        del ready.env["PORT"]
    assert result.exit_code != 0
    assert result.output.strip().splitlines()[-1].startswith("Error: setting PORT")
