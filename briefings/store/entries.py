"""Entries: storing what is new (a story carried twice is stored once), classifications, and reading them back."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Callable, Iterable

from briefings.identity import canonical_link, fingerprint
from briefings.models import Classification, Entry, Match
from briefings.store.db import Database, dt, ts
from briefings.store.fulltext import full_text


class Entries:
    def __init__(self, db: Database):
        self.db = db

    def add(self, entries: Iterable[Entry], *, now: datetime, text_of: Callable[[Entry], str]) -> list[Entry]:
        """Store entries not seen before; return the new ones (with the ids the database gave them).

        An entry already stored under its key is skipped. The same story under
        another key (same canonical link, or same title and opening text) is
        not stored again: its source is added to the existing entry's sources.
        One transaction; the lookups and the inserts go by batch, not by entry.

        The inserts skip what a unique constraint refuses (``ON CONFLICT DO
        NOTHING``): on PostgreSQL, key, canonical link and fingerprint are each
        unique, so when another collector stored the same story meanwhile, the
        refused entry is looked up again and joins the stored one as a source.
        """
        entries = list(entries)
        if not entries:
            return []
        seen_at = ts(now)
        db = self.db
        with db.transaction():
            known = set(db.lookup("SELECT key, 1 FROM entries WHERE key IN ({})"
                                  " UNION ALL SELECT key, 1 FROM entry_sources WHERE key IN ({})",
                                  [e.key for e in entries], twice=True))
            fresh = []
            for entry in entries:
                if entry.key in known:
                    continue
                known.add(entry.key)  # the same key twice in one batch is stored once
                canon = entry.canonical if entry.canonical is not None else canonical_link(entry.link)
                fp = entry.fingerprint or fingerprint(entry.title, text_of(entry))
                fresh.append((entry, canon or None, fp))
            if not fresh:
                return []
            # A story's stored id, or the entry of this batch that stores it.
            by_canon: dict[str, int | Entry] = db.lookup(
                "SELECT canonical_link, id FROM entries WHERE canonical_link IN ({})", [c for _, c, _ in fresh if c])
            by_fp: dict[str, int | Entry] = db.lookup(
                "SELECT fingerprint, id FROM entries WHERE fingerprint IN ({})", [f for _, _, f in fresh if f])
            twins: list[tuple[int | Entry, Entry]] = []  # (the story's entry, the source that joins it)
            planned: list[tuple[Entry, str | None, str | None]] = []
            for entry, canon, fp in fresh:
                twin = (by_canon.get(canon) if canon else None) or (by_fp.get(fp) if fp else None)
                if twin is not None:
                    twins.append((twin, entry))
                    continue
                planned.append((entry, canon, fp))
                if canon:
                    by_canon[canon] = entry
                if fp:
                    by_fp[fp] = entry
            held_by = self._insert(planned, seen_at, twins)
            new = [entry for entry, _, _ in planned if entry.id is not None and held_by.get(entry.key) == entry.id]
            for entry in new:
                entry.first_seen = now
            # A source whose key another collector stored meanwhile as an entry of its own is that entry already.
            db.executemany(
                "INSERT INTO entry_sources (entry_id, source_name, link, key, first_seen)"
                " SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM entries WHERE key = ?) ON CONFLICT DO NOTHING",
                [(twin if isinstance(twin, int) else held_by[twin.key], entry.source_name, entry.link, entry.key,
                  seen_at, entry.key) for twin, entry in twins],
            )
            full_text(db).index(new)  # searchable from the moment it is stored
        return new

    def _insert(self, planned: list, seen_at: str | None, twins: list) -> dict[str, int]:
        """Insert the planned entries by batch, each stored one taking the id the database gave it (entry.id);
        {key: id of the entry that holds the story}: its own, or the one another collector stored meanwhile
        (then the entry is added to twins when it is a new source of that story)."""
        db = self.db
        held_by: dict[str, int] = {}
        columns = ("key, source_kind, source_name, title, link, canonical_link, fingerprint, guid, author,"
                   " published, updated, first_seen, summary_html, content_html, flags")
        while planned:
            rows = [(e.key, e.source_kind, e.source_name, e.title, e.link, canon, fp, e.guid, e.author,
                     ts(e.published), ts(e.updated), seen_at, e.summary_html, e.content_html, ",".join(e.flags))
                    for e, canon, fp in planned]
            ids = db.insert_new(f"INSERT INTO entries ({columns}) VALUES {{}} ON CONFLICT DO NOTHING"
                                " RETURNING key, id", rows)
            refused = []
            for entry, canon, fp in planned:
                if entry.key in ids:
                    entry.id = held_by[entry.key] = ids[entry.key]
                else:
                    refused.append((entry, canon, fp))
            if not refused:
                break
            # Another collector stored these stories (or keys) since the lookups: join what it stored.
            by_key = db.lookup("SELECT key, id FROM entries WHERE key IN ({})"
                               " UNION ALL SELECT key, entry_id FROM entry_sources WHERE key IN ({})",
                               [e.key for e, _, _ in refused], twice=True)
            by_canon = db.lookup("SELECT canonical_link, id FROM entries WHERE canonical_link IN ({})",
                                 [c for _, c, _ in refused if c])
            by_fp = db.lookup("SELECT fingerprint, id FROM entries WHERE fingerprint IN ({})",
                              [f for _, _, f in refused if f])
            planned = []
            for entry, canon, fp in refused:
                holder = by_key.get(entry.key)
                if holder is None:
                    holder = (by_canon.get(canon) if canon else None) or (by_fp.get(fp) if fp else None)
                    if holder is None:  # what refused it is gone again: try once more
                        planned.append((entry, canon, fp))
                        continue
                    twins.append((holder, entry))
                held_by[entry.key] = holder
        return held_by

    def save_classifications(self, pairs: Iterable[tuple[int, Classification]]) -> None:
        with self.db.transaction() as db:
            db.executemany(
                "UPDATE entries SET theme = ?, themes = ?, scores = ?, evidence = ? WHERE id = ?",
                [(c.theme, json.dumps(c.themes), json.dumps(c.scores), _evidence_json(c), entry_id)
                 for entry_id, c in pairs],
            )

    def pending(self) -> list[tuple[Entry, Classification | None]]:
        """Entries no briefing has included yet, oldest first."""
        rows = self.db.all(
            "SELECT * FROM entries WHERE briefing_id IS NULL ORDER BY COALESCE(published, first_seen), id"
        )
        return self._with_sources(rows)

    def of_briefing(self, briefing_id: int) -> list[tuple[Entry, Classification | None]]:
        """The entries a briefing included, in its order."""
        rows = self.db.all(
            "SELECT e.* FROM entries e JOIN briefing_entries b ON b.entry_id = e.id"
            " WHERE b.briefing_id = ? ORDER BY b.position",
            (briefing_id,),
        )
        return self._with_sources(rows)

    def around(self, start, end) -> list[tuple[Entry, Classification | None]]:
        """The feed entries published (else first seen) between start and end, oldest first."""
        rows = self.db.all(
            "SELECT * FROM entries WHERE source_kind = 'feed' AND COALESCE(published, first_seen) BETWEEN ? AND ?"
            " ORDER BY COALESCE(published, first_seen), id",
            (ts(start), ts(end)),
        )
        return self._with_sources(rows)

    def find(self, ref: str) -> tuple[Entry, Classification | None] | None:
        """An entry by id, key or link."""
        row = None
        if ref.isdigit():
            row = self.db.one("SELECT * FROM entries WHERE id = ?", (int(ref),))
        if row is None:
            row = self.db.one(
                "SELECT * FROM entries WHERE key = ? OR link = ? OR canonical_link = ?",
                (ref, ref, canonical_link(ref)),
            )
        return self._with_sources([row])[0] if row else None

    def theme_counts(self) -> dict[str | None, int]:
        """Stored entries per primary theme (None: not classified or off-topic)."""
        return {row[0]: row[1] for row in self.db.execute("SELECT theme, COUNT(*) FROM entries GROUP BY theme")}

    def counts_by_source(self) -> dict[str, int]:
        return {
            row[0]: row[1]
            for row in self.db.execute("SELECT source_name, COUNT(*) FROM entries GROUP BY source_name")
        }

    def reading_list(self) -> list[tuple[Entry, Classification | None]]:
        """Every reading-list document, with its stored classification."""
        rows = self.db.all("SELECT * FROM entries WHERE source_kind = 'corpus' ORDER BY id")
        return [(entry_of(r), classification_of(r)) for r in rows]

    def _with_sources(self, rows) -> list[tuple[Entry, Classification | None]]:
        out = []
        for row in rows:
            entry = entry_of(row)
            entry.sources = [(entry.source_name, entry.link)] + [
                (r["source_name"], r["link"])
                for r in self.db.execute(
                    "SELECT source_name, link FROM entry_sources WHERE entry_id = ? ORDER BY first_seen, source_name",
                    (entry.id,),
                )
            ]
            out.append((entry, classification_of(row)))
        return out


def _evidence_json(c: Classification) -> str:
    return json.dumps(
        {theme: [[m.term, m.field, m.count, m.weight] for m in matches] for theme, matches in c.evidence.items()}
    )


def entry_of(row) -> Entry:
    """An Entry from a row of the entries table."""
    return Entry(
        id=row["id"],
        key=row["key"],
        source_kind=row["source_kind"],
        source_name=row["source_name"],
        title=row["title"],
        link=row["link"],
        guid=row["guid"],
        author=row["author"],
        published=dt(row["published"]),
        updated=dt(row["updated"]),
        first_seen=dt(row["first_seen"]),
        summary_html=row["summary_html"],
        content_html=row["content_html"],
        flags=tuple(f for f in row["flags"].split(",") if f),
    )


def classification_of(row) -> Classification | None:
    """The stored classification of a row of the entries table (None: not classified yet)."""
    if row["themes"] is None:
        return None
    evidence = {
        theme: tuple(Match(term=t, field=f, count=c, weight=w) for t, f, c, w in matches)
        for theme, matches in json.loads(row["evidence"]).items()
    }
    return Classification(
        theme=row["theme"],
        themes=tuple(json.loads(row["themes"])),
        scores=json.loads(row["scores"]),
        evidence=evidence,
    )
