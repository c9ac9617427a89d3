"""The story bench's own scorer, on tiny hand-made sets whose figures are worked out by hand, and its
path through the real interface: a few labeled reports served as feeds on 127.0.0.1 and grouped by a
real `briefings run --json` in a subprocess, mapped back to report ids by link."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

from stories_bench import DATA, load, score  # noqa: E402
from stories_quality import through_run  # noqa: E402

# Four reports: a and b tell one event, c and d are two others.
GOLD = {"a": "e1", "b": "e1", "c": "e2", "d": "e3"}


@pytest.mark.parametrize("predicted, expected", [
    pytest.param({"a": 1, "b": 1, "c": 2, "d": 3},
                 {"bcubed_precision": 1.0, "bcubed_recall": 1.0, "bcubed_f1": 1.0,
                  "pairwise_precision": 1.0, "pairwise_recall": 1.0}, id="perfect"),
    # One story for all: B-cubed precision (2/4 + 2/4 + 1/4 + 1/4) / 4; one true pair of six.
    pytest.param({"a": 0, "b": 0, "c": 0, "d": 0},
                 {"bcubed_precision": 0.375, "bcubed_recall": 1.0, "bcubed_f1": 0.75 / 1.375,
                  "pairwise_precision": 1 / 6, "pairwise_recall": 1.0}, id="all-merged"),
    # Every report alone: B-cubed recall (1/2 + 1/2 + 1 + 1) / 4; the one true pair missed.
    pytest.param({"a": 0, "b": 1, "c": 2, "d": 3},
                 {"bcubed_precision": 1.0, "bcubed_recall": 0.75, "bcubed_f1": 1.5 / 1.75,
                  "pairwise_precision": 1.0, "pairwise_recall": 0.0}, id="all-apart"),
    # b missing from the prediction counts alone, even though c shares a's story.
    pytest.param({"a": 5, "c": 5, "d": 3},
                 {"bcubed_precision": 0.75, "bcubed_recall": 0.75, "bcubed_f1": 0.75,
                  "pairwise_precision": 0.0, "pairwise_recall": 0.0}, id="one-missing-one-wrong"),
    # a and b both missing: each alone, not one story of the missing.
    pytest.param({"c": 1, "d": 2},
                 {"bcubed_precision": 1.0, "bcubed_recall": 0.75, "bcubed_f1": 1.5 / 1.75,
                  "pairwise_precision": 1.0, "pairwise_recall": 0.0}, id="two-missing"),
])
def test_score(predicted, expected):
    got = score(GOLD, predicted)
    assert (got["reports"], got["events"]) == (4, 3)
    assert {k: got[k] for k in expected} == pytest.approx(expected)


@pytest.mark.parametrize("line, says", [
    ("not json", ":1: not a JSON object"),
    (json.dumps({"id": "x", "event": "e", "outlet": "o", "date": "2024-01-01", "title": "t"}), "missing: text"),
    ("[1, 2]", "a report needs id, event"),
    (json.dumps({"id": "x", "event": "e", "outlet": "o", "date": "27 Jan 2021", "title": "t", "text": "x"}),
     "is not an ISO date"),
])
def test_load_names_the_bad_line(tmp_path, line, says):
    path = tmp_path / "set.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=says.replace("(", r"\(")):
        load(path, None)


def test_load_refuses_repeated_ids(tmp_path):
    row = {"id": 1, "event": "e", "outlet": "o", "date": "2024-01-01", "title": "t", "text": "x"}
    path = tmp_path / "set.jsonl"
    path.write_text(f"{json.dumps(row)}\n{json.dumps(row)}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="ids repeat"):
        load(path, None)


def test_through_run_maps_every_story_back_to_its_reports():
    # The Emotet and the Qakbot takedowns, two outlets each, and three later events with the same actors.
    ids = {"r002", "r003", "r004", "r005", "r007", "r008", "r009"}
    rows = [r for r in load(DATA, "dev") if r["id"] in ids]
    assert len(rows) == len(ids)
    predicted, missing, _ = through_run(rows)
    assert missing == 0
    assert set(predicted) == ids
    assert predicted["r002"] == predicted["r003"] != predicted["r004"] == predicted["r005"]
    assert len({predicted[i] for i in ("r002", "r004", "r007", "r008", "r009")}) == 5
    got = score({r["id"]: r["event"] for r in rows}, predicted)
    assert (got["bcubed_f1"], got["pairwise_precision"]) == (1.0, 1.0)
