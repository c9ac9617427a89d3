"""The SQLite schema, as migrations.

MIGRATIONS[i] takes a database from version i to i+1 (SQL statements, or a
function of the database for a step SQL alone cannot do); ``migrate`` runs each in
one transaction, so a crash mid-migration leaves the previous version intact.
The dialect keeps the version (SQLite: ``PRAGMA user_version``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from briefings.errors import StoreError
from briefings.store import fulltext

if TYPE_CHECKING:
    from briefings.store.db import Database

MIGRATIONS: list[str | Callable[["Database"], None]] = [
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
    # 4 -> 5: each delivery names its channel ('email', 'webhook'); recipient is its destination on that
    # channel (an e-mail address, a webhook's name). The deliveries stored before are e-mail.
    """
    ALTER TABLE deliveries ADD COLUMN channel TEXT NOT NULL DEFAULT 'email';
    """,
    # 5 -> 6: the story each briefed entry was listed in (the same event told by several feeds), so a
    # later briefing tells a story it continues and links back. Entries briefed before have none.
    """
    ALTER TABLE briefing_entries ADD COLUMN story TEXT;
    CREATE INDEX briefing_entries_story ON briefing_entries(story);
    """,
    # 6 -> 7: the desk's corrections (`briefings themes teach`): the themes an entry was given by hand
    # (theme NULL: off-topic; also: the secondary themes, a JSON list).
    """
    CREATE TABLE corrections (
        entry_id INTEGER PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
        theme TEXT,
        also TEXT NOT NULL DEFAULT '[]',
        created TEXT NOT NULL
    );
    """,
    # 7 -> 8: the suppression list: recipients who unsubscribed (email: the address lowercased; address: as given).
    """
    CREATE TABLE suppressions (
        email TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        list_id TEXT NOT NULL DEFAULT '',
        via TEXT NOT NULL,
        created TEXT NOT NULL
    );
    """,
    # 8 -> 9: full-text search (FTS5) over every entry, built here from the entries already stored.
    fulltext.create,
]

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: "Database") -> None:
    """Bring the database to the dialect's newest schema version; refuse one newer than this briefings."""
    migrations = db.dialect.migrations
    latest = len(migrations)
    version = db.dialect.version(db.connection)
    if version > latest:
        raise StoreError(
            f"{db.path}: state file is schema version {version}, newer than this briefings ({latest})",
            "upgrade briefings",
        )
    for target in range(version, latest):
        # executescript commits first, so run the statements one by one in our transaction.
        with db.transaction():
            step = migrations[target]
            if callable(step):
                step(db)
            else:
                for statement in _statements(step):
                    db.execute(statement)
            db.dialect.set_version(db.connection, target + 1)


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
