"""Commands that send and report on sending."""

from __future__ import annotations

from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeRemainingColumn

from digest import delivery, editions
from digest.cli import App, emit_json, on_terminal, pass_app
from digest.delivery import SendSummary
from digest.smtp import SmtpTransport, parse_smtp_url
from digest.status import DeliveryState


class ProgressBar:
    """A rich progress bar on a terminal; silent otherwise."""

    def __init__(self) -> None:
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ProgressBar:
        if on_terminal():
            self._bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
            )
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def start(self, label: str, total: int) -> None:
        if self._bar is not None:
            self._task = self._bar.add_task(label, total=total)

    def advance(self, n: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, n)


def run_send(app: App, ref: str, echo: bool = True, force: bool = False) -> SendSummary:
    """Send edition ``ref`` over the configured SMTP server, with a progress bar."""
    settings = app.settings
    transport = SmtpTransport(parse_smtp_url(settings.smtp_url), timeout=settings.smtp_timeout)
    with ProgressBar() as bar:
        summary = delivery.send_edition(
            settings,
            app.factory,
            ref,
            transport,
            on_start=lambda edition_id, pending: bar.start(f"edition {edition_id}", pending),
            progress=bar.advance,
            force=force,
        )
    if echo:
        click.echo(describe(summary))
        for address, problem in summary.failures[:20]:
            click.echo(f"  {address}: {problem}", err=True)
    return summary


def describe(s: SendSummary) -> str:
    if s.attempted == 0:
        return (
            f"edition {s.edition_id}: nothing new to send "
            f"({s.already_done} of {s.total} deliveries already done)"
        )
    rate = s.attempted / s.elapsed if s.elapsed > 0 else 0.0
    return (
        f"edition {s.edition_id}: sent {s.sent}, failed {s.failed}, unknown {s.unknown}"
        f" ({s.already_done} done before) in {s.elapsed:.1f}s, {rate:.0f} msg/s"
    )


@click.command()
@click.argument("ref", default="latest")
@click.option("--force", is_flag=True, help="Send even if the pre-send check finds problems.")
@pass_app
def send(app: App, ref: str, force: bool) -> None:
    """Send an edition (REF: an id or 'latest') to every active subscriber.

    The edition is checked first (see `digest check`); on problems nothing is
    sent unless --force. One message per subscriber, recorded in the delivery
    ledger: sending the same edition again sends nothing new (it resumes an
    interrupted send). Exits with status 1 if any message failed or its
    outcome is unknown.
    """
    summary = run_send(app, ref, force=force)
    if summary.failed or summary.unknown:
        raise SystemExit(1)


@click.command()
@click.argument("ref", default="latest")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def status(app: App, ref: str, as_json: bool) -> None:
    """Show an edition's status and its deliveries by state."""
    with app.factory() as s:
        e = editions.get(s, ref)
        counts = delivery.ledger_counts(s, e.id)
        data: dict[str, Any] = {
            "id": e.id,
            "status": e.status.value,
            "started_at": e.started_at.isoformat() if e.started_at else None,
            "finished_at": e.finished_at.isoformat() if e.finished_at else None,
            "deliveries": {state.value: counts.get(state, 0) for state in DeliveryState},
        }
    if as_json:
        emit_json(data)
        return
    shown = ", ".join(f"{k} {v}" for k, v in data["deliveries"].items() if v) or "none yet"
    click.echo(f"edition {data['id']}: {data['status']}; deliveries: {shown}")


COMMANDS = [send, status]
