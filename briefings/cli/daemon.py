"""`briefings daemon`: the scheduled loop; `--dry-run` shows what it would do."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from briefings.cli import config_option, load_config
from briefings.clock import utcnow

LEVELS = ["debug", "info", "warning", "error"]


@click.command()
@config_option
@click.option("--dry-run", is_flag=True, help="Print the next ten planned jobs (and whether a catch-up is owed), then exit.")
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Append the log to this file instead of stderr.")
@click.option("--log-level", type=click.Choice(LEVELS), default="info", show_default=True,
              help="Least severe messages logged.")
@click.pass_context
def daemon(ctx: click.Context, config_path, dry_run: bool, log_file: Path | None, log_level: str) -> None:
    """Run on the [schedule] in config.toml until stopped: collect every so often, make and send briefings on time.

    \b
    Times are in [schedule] timezone, right across daylight-saving changes:
      [schedule]
      timezone = "Europe/Brussels"
      collect = "every 30 minutes"
      briefing = ["monday 08:00"]      # or "daily 07:30", "weekdays 09:00", "mon,thu 08:00"
      catch_up = true

    A briefing that fell due while the daemon was down is made once at start
    (catch_up). Jobs never overlap; a job that fails is logged and tried again
    later, with a growing wait. One daemon per state file: a second one exits
    with status 3. SIGTERM or SIGINT stops it cleanly (exit 0); SIGHUP reloads
    config.toml, keeping the old one if the new one is broken. The log has one
    line per job, with its duration and counts, and a heartbeat.
    """
    from briefings.daemon import Daemon, catch_up_due, dry_run_plan, next_briefing

    config = load_config(ctx)
    if dry_run:
        from briefings import timetable

        tz = timetable.zone(config.schedule.timezone)
        now = utcnow()
        click.echo(f"Next jobs (time zone {config.schedule.timezone}):")
        jobs = dry_run_plan(config, now)
        if not any(name == "briefing" for _, name in jobs):
            jobs.append((next_briefing(config, now), "briefing"))
        for i, (when, name) in enumerate(jobs):
            local = when.astimezone(tz)
            if i == 10:
                click.echo("  ...")
            click.echo(f"  {local:%a %Y-%m-%d %H:%M:%S %Z}  {name:<9} ({when:%Y-%m-%d %H:%M:%S} UTC)")
        if config.schedule.catch_up:
            owed = catch_up_due(config, now)
            click.echo(f"At start: a catch-up briefing, because {owed}." if owed else "At start: no catch-up owed.")
        return
    handler: logging.Handler = logging.FileHandler(log_file, encoding="utf-8") if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger("briefings")
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, log_level.upper()))
    root.propagate = False
    logging.captureWarnings(False)
    path = config_path or ctx.find_root().obj.get("config_path")
    ctx.exit(Daemon(config_path=Path(path), config=config).run())
