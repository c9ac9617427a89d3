"""Run every benchmark in turn and print their figures (`make bench`).

    python bench/run_all.py [--quick] [--realworld FOLDER]

--quick runs smaller sizes (20 x 10 feeds, 100 recipients) for a smoke check.
The realworld sweep runs only when given a folder of feed documents (the
project ships none). Nothing here fails on timing: a benchmark exits non-zero
only when it could not run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--realworld", type=Path, help="a folder of feed documents for the robustness sweep")
    args = parser.parse_args()
    steps = [
        ["collect_bench.py"] + (["--feeds", "20", "--entries", "10"] if args.quick else []),
        ["parse_bench.py"] + (["--feeds", "20", "--entries", "10"] if args.quick else []),
        ["classify_bench.py", "--split", "test"],
        ["smtp_bench.py"] + (["--recipients", "100"] if args.quick else []),
        ["render_bench.py"],
        ["hostile_bench.py"] + (["--scale", "0.2"] if args.quick else []),
        ["opml_bench.py"] + (["--sizes", "1000,10000"] if args.quick else []),
        ["stop_bench.py"] + (["--entries", "400"] if args.quick else []),
        ["store_bench.py"] + (["--entries", "2000"] if args.quick else []),
        ["stories_quality.py"],
        ["search_bench.py"] + (["--entries", "5000", "--seconds", "1"] if args.quick else []),
    ]
    if args.realworld:
        steps.append(["realworld_sweep.py", str(args.realworld)])
    failed = []
    for step in steps:
        if not (HERE / step[0]).exists():
            continue
        print(f"\n== {' '.join(step)}", flush=True)
        if subprocess.run([sys.executable, str(HERE / step[0]), *step[1:]]).returncode != 0:
            failed.append(step[0])
    if failed:
        print(f"\ncould not run: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
