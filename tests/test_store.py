"""The store's boundaries: all SQL inside briefings/store, one backoff rule, the dry run's copy, ids from the database."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from briefings.clock import backoff
from briefings.models import Entry, FeedState
from briefings.store import Store

PACKAGE = Path(__file__).resolve().parent.parent / "briefings"
SQL = re.compile(r"\.execute(many)?\(|\.db\.|\b(SELECT|INSERT INTO|DELETE FROM|CREATE TABLE|PRAGMA)\b|\bUPDATE \w+ SET\b")
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)


def test_no_module_outside_the_store_runs_sql():
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py")) if PACKAGE / "store" not in path.parents
        for number, line in enumerate(path.read_text().splitlines(), 1) if SQL.search(line)
    ]
    assert found == []


HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    "failures, base, cap, wait",
    [
        (0, HOUR, 24 * HOUR, timedelta(0)),  # nothing failed: no wait
        (1, HOUR, 24 * HOUR, HOUR),  # the base after the first failure
        (2, HOUR, 24 * HOUR, 2 * HOUR),
        (4, HOUR, 24 * HOUR, 8 * HOUR),
        (5, HOUR, 24 * HOUR, 16 * HOUR),
        (6, HOUR, 24 * HOUR, 24 * HOUR),  # 32 hours, capped
        (10_000, HOUR, 24 * HOUR, 24 * HOUR),  # far past what a timedelta holds: still the cap
        (3, timedelta(seconds=1.5), HOUR, timedelta(seconds=6)),
        (3, timedelta(0), HOUR, timedelta(0)),  # a base of 0: never waits
        (3, HOUR, timedelta(0), timedelta(0)),  # a cap of 0: never waits
    ],
)
def test_backoff_doubles_from_the_base_up_to_the_cap(failures, base, cap, wait):
    assert backoff(failures, base, cap) == wait


def _entry(i: int, **fields) -> Entry:
    values = {"key": f"k{i}", "source_kind": "feed", "source_name": "norms", "title": f"Story number {i}",
              "link": f"https://norms.example.org/{i}", "summary_html": f"<p>Story {i} says things.</p>"} | fields
    return Entry(**values)


def test_ids_come_from_the_database_and_a_twin_in_the_same_batch_joins_the_first(tmp_path):
    with Store(tmp_path / "s.sqlite3") as store:
        first = store.entries.add([_entry(1), _entry(2)], now=NOW, text_of=lambda e: e.summary_html)
        twin = _entry(3, link="https://www.norms.example.org/4?utm_source=x", source_name="other")
        later = store.entries.add([_entry(4), twin], now=NOW, text_of=lambda e: e.summary_html)
        ids = [id_ for (id_,) in store.db.execute("SELECT id FROM entries ORDER BY id")]
        sources = store.db.execute("SELECT entry_id, source_name, key FROM entry_sources").fetchall()
    assert [e.id for e in first + later] == ids and len(set(ids)) == 3
    assert [tuple(r) for r in sources] == [(later[0].id, "other", "k3")]


def test_feed_state_is_a_dataclass_with_times_and_flags_typed(tmp_path):
    from briefings.models import FeedResult

    with Store(tmp_path / "s.sqlite3") as store:
        store.feeds.ensure("norms", "https://norms.example.org/feed")
        store.feeds.record(FeedResult("norms", "u", "gone", error="HTTP 410"), now=NOW, backoff_max_hours=6)
        state = store.feeds.get("norms")
    assert state == FeedState(name="norms", url="https://norms.example.org/feed", status="gone", last_attempt=NOW,
                              last_error="HTTP 410", consecutive_failures=1, disabled=True)


def test_the_in_memory_copy_holds_the_state_and_writes_nothing_back(tmp_path):
    path = tmp_path / "s.sqlite3"
    with Store(path) as store:
        store.entries.add([_entry(1)], now=NOW, text_of=lambda e: e.summary_html)
    before = path.read_bytes()
    copy = Store.in_memory_copy(path)
    try:
        assert [e.title for e, _ in copy.entries.pending()] == ["Story number 1"]
        copy.entries.add([_entry(2)], now=NOW, text_of=lambda e: e.summary_html)
        assert len(copy.entries.pending()) == 2
    finally:
        copy.close()
    assert path.read_bytes() == before
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM entries").fetchone() == (1,)


def test_the_in_memory_copy_of_no_state_is_an_empty_store(tmp_path):
    copy = Store.in_memory_copy(tmp_path / "none.sqlite3")
    try:
        assert copy.entries.pending() == [] and copy.briefings.all() == []
    finally:
        copy.close()
    assert not (tmp_path / "none.sqlite3").exists()
