"""Briefings: storing a composed briefing with its entries and outbox, and listing what was made."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Iterable

from briefings.models import Briefing, Delivery, Entry, HistoryItem, StoredBriefing
from briefings.store.db import Database, dt, ts
from briefings.store.entries import classification_of, entry_of
from briefings.store.outbox import Outbox

# Every column of a briefing but its bodies.
_LISTED = ("id, slug, title, created, period_start, period_end, entry_count, off_topic, theme_counts,"
           " html_path, text_path")


class Briefings:
    def __init__(self, db: Database, outbox: Outbox):
        self.db = db
        self.outbox = outbox

    def save(
        self,
        briefing: Briefing,
        *,
        html: str,
        text: str,
        left_out: Iterable[int] = (),
        deliveries: Iterable[Delivery] = (),
    ) -> int:
        """Store a composed briefing, its outbox and its entries' inclusion, in one transaction.

        ``left_out`` are the ids of pending entries this briefing considered and
        left out (off-topic): they are settled by it too, so they are not
        reconsidered forever. ``deliveries`` are the briefing's outbox: from
        this commit on, the entries are never included again and each
        recipient is owed exactly one message.
        """
        with self.db.transaction() as db:
            briefing.id = db.insert(
                "INSERT INTO briefings (slug, title, created, period_start, period_end, entry_count, off_topic,"
                " theme_counts, html, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    briefing.slug, briefing.title, ts(briefing.created), ts(briefing.period_start),
                    ts(briefing.period_end), briefing.entry_count, briefing.off_topic,
                    json.dumps(briefing.theme_counts), html, text,
                ),
            )
            listed = ((section, story, item) for section, story in briefing.stories() for item in (story, *story.reports))
            db.executemany(
                "INSERT INTO briefing_entries (briefing_id, entry_id, theme, position, story) VALUES (?, ?, ?, ?, ?)",
                [(briefing.id, item.entry.id, section.theme_id, position, story.story)
                 for position, (section, story, item) in enumerate(listed)],
            )
            db.execute(
                "UPDATE entries SET briefing_id = ? WHERE briefing_id IS NULL AND id IN"
                " (SELECT entry_id FROM briefing_entries WHERE briefing_id = ?)",
                (briefing.id, briefing.id),
            )
            db.executemany(
                "UPDATE entries SET briefing_id = ? WHERE id = ? AND briefing_id IS NULL",
                [(briefing.id, i) for i in left_out],
            )
            self.outbox.add(briefing.id, deliveries, created=briefing.created)
        return briefing.id

    def set_paths(self, briefing_id: int, html_path: str, text_path: str) -> None:
        """Where a briefing's web page and text were written."""
        self.db.execute(
            "UPDATE briefings SET html_path = ?, text_path = ? WHERE id = ?", (html_path, text_path, briefing_id)
        )

    def all(self) -> list[StoredBriefing]:
        """Every briefing, newest first, without its bodies."""
        return [_stored(row) for row in self.db.execute(
            f"SELECT {_LISTED} FROM briefings ORDER BY created DESC, id DESC")]

    def get(self, briefing_id: int) -> StoredBriefing | None:
        row = self.db.one(f"SELECT {_LISTED} FROM briefings WHERE id = ?", (briefing_id,))
        return _stored(row) if row is not None else None

    def text(self, briefing_id: int) -> str | None:
        """The plain text the briefing was stored with."""
        row = self.db.one("SELECT text FROM briefings WHERE id = ?", (briefing_id,))
        return row["text"] if row is not None else None

    def before(self, briefing_id: int | None) -> StoredBriefing | None:
        """The briefing made just before this one (the newest, for one not stored yet)."""
        for stored in self.all():
            if briefing_id is None or stored.id < briefing_id:
                return stored
        return None

    def last(self) -> StoredBriefing | None:
        found = self.all()
        return found[0] if found else None

    def slug_taken(self, slug: str) -> bool:
        return self.db.one("SELECT 1 FROM briefings WHERE slug = ?", (slug,)) is not None

    def story_entries(self, since: datetime, *, before: int | None = None) -> list[tuple[Entry, str, StoredBriefing]]:
        """Every entry a briefing listed in a story, published (else first seen) at or after since, with its
        story id and that briefing; only briefings older than the one with id ``before`` when given."""
        listed = ", ".join(f"b.{c.strip()} AS b_{c.strip()}" for c in _LISTED.split(","))
        rows = self.db.all(
            f"SELECT e.*, be.story AS listed_story, {listed} FROM briefing_entries be"
            " JOIN entries e ON e.id = be.entry_id JOIN briefings b ON b.id = be.briefing_id"
            " WHERE be.story IS NOT NULL AND COALESCE(e.published, e.first_seen) >= ? AND b.id < ?"
            " ORDER BY b.created, b.id, be.position",
            (ts(since), before if before is not None else 2**62),
        )
        return [(entry_of(r), r["listed_story"], _stored(r, prefix="b_")) for r in rows]

    def history(self) -> list[HistoryItem]:
        """Every entry any briefing listed, with its theme and briefing, newest briefing first."""
        listed = ", ".join(f"b.{c.strip()} AS b_{c.strip()}" for c in _LISTED.split(","))
        rows = self.db.all(
            f"SELECT e.*, be.theme AS listed_theme, be.story AS listed_story, {listed} FROM briefing_entries be"
            " JOIN entries e ON e.id = be.entry_id JOIN briefings b ON b.id = be.briefing_id"
            " ORDER BY b.created DESC, b.id DESC, be.position"
        )
        briefings: dict[int, StoredBriefing] = {}
        out = []
        for r in rows:
            briefing = briefings.get(r["b_id"])
            if briefing is None:
                briefing = briefings[r["b_id"]] = _stored(r, prefix="b_")
            out.append(HistoryItem(entry=entry_of(r), classification=classification_of(r), theme=r["listed_theme"],
                                   briefing=briefing, story=r["listed_story"]))
        return out


def _stored(row, prefix: str = "") -> StoredBriefing:
    def col(name: str):
        return row[prefix + name]

    return StoredBriefing(
        id=col("id"), slug=col("slug"), title=col("title"), created=datetime.fromisoformat(col("created")),
        period_start=dt(col("period_start")), period_end=datetime.fromisoformat(col("period_end")), entry_count=col("entry_count"),
        off_topic=col("off_topic"), theme_counts=json.loads(col("theme_counts")), html_path=col("html_path"),
        text_path=col("text_path"),
    )
