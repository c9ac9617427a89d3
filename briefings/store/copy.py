"""`briefings state copy`: every row of one store into another, empty one (SQLite to PostgreSQL, and back)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from briefings.errors import StoreError

if TYPE_CHECKING:
    from briefings.store import Store

# The tables of the state, parents first.
TABLES = ("feeds", "briefings", "entries", "entry_sources", "briefing_entries", "deliveries", "meta",
          "corrections", "suppressions")
_CHUNK = 500


def _columns(store: "Store", table: str) -> list[str]:
    return [d[0] for d in store.db.execute(f"SELECT * FROM {table} LIMIT 0").description]


def counts(store: "Store") -> dict[str, int]:
    """Rows per table."""
    return {table: store.db.one(f"SELECT COUNT(*) FROM {table}")[0] for table in TABLES}


def copy_state(source: "Store", target: "Store") -> dict[str, int]:
    """Copy every row of source into target (migrated, empty), in one transaction; the rows per table,
    checked: a count that differs after the copy undoes it."""
    found = counts(target)
    if any(found.values()):
        held = ", ".join(f"{n} {t}" for t, n in found.items() if n)
        raise StoreError(f"{target.where}: the target state is not empty ({held})",
                         "copy into a new, empty database or file")
    wanted = counts(source)
    with target.transaction():
        for table in TABLES:
            shared = [c for c in _columns(source, table) if c in set(_columns(target, table))]
            names = ", ".join(shared)
            insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(shared))})"
            cursor = source.db.execute(f"SELECT {names} FROM {table}")
            while True:
                rows = cursor.fetchmany(_CHUNK)
                if not rows:
                    break
                target.db.executemany(insert, [tuple(r) for r in rows])
        reset = getattr(target.db.dialect, "after_copy", None)
        if reset is not None:
            reset(target.db)
        target.fulltext.build()  # the search index is the target's own: built from the entries copied
        copied = counts(target)
        if copied != wanted:
            raise StoreError(f"the copy holds {copied}, the source {wanted}: nothing was copied",
                             "run it again; if it differs again, report it")
    return copied
