"""Small facts kept across runs and restarts: when the last briefing run finished, how far the archive is written."""

from __future__ import annotations

from datetime import datetime

from briefings.store.db import Database, dt, ts

_SET = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"


class Meta:
    def __init__(self, db: Database):
        self.db = db

    def get_time(self, key: str) -> datetime | None:
        row = self.db.one("SELECT value FROM meta WHERE key = ?", (key,))
        return dt(row[0]) if row else None

    def set_time(self, key: str, value: datetime) -> None:
        with self.db.transaction() as db:
            db.execute(_SET, (key, ts(value)))

    def archived_through(self) -> int | None:
        """The newest briefing the archive's index and theme pages were last written for (None: not known)."""
        row = self.db.one("SELECT value FROM meta WHERE key = 'archived_through'")
        return int(row[0]) if row else None

    def set_archived_through(self, briefing_id: int) -> None:
        self.db.execute(_SET, ("archived_through", str(briefing_id)))

    def last_briefing_time(self) -> datetime | None:
        """When a briefing run last completed (daemon or `briefings run`), else the newest briefing's date."""
        done = self.get_time("last_briefing_run")
        if done is not None:
            return done
        row = self.db.one("SELECT MAX(created) FROM briefings")
        return dt(row[0]) if row and row[0] else None
