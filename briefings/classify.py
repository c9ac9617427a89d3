"""Entries -> norms themes, with the evidence for each decision.

Two signals, both explainable:

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

The primary theme is the best score at or above ``threshold``; secondary themes
reach ``secondary_share`` of it; below the threshold everywhere: off-topic.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from briefings.config import ClassifySettings, Theme
from briefings.models import Classification, Entry, Match
from briefings.text import cut_html, html_to_text

FIELD_WEIGHTS = {"title": 3.0, "summary": 2.0, "body": 1.0}
# Classification reads the opening of each field, where the signal is: at most this much
# text, from at most READ_HTML characters of its markup. An entry's length costs nothing past it.
READ_TEXT = 50_000
READ_HTML = 200_000
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


def tokens(text: str) -> list[str]:
    return [stem(t) for t in _TOKEN.findall(fold(text))]


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


def build_classifier(config) -> "Classifier":
    """The classifier for a config: its themes and settings, taught by the examples file and the
    reading-list documents labeled with themes."""
    from briefings.collect.corpus import load_corpus

    examples = load_examples(config.classify.examples)
    if config.corpus.path:
        for entry in load_corpus(config.corpus.path).entries:
            text = html_to_text(entry.summary_html) + " " + html_to_text(entry.content_html)
            examples.extend(Example(label, entry.title, text) for label in entry.labels)
    return Classifier(config.themes, config.classify, examples)


def content_tokens(text: str) -> list[str]:
    return [t for t in tokens(text) if t not in STOPWORDS and len(t) > 2 and not t.isdigit()]


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
    """Built once per taxonomy (and examples); ``classify`` is then a pure function of the text."""

    def __init__(
        self,
        themes: tuple[Theme, ...],
        settings: ClassifySettings | None = None,
        examples: Iterable[Example] = (),
    ):
        self.themes = themes
        self.settings = settings or ClassifySettings()
        self._index: dict[tuple[str, ...], list[_Term]] = {}
        self._max_len = 1
        for theme in themes:
            for term in theme.terms:
                self._add(theme.id, term, theme.weights.get(term.lower(), 1.0), False)
            for term in (*theme.negative, *self.settings.off_topic_terms):
                self._add(theme.id, term, 1.0, True)
        self._centroids = None
        if self.settings.similarity_weight > 0:
            known = {t.id for t in themes}
            docs: dict[str, list[Counter]] = {
                t.id: [Counter(content_tokens(" ".join([t.name, t.description, *t.terms])))] for t in themes
            }
            for example in examples:
                if example.theme in known:
                    docs[example.theme].append(Counter(content_tokens(f"{example.title} {example.title} {example.text}")))
            self._centroids = _Centroids(docs)

    def _add(self, theme_id: str, term: str, weight: float, negative: bool) -> None:
        key = tuple(tokens(term))
        if not key:
            return
        self._index.setdefault(key, []).append(_Term(theme_id, term, weight, negative))
        self._max_len = max(self._max_len, len(key))

    def _matches(self, words: list[str]) -> dict[tuple[str, ...], int]:
        found: dict[tuple[str, ...], int] = {}
        index, longest = self._index, self._max_len
        n = len(words)
        for i in range(n):
            for size in range(1, min(longest, n - i) + 1):
                key = tuple(words[i : i + size])
                if key in index:
                    found[key] = found.get(key, 0) + 1
        return found

    def classify_text(self, title: str, summary: str = "", body: str = "") -> Classification:
        """Classify plain or HTML text given by field."""
        fields = {"title": title[:READ_TEXT], "summary": opening_text(summary), "body": opening_text(body)}
        scores: dict[str, float] = {t.id: 0.0 for t in self.themes}
        evidence: dict[str, list[Match]] = {t.id: [] for t in self.themes}
        bag: Counter = Counter()
        for field_name, text in fields.items():
            words = tokens(text)
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
            if self._centroids is not None:
                repeat = 2 if field_name == "title" else 1
                for word in words:
                    if word not in STOPWORDS and len(word) > 2 and not word.isdigit():
                        bag[word] += repeat
        if self._centroids is not None and bag:
            weight = self.settings.similarity_weight
            similarities, parts = self._centroids.similarities(bag)
            for theme_id, similarity in similarities.items():
                contribution = weight * similarity
                scores[theme_id] += contribution
                top = ", ".join(token for _, token in sorted(parts[theme_id], reverse=True)[:5])
                evidence[theme_id].append(Match(f"like the theme's examples ({top})", SIMILARITY_FIELD, 1, round(contribution, 4)))
        return self._decide(scores, evidence)

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
        return self.classify_text(entry.title, entry.summary_html, entry.content_html)


def explain(classification: Classification, theme_id: str) -> list[str]:
    """One line per piece of evidence for a theme, strongest first."""
    lines = []
    for match in sorted(classification.evidence.get(theme_id, ()), key=lambda m: -abs(m.weight * FIELD_WEIGHTS.get(m.field, 1))):
        if match.field == SIMILARITY_FIELD:
            lines.append(f"+{match.weight:.2f}  {match.term}")
        else:
            sign = "-" if match.weight < 0 else "+"
            times = f" x{match.count}" if match.count > 1 else ""
            lines.append(f"{sign}  \"{match.term.lstrip('-')}\" in the {match.field}{times} (weight {abs(match.weight):g})")
    return lines
