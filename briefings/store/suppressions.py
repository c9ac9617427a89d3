"""The suppression list: recipients who unsubscribed. The outbox skips them; config.toml is never rewritten."""

from __future__ import annotations

from datetime import datetime

from briefings.store.db import Database, ts


class Suppressions:
    def __init__(self, db: Database):
        self.db = db

    def add(self, email: str, *, list_id: str, via: str, now: datetime) -> None:
        """Unsubscribe an address (again: kept as it was, the first time counts)."""
        with self.db.transaction() as db:
            db.execute("INSERT INTO suppressions (email, address, list_id, via, created) VALUES (?, ?, ?, ?, ?)"
                       " ON CONFLICT (email) DO NOTHING", (email.strip().lower(), email.strip(), list_id, via, ts(now)))

    def remove(self, email: str) -> bool:
        """Subscribe an address again; False when it had not unsubscribed."""
        with self.db.transaction() as db:
            found = db.one("SELECT 1 FROM suppressions WHERE email = ?", (email.strip().lower(),))
            db.execute("DELETE FROM suppressions WHERE email = ?", (email.strip().lower(),))
        return found is not None

    def contains(self, email: str) -> bool:
        return self.db.one("SELECT 1 FROM suppressions WHERE email = ?", (email.strip().lower(),)) is not None

    def all(self) -> list[dict]:
        """Every address that unsubscribed: {email, list_id, via, created}, oldest first."""
        return [{"email": r["address"], "list_id": r["list_id"], "via": r["via"], "created": r["created"]}
                for r in self.db.all("SELECT * FROM suppressions ORDER BY created, email")]
