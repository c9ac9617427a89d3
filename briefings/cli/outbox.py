"""`briefings outbox` and `briefings send`: what is owed to whom, and sending it."""

from __future__ import annotations

import json
from datetime import datetime

import click

from briefings.cli import config_option, echo_err, load_config


@click.command()
@config_option
@click.option("--all", "show_all", is_flag=True, help="Also list deliveries already sent or skipped.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per delivery on stdout.")
@click.pass_context
def outbox(ctx: click.Context, config_path, show_all: bool, as_json: bool) -> None:
    """List pending and failed deliveries: briefing, destination, status, tries, last error, next try.

    Every briefing owes each recipient and each webhook one message from the
    moment it is stored (a webhook is listed as webhook:NAME). `briefings send` (or the next `briefings run`, or the daemon) sends
    what is pending; a failed delivery stays listed here with the server's reply.
    """
    from briefings.store import Store

    config = load_config(ctx)
    with Store.open(config.state) as store:
        rows = store.outbox.list(None if show_all else ("pending", "failed"))
    if as_json:
        for row in rows:
            click.echo(json.dumps({k: getattr(row, k) for k in ("slug", "channel", "recipient", "status", "attempts",
                                                                 "last_error", "next_try", "sent_at", "message_id")},
                                  default=datetime.isoformat))
        return
    if not rows:
        echo_err("The outbox is empty: nothing pending or failed.")
        return
    for row in rows:
        to = row.recipient if row.channel == "email" else f"{row.channel}:{row.recipient}"
        line = f"{row.slug}  {to:<32}  {row.status:<8}  tries {row.attempts}"
        if row.status == "pending" and row.next_try:
            line += f"  next try {row.next_try:%Y-%m-%d %H:%M} UTC"
        if row.status == "sent" and row.sent_at:
            line += f"  sent {row.sent_at:%Y-%m-%d %H:%M} UTC"
        click.echo(line)
        if row.last_error and row.status != "sent":
            click.echo(f"    {row.last_error}")


@click.command()
@config_option
@click.option("--now", "ignore_wait", is_flag=True, help="Also retry deliveries still waiting out their backoff.")
@click.option("--json", "as_json", is_flag=True, help="Print what was sent, retried and failed as JSON.")
@click.pass_context
def send(ctx: click.Context, config_path, ignore_wait: bool, as_json: bool) -> None:
    """Send the pending deliveries of every briefing in the outbox: e-mail over one SMTP connection, webhooks.

    Each delivery's outcome is recorded the moment the server answers: run it
    again after a crash or a refusal and only what is still owed is sent. A
    server that cannot be reached is one line and one retry for all; a fault of
    the configuration (certificate, ca_file, login) stops at once, naming it.
    Says how many deliveries wait for a retry and when the next is. Exit
    status 1 when something could not be sent, 0 otherwise.
    """
    from briefings.pipeline import send_outbox
    from briefings.store import Store

    from contextlib import nullcontext

    from briefings.lock import job_lock

    config = load_config(ctx)
    # On PostgreSQL each send claims the deliveries it sends, so any number run at once, beside any job.
    lock = nullcontext() if config.state.postgres else job_lock(config.state).held(config.schedule.lock_wait)
    with lock, Store.open(config.state) as store:
        report = send_outbox(config, store, ignore_wait=ignore_wait)
    if as_json:
        click.echo(json.dumps(report.as_dict(), default=str))
    else:
        for line in delivery_lines(report.as_dict()):
            echo_err(line)
    if report.error or report.retrying or report.failed:
        ctx.exit(1)


def delivery_lines(delivery: dict) -> list[str]:
    lines = []
    errors = delivery.get("errors") or ([{"channel": "email", "error": delivery["error"]}] if delivery.get("error") else [])
    for item in errors:
        lines.append(f"{_NOUN.get(item['channel'], item['channel'])}: {item['error']}")
    if delivery.get("unreachable"):
        down = delivery["unreachable"]
        noun = _NOUN.get(down.get("channel", "email"), "e-mail")
        lines.append(f"{noun}: {down['error']}; {_deliveries(down['deliveries'])} not sent, one retry for all")
    for item in delivery.get("retrying", []):
        lines.append(f"{_to(item)}: {item['error']}; will retry after {_when(item['next_try'])} UTC")
    for item in delivery.get("failed", []):
        lines.append(f"{_to(item)} FAILED: {item['error']} (see `briefings outbox`)")
    channels = delivery.get("channels") or {}
    problems = bool(lines)
    if "email" in channels or not channels:
        sent = channels.get("email", delivery.get("sent", []) if not channels else [])
        lines.append(f"E-mailed {len(sent)} recipient(s)." if sent or not problems else "E-mailed no one.")
    if "webhook" in channels:
        posted = channels["webhook"]
        lines.append(f"Posted to {len(posted)} webhook(s)." if posted or not problems else "Posted to no webhook.")
    if delivery.get("waiting"):
        lines.append(f"{_deliveries(delivery['waiting'])} waiting for a retry, next at {_when(delivery['next_try'], short=True)} UTC.")
    return lines


_NOUN = {"email": "e-mail", "webhook": "webhook"}


def _to(item: dict) -> str:
    """e-mail to ana@example.org; webhook Desk."""
    channel = item.get("channel", "email")
    return f"e-mail to {item['recipient']}" if channel == "email" else f"{_NOUN.get(channel, channel)} {item['recipient']}"


def _deliveries(count: int) -> str:
    return f"{count} delivery" if count == 1 else f"{count} deliveries"


def _when(value, *, short: bool = False) -> str:
    """A retry time in UTC: HH:MM when it is today (short), else with the date."""
    from datetime import datetime, timezone

    if not hasattr(value, "strftime"):
        value = datetime.fromisoformat(str(value))
    value = value.astimezone(timezone.utc)
    if short and value.date() == datetime.now(timezone.utc).date():
        return value.strftime("%H:%M")
    return value.strftime("%Y-%m-%d %H:%M")
