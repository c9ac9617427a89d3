"""Tune [classify] settings on the development split only, by two-fold cross-fitting.

    python bench/tune_classifier.py

The dev split is cut in two halves (alternating items per theme); each half is
classified with the other half as teaching examples, so the figures printed
are never measured on the examples themselves. The held-out test split is not
read. Prints the best settings by macro-F1 + accuracy + off-topic F1, and the
grid around them.
"""

from __future__ import annotations

import itertools
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from classify_bench import OFF, load, scores  # noqa: E402

from briefings import config as config_module  # noqa: E402
from briefings.classify import Classifier, Example  # noqa: E402


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
        settings = replace(config.classify, **dict(zip(grid, values)))
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
