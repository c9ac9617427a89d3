"""`briefings collect`: the collect stage alone."""

from __future__ import annotations

import json

import click

from briefings.cli import config_option, echo_err, load_config
from briefings.cli.progress import feed_progress


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object on stdout, and nothing else.")
@click.pass_context
def collect(ctx: click.Context, config_path, as_json: bool) -> None:
    """Fetch the feeds and read the reading list; store what is new.

    Nothing is classified or written to the archive: the next `briefings run`
    (or the daemon) makes the briefing from what this stored. Feeds that answer
    304 Not Modified cost no parse; failing feeds back off. On a terminal a
    progress bar shows on stderr; each feed problem gets one line.

    SIGTERM, SIGHUP or Ctrl-C stops it between two feeds (what was fetched is
    stored); it then exits 128 + the signal's number.
    """
    from briefings.pipeline import collect_once

    from briefings.cli.stopping import exit_if_stopped, stop_on_signals
    from briefings.lock import job_lock

    config = load_config(ctx)
    with stop_on_signals(ctx) as stop, job_lock(config.state).held(config.schedule.lock_wait, should_stop=stop), \
            feed_progress(len(config.feeds), quiet=as_json) as progress:
        report = collect_once(config, progress=progress, stop=stop)
    if as_json:
        click.echo(json.dumps(report.as_dict(), default=str, sort_keys=True))
        exit_if_stopped(ctx, stop, report)
        return
    for skipped in report.corpus_skipped:
        echo_err(f"reading list: skipped {skipped['file']}: {skipped['reason']}")
    ok = sum(1 for f in report.feeds if f["status"] in ("ok", "not-modified"))
    unchanged = sum(1 for f in report.feeds if f["status"] == "not-modified")
    echo_err(
        f"Collected {report.new_entries} new entries. Feeds: {ok} of {len(report.feeds)} fetched"
        f" ({unchanged} unchanged), {len(report.feeds_failed)} failed."
    )
    exit_if_stopped(ctx, stop, report, "the other feeds are fetched next time")
