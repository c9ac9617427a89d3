"""Crashes and signals: real `briefings collect`, `run` and `daemon` processes, killed or stopped mid-work.

Feeds come from a real HTTP server on 127.0.0.1 whose answers wait on a gate the
test opens, so "mid-collect" is a state the test sees (the requests arrived, the
parse workers exist), not a moment it guesses with a sleep.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from briefings import config as config_module
from briefings.lock import LockBusy, daemon_lock, job_lock
from conftest import Route, db_rows, write_config

STOP_BOUND = 15  # seconds a stopped daemon may take to exit, wherever it is


def rss(name: str, items: int, body: str = "Delegations met on confidence-building measures and points of contact.") -> bytes:
    parts = [f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{name}</title>'
             f"<link>https://{name}.example.org/</link>"]
    for i in range(items):
        parts.append(f"<item><title>{name} item {i}: states agree cyber norms for critical infrastructure {i}</title>"
                     f"<link>https://{name}.example.org/posts/{i}</link><guid>https://{name}.example.org/posts/{i}</guid>"
                     f"<description>{body} (story {i} of {name})</description></item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


def gated(gate: threading.Event, body: bytes):
    """A route handler that answers only once the gate opens."""

    def handle(request):
        gate.wait(60)
        try:
            request.send_response(200)
            request.send_header("Content-Type", "application/rss+xml")
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)
        except OSError:  # the process that asked was killed meanwhile
            request.close_connection = True

    return handle


def children(pid: int) -> set[int]:
    """The live processes whose parent is pid (from /proc)."""
    found = set()
    for name in os.listdir("/proc"):
        if name.isdigit() and _ppid(int(name)) == pid:
            found.add(int(name))
    return found


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # after "pid (comm) ": state, ppid, ...


def _ppid(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def signal_taken(pid: int, signum: int) -> bool:
    """True once the kernel has handed signum to the process (no longer pending)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    pending = 0
    for key in ("SigPnd", "ShdPnd"):
        pending |= int(re.search(rf"^{key}:\s*([0-9a-f]+)", status, re.M).group(1), 16)
    return not pending & (1 << (signum - 1))


SCHEDULE = ('[schedule]\ncollect = ""\nbriefing = ["monday 08:00"]\ncatch_up = true\nheartbeat = ""\n'
            "retry_seconds = 1\nlock_wait = {lock_wait}\n")


class Desk:
    """Feeds behind gates and a config in tmp_path; starts briefings commands as real processes."""

    def __init__(self, tmp: Path, server, *, gated_feeds: int = 2, later_feeds: int = 4, items: int = 3,
                 lock_wait: int = 30, fetch: str = "timeout = 20\nconcurrency = 2\nworkers = 2"):
        self.tmp, self.server = tmp, server
        self.first_gate, self.later_gate = threading.Event(), threading.Event()
        feeds = []
        for i in range(gated_feeds):
            server.routes[f"/first{i}.rss"] = Route(handler=gated(self.first_gate, rss(f"first{i}", items)))
            feeds.append((f"first{i}", server.url(f"/first{i}.rss")))
        for i in range(later_feeds):
            server.routes[f"/later{i}.rss"] = Route(handler=gated(self.later_gate, rss(f"later{i}", items)))
            feeds.append((f"later{i}", server.url(f"/later{i}.rss")))
        self.gated = gated_feeds
        self.config = write_config(tmp, feeds, corpus=None, fetch=fetch, extra=SCHEDULE.format(lock_wait=lock_wait))
        self.state = config_module.load(self.config).state.path
        self.procs: list[subprocess.Popen] = []

    def start(self, command: str) -> subprocess.Popen:
        args = {"collect": ["collect", "--json"], "run": ["run", "--json"],
                "daemon": ["daemon", "--log-file", str(self.tmp / "daemon.log"), "--log-level", "debug"]}[command]
        proc = subprocess.Popen([sys.executable, "-m", "briefings", "--config", str(self.config), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.tmp)
        self.procs.append(proc)
        return proc

    def requested(self, prefix: str) -> int:
        return len({r.path for r in self.server.log if r.path.startswith(prefix)})

    def mid_collect(self, proc: subprocess.Popen) -> set[int]:
        """Wait until the first feeds are being fetched and the parse workers exist; their pids."""
        wait_until(lambda: self.requested("/first") >= self.gated or proc.poll() is not None, 30,
                   "the first feeds requested")
        assert proc.poll() is None, proc.stderr.read().decode()
        return wait_until(lambda: children(proc.pid), 10, "parse workers started")

    def open_gates(self):
        self.first_gate.set()
        self.later_gate.set()

    def close(self):
        self.open_gates()
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()


@pytest.fixture
def desk(tmp_path, feed_server):
    made = []

    def make(**kwargs) -> Desk:
        d = Desk(tmp_path, feed_server, **kwargs)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def free(lock) -> bool:
    try:
        lock.acquire(0)
    except LockBusy:
        return False
    lock.release()
    return True


# -- SIGKILL: nothing is left holding a lock ------------------------------------------


@pytest.mark.parametrize("command", ["collect", "run", "daemon"])
def test_after_sigkill_mid_collect_no_worker_remains_and_the_next_collect_starts_at_once(desk, command):
    d = desk(lock_wait=30)
    proc = d.start(command)
    workers = d.mid_collect(proc)
    assert len(workers) >= 2  # one per [fetch] workers, forked before the first download

    proc.kill()
    proc.wait()
    wait_until(lambda: not any(alive(pid) for pid in workers), 5,
               f"the parse workers {sorted(workers)} of the killed {command} to die")
    assert free(job_lock(d.state)), "the job lock outlived the process that took it"
    assert free(daemon_lock(d.state))

    d.open_gates()
    started = time.monotonic()
    again = subprocess.run([sys.executable, "-m", "briefings", "--config", str(d.config), "collect", "--json"],
                           capture_output=True, text=True, timeout=60, cwd=d.tmp)
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - started < 30  # never waited lock_wait for a dead holder
    report = json.loads(again.stdout)
    assert {f["status"] for f in report["feeds"]} == {"ok"} and len(report["feeds"]) == 6
    assert db_rows(d.tmp, "PRAGMA integrity_check") == [("ok",)]


HOLD_AND_DIE = """
import multiprocessing, os, sys, time
from briefings.lock import job_lock
lock = job_lock(sys.argv[1])
lock.acquire(0)
child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(60,))
child.start()
print(child.pid, flush=True)
os._exit(0)  # dies holding the lock, as after a SIGKILL: nothing is released
"""


def test_a_forked_child_does_not_keep_the_lock_of_a_parent_that_died(tmp_path):
    state = tmp_path / "state" / "briefings.sqlite3"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_AND_DIE, str(state)], stdout=subprocess.PIPE, text=True)
    with holder.stdout:  # the child shares this pipe: read its one line, not to the end
        child = int(holder.stdout.readline())
    assert holder.wait(timeout=30) == 0
    try:
        assert alive(child)
        assert free(job_lock(state)), "the forked child kept its dead parent's lock"
    finally:
        os.kill(child, signal.SIGKILL)


# -- SIGTERM, SIGHUP: run and collect stop between two feeds ----------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("command", ["collect", "run"])
def test_a_signal_mid_collect_stops_between_feeds_with_the_store_consistent(desk, command, signum):
    d = desk()
    proc = d.start(command)
    workers = d.mid_collect(proc)
    proc.send_signal(signum)
    wait_until(lambda: proc.poll() is not None or signal_taken(proc.pid, signum), 5, f"{signum!r} taken")
    d.first_gate.set()  # the feeds in flight finish; the later ones must never start
    out, err = proc.communicate(timeout=30)

    assert proc.returncode == 128 + signum, err.decode()
    report = json.loads(out)
    assert report["stopped"] is True and report["briefing"] is None
    assert d.requested("/later") == 0
    status = {f["name"]: f["status"] for f in report["feeds"]}
    assert status == {"first0": "ok", "first1": "ok", **{f"later{i}": "skipped" for i in range(4)}}
    stored = db_rows(d.tmp, "SELECT source_name, COUNT(*) FROM entries GROUP BY source_name")
    assert stored == [("first0", 3), ("first1", 3)]
    assert report["new_entries"] == 6 and report["new_by_source"] == {"first0": 3, "first1": 3}  # the real counts
    assert db_rows(d.tmp, "PRAGMA integrity_check") == [("ok",)]
    assert db_rows(d.tmp, "SELECT COUNT(*) FROM briefings") == [(0,)]
    assert not any(alive(pid) for pid in workers)
    assert free(job_lock(d.state))


# -- the lock says how long it really waited -----------------------------------------------


@pytest.mark.parametrize("stop_after, expected", [
    (None, r"; waited 1 s$"),
    (0.3, r"; stopped waiting after 0\.[3-9] s: briefings is stopping$"),  # not the 30 s it would have waited
])
def test_the_lock_message_says_how_long_it_waited(tmp_path, stop_after, expected):
    state = tmp_path / "briefings.sqlite3"
    holder = job_lock(state)
    holder.acquire(0)
    started = time.monotonic()
    should_stop = (lambda: time.monotonic() - started >= stop_after) if stop_after else None
    try:
        with pytest.raises(LockBusy) as busy:
            job_lock(state).acquire(1 if stop_after is None else 30, should_stop=should_stop)
    finally:
        holder.release()
    assert re.search(expected, busy.value.message), busy.value.message
    assert f"process {os.getpid()}" in busy.value.message


def test_a_signal_while_waiting_for_the_lock_ends_the_wait_at_once(tmp_path):
    cfg = write_config(tmp_path, corpus=None, extra=SCHEDULE.format(lock_wait=60))
    holder = job_lock(config_module.load(cfg).state.path)
    holder.acquire(0)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "briefings", "--config", str(cfg), "collect"],
                                stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        time.sleep(1.0)  # it waits for the lock from the start; the signal may come at any moment of that
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        holder.release()
    assert time.monotonic() - started < 5
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM while waiting for the lock: nothing was done" in err


# -- the daemon: a stop during a long classify or render --------------------------------

VOCABULARY = ("norms state behaviour cyberspace ransomware botnet convention treaty working group critical "
              "infrastructure hospital confidence building measures hotline capacity incident response "
              "vulnerability disclosure supply chain information sharing sovereignty international law "
              "the of and to in for with officials government ministers delegations consensus").split()


def big_rss(items: int) -> bytes:
    """A feed of many entries with bodies of 1-3 KB: classifying and rendering it takes seconds."""
    import random

    parts = ['<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Big</title>'
             "<link>https://big.example.org/</link>"]
    for i in range(items):
        rng = random.Random(i)
        words = lambda n: " ".join(rng.choice(VOCABULARY) for _ in range(n))  # noqa: E731
        body = "".join(f"&lt;p&gt;{words(rng.randint(20, 40))}.&lt;/p&gt;" for _ in range(rng.randint(5, 12)))
        parts.append(f"<item><title>{words(8)} {i}</title><link>https://big.example.org/{i}</link>"
                     f"<guid>https://big.example.org/{i}</guid><description>{body}</description></item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


@pytest.mark.parametrize("phase", ["classifying", "rendering"])
def test_daemon_sigterm_during_a_long_classify_or_render_ends_it_at_once_with_nothing_half_made(
        tmp_path, feed_server, phase):
    url = feed_server.add("/big.rss", big_rss(1500))
    cfg = write_config(tmp_path, [("big", url)], corpus=None, fetch="timeout = 60\nmax_bytes = 100000000",
                       extra=SCHEDULE.format(lock_wait=1))
    log = tmp_path / "daemon.log"
    proc = subprocess.Popen([sys.executable, "-m", "briefings", "--config", str(cfg), "daemon", "--log-file", str(log),
                             "--log-level", "debug"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        text = lambda: log.read_text(encoding="utf-8") if log.exists() else ""  # noqa: E731
        wait_until(lambda: re.search(rf"DEBUG {phase} .*1500 ", text()) or proc.poll() is not None, 120,
                   f"the daemon {phase}")
        assert proc.poll() is None, text() + proc.stderr.read().decode()
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=STOP_BOUND)
        seconds = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stderr.close()
    assert code == 0 and seconds < STOP_BOUND
    assert "job briefing done" in text() and "stopped before the briefing was made" in text()
    assert db_rows(tmp_path, "PRAGMA integrity_check") == [("ok",)]
    assert db_rows(tmp_path, "SELECT COUNT(*) FROM briefings") == [(0,)]
    assert db_rows(tmp_path, "SELECT COUNT(*) FROM entries WHERE briefing_id IS NULL") == [(1500,)]  # all pending
    assert not list(tmp_path.glob("archive/*.html"))
