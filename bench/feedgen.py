"""A synthetic feed corpus for benchmarks: N feeds x M entries, RSS 2.0 and Atom mixed.

    python bench/feedgen.py OUT_DIR [--feeds 200] [--entries 50] [--seed 1]
    python bench/feedgen.py OUT_DIR --next-day [--new 5]

Entry bodies are 0.5-5 KB of HTML paragraphs with cyber-policy vocabulary.
The same seed gives the same bytes. --next-day adds --new entries at the top
of every feed (dated a day later) and drops as many from the bottom, as a feed
with a fixed length does.
"""

from __future__ import annotations

import argparse
import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

WORDS = (
    "norms state behaviour cyberspace ransomware botnet takedown convention treaty working group report "
    "critical infrastructure hospital grid energy confidence building measures hotline points of contact "
    "capacity developing countries training incident response team coordination vulnerability disclosure "
    "supply chain software secure development information sharing threat intelligence partnership industry "
    "civil society strategy doctrine transparency sovereignty international law proportionality attribution "
    "the a of and to in for on with by from that this is was are were will said officials government agency "
    "ministers delegations consensus negotiations meeting session statement framework cooperation resilience"
).split()
BASE = datetime(2026, 11, 1, 8, 0, tzinfo=timezone.utc)


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 22))]
    return " ".join(words).capitalize() + "."


def _body(rng: random.Random) -> str:
    target = rng.randint(500, 5000)
    parts, size = [], 0
    while size < target:
        para = "<p>" + " ".join(_sentence(rng) for _ in range(rng.randint(2, 5))) + "</p>"
        parts.append(para)
        size += len(para)
    return "\n".join(parts)


def _entry(feed: int, n: int, seed: int) -> dict:
    rng = random.Random(f"{seed}:{feed}:{n}")
    title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 10))).capitalize()
    return {
        "id": f"https://feed{feed:03d}.bench.test/posts/{n}",
        "title": title,
        "link": f"https://feed{feed:03d}.bench.test/posts/{n}",
        "date": BASE + timedelta(hours=n * 3 + feed % 7),
        "body": _body(rng),
    }


def _render(feed: int, entries: list[dict]) -> str:
    if feed % 2 == 0:
        items = "".join(
            f"<item><title>{escape(e['title'])}</title><link>{e['link']}</link>"
            f"<guid isPermaLink=\"true\">{e['id']}</guid><pubDate>{format_datetime(e['date'])}</pubDate>"
            f"<description>{escape(e['body'])}</description></item>\n"
            for e in entries
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>Bench feed {feed:03d}</title><link>https://feed{feed:03d}.bench.test/</link>"
            f"<description>Synthetic feed</description>\n{items}</channel></rss>\n"
        )
    items = "".join(
        f"<entry><title>{escape(e['title'])}</title><link href=\"{e['link']}\"/><id>{e['id']}</id>"
        f"<updated>{e['date'].isoformat()}</updated><content type=\"html\">{escape(e['body'])}</content></entry>\n"
        for e in entries
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Bench feed {feed:03d}</title><id>urn:bench:{feed}</id><updated>{BASE.isoformat()}</updated>\n"
        f"{items}</feed>\n"
    )


def _state(folder: Path) -> tuple[int, int, int]:
    meta = (folder / ".feedgen").read_text().split()
    return int(meta[0]), int(meta[1]), int(meta[2])


def write(folder: Path, feeds: int, entries: int, seed: int, first: int) -> int:
    """Write every feed with entries numbered first .. first+entries-1 (newest first); returns bytes written."""
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for f in range(feeds):
        data = _render(f, [_entry(f, n, seed) for n in range(first + entries - 1, first - 1, -1)]).encode()
        (folder / f"feed-{f:03d}.xml").write_bytes(data)
        total += len(data)
    (folder / ".feedgen").write_text(f"{feeds} {entries} {seed} {first}")
    return total


def generate(folder: Path, feeds: int = 200, entries: int = 50, seed: int = 1) -> int:
    return write(Path(folder), feeds, entries, seed, first=0)


def next_day(folder: Path, new: int = 5) -> int:
    """Shift every feed by `new` entries: that many new ones on top, as many old ones gone."""
    folder = Path(folder)
    feeds, entries, seed = _state(folder)
    first = int((folder / ".feedgen").read_text().split()[3]) + new
    return write(folder, feeds, entries, seed, first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--next-day", action="store_true", help="add --new entries to every feed already in OUT")
    parser.add_argument("--new", type=int, default=5)
    args = parser.parse_args()
    size = next_day(args.out, args.new) if args.next_day else generate(args.out, args.feeds, args.entries, args.seed)
    print(f"wrote {size / 1e6:.1f} MB of feeds to {args.out}")


if __name__ == "__main__":
    main()
