"""Tune the previous classifier's settings ([classify] method = "terms") on the development split of
bench/data/norms-labeled.jsonl only, by two-fold cross-fitting. (The shipped model is trained by
bench/train_themes.py.)

    python bench/tune_classifier.py

The dev split is cut in two halves (alternating items per theme); each half is
classified with the other half as teaching examples, so the figures printed
are never measured on the examples themselves. The held-out test split is not
read. Prints the best settings by macro-F1 + accuracy + off-topic F1, and the
grid around them.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from briefings import config as config_module  # noqa: E402
from briefings.classify import Classifier, Example  # noqa: E402

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


def folds(items):
    seen = defaultdict(int)
    a, b = [], []
    for item in items:
        key = item["theme"]
        (a if seen[key] % 2 == 0 else b).append(item)
        seen[key] += 1
    return a, b


def evaluate(themes, settings, items) -> dict:
    a, b = folds(items)
    gold, predicted = [], []
    for teach, test in ((a, b), (b, a)):
        examples = [Example(i["theme"], i["title"], i["text"]) for i in teach]
        classifier = Classifier(themes, settings, examples)
        for item in test:
            gold.append(item["theme"] or OFF)
            predicted.append(classifier.classify_text(item["title"], item["text"]).theme or OFF)
    return scores(gold, predicted)


def main() -> None:
    config = config_module.load(ROOT / "config.toml")
    dev = load("dev")
    grid = {
        "similarity_weight": [0.0, 8.0, 16.0, 24.0, 32.0, 48.0],
        "threshold": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    }
    rows = []
    for values in itertools.product(*grid.values()):
        settings = replace(config.classify, method="terms", **dict(zip(grid, values)))
        figures = evaluate(config.themes, settings, dev)
        objective = figures["accuracy"] + figures["macro_f1_themes"] + figures["off_topic_f1"]
        rows.append((objective, values, figures))
    rows.sort(key=lambda r: r[0], reverse=True)
    print("dev split, two-fold cross-fitted; settings: " + ", ".join(grid))
    for objective, values, f in rows[:10]:
        print(f"{values}  accuracy {f['accuracy']:.3f}  macro-F1 {f['macro_f1_themes']:.3f}  off-topic F1 {f['off_topic_f1']:.3f}")
    terms_only = [r for r in rows if r[1][0] == 0.0][0]
    f = terms_only[2]
    print(f"best with terms only {terms_only[1]}: accuracy {f['accuracy']:.3f}  macro-F1 {f['macro_f1_themes']:.3f}  off-topic F1 {f['off_topic_f1']:.3f}")


if __name__ == "__main__":
    main()
