"""Time rules shared by every stage: the current time, and the wait after failures in a row."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


def utcnow() -> datetime:
    """Now, timezone-aware UTC, to the second (as the store keeps times)."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def backoff(failures: int, base: timedelta, cap: timedelta) -> timedelta:
    """The wait after ``failures`` in a row: base after the first, doubled with each more, at most cap.

    The feed health, the outbox and the daemon's job retries all wait by this rule.
    """
    if failures < 1:
        return timedelta(0)
    seconds = base.total_seconds() * 2.0 ** min(failures - 1, 64)
    return cap if seconds >= cap.total_seconds() else timedelta(seconds=seconds)
