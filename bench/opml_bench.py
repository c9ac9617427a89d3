"""`briefings feeds import` of a large OPML file, whole processes, one per size.

    python bench/opml_bench.py [--sizes 1000,10000,100000] [--limit 120]

Each size gets a fresh copy of the shipped config.toml and an OPML file of that
many outlines (in folders of 50, every tenth name taken twice so the numbering
of taken names is exercised, one outline in a hundred with a URL that is not
valid and must be skipped). The figures are the wall and CPU time of the whole
`briefings feeds import` process, the check that the result loads before it is
saved included (CPU time is steadier on a shared machine); the [[feeds]] tables
are then counted. A size that runs past --limit seconds is stopped and reported
as such (larger sizes are not tried).
Figures only: nothing here fails on timing.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from xml.sax.saxutils import quoteattr

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import tomllib  # noqa: E402


def opml(count: int) -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<opml version="2.0"><head><title>bench</title></head><body>']
    for i in range(count):
        if i % 50 == 0:
            lines.append(f'<outline text="folder {i // 50}">' if i == 0 else f'</outline><outline text="folder {i // 50}">')
        name = f"Feed {i - 1}" if i % 10 == 9 else f"Feed {i}"
        url = f"http://bad host {i}/" if i % 100 == 99 else f"https://h{i % 97}.example.org/feed/{i}.xml"
        lines.append(f'  <outline type="rss" text={quoteattr(name)} xmlUrl={quoteattr(url)}/>')
    lines += ["</outline>", "</body></opml>", ""]
    return "\n".join(lines)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def feed_count(cfg: Path) -> int:
    return len(tomllib.loads(cfg.read_text(encoding="utf-8")).get("feeds", []))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated outline counts")
    parser.add_argument("--limit", type=float, default=120.0, help="seconds before a size is given up")
    args = parser.parse_args()
    exe = Path(sys.executable).with_name("briefings")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "briefings"]
    print(f"{'outlines':>9}  {'seconds':>8}  {'cpu s':>6}  {'per 1,000':>9}  feeds in config.toml after")
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="briefings-opml-bench-") as tmp:
            folder = Path(tmp)
            cfg = folder / "config.toml"
            cfg.write_text((ROOT / "config.toml").read_text(encoding="utf-8"), encoding="utf-8")
            (folder / "subs.opml").write_text(opml(size), encoding="utf-8")
            before = feed_count(cfg)
            started, cpu = time.perf_counter(), _children_cpu()
            try:
                done = subprocess.run([*command, "--config", str(cfg), "feeds", "import", str(folder / "subs.opml")],
                                      capture_output=True, text=True, timeout=args.limit)
            except subprocess.TimeoutExpired:
                print(f"{size:>9,}  {'> ' + format(args.limit, 'g'):>8}  {'':>6}  {'':>9}  (stopped: larger sizes not tried)")
                break
            seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
            if done.returncode != 0:
                print(f"feeds import of {size} outlines failed:\n{done.stderr}", file=sys.stderr)
                return 1
            after = feed_count(cfg)
            print(f"{size:>9,}  {seconds:>8.2f}  {cpu:>6.2f}  {seconds / size * 1000:>9.3f}  {after:,} ({after - before:,} imported)",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
