"""`briefings state copy`: move the state between SQLite and PostgreSQL."""

from __future__ import annotations

import click

from briefings.cli import config_option, echo_err, load_config


@click.group()
def state() -> None:
    """The state: feeds, entries, briefings and the outbox, in SQLite or PostgreSQL."""


@state.command("copy")
@config_option
@click.option("--to", "target", required=True, metavar="URL|FILE",
              help="postgresql://user@host/db (an empty database), or an SQLite file that does not exist yet.")
@click.option("--password-env", default="", metavar="NAME",
              help="Environment variable holding the target PostgreSQL password (else PGPASSWORD or ~/.pgpass).")
@click.pass_context
def copy(ctx: click.Context, config_path, target: str, password_env: str) -> None:
    """Copy the configured state into an empty PostgreSQL database or a new SQLite file, checked by counts.

    The configured state is read and left as it is; hold the job lock (stop the
    daemon) while it runs. Then set [state] url (or path) to the target.
    """
    from pathlib import Path

    from briefings.errors import StoreError
    from briefings.lock import job_lock
    from briefings.store import Store, is_url
    from briefings.store.copy import copy_state

    config = load_config(ctx)
    if not is_url(target):
        path = Path(target).expanduser().resolve()
        if path.exists():
            raise StoreError(f"{path}: exists already", "copy into a file that does not exist yet")
        target = str(path)
    with job_lock(config.state).held(config.schedule.lock_wait), Store.open(config.state) as source:
        with Store(target if is_url(target) else Path(target), password_env=password_env) as into:
            copied = copy_state(source, into)
            version = into.version
    click.echo(f"copied {config.state.where} to {into.where} (schema version {version})")
    for table, count in copied.items():
        click.echo(f"  {table:<17} {count}")
    echo_err("every table holds as many rows as the source: set [state] "
             + ("url" if is_url(target) else "path") + " to it to use it")

