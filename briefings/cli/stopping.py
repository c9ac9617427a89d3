"""SIGTERM, SIGHUP and Ctrl-C for `briefings run` and `collect`: stop between two safe steps, report, exit 128+n."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import click

from briefings.cli import echo_err
from briefings.lock import LockBusy
from briefings.signals import StopRequest


@contextmanager
def stop_on_signals(ctx: click.Context) -> Iterator[StopRequest]:
    """A stop request set by SIGTERM, SIGHUP or SIGINT while the block runs (a second Ctrl-C
    interrupts at once). Stopped while waiting for the lock: exits 128+n, having done nothing."""
    with StopRequest() as stop:
        try:
            yield stop
        except LockBusy:
            if not stop():
                raise
            echo_err(f"briefings: stopped by {stop.name} while waiting for the lock: nothing was done")
            ctx.exit(stop.exit_code)


def exit_if_stopped(ctx: click.Context, stop: StopRequest, report, rest: str | None = None) -> None:
    """After the report is out: a run cut short by a signal says so (what is left: rest; None with
    --json, which prints nothing on stderr) and exits 128+n."""
    if not report.stopped:
        return
    if rest is not None:
        echo_err(f"Stopped by {stop.name}: what was done is stored; {rest}.")
    ctx.exit(stop.exit_code or 1)
