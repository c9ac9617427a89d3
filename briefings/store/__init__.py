"""The state: one database, its schema, and its parts by concern, each returning the dataclasses of briefings.models.

    store = Store(path)           # an SQLite file; created and migrated on first use
    store.feeds                   # feed state: validators and health (FeedState)
    store.entries                 # entries, duplicate detection, classifications (Entry, Classification)
    store.briefings               # briefings made, their entries, the archive's history (StoredBriefing, HistoryItem)
    store.outbox                  # the deliveries each briefing owes (Delivery)
    store.meta                    # facts kept across runs (last briefing run, archive written through)
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
from briefings.store.db import Database, _fault
from briefings.store.dialect import SQLite
from briefings.store.entries import Entries
from briefings.store.feeds import Feeds
from briefings.store.meta import Meta
from briefings.store.outbox import Outbox
from briefings.store.schema import MIGRATIONS, SCHEMA_VERSION, migrate

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Store"]


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _fault(exc, self.path)
        self.db = Database(self.path, SQLite())
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
        self.outbox = Outbox(self.db)
        self.briefings = Briefings(self.db, self.outbox)
        self.meta = Meta(self.db)

    @classmethod
    def in_memory_copy(cls, path: str | Path) -> "Store":
        """A store in memory holding what the state at path holds (nothing, when there is none yet), migrated:
        a dry run works on it and writes nothing."""
        memory = cls(":memory:")
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
        migrate(self.db)
