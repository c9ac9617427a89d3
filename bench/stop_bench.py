"""How fast briefings stops: a daemon sent SIGTERM while it classifies or renders a big briefing,
and a `briefings collect` killed (SIGKILL) mid-collect, then the next one.

    python bench/stop_bench.py [--entries 1500]

One feed of --entries synthetic entries (bench/feedgen.py) is served on
127.0.0.1. Prints the seconds from the signal to the exit, and for the SIGKILL
case how soon the job lock was free and how long the next collect took.
"""

from __future__ import annotations

import argparse
import re
import signal
import socketserver
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import feedgen  # noqa: E402
from feedserver import FeedServer  # noqa: E402

CONFIG = """[corpus]
path = ""
[state]
path = "state/briefings.sqlite3"
[output]
dir = "archive"
[fetch]
timeout = 60
max_bytes = 100000000
workers = 2
[schedule]
collect = ""
briefing = ["monday 08:00"]
catch_up = true
heartbeat = ""
lock_wait = 60
{feeds}
"""


# A killed collect leaves its downloads half-sent: that is the point here, not an error to print.
socketserver.BaseServer.handle_error = lambda self, request, client_address: None


def briefings(folder: Path, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "briefings", "--config", str(folder / "config.toml"), *args],
                            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)


def wait_for(predicate, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1500)
    args = parser.parse_args()
    from briefings.lock import LockBusy, job_lock

    with tempfile.TemporaryDirectory() as tmp:
        feeds = Path(tmp) / "feeds"
        feedgen.generate(feeds, feeds=4, entries=args.entries // 4)
        with FeedServer(feeds) as server:
            table = "".join(f'[[feeds]]\nname = "f{i}"\nurl = "{server.url(p.name)}"\n'
                            for i, p in enumerate(sorted(feeds.glob("*.xml"))))
            for phase in ("classifying", "rendering"):
                folder = Path(tempfile.mkdtemp(dir=tmp))
                (folder / "config.toml").write_text(CONFIG.format(feeds=table))
                log = folder / "daemon.log"
                proc = briefings(folder, "daemon", "--log-file", str(log), "--log-level", "debug")
                wait_for(lambda: log.exists() and re.search(rf"DEBUG {phase} ", log.read_text()))
                started = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                code = proc.wait(60)
                print(f"daemon, SIGTERM while {phase} {args.entries} entries: exit {code} after"
                      f" {time.monotonic() - started:.2f} s")
            folder = Path(tempfile.mkdtemp(dir=tmp))
            (folder / "config.toml").write_text(CONFIG.format(feeds=table))
            before = server.stats["requests"]
            proc = briefings(folder, "collect")
            wait_for(lambda: server.stats["requests"] > before)  # its first download: the workers exist
            proc.kill()
            proc.wait()
            killed = time.monotonic()
            lock = job_lock(folder / "state" / "briefings.sqlite3")
            while True:
                try:
                    lock.acquire(0)
                    break
                except LockBusy:
                    time.sleep(0.005)
            lock.release()
            free = time.monotonic() - killed
            started = time.monotonic()
            code = briefings(folder, "collect").wait(300)
            print(f"collect, SIGKILL mid-collect: job lock free after {free * 1000:.0f} ms; the next collect"
                  f" exited {code} in {time.monotonic() - started:.2f} s (lock_wait is 60 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
