"""Corrections: the themes the desk gave an entry by hand (`briefings themes teach`), applied where it is stored."""

from __future__ import annotations

import json
from datetime import datetime

from briefings.models import Classification, StoredCorrection
from briefings.store.db import Database, dt, ts
from briefings.store.entries import Entries, entry_of


class Corrections:
    def __init__(self, db: Database, entries: Entries):
        self.db = db
        self.entries = entries

    def save(self, entry_id: int, c: Classification, *, now: datetime) -> int | None:
        """Record the desk's classification of an entry (replacing an earlier one) and apply it wherever
        the entry is stored: the entry, and the briefing that settled it (its section, counts), in one
        transaction. Returns that briefing's id (None: the entry is pending)."""
        with self.db.transaction() as db:
            db.execute(
                "INSERT INTO corrections (entry_id, theme, also, created) VALUES (?, ?, ?, ?) ON CONFLICT (entry_id)"
                " DO UPDATE SET theme = excluded.theme, also = excluded.also, created = excluded.created",
                (entry_id, c.theme, json.dumps(c.themes[1:]), ts(now)),
            )
            self.entries.save_classifications([(entry_id, c)])
            row = db.one("SELECT briefing_id FROM entries WHERE id = ?", (entry_id,))
            briefing_id = row["briefing_id"] if row else None
            if briefing_id is None:
                return None
            listed = db.one("SELECT 1 FROM briefing_entries WHERE briefing_id = ? AND entry_id = ?", (briefing_id, entry_id))
            if c.theme is None:
                db.execute("DELETE FROM briefing_entries WHERE briefing_id = ? AND entry_id = ?", (briefing_id, entry_id))
            elif listed:
                db.execute("UPDATE briefing_entries SET theme = ? WHERE briefing_id = ? AND entry_id = ?",
                           (c.theme, briefing_id, entry_id))
            else:
                db.execute(
                    "INSERT INTO briefing_entries (briefing_id, entry_id, theme, position) SELECT ?, ?, ?,"
                    " COALESCE(MAX(position), -1) + 1 FROM briefing_entries WHERE briefing_id = ?",
                    (briefing_id, entry_id, c.theme, briefing_id),
                )
            counts = {r[0]: r[1] for r in db.execute(
                "SELECT COALESCE(theme, 'off-topic'), COUNT(*) FROM briefing_entries WHERE briefing_id = ?"
                " GROUP BY theme", (briefing_id,))}
            settled = db.one("SELECT COUNT(*) FROM entries WHERE briefing_id = ?", (briefing_id,))[0]
            shown = sum(counts.values())
            db.execute(
                "UPDATE briefings SET theme_counts = ?, entry_count = ?, off_topic = ? WHERE id = ?",
                (json.dumps(counts), shown, settled - shown, briefing_id),
            )
            return briefing_id

    def all(self) -> list[StoredCorrection]:
        """Every correction, oldest first."""
        return [_correction(r) for r in self.db.all(
            "SELECT e.*, c.theme AS c_theme, c.also AS c_also, c.created AS c_created"
            " FROM corrections c JOIN entries e ON e.id = c.entry_id ORDER BY c.created, c.entry_id")]

    def of(self, entry_id: int) -> StoredCorrection | None:
        """The correction of one entry, if the desk made one."""
        row = self.db.one(
            "SELECT e.*, c.theme AS c_theme, c.also AS c_also, c.created AS c_created"
            " FROM corrections c JOIN entries e ON e.id = c.entry_id WHERE c.entry_id = ?", (entry_id,))
        return _correction(row) if row is not None else None


def _correction(row) -> StoredCorrection:
    return StoredCorrection(entry=entry_of(row), theme=row["c_theme"], also=tuple(json.loads(row["c_also"])),
                            created=datetime.fromisoformat(row["c_created"]))
