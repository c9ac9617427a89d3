"""The state: one database, its schema, and its parts by concern, each returning the dataclasses of briefings.models.

    store = Store(path)           # an SQLite file; created and migrated on first use
    store = Store.open(config.state)   # the SQLite file, or PostgreSQL when [state] url is set
    store.feeds                   # feed state: validators and health (FeedState)
    store.entries                 # entries, duplicate detection, classifications (Entry, Classification)
    store.briefings               # briefings made, their entries, the archive's history (StoredBriefing, HistoryItem)
    store.outbox                  # the deliveries each briefing owes (Delivery)
    store.meta                    # facts kept across runs (last briefing run, archive written through)
    store.corrections             # the desk's themes for entries, applied where they are stored (StoredCorrection)
    store.fulltext                # full-text search over every entry, ranked, with snippets (FTS5; PostgreSQL: tsvector)
    store.suppressions            # the recipients who unsubscribed
    with store.transaction(): ... # one write transaction across parts; an inner one joins it

All SQL of briefings lives in this package. The parts write the SQL SQLite and
PostgreSQL share; what is SQLite's own is in ``dialect`` (and its schema in
``schema``), so another database is another dialect behind the same parts.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from briefings.errors import StoreError
from briefings.store.briefings import Briefings
from briefings.store.corrections import Corrections
from briefings.store.db import Database, _fault
from briefings.store.dialect import Dialect, SQLite
from briefings.store.entries import Entries
from briefings.store.feeds import Feeds
from briefings.store.fulltext import full_text
from briefings.store.meta import Meta
from briefings.store.outbox import Outbox
from briefings.store.schema import MIGRATIONS, SCHEMA_VERSION, migrate
from briefings.store.suppressions import Suppressions

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Store"]


def is_url(target: str | Path) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def state_version(state) -> tuple[int | None, int]:
    """The schema version of the store [state] names (None: no SQLite file yet) and this briefings' newest;
    nothing is created or migrated."""
    if not state.url:
        if not Path(state.path).exists():
            return None, SCHEMA_VERSION
        dialect: Dialect = SQLite()
        target: str | Path = state.path
    else:
        from briefings.store.postgres import Postgres

        dialect, target = Postgres(state.password_env), state.url
    connection = dialect.open(target)
    try:
        return dialect.version(connection), len(dialect.migrations)
    finally:
        connection.close()


class Store:
    def __init__(self, path: str | Path, *, password_env: str = "", lease_seconds: float = 300.0):
        """The state at path: an SQLite file, or a postgresql:// URL (the password from the variable
        password_env names, else libpq's PGPASSWORD or ~/.pgpass)."""
        self.postgres = is_url(path)
        dialect: Dialect
        if self.postgres:
            from briefings.store.postgres import Postgres

            self.path: str | Path = str(path)
            dialect = Postgres(password_env)
        else:
            self.path = Path(path)
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                _fault(exc, self.path)
            dialect = SQLite()
        self.db = Database(self.path, dialect)
        try:
            self.migrate()
        except BaseException:
            try:
                self.db.close()
            except StoreError:
                pass  # the first error is the one to tell
            raise
        self.feeds = Feeds(self.db)
        self.entries = Entries(self.db)
        if self.postgres:
            from datetime import timedelta

            from briefings.store.postgres import PgOutbox

            self.outbox: Outbox = PgOutbox(self.db, timedelta(seconds=lease_seconds))
        else:
            self.outbox = Outbox(self.db)
        self.briefings = Briefings(self.db, self.outbox)
        self.meta = Meta(self.db)
        self.corrections = Corrections(self.db, self.entries)
        self.fulltext = full_text(self.db)
        self.suppressions = Suppressions(self.db)

    @classmethod
    def open(cls, state) -> "Store":
        """The store [state] names (a StateSettings): PostgreSQL when url is set, else the SQLite file at path."""
        if state.url:
            return cls(state.url, password_env=state.password_env, lease_seconds=state.lease_seconds)
        return cls(state.path)

    @classmethod
    def in_memory_copy(cls, path: str | Path, *, password_env: str = "") -> "Store":
        """A store in memory holding what the state at path holds (nothing, when there is none yet), migrated:
        a dry run works on it and writes nothing."""
        memory = cls(":memory:")
        if is_url(path):
            from briefings.store.copy import copy_state

            with cls(path, password_env=password_env) as source_store:
                copy_state(source_store, memory)
            return memory
        source = Path(path)
        if source.exists():
            memory.db.dialect.copy(source, memory.db.connection)
            memory.migrate()
        return memory

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; a transaction inside another joins it."""
        with self.db.transaction():
            yield

    @property
    def version(self) -> int:
        """The schema version of the database."""
        return self.db.dialect.version(self.db.connection)

    def migrate(self) -> None:
        own = getattr(self.db.dialect, "migrate", None)  # PostgreSQL: one transaction under an advisory lock
        own(self.db) if own is not None else migrate(self.db)

    @property
    def where(self) -> str:
        """The SQLite file, or the PostgreSQL host and database (never a password)."""
        if self.postgres:
            from briefings.store.postgres import describe

            return describe(str(self.path))
        return str(self.path)

    @property
    def kind(self) -> str:
        """Which store: sqlite or postgresql."""
        return self.db.dialect.name
