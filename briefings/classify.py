"""Entries -> norms themes, with the evidence for each decision.

Pure functions over the taxonomy in config. Text is prepared once per entry
(HTML stripped, case and diacritics folded, hyphens split, plurals reduced) and
every theme's terms are matched as whole token sequences, so
"confidence-building measure" also matches "Confidence Building Measures".
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

from briefings.config import ClassifySettings, Theme
from briefings.models import Classification, Entry, Match
from briefings.text import html_to_text

FIELD_WEIGHTS = {"title": 3.0, "summary": 2.0, "body": 1.0}
_TOKEN = re.compile(r"[a-z0-9]+")


def fold(text: str) -> str:
    """Lowercase without diacritics ("Cooperación" -> "cooperacion")."""
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in text if not unicodedata.combining(c))


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


class Classifier:
    """Built once per taxonomy; ``classify`` is then a pure function of the text."""

    def __init__(self, themes: tuple[Theme, ...], settings: ClassifySettings | None = None):
        self.themes = themes
        self.settings = settings or ClassifySettings()
        self._index: dict[tuple[str, ...], list[_Term]] = {}
        self._max_len = 1
        for theme in themes:
            for term in theme.terms:
                self._add(theme.id, term, theme.weights.get(term.lower(), 1.0), False)
            for term in theme.negative:
                self._add(theme.id, term, 1.0, True)

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
        fields = {"title": title, "summary": html_to_text(summary), "body": html_to_text(body)}
        scores: dict[str, float] = {t.id: 0.0 for t in self.themes}
        evidence: dict[str, list[Match]] = {t.id: [] for t in self.themes}
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
            scores={t: round(s, 4) for t, s in scores.items() if s != 0},
            evidence={t: tuple(m) for t, m in evidence.items() if m},
        )

    def classify(self, entry: Entry) -> Classification:
        return self.classify_text(entry.title, entry.summary_html, entry.content_html)
