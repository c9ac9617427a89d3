"""The shipped theme model, scored in pure Python: TF-IDF uni- and bigrams, linear weights.

`bench/train_themes.py` trains it offline (scikit-learn, logistic regression, with
hyper-parameters and thresholds chosen by cross-validation grouped by origin) and
writes ``briefings/data/themes.json``: plain JSON, no pickle. This module reads
that file once, when the first entry is classified, and scores an entry with sparse
dot products:

- a theme model: one weight vector per theme (multinomial logistic regression),
  whose softmax is the probability of each theme given that the entry is on topic;
- an on-topic model: one binary logistic regression (on topic vs off topic),
  calibrated on out-of-fold scores, with the threshold that gave the best
  off-topic F1;
- a secondary model: one binary logistic regression per theme (is the theme among
  the entry's themes?), with the probability a secondary theme needs, per theme,
  chosen for that theme's F1 while all secondary tags together were right at
  least 72% of the time (out of fold).

Weights too small to matter are left out of the file (the cut chosen on
cross-validation), and each feature keeps only its nonzero weights, so scoring
an entry touches a few weights per word.

``features`` is the one definition of the features, used by training and here alike.
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

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
    """What the model says about one entry, with the parts that explain it."""

    vector: dict[str, float]  # the entry's TF-IDF vector (model features only, L2-normalized)
    logits: dict[str, float]  # theme -> linear score of the theme model
    on_logit: float  # linear score of the on-topic model (before calibration)


class ThemeModel:
    """The exported model: vocabulary with idf, weights per theme, the on-topic model, thresholds."""

    def __init__(self, data: dict):
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
        self.idf: dict[str, float] = {}
        # feature -> its nonzero weights only, as (slot, weight): slot 0 the on-topic model, 1..n the theme
        # model's themes. The secondary model's apart (slot i: theme i), scored only for an on-topic entry.
        # The file holds only weights that matter.
        self.weights: dict[str, tuple[tuple[int, float], ...]] = {}
        self.secondary_weights: dict[str, tuple[tuple[int, float], ...]] = {}
        # slot -> feature -> weight, for the evidence (the features behind one decision).
        self.slot_weights: list[dict[str, float]] = [{} for _ in range(n + 1)]
        # first word -> second word -> the bigram feature: bigrams are looked up, never built as strings.
        self.bigrams: dict[str, dict[str, str]] = {}
        intern = sys.intern
        for feature, (idf, on_weight, theme_weights, secondary_weights) in data["features"].items():
            feature = intern(feature)
            self.idf[feature] = idf
            row = ([(0, on_weight)] if on_weight else []) + [(1 + i, w) for i, w in theme_weights if w]
            if row:
                self.weights[feature] = tuple(row)
                for slot, w in row:
                    self.slot_weights[slot][feature] = w
            # A theme whose threshold is 1 is never secondary: its weights are not scored.
            second = tuple((i, w) for i, w in secondary_weights if w and data["secondary_thresholds"][i] < 1.0)
            if second:
                self.secondary_weights[feature] = second
            first, _, rest = feature.partition(" ")
            if rest:
                self.bigrams.setdefault(intern(first), {})[intern(rest)] = feature
        self._start = [self.on_intercept] + [self.intercepts[t] for t in self.themes]
        self._secondary_start = [self.secondary_intercepts[t] for t in self.themes]
        self._secondary_bars = [self.secondary_thresholds[t] for t in self.themes]
        self.meta: dict = data.get("meta", {})

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> "ThemeModel":
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    def counts(self, title_words: list[str], text_words: list[str]) -> Counter:
        """``features_of`` restricted to the model's features (the only ones ``vector`` keeps), found without
        building a string per bigram: the same vector, a fraction of the work."""
        idf, bigrams = self.idf, self.bigrams
        found: list[str] = []
        for words, times in ((title_words, 2), (text_words, 1)):
            if not words:
                continue
            grams = [w for w in words if w in idf]
            for a, b in zip(words, words[1:]):
                seconds = bigrams.get(a)
                if seconds is not None:
                    feature = seconds.get(b)
                    if feature is not None:
                        grams.append(feature)
            found.extend(grams * times)
        return Counter(found)

    def vector(self, counts: Counter) -> dict[str, float]:
        """TF-IDF (1 + log tf) x idf over the model's features, divided by its L2 norm or the norm floor,
        whichever is larger: a text of one or two known words is not read as sure as a paragraph."""
        idf = self.idf
        vec = {f: (_SUBLINEAR[c] if c < _TABLE else 1.0 + math.log(c)) * idf[f] for f, c in counts.items() if f in idf}
        if not vec:
            return vec
        norm = max(math.hypot(*vec.values()), self.norm_floor) or 1.0
        return {f: w / norm for f, w in vec.items()}

    def score(self, counts: Counter) -> Scored:
        """The on-topic and theme models' scores, in one pass over the entry's nonzero weights (the
        secondary model's: ``secondary``, asked only for an entry found on topic)."""
        vec = self.vector(counts)
        total = _dot(self._start, self.weights, vec)
        return Scored(vec, dict(zip(self.themes, total[1:])), total[0])

    def secondary(self, vec: dict[str, float]) -> dict[str, float]:
        """theme -> linear score of the secondary model, for an entry's ``vector`` (a theme that is never
        secondary, threshold 1, is left out)."""
        total = _dot(self._secondary_start, self.secondary_weights, vec)
        return {t: z for t, z, bar in zip(self.themes, total, self._secondary_bars) if bar < 1.0}

    def on_probability(self, on_logit: float) -> float:
        a, b = self.calibration
        return sigmoid(a * on_logit + b)

    def contributions(self, vec: dict[str, float], theme: str | None) -> list[tuple[float, str]]:
        """(weight, feature) of every feature of the entry for a theme (None: the on-topic model)."""
        slot = self.slot_weights[0 if theme is None else 1 + self.themes.index(theme)]
        return [(x * w, f) for f, x in vec.items() if (w := slot.get(f)) is not None]


def _dot(start: list[float], weights: dict[str, tuple[tuple[int, float], ...]], vec: dict[str, float]) -> list[float]:
    """start plus the sparse product of an entry's vector with a weight table (feature -> (slot, weight)s)."""
    total = list(start)
    for feature, x in vec.items():
        row = weights.get(feature)
        if row is not None:
            for slot, w in row:
                total[slot] += x * w
    return total


_TABLE = 64
_SUBLINEAR = [0.0] + [1.0 + math.log(c) for c in range(1, _TABLE)]


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def softmax(logits: dict[str, float]) -> dict[str, float]:
    if not logits:
        return {}
    top = max(logits.values())
    exps = {t: math.exp(z - top) for t, z in logits.items()}
    total = sum(exps.values())
    return {t: e / total for t, e in exps.items()}


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
