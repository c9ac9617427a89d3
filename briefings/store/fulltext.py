"""Full-text search over every stored entry and the reading list: SQLite's FTS5, ranked by BM25.

``entries_fts`` holds each entry's title, text (its summary and content, as
plain text) and source, under the entry's id. ``Entries.add`` indexes what it
stores, in the same transaction; a trigger takes an entry's row out when the
entry goes; ``build`` (the migration that made the table) indexes a state file
that had entries before. The query comes parsed (``briefings.search.parse``):
only quoted terms reach MATCH, so no text typed can make SQLite raise.
"""

from __future__ import annotations

import json
import re
from typing import Iterable

from briefings.models import Entry
from briefings.search import Filters, Hit, Query
from briefings.store.db import Database

MAX_BODY_CHARS = 200_000  # of an entry's text indexed: a long document is found by its first pages
_NOT_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f]")  # the snippet marks (\x02, \x03) among them: never indexed
_RANK = "bm25(entries_fts, 8.0, 1.0, 2.0)"  # BM25, a match in the title weighing 8, in the source 2, in the text 1
_INSERT = "INSERT INTO entries_fts (rowid, title, body, source) VALUES (?, ?, ?, ?)"


def create(db: Database) -> None:
    """The migration: the table, the delete trigger, and every entry indexed."""
    db.execute("CREATE VIRTUAL TABLE entries_fts USING fts5(title, body, source, tokenize = 'unicode61 remove_diacritics 2')")
    db.execute("CREATE TRIGGER entries_fts_delete AFTER DELETE ON entries BEGIN"
               " DELETE FROM entries_fts WHERE rowid = old.id; END")
    FullText(db).build()


def _rows(rows: Iterable[tuple]) -> list[tuple]:
    """(rowid, title, body, source) from (id, title, summary_html, content_html, source_name)."""
    from briefings.text import html_to_text

    out = []
    for entry_id, title, summary_html, content_html, source in rows:
        summary, content = html_to_text(summary_html), html_to_text(content_html)
        # Many feeds send the summary again as the content's opening: index it once.
        body = content if summary and content.startswith(summary) else "\n".join(t for t in (summary, content) if t)
        out.append((entry_id, _NOT_TEXT.sub(" ", title or ""), _NOT_TEXT.sub(" ", body[:MAX_BODY_CHARS]),
                    _NOT_TEXT.sub(" ", source or "")))
    return out


def build(db: Database, table: str, write, batch: int = 2000) -> int:
    """Empty table, then index every stored entry into it by batches (write takes _rows); in one transaction."""
    count, last = 0, 0
    with db.transaction():
        db.execute(f"DELETE FROM {table}")
        while True:
            rows = db.all("SELECT id, title, summary_html, content_html, source_name FROM entries"
                          " WHERE id > ? ORDER BY id LIMIT ?", (last, batch))
            if not rows:
                return count
            write(_rows(tuple(r) for r in rows))
            count += len(rows)
            last = rows[-1][0]


def conditions(filters: Filters, *, theme: str, same_name: str) -> tuple[list[str], list]:
    """The WHERE conditions on the entries (e) for the filters, and their values. theme: the condition that
    e.themes (JSON) holds a theme; same_name: a source name compared without case, {} for the column."""
    where: list[str] = []
    params: list = []
    if filters.theme:
        where.append(f"(e.theme = ? OR {theme})")
        params += [filters.theme, filters.theme]
    if filters.since:
        where.append("COALESCE(e.published, e.first_seen) >= ?")
        params.append(filters.since)
    if filters.source:
        where.append(f"({same_name.format('e.source_name')} OR EXISTS (SELECT 1 FROM entry_sources x"
                     f" WHERE x.entry_id = e.id AND {same_name.format('x.source_name')}))")
        params += [filters.source, filters.source]
    return where, params


class FullText:
    def __init__(self, db: Database):
        self.db = db

    def index(self, entries: Iterable[Entry]) -> None:
        """Index entries just stored (with their ids), in the caller's transaction."""
        self.db.executemany(_INSERT, _rows((e.id, e.title, e.summary_html, e.content_html, e.source_name)
                                           for e in entries))

    def build(self) -> int:
        """Index every stored entry again; returns how many."""
        return build(self.db, "entries_fts", lambda rows: self.db.executemany(_INSERT, rows))

    def search(self, query: Query, filters: Filters = Filters()) -> list[Hit]:
        """The entries that match, best first (a match in the title counts most), with the text around the words.

        Two steps: the best ids (BM25 over every match, the filters joined only when there are any), then
        the details and snippets of those alone."""
        match = query.match()
        where, params = ["entries_fts MATCH ?"], [match]
        filtered, values = conditions(filters, theme="EXISTS (SELECT 1 FROM json_each(COALESCE(e.themes, '[]')) WHERE value = ?)",
                                      same_name="{} = ? COLLATE NOCASE")
        where, params = where + filtered, params + values
        tables = "entries_fts JOIN entries e ON e.id = entries_fts.rowid" if len(where) > 1 else "entries_fts"
        best = [r[0] for r in self.db.all(f"SELECT entries_fts.rowid FROM {tables} WHERE {' AND '.join(where)}"
                                          f" ORDER BY {_RANK} LIMIT ?", (*params, filters.limit))]
        if not best:
            return []
        rows = self.db.all(
            "SELECT e.id, e.title, e.link, e.source_name, e.source_kind, COALESCE(e.published, e.first_seen),"
            " e.themes, snippet(entries_fts, -1, char(2), char(3), '\u2026', 24),"
            " (SELECT json_object('slug', b.slug, 'title', b.title, 'created', b.created, 'theme', be.theme)"
            "  FROM briefing_entries be JOIN briefings b ON b.id = be.briefing_id WHERE be.entry_id = e.id"
            "  ORDER BY b.id LIMIT 1)"
            " FROM entries_fts JOIN entries e ON e.id = entries_fts.rowid"
            f" WHERE entries_fts MATCH ? AND entries_fts.rowid IN ({', '.join('?' * len(best))})",
            (match, *best),
        )
        found = {r[0]: Hit(id=r[0], title=r[1], link=r[2], source=r[3], kind=r[4], date=r[5],
                           themes=tuple(json.loads(r[6])) if r[6] else (),
                           briefing=json.loads(r[8]) if r[8] else None, snippet=_segments(r[7] or ""))
                 for r in rows}
        return [found[i] for i in best if i in found]


def _segments(snippet: str) -> tuple[tuple[str, bool], ...]:
    """The snippet as (text, is a matched word) pieces, from the marks snippet() put around the matches."""
    return tuple((part, i % 2 == 1) for i, part in enumerate(re.split("[\x02\x03]", snippet)) if part)


def full_text(db: Database):
    """The full-text search of this database: FTS5 on SQLite, tsvector on PostgreSQL."""
    if db.dialect.name == "postgresql":
        from briefings.store.postgres import PgFullText

        return PgFullText(db)
    return FullText(db)
