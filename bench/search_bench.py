"""Full-text search: latency over a big state file, the index's build time, and `briefings serve`'s throughput.

    python bench/search_bench.py [--entries 100000] [--queries 100] [--seconds 5] [--clients 2]

1. Stores --entries synthetic entries (titles and 60-120 word summaries drawn from
   the norms vocabulary and filler words) through the store's own add path, in
   batches of 500, so the index is kept in step as in a collect; prints the time.
2. Index build for an existing state of that size: drops the index, puts the
   state file back to the schema version before it, and opens it again, so the
   migration builds the index from every entry; prints the time.
3. Search latency: --queries queries (words, phrases, exclusions, prefixes,
   filters) through briefings.search as `briefings search` runs them; median and
   95th percentile.
4. `briefings serve` (a real process on 127.0.0.1) answering --clients
   keep-alive httpx clients for --seconds each: requests per second for an
   archive page and for a search.

Figures only: nothing here fails on timing.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TERMS = ["norms", "ransomware", "sanctions", "OEWG", "confidence-building", "hotline", "critical infrastructure",
         "due diligence", "attribution", "capacity building", "UN GGE", "cyber diplomacy", "risk reduction",
         "supply chain", "vulnerability disclosure", "incident response", "information sharing", "Tallinn Manual",
         "responsible state behaviour", "election interference", "botnet", "takedown", "Budapest Convention"]
FILLER = ("the of and to in a is that for on with as by at from this was are be has states report agreed "
          "meeting officials ministers group working week year said new government public private sector "
          "international cooperation security cyber policy framework draft text session members partners").split()
QUERIES = ["ransomware", "ransomware sanctions", '"critical infrastructure"', "oewg -ransomware", "hotline*",
           '"due diligence" attribution', "botnet takedown", "cyber diplomacy", '"responsible state behaviour"',
           "supply chain -botnet"]


def text(rng: random.Random, words: int) -> str:
    out = []
    for _ in range(words):
        out.append(rng.choice(TERMS) if rng.random() < 0.08 else rng.choice(FILLER))
    return " ".join(out)


def entries(rng: random.Random, start: int, count: int, now: datetime):
    from briefings.models import Entry

    batch = []
    for i in range(start, start + count):
        summary = f"<p>{text(rng, rng.randint(60, 120))}.</p><p>{text(rng, rng.randint(20, 40))}.</p>"
        batch.append(Entry(key=f"bench:{i}", source_kind="feed", source_name=f"Feed {i % 200}",
                           title=text(rng, rng.randint(6, 12)).capitalize(), link=f"https://example.org/{i}",
                           published=now - timedelta(minutes=i), summary_html=summary))
    return batch


def build_state(path: Path, count: int) -> float:
    from briefings.pipeline import entry_text
    from briefings.store import Store

    rng = random.Random(17)
    now = datetime(2026, 11, 1, tzinfo=timezone.utc)
    store = Store(path)
    started = time.perf_counter()
    for i in range(0, count, 500):
        store.entries.add(entries(rng, i, min(500, count - i), now), now=now, text_of=entry_text)
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed


def rebuild_by_migration(path: Path) -> float:
    """Drop the index and open the state again: the migration that made it builds it from every entry."""
    from briefings.store import Store, fulltext
    from briefings.store.schema import MIGRATIONS

    db = sqlite3.connect(path)
    version = db.execute("PRAGMA user_version").fetchone()[0]
    db.execute("DROP TRIGGER IF EXISTS entries_fts_delete")
    db.execute("DROP TABLE entries_fts")
    db.execute(f"PRAGMA user_version = {MIGRATIONS.index(fulltext.create)}")
    db.commit()
    db.close()
    started = time.perf_counter()
    store = Store(path)
    elapsed = time.perf_counter() - started
    assert store.version == version
    store.close()
    return elapsed


def latencies(path: Path, count: int) -> list[float]:
    from briefings import search
    from briefings.store import Store

    store = Store(path)
    rng = random.Random(3)
    matches = [store.db.one("SELECT COUNT(*) FROM entries_fts WHERE entries_fts MATCH ?", (search.parse(q).match(),))[0]
               for q in QUERIES]
    print(f"  (the queries match {min(matches):,} to {max(matches):,} entries each: the synthetic entries repeat a"
          f" small vocabulary, so this is a heavy case)")
    times = []
    for i in range(count):
        query = QUERIES[i % len(QUERIES)]
        filters = search.Filters(limit=20, since="2026-10-01" if i % 3 == 0 else None,
                                 source=f"Feed {rng.randrange(200)}" if i % 5 == 0 else None)
        started = time.perf_counter()
        store.fulltext.search(search.parse(query), filters)
        times.append(time.perf_counter() - started)
    store.close()
    return times


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def throughput(base: str, path: str, seconds: float, clients: int) -> float:
    import httpx

    counts = [0] * clients
    deadline = time.monotonic() + seconds

    def worker(n: int):
        with httpx.Client(base_url=base, timeout=10) as client:
            while time.monotonic() < deadline:
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code)
                counts[n] += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / seconds


def serve_figures(folder: Path, state: Path, seconds: float, clients: int) -> dict[str, float]:
    import httpx

    site = folder / "site"
    shutil.copytree(ROOT / "sources", site / "sources")
    config = site / "config.toml"
    config.write_text('[corpus]\npath = "sources"\n[state]\npath = "small.sqlite3"\n[output]\ndir = "archive"\n')
    briefings = [sys.executable, "-m", "briefings", "--config", str(config)]
    subprocess.run(briefings + ["run"], check=True, capture_output=True, cwd=site)
    page = next((site / "archive").glob("2026-*.html")).name
    config.write_text(config.read_text().replace("small.sqlite3", str(state)))
    port = free_port()
    proc = subprocess.Popen(briefings + ["serve", "--port", str(port)], cwd=site, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=os.environ | {"BRIEFINGS_SECRET": "bench"})
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{base}/index.html", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        return {
            f"archive page ({page}, {(site / 'archive' / page).stat().st_size // 1024} KB)":
                throughput(base, f"/{page}", seconds, clients),
            "search page (ransomware sanctions, 20 results)":
                throughput(base, "/search?q=ransomware+sanctions", seconds, clients),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        state = folder / "state.sqlite3"
        stored = build_state(state, args.entries)
        size = state.stat().st_size / 1e6
        print(f"stored {args.entries:,} entries (index kept in step): {stored:.1f} s; state file {size:.0f} MB")
        built = rebuild_by_migration(state)
        print(f"index build by the migration for a state of {args.entries:,} entries: {built:.1f} s")
        times = sorted(latencies(state, args.queries))
        p95 = times[max(0, round(0.95 * len(times)) - 1)]
        print(f"search latency over {args.entries:,} entries, {len(times)} queries: median "
              f"{statistics.median(times) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms")
        for what, rate in serve_figures(folder, state, args.seconds, args.clients).items():
            print(f"briefings serve, {args.clients} keep-alive clients: {what}: {rate:,.0f} requests/s")


if __name__ == "__main__":
    main()
