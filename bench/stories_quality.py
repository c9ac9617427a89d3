"""Story quality through the real interface: the labeled story set as feeds, one `briefings run --json`.

    python bench/stories_quality.py [--split dev,heldout] [--data FILE]

For each split of the story set (bench/data/stories.jsonl unless --data names
another file in the same JSON-lines format: id, event, outlet, date, title, text,
and optionally split), every outlet's reports become one RSS feed (title, a
unique link per report, pubDate from the report's date, description = text),
served by bench/feedserver.py on 127.0.0.1. A temporary config.toml lists those
feeds, no corpus, and `[briefing] include_off_topic = true` so off-topic
reports are grouped and scored too; `briefings --config CFG run --json` runs in
a subprocess on a fresh state file, and each story's entries are mapped back
to report ids by link. Printed beside the in-process grouping
(`briefings.stories.group` on the same reports): B-cubed precision, recall and
F1 over reports and the pairwise precision and recall of "same story". A file
without a split field is scored whole (as `--split all`). Figures only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from feedserver import FeedServer  # noqa: E402
from stories_bench import DATA, figures, in_process, load, score, when  # noqa: E402


def feeds(rows: list[dict], folder: Path) -> tuple[dict[str, str], dict[str, object]]:
    """Write one RSS file per outlet into folder; ({outlet: file name}, {link: report id})."""
    by_outlet: dict[str, list[dict]] = {}
    for row in rows:
        by_outlet.setdefault(str(row["outlet"]), []).append(row)
    files: dict[str, str] = {}
    links: dict[str, object] = {}
    for n, (outlet, reports) in enumerate(sorted(by_outlet.items())):
        host = f"{re.sub(r'[^a-z0-9]+', '-', outlet.lower()).strip('-') or 'outlet'}-{n}"
        items = []
        for k, r in enumerate(reports):
            link = f"https://{host}.example/report/{k}"
            links[link] = r["id"]
            items.append(f"<item><title>{escape(str(r['title']))}</title><link>{link}</link><guid>{link}</guid>"
                         f"<pubDate>{format_datetime(when(r))}</pubDate>"
                         f"<description>{escape(str(r['text']))}</description></item>")
        (folder / f"{host}.xml").write_text(
            f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{escape(outlet)}</title>'
            f"<link>https://{host}.example/</link>{''.join(items)}</channel></rss>", encoding="utf-8")
        files[outlet] = f"{host}.xml"
    return files, links


def through_run(rows: list[dict]) -> tuple[dict, int, float]:
    """({report id: story number}, reports the briefing does not list, seconds of the run) for the
    reports served as feeds and grouped by one `briefings run --json`."""
    with tempfile.TemporaryDirectory(prefix="stories-quality-") as tmp:
        tmp_path = Path(tmp)
        served = tmp_path / "feeds"
        served.mkdir()
        files, links = feeds(rows, served)
        with FeedServer(served) as server:
            lines = ["[corpus]", 'path = ""', "[state]", 'path = "state/briefings.sqlite3"', "[output]",
                     'dir = "archive"', "[briefing]", "include_off_topic = true", "top_stories = 0", ""]
            for outlet, name in files.items():
                lines += ["[[feeds]]", f"name = {json.dumps(outlet)}", f"url = {json.dumps(server.url(name))}", ""]
            cfg = tmp_path / "config.toml"
            cfg.write_text("\n".join(lines), encoding="utf-8")
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "briefings", "--config", str(cfg), "run", "--json"],
                                  cwd=tmp, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
            seconds = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(f"briefings run exited {done.returncode}: {done.stderr.strip()[-2000:]}")
        report = json.loads(done.stdout)
    predicted: dict = {}
    for n, story in enumerate((report.get("briefing") or {}).get("stories", [])):
        for entry in story["entries"]:
            if entry["link"] in links:
                predicted[links[entry["link"]]] = n
    return predicted, len(rows) - len(predicted), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", default=None,
                        help="comma-separated splits to score (default dev,heldout, or all for a file without splits)")
    parser.add_argument("--data", type=Path, default=DATA, help="a story set in the JSON-lines format of data/stories.jsonl")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"stories_quality: no story set at {args.data}; give --data a JSON-lines file", file=sys.stderr)
        return 2
    if args.split is None:
        try:
            whole = load(args.data, None)
        except (OSError, UnicodeDecodeError, ValueError) as e:
            print(f"stories_quality: {e}", file=sys.stderr)
            return 2
        args.split = "dev,heldout" if any("split" in r for r in whole) else "all"
    for split in [s.strip() for s in args.split.split(",") if s.strip()]:
        try:
            rows = load(args.data, None if split == "all" else split)
        except (OSError, UnicodeDecodeError, ValueError) as e:
            print(f"stories_quality: {e}", file=sys.stderr)
            return 2
        if not rows:
            print(f"stories_quality: no reports in split {split!r} of {args.data}; "
                  "use --split all for a file without splits", file=sys.stderr)
            return 2
        gold = {r["id"]: r["event"] for r in rows}
        try:
            predicted, missing, seconds = through_run(rows)
        except RuntimeError as e:
            print(f"stories_quality: {e}", file=sys.stderr)
            return 1
        ran, alone = score(gold, predicted), score(gold, in_process(rows))
        outlets = len({str(r["outlet"]) for r in rows})
        print(f"{split} ({ran['reports']} reports, {ran['events']} events and singletons, {outlets} feeds; "
              f"{args.data.name}):")
        print(f"  through run --json: {figures(ran)}"
              f"  [{missing} reports not in the briefing, scored alone; run {seconds:.1f} s]")
        print(f"  in-process group(): {figures(alone)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
