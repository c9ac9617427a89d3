"""The store's one connection: its fault boundary, its transactions, and the text form of its values.

Every sqlite3.Error that is a storage fault (a damaged state file, a full disk,
a read-only folder) leaves the connection as a StoreError naming the file and
the fix; a bug stays itself. ``Database`` holds the connection its dialect
opened and runs the transactions; the parts of the store (feeds, entries,
briefings, outbox, meta) run their statements through it.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from briefings.errors import StoreError, storage_fault

if TYPE_CHECKING:
    from briefings.store.dialect import Dialect


def _fault(exc: BaseException, path) -> None:
    """Raise exc as the StoreError it means (a damaged state file, a full disk...); a bug stays itself."""
    error = storage_fault(exc, path, "the state file", setting="[state] path")
    if error is None:
        raise exc
    raise error from exc


def _guarded(method):
    """method, with its storage faults raised as StoreErrors naming the state file."""

    def call(self, *args):
        try:
            return method(self, *args)
        except sqlite3.Error as exc:
            _fault(exc, self.connection.path)

    return call


class _Cursor(sqlite3.Cursor):
    """A cursor whose storage faults, when run or read, are StoreErrors naming the state file."""

    execute = _guarded(sqlite3.Cursor.execute)
    executemany = _guarded(sqlite3.Cursor.executemany)
    fetchone = _guarded(sqlite3.Cursor.fetchone)
    fetchall = _guarded(sqlite3.Cursor.fetchall)
    __next__ = _guarded(sqlite3.Cursor.__next__)


class Connection(sqlite3.Connection):
    """The store's boundary: every sqlite3.Error that is a storage fault leaves it as a StoreError."""

    def __init__(self, database, *args, **kwargs):
        self.path = database
        try:
            super().__init__(database, *args, **kwargs)
        except sqlite3.Error as exc:
            _fault(exc, database)

    def cursor(self, factory=_Cursor):
        return super().cursor(factory)

    def execute(self, *args):
        return self.cursor().execute(*args)

    def executemany(self, *args):
        return self.cursor().executemany(*args)

    def backup(self, target, **kwargs):
        try:
            return super().backup(target, **kwargs)
        except sqlite3.Error as exc:
            _fault(exc, self.path)

    def close(self):
        try:
            super().close()
        except sqlite3.Error as exc:
            _fault(exc, self.path)


def connect(path: str | Path, **kwargs) -> Connection:
    return sqlite3.connect(path, factory=Connection, **kwargs)


def ts(value: datetime | None) -> str | None:
    """A time as the store keeps it: ISO 8601 text in UTC."""
    return value.astimezone(timezone.utc).isoformat() if value else None


def dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class Database:
    """One connection to the state, opened by its dialect, and its transactions."""

    def __init__(self, path: str | Path, dialect: "Dialect"):
        self.path = path
        self.dialect = dialect
        self.connection = dialect.open(path)

    def execute(self, sql: str, params: Iterable[Any] = ()):
        """Run one statement; the cursor, to read its rows (each read by column name)."""
        return self.connection.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        self.connection.executemany(sql, rows)

    def one(self, sql: str, params: Iterable[Any] = ()):
        """The first row of a query, or None."""
        return self.execute(sql, params).fetchone()

    def all(self, sql: str, params: Iterable[Any] = ()) -> list:
        return self.execute(sql, params).fetchall()

    def insert(self, sql: str, params: Iterable[Any]) -> int:
        """Run an INSERT and return the id the database gave the new row (``sql`` has no RETURNING)."""
        return self.execute(f"{sql} RETURNING id", params).fetchall()[0][0]

    def insert_new(self, sql: str, rows: list[tuple]) -> dict:
        """A multi-row INSERT (``sql`` has ``VALUES {}``, ``ON CONFLICT DO NOTHING`` and ``RETURNING`` two
        columns), by chunks the dialect's bound parameters allow: {column 1: column 2} of the rows it stored."""
        found: dict = {}
        if not rows:
            return found
        width = len(rows[0])
        chunk = max(1, self.dialect.max_params // width)
        one = "(" + ",".join("?" * width) + ")"
        run = getattr(self.dialect, "insert_new", None)  # PostgreSQL: a deadlock with another collector is retried
        for i in range(0, len(rows), chunk):
            part = rows[i : i + chunk]
            query = sql.format(",".join([one] * len(part)))
            params = [value for row in part for value in row]
            found.update((k, v) for k, v in (run(self, query, params) if run else self.all(query, params)))
        return found

    def lookup(self, sql: str, values: list, *, twice: bool = False) -> dict:
        """{value: column 2} for the rows whose first column is one of values; ``sql`` has ``IN ({})``
        (twice: two of them, both given the values), filled by chunks the dialect allows."""
        found: dict = {}
        values = list(dict.fromkeys(values))
        chunk = self.dialect.max_in_list
        for i in range(0, len(values), chunk):
            part = values[i : i + chunk]
            marks = ",".join("?" * len(part))
            query = sql.format(marks, marks) if twice else sql.format(marks)
            for k, v in self.execute(query, part * 2 if twice else part):
                found.setdefault(k, v)
        return found

    @property
    def in_transaction(self) -> bool:
        return self.connection.in_transaction

    @contextmanager
    def transaction(self) -> Iterator["Database"]:
        """One write transaction; a transaction inside another joins it."""
        if self.connection.in_transaction:
            yield self
            return
        self.execute(self.dialect.begin)
        try:
            yield self
        except BaseException:
            # The database may have rolled back already (a full disk, a damaged file); the first error is the one to tell.
            if self.connection.in_transaction:
                try:
                    self.execute("ROLLBACK")
                except StoreError:
                    pass
            raise
        else:
            self.execute("COMMIT")

    def close(self) -> None:
        self.connection.close()
