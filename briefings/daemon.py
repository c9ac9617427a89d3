"""`briefings daemon`: collect through the week, make and send the briefing on schedule.

Jobs run one at a time in the main thread, on a `schedule.Scheduler` whose jobs
take their next run from briefings.timetable (time-zone and DST aware). Every job
holds the job lock beside the state file, so a `briefings run` from cron and the
daemon never work the store at once. The daemon itself holds the daemon lock for
its whole life: one daemon per state file.

Signals: SIGTERM and SIGINT stop it (no new job starts; a running job stops at
its next safe point: between two feeds, two entries classified, two sections
rendered or two recipients, where the store is consistent); SIGHUP reloads
config.toml, keeping the old config if the new one is broken.

Nothing here prints: it logs to the "briefings" logger, which the CLI points at
stderr or a file.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

import schedule

from briefings import config as config_module
from briefings import timetable
from briefings.clock import backoff, utcnow
from briefings.config import Config
from briefings.errors import BriefingsError
from briefings.lock import LockBusy, daemon_lock, job_lock
from briefings.signals import StopRequest

log = logging.getLogger("briefings.daemon")
MAX_RETRY = timedelta(hours=1)
TAKEOVER_POLL = 1.0  # seconds between two looks, by a daemon standing by on PostgreSQL, at the daemon lock


class TimetableJob(schedule.Job):
    """A schedule job whose next run comes from a timetable Spec, in the configured time zone."""

    def __init__(self, spec: timetable.Spec, tz, scheduler: schedule.Scheduler, name: str):
        super().__init__(1, scheduler)
        self.spec, self.tz, self.name = spec, tz, name
        self.unit = "seconds"  # unused by our next-run rule; keeps schedule's repr happy
        self.next_utc: datetime | None = None

    def _schedule_next_run(self) -> None:
        self.next_utc = self.spec.next_after(utcnow(), self.tz)
        # schedule compares naive local times; convert once, here.
        self.next_run = self.next_utc.astimezone().replace(tzinfo=None)

    def __repr__(self) -> str:
        return f"<{self.name} {self.spec.text!r} next {self.next_utc:%Y-%m-%d %H:%M:%S} UTC>"


@dataclass
class Daemon:
    """The scheduled loop. ``run()`` returns the exit status."""

    config_path: Path
    config: Config
    tick: float = 1.0  # longest sleep between two looks at the clock, seconds
    stopping: threading.Event = field(default_factory=threading.Event)
    reload_requested: bool = False
    failures: dict[str, int] = field(default_factory=dict)
    retries: dict[str, schedule.Job] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scheduler = schedule.Scheduler()
        self.started = utcnow()

    # -- the loop ---------------------------------------------------------------

    def run(self) -> int:
        instance = daemon_lock(self.config.state)
        if not self.config.state.postgres:
            instance.acquire(0)  # LockBusy: a second daemon goes no further
        previous = self._install_reload()
        try:
            with StopRequest((signal.SIGTERM, signal.SIGINT), event=self.stopping, on_signal=self._on_stop_signal):
                if self.config.state.postgres and not self._stand_by(instance):
                    return 0
                self._plan()
                log.info("daemon started (pid %s), state %s, time zone %s", os.getpid(), self.config.state.where,
                         self.config.schedule.timezone)
                self._log_next()
                if self.config.schedule.catch_up:
                    self._catch_up()
                while not self.stopping.is_set():
                    if self.reload_requested:
                        self._reload()
                    self.scheduler.run_pending()
                    idle = self.scheduler.idle_seconds
                    wait = self.tick if idle is None else max(0.0, min(self.tick, idle))
                    self.stopping.wait(wait)
            log.info("daemon stopped after %s", _duration((utcnow() - self.started).total_seconds()))
            return 0
        finally:
            self._restore_signals(previous)
            instance.release()

    def _stand_by(self, instance) -> bool:
        """PostgreSQL: one daemon per database runs the jobs; another waits for its session to end (the
        process stopped or died, on any host) and takes over within TAKEOVER_POLL seconds of it (about 25 s
        more when a whole host vanished, the time TCP keepalives take to notice). False: stopped while waiting."""
        try:
            instance.acquire(0)
            return True
        except LockBusy as exc:
            log.info("standing by: %s; taking over when it stops", exc.message)
        try:
            instance.acquire(math.inf, should_stop=self.should_stop, poll=TAKEOVER_POLL)
        except LockBusy:
            log.info("daemon stopped while standing by")
            return False
        log.info("taking over: the daemon that held the lock is gone")
        return True

    def stop(self) -> None:
        self.stopping.set()

    def should_stop(self) -> bool:
        return self.stopping.is_set()

    # -- jobs -------------------------------------------------------------------

    def _plan(self) -> None:
        self.scheduler.clear()
        self.retries.clear()
        cfg = self.config.schedule
        tz = timetable.zone(cfg.timezone)
        for text in cfg.briefing:
            TimetableJob(timetable.parse(text), tz, self.scheduler, "briefing").do(self._job, "briefing", self._briefing)
        if cfg.collect.strip():
            TimetableJob(timetable.parse(cfg.collect), tz, self.scheduler, "collect").do(self._job, "collect", self._collect)
        if cfg.heartbeat.strip():
            TimetableJob(timetable.parse(cfg.heartbeat), tz, self.scheduler, "heartbeat").do(self._heartbeat)

    def planned(self) -> list[tuple[datetime, str]]:
        return sorted((job.next_utc, job.name) for job in self.scheduler.jobs if isinstance(job, TimetableJob))

    def _job(self, name: str, work: Callable[[], str]):
        """Run one job under the job lock; log one line; back off when it keeps failing."""
        if self.stopping.is_set():
            return None
        started = time.monotonic()
        summary, error = "", None
        try:
            with job_lock(self.config.state).held(self.config.schedule.lock_wait, should_stop=self.should_stop):
                summary = work()
        except LockBusy as exc:
            error = exc.message
        except BriefingsError as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a job that raises must not end the daemon
            error = f"{type(exc).__name__}: {exc}"
            log.exception("job %s raised", name)
        seconds = time.monotonic() - started
        if error is None:
            self.failures[name] = 0
            log.info("job %s done in %.1f s: %s", name, seconds, summary)
            return None
        count = self.failures.get(name, 0) + 1
        self.failures[name] = count
        if self.stopping.is_set():
            log.warning("job %s stopped after %.1f s: %s", name, seconds, error)
            return None
        delay = backoff(count, timedelta(seconds=self.config.schedule.retry_seconds), MAX_RETRY)
        log.error("job %s failed after %.1f s (%d in a row): %s; trying again in %s", name, seconds, count,
                  error, _duration(delay.total_seconds()))
        self._retry_later(name, work, delay)
        return None

    def _retry_later(self, name: str, work: Callable[[], str], delay: timedelta) -> None:
        old = self.retries.pop(name, None)
        if old is not None:
            self.scheduler.cancel_job(old)

        def again():
            self.retries.pop(name, None)
            self._job(name, work)
            return schedule.CancelJob

        self.retries[name] = self.scheduler.every(max(1, int(delay.total_seconds()))).seconds.do(again)

    def _collect(self) -> str:
        from briefings.pipeline import collect_once, open_store, send_outbox

        report = collect_once(self.config, stop=self.should_stop)
        failed = len(report.feeds_failed)
        text = f"{report.new_entries} new entries from {len(report.feeds)} feeds and the reading list, {failed} feeds failed"
        for feed in report.feeds_failed:
            log.warning("feed %s: %s", feed["name"], feed["error"])
        if self.config.delivery_enabled and not report.stopped:
            store = open_store(self.config)
            try:
                delivery = send_outbox(self.config, store, stop=self.should_stop)
            finally:
                store.close()
            if delivery.sent or delivery.retrying or delivery.failed or delivery.error:
                text += f"; outbox: {_delivery_text(delivery.as_dict())}"
        if report.stopped:
            text += " (stopped early: the rest is fetched next time)"
        return text

    def _briefing(self) -> str:
        from briefings.pipeline import run_once

        report = run_once(self.config, stop=self.should_stop)
        for feed in report.feeds_failed:
            log.warning("feed %s: %s", feed["name"], feed["error"])
        if report.briefing:
            text = f"briefing {report.briefing['slug']} with {report.briefing['entries']} entries written"
        elif report.stopped:
            text = "stopped before the briefing was made: it is made at the next start"
        else:
            text = "nothing new since the last briefing"
        text += f" ({report.new_entries} new entries collected)"
        if report.delivery is not None:
            text += f"; delivery: {_delivery_text(report.delivery)}"
        return text

    def _heartbeat(self) -> None:
        upcoming = ", ".join(f"{name} at {when:%Y-%m-%d %H:%M:%S} UTC" for when, name in self.planned()
                             if name != "heartbeat")
        log.info("alive for %s; next: %s", _duration((utcnow() - self.started).total_seconds()), upcoming)

    def _log_next(self) -> None:
        for when, name in self.planned():
            if name != "heartbeat":
                local = when.astimezone(timetable.zone(self.config.schedule.timezone))
                log.info("next %s: %s (%s UTC)", name, f"{local:%a %Y-%m-%d %H:%M:%S %Z}", f"{when:%H:%M:%S}")

    # -- catch-up ---------------------------------------------------------------

    def _catch_up(self) -> None:
        due = catch_up_due(self.config, utcnow())
        if due is None:
            return
        log.info("catch-up: %s", due)
        self._job("briefing", self._briefing)

    # -- signals and reload -----------------------------------------------------

    @staticmethod
    def _on_stop_signal(signum: int) -> None:
        log.info("%s received: stopping once the current step is done", signal.Signals(signum).name)

    def _install_reload(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}

        def on_hup(signum, frame):
            self.reload_requested = True

        return {signal.SIGHUP: signal.signal(signal.SIGHUP, on_hup)}

    @staticmethod
    def _restore_signals(previous: dict) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def _reload(self) -> None:
        self.reload_requested = False
        try:
            fresh = config_module.load(self.config_path)
        except BriefingsError as exc:
            log.error("SIGHUP: config not reloaded, the previous one stays in force: %s", exc)
            return
        if fresh.state.where != self.config.state.where:
            log.error("SIGHUP: config not reloaded: [state] changed (%s); restart the daemon for that",
                      fresh.state.where)
            return
        self.config = fresh
        self._plan()
        log.info("SIGHUP: config reloaded from %s", self.config_path)
        self._log_next()


def catch_up_due(config: Config, now: datetime) -> str | None:
    """Why a briefing is owed at start (the reason, for the log), or None when none is."""
    from briefings.pipeline import open_store

    store = open_store(config)
    try:
        last = store.meta.last_briefing_time()
    finally:
        store.close()
    tz = timetable.zone(config.schedule.timezone)
    if last is None:
        return "no briefing has been made yet"
    for text in config.schedule.briefing:
        spec = timetable.parse(text)
        if spec.interval is not None:
            if last + spec.interval <= now:
                return f"the last briefing ({last:%Y-%m-%d %H:%M} UTC) is older than {text!r}"
            continue
        due = spec.last_at_or_before(now, tz)
        if due is not None and last < due:
            return f"the briefing due {due.astimezone(tz):%a %Y-%m-%d %H:%M %Z} ({text!r}) was missed"
    return None


def dry_run_plan(config: Config, now: datetime, count: int = 10) -> list[tuple[datetime, str]]:
    """The next count jobs the daemon would run from now (heartbeats left out)."""
    cfg = config.schedule
    tz = timetable.zone(cfg.timezone)
    specs = [("briefing", timetable.parse(t)) for t in cfg.briefing]
    if cfg.collect.strip():
        specs.append(("collect", timetable.parse(cfg.collect)))
    return timetable.plan(specs, tz, now, count)


def next_briefing(config: Config, now: datetime) -> datetime:
    """When the daemon would next make a briefing (UTC)."""
    tz = timetable.zone(config.schedule.timezone)
    return min(timetable.parse(t).next_after(now, tz) for t in config.schedule.briefing)


def _delivery_text(delivery: dict) -> str:
    parts = [f"{len(delivery.get('sent') or [])} sent"]
    if delivery.get("retrying"):
        parts.append(f"{len(delivery['retrying'])} to retry")
    if delivery.get("failed"):
        parts.append(f"{len(delivery['failed'])} failed")
    if delivery.get("error"):
        parts.append(f"not sent: {delivery['error']}")
    if delivery.get("unreachable"):
        parts.append(f"{delivery['unreachable']['deliveries']} not sent: {delivery['unreachable']['error']}")
    return ", ".join(parts)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"
