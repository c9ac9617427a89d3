"""Collect benchmark: briefings against rss2email on the same synthetic feeds, whole processes.

    python bench/collect_bench.py [--feeds 200] [--entries 50] [--seed 1] [--repeat 1] [--skip-rss2email]

Steps, each a whole process timed by wall clock, with the peak memory of the
largest process in its tree (wait4's ru_maxrss, read by a small launcher process
so that this process's own size is not counted):
  cold       the first collect of every feed
  unchanged  a rerun with nothing new (every feed answers 304)
  next day   a rerun after every feed gained 5 entries (feedgen --next-day)
briefings runs `briefings collect --json`; rss2email 3.x (installed into a
throwaway virtual environment under ~/.cache/briefings-bench) runs `r2e run`,
delivering to an aiosmtpd sink on 127.0.0.1, on a fresh copy of the same feeds.
Also printed: the parse floor, the sum of plain `feedparser.parse` times over
the same bytes on one core (default options, and with sanitize_html and
resolve_relative_uris off), and briefings' time against half of it (2 cores).

Figures only: nothing here fails on timing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from feedgen import generate, next_day  # noqa: E402
from feedserver import FeedServer  # noqa: E402

VENV_BIN = Path(sys.executable).parent
R2E_VENV = Path.home() / ".cache" / "briefings-bench" / "r2e-venv"


# The timed command is started by a small launcher process, which reports the command's wall
# time and peak memory. Started from this process directly, the command's peak would count
# this process's own size: Linux keeps a process's peak RSS across exec, and a child starts
# as a copy of its parent (this one grows with the feed server's cache).
LAUNCHER = """
import json, os, subprocess, sys, time
started = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
elapsed = time.perf_counter() - started
os.write(int(sys.argv[1]), json.dumps([elapsed, usage.ru_maxrss, os.waitstatus_to_exitcode(status)]).encode())
"""


def timed(command: list[str], env: dict | None = None, cwd: Path | None = None,
          allow_fail: bool = False) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB of the process tree, stdout) of one whole process."""
    read_end, write_end = os.pipe()
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(write_end), *command], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=cwd, pass_fds=(write_end,))
    os.close(write_end)
    out, err = proc.communicate()
    with os.fdopen(read_end, "rb") as pipe:
        report = pipe.read()
    if proc.returncode != 0 or not report:
        raise RuntimeError(f"the launcher failed ({proc.returncode}): {err.decode()[-2000:]}")
    elapsed, peak_kb, returncode = json.loads(report)
    if returncode != 0 and not allow_fail:
        raise RuntimeError(f"{command[0]} exited {returncode}: {err.decode()[-2000:]}")
    return elapsed, peak_kb / 1024, out.decode()


def briefings_config(folder: Path, server: FeedServer, names: list[str]) -> Path:
    lines = ['[corpus]', 'path = ""', '[state]', 'path = "state/briefings.sqlite3"', '[output]', 'dir = "archive"',
             '[fetch]', 'concurrency = 8', 'per_host = 8', 'timeout = 30', '']
    for name in names:
        lines += ["[[feeds]]", f'name = "{name}"', f'url = "{server.url(name)}"', ""]
    path = folder / "config.toml"
    path.write_text("\n".join(lines))
    return path


def run_briefings(config: Path) -> tuple[float, float, dict]:
    seconds, mb, out = timed([str(VENV_BIN / "briefings"), "--config", str(config), "collect", "--json"])
    return seconds, mb, json.loads(out)


def install_rss2email() -> Path | None:
    r2e = R2E_VENV / "bin" / "r2e"
    if r2e.exists():
        return r2e
    try:
        subprocess.run([sys.executable, "-m", "venv", str(R2E_VENV)], check=True, capture_output=True)
        subprocess.run([str(R2E_VENV / "bin" / "pip"), "install", "-q", "rss2email>=3.14,<4"], check=True,
                       capture_output=True, timeout=600)
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"rss2email could not be installed ({exc}); comparing with the parse floor only")
        return None
    return r2e


class SmtpSink:
    def __init__(self):
        from aiosmtpd.controller import Controller

        self.count = 0
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.count += 1
                return "250 OK"

        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self):
        self.controller.stop()


def rss2email_config(folder: Path, server: FeedServer, names: list[str], smtp_port: int) -> Path:
    lines = ["[DEFAULT]", "from = bench@example.org", "to = bench@example.org", "email-protocol = smtp",
             "smtp-server = 127.0.0.1", f"smtp-port = {smtp_port}", "smtp-auth = False", "smtp-ssl = False",
             "feed-timeout = 30", ""]
    for name in names:
        lines += [f"[feed.{name.replace('.xml', '')}]", f"url = {server.url(name)}", ""]
    path = folder / "r2e.cfg"
    path.write_text("\n".join(lines))
    return path


def run_rss2email(r2e: Path, config: Path, data: Path) -> tuple[float, float]:
    seconds, mb, _ = timed([str(r2e), "-c", str(config), "-d", str(data), "run"])
    return seconds, mb


def parse_floor(folder: Path) -> tuple[float, float]:
    import feedparser

    blobs = [p.read_bytes() for p in sorted(folder.glob("*.xml"))]
    started = time.perf_counter()
    for blob in blobs:
        feedparser.parse(blob)
    default = time.perf_counter() - started
    started = time.perf_counter()
    for blob in blobs:
        feedparser.parse(blob, sanitize_html=False, resolve_relative_uris=False)
    return default, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="run the whole comparison R times, keep the best of each step")
    parser.add_argument("--skip-rss2email", action="store_true")
    args = parser.parse_args()

    r2e = None if args.skip_rss2email else install_rss2email()
    # Bytecode for briefings, as `pip install` writes for an installed package (and as rss2email
    # has): with an editable install under PYTHONDONTWRITEBYTECODE, every timed run would
    # otherwise compile each briefings module from source (about 30 ms).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "briefings")], check=True)
    best: dict[str, dict[str, tuple[float, float]]] = {"briefings": {}, "rss2email": {}}
    floors = {}
    checks = {}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="briefings-bench-") as tmp:
            tmp = Path(tmp)
            feeds = tmp / "feeds"
            size = generate(feeds, args.feeds, args.entries, args.seed)
            names = sorted(p.name for p in feeds.glob("*.xml"))
            floors["cold"] = parse_floor(feeds)
            with FeedServer(feeds) as server:
                # briefings
                work = tmp / "briefings"
                work.mkdir()
                config = briefings_config(work, server, names)
                server.warm()
                steps = {}
                steps["cold"], steps["unchanged"] = run_briefings(config), run_briefings(config)
                next_day(feeds, 5)
                server.warm()
                floors["next day"] = parse_floor(feeds)
                steps["next day"] = run_briefings(config)
                for step, (seconds, mb, report) in steps.items():
                    ok = sum(f["status"] in ("ok", "not-modified") for f in report["feeds"])
                    checks[step] = f"{ok}/{len(report['feeds'])} feeds ok, {report['new_entries']} new entries"
                    _keep(best["briefings"], step, seconds, mb)
                # rss2email on a fresh copy of the same feeds
                if r2e:
                    generate(feeds, args.feeds, args.entries, args.seed)
                    sink = SmtpSink()
                    try:
                        r2e_dir = tmp / "r2e"
                        r2e_dir.mkdir()
                        cfg = rss2email_config(r2e_dir, server, names, sink.port)
                        data = r2e_dir / "r2e.json"
                        for step in ("cold", "unchanged"):
                            _keep(best["rss2email"], step, *run_rss2email(r2e, cfg, data))
                        next_day(feeds, 5)
                        server.warm()
                        _keep(best["rss2email"], "next day", *run_rss2email(r2e, cfg, data))
                        checks["rss2email messages"] = f"{sink.count} messages to the SMTP sink"
                    finally:
                        sink.close()
    print(f"{args.feeds} feeds x {args.entries} entries, {size / 1e6:.1f} MB of XML, seed {args.seed}, "
          f"best of {args.repeat}; {os.cpu_count()} cores")
    print(f"{'step':<11} {'briefings':>10} {'peak MB':>8} {'rss2email':>10} {'peak MB':>8} {'r2e/ours':>9}   check")
    results = {"feeds": args.feeds, "entries": args.entries, "mb_xml": round(size / 1e6, 1), "steps": {}}
    for step in ("cold", "unchanged", "next day"):
        ours, ours_mb = best["briefings"][step]
        theirs, theirs_mb = best["rss2email"].get(step, (None, None))
        ratio = f"{theirs / ours:8.1f}x" if theirs else "       -"
        theirs_text = f"{theirs:9.2f}s {theirs_mb:8.0f}" if theirs else f"{'-':>10} {'-':>8}"
        print(f"{step:<11} {ours:9.2f}s {ours_mb:8.0f} {theirs_text} {ratio}   {checks[step]}")
        results["steps"][step] = {"briefings_s": round(ours, 3), "briefings_peak_mb": round(ours_mb),
                                  "rss2email_s": theirs and round(theirs, 3), "rss2email_peak_mb": theirs_mb and round(theirs_mb)}
    if "rss2email messages" in checks:
        print(f"rss2email: {checks['rss2email messages']}")
    for step in ("cold", "next day"):
        default, lean = floors[step]
        ours = best["briefings"][step][0]
        print(f"parse floor, {step}: feedparser.parse {default:.2f}s on one core ({lean:.2f}s without sanitizing);"
              f" briefings / (lean floor / 2 cores) = {ours / (lean / 2):.2f}")
        results["steps"][step] |= {"floor_default_s": round(default, 3), "floor_lean_s": round(lean, 3)}
    out = HERE / "results" / "collect.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


def _keep(table: dict, step: str, seconds: float, mb: float) -> None:
    if step not in table or seconds < table[step][0]:
        table[step] = (seconds, mb)


if __name__ == "__main__":
    main()
