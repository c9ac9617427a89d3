"""Reports -> stories: the same real-world event told by several feeds, grouped. Pure functions, no I/O.

A *story* is one event and every report of it. Two reports are one story when

1. the **gate** holds: their times (published, else first seen) are at most
   ``window_days`` apart;
2. they are **similar**: the cosine of their TF-IDF vectors (title counted
   twice, then the opening words; names and numbers weigh more) is at least
   ``threshold``, and they share at least one *strong signal* (a name, an
   acronym or a number that is rare in the collection); and
3. nothing **vetoes** it. Different events with the same actors differ in what
   distinguishes them, and any of these mismatches keeps two reports apart:
   each names in its opening a country (or its head of state or government)
   the other never mentions; both name a session, round or meeting by number
   and the numbers differ; both name years in their opening and share none;
   each names in its title a rare name the other never mentions (an acronym
   counts unless the other spells it out, a number never does); both titles
   name sums of money and share none; only one title tells a later development
   ("again", "returns", "a year on") or a failure or refusal ("fails",
   "without consensus", "skips"); one title tells a response (charges,
   sanctions, blame, a takedown) and the other only an attack.

Candidate pairs come from an inverted index of each report's rarest tokens
(never all pairs). Pairs are taken from the most similar down and joined with
union-find, but two groups are joined only when *every* report of one would
pass the gate and the vetoes with every report of the other, and the pair's
weakest cross similarity is at least ``link_threshold`` (a complete-link
check), so a chain A~B~C cannot put two different events together.

The **lead report** is the most complete one: the longest text (title and
opening), then the earliest, then the smallest id. The others are "also
reported by". :func:`explain` says why a report was grouped, or why the
nearest other report was not.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from datetime import datetime, timedelta

OPENING_WORDS = 120  # how much of a report's text is read


@dataclass(frozen=True)
class Report:
    """What grouping reads of one entry."""

    id: int | str
    title: str
    text: str = ""  # plain text; only the first OPENING_WORDS words count
    source: str = ""
    when: datetime | None = None  # published, else first seen
    link: str | None = None
    theme: str | None = None
    score: float = 0.0


@dataclass
class Story:
    key: str  # stable: the smallest report id of the story, as text
    reports: list[Report]  # the lead report first, then the others earliest first
    theme: str | None = None  # the lead report's theme

    @property
    def lead(self) -> Report:
        return self.reports[0]

    @property
    def also(self) -> list[Report]:
        return self.reports[1:]

    @property
    def sources(self) -> list[str]:
        seen: list[str] = []
        for report in self.reports:
            if report.source not in seen:
                seen.append(report.source)
        return seen

    @property
    def first(self) -> datetime | None:
        times = [r.when for r in self.reports if r.when]
        return min(times) if times else None


@dataclass(frozen=True)
class Settings:
    window_days: float = 4.0
    threshold: float = 0.15  # cosine for a pair to be joined
    link_threshold: float = 0.10  # weakest cross cosine allowed when two groups are joined
    rare_tokens: int = 24  # tokens per report put in the candidate index (its rarest)
    very_rare: int = 3  # one shared indexed token makes a candidate pair when at most this many reports carry it;
    # otherwise a pair needs two
    max_postings: int = 40  # a token carried by more reports than this finds no candidates


DEFAULT = Settings()

# --- text features -----------------------------------------------------------------------------

_STOP = frozenset("""
a about above after again against all also am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her here
hers him his how i if in into is it its itself just me more most my no nor not now of off on once only or other
our ours out over own same she should so some such than that the their theirs them then there these they this
those through to too under until up very was we were what when where which while who whom why will with would
you your yours says said say new week according told year years day days one two three four many much may might
its via per amid while yet however since still already including against among across toward towards upon
mr ms mrs dr monday tuesday wednesday thursday friday saturday sunday today yesterday tomorrow
""".split())

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-'][A-Za-z0-9]+)*|\d+(?:[.,]\d+)*(?:st|nd|rd|th)?")
_OPENING_WORD = re.compile(r"([.!?:;\"\u201c] (?=[A-Z]))?(" + _WORD.pattern + ")")
_YEAR = re.compile(r"\b(?:19[89]\d|20[0-4]\d)\b")

_ORDINAL_WORDS = {w: i for i, w in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
    "fifteenth sixteenth seventeenth eighteenth nineteenth twentieth".split(), start=1)}
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "x": 10,
          "xi": 11, "xii": 12, "xiii": 13, "xiv": 14, "xv": 15}
# Countries and the words that stand for them (demonyms, capitals), lower case; multi-word names first.
_COUNTRIES = {
    "united states": "us", "u s": "us", "u.s.": "us", "us": "us", "usa": "us", "american": "us", "americans": "us",
    "united kingdom": "uk", "uk": "uk", "britain": "uk", "british": "uk", "north korea": "north-korea", "north korean": "north-korea", "dprk": "north-korea", "pyongyang": "north-korea",
    "south korea": "south-korea", "south korean": "south-korea", "new zealand": "new-zealand", "saudi arabia": "saudi-arabia", "saudi": "saudi-arabia",
    "south africa": "south-africa", "south african": "south-africa", "sri lanka": "sri-lanka",
    "costa rica": "costa-rica", "costa rican": "costa-rica", "united arab emirates": "uae", "uae": "uae",
    "czech republic": "czechia", "dominican republic": "dominican-republic",
    "russia": "russia", "russian": "russia", "russians": "russia", "moscow": "russia", "kremlin": "russia",
    "china": "china", "chinese": "china", "beijing": "china", "prc": "china",
    "iran": "iran", "iranian": "iran", "tehran": "iran", "ukraine": "ukraine", "ukrainian": "ukraine",
    "japan": "japan", "japanese": "japan", "germany": "germany", "german": "germany", "france": "france", "french": "france",
    "italy": "italy", "italian": "italy", "spain": "spain", "spanish": "spain",
    "netherlands": "netherlands", "dutch": "netherlands", "belgium": "belgium",
    "belgian": "belgium", "poland": "poland", "polish": "poland", "sweden": "sweden",
    "swedish": "sweden", "norway": "norway", "norwegian": "norway", "finland": "finland", "finnish": "finland",
    "denmark": "denmark", "danish": "denmark", "estonia": "estonia", "estonian": "estonia", "latvia": "latvia",
    "lithuania": "lithuania", "switzerland": "switzerland", "swiss": "switzerland", "austria": "austria", "portugal": "portugal", "greece": "greece", "ireland": "ireland", "irish": "ireland",
    "romania": "romania", "bulgaria": "bulgaria", "hungary": "hungary", "croatia": "croatia", "serbia": "serbia",
    "moldova": "moldova", "georgia": "georgia", "georgian": "georgia", "armenia": "armenia",
    "azerbaijan": "azerbaijan", "belarus": "belarus", "kazakhstan": "kazakhstan", "turkey": "turkey",
    "turkish": "turkey", "israel": "israel", "israeli": "israel", "egypt": "egypt", "morocco": "morocco",
    "tunisia": "tunisia", "nigeria": "nigeria", "nigerian": "nigeria", "kenya": "kenya", "ghana": "ghana",
    "senegal": "senegal", "ethiopia": "ethiopia", "rwanda": "rwanda", "india": "india", "indian": "india",
    "pakistan": "pakistan", "bangladesh": "bangladesh", "vietnam": "vietnam", "vietnamese": "vietnam",
    "thailand": "thailand", "singapore": "singapore", "malaysia": "malaysia", "indonesia": "indonesia",
    "philippines": "philippines", "australia": "australia", "australian": "australia", "canada": "canada", "canadian": "canada", "mexico": "mexico", "brazil": "brazil",
    "brazilian": "brazil", "argentina": "argentina", "chile": "chile", "colombia": "colombia", "peru": "peru",
    "paraguay": "paraguay", "uruguay": "uruguay", "ecuador": "ecuador", "venezuela": "venezuela",
    "cuba": "cuba", "montenegro": "montenegro", "albania": "albania", "tonga": "tonga", "fiji": "fiji",
    "qatar": "qatar", "mauritius": "mauritius", "cameroon": "cameroon", "benin": "benin",
}
_DIGIT = re.compile(r"\d")
_NUMBER = re.compile(r"[\d.,]+(?:st|nd|rd|th)?")


_WORDS: dict[str, tuple[str | None, int]] = {}


def _word(word: str) -> tuple[str | None, int]:
    """The stem a word counts as (None for a stop word) and its kind: PLAIN, NUMBER (digits, not a
    year), YEAR, ACRONYM or CAPITAL. Cached: a collection repeats its words."""
    known = _WORDS.get(word)
    if known is not None:
        return known
    if len(_WORDS) > 200_000:
        _WORDS.clear()
    known = _WORDS[word] = _classify(word)
    return known


def _classify(word: str) -> tuple[str | None, int]:
    low = word.lower()
    if low in _STOP or len(low) < 2 and not low.isdigit():
        return None, PLAIN
    stem = _stem(low.replace("'s", "").replace("'", ""))
    if _DIGIT.search(word):
        return stem, YEAR if _YEAR.fullmatch(word) else NUMBER
    if word.isupper() and len(word) >= 2:
        return stem, ACRONYM
    return stem, CAPITAL if word[:1].isupper() else PLAIN


PLAIN, NUMBER, YEAR, ACRONYM, CAPITAL = range(5)


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _opening(text: str) -> str:
    words = text.split(None, OPENING_WORDS)
    return " ".join(words[:OPENING_WORDS])


# Heads of state and government stand for their country in the country veto (and stay names for the rest).
_LEADERS = {
    "obama": "us", "trump": "us", "biden": "us", "xi": "china", "putin": "russia", "medvedev": "russia",
    "macron": "france", "hollande": "france", "merkel": "germany", "scholz": "germany", "zelensky": "ukraine",
    "zelenskyy": "ukraine", "modi": "india", "kishida": "japan", "abe": "japan", "sunak": "uk", "starmer": "uk",
    "johnson": "uk", "may": "uk", "cameron": "uk", "trudeau": "canada", "albanese": "australia",
    "morrison": "australia", "lula": "brazil", "erdogan": "turkey", "rouhani": "iran", "netanyahu": "israel",
    "kim": "north-korea", "moon": "south-korea", "yoon": "south-korea",
}
_COUNTRY_FIRST = frozenset(k.split()[0] for k in _COUNTRIES if " " in k)
_COUNTRY_WORDS = frozenset(w for k in (*_COUNTRIES, *_LEADERS) for w in (k.split()[0], k.split()[0] + "'s"))


def _countries(words: list[str], lower: list[str], lead: int) -> tuple[set[str], set[str]]:
    """Countries named in the first `lead` words, and in all words: one, two or three words at a time
    looked up in the list, only at words that can begin a country's name ("Russia's" names Russia)."""
    found_lead: set[str] = set()
    found: set[str] = set()
    last = len(lower)
    hits = [i for i, low in enumerate(lower) if low in _COUNTRY_WORDS]
    for i in hits:
        low = lower[i]
        country = None
        if low in _COUNTRY_FIRST:
            if i + 2 < last and (key := f"{low} {lower[i + 1]} {lower[i + 2]}") in _COUNTRIES:
                country = _COUNTRIES[key]
            elif i + 1 < last and (key := f"{low} {lower[i + 1]}".removesuffix("'s")) in _COUNTRIES:
                country = _COUNTRIES[key]
        if country is None:
            low = low.removesuffix("'s")
            if low in _COUNTRIES and (low != "us" or words[i].startswith("US")):  # not the pronoun
                country = _COUNTRIES[low]
            elif low in _LEADERS and words[i][:1].isupper() and low not in _STOP:
                country = _LEADERS[low]
        if country is not None:
            found.add(country)
            if i < lead:
                found_lead.add(country)
    return found_lead, found


_SESSION_SET = frozenset("session meeting round plenary conference summit cycle edition dialogue consultation "
                         "consultations".split())
_SUFFIXED = re.compile(r"\d{1,2}(?:st|nd|rd|th)")
_BETWEEN = re.compile(r"[A-Za-z-]+")
_FIRST_SENTENCE_END = re.compile(r"[.!?]\s")


def _ordinals(lower: list[str]) -> set[int]:
    """Session, round or meeting numbers: "fifth session", "11th annual meeting", "round 3", "session IV"."""
    found: set[int] = set()
    if _SESSION_SET.isdisjoint(lower):
        return found
    hits = [i for i, w in enumerate(lower) if w in _SESSION_SET]
    last = len(lower)
    for i in hits:
        for back in range(i - 1, max(i - 5, -1), -1):  # an ordinal, then at most three words
            word = lower[back]
            if word in _ORDINAL_WORDS:
                found.add(_ORDINAL_WORDS[word])
                break
            if _SUFFIXED.fullmatch(word):
                found.add(int(word[:-2]))
                break
            if not _BETWEEN.fullmatch(word):
                break
        after = i + 1
        if after < last and lower[after] == "no":
            after += 1
        if after < last:
            word = lower[after]
            if after + 1 < last and lower[after + 1] in ("per", "percent"):
                continue
            if word.isdigit() and len(word) <= 2:
                found.add(int(word))
            elif word in _ROMAN:
                found.add(_ROMAN[word])
    found.discard(0)
    return found


# What kind of news a title tells, by its words. A title that says "again", "returns" or "a year on" tells a
# later development; "fails", "without" or "skips" a failure or one party's refusal; "charged" or "sanctions" a response to an attack.
_MARKS = {
    "later": r"again|back|returns?|resurg\w*|resurfac\w*|re-?emerg\w*|comeback|rebuil\w*|reviv\w*|anniversary|"
             r"turns (?:one|two|three|five|ten)|follow-up|a year (?:on|later|after)|(?:months|weeks|years) (?:on|after|later)|"
             r"deadline|still|remains?",
    "failed": r"fail\w*|without|collaps\w*|stall\w*|deadlock\w*|no consensus|breaks? down|"
              r"skip\w*|snub\w*|boycott\w*|refus\w*|declin\w*|reject\w*|abstain\w*|stays? away|walks? out",
    "response": r"arrest\w*|charg(?:e|es|ed|ing)|indict\w*|sentenc\w*|extradit\w*|pleads?|convict\w*|guilty|"
                r"prosecut\w*|sanction\w*|accus\w*|blam\w*|attribut\w*|dismantl\w*|takedown|tak(?:e|es|en) down|"
                r"seiz\w*|disrupt\w*",
    "attack": r"hit|hits|attack\w*|breach\w*|hack|hacked|hacks|crippl\w*|paralys\w*|paralyz\w*|outage|"
              r"ransomware|compromis\w*",
}
_MARK = {kind: re.compile(r"\b(?:" + pattern + r")\b", re.I) for kind, pattern in _MARKS.items()}
_MONEY = re.compile(r"(?:[$\u20ac\u00a3]\s?(\d+(?:[.,]\d+)*)\s*(million|billion|m|bn|k)?\b)|"
                    r"(?:\b(\d+(?:[.,]\d+)*)\s*(million|billion)\s+(?:euros?|dollars?|pounds?))", re.I)
_JOINERS = frozenset("of for and on the de".split())


def _title_marks(title: str) -> frozenset[str]:
    return frozenset(kind for kind, pattern in _MARK.items() if pattern.search(title))


def _money(title: str) -> frozenset[str]:
    found = set()
    for match in _MONEY.finditer(title):
        number, unit = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
        unit = (unit or "").lower()
        found.add(f"{number.replace(',', '')} {({'m': 'million', 'bn': 'billion'}).get(unit, unit)}".strip())
    return frozenset(found)


def _initials(words: list[str]) -> frozenset[str]:
    """Initials of every run of two to six capitalized words, joiners (of, for, and) allowed inside."""
    found: set[str] = set()
    run: list[str] = []
    for word in words + [""]:
        if word[:1].isupper() and not word.isupper():
            run.append(word[0].lower())
            continue
        if word in _JOINERS and run:
            continue
        for start in range(len(run)):
            for end in range(start + 2, min(len(run), start + 6) + 1):
                found.add("".join(run[start:end]))
        run = []
    return frozenset(found)


@dataclass
class _Features:
    report: Report
    tokens: dict[str, float]  # stemmed token -> weighted count
    acronyms: set[str]
    names: set[str]  # tokens that were written as names (capitalized mid-sentence, acronyms, with digits)
    title_names: set[str]
    title_numbers: set[str]  # numbers (not years) in the title
    words: list[str]  # the words of title and opening, as written
    everything: set[str]  # every token of title and opening, stemmed
    countries_lead: set[str]  # countries named in the title or the first sentence
    countries_all: set[str]
    ordinals: set[int]
    years: set[str]
    length: int
    time: float | None
    vector: dict[str, float] = field(default_factory=dict)
    norm: float = 1.0

    # Read only for the pairs that reach the vetoes.
    @cached_property
    def title_marks(self) -> frozenset[str]:
        """What kind of news the title tells (see _MARKS)."""
        return _title_marks(self.report.title or "")

    @cached_property
    def money(self) -> frozenset[str]:
        """Amounts of money in the title ("$5 million" -> "5 million")."""
        return _money(self.report.title or "")

    @cached_property
    def initials(self) -> frozenset[str]:
        """Initials of the runs of capitalized words (Group of Governmental Experts -> gge)."""
        return _initials(self.words)


def _features(report: Report) -> _Features:
    """One pass over the words of title and opening: every signal is read from the same word lists."""
    title = " ".join((report.title or "").split())
    opening = _opening(report.text or "")  # single spaces: a sentence starts after punctuation and one space
    title_words = _WORD.findall(title)
    pairs = _OPENING_WORD.findall(opening)  # (the punctuation and space before a sentence's first word, word)
    # Title words are names only when the title is not written in title case.
    title_case = sum(1 for w in title_words if w[:1].isupper()) > 0.6 * max(len(title_words), 1)
    tokens: dict[str, float] = {}
    names: set[str] = set()
    title_names: set[str] = set()
    title_numbers: set[str] = set()
    acronyms: set[str] = set()
    known = _WORDS.get
    for position, word in enumerate(title_words):
        stem, kind = known(word) or _word(word)
        if stem is None:
            continue
        if kind == PLAIN or kind == YEAR or (kind == CAPITAL and (title_case or position == 0)):
            tokens[stem] = tokens.get(stem, 0.0) + 2.0
            continue
        if kind == ACRONYM:
            acronyms.add(stem)
        elif kind == NUMBER:
            title_numbers.add(stem)
        names.add(stem)
        title_names.add(stem)
        tokens[stem] = tokens.get(stem, 0.0) + 3.2
    if pairs:
        pairs[0] = (".", pairs[0][1])  # the opening's first word begins a sentence
    for (before, word), count in Counter(pairs).items():  # each distinct word once
        stem, kind = known(word) or _word(word)
        if stem is None:
            continue
        if kind == PLAIN or kind == YEAR or (kind == CAPITAL and before):
            tokens[stem] = tokens.get(stem, 0.0) + count
            continue
        if kind == ACRONYM:
            acronyms.add(stem)
        names.add(stem)
        tokens[stem] = tokens.get(stem, 0.0) + 1.6 * count
    # In a title-cased title, words already seen as names in the opening are names in the title too.
    # So is a title's first word when the opening writes it as a name ("Obama and Xi agree ...").
    for word in title_words if title_case else title_words[:1]:
        stem = (known(word) or _word(word))[0]
        if stem in names:
            title_names.add(stem)
    # The title and the first sentence are the report's lead: its countries and years.
    end = _FIRST_SENTENCE_END.search(opening)
    first_sentence = opening[: end.start() + 1] if end else opening
    all_words = title_words + [w for _, w in pairs]
    all_lower = [w.lower() for w in all_words]
    lead = len(title_words) + next((i for i, (before, _) in enumerate(pairs) if i and before[:1] in ".!?"), len(pairs))
    countries_lead, countries_all = _countries(all_words, all_lower, lead)
    when = report.when.timestamp() if report.when else None
    return _Features(
        report=report, tokens=tokens, acronyms=acronyms, names=names, title_names=title_names,
        title_numbers=title_numbers, words=all_words, everything=set(tokens), countries_lead=countries_lead,
        countries_all=countries_all, ordinals=_ordinals(all_lower),
        years=set(_YEAR.findall(f"{title}. {first_sentence}")),
        length=len(title) + len(report.text or ""), time=when,
    )


class _Corpus:
    """Every report's features and TF-IDF vector, and the inverted index of rare tokens."""

    def __init__(self, reports: list[Report], settings: Settings):
        self.settings = settings
        self.features = [_features(r) for r in reports]
        df: Counter = Counter()
        for f in self.features:
            df.update(f.tokens.keys())
        n = len(self.features)
        self.df = df
        self.acronyms: set[str] = set().union(*(f.acronyms for f in self.features))
        self.idf = {t: math.log((n + 1) / (c + 0.5)) + 1.0 for t, c in df.items()}
        self.max_idf = math.log((n + 1) / 1.5) + 1.0
        idf, log = self.idf, math.log
        for f in self.features:
            vector = {t: (1.0 + log(c)) * idf[t] for t, c in f.tokens.items()}
            f.vector = vector
            f.norm = math.hypot(*vector.values()) or 1.0
        # Names the collection mostly writes in lower case are not names (sentence-like titles, "Cyber").
        self.postings: dict[str, list[int]] = defaultdict(list)
        self.indexed: list[list[str]] = []
        for i, f in enumerate(self.features):
            ranked = sorted([(c, t) for t in f.tokens if 1 < (c := df[t]) <= settings.max_postings])
            rare = [t for _, t in ranked[: settings.rare_tokens]]
            self.indexed.append(rare)
            for t in rare:
                self.postings[t].append(i)

    def cosine(self, i: int, j: int) -> float:
        a, b = self.features[i], self.features[j]
        if len(a.vector) > len(b.vector):
            a, b = b, a
        vb = b.vector
        dot = sum(v * vb[t] for t, v in a.vector.items() if t in vb)
        return dot / (a.norm * b.norm)

    def strong_shared(self, i: int, j: int) -> list[str]:
        """Names and numbers both reports carry that are rare in the collection (at most max_postings reports)."""
        a, b = self.features[i], self.features[j]
        shared = (a.names & b.everything) | (b.names & a.everything)
        limit = self.settings.max_postings
        return sorted((t for t in shared if self.df[t] <= limit), key=lambda t: (self.df[t], t))

    def gate(self, i: int, j: int) -> str | None:
        """Why these two cannot be one story whatever their words, or None."""
        a, b = self.features[i], self.features[j]
        if a.time is not None and b.time is not None:
            gap = abs(a.time - b.time) / 86400
            if gap > self.settings.window_days:
                return f"{gap:.1f} days apart (window {self.settings.window_days:g})"
        only_a = a.countries_lead - b.countries_all
        only_b = b.countries_lead - a.countries_all
        if only_a and only_b:
            return f"different countries: {', '.join(sorted(only_a))} vs {', '.join(sorted(only_b))}"
        if a.ordinals and b.ordinals and not a.ordinals & b.ordinals:
            return (f"different session or round numbers: {', '.join(map(str, sorted(a.ordinals)))} vs "
                    f"{', '.join(map(str, sorted(b.ordinals)))}")
        if a.years and b.years and not a.years & b.years:
            return f"different years: {', '.join(sorted(a.years))} vs {', '.join(sorted(b.years))}"
        names_a = {t for t in a.title_names - b.everything if self._distinct_name(t, b)}
        names_b = {t for t in b.title_names - a.everything if self._distinct_name(t, a)}
        if names_a and names_b:
            return f"different names: {', '.join(sorted(names_a))} vs {', '.join(sorted(names_b))}"
        if a.money and b.money and not a.money & b.money:
            return f"different sums: {', '.join(sorted(a.money))} vs {', '.join(sorted(b.money))}"
        for kind, what in (("later", "a later development"), ("failed", "a failure or a refusal")):
            if (kind in a.title_marks) != (kind in b.title_marks):
                one = a if kind in a.title_marks else b
                return f"only one title tells {what}: {one.report.title!r}"
        for x, y in ((a, b), (b, a)):
            if "response" in x.title_marks and "attack" in y.title_marks and "response" not in y.title_marks:
                return f"one title tells a response (charges, sanctions, blame), the other an attack: {y.report.title!r}"
        return None

    def _distinct_name(self, token: str, other: _Features) -> bool:
        """A name that tells events apart: rare, not a country, not a number (counts of victims change from
        report to report), at least four letters (an acronym three), and not an acronym the other report
        spells out (GGE: Group of Governmental Experts)."""
        if self.df[token] > self.settings.max_postings or token in _COUNTRIES or _NUMBER.fullmatch(token):
            return False
        if token in self.acronyms:
            return len(token) >= 3 and token not in other.initials and not _DIGIT.search(token)
        return len(token) >= 4

    def candidates(self) -> list[tuple[int, int]]:
        """Pairs sharing two indexed tokens, or one that very few reports carry; never all pairs."""
        shared: dict[tuple[int, int], int] = defaultdict(int)
        very_rare = self.settings.very_rare
        for postings in self.postings.values():
            bonus = 2 if len(postings) <= very_rare else 1
            for x in range(len(postings) - 1):
                i = postings[x]
                for j in postings[x + 1:]:
                    shared[(i, j)] += bonus
        return [pair for pair, count in shared.items() if count >= 2]


def _lead_order(report: Report, length: int):
    when = report.when.timestamp() if report.when else math.inf
    return (-length, when, str(report.id))


class _Grouping:
    def __init__(self, reports: list[Report], settings: Settings):
        self.reports = reports
        self.settings = settings
        self.corpus = _Corpus(reports, settings)
        n = len(reports)
        self.parent = list(range(n))
        self.members: dict[int, list[int]] = {i: [i] for i in range(n)}
        self.joined: dict[tuple[int, int], float] = {}  # the pairs that joined groups, and their cosine
        self.refused: dict[tuple[int, int], str] = {}  # candidate pairs similar enough but kept apart, and why
        self.similar: dict[tuple[int, int], float] = {}
        self._run()

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def _run(self) -> None:
        corpus, settings = self.corpus, self.settings
        scored = []
        for i, j in corpus.candidates():
            similarity = corpus.cosine(i, j)
            if similarity >= settings.threshold:
                scored.append((-similarity, i, j))
        scored.sort()
        for negative, i, j in scored:
            similarity = -negative
            self.similar[(i, j)] = similarity
            if not corpus.strong_shared(i, j):
                self.refused[(i, j)] = "no shared name or number"
                continue
            reason = corpus.gate(i, j)
            if reason:
                self.refused[(i, j)] = reason
                continue
            ri, rj = self.find(i), self.find(j)
            if ri == rj:
                continue
            reason = self._complete_link(ri, rj)
            if reason:
                self.refused[(i, j)] = reason
                continue
            small, big = sorted((ri, rj), key=lambda r: len(self.members[r]))
            self.parent[small] = big
            self.members[big].extend(self.members.pop(small))
            self.joined[(i, j)] = similarity

    def _complete_link(self, ri: int, rj: int) -> str | None:
        for a in self.members[ri]:
            for b in self.members[rj]:
                reason = self.corpus.gate(a, b)
                if reason:
                    return f"{self._label(a)} and {self._label(b)} would be in one story: {reason}"
                similarity = self.corpus.cosine(a, b)
                if similarity < self.settings.link_threshold:
                    return (f"{self._label(a)} and {self._label(b)} would be in one story with similarity "
                            f"{similarity:.2f} (below {self.settings.link_threshold:g})")
        return None

    def _label(self, i: int) -> str:
        return f"report {self.reports[i].id}"

    def stories(self) -> list[Story]:
        out = []
        for root, members in self.members.items():
            features = [self.corpus.features[i] for i in members]
            features.sort(key=lambda f: _lead_order(f.report, f.length))
            lead, rest = features[0], features[1:]
            rest.sort(key=lambda f: (f.time if f.time is not None else math.inf, str(f.report.id)))
            reports = [lead.report] + [f.report for f in rest]
            key = str(min((r.id for r in reports), key=lambda v: (not isinstance(v, int), v if isinstance(v, int) else 0, str(v))))
            out.append(Story(key=key, reports=reports, theme=lead.report.theme))
        out.sort(key=lambda s: (-len(s.reports), s.key))
        return out


def group(reports: list[Report], settings: Settings = DEFAULT) -> list[Story]:
    """Every report in exactly one story (singletons included), the biggest stories first."""
    if not reports:
        return []
    return _Grouping(list(reports), settings).stories()


def explain(report_id, reports: list[Report], settings: Settings = DEFAULT) -> dict:
    """Why the report with this id is in its story: each other report's similarity, shared signals and
    time gap; and the nearest report left out, with the reason. Raises KeyError for an unknown id."""
    reports = list(reports)
    grouping = _Grouping(reports, settings)
    index = {r.id: i for i, r in enumerate(reports)}
    if report_id not in index:
        raise KeyError(report_id)
    me = index[report_id]
    root = grouping.find(me)
    corpus = grouping.corpus
    story = next(s for s in grouping.stories() if report_id in {r.id for r in s.reports})

    def describe(j: int) -> dict:
        a, b = corpus.features[me], corpus.features[j]
        gap = abs(a.time - b.time) / 86400 if a.time is not None and b.time is not None else None
        return {
            "id": reports[j].id, "title": reports[j].title, "source": reports[j].source,
            "similarity": round(corpus.cosine(me, j), 3), "shared": corpus.strong_shared(me, j)[:8],
            "days_apart": round(gap, 1) if gap is not None else None,
        }

    grouped = []
    for j in grouping.members[root]:
        if j == me:
            continue
        detail = describe(j)
        pair = (min(me, j), max(me, j))
        detail["joined_directly"] = pair in grouping.joined
        grouped.append(detail)
    grouped.sort(key=lambda d: -d["similarity"])
    nearest = None
    best = -1.0
    for j in range(len(reports)):
        if j == me or grouping.find(j) == root:
            continue
        similarity = corpus.cosine(me, j)
        if similarity > best:
            best, nearest = similarity, j
    left_out = None
    if nearest is not None and best > 0:
        left_out = describe(nearest)
        pair = (min(me, nearest), max(me, nearest))
        if pair in grouping.refused:
            reason = grouping.refused[pair]
        elif best < settings.threshold:
            reason = f"similarity {best:.2f} is below the threshold {settings.threshold:g}"
        else:
            reason = corpus.gate(me, nearest) or (
                "no shared name or number" if not corpus.strong_shared(me, nearest) else
                "too few rare words in common to be compared")
            if grouping.find(nearest) != nearest or len(grouping.members.get(grouping.find(nearest), [])) > 1:
                other = grouping._complete_link(root, grouping.find(nearest)) if not corpus.gate(me, nearest) else None
                reason = other or reason
        left_out["reason"] = reason
    return {
        "id": report_id,
        "story": story.key,
        "lead": story.lead.id,
        "rule": "lead: the longest text, then the earliest",
        "gate": f"reports at most {settings.window_days:g} days apart; similarity >= {settings.threshold:g} "
                f"with a shared name or number; no mismatch of countries, session numbers, years or title names",
        "grouped_with": grouped,
        "nearest_not_grouped": left_out,
    }
