"""What a person types into a search box, as a safe SQLite FTS5 MATCH expression.

The syntax: words (all must match, in any order), "a phrase" (those words in
that order), -word or -"a phrase" (left out), and word* (a word that starts so).
Everything else is text: FTS5's own operators (AND, OR, NOT, NEAR, ^, column
filters, parentheses) are never passed through, so no query can make SQLite
raise. A query with nothing to search for, or too long, is a QueryError with a
one-line message saying what to type instead.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from dataclasses import dataclass

from briefings.errors import BriefingsError

MAX_QUERY_CHARS = 1000
MAX_TERMS = 32

# A run of letters, digits or marks: what SQLite's unicode61 tokenizer keeps as a token (Python's \w
# also counts "_", which the tokenizer splits on; the token check below excludes it).
_TOKEN = re.compile(r"[^\W_]+")
# One piece of the query: an optional "-", then a "quoted phrase" (its closing quote optional) or a bare word.
_PIECE = re.compile(r'(-?)(?:"([^"]*)"?|([^\s"]+))')


class QueryError(BriefingsError):
    """A query that cannot be searched; the message says why and what to type."""


@dataclass(frozen=True)
class Term:
    words: tuple[str, ...]  # the tokens, in order (more than one: a phrase)
    exclude: bool = False
    prefix: bool = False  # the last word matches as a prefix (word*)

    def match(self) -> str:
        phrase = '"' + " ".join(self.words).replace('"', '""') + '"'
        return phrase + " *" if self.prefix else phrase


@dataclass(frozen=True)
class Query:
    text: str
    include: tuple[Term, ...]
    exclude: tuple[Term, ...]

    def match(self) -> str:
        """The FTS5 MATCH expression: every included term, then NOT each excluded one."""
        expression = " AND ".join(t.match() for t in self.include)
        if self.exclude:
            expression = f"({expression})" + "".join(f" NOT {t.match()}" for t in self.exclude)
        return expression

    @property
    def words(self) -> list[str]:
        """The words searched for (for highlighting), not those left out."""
        return [w for t in self.include for w in t.words]


def _clean(text: str) -> str:
    """NFKC (full-width letters, ligatures), control characters and other invisibles made spaces."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") else c for c in text)


def parse(text: str) -> Query:
    """A query, or QueryError saying what is wrong with it in one line."""
    if not isinstance(text, str):
        raise QueryError("the query must be text")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"the query is {len(text):,} characters long; at most {MAX_QUERY_CHARS:,} are searched",
                         "shorten it to the words that matter")
    include: list[Term] = []
    exclude: list[Term] = []
    for match in _PIECE.finditer(_clean(text)):
        minus, quoted, bare = match.groups()
        raw = quoted if quoted is not None else bare
        prefix = quoted is None and raw.endswith("*")
        words = tuple(w.lower() for w in _TOKEN.findall(raw))
        if not words:
            continue  # punctuation, emoji, a lone "-": nothing the index holds
        term = Term(words, exclude=bool(minus), prefix=prefix)
        (exclude if term.exclude else include).append(term)
    if len(include) + len(exclude) > MAX_TERMS:
        raise QueryError(f"the query has {len(include) + len(exclude)} words and phrases; at most {MAX_TERMS} are searched",
                         "leave out the words that do not narrow it")
    if not include:
        if exclude:
            raise QueryError("the query only leaves words out: say what to find too",
                             'e.g. sanctions -ransomware')
        raise QueryError("nothing to search for: the query has no words",
                         'type words, a "phrase in quotes", or -word to leave one out')
    return Query(text=text, include=tuple(dict.fromkeys(include)), exclude=tuple(dict.fromkeys(exclude)))


# -- the index (SQLite FTS5) and the search over it ------------------------------------------

# Kept by the store: rows added as entries are stored (index_entries), removed with them (the
# trigger), and built for an existing state file by the migration that creates it (rebuild_index).
INDEX_STATEMENTS = (
    "CREATE VIRTUAL TABLE entries_fts USING fts5(title, body, source, tokenize = 'unicode61 remove_diacritics 2')",
    "INSERT INTO entries_fts (entries_fts, rank) VALUES ('rank', 'bm25(8.0, 1.0, 2.0)')",
    "CREATE TRIGGER entries_fts_delete AFTER DELETE ON entries BEGIN DELETE FROM entries_fts WHERE rowid = old.id; END",
)
MAX_BODY_CHARS = 200_000  # of an entry's text indexed: a long document is found by its first pages
_MARK_START, _MARK_END = "\x02", "\x03"  # around the matched words in a snippet; never in indexed text


def _index_text(text: str) -> str:
    return _NOT_TEXT.sub(" ", text)


_NOT_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


def index_rows(rows) -> list[tuple]:
    """(rowid, title, body, source) for FTS5 from (id, title, summary_html, content_html, source_name) rows."""
    from briefings.text import html_to_text

    out = []
    for entry_id, title, summary_html, content_html, source in rows:
        summary, content = html_to_text(summary_html), html_to_text(content_html)
        # Many feeds send the summary again as the content's opening: index it once.
        body = content if summary and content.startswith(summary) else "\n".join(t for t in (summary, content) if t)
        out.append((entry_id, _index_text(title or ""), _index_text(body[:MAX_BODY_CHARS]), _index_text(source or "")))
    return out


def index_entries(db, entries) -> None:
    """Index newly stored entries (models.Entry with ids), in the caller's transaction."""
    db.executemany(
        "INSERT OR REPLACE INTO entries_fts (rowid, title, body, source) VALUES (?, ?, ?, ?)",
        index_rows((e.id, e.title, e.summary_html, e.content_html, e.source_name) for e in entries),
    )


def rebuild_index(db, batch: int = 2000) -> int:
    """Index every stored entry again (in the caller's transaction); returns how many."""
    db.execute("DELETE FROM entries_fts")
    count, last = 0, 0
    while True:
        rows = db.execute(
            "SELECT id, title, summary_html, content_html, source_name FROM entries WHERE id > ? ORDER BY id LIMIT ?",
            (last, batch),
        ).fetchall()
        if not rows:
            return count
        db.executemany("INSERT INTO entries_fts (rowid, title, body, source) VALUES (?, ?, ?, ?)", index_rows(rows))
        count += len(rows)
        last = rows[-1][0]


@dataclass(frozen=True)
class Hit:
    id: int
    title: str
    link: str | None
    source: str
    kind: str  # "feed" or "corpus" (the reading list)
    date: str | None  # ISO 8601, UTC
    themes: tuple[str, ...]
    briefing: dict | None  # {slug, title, created} of the briefing that listed it
    snippet: tuple[tuple[str, bool], ...]  # the text around the matches: (text, is a matched word)

    def as_dict(self) -> dict:
        return {
            "id": self.id, "title": self.title, "link": self.link, "source": self.source, "kind": self.kind,
            "date": self.date, "themes": list(self.themes), "briefing": self.briefing,
            "snippet": "".join(f"[{t}]" if marked else t for t, marked in self.snippet),
        }


@dataclass(frozen=True)
class Filters:
    theme: str | None = None
    since: str | None = None  # YYYY-MM-DD
    source: str | None = None
    limit: int = 20


MAX_LIMIT = 1000


def check_filters(theme: str | None = None, since: str | None = None, source: str | None = None,
                  limit: int | str | None = None, *, theme_ids=None) -> Filters:
    """Filters from what a person gave (strings from a form or the command line), or QueryError."""
    from datetime import date

    theme = (theme or "").strip() or None
    if theme is not None and theme_ids is not None and theme not in theme_ids:
        raise QueryError(f"no theme {theme!r}", f"one of: {', '.join(sorted(theme_ids))}")
    since = (since or "").strip() or None
    if since is not None:
        try:
            since = date.fromisoformat(since).isoformat()
        except ValueError:
            raise QueryError(f"since: {since[:40]!r} is not a date", "write it as YYYY-MM-DD, e.g. 2026-03-01") from None
    source = (source or "").strip() or None
    if limit in (None, ""):
        limit = Filters.limit
    try:
        limit = int(limit)
    except (TypeError, ValueError):
        raise QueryError(f"limit: {str(limit)[:40]!r} is not a whole number", f"from 1 to {MAX_LIMIT}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"limit: {limit} is out of range", f"from 1 to {MAX_LIMIT}")
    return Filters(theme=theme, since=since, source=source, limit=limit)


def run(db, query: Query, filters: Filters = Filters()) -> list[Hit]:
    """The entries that match, best first (BM25: a match in the title counts most), with snippets."""
    import json

    where, params = ["entries_fts MATCH ?"], [query.match()]
    if filters.theme:
        where.append("(e.theme = ? OR EXISTS (SELECT 1 FROM json_each(COALESCE(e.themes, '[]')) WHERE value = ?))")
        params += [filters.theme, filters.theme]
    if filters.since:
        where.append("COALESCE(e.published, e.first_seen) >= ?")
        params.append(filters.since)
    if filters.source:
        where.append("(e.source_name = ? COLLATE NOCASE OR EXISTS (SELECT 1 FROM entry_sources s"
                     " WHERE s.entry_id = e.id AND s.source_name = ? COLLATE NOCASE))")
        params += [filters.source, filters.source]
    sql = (
        "SELECT e.id, e.title, e.link, e.source_name, e.source_kind, COALESCE(e.published, e.first_seen) AS date,"
        " e.themes, snippet(entries_fts, -1, char(2), char(3), '\u2026', 24) AS snip,"
        " (SELECT json_object('slug', b.slug, 'title', b.title, 'created', b.created) FROM briefing_entries be"
        "  JOIN briefings b ON b.id = be.briefing_id WHERE be.entry_id = e.id ORDER BY b.id LIMIT 1) AS briefing"
        " FROM entries_fts JOIN entries e ON e.id = entries_fts.rowid"
        f" WHERE {' AND '.join(where)} ORDER BY entries_fts.rank LIMIT ?"
    )
    try:
        rows = db.execute(sql, (*params, filters.limit)).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        raise BriefingsError("the state file has no search index yet",
                             "run `briefings collect` (or any command that opens the state file) once with this version") from None
    hits = []
    for row in rows:
        hits.append(Hit(
            id=row[0], title=row[1], link=row[2], source=row[3], kind=row[4], date=row[5],
            themes=tuple(json.loads(row[6])) if row[6] else (),
            briefing=json.loads(row[8]) if row[8] else None,
            snippet=_segments(row[7] or ""),
        ))
    return hits


def _segments(snippet: str) -> tuple[tuple[str, bool], ...]:
    out = []
    for i, part in enumerate(re.split(f"[{_MARK_START}{_MARK_END}]", snippet)):
        if part:
            out.append((part, i % 2 == 1))
    return tuple(out)
