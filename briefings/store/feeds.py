"""Feed state: each feed's validators (ETag, Last-Modified, item digests) and health (failures, backoff)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable

from briefings.clock import backoff
from briefings.models import FeedResult, FeedState
from briefings.store.db import Database, dt, ts

# A failing feed is tried again at the next collect after one failure; after the second in a row it
# waits this long, doubled with each more failure, at most [fetch] backoff_max_hours.
FIRST_WAIT = timedelta(minutes=30)


class Feeds:
    def __init__(self, db: Database):
        self.db = db

    def get(self, name: str) -> FeedState | None:
        row = self.db.one("SELECT * FROM feeds WHERE name = ?", (name,))
        return _state(row) if row is not None else None

    def all(self) -> dict[str, FeedState]:
        return {row["name"]: _state(row) for row in self.db.execute("SELECT * FROM feeds")}

    def ensure_all(self, feeds: Iterable[tuple[str, str]]) -> dict[str, FeedState]:
        """ensure for every (name, url) at once, in one transaction; returns every feed's state."""
        feeds = list(feeds)
        states = self.all()
        if any(name not in states or states[name].url != url for name, url in feeds):
            with self.db.transaction():
                for name, url in feeds:
                    state = states.get(name)
                    if state is None or state.url != url:
                        self.ensure(name, url)
            states = self.all()
        return states

    def ensure(self, name: str, url: str) -> FeedState:
        """The feed's state; a new feed starts empty. A changed config URL resets its validators."""
        state = self.get(name)
        if state is None:
            self.db.execute("INSERT INTO feeds (name, url) VALUES (?, ?)", (name, url))
        elif state.url != url and state.moved_to != state.url:
            self.db.execute(
                "UPDATE feeds SET url = ?, etag = NULL, last_modified = NULL, disabled = 0,"
                " consecutive_failures = 0, next_try = NULL WHERE name = ?",
                (url, name),
            )
        found = self.get(name)
        assert found is not None
        return found

    def record(self, result: FeedResult, *, now: datetime, backoff_max_hours: float) -> None:
        """Store what one fetch gave: validators on success, health on failure."""
        if result.status in ("ok", "not-modified"):
            self.db.execute(
                "UPDATE feeds SET status = ?, last_attempt = ?, last_success = ?, last_error = ?,"
                " consecutive_failures = 0, next_try = NULL, etag = COALESCE(?, etag),"
                " last_modified = COALESCE(?, last_modified), title = COALESCE(?, title),"
                " url = COALESCE(?, url), moved_to = COALESCE(?, moved_to),"
                " item_hashes = COALESCE(?, item_hashes) WHERE name = ?",
                (
                    result.status, ts(now), ts(now), result.warning, result.etag, result.last_modified,
                    result.title, result.new_url, result.new_url, result.item_hashes, result.name,
                ),
            )
            return
        state = self.get(result.name)
        failures = (state.consecutive_failures if state else 0) + 1
        wait = backoff(failures - 1, FIRST_WAIT, timedelta(hours=backoff_max_hours))
        self.db.execute(
            "UPDATE feeds SET status = ?, last_attempt = ?, last_error = ?, consecutive_failures = ?,"
            " next_try = ?, disabled = ? WHERE name = ?",
            (result.status, ts(now), result.error, failures, ts(now + wait) if wait else None,
             int(result.status == "gone"), result.name),
        )


def _state(row) -> FeedState:
    return FeedState(
        name=row["name"], url=row["url"], title=row["title"], etag=row["etag"], last_modified=row["last_modified"],
        status=row["status"], last_attempt=dt(row["last_attempt"]), last_success=dt(row["last_success"]),
        last_error=row["last_error"], consecutive_failures=row["consecutive_failures"], next_try=dt(row["next_try"]),
        disabled=bool(row["disabled"]), moved_to=row["moved_to"],
        item_hashes=bytes(row["item_hashes"]) if row["item_hashes"] is not None else None,
    )
