"""What is particular to SQLite in the store, in one place.

The parts of the store write their statements in the SQL that SQLite and
PostgreSQL share: ``?`` placeholders, ``INSERT ... RETURNING id`` for new ids,
``ON CONFLICT ... DO UPDATE / DO NOTHING`` for upserts, times as ISO 8601 text.
A dialect holds the rest: how a connection is opened and tuned (PRAGMAs), how a
write transaction begins, where the schema version is kept and which
migrations build the schema, how many values an ``IN`` list may take, and how a
database is copied into memory for a dry run. A second backend is a second
class with these members (its driver translating the placeholders), not a
change to the parts.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Protocol

from briefings.store import db as _db
from briefings.store.schema import MIGRATIONS


class Dialect(Protocol):
    name: str
    begin: str  # the statement that starts a write transaction
    max_in_list: int  # values one IN (...) list takes
    migrations: list[str]  # migrations[i] takes the schema from version i to i + 1

    def open(self, target: Path) -> Any: ...
    def version(self, connection: Any) -> int: ...
    def set_version(self, connection: Any, version: int) -> None: ...
    def copy(self, source: Path, connection: Any) -> None: ...


class SQLite:
    """One SQLite file (or ``:memory:``), in WAL mode, with foreign keys on."""

    name = "sqlite"
    begin = "BEGIN IMMEDIATE"  # take the write lock at once, not at the first write
    max_in_list = 400  # well under SQLite's limit on bound parameters
    migrations = MIGRATIONS

    def open(self, target: Path) -> _db.Connection:
        # Autocommit (isolation_level None): transactions are begun and ended by Database.transaction.
        connection = _db.connect(target, timeout=30, isolation_level=None)
        try:
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            connection.close()
            raise
        return connection

    def version(self, connection: _db.Connection) -> int:
        return connection.execute("PRAGMA user_version").fetchone()[0]

    def set_version(self, connection: _db.Connection, version: int) -> None:
        connection.execute(f"PRAGMA user_version = {int(version)}")

    def copy(self, source: Path, connection: _db.Connection) -> None:
        """The whole database at source, copied into connection (an in-memory one, for a dry run)."""
        origin = _db.connect(source)
        try:
            origin.backup(connection)
        finally:
            origin.close()
