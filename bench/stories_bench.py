"""Story grouping: speed on synthetic entries, and quality on the labeled story set.

    python bench/stories_bench.py [--sizes 1000,5000,10000,20000] [--split heldout|dev] [--same-week]

Speed: `briefings.stories.group` on N synthetic entries (a week of reports; about
one in five is another outlet's wording of an earlier one), one core, best of 3 (wall and CPU seconds: on a
shared machine the CPU figure is the one to compare).

Quality: the chosen split of bench/data/stories.jsonl (real events 2012 to now,
each told by two to four outlets, single-report traps with the same actors or
topic, off-topic items), grouped in-process from title, text, outlet and date.
Prints B-cubed precision, recall and F1 over reports and the pairwise precision
and recall of "same story". `--same-week` puts every report on one date, so the
date gate cannot help: the words alone must keep the traps apart.
Targets on the held-out split (real dates): B-cubed F1 >= 0.90, pairwise
precision >= 0.95. Figures only: nothing here fails. Tune on dev only.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from briefings.stories import Report, group  # noqa: E402

DATA = ROOT / "bench" / "data" / "stories.jsonl"
WORDS = ("cyber norms state behaviour ransomware botnet takedown convention treaty ratification accession session "
         "working group report consensus sanctions attribution espionage critical infrastructure election "
         "resilience directive regulation vulnerability disclosure incident response capacity building").split()
NAMES = [f"Name{i}" for i in range(4000)]
COUNTRIES = ["France", "Germany", "Japan", "Brazil", "Kenya", "Canada", "India", "Poland", "Chile", "Ghana"]


def synthetic(n: int, seed: int = 7) -> list[Report]:
    rng = random.Random(seed)
    start = datetime(2025, 1, 6, tzinfo=timezone.utc)
    reports: list[Report] = []
    for i in range(n):
        if reports and rng.random() < 0.2:
            base = rng.choice(reports[-200:])  # another outlet's wording of a recent report
            words = base.text.split()
            rng.shuffle(words)
            reports.append(Report(id=i, title=" ".join(base.title.split()[::-1]), text=" ".join(words[:50]),
                                  source=f"feed{rng.randrange(50)}", when=base.when + timedelta(hours=rng.randrange(48))))
            continue
        names = rng.sample(NAMES, 3)
        text = " ".join(rng.choice(WORDS) for _ in range(60))
        text = f"{names[0]} and {names[1]} of {rng.choice(COUNTRIES)} said {text} with {names[2]} in {rng.randrange(1, 99)} cases."
        title = f"{names[0]} {rng.choice(WORDS)} {rng.choice(WORDS)} {names[1]}"
        reports.append(Report(id=i, title=title, text=text, source=f"feed{rng.randrange(50)}",
                              when=start + timedelta(minutes=rng.randrange(7 * 24 * 60))))
    return reports


def speed(sizes: list[int]) -> None:
    print("entries   seconds   CPU seconds   per 1,000   stories")
    for n in sizes:
        reports = synthetic(n)
        best, cpu, stories = float("inf"), float("inf"), []
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            stories = group(reports)
            best, cpu = min(best, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
        print(f"{n:>7,}   {best:7.2f}   {cpu:11.2f}   {best / n * 1000:9.3f}   {len(stories):>7,}")


def load(path: Path, split: str | None) -> list[dict]:
    """The labeled reports of a JSON-lines story set (id, event, outlet, date, title, text; split
    optional), those of one split when split is given. Raises ValueError naming the bad line."""
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            missing = [k for k in ("id", "event", "outlet", "date", "title", "text") if k not in row]
        except (json.JSONDecodeError, TypeError) as e:
            raise ValueError(f"{path}:{n}: not a JSON object ({e}); write one report per line") from None
        if not isinstance(row, dict) or missing:
            raise ValueError(f"{path}:{n}: a report needs id, event, outlet, date, title and text"
                             + (f" (missing: {', '.join(missing)})" if isinstance(row, dict) else ""))
        try:
            when(row)
        except (TypeError, ValueError):
            raise ValueError(f"{path}:{n}: date {row['date']!r} is not an ISO date; write it as 2024-05-31") from None
        if split is None or row.get("split") == split:
            rows.append(row)
    ids = [r["id"] for r in rows]
    if len(set(map(str, ids))) != len(ids):
        raise ValueError(f"{path}: report ids repeat; give every report its own id")
    return rows


def when(row: dict, same_week: bool = False) -> datetime:
    """A report's date (a day or a full ISO time) in UTC; with same_week, one date for all."""
    if same_week:
        return datetime(2025, 1, 6, tzinfo=timezone.utc)
    day = datetime.fromisoformat(row["date"])
    return day if day.tzinfo else day.replace(tzinfo=timezone.utc)


def in_process(rows: list[dict], same_week: bool = False) -> dict:
    """{report id: story key}: the reports grouped by `briefings.stories.group` in this process."""
    reports = [Report(id=r["id"], title=r["title"], text=r["text"], source=r["outlet"], when=when(r, same_week))
               for r in rows]
    return {report.id: story.key for story in group(reports) for report in story.reports}


def score(gold: dict, predicted: dict) -> dict:
    """B-cubed precision, recall and F1 over reports and the pairwise precision and recall of "same
    story" of predicted ({report id: story key}) against gold ({report id: event}). A report predicted
    leaves out counts as a story of its own."""
    predicted = {i: predicted[i] if i in predicted else ("alone", i) for i in gold}
    by_p: dict = {}
    by_g: dict = {}
    for i in gold:
        by_p.setdefault(predicted[i], set()).add(i)
        by_g.setdefault(gold[i], set()).add(i)
    precision = recall = 0.0
    for i in gold:
        same_p, same_g = by_p[predicted[i]], by_g[gold[i]]
        precision += len(same_p & same_g) / len(same_p)
        recall += len(same_p & same_g) / len(same_g)
    precision, recall = precision / len(gold), recall / len(gold)
    ids = list(gold)
    tp = fp = fn = 0
    for a, i in enumerate(ids):
        for j in ids[a + 1:]:
            g, p = gold[i] == gold[j], predicted[i] == predicted[j]
            tp += g and p
            fp += p and not g
            fn += g and not p
    return {"reports": len(gold), "events": len(by_g),
            "bcubed_precision": precision, "bcubed_recall": recall,
            "bcubed_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "pairwise_precision": tp / (tp + fp) if tp + fp else 1.0,
            "pairwise_recall": tp / (tp + fn) if tp + fn else 1.0}


def figures(s: dict) -> str:
    return (f"B-cubed precision {s['bcubed_precision']:.3f} recall {s['bcubed_recall']:.3f} F1 {s['bcubed_f1']:.3f}; "
            f"pairwise precision {s['pairwise_precision']:.3f} recall {s['pairwise_recall']:.3f}")


def quality(split: str, same_week: bool, data: Path = DATA) -> None:
    rows = load(data, split)
    s = score({r["id"]: r["event"] for r in rows}, in_process(rows, same_week))
    print(f"{split} ({s['reports']} reports, {s['events']} events and singletons, "
          f"{'one date for all' if same_week else 'real dates'}): {figures(s)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000,10000,20000")
    parser.add_argument("--split", default="heldout", choices=["heldout", "dev"])
    parser.add_argument("--same-week", action="store_true")
    args = parser.parse_args()
    speed([int(s) for s in args.sizes.split(",") if s])
    quality(args.split, args.same_week)
    return 0


if __name__ == "__main__":
    sys.exit(main())
