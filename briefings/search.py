"""What a person types into a search box, as a safe SQLite FTS5 MATCH expression.

The syntax: words (all must match, in any order), "a phrase" (those words in
that order), -word or -"a phrase" (left out), and word* (a word that starts so).
Everything else is text: FTS5's own operators (AND, OR, NOT, NEAR, ^, column
filters, parentheses) are never passed through, so no query can make SQLite
raise. A query with nothing to search for, or too long, is a QueryError with a
one-line message saying what to type instead. The store runs the search
(``store.fulltext.search``); nothing here touches a database.
"""

from __future__ import annotations

import re
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


# -- what a search gives, and the filters it takes (the store runs it: store.fulltext) ----------


@dataclass(frozen=True)
class Hit:
    id: int
    title: str
    link: str | None
    source: str
    kind: str  # "feed" or "corpus" (the reading list)
    date: str | None  # ISO 8601, UTC
    themes: tuple[str, ...]
    briefing: dict | None  # {slug, title, created, theme} of the briefing that listed it, and under which theme
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
