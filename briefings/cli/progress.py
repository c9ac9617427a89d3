"""What the collect stage shows while it runs: a progress bar, then one line per feed problem."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

import click

from briefings.models import FAILED, FeedLine, FeedResult


def feed_line(feed: FeedLine) -> str | None:
    """The one line a feed's result deserves, or None when there is nothing to say."""
    if feed["status"] in FAILED:
        return f"feed {feed['name']}: {feed['error']}"
    if feed["status"] == "skipped":
        return f"feed {feed['name']}: skipped, {feed['error']}"
    if feed.get("moved_to"):
        return f"feed {feed['name']}: moved permanently to {feed['moved_to']} (saved)"
    if feed.get("warning"):
        return f"feed {feed['name']}: {feed['warning']}"
    return None


def result_line(result: FeedResult) -> str | None:
    return feed_line(
        {"name": result.name, "status": result.status, "error": result.error,
         "moved_to": result.new_url, "warning": result.warning}
    )


@contextmanager
def feed_progress(total: int, *, quiet: bool = False) -> Iterator:
    """A progress callback for the collect stage.

    On a terminal: a bar on stderr while feeds are fetched, and the problem lines
    after it. Elsewhere (a pipe, a log, cron): only the problem lines, as they come.
    Quiet (--json, the daemon): nothing.
    """
    lines: list[str] = []
    bar = None
    if not quiet and total and sys.stderr.isatty():
        bar = click.progressbar(length=total, label="Fetching feeds", file=sys.stderr, show_pos=True, width=30)
        bar.__enter__()

    def progress(result) -> None:
        line = None if quiet else result_line(result)
        if bar is not None:
            bar.update(1)
            if line:
                lines.append(line)
        elif line:
            click.echo(line, err=True)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
        for line in lines:
            click.echo(line, err=True)
