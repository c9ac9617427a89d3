"""Entries -> norms themes, with the evidence for each decision.

``[classify] method = "model"`` (the default): the shipped model
(``briefings/themes_model.py``: TF-IDF uni- and bigrams, a theme model and a
separate on-topic model, trained offline on real texts) combined with the terms
below, and with the desk's corrections (``briefings themes teach``): a corrected
entry keeps its correction, and entries like it lean to its label. Themes the
model has not learned (added by the user) are decided by their terms, as before.

``method = "terms"``, the previous classifier, has two signals, both explainable:

1. **Terms.** Every theme's terms are matched as whole token sequences in text
   prepared once per entry (HTML stripped, case and diacritics folded, hyphens
   split, plurals reduced), so "confidence-building measure" also matches
   "Confidence Building Measures". Fields are weighted (title 3, summary 2,
   body 1) and long fields damped, so a long document does not win every theme.
2. **Likeness to labeled examples.** Each theme has a TF-IDF centroid built from
   its description and terms, the reading-list documents labeled with it
   (front matter ``themes: [...]``) and the examples file (``[classify]
   examples``). An entry's cosine similarity to each centroid, times
   ``[classify] similarity_weight``, is added to the term score; the evidence
   names the words that contributed most.

Each field is read up to its first READ_TEXT characters (the opening is where the
signal is), so an entry's length costs nothing past that.

With ``terms``, the primary theme is the best score at or above ``threshold``;
secondary themes reach ``secondary_share`` of it; below the threshold everywhere:
off-topic.
"""

from __future__ import annotations

import heapq
import json
import math
import re
import unicodedata
from itertools import compress
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence


from briefings.config import ClassifySettings, Theme
from briefings.models import Classification, Entry, Match, stored_id
from briefings.text import cut_html, html_to_text

if TYPE_CHECKING:
    from briefings.themes_model import ThemeModel

FIELD_WEIGHTS = {"title": 3.0, "summary": 2.0, "body": 1.0}
# Classification reads the opening of each field, where the signal is: at most this much
# text, from at most READ_HTML characters of its markup. An entry's length costs nothing past it.
READ_TEXT = 50_000
READ_HTML = 200_000
MODEL_FIELD = "model"  # evidence: a feature of the theme model
ON_TOPIC_FIELD = "on-topic"  # evidence: a feature of the on-topic model
CORRECTION_FIELD = "correction"  # evidence: the desk's correction, or likeness to a corrected entry
OFF_TOPIC = "off-topic"  # the evidence key of an off-topic call
# A corrected entry (or a labeled example the model was not trained on) at least this
# similar (cosine of TF-IDF vectors) moves an entry towards its label, by NEIGHBOUR_WEIGHT x similarity.
NEIGHBOUR_MIN = 0.2
NEIGHBOUR_WEIGHT = 10.0
NEIGHBOUR_FEATURES = 60
MAX_SECONDARY = 3
_FOLD_BLOCK = 1 << 16
_TOKEN = re.compile(r"[a-z0-9]+")
SIMILARITY_FIELD = "similarity"
# Words too common to say anything about a theme.
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having he
    her here hers him his how i if in into is it its itself just me more most my no nor not now of off on once only
    or other our ours out over own same she should so some such than that the their theirs them then there these
    they this those through to too under until up very was we were what when where which while who whom why will
    with would you your yours said says say new one two three year week day time also may might must shall us its
    per via within without among across upon like well many much make made use used using first last next""".split()
)


def fold(text: str) -> str:
    """Lowercase without diacritics ("Cooperación" -> "cooperacion").

    Linear, and small in memory: ASCII (most text) is only lowercased; other text is
    lowercased, decomposed and stripped of its combining marks a block at a time (split
    on a space, where lowercasing has no context to lose), so no step holds more than
    a block's worth of intermediate strings, nor one object per character of the whole.
    Decomposition works character by character and every combining mark is dropped,
    so the blocks give the whole's result.
    """
    if text.isascii():
        return text.lower()
    return "".join(_fold_block(block) for block in _blocks(text, _FOLD_BLOCK))


def _fold_block(text: str) -> str:
    combining = unicodedata.combining
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not combining(c))


def _blocks(text: str, size: int):
    start, end_of_text = 0, len(text)
    while start < end_of_text:
        end = start + size
        if end < end_of_text:
            space = text.rfind(" ", start + 1, end)
            end = space if space > start else end
        yield text[start:end]
        start = end


def opening_text(markup: str) -> str:
    """The text of a field's opening: at most READ_TEXT characters, from at most READ_HTML of markup."""
    return html_to_text(cut_html(markup, READ_HTML))[:READ_TEXT]


def stem(token: str) -> str:
    """A light plural reducer: enough to match singular and plural forms of a term."""
    if len(token) <= 3 or token.endswith(("ss", "us", "is")):
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith(("ches", "shes", "sses", "xes")):
        return token[:-2]
    if token.endswith("s"):
        return token[:-1]
    return token


_STEMS: dict[str, str] = {}
_CONTENT: dict[str, bool] = {}  # token -> is it a content word (see content_tokens)


def tokens(text: str) -> list[str]:
    stems = _STEMS
    if len(stems) > 200_000:
        stems.clear()  # bounded: a cache of the words seen most
    if not text:
        return []
    words = _TOKEN.findall(fold(text))
    try:
        return list(map(stems.__getitem__, words))
    except KeyError:  # words not seen before: stem them once
        for word in words:
            if word not in stems:
                stems[word] = stem(word)
        return list(map(stems.__getitem__, words))


def content_words(words: list[str]) -> list[str]:
    """The content words of tokens: stopwords, words of one or two letters and numbers left out."""
    known = _CONTENT
    if len(known) > 200_000:
        known.clear()
    try:
        return list(compress(words, map(known.__getitem__, words)))
    except KeyError:
        for w in words:
            if w not in known:
                known[w] = w not in STOPWORDS and len(w) > 2 and not w.isdigit()
        return list(compress(words, map(known.__getitem__, words)))


@dataclass(frozen=True)
class _Term:
    """One term as the config gives it, and every theme it counts for (an off-topic term counts
    against all of them): found once, it is weighed once and makes one piece of evidence."""

    themes: tuple[str, ...]
    term: str
    weight: float
    negative: bool


@dataclass(frozen=True)
class Example:
    """A labeled text: the theme it is about (None: off-topic, which teaches nothing), its title and text."""

    theme: str | None
    title: str
    text: str


@dataclass(frozen=True)
class Correction:
    """The desk's label for one stored entry (``briefings themes teach``): theme None is off-topic."""

    entry_id: int
    key: str
    theme: str | None
    also: tuple[str, ...]
    title: str
    text: str

    @property
    def themes(self) -> tuple[str, ...]:
        return (self.theme, *self.also) if self.theme else ()


def correction_of(entry: Entry, theme: str | None, also: tuple[str, ...] = ()) -> Correction:
    """A correction of a stored entry, with the text the classifier reads of it."""
    text = opening_text(entry.summary_html) + "\n" + opening_text(entry.content_html)
    return Correction(stored_id(entry.id), entry.key, theme, tuple(also), entry.title, text)


def load_examples(path: Path | None) -> list[Example]:
    """Labeled examples from a JSON-lines file: {"theme": id, "title": ..., "text": ...} per line."""
    if not path:
        return []
    from briefings.errors import ConfigError

    examples = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the examples file: {exc.strerror or exc}", "check [classify] examples") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            examples.append(Example(item.get("theme"), str(item.get("title") or ""), str(item.get("text") or "")))
        except (ValueError, AttributeError) as exc:
            raise ConfigError(f"{path}:{number}: not a JSON object with theme, title and text: {exc}") from exc
    return examples


def build_classifier(config, corrections: Iterable[Correction] = ()) -> "Classifier":
    """The classifier for a config: its themes and settings, taught by the examples file, the
    reading-list documents labeled with themes and the desk's corrections. Examples and the
    model are read when the first entry is classified, so a run with nothing pending pays for neither."""

    def examples() -> list[Example]:
        from briefings.collect.corpus import load_corpus

        found = load_examples(config.classify.examples)
        if config.corpus.path:
            for entry in load_corpus(config.corpus.path).entries:
                text = html_to_text(entry.summary_html) + " " + html_to_text(entry.content_html)
                found.extend(Example(label, entry.title, text) for label in entry.labels)
        return found

    return Classifier(config.themes, config.classify, examples, corrections=corrections)


def content_tokens(text: str) -> list[str]:
    return content_words(tokens(text))


class _Centroids:
    """One TF-IDF centroid per theme, kept as an inverted index: token -> [(theme, weight)]."""

    def __init__(self, docs: dict[str, list[Counter]]):
        n_docs = sum(len(d) for d in docs.values()) or 1
        df: Counter = Counter()
        for theme_docs in docs.values():
            for counts in theme_docs:
                df.update(counts.keys())
        self.idf = {t: math.log((1 + n_docs) / (1 + f)) + 1.0 for t, f in df.items()}
        self.index: dict[str, list[tuple[str, float]]] = {}
        for theme, theme_docs in docs.items():
            centroid: Counter = Counter()
            for counts in theme_docs:
                for token, weight in self._vector(counts).items():
                    centroid[token] += weight
            norm = math.sqrt(sum(w * w for w in centroid.values())) or 1.0
            for token, weight in centroid.items():
                self.index.setdefault(token, []).append((theme, weight / norm))

    def _vector(self, counts: Counter) -> dict[str, float]:
        idf = self.idf
        vector = {t: (1.0 + math.log(c)) * idf[t] for t, c in counts.items() if t in idf}
        norm = math.sqrt(sum(w * w for w in vector.values())) or 1.0
        return {t: w / norm for t, w in vector.items()}

    def similarities(self, counts: Counter) -> tuple[dict[str, float], dict[str, list[tuple[float, str]]]]:
        """Cosine similarity to each theme, and the tokens that gave the most of it."""
        scores: dict[str, float] = {}
        parts: dict[str, list[tuple[float, str]]] = {}
        index = self.index
        for token, weight in self._vector(counts).items():
            for theme, centroid_weight in index.get(token, ()):
                share = weight * centroid_weight
                scores[theme] = scores.get(theme, 0.0) + share
                parts.setdefault(theme, []).append((share, token))
        return scores, parts


class Classifier:
    """Built once per taxonomy (and examples); ``classify`` is then a pure function of the text.

    examples: labeled examples, or a function that returns them (called on the first entry).
    corrections: the desk's corrections; a corrected entry keeps its label.
    """

    def __init__(
        self,
        themes: tuple[Theme, ...],
        settings: ClassifySettings | None = None,
        examples: Iterable[Example] | Callable[[], Iterable[Example]] = (),
        corrections: Iterable[Correction] = (),
        model_path: Path | None = None,
    ):
        self.themes = themes
        self.settings = settings or ClassifySettings()
        self._index: dict[tuple[str, ...], list[_Term]] = {}
        self._singles: dict[str, tuple[str]] = {}  # the word of a one-word term -> its key
        self._pairs: dict[tuple[str, ...], tuple[str, ...]] = {}  # the words of a two-word term -> its key
        self._starts: dict[str, tuple[int, ...]] = {}  # first word of a longer term -> the lengths of those it starts
        for theme in themes:
            for term in theme.terms:
                self._add(theme.id, term, theme.weights.get(term.lower(), 1.0), False)
            for term in (*theme.negative, *self.settings.off_topic_terms):
                self._add(theme.id, term, 1.0, True)
        self._order = {t.id: i for i, t in enumerate(themes)}
        self._examples = examples
        self._corrections = {c.key: c for c in corrections}
        self._model_path = model_path
        self._ready = False
        self._centroids = None
        self._model: ThemeModel | None = None
        self._neighbours: list[tuple[str | None, str]] = []  # (label, how the evidence names it)
        self._neighbour_index: dict[int, list[tuple[int, float]]] = {}  # feature number -> [(neighbour, weight)]
        self._postings: Any = None  # the neighbour index as NumPy arrays (starts, numbers, weights), once prepared

    def _prepare(self) -> None:
        """What classifying needs beyond the terms, built on the first entry."""
        self._ready = True
        examples = self._examples() if callable(self._examples) else self._examples
        known = {t.id for t in self.themes}
        if self.settings.method == "terms":
            if self.settings.similarity_weight > 0:
                docs: dict[str, list[Counter]] = {
                    t.id: [Counter(content_tokens(" ".join([t.name, t.description, *t.terms])))] for t in self.themes
                }
                for example in examples:
                    if example.theme in known:
                        docs[example.theme].append(Counter(content_tokens(f"{example.title} {example.title} {example.text}")))
                self._centroids = _Centroids(docs)
            return
        from briefings.themes_model import MODEL_PATH, features, shipped_model

        self._model = model = shipped_model(self._model_path or MODEL_PATH)
        # Labeled texts the model was not trained on teach as neighbours; so do corrections.
        for example in examples:
            if (example.theme in known or example.theme is None) and example_key(example.title, example.text) not in model.trained_examples:
                self._add_neighbour(features(example.title[:READ_TEXT], example.text[:READ_TEXT]), example.theme,
                                    f"like the example \"{example.title[:60]}\"")
        for c in self._corrections.values():
            if c.theme is None or c.theme in known:
                self._add_neighbour(features(c.title[:READ_TEXT], c.text[:READ_TEXT]), c.theme, f"like corrected entry #{c.entry_id}")
        import numpy

        # The index as arrays: feature f's postings are numbers[starts[f]:starts[f + 1]] (and their weights).
        starts = numpy.zeros(len(model.names) + 1, dtype=numpy.int64)
        for feature, postings in self._neighbour_index.items():
            starts[feature + 1] = len(postings)
        starts = numpy.cumsum(starts)
        ordered = [self._neighbour_index.get(f, ()) for f in range(len(model.names))]
        numbers = numpy.array([n for postings in ordered for n, _ in postings], dtype=numpy.int64)
        weights = numpy.array([w for postings in ordered for _, w in postings], dtype=numpy.float64)
        self._postings = (starts, numbers, weights)

    def _add_neighbour(self, counts: Counter, label: str | None, name: str) -> None:
        if self._model is None:
            return  # neighbours live in the model's feature space; the terms classifier has none
        keys, values = self._model.vector(self._model.ids_of(counts))
        if not len(keys):
            return
        number = len(self._neighbours)
        self._neighbours.append((label, name))
        # Its strongest features only: a long document's hundreds of others add little but time.
        for weight, feature in heapq.nlargest(NEIGHBOUR_FEATURES, zip(values.tolist(), keys.tolist())):
            self._neighbour_index.setdefault(feature, []).append((number, weight))

    def _add(self, theme_id: str, term: str, weight: float, negative: bool) -> None:
        key = tuple(tokens(term))
        if not key:
            return
        terms = self._index.setdefault(key, [])
        for i, known in enumerate(terms):
            if (known.term, known.weight, known.negative) == (term, weight, negative):
                terms[i] = _Term((*known.themes, theme_id), term, weight, negative)
                break
        else:
            terms.append(_Term((theme_id,), term, weight, negative))
        if len(key) == 1:
            self._singles[key[0]] = key
        elif len(key) == 2:
            self._pairs[key] = key
        else:
            self._starts[key[0]] = tuple(sorted({*self._starts.get(key[0], ()), len(key)}))

    def _matches(self, words: list[str]) -> dict[tuple[str, ...], int]:
        """Every term found in the words (as its key), with how often. Terms of one and two words, most of them,
        are looked up word by word and pair by pair; longer ones only where a word starts one."""
        singles, pairs, starts, index = self._singles, self._pairs, self._starts, self._index
        found: dict[tuple[str, ...], int] = {}
        for key in [singles[w] for w in words if w in singles] + [p for p in zip(words, words[1:]) if p in pairs]:
            found[key] = found.get(key, 0) + 1
        if starts:
            n = len(words)
            for i in [i for i, word in enumerate(words) if word in starts]:
                for size in starts[words[i]]:
                    if i + size > n:
                        break
                    key = tuple(words[i : i + size])
                    if key in index:
                        found[key] = found.get(key, 0) + 1
        return found

    def term_scores(self, title: str, summary: str = "", body: str = "") -> dict[str, float]:
        """The term score of each theme (the user's lever), for plain text by field."""
        fields = {"title": tokens(title), "summary": tokens(summary), "body": tokens(body)}
        return self._term_part(fields)[0]

    def _term_part(self, fields: dict[str, list[str]]):
        scores: dict[str, float] = {t.id: 0.0 for t in self.themes}
        evidence: dict[str, list[Match]] = {t.id: [] for t in self.themes}
        for field_name, words in fields.items():
            if not words:
                continue
            # Long texts repeat terms; dampen so a long document does not win every theme.
            norm = max(1.0, math.sqrt(len(words) / 150.0)) if field_name != "title" else 1.0
            field_weight = FIELD_WEIGHTS[field_name]
            for key, count in self._matches(words).items():
                for term in self._index[key]:
                    contribution = field_weight * term.weight * (1.0 + math.log(count)) / norm
                    if term.negative:
                        contribution = -contribution
                        match = Match(f"-{term.term}", field_name, count, -term.weight)
                    else:
                        match = Match(term.term, field_name, count, term.weight)
                    for theme in term.themes:
                        scores[theme] += contribution
                        evidence[theme].append(match)
        return scores, evidence

    def classify_text(self, title: str, summary: str = "", body: str = "") -> Classification:
        """Classify plain or HTML text given by field (the opening of each field is read)."""
        return self.classify_texts([(title, summary, body)])[0]

    def classify_texts(self, texts: Sequence[tuple[str, str, str]]) -> list[Classification]:
        """``classify_text`` of many texts, (title, summary, body) each: the model scores them together,
        which is much quicker per text than one at a time."""
        if not self._ready:
            self._prepare()
        read = []
        for title, summary, body in texts:
            title, summary, body = title[:READ_TEXT], opening_text(summary), opening_text(body)
            fields = {"title": tokens(title), "summary": tokens(summary), "body": tokens(body)}
            read.append((fields, *self._term_part(fields)))
        if self._model is not None:
            return self._model_decisions(read)
        return [self._terms_decision(*one) for one in read]

    def _terms_decision(self, fields, scores, evidence) -> Classification:
        if self._centroids is not None:
            bag: Counter = Counter()
            for field_name, words in fields.items():
                repeat = 2 if field_name == "title" else 1
                for word in words:
                    if word not in STOPWORDS and len(word) > 2 and not word.isdigit():
                        bag[word] += repeat
            if bag:
                weight = self.settings.similarity_weight
                similarities, parts = self._centroids.similarities(bag)
                for theme_id, similarity in similarities.items():
                    contribution = weight * similarity
                    scores[theme_id] += contribution
                    top = ", ".join(token for _, token in sorted(parts[theme_id], reverse=True)[:5])
                    evidence[theme_id].append(Match(f"like the theme's examples ({top})", SIMILARITY_FIELD, 1, round(contribution, 4)))
        return self._decide(scores, evidence)

    def _neighbour_pulls(self, scored) -> list[dict[int, float]]:
        """Per row, its similarity to each corrected entry or untrained example at least NEIGHBOUR_MIN alike
        (the cosine of their vectors, summed over the features they share), for all rows at once."""
        import numpy as np

        found: list[dict[int, float]] = [{} for _ in scored.on_logits]
        if not self._neighbours or not len(scored.keys):
            return found
        starts, numbers, weights = self._postings
        first, count = starts[scored.keys], starts[scored.keys + 1] - starts[scored.keys]
        hit = count.nonzero()[0]
        if not len(hit):
            return found
        count = count[hit]
        # Every posting of every feature hit: its place in the posting arrays.
        at = np.repeat(first[hit] - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
        pairs = np.repeat(scored.rows[hit], count) * len(self._neighbours) + numbers[at]
        pairs, which = np.unique(pairs, return_inverse=True)
        alike = np.bincount(which, weights=np.repeat(scored.values[hit], count) * weights[at])
        close = (alike >= NEIGHBOUR_MIN).nonzero()[0]
        for pair, similarity in zip(pairs[close].tolist(), alike[close].tolist()):
            row, number = divmod(pair, len(self._neighbours))
            found[row][number] = similarity
        return found

    def _model_decisions(self, read) -> list[Classification]:
        """The model's decisions for a batch, made for all rows at once: one column per theme of the config
        (a theme the model has not learned competes by its terms: at the threshold it ties the best)."""
        import numpy as np

        from briefings.themes_model import logistic

        model = self._model
        if model is None:
            raise RuntimeError("the model decision needs the model loaded")
        scored = model.score([model.ids(content_words(fields["title"]), content_words(fields["summary"]) + content_words(fields["body"]))
                              for fields, _, _ in read])
        alpha, beta = model.term_weight, model.on_term_weight
        ids = [t.id for t in self.themes]
        column = {t: j for j, t in enumerate(ids)}
        learned = [j for j, t in enumerate(ids) if t in model.intercepts]
        terms = np.array([[term_scores[t] for t in ids] for _, term_scores, _ in read]).reshape(len(read), len(ids))
        logits = np.full(terms.shape, -np.inf)
        logits[:, learned] = np.array(scored.logits)[:, [model.themes.index(ids[j]) for j in learned]] + alpha * terms[:, learned]
        on_z = np.array(scored.on_logits) + beta * (terms.max(axis=1) if ids else 0.0)
        # Likeness to corrected entries (and untrained examples) pushes towards their labels.
        pulls: list[dict[str | None, list[Match]]] = [{} for _ in read]
        for row, similarities in enumerate(self._neighbour_pulls(scored)):
            for number, similarity in similarities.items():
                label, name = self._neighbours[number]
                push = NEIGHBOUR_WEIGHT * similarity
                if label is None:
                    on_z[row] -= push
                else:
                    on_z[row] += push
                    if label in model.intercepts:
                        logits[row, column[label]] += push
                    else:  # a theme the model has not learned: its terms and its neighbours decide
                        terms[row, column[label]] += push
                pulls[row].setdefault(label, []).append(Match(f"{name} ({similarity:.2f})", CORRECTION_FIELD, 1, round(push, 3)))
        p_on = model.on_probability(on_z)
        forced = np.zeros(len(read), dtype=bool)
        if len(learned) < len(ids):
            best = logits[:, learned].max(axis=1) if learned else np.zeros(len(read))
            for j in set(range(len(ids))) - set(learned):
                hit = terms[:, j] >= self.settings.threshold
                logits[hit, j] = best[hit] + alpha * (terms[hit, j] - self.settings.threshold) + 1.0
                forced |= hit
        competing = np.isfinite(logits)
        some = competing.any(axis=1)
        top = np.where(some, logits.max(axis=1, initial=-np.inf, where=competing), 0.0)
        probabilities = np.exp(logits - top[:, None])
        probabilities /= np.where(some, probabilities.sum(axis=1), 1.0)[:, None]
        on_topic = (forced | (p_on >= model.on_threshold)) & some
        primary = probabilities.argmax(axis=1)  # ties: the theme listed first
        # Secondary themes: the secondary model's probability at or over the theme's bar, at most MAX_SECONDARY.
        second = np.full(terms.shape, -1.0)
        bars = np.full(len(ids), 2.0)
        cols = [column[t] for t in model.secondary_themes if t in column]
        if cols:
            taken = [k for k, t in enumerate(model.secondary_themes) if t in column]
            z = np.array(scored.secondary).reshape(len(read), -1)[:, taken] + alpha * terms[:, cols]
            second[:, cols] = logistic(z)
            bars[cols] = [model.secondary_thresholds[ids[j]] for j in cols]
        second[np.arange(len(read)), primary] = -1.0
        tagged = (second >= bars) & on_topic[:, None]
        shown = np.where(forced, np.maximum(p_on, model.on_threshold), p_on)
        scores = np.round(shown[:, None] * probabilities, 4).tolist()
        # How sure: the gap between the two likeliest themes (1 where fewer than two compete).
        ranked = -np.sort(-probabilities, axis=1)
        gap = ranked[:, 0] - ranked[:, 1] if len(ids) > 1 else np.ones(len(read))
        gap = np.where(competing.sum(axis=1) > 1, gap, 1.0)
        distance = np.abs(p_on - model.on_threshold)
        margins = np.round(np.minimum(distance, np.where(p_on >= model.on_threshold, gap, 1.0)), 4).tolist()
        decided: list[tuple[str, ...]] = []
        for row in range(len(read)):
            if not on_topic[row]:
                decided.append(())
                continue
            others = tagged[row].nonzero()[0].tolist()
            if len(others) > 1:
                others.sort(key=lambda j: -second[row, j])  # stable: ties keep the themes' order
            decided.append((ids[primary[row]], *(ids[j] for j in others[:MAX_SECONDARY])))
        # The words and phrases that decided the primary theme and the on-topic call, for every row at once.
        on_column = model.column(None)
        for_theme = model.strongest(scored, [model.column(d[0]) if d and d[0] in model.intercepts else None for d in decided], 6)
        on_side = model.strongest(scored, [on_column if d else None for d in decided], 5)
        off_side = model.strongest(scored, [None if d else on_column for d in decided], 6, towards=-1)
        results = []
        on_rounded = np.round(p_on, 4).tolist()
        for row, ((_, _, evidence), themes) in enumerate(zip(read, decided)):
            for label, matches in pulls[row].items():
                evidence.setdefault(label or OFF_TOPIC, []).extend(matches)
            if themes:
                evidence[themes[0]].extend([Match(f, MODEL_FIELD, 1, round(w, 3)) for w, f in for_theme[row]])
                evidence[themes[0]].extend([Match(f, ON_TOPIC_FIELD, 1, round(w, 3)) for w, f in on_side[row]])
            else:
                evidence.setdefault(OFF_TOPIC, []).extend([Match(f, ON_TOPIC_FIELD, 1, round(w, 3)) for w, f in off_side[row]])
            results.append(Classification(
                theme=themes[0] if themes else None,
                themes=themes,
                scores={t: v for t, v in zip(ids, scores[row]) if v},
                evidence={t: tuple(m) for t, m in evidence.items() if m},
                on_topic=on_rounded[row],
                margin=margins[row],
            ))
        return results

    def _decide(self, scores: dict[str, float], evidence: dict[str, list[Match]]) -> Classification:
        order = self._order
        ranked = sorted((s, -order[t], t) for t, s in scores.items() if s > 0)
        ranked.reverse()
        themes: tuple[str, ...] = ()
        primary = None
        if ranked and ranked[0][0] >= self.settings.threshold:
            primary = ranked[0][2]
            top = ranked[0][0]
            themes = (primary,) + tuple(
                t for s, _, t in ranked[1:] if s >= top * self.settings.secondary_share and s >= self.settings.threshold / 2
            )
        return Classification(
            theme=primary,
            themes=themes,
            scores={t: round(s, 4) for t, s in scores.items() if round(s, 4) != 0},
            evidence={t: tuple(m) for t, m in evidence.items() if m},
        )

    def classify(self, entry: Entry) -> Classification:
        return self.classify_many([entry])[0]

    def classify_many(self, entries: Sequence[Entry]) -> list[Classification]:
        """Classify stored or collected entries together (a corrected entry keeps the desk's label)."""
        results: list[Classification | None] = [None] * len(entries)
        texts, rows = [], []
        for row, entry in enumerate(entries):
            correction = self._corrections.get(entry.key)
            if correction is not None:
                results[row] = corrected(correction)
            else:
                texts.append((entry.title, entry.summary_html, entry.content_html))
                rows.append(row)
        for row, result in zip(rows, self.classify_texts(texts) if texts else ()):
            results[row] = result
        return [r for r in results if r is not None]


def corrected(correction: Correction) -> Classification:
    """The classification the desk gave an entry."""
    label = correction.theme or OFF_TOPIC
    match = Match(f"corrected by the desk: {label}", CORRECTION_FIELD, 1, 1.0)
    return Classification(
        theme=correction.theme,
        themes=correction.themes,
        scores={t: 1.0 for t in correction.themes},
        evidence={label: (match,)},
        source="correction",
    )


def example_key(title: str, text: str) -> str:
    """A short digest of a teaching text: the model lists those it was trained on."""
    import hashlib

    return hashlib.sha1(f"{title}\n{text}".encode("utf-8")).hexdigest()[:12]


_GROUPS = {CORRECTION_FIELD: 0, "title": 1, "summary": 1, "body": 1, SIMILARITY_FIELD: 2, MODEL_FIELD: 3, ON_TOPIC_FIELD: 4}


def explain(classification: Classification, theme_id: str) -> list[str]:
    """One line per piece of evidence for a theme (or "off-topic"): the desk's corrections and corrected
    entries alike, then matched terms, then the model's words and phrases, strongest first in each."""
    lines = []
    evidence = classification.evidence.get(theme_id, ())
    for match in sorted(evidence, key=lambda m: (_GROUPS.get(m.field, 5), -abs(m.weight * FIELD_WEIGHTS.get(m.field, 1)))):
        if match.field in (SIMILARITY_FIELD, CORRECTION_FIELD):
            lines.append(f"{match.weight:+.2f}  {match.term}")
        elif match.field == MODEL_FIELD:
            lines.append(f"{match.weight:+.2f}  \"{match.term}\" (theme model)")
        elif match.field == ON_TOPIC_FIELD:
            side = "on topic" if match.weight > 0 else "off topic"
            lines.append(f"{match.weight:+.2f}  \"{match.term}\" (on-topic model: towards {side})")
        else:
            sign = "-" if match.weight < 0 else "+"
            times = f" x{match.count}" if match.count > 1 else ""
            lines.append(f"{sign}  \"{match.term.lstrip('-')}\" in the {match.field}{times} (weight {abs(match.weight):g})")
    return lines
