"""Where a parse worker's time goes, one core, on the synthetic corpus of collect_bench.

    python bench/parse_bench.py [--feeds 200] [--entries 50] [--seed 1]

Each step runs over every feed document in one process, no HTTP, no store:
  feedparser, stdlib driver   plain feedparser.parse with sanitize_html and
                              resolve_relative_uris off: the lean parse floor
  feedparser, briefings       the same through briefings' buffered expat driver
                              (the entries must come out equal, or this exits 1)
  gunzip                      the bodies as a server sends them (gzip level 5)
  item digests                lxml reads each document and digests its items
  normalize                   feedparser entries -> briefings' Entry
  parse_response, cold        a worker's whole job on a first fetch
  parse_response, next day    the same after 5 new entries per feed, with the
                              item digests of the day before
Figures only: nothing here fails on timing.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from feedgen import generate, next_day  # noqa: E402

from briefings.collect.parse import _feedparser, item_digests, normalize, parse_response  # noqa: E402


def timed(label: str, work, rows: list) -> object:
    started = time.perf_counter()
    out = work()
    rows.append((label, time.perf_counter() - started))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    feedparser = _feedparser()  # briefings' driver installed
    preferred = feedparser.api.PREFERRED_XML_PARSERS
    now = datetime.now(timezone.utc)
    headers = {"content-type": "application/xml", "content-encoding": "gzip"}
    max_bytes = 1 << 30
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="briefings-parse-bench-") as tmp:
        folder = Path(tmp)
        size = generate(folder, args.feeds, args.entries, args.seed)
        docs = [(p.name, p.read_bytes()) for p in sorted(folder.glob("*.xml"))]

        def parse_all():
            return [feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False) for _, body in docs]

        saved = preferred[:]
        preferred[:] = ["xml.sax.expatreader"]
        try:
            plain = timed("feedparser, stdlib driver", parse_all, rows)
        finally:
            preferred[:] = saved
        ours = timed("feedparser, briefings", parse_all, rows)
        if any(a.entries != b.entries or a.feed != b.feed for a, b in zip(plain, ours)):
            print("the buffered driver changed a parse result", file=sys.stderr)
            return 1
        packed = [(name, gzip.compress(body, 5)) for name, body in docs]
        timed("gunzip", lambda: [zlib.decompress(body, zlib.MAX_WBITS | 16) for _, body in packed], rows)
        digests = timed("item digests", lambda: {name: item_digests(body)[0] for name, body in docs}, rows)
        entries = sum(len(p.entries) for p in ours)
        timed("normalize", lambda: [normalize(e, name, f"http://bench.test/{name}", now)
                                    for (name, _), p in zip(docs, ours) for e in p.entries], rows)
        timed("parse_response, cold", lambda: [parse_response(body, headers, f"http://bench.test/{name}", name, now,
                                                              max_bytes) for name, body in packed], rows)
        next_day(folder, 5)
        later = [(p.name, gzip.compress(p.read_bytes(), 5)) for p in sorted(folder.glob("*.xml"))]
        results = timed("parse_response, next day",
                        lambda: [parse_response(body, headers, f"http://bench.test/{name}", name, now, max_bytes,
                                                digests[name]) for name, body in later], rows)
        new = sum(len(r.entries) for r in results)

    floor = rows[0][1]
    print(f"{args.feeds} feeds x {args.entries} entries, {size / 1e6:.1f} MB of XML, seed {args.seed}; one core")
    print(f"{'step':<27} {'seconds':>8} {'per entry':>10} {'/ floor':>8}")
    for label, seconds in rows:
        count = new if label.endswith("next day") else entries
        print(f"{label:<27} {seconds:8.3f} {seconds / count * 1e6:8.0f}us {seconds / floor:8.2f}")
    print(f"({entries} entries cold, {new} parsed next day; the floor is the first line)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
