"""`briefings recipients`: who gets the briefing, and who unsubscribed."""

from __future__ import annotations

import json

import click

from briefings.cli import config_option, echo_err, load_config


@click.group()
def recipients() -> None:
    """The recipients in config.toml, and the ones who unsubscribed (kept in the state file)."""


@recipients.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per recipient on stdout.")
@click.pass_context
def list_recipients(ctx: click.Context, config_path, as_json: bool) -> None:
    """Every recipient in config.toml with their state: subscribed, or unsubscribed (when and how).

    Addresses that unsubscribed but are no longer in config.toml are listed too.
    An unsubscribed recipient gets nothing from the next delivery on, until
    `briefings recipients resubscribe EMAIL`; config.toml is never rewritten for it.
    """
    from briefings.store import Store

    config = load_config(ctx)
    with Store.open(config.state) as store:
        gone = {row["email"].lower(): row for row in store.suppressions.all()}
    rows = []
    for recipient in config.recipients:
        row = gone.pop(recipient.email.lower(), None)
        rows.append({"email": recipient.email, "name": recipient.name, "themes": list(recipient.themes),
                     "state": "unsubscribed" if row else "subscribed", "in_config": True,
                     "since": row["created"] if row else None, "via": row["via"] if row else None})
    for row in gone.values():
        rows.append({"email": row["email"], "name": "", "themes": [], "state": "unsubscribed", "in_config": False,
                     "since": row["created"], "via": row["via"]})
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    if not rows:
        echo_err("No recipients: add [[recipients]] tables to config.toml.")
        return
    for row in rows:
        line = f"{row['email']:<36}  {row['state']:<12}"
        if row["since"]:
            line += f"  since {row['since'][:16].replace('T', ' ')} UTC ({row['via']})"
        if not row["in_config"]:
            line += "  not in config.toml"
        elif row["themes"]:
            line += "  themes: " + ", ".join(row["themes"])
        click.echo(line)


@recipients.command("resubscribe")
@config_option
@click.argument("email")
@click.pass_context
def resubscribe(ctx: click.Context, config_path, email: str) -> None:
    """Put a recipient who unsubscribed back on the list: they get the next briefing again.

    Deliveries skipped while they were unsubscribed are not sent again.
    """
    from briefings.errors import BriefingsError
    from briefings.store import Store

    config = load_config(ctx)
    with Store.open(config.state) as store:
        restored = store.suppressions.remove(email)
    if not restored:
        raise BriefingsError(f"{email} has not unsubscribed", "`briefings recipients list` shows who has")
    listed = any(r.email.lower() == email.strip().lower() for r in config.recipients)
    echo_err(f"{email} is subscribed again" + ("." if listed else
             ", but is not in config.toml: add a [[recipients]] table for them to get briefings."))
