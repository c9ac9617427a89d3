"""The outbox: the deliveries each briefing owes, and each one's outcome."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Collection, Iterable

from briefings.models import Delivery, DeliveryStatus
from briefings.store.db import Database, dt, ts


class Outbox:
    batch: int | None = None  # claim gives every due delivery at once: on SQLite the job lock keeps one sender
    record_also = ""  # more to set when an outcome is recorded (PostgreSQL: the end of the claim)

    def __init__(self, db: Database):
        self.db = db

    def add(self, briefing_id: int, deliveries: Iterable[Delivery], *, created: datetime) -> None:
        """A briefing's deliveries, stored in the transaction that stores it (Briefings.save)."""
        self.db.executemany(
            "INSERT INTO deliveries (briefing_id, channel, recipient, name, themes, message_id, status, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(briefing_id, d.channel, d.recipient, d.name, json.dumps(list(d.themes)), d.message_id, d.status,
              ts(created)) for d in deliveries],
        )

    def due(self, now: datetime, *, ignore_wait: bool = False) -> list[Delivery]:
        """Pending deliveries whose retry time has come (all pending ones, ignoring the wait), oldest briefing first."""
        query = "SELECT d.*, b.slug FROM deliveries d JOIN briefings b ON b.id = d.briefing_id WHERE d.status = 'pending'"
        params: tuple = ()
        if not ignore_wait:
            query += " AND (d.next_try IS NULL OR d.next_try <= ?)"
            params = (ts(now),)
        return [_delivery(r) for r in self.db.execute(query + " ORDER BY d.briefing_id, d.id", params)]

    def claim(self, now: datetime, *, ignore_wait: bool = False, skip: Collection[int] = ()) -> list[Delivery]:
        """The due deliveries this sender is to send (a batch of at most ``batch``; None: all of them, and
        ``skip``, the ids tried already in this send, never comes into play)."""
        return self.due(now, ignore_wait=ignore_wait)

    def list(self, statuses: Iterable[DeliveryStatus] | None = None) -> list[Delivery]:
        """The deliveries in these statuses (all when none given), oldest briefing first."""
        query = "SELECT d.*, b.slug FROM deliveries d JOIN briefings b ON b.id = d.briefing_id"
        params: tuple = ()
        if statuses:
            params = tuple(statuses)
            query += f" WHERE d.status IN ({', '.join('?' * len(params))})"
        return [_delivery(r) for r in self.db.execute(query + " ORDER BY d.briefing_id, d.id", params)]

    def record(
        self,
        delivery_id: int,
        *,
        status: DeliveryStatus,
        error: str | None = None,
        next_try: datetime | None = None,
        sent_at: datetime | None = None,
        count_attempt: bool = True,
    ) -> None:
        """One delivery's outcome, committed at once: a crash right after loses no record of it."""
        self.db.execute(
            "UPDATE deliveries SET status = ?, last_error = ?, next_try = ?, sent_at = COALESCE(?, sent_at),"
            f" attempts = attempts + ?{self.record_also} WHERE id = ?",
            (status, error, ts(next_try), ts(sent_at), int(count_attempt), delivery_id),
        )


def _delivery(row) -> Delivery:
    return Delivery(
        id=row["id"], briefing_id=row["briefing_id"], slug=row["slug"], channel=row["channel"], recipient=row["recipient"],
        name=row["name"],
        themes=tuple(json.loads(row["themes"])), message_id=row["message_id"], status=row["status"],
        attempts=row["attempts"], last_error=row["last_error"], next_try=dt(row["next_try"]),
        sent_at=dt(row["sent_at"]), created=dt(row["created"]),
    )
