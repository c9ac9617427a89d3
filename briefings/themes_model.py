"""The shipped theme model: TF-IDF uni- and bigrams, linear weights, scored with NumPy.

`bench/train_themes.py` trains it offline (scikit-learn, logistic regression, with
hyper-parameters and thresholds chosen by cross-validation grouped by origin) and
writes ``briefings/data/themes.json``: plain JSON, no pickle. This module reads
that file once, when the first entry is classified (NumPy is imported then too, so a
run with nothing to classify pays for neither), and scores a batch of entries at once:

- a theme model: one weight vector per theme (multinomial logistic regression),
  whose softmax is the probability of each theme given that the entry is on topic;
- an on-topic model: one binary logistic regression (on topic vs off topic),
  calibrated on out-of-fold scores, with the threshold that gave the best
  off-topic F1;
- a secondary model: one binary logistic regression per theme (is the theme among
  the entry's themes?), with the probability a secondary theme needs (the file
  gives one per theme; training sets them all to the one of best macro-F1 while
  all secondary tags together were right at least 72% of the time, out of fold).

Weights too small to matter are left out of the file (the cut chosen on
cross-validation). In memory the features are numbered, the weights are dense
tables (feature x model, well under a MB each), and a batch is its entries'
feature numbers and TF-IDF values end to end: scoring it is a few array operations
for the whole batch, whatever its size, rather than a few per entry.

``features`` is the one definition of the features, used by training (and by the
neighbours of ``classify``); ``ids`` finds the same features by number without
building a string per bigram.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

MODEL_PATH = Path(__file__).with_name("data") / "themes.json"
FORMAT = 2  # 2: a secondary threshold per theme


def features(title: str, text: str) -> Counter:
    """Counts of unigrams and bigrams of content words (folded, plurals reduced, stopwords out);
    the title counts twice."""
    from briefings.classify import content_tokens

    return features_of(content_tokens(title), content_tokens(text))


def features_of(title_words: list[str], text_words: list[str]) -> Counter:
    """``features`` of text already cut into content words."""
    counts: Counter = Counter()
    for words, times in ((title_words, 2), (text_words, 1)):
        if not words:
            continue
        grams = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
        for _ in range(times):
            counts.update(grams)
    return counts


@dataclass
class Scored:
    """What the model says about a batch of entries, with the parts that explain it. Row r's features are
    ``keys[starts[r]:starts[r + 1]]`` (model features only, each once, in feature order), their TF-IDF
    values (L2-normalized, with the norm floor) the same slice of ``values``."""

    keys: "np.ndarray"
    values: "np.ndarray"
    rows: "np.ndarray"  # the row of each feature
    starts: list[int]
    logits: list[list[float]]  # row -> the theme model's linear score of each theme (in ``themes`` order)
    on_logits: list[float]  # row -> the on-topic model's linear score (before calibration)
    secondary: list[list[float]]  # row -> the secondary model's linear score of each of ``secondary_themes``

    def vector(self, row: int) -> tuple["np.ndarray", "np.ndarray"]:
        start, end = self.starts[row], self.starts[row + 1]
        return self.keys[start:end], self.values[start:end]


class ThemeModel:
    """The exported model: vocabulary with idf, weights per theme, the on-topic model, thresholds."""

    def __init__(self, data: dict):
        import numpy

        self._np = np = numpy
        if data.get("format") != FORMAT:
            raise ValueError(f"model format {data.get('format')!r}, expected {FORMAT}")
        self.themes: list[str] = data["themes"]
        n = len(self.themes)
        self.intercepts: dict[str, float] = dict(zip(self.themes, data["intercepts"]))
        self.on_intercept: float = data["on_topic"]["intercept"]
        self.calibration: tuple[float, float] = tuple(data["on_topic"]["calibration"])
        self.on_threshold: float = data["on_topic"]["threshold"]
        self.secondary_intercepts: dict[str, float] = dict(zip(self.themes, data["secondary_intercepts"]))
        # The probability a secondary theme needs, per theme (chosen on cross-validation for precision).
        self.secondary_thresholds: dict[str, float] = dict(zip(self.themes, data["secondary_thresholds"]))
        self.norm_floor: float = data.get("norm_floor", 0.0)
        self.term_weight: float = data["term_weight"]
        self.on_term_weight: float = data["on_term_weight"]
        self.trained_examples: frozenset[str] = frozenset(data.get("trained_examples", ()))
        # A theme whose threshold is 1 is never secondary: its column is left out of the secondary table.
        self.secondary_themes: list[str] = [t for t in self.themes if self.secondary_thresholds[t] < 1.0]
        secondary_column = {self.themes.index(t): k for k, t in enumerate(self.secondary_themes)}
        table: dict[str, Any] = data["features"]
        self.names: list[str] = sorted(table)  # feature number -> the feature, numbered in sorted order
        self.unigrams: dict[str, int] = {}
        # (first word, second word) -> the bigram's number: bigrams are looked up as the word pairs an
        # entry's words make, never built as strings.
        self._pairs: dict[tuple[str, str], int] = {}
        idf = np.zeros(len(table))
        # Columns: 0 the on-topic model, 1..n the theme model's themes.
        weights = np.zeros((len(table), 1 + n))
        secondary = np.zeros((len(table), len(self.secondary_themes)))
        for number, feature in enumerate(self.names):
            feature_idf, on_weight, theme_weights, secondary_weights = table[feature]
            idf[number] = feature_idf
            weights[number, 0] = on_weight
            for i, w in theme_weights:
                weights[number, 1 + i] = w
            for i, w in secondary_weights:
                if i in secondary_column:
                    secondary[number, secondary_column[i]] = w
            first, _, rest = feature.partition(" ")
            if rest:
                self._pairs[first, rest] = number
            else:
                self.unigrams[feature] = number
        self.idf, self.weights, self.secondary_weights = idf, weights, secondary
        self._start = np.array([self.on_intercept] + [self.intercepts[t] for t in self.themes])
        self._secondary_start = np.array([self.secondary_intercepts[t] for t in self.secondary_themes])
        self.meta: dict = data.get("meta", {})

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> "ThemeModel":
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    def ids(self, title_words: list[str], text_words: list[str]) -> list[int]:
        """The numbers of ``features_of``'s model features, once per occurrence (the title's twice)."""
        unigram, bigram = self.unigrams.get, self._pairs.get
        found: list[int] = []
        for words, times in ((title_words, 2), (text_words, 1)):
            if not words:
                continue
            grams = [u for w in words if (u := unigram(w)) is not None]
            grams += [b for pair in zip(words, words[1:]) if (b := bigram(pair)) is not None]
            found.extend(grams * times)
        return found

    def ids_of(self, counts: Counter) -> list[int]:
        """The numbers of the model features among counts of features (``features``), once per occurrence."""
        found: list[int] = []
        for feature, count in counts.items():
            first, _, rest = feature.partition(" ")
            number = self._pairs.get((first, rest)) if rest else self.unigrams.get(feature)
            if number is not None:
                found.extend([number] * count)
        return found

    def vector(self, ids: list[int]) -> tuple["np.ndarray", "np.ndarray"]:
        """(feature numbers, values) of one text: TF-IDF (1 + log tf) x idf, divided by its L2 norm or the
        norm floor, whichever is larger: a text of one or two known words is not read as sure as a paragraph."""
        scored = self.score([ids])
        return scored.vector(0)

    def as_dict(self, keys: "np.ndarray", values: "np.ndarray") -> dict[str, float]:
        """A vector as feature -> value."""
        names = self.names
        return {names[k]: v for k, v in zip(keys.tolist(), values.tolist())}

    def score(self, batch: list[list[int]]) -> Scored:
        """The three models' scores of a batch of entries, each given by ``ids``."""
        np = self._np
        n, width = len(batch), len(self.names)
        lengths = [len(ids) for ids in batch]
        flat = np.fromiter(itertools.chain.from_iterable(batch), np.int64, sum(lengths))
        # Each (row, feature) once, with its count: unique over row x width + feature, sorted by row, then feature.
        codes, counts = np.unique(np.repeat(np.arange(n, dtype=np.int64), lengths) * width + flat, return_counts=True)
        rows, keys = np.divmod(codes, width)
        values = (np.log(counts) + 1.0) * self.idf[keys]
        norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=n))
        values /= np.maximum(norms, self.norm_floor)[rows] if self.norm_floor > 0 else np.where(norms > 0, norms, 1.0)[rows]
        starts = np.searchsorted(rows, np.arange(n + 1))
        totals = np.tile(self._start, (n, 1))
        secondary = np.tile(self._secondary_start, (n, 1))
        filled = starts[:-1] < starts[1:]
        if filled.any():
            # Rows are contiguous, so summing from each non-empty row's start to the next sums that row.
            at = starts[:-1][filled]
            for table, into in ((self.weights, totals), (self.secondary_weights, secondary)):
                if table.shape[1]:
                    rows_of = np.take(table, keys, axis=0)  # a copy: each feature's weights, scaled in place
                    rows_of *= values[:, None]
                    into[filled] += np.add.reduceat(rows_of, at)
        themes = totals[:, 1:].tolist()
        return Scored(keys, values, rows, starts.tolist(), themes, totals[:, 0].tolist(), secondary.tolist())

    def on_probability(self, on_logits: "np.ndarray") -> "np.ndarray":
        """The calibrated probability of being on topic, for on-topic scores (the model's, plus what the terms
        and the neighbours add)."""
        a, b = self.calibration
        return logistic(a * on_logits + b)

    def column(self, theme: str | None) -> int:
        """A model's column in the weight table: 0 the on-topic model (theme None), then the themes'."""
        return 0 if theme is None else 1 + self.themes.index(theme)

    def contributions(self, scored: Scored, row: int, theme: str | None) -> list[tuple[float, str]]:
        """(weight, feature) of every feature of a row with a weight for a theme (None: the on-topic model)."""
        keys, values = scored.vector(row)
        weights = self.weights[keys, self.column(theme)]
        names = self.names
        return [(x * w, names[k]) for x, k, w in zip(values.tolist(), keys.tolist(), weights.tolist()) if w]

    def strongest(self, scored: Scored, columns: list[int | None], count: int, *,
                  towards: int = 1) -> list[list[tuple[float, str]]]:
        """Per row, the count features that pushed hardest up the row's column of the weight table (``column``;
        towards=-1: down it), strongest first, as (weight, feature); a row whose column is None gets none.
        Ties go as (weight, feature) tuples sort."""
        np = self._np
        n = len(columns)
        by_row = np.array([-1 if c is None else c for c in columns] or [0])[scored.rows]  # -1: none wanted
        wanted = by_row >= 0
        parts = np.zeros(len(scored.keys))
        parts[wanted] = scored.values[wanted] * self.weights[scored.keys[wanted], by_row[wanted]] * towards
        # Strongest first within each row: one stable sort by row, then weight (row x span - weight, where
        # span exceeds every weight). Among equal weights the feature that sorts last comes first (off
        # topic: first), as (weight, feature) tuples sort: features are numbered in sorted order, and
        # the entries' features ascend within a row.
        order = (parts > 0).nonzero()[0]
        if towards > 0:
            order = order[::-1]
        if len(order):
            span = 2.0 * float(parts[order].max()) + 1.0
            order = order[np.argsort(scored.rows[order] * span - parts[order], kind="stable")]
        rows = scored.rows[order]
        # The first count of each row: a feature's place in its row is its place minus where the row starts.
        order = order[np.arange(len(order)) - np.searchsorted(rows, rows) < count]
        found: list[list[tuple[float, str]]] = [[] for _ in range(n)]
        names = self.names
        for row, key, part in zip(scored.rows[order].tolist(), scored.keys[order].tolist(), parts[order].tolist()):
            found[row].append((part * towards, names[key]))
        return found


def logistic(z: "np.ndarray") -> "np.ndarray":
    """1 / (1 + e^-z), element by element, without overflow however large z is (many neighbours' pushes add up)."""
    import numpy as np

    return np.exp(-np.logaddexp(0.0, -z))


_LOADED: dict[Path, ThemeModel] = {}


def shipped_model(path: Path = MODEL_PATH) -> ThemeModel:
    """The model file, read once per process (on the first entry classified)."""
    if path not in _LOADED:
        try:
            _LOADED[path] = ThemeModel.load(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            from briefings.errors import ConfigError

            raise ConfigError(f"{path}: cannot read the theme model: {exc}",
                              'reinstall briefings, or set [classify] method = "terms" to classify without it') from exc
    return _LOADED[path]
