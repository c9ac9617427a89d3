"""`briefings daemon`: a real subprocess on a schedule of seconds, real feeds, real SMTP, real signals."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from briefings import config as config_module
from briefings import timetable
from briefings.errors import ConfigError
from briefings.lock import job_lock
from briefings.store import Store
from conftest import db_rows, fixture_feed, mail_config, write_config

STOP_BOUND = 10  # seconds a stopped daemon may take to exit


def schedule_table(*, collect="", briefing='["monday 08:00"]', catch_up="false", heartbeat="", extra=""):
    return (f'[schedule]\ncollect = "{collect}"\nbriefing = {briefing}\ncatch_up = {catch_up}\n'
            f'heartbeat = "{heartbeat}"\nretry_seconds = 1\nlock_wait = 1\n{extra}\n')


class DaemonProcess:
    def __init__(self, config: Path, tmp: Path, name: str = "daemon"):
        self.log = tmp / f"{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "briefings", "--config", str(config), "daemon", "--log-file", str(self.log),
             "--log-level", "debug"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp,
        )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8") if self.log.exists() else ""

    def wait_for(self, pattern: str, timeout: float = 20, count: int = 1) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            if len(re.findall(pattern, text)) >= count:
                return text
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        err = self.proc.stderr.read().decode() if self.proc.poll() is not None else ""
        raise AssertionError(f"{pattern!r} x{count} not in the log within {timeout} s:\n{self.text()}\n{err}")

    def stop(self, sig=signal.SIGTERM) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=STOP_BOUND)
        return code, time.monotonic() - started

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def daemons():
    started: list[DaemonProcess] = []

    def start(config: Path, tmp: Path, name: str = "daemon") -> DaemonProcess:
        d = DaemonProcess(config, tmp, name)
        started.append(d)
        return d

    yield start
    for d in started:
        d.kill()


def slow_handler(seconds: float, body: bytes):
    def handle(request):
        time.sleep(seconds)
        request.send_response(200)
        request.send_header("Content-Type", "application/atom+xml")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    return handle


LATER_RSS = """<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Later</title>
<item><title>Ministers agree a cyber capacity-building fund for the Pacific</title><link>https://later.example.org/1</link>
<description>Donors pledged training for national CERTs and help drafting cybercrime laws.</description></item>
</channel></rss>"""


# -- the timetable --------------------------------------------------------------


def test_weekly_time_stays_local_across_daylight_saving():
    tz = timetable.zone("Europe/Brussels")
    spec = timetable.parse("monday 08:00")
    runs, moment = [], datetime(2027, 3, 20, tzinfo=timezone.utc)
    for _ in range(3):
        moment = spec.next_after(moment, tz)
        runs.append(moment)
    assert [r.astimezone(tz).strftime("%a %H:%M") for r in runs] == ["Mon 08:00"] * 3
    assert [r.strftime("%m-%d %H:%M") for r in runs] == ["03-22 07:00", "03-29 06:00", "04-05 06:00"]
    # Autumn: 02:30 happens twice on 31 October 2027 and runs once; spring: 02:30 never happens and runs at 03:30.
    daily = timetable.parse("daily 02:30")
    autumn = [daily.next_after(datetime(2027, 10, 30, 12, tzinfo=timezone.utc), tz)]
    autumn.append(daily.next_after(autumn[0], tz))
    assert [a.strftime("%m-%d %H:%M") for a in autumn] == ["10-31 00:30", "11-01 01:30"]
    spring = daily.next_after(datetime(2027, 3, 27, 12, tzinfo=timezone.utc), tz)
    assert spring.astimezone(tz).strftime("%m-%d %H:%M") == "03-28 03:30"
    assert spec.last_at_or_before(datetime(2027, 3, 31, tzinfo=timezone.utc), tz) == runs[1]
    assert timetable.parse("every 30 minutes").interval == timedelta(minutes=30)
    assert timetable.parse("weekdays 09:00").days == frozenset(range(5))
    assert timetable.parse("Mon, Thu at 7:05").days == frozenset({0, 3})


@pytest.mark.parametrize(
    "table, key, message",
    [
        ('timezone = "Mars/Olympus"', "timezone", "not an IANA time zone"),
        ('collect = "whenever"', "collect", "is not a schedule"),
        ('collect = "monday 08:00"', "collect", "must be an interval"),
        ('briefing = ["funday 08:00"]', "briefing", "unknown day 'funday'"),
        ('briefing = "monday 24:30"', "briefing", "not a time of day"),
        ("briefing = []", "briefing", "needs at least one time"),
        ('catch_up = "yes"', "catch_up", "expected true or false"),
    ],
)
def test_malformed_schedule_names_file_line_and_key(tmp_path, table, key, message):
    cfg = write_config(tmp_path, corpus=None, extra=f"[schedule]\n{table}\n")
    with pytest.raises(ConfigError) as err:
        config_module.load(cfg)
    line = next(i for i, text in enumerate(cfg.read_text().splitlines(), 1) if text.startswith(key))
    assert f"{cfg.resolve()}:{line}: [schedule] {key}:" in err.value.message
    assert message in err.value.message


def test_dry_run_prints_the_next_ten_jobs(tmp_path, cli_run):
    from zoneinfo import ZoneInfo

    cfg = write_config(tmp_path, corpus=None, extra=schedule_table(
        collect="every 2 hours", briefing='["monday 08:00", "thursday 17:30"]', catch_up="true").replace(
        "[schedule]\n", '[schedule]\ntimezone = "America/New_York"\n'))
    tz = ZoneInfo("America/New_York")
    before = datetime.now(timezone.utc).replace(microsecond=0)
    result = cli_run("--config", cfg, "daemon", "--dry-run")
    after = datetime.now(timezone.utc)
    assert result.exit_code == 0, result.output
    assert "no briefing has been made yet" in result.stdout
    line = re.compile(r"^  (\w{3}) (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (E[SD]T)  (\w+)\s+\((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC\)$")
    jobs = []
    for text in result.stdout.splitlines():
        m = line.match(text)
        if m:
            day, local, abbrev, name, utc = m.groups()
            when = datetime.fromisoformat(utc).replace(tzinfo=timezone.utc)
            # The local time printed is that UTC moment in New York, with the right zone name for its date.
            shown = when.astimezone(tz)
            assert (shown.strftime("%a"), shown.strftime("%Y-%m-%d %H:%M:%S"), shown.tzname()) == (day, local, abbrev)
            jobs.append((name, when, shown))
    assert len(jobs) >= 10
    assert [when for _, when, _ in jobs] == sorted(when for _, when, _ in jobs)
    # collect: every 2 hours from now.
    collects = [when for name, when, _ in jobs if name == "collect"]
    assert before + timedelta(hours=2) - timedelta(seconds=1) <= collects[0] <= after + timedelta(hours=2)
    assert all(b - a == timedelta(hours=2) for a, b in zip(collects, collects[1:]))
    # briefing: the first Monday 08:00 or Thursday 17:30 in New York after now, found here day by day.
    briefings = [shown for name, _, shown in jobs if name == "briefing"]
    assert briefings and all((b.strftime("%a %H:%M:%S") in ("Mon 08:00:00", "Thu 17:30:00")) for b in briefings)
    local_now = before.astimezone(tz)
    expected = min(
        candidate
        for offset in range(8)
        for weekday, hour, minute in ((0, 8, 0), (3, 17, 30))
        for candidate in [datetime.combine(local_now.date() + timedelta(days=offset),
                                           datetime.min.time().replace(hour=hour, minute=minute), tzinfo=tz)]
        if candidate.weekday() == weekday and candidate > local_now
    )
    assert briefings[0] == expected


# -- the daemon process -----------------------------------------------------------


def test_daemon_collects_and_sends_on_schedule_then_stops_cleanly(tmp_path, feed_server, smtp_sink, daemons):
    sink = smtp_sink()
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    extra = mail_config(sink.port, [{"email": "ana@example.org", "name": "Ana"}]) + schedule_table(
        collect="every 1 second", briefing='["every 3 seconds"]', heartbeat="every 1 second")
    cfg = write_config(tmp_path, [("norms", url)], corpus=None, extra=extra)
    daemon = daemons(cfg, tmp_path)
    log = daemon.wait_for(r"job briefing done in [\d.]+ s: briefing \S+ with \d+ entries written", timeout=30)
    assert re.search(r"job collect done in [\d.]+ s: \d+ new entries from 1 feeds", log)
    assert re.search(r"INFO alive for", log)
    deadline = time.monotonic() + 10
    while not sink.messages and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sink.copies() == {"ana@example.org": 1}
    code, seconds = daemon.stop()
    assert code == 0 and seconds < STOP_BOUND
    assert "SIGTERM received" in daemon.text() and "daemon stopped after" in daemon.text()
    assert sink.copies() == {"ana@example.org": 1}  # later briefing jobs found nothing new to send


def test_the_collect_job_sends_the_deliveries_due_a_retry(tmp_path, feed_server, smtp_sink, daemons, cli_run):
    sink = smtp_sink()
    sink.refuse = {"ana@example.org": "451 4.3.0 Later", "ben@example.org": "451 4.3.0 Later"}
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    extra = mail_config(sink.port, [{"email": "ana@example.org"}, {"email": "ben@example.org"}]) + schedule_table(
        collect="every 1 second")
    cfg = write_config(tmp_path, [("norms", url)], corpus=None, extra=extra)
    assert "will retry" in cli_run("--config", cfg, "run").stderr  # retry_minutes = 0: due again at once
    # Ben's retry is not due for a day: the daemon leaves it waiting.
    later = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    db = sqlite3.connect(tmp_path / "state" / "briefings.sqlite3")
    db.execute("UPDATE deliveries SET next_try = ? WHERE recipient = 'ben@example.org'", (later,))
    db.commit()
    db.close()
    sink.refuse = {}
    daemon = daemons(cfg, tmp_path)
    log = daemon.wait_for(r"job collect done in [\d.]+ s: .*; outbox: 1 sent", timeout=30)
    assert "job briefing" not in log  # the weekly briefing is not due: the collect job sent it
    assert daemon.stop()[0] == 0
    assert sink.copies() == {"ana@example.org": 1}
    status = dict(db_rows(tmp_path, "SELECT recipient, status FROM deliveries"))
    assert status == {"ana@example.org": "sent", "ben@example.org": "pending"}


def test_sigterm_during_a_collect_leaves_the_store_consistent_and_the_next_start_carries_on(
        tmp_path, feed_server, daemons):
    first = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    from conftest import Route

    feed_server.routes["/slow.atom"] = Route(handler=slow_handler(3, fixture_feed("news.atom")))
    later = feed_server.add("/later.rss", LATER_RSS)
    feeds = [("norms", first), ("slow", feed_server.url("/slow.atom")), ("later", later)]
    cfg = write_config(tmp_path, feeds, corpus=None, fetch="timeout = 8\nconcurrency = 1\nworkers = 1",
                       extra=schedule_table(catch_up="true"))
    daemon = daemons(cfg, tmp_path)
    deadline = time.monotonic() + 20
    while not any(r.path == "/slow.atom" for r in feed_server.log) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(r.path == "/slow.atom" for r in feed_server.log), daemon.text()
    code, seconds = daemon.stop()
    assert code == 0 and seconds < STOP_BOUND
    assert not any(r.path == "/later.rss" for r in feed_server.log)  # not started once the stop came
    assert db_rows(tmp_path, "PRAGMA integrity_check") == [("ok",)]
    stored = db_rows(tmp_path, "SELECT source_name, COUNT(*) FROM entries GROUP BY source_name")
    assert ("norms", 4) in stored and not any(name == "later" for name, _ in stored)
    assert db_rows(tmp_path, "SELECT COUNT(*) FROM briefings") == [(0,)]
    assert "stopped" in daemon.text()

    again = daemons(cfg, tmp_path, "again")
    log = again.wait_for(r"job briefing done", timeout=30)
    assert "catch-up: no briefing has been made yet" in log
    assert again.stop()[0] == 0
    by_source = dict(db_rows(tmp_path, "SELECT source_name, COUNT(*) FROM entries GROUP BY source_name"))
    assert by_source["norms"] == 4 and by_source["later"] >= 1 and by_source["slow"] >= 1
    assert db_rows(tmp_path, "SELECT COUNT(*) FROM entries WHERE briefing_id IS NULL") == [(0,)]
    assert db_rows(tmp_path, "SELECT COUNT(*) FROM briefings") == [(1,)]


def test_a_second_daemon_is_refused_and_a_run_waits_then_gives_up(tmp_path, feed_server, daemons):
    from conftest import Route

    feed_server.routes["/slow.atom"] = Route(handler=slow_handler(6, fixture_feed("news.atom")))
    cfg = write_config(tmp_path, [("slow", feed_server.url("/slow.atom"))], corpus=None,
                       fetch="timeout = 10\nworkers = 1", extra=schedule_table(collect="every 1 second"))
    first = daemons(cfg, tmp_path)
    first.wait_for("daemon started")
    second = subprocess.run([sys.executable, "-m", "briefings", "--config", str(cfg), "daemon"],
                            capture_output=True, text=True, timeout=20, cwd=tmp_path)
    assert second.returncode == 3
    assert "another briefings daemon runs on this state file: the lock is held by process" in second.stderr
    assert str(first.proc.pid) in second.stderr
    # While the daemon's collect waits on the slow feed, a one-off run waits lock_wait (1 s), then gives up.
    deadline = time.monotonic() + 20
    while not any(r.path == "/slow.atom" for r in feed_server.log) and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "briefings", "--config", str(cfg), "run"],
                         capture_output=True, text=True, timeout=30, cwd=tmp_path)
    waited = time.monotonic() - started
    assert run.returncode == 3, run.stderr
    assert "a job is running on this state file: the lock is held by process" in run.stderr
    assert "waited 1 s" in run.stderr
    assert 1.0 <= waited < 6
    assert first.proc.poll() is None
    assert first.stop()[0] == 0


def test_catch_up_sends_the_missed_briefing_once(tmp_path, feed_server, smtp_sink, daemons):
    sink = smtp_sink()
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    due = datetime.now(timezone.utc) - timedelta(minutes=2)
    extra = mail_config(sink.port, [{"email": "ana@example.org"}, {"email": "ben@example.org"}]) + schedule_table(
        briefing=f'["daily {due:%H:%M}"]', catch_up="true")
    cfg = write_config(tmp_path, [("norms", url)], corpus=None, extra=extra)
    config = config_module.load(cfg)
    with Store(config.state.path) as store:  # the last briefing ran the day before
        store.meta.set_time("last_briefing_run", due - timedelta(days=1))
    daemon = daemons(cfg, tmp_path)
    log = daemon.wait_for("job briefing done", timeout=30)
    assert re.search(r"catch-up: the briefing due .* was missed", log)
    assert daemon.stop()[0] == 0
    assert sink.copies() == {"ana@example.org": 1, "ben@example.org": 1}

    again = daemons(cfg, tmp_path, "again")
    again.wait_for("daemon started")
    time.sleep(2)
    assert again.stop()[0] == 0
    assert "catch-up" not in again.text() and "job briefing" not in again.text()
    assert sink.copies() == {"ana@example.org": 1, "ben@example.org": 1}


def test_a_job_that_raises_is_logged_retried_and_the_daemon_goes_on(tmp_path, feed_server, daemons):
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    mine = tmp_path / "my-templates"
    mine.mkdir()
    # Not a template fault (those are one line, no traceback) but an exception from the code it runs.
    (mine / "briefing.html.j2").write_text("<p>{{ 7 // 0 }}</p>")
    cfg = write_config(tmp_path, [("norms", url)], corpus=None,
                       extra='[render]\ntemplates = "my-templates"\n' + schedule_table(briefing='["every 2 seconds"]'))
    daemon = daemons(cfg, tmp_path)
    log = daemon.wait_for(r"job briefing failed after [\d.]+ s \(2 in a row\)", timeout=30)
    assert "job briefing raised" in log and "Traceback" in log and "ZeroDivisionError" in log
    assert re.search(r"trying again in 1 s", log) and re.search(r"trying again in 2 s", log)
    assert daemon.proc.poll() is None
    assert db_rows(tmp_path, "SELECT COUNT(*) FROM entries WHERE briefing_id IS NULL")[0][0] == 4  # nothing lost
    (mine / "briefing.html.j2").unlink()  # the fix: the shipped template again
    daemon.wait_for(r"job briefing done in [\d.]+ s: briefing \S+ with 3 entries written", timeout=30)
    assert daemon.stop()[0] == 0


def test_sighup_reloads_config_and_keeps_the_old_one_when_broken(tmp_path, daemons):
    cfg = write_config(tmp_path, corpus=None, extra=schedule_table())
    good = cfg.read_text()
    daemon = daemons(cfg, tmp_path)
    daemon.wait_for("daemon started")
    cfg.write_text(good + "\n[schedule\n")
    daemon.proc.send_signal(signal.SIGHUP)
    log = daemon.wait_for("config not reloaded, the previous one stays in force")
    assert "invalid TOML" in log and daemon.proc.poll() is None
    cfg.write_text(good.replace('heartbeat = ""', 'heartbeat = "every 1 second"'))
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_for("config reloaded from")
    daemon.wait_for("INFO alive for", timeout=10, count=2)
    code, _ = daemon.stop(signal.SIGINT)
    assert code == 0


def test_run_waits_for_the_lock_then_proceeds(tmp_path, cli_run):
    cfg = write_config(tmp_path, extra=schedule_table().replace("lock_wait = 1", "lock_wait = 5"))
    config = config_module.load(cfg)
    lock = job_lock(config.state.path)
    lock.acquire()
    import threading

    threading.Timer(1.0, lock.release).start()
    started = time.monotonic()
    result = cli_run("--config", cfg, "run")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 0.9
    assert "Wrote" in result.stderr


def test_init_writes_a_working_folder(tmp_path, cli_run):
    folder = tmp_path / "desk"
    result = cli_run("init", folder)
    assert result.exit_code == 0, result.output
    for name in ("config.toml", "themes-examples.jsonl", "templates/briefing.html.j2", "sources"):
        assert (folder / name).exists(), name
    config = config_module.load(folder / "config.toml")
    assert config.render.templates == (folder / "templates").resolve()
    assert len(config.themes) == 12
    edited = '{% extends "default:briefing.html.j2" %}{% block footer %}<tr><td>Edited footer</td></tr>{% endblock %}'
    (folder / "templates" / "briefing.html.j2").write_text(edited)
    result = cli_run("init", folder)
    assert "kept" in result.stderr and (folder / "templates" / "briefing.html.j2").read_text() == edited
    # Offline: the shipped feeds fail fast, the reading list still makes a briefing.
    text = (folder / "config.toml").read_text()
    (folder / "config.toml").write_text(re.sub(r"\[\[feeds\]\]\nname = [^\n]+\nurl = [^\n]+\n", "", text))
    result = cli_run("--config", folder / "config.toml", "run")
    assert result.exit_code == 0, result.output
    assert all("Edited footer" in p.read_text() for p in (folder / "archive").glob("2*.html"))
    assert list((folder / "archive").glob("2*.html"))
    assert os.path.getsize(folder / "state" / "briefings.sqlite3") > 0


def test_a_long_collect_does_not_skip_the_briefing(tmp_path, feed_server, daemons):
    from conftest import Route

    feed_server.routes["/slow.atom"] = Route(handler=slow_handler(3, fixture_feed("news.atom")))
    cfg = write_config(tmp_path, [("slow", feed_server.url("/slow.atom"))], corpus=None,
                       fetch="timeout = 10\nworkers = 1",
                       extra=schedule_table(collect="every 1 second", briefing='["every 2 seconds"]'))
    daemon = daemons(cfg, tmp_path)
    log = daemon.wait_for(r"job briefing done", timeout=40, count=2)
    assert daemon.stop()[0] == 0
    jobs = re.findall(r"job (collect|briefing) done in ([\d.]+) s", log)
    assert any(name == "collect" and float(s) >= 2.5 for name, s in jobs)  # the collects were long...
    assert [name for name, _ in jobs].count("briefing") >= 2  # ...and the briefings still ran


@pytest.mark.parametrize("in_a_row", [2, 13, 60, 500])
def test_a_job_failing_many_times_in_a_row_is_retried_within_the_hour(tmp_path, in_a_row):
    from briefings.daemon import Daemon
    from briefings.errors import BriefingsError

    cfg = write_config(tmp_path, corpus=None, extra=schedule_table(collect="every 30 minutes"))
    daemon = Daemon(cfg, config_module.load(cfg))
    daemon.failures["collect"] = in_a_row - 1

    def failing() -> str:
        raise BriefingsError("the feeds' host is down", "try again later")

    daemon._job("collect", failing)
    assert daemon.failures["collect"] == in_a_row
    # retry_seconds = 1, doubled with each failure after the first, at most an hour
    assert daemon.retries["collect"].interval == min(3600, 2 ** (in_a_row - 1))
