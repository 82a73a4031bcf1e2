"""Commands that send and report on sending."""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING

import click

from digest.cli.app import App, emit_json, pass_app
from digest.cli.progressbar import ProgressBar
from digest.core.errors import DigestError
from digest.core.status import DeliveryState

if TYPE_CHECKING:
    from digest.delivery.manager import SendSummary


def run_send(
    app: App,
    ref: str,
    echo: bool = True,
    force: bool = False,
    retry: DeliveryState | None = None,
) -> SendSummary:
    """Send edition ``ref`` over the configured transport (DIGEST_SMTP_URL), with a progress bar."""
    from digest.delivery import service
    from digest.processes import queue
    from digest.transports.factory import open_transport

    settings = app.settings
    if queue.enabled(settings):
        return _defer(app, ref, echo, force, retry)
    transport = open_transport(settings)
    stop = threading.Event()
    previous = signal.getsignal(signal.SIGTERM)
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        with ProgressBar() as bar:
            summary = service.send_edition(
                settings,
                app.factory,
                ref,
                transport,
                on_start=lambda edition_id, pending: bar.start(f"edition {edition_id}", pending),
                on_sent=bar.advance,
                stop=stop,
                force=force,
                retry=retry,
            )
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    if echo:
        click.echo(describe(summary))
        for address, problem in summary.failures[:20]:
            click.echo(f"  {address}: {problem}", err=True)
    return summary


def _defer(app: App, ref: str, echo: bool, force: bool, retry: DeliveryState | None) -> SendSummary:
    """Open the ledger and hand the sending to `digest worker` processes as chunk tasks."""
    from digest.delivery.manager import SendSummary
    from digest.processes.queue import defer_send

    edition_id, pending, tasks = defer_send(app.settings, app.factory, ref, force, retry)
    if echo:
        click.echo(
            f"edition {edition_id}: {pending} deliveries pending; deferred {tasks} chunk tasks"
            f" for `digest worker` (DIGEST_QUEUE=procrastinate); `digest status {edition_id}`"
            " shows progress"
        )
    return SendSummary(edition_id, total=pending, status="running")


def describe(s: SendSummary) -> str:
    if s.attempted == 0:
        text = (
            f"edition {s.edition_id}: nothing new to send "
            f"({s.already_done} of {s.total} deliveries already done)"
        )
    else:
        rate = s.attempted / s.elapsed if s.elapsed > 0 else 0.0
        text = (
            f"edition {s.edition_id}: sent {s.sent}, failed {s.failed}, unknown {s.unknown}"
            f" ({s.already_done} done before) in {s.elapsed:.1f}s, {rate:.0f} msg/s"
        )
    if s.recovered_unknown:
        text += f"; {s.recovered_unknown} left in flight by a stopped sender are now unknown"
    if s.bounced:
        text += f"; {s.bounced} subscribers marked bounced"
    if s.held_back:
        text += f"; {s.held_back}"
    if s.unknown_held:
        text += (
            f"; {s.unknown_held} deliveries of unknown outcome (the server may have"
            f" accepted them): check, then `digest send {s.edition_id} --retry unknown`"
        )
    if s.skipped_nothing_new or s.skipped_not_due:
        text += (
            f"; no digest for {s.skipped_nothing_new} subscribers with nothing new,"
            f" {s.skipped_not_due} weekly readers not due"
        )
    if s.status in ("paused", "cancelled", "running"):
        text += f"; edition is {s.status}"
    return text


@click.command()
@click.argument("ref", default="latest")
@click.option(
    "--now", "now", is_flag=True, help="Build an edition from the new stories and send it."
)
@click.option("--to", "to", metavar="EMAIL", help="Send a test to this one address; no ledger.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="List exactly whom this send would mail, and what; send nothing, store nothing.",
)
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print JSON.")
@click.option("--force", is_flag=True, help="Send even if the pre-send check finds problems.")
@click.option(
    "--retry",
    type=click.Choice(["failed", "unknown"]),
    help="First put the edition's failed (or unknown) deliveries back to pending; "
    "they are resent with the same Message-ID.",
)
@pass_app
def send(
    app: App,
    ref: str,
    now: bool,
    to: str | None,
    dry_run: bool,
    as_json: bool,
    force: bool,
    retry: str | None,
) -> None:
    """Send an edition (REF: an id or 'latest') to every active subscriber.

    --now builds an edition from the new stories first and sends it (nothing
    new: nothing is sent). --to EMAIL sends REF (or 'next') to one address
    as a test and records nothing. --dry-run lists exactly whom the same
    command would mail (with --force and --retry as given) and sends
    nothing; it refuses where the send would refuse.

    The edition is checked first (see `digest check`); on problems nothing is
    sent unless --force. One message per subscriber, recorded in the delivery
    ledger: sending the same edition again sends nothing new (it resumes an
    interrupted send). A message whose outcome is unknown (the sender died
    after handing it over) is only resent with --retry unknown. SIGTERM or
    Ctrl-C stops between messages. Exits with status 1 if any message of
    this run failed, or while any delivery of the edition is of unknown
    outcome (the report says how many, and how to retry them). --to test
    messages get a fresh Message-ID each time.
    """
    from digest.core.db import transaction
    from digest.delivery import manual
    from digest.editions import assemble
    from digest.transports.factory import open_transport

    if now and ref != "latest":
        raise click.UsageError("--now builds a new edition: give no REF with it")
    if to is not None:
        message_id = manual.test_send(
            app.settings, app.factory, ref, to, open_transport(app.settings)
        )
        click.echo(f"test message {message_id} sent to {to} (not recorded in the ledger)")
        return
    if dry_run:
        _print_dry_run(app, ref, now, as_json, force, DeliveryState(retry) if retry else None)
        return
    if now:
        with transaction(app.factory) as s:
            built = assemble.build(s)
            ref = str(built.id) if built else ""
            latest = None if built else assemble.latest_id(s)
            status = assemble.get(s, str(latest)).status.value if latest else ""
        if not ref:
            click.echo("no new stories: nothing to send")
            if status in ("running", "paused"):
                click.echo(
                    f"edition {latest} is {status} and not finished;"
                    f" `digest send {latest}` resumes it"
                )
            return
        click.echo(f"built edition {ref}")
    try:
        summary = run_send(app, ref, force=force, retry=DeliveryState(retry) if retry else None)
    except DigestError as exc:
        if not now:
            raise
        raise DigestError(f"{exc}\nedition {ref} was built; `digest send {ref}` resumes") from None
    if now and summary.status in ("running", "paused"):
        click.echo(f"edition {ref} is not finished; `digest send {ref}` resumes it")
    if summary.failed or summary.unknown_held:  # held counts this run's unknown too
        raise SystemExit(1)


def _print_dry_run(
    app: App, ref: str, now: bool, as_json: bool, force: bool, retry: DeliveryState | None
) -> None:
    from digest.delivery.readers import dry_run

    plan = dry_run(app.settings, app.factory, "next" if now else ref, force, retry)
    if as_json:
        emit_json(
            {
                "edition": plan.edition,
                "subject": plan.subject,
                "size": plan.size,
                "stories": plan.stories,
                "already_done": plan.already_done,
                "skipped_nothing_new": plan.skipped_nothing_new,
                "skipped_not_due": plan.skipped_not_due,
                "recipients": [
                    {
                        "email": r.email,
                        "name": r.name,
                        "subject": r.subject,
                        "stories": list(r.headlines),
                    }
                    for r in plan.recipients
                ],
            }
        )
        return
    click.echo(
        f"dry run, nothing sent: edition {plan.edition}, {plan.stories} stories,"
        f" subject {plan.subject!r}, about {plan.size / 1024:.0f} KB per message"
    )
    for r in plan.recipients:
        who = r.email + (f" ({r.name})" if r.name else "")
        count = f"{len(r.headlines)} {'story' if len(r.headlines) == 1 else 'stories'}"
        click.echo(f"  would send to {who}: {count}, subject {r.subject!r}")
        for headline in r.headlines:
            click.echo(f"    - {headline}")
    click.echo(
        f"{len(plan.recipients)} recipients; {plan.already_done} already done for this edition"
    )
    if plan.skipped_nothing_new or plan.skipped_not_due:
        click.echo(
            f"no digest for {plan.skipped_nothing_new} subscribers with nothing new,"
            f" {plan.skipped_not_due} weekly readers not due"
        )


def _change(app: App, ref: str, action: str) -> tuple[int, int]:
    from digest.delivery.service import change_edition

    return change_edition(app.factory, ref, action)


@click.command()
@click.argument("ref")
@pass_app
def pause(app: App, ref: str) -> None:
    """Pause a running send; running senders stop within a second or two."""
    edition_id, _ = _change(app, ref, "pause")
    click.echo(f"edition {edition_id}: paused (`digest resume {edition_id}` carries on)")


@click.command()
@click.argument("ref")
@pass_app
def resume(app: App, ref: str) -> None:
    """Resume a paused edition; run `digest send ID` (or a worker) to send the rest."""
    edition_id, _ = _change(app, ref, "resume")
    click.echo(f"edition {edition_id}: running again; `digest send {edition_id}` sends the rest")


@click.command()
@click.argument("ref")
@pass_app
def cancel(app: App, ref: str) -> None:
    """Cancel an edition for good; deliveries not yet sent are skipped."""
    edition_id, skipped = _change(app, ref, "cancel")
    click.echo(f"edition {edition_id}: cancelled; {skipped} deliveries skipped")


@click.command()
@click.argument("ref", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def status(app: App, ref: str | None, as_json: bool) -> None:
    """Show an edition's status, its deliveries by state, rate, ETA and last errors.

    With no REF: the schedule (next slot, last run of each clock job and its
    outcome) and the latest edition.
    """
    from digest.delivery.report import forced_line, returned_line, skipped_line, status_report
    from digest.editions import assemble
    from digest.processes.clock import describe_schedule

    schedule = None if ref else describe_schedule(app.settings, app.factory)
    with app.factory() as s:
        has_editions = ref is not None or assemble.latest_id(s) is not None
        edition = assemble.get(s, ref or "latest") if has_editions else None
        limit = app.settings.hourly_limit
        data = status_report(s, edition, hourly_limit=limit) if edition else None
    if as_json:
        emit_json(data if schedule is None else {"schedule": schedule, "edition": data})
        return
    if schedule is not None:
        click.echo(
            f"schedule {schedule['schedule']!r} in {schedule['timezone']};"
            f" next slot {schedule['next_slot']}"
        )
        for job, run in schedule["last_runs"].items():
            detail = f": {run['detail']}" if run["detail"] else ""
            click.echo(
                f"  last {job} run {run['ran_at']} ({run['slot']}): {run['outcome']}{detail}"
            )
        if not schedule["last_runs"]:
            click.echo("  the clock has not run yet")
    if data is None:
        click.echo("no editions yet")
        return
    shown = ", ".join(f"{k} {v}" for k, v in data["deliveries"].items() if v) or "none yet"
    line = f"edition {data['id']}: {data['status']}; deliveries: {shown}"
    if data["rate"]:
        line += f"; {data['rate']:.0f} msg/s"
    if data["eta_seconds"] is not None:
        line += f", about {data['eta_seconds']:.0f}s to go"
    click.echo(line)
    if data.get("waiting"):
        click.echo(f"  waiting: {data['waiting']}")
    if data["variants"] > 1:
        click.echo(f"  {data['variants']} variants (story subsets), each rendered once")
    for extra in (skipped_line(data), returned_line(data)):
        if extra:
            click.echo(f"  {extra}")
    forced = forced_line(data)
    if forced:
        click.echo(f"  {forced}")
    for err in data["last_errors"]:
        click.echo(f"  {err['email']} ({err['state']}): {err['error']}")


COMMANDS = [send, status, pause, resume, cancel]
