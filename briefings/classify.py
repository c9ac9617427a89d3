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
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable


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
    words = _TOKEN.findall(fold(text))
    try:
        return [stems[word] for word in words]
    except KeyError:  # words not seen before: stem them once
        for word in words:
            if word not in stems:
                stems[word] = stem(word)
        return [stems[word] for word in words]


def content_words(words: list[str]) -> list[str]:
    """The content words of tokens: stopwords, words of one or two letters and numbers left out."""
    known = _CONTENT
    if len(known) > 200_000:
        known.clear()
    try:
        return [w for w in words if known[w]]
    except KeyError:
        for w in words:
            if w not in known:
                known[w] = w not in STOPWORDS and len(w) > 2 and not w.isdigit()
        return [w for w in words if known[w]]


@dataclass(frozen=True)
class _Term:
    theme: str
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
        self._max_len = 1
        self._starts: dict[str, int] = {}  # first word of a term -> the longest term it starts
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
        self._neighbour_index: dict[str, list[tuple[int, float]]] = {}  # feature -> [(neighbour, weight)]

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

    def _add_neighbour(self, counts: Counter, label: str | None, name: str) -> None:
        if self._model is None:
            return  # neighbours live in the model's feature space; the terms classifier has none
        vector = self._model.vector(counts)
        if not vector:
            return
        number = len(self._neighbours)
        self._neighbours.append((label, name))
        # Its strongest features only: a long document's hundreds of others add little but time.
        for weight, feature in heapq.nlargest(NEIGHBOUR_FEATURES, ((w, f) for f, w in vector.items())):
            self._neighbour_index.setdefault(feature, []).append((number, weight))

    def _add(self, theme_id: str, term: str, weight: float, negative: bool) -> None:
        key = tuple(tokens(term))
        if not key:
            return
        self._index.setdefault(key, []).append(_Term(theme_id, term, weight, negative))
        self._max_len = max(self._max_len, len(key))
        self._starts[key[0]] = max(self._starts.get(key[0], 0), len(key))

    def _matches(self, words: list[str]) -> dict[tuple[str, ...], int]:
        found: dict[tuple[str, ...], int] = {}
        index, starts = self._index, self._starts
        n = len(words)
        for i, word in enumerate(words):
            longest = starts.get(word)
            if longest is None:
                continue  # no term starts with this word
            for size in range(1, min(longest, n - i) + 1):
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
                        scores[term.theme] -= contribution
                        evidence[term.theme].append(Match(f"-{term.term}", field_name, count, -term.weight))
                    else:
                        scores[term.theme] += contribution
                        evidence[term.theme].append(Match(term.term, field_name, count, term.weight))
        return scores, evidence

    def classify_text(self, title: str, summary: str = "", body: str = "") -> Classification:
        """Classify plain or HTML text given by field (the opening of each field is read)."""
        if not self._ready:
            self._prepare()
        title, summary, body = title[:READ_TEXT], opening_text(summary), opening_text(body)
        fields = {"title": tokens(title), "summary": tokens(summary), "body": tokens(body)}
        scores, evidence = self._term_part(fields)
        if self._model is not None:
            return self._model_decision(fields, scores, evidence)
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

    def _model_decision(self, fields, term_scores, evidence) -> Classification:
        from briefings.themes_model import sigmoid, softmax

        model = self._model
        if model is None:
            raise RuntimeError("the model decision needs the model loaded")
        title_words, summary_words, body_words = (content_words(words) for words in fields.values())
        scored = model.score(model.counts(title_words, summary_words + body_words))
        alpha, beta = model.term_weight, model.on_term_weight
        logits = {t.id: scored.logits[t.id] + alpha * term_scores[t.id] for t in self.themes if t.id in scored.logits}
        on_z = scored.on_logit + beta * max(term_scores.values(), default=0.0)
        pulls: dict[str | None, list[Match]] = {}
        vector = scored.vector
        similarities: dict[int, float] = {}
        index = self._neighbour_index
        if index:
            for feature, x in vector.items():
                postings = index.get(feature)
                if postings is not None:
                    for number, weight in postings:
                        similarities[number] = similarities.get(number, 0.0) + x * weight
        for number, similarity in similarities.items():
            if similarity < NEIGHBOUR_MIN:
                continue
            label, name = self._neighbours[number]
            push = NEIGHBOUR_WEIGHT * similarity
            if label is None:
                on_z -= push
            else:
                on_z += push
                if label in logits:
                    logits[label] += push
                else:  # a theme the model has not learned: its terms and its neighbours decide
                    term_scores[label] += push
            pulls.setdefault(label, []).append(Match(f"{name} ({similarity:.2f})", CORRECTION_FIELD, 1, round(push, 3)))
        p_on = model.on_probability(on_z)
        # Themes the model has not learned compete by their terms: at the threshold they tie the best.
        threshold = self.settings.threshold
        learned_best = max(logits.values(), default=0.0)
        forced = False
        for theme in self.themes:
            if theme.id not in logits and term_scores[theme.id] >= threshold:
                logits[theme.id] = learned_best + alpha * (term_scores[theme.id] - threshold) + 1.0
                forced = True
        probabilities = softmax(logits)
        on_topic = forced or p_on >= model.on_threshold
        order = self._order
        ranked = sorted(probabilities, key=lambda t: (-probabilities[t], order[t]))
        themes: tuple[str, ...] = ()
        if on_topic and ranked:
            primary = ranked[0]
            second = {t: sigmoid(z + alpha * term_scores[t]) for t, z in model.secondary(vector).items() if t in logits and t != primary}
            bar = model.secondary_thresholds
            themes = (primary,) + tuple(
                sorted((t for t, p in second.items() if p >= bar[t]), key=lambda t: (-second[t], order[t]))[:MAX_SECONDARY])
        shown = max(p_on, model.on_threshold) if forced else p_on
        scores = {t: v for t, v in ((t, round(shown * p, 4)) for t, p in probabilities.items()) if v}
        for label, matches in pulls.items():
            evidence.setdefault(label or OFF_TOPIC, []).extend(matches)
        # The words and phrases that decided the primary theme and the on-topic call.
        # (sorted()[:n] is heapq.nlargest(n), and for a few dozen features quicker.)
        if themes and themes[0] in scored.logits:
            top = sorted([p for p in model.contributions(vector, themes[0]) if p[0] > 0], reverse=True)[:6]
            evidence[themes[0]].extend(Match(f, MODEL_FIELD, 1, round(w, 3)) for w, f in top)
        on_parts = model.contributions(vector, None)
        if themes:
            top = sorted([p for p in on_parts if p[0] > 0], reverse=True)[:5]
            evidence[themes[0]].extend(Match(f, ON_TOPIC_FIELD, 1, round(w, 3)) for w, f in top)
        else:
            top = sorted([p for p in on_parts if p[0] < 0])[:6]
            evidence.setdefault(OFF_TOPIC, []).extend(Match(f, ON_TOPIC_FIELD, 1, round(w, 3)) for w, f in top)
        return Classification(
            theme=themes[0] if themes else None,
            themes=themes,
            scores=scores,
            evidence={t: tuple(m) for t, m in evidence.items() if m},
            on_topic=round(p_on, 4),
            margin=round(_margin(probabilities, ranked, p_on, model.on_threshold), 4),
        )

    def _decide(self, scores: dict[str, float], evidence: dict[str, list[Match]]) -> Classification:
        order = {t.id: i for i, t in enumerate(self.themes)}
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
        correction = self._corrections.get(entry.key)
        if correction is not None:
            return corrected(correction)
        return self.classify_text(entry.title, entry.summary_html, entry.content_html)


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


def _margin(probabilities: dict[str, float], ranked: list[str], p_on: float, on_threshold: float) -> float:
    """How sure a decision is: the smaller of the distance to the on-topic threshold and the gap
    between the two likeliest themes (0: a coin toss)."""
    gap = probabilities[ranked[0]] - probabilities[ranked[1]] if len(ranked) > 1 else 1.0
    return min(abs(p_on - on_threshold), gap if p_on >= on_threshold else 1.0)


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
