"""Check bench/data/themes-real.jsonl, the labeled set of real public texts.

Validates every line (fields, types, ids, theme ids, off-topic and trap rules, text
length, date), checks that no origin appears in both splits, prints the counts per
theme, split and trap, and exits 1 on any problem. The targets of docs/labeling.md
(at least 800 items, 200 off-topic, 40 on-topic items per theme, 8 per theme in
held-out) are checked too; `--partial` reports them without failing.

    python bench/data/check_themes_real.py [--partial] [PATH]
"""

from __future__ import annotations

import collections
import json
import re
import sys
from pathlib import Path

THEMES = (
    "harmonization", "risk-reduction", "transparency", "collaboration",
    "proportionality", "information-sharing", "confidence-building",
    "capacity-building", "critical-infrastructure", "incident-response",
    "international-fora", "secure-development",
)
TRAPS = (
    "patch-roundup", "vulnerability-writeup", "malware-analysis", "breach", "outage",
    "product-launch", "ai-launch", "funding", "non-cyber-diplomacy", "tech-policy-other",
    "general-tech",
)
SPLITS = ("train", "heldout")
FIELDS = {
    "id": str, "split": str, "origin": str, "theme": (str, type(None)),
    "also_primary": list, "secondary": list, "off_topic": bool, "trap": (str, type(None)),
    "title": str, "text": str, "date": str, "source": str,
}
MIN_WORDS, MAX_WORDS = 40, 120
TARGET_TOTAL, TARGET_OFF, TARGET_THEME, TARGET_HELDOUT_THEME = 800, 200, 40, 8
DATE = re.compile(r"^(20[1-2]\d)(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$")
ID = re.compile(r"^r-\d{4,5}$")


def check_item(item: dict) -> list[str]:
    """Return the problems of one item (empty when it is valid)."""
    problems = []
    for name, kind in FIELDS.items():
        if name not in item:
            problems.append(f"missing field {name!r}")
        elif not isinstance(item[name], kind):
            problems.append(f"field {name!r} has the wrong type")
    extra = set(item) - set(FIELDS)
    if extra:
        problems.append(f"unknown fields {sorted(extra)}")
    if problems:
        return problems
    if not ID.match(item["id"]):
        problems.append(f"id {item['id']!r} is not r-NNNN (or r-NNNNN)")
    if item["split"] not in SPLITS:
        problems.append(f"split {item['split']!r} is not one of {SPLITS}")
    for name in ("origin", "title", "source"):
        if not item[name].strip():
            problems.append(f"{name} is empty")
    theme, off = item["theme"], item["off_topic"]
    if off:
        if theme is not None or item["also_primary"] or item["secondary"]:
            problems.append("an off-topic item has a theme, second primary or secondary")
        if item["trap"] not in TRAPS:
            problems.append(f"off-topic item has trap {item['trap']!r}, not one of {TRAPS}")
    else:
        if theme not in THEMES:
            problems.append(f"theme {theme!r} is not a theme id")
        if item["trap"] is not None:
            problems.append("an on-topic item has a trap")
    for name in ("also_primary", "secondary"):
        for value in item[name]:
            if value not in THEMES:
                problems.append(f"{name} has {value!r}, not a theme id")
            if value == theme:
                problems.append(f"{name} repeats the primary theme {value!r}")
        if len(set(item[name])) != len(item[name]):
            problems.append(f"{name} lists a theme twice")
    if len(item["also_primary"]) > 1:
        problems.append("more than one second primary")
    if set(item["also_primary"]) & set(item["secondary"]):
        problems.append("a theme is both second primary and secondary")
    words = len(item["text"].split())
    if not MIN_WORDS <= words <= MAX_WORDS:
        problems.append(f"text has {words} words, not {MIN_WORDS}-{MAX_WORDS}")
    if not DATE.match(item["date"]) or item["date"] < "2010":
        problems.append(f"date {item['date']!r} is not YYYY(-MM(-DD)) from 2010 on")
    return problems


def check(path: Path, partial: bool = False) -> int:
    """Check the file, print the counts, return the exit status."""
    problems: list[str] = []
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not JSON ({exc.msg})")
            continue
        if not isinstance(item, dict):
            problems.append(f"line {number}: not a JSON object")
            continue
        problems += [f"line {number} ({item.get('id')}): {p}" for p in check_item(item)]
        items.append(item)
    valid = [i for i in items if not check_item(i)]

    for name in ("id", "title", "text"):
        counts = collections.Counter(i[name].strip().lower() for i in valid)
        problems += [f"{name} appears {n} times: {v[:60]!r}" for v, n in counts.items() if n > 1]

    splits_of = collections.defaultdict(set)
    for item in valid:
        splits_of[item["origin"]].add(item["split"])
    problems += [f"origin {o!r} is in both splits" for o, s in sorted(splits_of.items()) if len(s) > 1]

    by_split = collections.Counter(i["split"] for i in valid)
    print(f"items: {len(valid)}  (train {by_split['train']}, heldout {by_split['heldout']}, "
          f"heldout share {by_split['heldout'] / max(len(valid), 1):.1%})")
    print(f"origins: train {sum(1 for s in splits_of.values() if s == {'train'})}, "
          f"heldout {sum(1 for s in splits_of.values() if s == {'heldout'})}")
    on = [i for i in valid if not i["off_topic"]]
    off = [i for i in valid if i["off_topic"]]
    print(f"on-topic: {len(on)}  off-topic: {len(off)}  "
          f"two primaries: {sum(1 for i in on if i['also_primary'])}  "
          f"with secondary: {sum(1 for i in on if i['secondary'])}")
    print(f"\n{'primary theme':<26}{'train':>7}{'heldout':>9}{'total':>7}{'+2nd':>6}{'sec':>6}")
    shortfalls = []
    for theme in THEMES:
        row = collections.Counter(i["split"] for i in on if i["theme"] == theme)
        second = sum(1 for i in on if theme in i["also_primary"])
        sec = sum(1 for i in on if theme in i["secondary"])
        total = row["train"] + row["heldout"]
        print(f"{theme:<26}{row['train']:>7}{row['heldout']:>9}{total:>7}{second:>6}{sec:>6}")
        if total < TARGET_THEME:
            shortfalls.append(f"theme {theme}: {total} on-topic items, target {TARGET_THEME}")
        if row["heldout"] < TARGET_HELDOUT_THEME:
            shortfalls.append(f"theme {theme}: {row['heldout']} held-out items, target {TARGET_HELDOUT_THEME}")
    print(f"\n{'trap (off-topic)':<26}{'train':>7}{'heldout':>9}{'total':>7}")
    for trap in TRAPS:
        row = collections.Counter(i["split"] for i in off if i["trap"] == trap)
        if row:
            print(f"{trap:<26}{row['train']:>7}{row['heldout']:>9}{row['train'] + row['heldout']:>7}")
        if trap != "general-tech" and not row["heldout"]:
            shortfalls.append(f"trap {trap}: no held-out item")
    if len(valid) < TARGET_TOTAL:
        shortfalls.append(f"{len(valid)} items, target {TARGET_TOTAL}")
    if len(off) < TARGET_OFF:
        shortfalls.append(f"{len(off)} off-topic items, target {TARGET_OFF}")

    for shortfall in shortfalls:
        print(f"target not met: {shortfall}")
    if not partial:
        problems += shortfalls
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in {path}", file=sys.stderr)
        return 1
    print(f"ok: {path}")
    return 0


def main(argv: list[str]) -> int:
    partial = "--partial" in argv
    args = [a for a in argv if a != "--partial"]
    path = Path(args[0]) if args else Path(__file__).with_name("themes-real.jsonl")
    if not path.exists():
        print(f"error: {path} does not exist; pass the path of a themes-real.jsonl file", file=sys.stderr)
        return 1
    return check(path, partial)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
