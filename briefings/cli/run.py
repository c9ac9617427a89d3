"""`briefings run`: one whole briefing, from the feeds and the reading list to the archive."""

from __future__ import annotations

import json
import sys

import click

from briefings.cli import config_option, echo_err, load_config
from briefings.cli.progress import feed_progress


def summary(report) -> str:
    """The run report as one paragraph a person reads."""
    parts = []
    if report.new_by_source:
        per_source = ", ".join(f"{n} from {s}" for s, n in sorted(report.new_by_source.items(), key=lambda kv: -kv[1]))
        parts.append(f"Collected {report.new_entries} new entries ({per_source}).")
    else:
        parts.append("Collected no new entries.")
    if report.by_theme:
        per_theme = ", ".join(f"{t} {n}" for t, n in sorted(report.by_theme.items(), key=lambda kv: (-kv[1], kv[0])))
        parts.append(f"By theme: {per_theme}.")
    parts.append(f"Left out as off-topic: {report.off_topic}.")
    failed = report.feeds_failed
    ok = sum(1 for f in report.feeds if f["status"] in ("ok", "not-modified"))
    parts.append(f"Feeds: {ok} of {len(report.feeds)} fetched, {len(failed)} failed.")
    if report.corpus_skipped:
        parts.append(f"Skipped {len(report.corpus_skipped)} unreadable document(s) in the reading list.")
    if report.briefing:
        kb = report.briefing["email_html_bytes"] / 1024
        shown = report.briefing.get("email_per_theme")
        configured = report.briefing.get("email_per_theme_configured")
        if shown and configured and shown < configured:
            parts.append(f"The e-mail HTML is {kb:.1f} KB: it shows {shown} entries per theme, not {configured},"
                         " to stay under Gmail's 102 KB clip (the web page lists them all).")
        else:
            parts.append(f"The e-mail HTML is {kb:.1f} KB.")
    return " ".join(parts)


@click.command()
@config_option
@click.option("--dry-run", is_flag=True, help="Do everything but write files and mark entries as included.")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as one JSON object on stdout.")
@click.pass_context
def run(ctx: click.Context, config_path, dry_run: bool, as_json: bool) -> None:
    """Collect, classify and write one briefing to the archive.

    Fetches every feed in config.toml and reads the reading list, stores what is
    new, groups it by norms theme and writes the briefing (HTML and text) and the
    archive index to the [output] dir. A feed that fails is reported in one line
    and the others carry on. With nothing new, no briefing is written.

    Progress and the summary go to stderr; with --json the report goes to stdout.
    SIGTERM, SIGHUP or Ctrl-C stops it at the next safe point (between two
    feeds, entries, sections or recipients; nothing half-done is stored).

    Exit status: 0 on success (even with failed feeds), 2 for a bad config,
    3 when the lock stays taken, 128 + the signal's number when stopped.
    """
    from briefings.pipeline import run_once

    from contextlib import nullcontext

    from briefings.cli.stopping import exit_if_stopped, stop_on_signals
    from briefings.lock import job_lock

    config = load_config(ctx)
    with stop_on_signals(ctx) as stop:
        # A daemon job (or another run) on the same state file: wait for it, up to [schedule] lock_wait.
        lock = nullcontext() if dry_run else job_lock(config.state).held(config.schedule.lock_wait,
                                                                             should_stop=stop)
        with lock, feed_progress(len(config.feeds), quiet=as_json) as progress:
            report = run_once(config, dry_run=dry_run, progress=progress, stop=stop)
    rest = ("the rest of the outbox is sent by the next run or `briefings send`" if report.briefing
            else "the next run collects the rest and makes the briefing")
    if as_json:
        click.echo(json.dumps(report.as_dict(), default=str, sort_keys=True))
    for skipped in report.corpus_skipped:
        if not as_json:
            echo_err(f"reading list: skipped {skipped['file']}: {skipped['reason']}")
    if as_json:
        exit_if_stopped(ctx, stop, report)
        return
    if report.nothing_new and report.written:
        # Files the stored briefings needed and did not have (a run cut short by a crash or a full disk).
        for path in report.written:
            echo_err(f"Wrote {path}")
        echo_err(f"Finished the archive ({len(report.written)} files the stored briefings were missing);"
                 " no new entries on topic, so no new briefing.")
    elif report.nothing_new:
        echo_err("Nothing new since the last briefing: no briefing written.")
    elif report.briefing:
        verb = "Would write" if dry_run else "Wrote"
        echo_err(f"{verb} {report.briefing['html']}")
        echo_err(f"{verb} {report.briefing['text']}")
    if report.delivery is not None:
        from briefings.cli.outbox import delivery_lines

        for line in delivery_lines(report.delivery):
            echo_err(line)
    echo_err(summary(report))
    sys.stderr.flush()
    exit_if_stopped(ctx, stop, report, rest)
