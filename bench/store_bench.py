"""The store's fault boundary: what turning SQLite errors into StoreErrors costs on a real state file.

    python bench/store_bench.py [--entries 10000] [--repeat 5]

Times the store's busiest work on a fresh SQLite file in a temporary folder, with
briefings' connection (every statement and row read behind the fault boundary)
and with a plain sqlite3.Connection: storing N entries in batches of 50 (as N/50
feeds would), looking them all up again (a rerun with nothing new), reading
them back as pending entries, and the feed states. Prints the best of
--repeat for each, and the ratio. Figures only: nothing here fails.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def entries(count: int, start: int = 0):
    from briefings.models import Entry

    return [
        Entry(key=f"bench:{i}", source_kind="feed", source_name=f"feed {i // 50}", title=f"Entry {i} on norms",
              link=f"https://example.org/{i}", summary_html=f"<p>Entry {i} says {i * 7} things about norms.</p>")
        for i in range(start, start + count)
    ]


def one_pass(count: int) -> dict[str, float]:
    from briefings.store import Store

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    batch = entries(count)
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "state.sqlite3")
        store.feeds.ensure_all((f"feed {i}", f"https://example.org/{i}.xml") for i in range(count // 50))
        started = time.perf_counter()
        for i in range(0, count, 50):
            store.entries.add(batch[i : i + 50], now=now, text_of=lambda e: e.summary_html)
        times["store new entries"] = time.perf_counter() - started
        started = time.perf_counter()
        for i in range(0, count, 50):
            store.entries.add(batch[i : i + 50], now=now, text_of=lambda e: e.summary_html)
        times["look up known entries"] = time.perf_counter() - started
        started = time.perf_counter()
        store.entries.pending()
        times["read pending entries"] = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(20):
            store.feeds.all()
        times["feed states x 20"] = time.perf_counter() - started
        store.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import briefings.store.db as store_module

    guarded = store_module.connect
    plain = lambda path, **kwargs: sqlite3.connect(path, **kwargs)  # noqa: E731
    best: dict[str, dict[str, float]] = {"briefings": {}, "plain sqlite3": {}}
    for _ in range(args.repeat):
        for name, connect in (("briefings", guarded), ("plain sqlite3", plain)):
            store_module.connect = connect
            for step, seconds in one_pass(args.entries).items():
                best[name][step] = min(seconds, best[name].get(step, seconds))
    store_module.connect = guarded
    print(f"store_bench: {args.entries} entries, best of {args.repeat}")
    print(f"{'step':<24}{'briefings':>12}{'plain':>12}{'ratio':>8}")
    for step, seconds in best["briefings"].items():
        base = best["plain sqlite3"][step]
        print(f"{step:<24}{seconds * 1000:>10.1f}ms{base * 1000:>10.1f}ms{seconds / base:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
