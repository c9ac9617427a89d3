"""SQLite state: schema migrations, feed fetch state, entries, briefings, deliveries.

One file. The schema version lives in ``PRAGMA user_version``; MIGRATIONS[i]
takes a database from version i to i+1, each in one transaction, so a crash
mid-migration leaves the previous version intact.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from briefings.errors import StoreError
from briefings.models import Briefing, Classification, Entry, FeedResult, Match

MIGRATIONS: list[str] = [
    # 0 -> 1: the first schema.
    """
    CREATE TABLE feeds (
        name TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        title TEXT,
        etag TEXT,
        last_modified TEXT,
        status TEXT,
        last_attempt TEXT,
        last_success TEXT,
        last_error TEXT,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        next_try TEXT,
        disabled INTEGER NOT NULL DEFAULT 0,
        moved_to TEXT
    );
    CREATE TABLE briefings (
        id INTEGER PRIMARY KEY,
        slug TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL,
        created TEXT NOT NULL,
        period_start TEXT,
        period_end TEXT NOT NULL,
        entry_count INTEGER NOT NULL,
        off_topic INTEGER NOT NULL DEFAULT 0,
        theme_counts TEXT NOT NULL,
        html TEXT,
        text TEXT,
        html_path TEXT,
        text_path TEXT
    );
    CREATE TABLE entries (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        source_kind TEXT NOT NULL,
        source_name TEXT NOT NULL,
        title TEXT NOT NULL,
        link TEXT,
        canonical_link TEXT,
        fingerprint TEXT,
        guid TEXT,
        author TEXT,
        published TEXT,
        updated TEXT,
        first_seen TEXT NOT NULL,
        summary_html TEXT NOT NULL DEFAULT '',
        content_html TEXT NOT NULL DEFAULT '',
        flags TEXT NOT NULL DEFAULT '',
        theme TEXT,
        themes TEXT,
        scores TEXT,
        evidence TEXT,
        briefing_id INTEGER REFERENCES briefings(id)
    );
    CREATE INDEX entries_pending ON entries(briefing_id) WHERE briefing_id IS NULL;
    CREATE INDEX entries_canonical ON entries(canonical_link);
    CREATE INDEX entries_fingerprint ON entries(fingerprint);
    CREATE TABLE entry_sources (
        entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
        source_name TEXT NOT NULL,
        link TEXT,
        key TEXT NOT NULL UNIQUE,
        first_seen TEXT NOT NULL,
        PRIMARY KEY (entry_id, source_name)
    );
    CREATE TABLE briefing_entries (
        briefing_id INTEGER NOT NULL REFERENCES briefings(id),
        entry_id INTEGER NOT NULL REFERENCES entries(id),
        theme TEXT,
        position INTEGER NOT NULL,
        PRIMARY KEY (briefing_id, entry_id)
    );
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        briefing_id INTEGER NOT NULL REFERENCES briefings(id),
        recipient TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_try TEXT,
        sent_at TEXT,
        message_id TEXT,
        UNIQUE (briefing_id, recipient)
    );
    """,
    # 1 -> 2: each delivery keeps the recipient's name and theme filter as they were when the
    # briefing was composed, so a later send is the same message whatever config.toml says by then.
    """
    ALTER TABLE deliveries ADD COLUMN name TEXT NOT NULL DEFAULT '';
    ALTER TABLE deliveries ADD COLUMN themes TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE deliveries ADD COLUMN created TEXT;
    CREATE INDEX deliveries_pending ON deliveries(status) WHERE status = 'pending';
    """,
    # 2 -> 3: small facts the daemon keeps across restarts (when the last briefing job ran).
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 3 -> 4: digests of the items of each feed's last successful fetch, stored with its entries,
    # so the next fetch parses only the items that changed.
    """
    ALTER TABLE feeds ADD COLUMN item_hashes BLOB;
    """,
    # 4 -> 5: the desk's corrections (`briefings themes teach`): the themes an entry was given by hand.
    """
    CREATE TABLE corrections (
        entry_id INTEGER PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
        theme TEXT,
        also TEXT NOT NULL DEFAULT '[]',
        created TEXT NOT NULL
    );
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)

_TRACKING = re.compile(r"^(utm_|fbclid$|gclid$|mc_cid$|mc_eid$|ref$|ref_src$)")


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _ts(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def canonical_link(link: str | None) -> str | None:
    """A link with the differences that do not change the story removed."""
    if not link:
        return None
    parts = urlsplit(link.strip())
    if parts.scheme not in ("http", "https"):
        return link.strip()
    host = parts.hostname or ""
    if host.startswith("www."):
        host = host[4:]
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query) if not _TRACKING.match(k)))
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(("https", host, path, query, ""))


WORD = re.compile(r"\w+")
FINGERPRINT_WORDS = 60


def first_words(text: str, count: int) -> list[str]:
    """The first ``count`` words of text, reading no further into it than they need."""
    scan = 16 * count
    while True:
        # As if the text ended at `scan`: only the last word found can be cut short, so
        # with more than `count` found, the first `count` are whole.
        words = WORD.findall(text, 0, scan)
        if len(words) > count or scan >= len(text):
            return words[:count]
        scan *= 4


def fingerprint(title: str, text: str, text_words: list[str] | None = None) -> str | None:
    """Same story, other wording of the markup: the normalized title and opening words.

    text_words: first_words(text, FINGERPRINT_WORDS), when the caller has them. For ASCII
    text they are reused (lowercasing ASCII moves no word boundary); else text is read again.
    """
    if text_words is not None and title.isascii() and text.isascii():
        words = (first_words(title, FINGERPRINT_WORDS) + text_words)[:FINGERPRINT_WORDS]
        joined = " ".join(words).lower()
    else:
        words = first_words(f"{title} {text}".lower(), FINGERPRINT_WORDS)
        joined = " ".join(words)
    if len(words) < 6:
        return None
    return hashlib.sha1(joined.encode()).hexdigest()


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open the state file: {exc}", "check the [state] path") from exc
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.migrate()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; a transaction inside another joins it."""
        if self.db.in_transaction:
            yield self.db
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")

    # -- schema -------------------------------------------------------------

    @property
    def version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> None:
        version = self.version
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: state file is schema version {version}, newer than this briefings ({SCHEMA_VERSION})",
                "upgrade briefings",
            )
        for target in range(version, SCHEMA_VERSION):
            # executescript commits first, so run the statements one by one in our transaction.
            with self.transaction() as db:
                for statement in _statements(MIGRATIONS[target]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {target + 1}")

    # -- feeds --------------------------------------------------------------

    def feed_state(self, name: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM feeds WHERE name = ?", (name,)).fetchone()

    def feed_states(self) -> dict[str, sqlite3.Row]:
        return {row["name"]: row for row in self.db.execute("SELECT * FROM feeds")}

    def ensure_feeds(self, feeds: Iterable[tuple[str, str]]) -> dict[str, sqlite3.Row]:
        """ensure_feed for every (name, url) at once, in one transaction; returns every feed's state."""
        feeds = list(feeds)
        states = self.feed_states()
        if any(name not in states or states[name]["url"] != url for name, url in feeds):
            with self.transaction():
                for name, url in feeds:
                    row = states.get(name)
                    if row is None or row["url"] != url:
                        self.ensure_feed(name, url)
            states = self.feed_states()
        return states

    def ensure_feed(self, name: str, url: str) -> sqlite3.Row:
        """The feed's state row; a new feed starts empty. A changed config URL resets its validators."""
        row = self.feed_state(name)
        if row is None:
            self.db.execute("INSERT INTO feeds (name, url) VALUES (?, ?)", (name, url))
        elif row["url"] != url and row["moved_to"] != row["url"]:
            self.db.execute(
                "UPDATE feeds SET url = ?, etag = NULL, last_modified = NULL, disabled = 0,"
                " consecutive_failures = 0, next_try = NULL WHERE name = ?",
                (url, name),
            )
        return self.feed_state(name)

    def record_feed(self, result: FeedResult, *, now: datetime, backoff_max_hours: float) -> None:
        """Store what one fetch gave: validators on success, health on failure."""
        row = self.feed_state(result.name)
        failures = row["consecutive_failures"] if row else 0
        if result.status in ("ok", "not-modified"):
            self.db.execute(
                "UPDATE feeds SET status = ?, last_attempt = ?, last_success = ?, last_error = ?,"
                " consecutive_failures = 0, next_try = NULL, etag = COALESCE(?, etag),"
                " last_modified = COALESCE(?, last_modified), title = COALESCE(?, title),"
                " url = COALESCE(?, url), moved_to = COALESCE(?, moved_to),"
                " item_hashes = COALESCE(?, item_hashes) WHERE name = ?",
                (
                    result.status, _ts(now), _ts(now), result.warning, result.etag, result.last_modified,
                    result.title, result.new_url, result.new_url, result.item_hashes, result.name,
                ),
            )
            return
        failures += 1
        from datetime import timedelta

        wait_hours = min(backoff_max_hours, (2 ** min(failures - 1, 20)) / 4) if failures >= 2 else 0
        next_try = _ts(now + timedelta(hours=wait_hours)) if wait_hours else None
        self.db.execute(
            "UPDATE feeds SET status = ?, last_attempt = ?, last_error = ?, consecutive_failures = ?,"
            " next_try = ?, disabled = ? WHERE name = ?",
            (result.status, _ts(now), result.error, failures, next_try, int(result.status == "gone"), result.name),
        )

    # -- meta ---------------------------------------------------------------

    def get_time(self, key: str) -> datetime | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return _dt(row[0]) if row else None

    def set_time(self, key: str, value: datetime) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       (key, _ts(value)))

    def last_briefing_time(self) -> datetime | None:
        """When a briefing run last completed (daemon or `briefings run`), else the newest briefing's date."""
        done = self.get_time("last_briefing_run")
        if done is not None:
            return done
        row = self.db.execute("SELECT MAX(created) FROM briefings").fetchone()
        return _dt(row[0]) if row and row[0] else None

    # -- entries ------------------------------------------------------------

    def add_entries(self, entries: Iterable[Entry], *, now: datetime, text_of) -> list[Entry]:
        """Store entries not seen before; return the new ones (with ids).

        An entry already stored under its key is skipped. The same story under
        another key (same canonical link, or same title and opening text) is
        not stored again: its source is added to the existing entry's sources.
        One transaction; the lookups and inserts go by batch, not by entry.
        """
        entries = list(entries)
        if not entries:
            return []
        new: list[Entry] = []
        seen_at = _ts(now)
        with self.transaction() as db:
            known = set(self._lookup(db, "SELECT key, 1 FROM entries WHERE key IN ({})"
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
            by_canon = self._lookup(db, "SELECT canonical_link, id FROM entries WHERE canonical_link IN ({})",
                                    [c for _, c, _ in fresh if c])
            by_fp = self._lookup(db, "SELECT fingerprint, id FROM entries WHERE fingerprint IN ({})",
                                 [f for _, _, f in fresh if f])
            next_id = db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM entries").fetchone()[0]
            rows, twins = [], []
            for entry, canon, fp in fresh:
                twin = (by_canon.get(canon) if canon else None) or (by_fp.get(fp) if fp else None)
                if twin is not None:
                    twins.append((twin, entry.source_name, entry.link, entry.key, seen_at))
                    continue
                entry.id, next_id = next_id, next_id + 1
                entry.first_seen = now
                if canon:
                    by_canon[canon] = entry.id
                if fp:
                    by_fp[fp] = entry.id
                rows.append((
                    entry.id, entry.key, entry.source_kind, entry.source_name, entry.title, entry.link, canon, fp,
                    entry.guid, entry.author, _ts(entry.published), _ts(entry.updated), seen_at,
                    entry.summary_html, entry.content_html, ",".join(entry.flags),
                ))
                new.append(entry)
            db.executemany(
                "INSERT INTO entries (id, key, source_kind, source_name, title, link, canonical_link, fingerprint,"
                " guid, author, published, updated, first_seen, summary_html, content_html, flags)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            db.executemany(
                "INSERT OR IGNORE INTO entry_sources (entry_id, source_name, link, key, first_seen)"
                " VALUES (?, ?, ?, ?, ?)",
                twins,
            )
        return new

    @staticmethod
    def _lookup(db, sql: str, values: list, *, twice: bool = False, chunk: int = 400) -> dict:
        """{value: column 2} for the rows whose first column is one of values (IN lists, chunked)."""
        found: dict = {}
        values = list(dict.fromkeys(values))
        for i in range(0, len(values), chunk):
            part = values[i : i + chunk]
            marks = ",".join("?" * len(part))
            query = sql.format(marks, marks) if twice else sql.format(marks)
            for k, v in db.execute(query, part * 2 if twice else part):
                found.setdefault(k, v)
        return found

    def save_classifications(self, pairs: Iterable[tuple[int, Classification]]) -> None:
        with self.transaction() as db:
            for entry_id, c in pairs:
                db.execute(
                    "UPDATE entries SET theme = ?, themes = ?, scores = ?, evidence = ? WHERE id = ?",
                    (c.theme, json.dumps(c.themes), json.dumps(c.scores), _evidence_json(c), entry_id),
                )

    def pending(self) -> list[tuple[Entry, Classification | None]]:
        """Entries no briefing has included yet, oldest first."""
        rows = self.db.execute(
            "SELECT * FROM entries WHERE briefing_id IS NULL ORDER BY COALESCE(published, first_seen), id"
        ).fetchall()
        return self._with_sources(rows)

    def entries_of_briefing(self, briefing_id: int) -> list[tuple[Entry, Classification | None]]:
        rows = self.db.execute(
            "SELECT e.* FROM entries e JOIN briefing_entries b ON b.entry_id = e.id"
            " WHERE b.briefing_id = ? ORDER BY b.position",
            (briefing_id,),
        ).fetchall()
        return self._with_sources(rows)

    def find_entry(self, ref: str) -> tuple[Entry, Classification | None] | None:
        """An entry by id, key or link."""
        row = None
        if ref.isdigit():
            row = self.db.execute("SELECT * FROM entries WHERE id = ?", (int(ref),)).fetchone()
        if row is None:
            row = self.db.execute(
                "SELECT * FROM entries WHERE key = ? OR link = ? OR canonical_link = ?",
                (ref, ref, canonical_link(ref)),
            ).fetchone()
        return self._with_sources([row])[0] if row else None

    def theme_counts(self) -> dict[str | None, int]:
        return {
            row[0]: row[1]
            for row in self.db.execute("SELECT theme, COUNT(*) FROM entries GROUP BY theme")
        }

    def entry_counts_by_source(self) -> dict[str, int]:
        return {
            row[0]: row[1]
            for row in self.db.execute("SELECT source_name, COUNT(*) FROM entries GROUP BY source_name")
        }

    def _with_sources(self, rows) -> list[tuple[Entry, Classification | None]]:
        out = []
        for row in rows:
            entry = _entry(row)
            entry.sources = [(entry.source_name, entry.link)] + [
                (r["source_name"], r["link"])
                for r in self.db.execute(
                    "SELECT source_name, link FROM entry_sources WHERE entry_id = ? ORDER BY first_seen, source_name",
                    (entry.id,),
                )
            ]
            out.append((entry, _classification(row)))
        return out

    # -- corrections ---------------------------------------------------------

    def save_correction(self, entry_id: int, c: Classification, *, now: datetime) -> int | None:
        """Record the desk's classification of an entry and apply it wherever the entry is stored:
        the entry, and the briefing that settled it (its section, counts). Returns that briefing's id."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO corrections (entry_id, theme, also, created) VALUES (?, ?, ?, ?) ON CONFLICT (entry_id)"
                " DO UPDATE SET theme = excluded.theme, also = excluded.also, created = excluded.created",
                (entry_id, c.theme, json.dumps(c.themes[1:]), _ts(now)),
            )
            self.save_classifications([(entry_id, c)])
            row = db.execute("SELECT briefing_id FROM entries WHERE id = ?", (entry_id,)).fetchone()
            briefing_id = row["briefing_id"] if row else None
            if briefing_id is None:
                return None
            if c.theme is None:
                db.execute("DELETE FROM briefing_entries WHERE briefing_id = ? AND entry_id = ?", (briefing_id, entry_id))
            elif db.execute("UPDATE briefing_entries SET theme = ? WHERE briefing_id = ? AND entry_id = ?",
                            (c.theme, briefing_id, entry_id)).rowcount == 0:
                db.execute(
                    "INSERT INTO briefing_entries (briefing_id, entry_id, theme, position) SELECT ?, ?, ?,"
                    " COALESCE(MAX(position), -1) + 1 FROM briefing_entries WHERE briefing_id = ?",
                    (briefing_id, entry_id, c.theme, briefing_id),
                )
            counts = {r[0]: r[1] for r in db.execute(
                "SELECT COALESCE(theme, 'off-topic'), COUNT(*) FROM briefing_entries WHERE briefing_id = ? GROUP BY theme",
                (briefing_id,))}
            settled = db.execute("SELECT COUNT(*) FROM entries WHERE briefing_id = ?", (briefing_id,)).fetchone()[0]
            listed = sum(counts.values())
            db.execute(
                "UPDATE briefings SET theme_counts = ?, entry_count = ?, off_topic = ? WHERE id = ?",
                (json.dumps(counts), listed, settled - listed, briefing_id),
            )
            return briefing_id

    def corrections(self) -> list[tuple[Entry, str | None, tuple[str, ...], datetime]]:
        """(entry, theme or None for off-topic, secondary themes, when) for every correction, oldest first."""
        rows = self.db.execute(
            "SELECT e.*, c.theme AS c_theme, c.also AS c_also, c.created AS c_created"
            " FROM corrections c JOIN entries e ON e.id = c.entry_id ORDER BY c.created, c.entry_id"
        ).fetchall()
        return [(_entry(r), r["c_theme"], tuple(json.loads(r["c_also"])), _dt(r["c_created"])) for r in rows]

    # -- briefings ----------------------------------------------------------

    def save_briefing(
        self,
        briefing: Briefing,
        *,
        html: str,
        text: str,
        left_out: Iterable[int] = (),
        deliveries: Iterable[dict] = (),
    ) -> int:
        """Store a composed briefing, its outbox and its entries' inclusion, in one transaction.

        ``left_out`` are the ids of pending entries this briefing considered and
        left out (off-topic): they are settled by it too, so they are not
        reconsidered forever. ``deliveries`` (recipient, name, themes,
        message_id, status) are the briefing's outbox: from this commit on, the
        entries are never included again and each recipient is owed exactly
        one message.
        """
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO briefings (slug, title, created, period_start, period_end, entry_count, off_topic,"
                " theme_counts, html, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    briefing.slug, briefing.title, _ts(briefing.created), _ts(briefing.period_start),
                    _ts(briefing.period_end), briefing.entry_count, briefing.off_topic,
                    json.dumps(briefing.theme_counts), html, text,
                ),
            )
            briefing.id = cur.lastrowid
            position = 0
            for section in briefing.sections:
                for item in section.items:
                    db.execute(
                        "INSERT INTO briefing_entries (briefing_id, entry_id, theme, position) VALUES (?, ?, ?, ?)",
                        (briefing.id, item.entry.id, section.theme_id, position),
                    )
                    position += 1
            db.execute(
                "UPDATE entries SET briefing_id = ? WHERE briefing_id IS NULL AND id IN"
                " (SELECT entry_id FROM briefing_entries WHERE briefing_id = ?)",
                (briefing.id, briefing.id),
            )
            db.executemany(
                "UPDATE entries SET briefing_id = ? WHERE id = ? AND briefing_id IS NULL",
                [(briefing.id, i) for i in left_out],
            )
            db.executemany(
                "INSERT INTO deliveries (briefing_id, recipient, name, themes, message_id, status, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (briefing.id, d["recipient"], d.get("name", ""), json.dumps(list(d.get("themes", ()))),
                     d["message_id"], d.get("status", "pending"), _ts(briefing.created))
                    for d in deliveries
                ],
            )
        return briefing.id

    # -- the outbox ----------------------------------------------------------

    def due_deliveries(self, now: datetime, *, ignore_wait: bool = False) -> list[dict]:
        """Pending deliveries whose retry time has come, oldest briefing first."""
        rows = self.db.execute(
            "SELECT * FROM deliveries WHERE status = 'pending' AND (? OR next_try IS NULL OR next_try <= ?)"
            " ORDER BY briefing_id, id",
            (int(ignore_wait), _ts(now)),
        ).fetchall()
        return [dict(r) | {"themes": tuple(json.loads(r["themes"]))} for r in rows]

    def deliveries(self, statuses: Iterable[str] | None = None) -> list[dict]:
        query = "SELECT d.*, b.slug FROM deliveries d JOIN briefings b ON b.id = d.briefing_id"
        params: tuple = ()
        if statuses:
            statuses = list(statuses)
            query += f" WHERE d.status IN ({', '.join('?' * len(statuses))})"
            params = tuple(statuses)
        rows = self.db.execute(query + " ORDER BY d.briefing_id, d.id", params).fetchall()
        return [dict(r) | {"themes": tuple(json.loads(r["themes"]))} for r in rows]

    def record_delivery(
        self,
        delivery_id: int,
        *,
        status: str,
        error: str | None = None,
        next_try: datetime | None = None,
        sent_at: datetime | None = None,
        count_attempt: bool = True,
    ) -> None:
        """One delivery's outcome, committed at once: a crash right after loses no record of it."""
        self.db.execute(
            "UPDATE deliveries SET status = ?, last_error = ?, next_try = ?, sent_at = COALESCE(?, sent_at),"
            " attempts = attempts + ? WHERE id = ?",
            (status, error, _ts(next_try), _ts(sent_at), int(count_attempt), delivery_id),
        )

    def set_briefing_paths(self, briefing_id: int, html_path: str, text_path: str) -> None:
        self.db.execute(
            "UPDATE briefings SET html_path = ?, text_path = ? WHERE id = ?", (html_path, text_path, briefing_id)
        )

    def briefings(self) -> list[dict]:
        """Every briefing, newest first, without its bodies."""
        rows = self.db.execute(
            "SELECT id, slug, title, created, period_start, period_end, entry_count, off_topic, theme_counts,"
            " html_path, text_path FROM briefings ORDER BY created DESC, id DESC"
        ).fetchall()
        return [
            dict(row) | {"theme_counts": json.loads(row["theme_counts"]), "created": _dt(row["created"])}
            for row in rows
        ]

    def briefing_before(self, briefing_id: int | None) -> dict | None:
        """The briefing made just before this one (the newest, for one not stored yet)."""
        for row in self.briefings():
            if briefing_id is None or row["id"] < briefing_id:
                return row
        return None

    def reading_list(self) -> list[tuple[Entry, Classification | None]]:
        """Every reading-list document, with its stored classification."""
        rows = self.db.execute("SELECT * FROM entries WHERE source_kind = 'corpus' ORDER BY id").fetchall()
        return [(_entry(r), _classification(r)) for r in rows]

    def theme_history(self) -> list[dict]:
        """Every entry any briefing listed, with its theme and briefing, newest briefing first."""
        rows = self.db.execute(
            "SELECT e.*, be.theme AS listed_theme, be.position, b.id AS b_id, b.slug AS b_slug, b.title AS b_title,"
            " b.created AS b_created FROM briefing_entries be JOIN entries e ON e.id = be.entry_id"
            " JOIN briefings b ON b.id = be.briefing_id ORDER BY b.created DESC, b.id DESC, be.position"
        ).fetchall()
        return [
            {"entry": _entry(r), "classification": _classification(r), "theme": r["listed_theme"],
             "briefing": {"id": r["b_id"], "slug": r["b_slug"], "title": r["b_title"], "created": _dt(r["b_created"])}}
            for r in rows
        ]

    def last_briefing(self) -> dict | None:
        found = self.briefings()
        return found[0] if found else None

    def slug_taken(self, slug: str) -> bool:
        return self.db.execute("SELECT 1 FROM briefings WHERE slug = ?", (slug,)).fetchone() is not None


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _evidence_json(c: Classification) -> str:
    return json.dumps(
        {theme: [[m.term, m.field, m.count, m.weight] for m in matches] for theme, matches in c.evidence.items()}
    )


def _entry(row: sqlite3.Row) -> Entry:
    return Entry(
        id=row["id"],
        key=row["key"],
        source_kind=row["source_kind"],
        source_name=row["source_name"],
        title=row["title"],
        link=row["link"],
        guid=row["guid"],
        author=row["author"],
        published=_dt(row["published"]),
        updated=_dt(row["updated"]),
        first_seen=_dt(row["first_seen"]),
        summary_html=row["summary_html"],
        content_html=row["content_html"],
        flags=tuple(f for f in row["flags"].split(",") if f),
    )


def _classification(row: sqlite3.Row) -> Classification | None:
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
