"""Classification quality on the labeled set, and speed.

    python bench/classify_bench.py [--split test|dev] [--config config.toml]

Quality runs the real interface: `briefings classify` in a subprocess, over the
chosen split of bench/data/norms-labeled.jsonl, with the shipped themes and the
shipped examples file. The examples file must not contain the split being
reported (the shipped one is drawn from the dev split only); this script
checks that. Prints primary accuracy, macro-F1 over themes, off-topic F1, the
confusion of mistakes, and entries per second on one core (in-process, the
default method, 20 x the split).

Targets on the held-out (test) split: accuracy >= 0.80, macro-F1 >= 0.70,
off-topic F1 >= 0.80; speed >= 2,000 entries/s. Figures only: nothing here fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data" / "norms-labeled.jsonl"
OFF = "off-topic"


def load(split: str) -> list[dict]:
    items = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [i for i in items if split == "all" or i["split"] == split]


def f1(tp: int, fp: int, fn: int) -> float:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def scores(gold: list[str], predicted: list[str]) -> dict:
    labels = sorted(set(gold) | set(predicted))
    per_label = {}
    for label in labels:
        tp = sum(1 for g, p in zip(gold, predicted) if g == p == label)
        fp = sum(1 for g, p in zip(gold, predicted) if p == label and g != label)
        fn = sum(1 for g, p in zip(gold, predicted) if g == label and p != label)
        per_label[label] = f1(tp, fp, fn)
    themes = [label for label in set(gold) if label != OFF]
    return {
        "n": len(gold),
        "accuracy": sum(g == p for g, p in zip(gold, predicted)) / len(gold),
        "macro_f1_themes": sum(per_label[t] for t in themes) / len(themes),
        "off_topic_f1": per_label.get(OFF, 0.0),
        "per_theme_f1": {t: round(per_label[t], 3) for t in sorted(themes)},
    }


def classify_cli(config: Path, items: list[dict]) -> list[dict]:
    lines = "".join(json.dumps({"id": i["id"], "title": i["title"], "text": i["text"]}) + "\n" for i in items)
    out = subprocess.run(
        [sys.executable, "-m", "briefings", "--config", str(config), "classify", "-"],
        input=lines, capture_output=True, text=True, check=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


def check_no_leak(config_path: Path, items: list[dict]) -> None:
    sys.path.insert(0, str(ROOT))
    from briefings import config as config_module

    config = config_module.load(config_path)
    if not config.classify.examples:
        return
    examples = {
        json.loads(line).get("title")
        for line in Path(config.classify.examples).read_text(encoding="utf-8").splitlines()
        if line.strip()
    }
    leaked = [i["id"] for i in items if i["title"] in examples]
    if leaked:
        print(f"WARNING: {len(leaked)} reported items are also teaching examples: {leaked[:5]} ...")


def speed(config_path: Path, items: list[dict], repeat: int = 20) -> float:
    from briefings import config as config_module
    from briefings.classify import build_classifier

    classifier = build_classifier(config_module.load(config_path))
    work = [(i["title"], i["text"]) for i in items] * repeat
    started = time.perf_counter()
    for title, text in work:
        classifier.classify_text(title, text)
    return len(work) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", default="test", choices=["test", "dev", "all"], help="which split to report (default: test)")
    parser.add_argument("--config", type=Path, default=ROOT / "config.toml", help="config with the themes (default: the shipped one)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--errors", action="store_true", help="list every misclassified item")
    args = parser.parse_args()

    items = load(args.split)
    check_no_leak(args.config, items)
    started = time.perf_counter()
    results = classify_cli(args.config, items)
    cli_seconds = time.perf_counter() - started
    gold = [i["theme"] or OFF for i in items]
    predicted = [r["theme"] or OFF for r in results]
    figures = scores(gold, predicted)
    figures["split"] = args.split
    figures["entries_per_second"] = round(speed(args.config, items))
    figures["cli_seconds"] = round(cli_seconds, 2)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"labeled set: {DATA.relative_to(ROOT)}, split {args.split}: {figures['n']} items")
    print(f"primary accuracy   {figures['accuracy']:.3f}   (target >= 0.80)")
    print(f"macro-F1 (themes)  {figures['macro_f1_themes']:.3f}   (target >= 0.70)")
    print(f"off-topic F1       {figures['off_topic_f1']:.3f}   (target >= 0.80)")
    print(f"speed              {figures['entries_per_second']:,} entries/s on one core (target >= 2,000)")
    print(f"`briefings classify` over the split, whole process: {cli_seconds:.2f} s")
    print("per-theme F1: " + ", ".join(f"{t} {v:.2f}" for t, v in figures["per_theme_f1"].items()))
    confusion = Counter((g, p) for g, p in zip(gold, predicted) if g != p)
    if confusion:
        print("most frequent mistakes (gold -> predicted): " + ", ".join(f"{g}->{p} x{n}" for (g, p), n in confusion.most_common(8)))
    if args.errors:
        for item, g, p in zip(items, gold, predicted):
            if g != p:
                print(f"  {item['id']} {g} -> {p}: {item['title']}")


if __name__ == "__main__":
    main()
