"""The outbox: each briefing owes each destination exactly one message, on every channel.

The deliveries are stored with the briefing, in the transaction that settles
its entries (``outbox_rows``): one per e-mail recipient and one per webhook,
each naming its channel (channels.py). ``send_pending`` then sends what is
due, recording each outcome the moment the destination accepts or refuses it.
A crash at any point leaves the rest pending; the next run sends only those.
Every channel is retried by the same rule (``retry_wait``): a temporary
failure is tried again later, with backoff (and not before a Retry-After); a
permanent one fails that delivery and the others go on; after the channel's
max_attempts a delivery is failed and reported, never dropped. A channel that
cannot be reached (the SMTP server) costs one try and one backoff for all its
deliveries due; a fault of the configuration (certificate, ca_file, login)
stops that channel's batch at once and costs no try.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from briefings.config import Config
from briefings.deliver.channels import (CHANNELS, Channel, Destination, PermanentFailure, RetryPolicy,
                                        TemporaryFailure)
from briefings.errors import DeliveryError
from briefings.clock import backoff
from briefings.models import Briefing, Delivery, stored_id

if TYPE_CHECKING:
    from briefings.store import Store

MAX_WAIT = timedelta(days=1)


@dataclass
class DeliveryReport:
    sent: list[str] = field(default_factory=list)  # destinations: e-mail addresses, webhook names
    retrying: list[dict] = field(default_factory=list)  # {channel, recipient, error, next_try}
    failed: list[dict] = field(default_factory=list)  # {channel, recipient, error}
    skipped: int = 0
    error: str | None = None  # a problem that stopped a channel altogether (config, login)
    unreachable: dict | None = None  # a channel could not be reached: {channel, error, deliveries, next_try}
    waiting: int = 0  # deliveries still pending after this send, waiting out a backoff
    next_try: datetime | None = None  # the earliest of their retry times
    stopped: bool = False  # a stop request ended sending between two deliveries; the rest stays pending
    channels: dict[str, list[str]] = field(default_factory=dict)  # channel -> destinations sent, for each channel due
    errors: list[dict] = field(default_factory=list)  # {channel, error}: each channel that stopped

    def as_dict(self) -> dict:
        return {"sent": self.sent, "retrying": self.retrying, "failed": self.failed, "error": self.error,
                "errors": self.errors, "unreachable": self.unreachable, "waiting": self.waiting,
                "next_try": self.next_try, "channels": self.channels}


def restrict(briefing: Briefing, themes: tuple[str, ...]) -> Briefing:
    """The briefing with only the sections (and reading-list documents) of the given themes (all when none given).

    Every other field is the briefing's own (dataclasses.replace), so a field added later is kept too.
    """
    if not themes:
        return briefing
    wanted = set(themes)
    reading = [replace(r, themes=[t for t in r.themes if t in wanted]) for r in briefing.reading
               if any(t in wanted for t in r.themes)]
    return replace(briefing, sections=[s for s in briefing.sections if s.theme_id in wanted], reading=reading,
                   top=[item for item in briefing.top if item.classification.theme in wanted])


def outbox_rows(config: Config, briefing: Briefing) -> list[Delivery]:
    """One delivery per destination of every configured channel, for a briefing about to be stored."""
    rows = []
    for kind, cls in CHANNELS.items():
        channel: Channel = cls(config)
        for dest in channel.destinations(briefing):
            mine = restrict(briefing, dest.themes)
            rows.append(Delivery(channel=kind, recipient=dest.address, name=dest.name, themes=dest.themes,
                                 message_id=dest.key,
                                 status="pending" if mine.entry_count or channel.send_empty else "skipped"))
    return rows


def retry_wait(policy: RetryPolicy, attempts: int, asked: float | None = None) -> timedelta:
    """The retry rule of every channel: retry_minutes, doubling with each try, at most a day; never
    sooner than the destination asked (Retry-After, in seconds)."""
    wait = backoff(attempts, timedelta(minutes=policy.retry_minutes), MAX_WAIT)
    return max(wait, min(MAX_WAIT, timedelta(seconds=asked))) if asked else wait


def _destination(delivery: Delivery) -> Destination:
    return Destination(delivery.channel, delivery.recipient, delivery.name, delivery.themes,
                       delivery.message_id or "")


def send_pending(config: Config, store: Store, *, now: datetime, load_briefing, ignore_wait: bool = False,
                 eml_dir=None, stop=None) -> DeliveryReport:
    """Send every due delivery this sender claims, each on its channel (all of them at once on SQLite; batch by
    batch, beside any other senders, on PostgreSQL); record each outcome as it happens."""
    report = DeliveryReport()
    due = store.outbox.claim(now, ignore_wait=ignore_wait)
    briefings: dict[int, Briefing] = {}
    variants: dict[tuple[int, tuple[str, ...]], Briefing] = {}
    channels: dict[str, Channel] = {}
    for kind, cls in CHANNELS.items():  # every channel configured is reported on, due or not
        if cls(config).configured:
            report.channels[kind] = []
    halted: set[str] = set()  # channels stopped for this batch: a configuration fault, or unreachable
    try:
        tried: set[int] = set()
        while due:
            for index, delivery in enumerate(due):
                if stop is not None and stop():
                    report.stopped = True
                    break
                kind = delivery.channel
                if kind in halted:
                    continue
                if kind == "email" and store.suppressions.contains(delivery.recipient):  # unsubscribed since
                    store.outbox.record(stored_id(delivery.id), status="skipped", error="unsubscribed",
                                        count_attempt=False)
                    report.skipped += 1
                    continue
                report.channels.setdefault(kind, [])
                if kind not in channels:
                    if kind not in CHANNELS:
                        why = f"unknown channel {kind!r} (this briefings knows {', '.join(CHANNELS)})"
                        store.outbox.record(stored_id(delivery.id), status="failed", error=why)
                        report.failed.append({"channel": kind, "recipient": delivery.recipient, "error": why})
                        continue
                    channels[kind] = CHANNELS[kind](config, now=now, eml_dir=eml_dir)
                channel = channels[kind]
                dest = _destination(delivery)
                bid = stored_id(delivery.briefing_id)
                if bid not in briefings:
                    briefings[bid] = load_briefing(bid)
                key = (bid, tuple(sorted(dest.themes)))
                if key not in variants:
                    variants[key] = restrict(briefings[bid], dest.themes)
                try:
                    message = channel.prepare(variants[key], dest)
                    channel.send(message)
                except DeliveryError as exc:  # configuration: nothing can be sent on it until fixed; no try counted
                    error = exc.message + (f" ({exc.hint})" if exc.hint else "")
                    report.errors.append({"channel": kind, "error": error})
                    report.error = "; ".join(e["error"] for e in report.errors)
                    for rest in due[index:]:
                        if rest.channel == kind:
                            store.outbox.record(stored_id(rest.id), status="pending", error=error, count_attempt=False)
                    halted.add(kind)
                    continue
                except TemporaryFailure as exc:
                    if exc.whole_channel:  # the channel, not this destination: one try and one backoff for all due
                        _back_off(channel, store, [d for d in due[index:] if d.channel == kind], str(exc), now, report)
                        halted.add(kind)
                        continue
                    _retry_or_fail(channel, store, delivery, dest, str(exc), exc.retry_after, now, report)
                    continue
                except PermanentFailure as exc:
                    store.outbox.record(stored_id(delivery.id), status="failed", error=str(exc))
                    report.failed.append({"channel": kind, "recipient": dest.address, "error": str(exc)})
                    continue
                store.outbox.record(stored_id(delivery.id), status="sent", sent_at=now)
                report.sent.append(dest.address)
                report.channels[kind].append(dest.address)
                channel.sent(message)
            else:
                # The whole batch went through. PostgreSQL claims by batches: claim the next (SQLite claimed all).
                if store.outbox.batch is not None and len(due) == store.outbox.batch:
                    tried.update(d.id for d in due if d.id is not None)
                    due = store.outbox.claim(now, ignore_wait=ignore_wait, skip=tried)
                    continue
            break
    finally:
        for channel in channels.values():
            channel.close()
    _count_waiting(store, now, report)
    return report


def _retry_or_fail(channel: Channel, store: Store, delivery: Delivery, dest: Destination, error: str, asked: float | None,
                   now: datetime, report: DeliveryReport) -> None:
    policy = channel.policy(dest)
    attempts = delivery.attempts + 1
    if attempts < policy.max_attempts:
        next_try = now + retry_wait(policy, attempts, asked)
        store.outbox.record(stored_id(delivery.id), status="pending", error=error, next_try=next_try)
        report.retrying.append({"channel": dest.channel, "recipient": dest.address, "error": error, "next_try": next_try})
    else:
        why = f"{error} (after {attempts} tries)"
        store.outbox.record(stored_id(delivery.id), status="failed", error=why)
        report.failed.append({"channel": dest.channel, "recipient": dest.address, "error": why})


def _back_off(channel: Channel, store: Store, rest: list[Delivery], error: str, now: datetime, report: DeliveryReport) -> None:
    """The channel cannot be reached: every delivery on it still due counts one try and waits until the same time."""
    policy = channel.policy(_destination(rest[0]))
    next_try = now + retry_wait(policy, min(d.attempts for d in rest) + 1)
    waiting = 0
    for delivery in rest:
        attempts = delivery.attempts + 1
        if attempts < policy.max_attempts:
            store.outbox.record(stored_id(delivery.id), status="pending", error=error, next_try=next_try)
            waiting += 1
        else:
            why = f"{error} (after {attempts} tries)"
            store.outbox.record(stored_id(delivery.id), status="failed", error=why)
            report.failed.append({"channel": delivery.channel, "recipient": delivery.recipient, "error": why})
    if waiting and report.unreachable is None:
        report.unreachable = {"channel": rest[0].channel, "error": error, "deliveries": waiting, "next_try": next_try}


def _count_waiting(store: Store, now: datetime, report: DeliveryReport) -> None:
    """How many deliveries are still waiting out a backoff after this send, and the earliest retry."""
    later = [d.next_try for d in store.outbox.list(("pending",)) if d.next_try and d.next_try > now]
    report.waiting, report.next_try = len(later), min(later, default=None)
