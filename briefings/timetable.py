"""When the daemon's jobs run: "every 30 minutes", "monday 08:00", "daily 07:30".

Pure functions over aware datetimes. Times of day are in the configured IANA time
zone and stay right across daylight-saving changes: "monday 08:00" in
Europe/Brussels is 07:00 UTC in winter and 06:00 UTC in summer. A time that does
not exist on a spring-forward day (02:30) runs an hour on (03:30); a time that
happens twice on a fall-back day runs once, at its first occurrence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = {
    "monday": 0, "mon": 0, "tuesday": 1, "tue": 1, "tues": 1, "wednesday": 2, "wed": 2, "thursday": 3, "thu": 3,
    "thurs": 3, "friday": 4, "fri": 4, "saturday": 5, "sat": 5, "sunday": 6, "sun": 6,
}
GROUPS = {"daily": range(7), "day": range(7), "weekdays": range(5), "weekday": range(5), "weekends": (5, 6),
          "weekend": (5, 6)}
UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
_INTERVAL = re.compile(r"^every\s+(?:(\d+(?:\.\d+)?)\s+)?(second|minute|hour|day|week)s?$")
_AT = re.compile(r"^(?:every\s+)?([a-z,\s]+?)\s+(?:at\s+)?(\d{1,2}):(\d{2})(?::(\d{2}))?$")

EXAMPLES = '"every 30 minutes", "monday 08:00", "daily 07:30", "weekdays 09:00", "mon,thu 08:00"'


class SpecError(ValueError):
    """A schedule entry that cannot be read; the message says what is expected."""


@dataclass(frozen=True)
class Spec:
    """One schedule entry: an interval, or days of the week at a time of day."""

    text: str
    interval: timedelta | None = None
    days: frozenset[int] = frozenset()
    at: time | None = None

    def next_after(self, moment: datetime, tz: ZoneInfo) -> datetime:
        """The first run strictly after moment (aware), in UTC."""
        if self.interval is not None:
            return (moment + self.interval).astimezone(timezone.utc)
        local = moment.astimezone(tz)
        for offset in range(0, 9):
            candidate = self._on(local.date() + timedelta(days=offset), tz)
            if candidate is not None and candidate > moment:
                return candidate
        raise AssertionError("a weekly schedule always runs within 8 days")  # pragma: no cover

    def last_at_or_before(self, moment: datetime, tz: ZoneInfo) -> datetime | None:
        """The most recent run due at or before moment, in UTC; None for an interval."""
        if self.interval is not None:
            return None
        local = moment.astimezone(tz)
        for offset in range(0, 9):
            candidate = self._on(local.date() - timedelta(days=offset), tz)
            if candidate is not None and candidate <= moment:
                return candidate
        return None  # pragma: no cover

    def _on(self, day: date, tz: ZoneInfo) -> datetime | None:
        if day.weekday() not in self.days or self.at is None:
            return None
        # fold=0: a wall time that happens twice (autumn) means its first occurrence; one
        # that never happens (spring) is read with the offset before the change, an hour on.
        return datetime.combine(day, self.at, tzinfo=tz).astimezone(timezone.utc)


def parse(text: str) -> Spec:
    """A Spec from its text; SpecError names what was wrong and gives examples."""
    cleaned = " ".join(str(text).lower().split())
    m = _INTERVAL.match(cleaned)
    if m:
        count = float(m.group(1) or 1)
        seconds = count * UNITS[m.group(2)]
        if seconds < 1:
            raise SpecError(f"{text!r}: an interval must be at least 1 second")
        return Spec(text=text, interval=timedelta(seconds=seconds))
    m = _AT.match(cleaned)
    if not m:
        raise SpecError(f"{text!r} is not a schedule: write an interval or days and a time, e.g. {EXAMPLES}")
    days: set[int] = set()
    for word in re.split(r"[,\s]+", m.group(1).strip()):
        if word in ("and", ""):
            continue
        if word in DAYS:
            days.add(DAYS[word])
        elif word in GROUPS:
            days.update(GROUPS[word])
        else:
            raise SpecError(f"{text!r}: unknown day {word!r} (monday..sunday, daily, weekdays, weekends)")
    hour, minute, second = int(m.group(2)), int(m.group(3)), int(m.group(4) or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise SpecError(f"{text!r}: {m.group(2)}:{m.group(3)} is not a time of day (00:00 to 23:59)")
    return Spec(text=text, days=frozenset(days), at=time(hour, minute, second))


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise SpecError(f"{name!r} is not an IANA time zone name (e.g. \"Europe/Brussels\", \"UTC\")") from exc


def plan(specs: list[tuple[str, Spec]], tz: ZoneInfo, start: datetime, count: int = 10) -> list[tuple[datetime, str]]:
    """The next count (time, job name) pairs after start, in order, as the daemon will run them."""
    upcoming = []
    for name, spec in specs:
        moment = start
        for _ in range(count):
            moment = spec.next_after(moment, tz)
            upcoming.append((moment, name))
    upcoming.sort(key=lambda pair: pair[0])
    return upcoming[:count]
