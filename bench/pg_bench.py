"""PostgreSQL against SQLite, same machine, same run: collect of 200 x 50 feeds, and SMTP delivery.

    python bench/pg_bench.py [--feeds 200] [--entries 50] [--recipients 1000]

PostgreSQL is a throwaway cluster on 127.0.0.1 (tests/pgcluster.py: initdb and
pg_ctl in a temporary folder, fsync off, as `nobody` under root). Each step is a
whole `briefings` process timed from outside (collect_bench.timed):
  cold      the first `briefings collect` of every feed
  next day  a rerun after every feed gained 5 entries
  send x1   `briefings send --now` of the outbox of --recipients, one sender
  send x4   the same outbox again (a new briefing), four senders at once (PostgreSQL only:
            on SQLite the job lock keeps one sender)
Figures only: nothing here fails on timing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from collect_bench import VENV_BIN, briefings_config, run_briefings  # noqa: E402
from feedgen import generate, next_day  # noqa: E402
from feedserver import FeedServer  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from smtp_bench import Sink, free_port, labeled_feed, write_config  # noqa: E402

BRIEFINGS = str(VENV_BIN / "briefings")


def on(config: Path, url: str) -> Path:
    """config with [state] url set (url empty: the SQLite file)."""
    if url:
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace('path = "state/briefings.sqlite3"',
                                       f'path = "state/briefings.sqlite3"\nurl = "{url}"', 1), encoding="utf-8")
    return config


def collect(tmp: Path, url: str, feeds: int, entries: int) -> dict[str, float]:
    folder = tmp / f"feeds-{bool(url)}"
    generate(folder, feeds, entries, 1)
    names = sorted(p.name for p in folder.glob("*.xml"))
    out = {}
    with FeedServer(folder) as server:
        work = tmp / f"collect-{bool(url)}"
        work.mkdir()
        config = on(briefings_config(work, server, names), url)
        server.warm()
        out["cold"] = run_briefings(config)[0]
        next_day(folder, 5)
        server.warm()
        out["next day"] = run_briefings(config)[0]
    return out


def send(tmp: Path, url: str, recipients: int, senders: int) -> float:
    """Messages per second for the outbox of one briefing to `recipients`, sent by `senders` processes."""
    work = tmp / f"send-{bool(url)}-{senders}"
    work.mkdir()
    down = free_port()
    with FeedServer(labeled_feed(work).parent) as server:
        config = on(write_config(work, down, recipients, 4, server.url("week.rss")), url)
        subprocess.run([BRIEFINGS, "--config", str(config), "run"], capture_output=True, cwd=work)
    sink = Sink()
    try:
        config.write_text(config.read_text().replace(f"port = {down}", f"port = {sink.port}"))
        started = time.perf_counter()
        procs = [subprocess.Popen([BRIEFINGS, "--config", str(config), "send", "--now"], cwd=work,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(senders)]
        for p in procs:
            p.wait()
        seconds = time.perf_counter() - started
        if sink.count != recipients:
            raise RuntimeError(f"{sink.count} messages arrived, {recipients} expected")
    finally:
        sink.stop()
    return recipients / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--recipients", type=int, default=1000)
    args = parser.parse_args()
    cluster = PgCluster().start()
    try:
        with tempfile.TemporaryDirectory(prefix="briefings-pg-bench-") as tmp:
            tmp_path = Path(tmp)
            rows = {}
            for name, url in (("SQLite", ""), ("PostgreSQL", cluster.create_database("collect"))):
                rows[name] = collect(tmp_path, url, args.feeds, args.entries)
            print(f"collect of {args.feeds} x {args.entries} feeds (seconds, one whole process):")
            for step in ("cold", "next day"):
                sq, pg = rows["SQLite"][step], rows["PostgreSQL"][step]
                print(f"  {step:<9} SQLite {sq:6.2f}   PostgreSQL {pg:6.2f}   ratio {pg / sq:4.2f}")
            print(f"SMTP delivery of {args.recipients} recipients (messages per second):")
            print(f"  SQLite, 1 sender          {send(tmp_path, '', args.recipients, 1):7.0f}")
            for senders in (1, 4):
                rate = send(tmp_path, cluster.create_database(f"send{senders}"), args.recipients, senders)
                print(f"  PostgreSQL, {senders} sender{'s' if senders > 1 else ' '}     {rate:7.0f}")
            shutil.rmtree(tmp_path, ignore_errors=True)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
