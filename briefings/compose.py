"""Pending entries -> a Briefing: reports of one event grouped into a story, sections in taxonomy order,
stories by relevance then recency, the top stories first.

Each story is printed once, under its lead report's primary theme (the lead is the most complete report:
see briefings.stories); "also reported by" lists every other source of the story, exact duplicates
included. A story that continues one from an earlier briefing (new reports grouped with reports an
earlier briefing listed, within the stories window) keeps its id and says where it appeared before.

Top stories are ranked by a stated rule: the most distinct sources first; then a developing story
(continued from an earlier briefing) before a new one; then the lead's theme score; then the most recent.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Sequence

from briefings import stories as story_grouping
from briefings.config import Config
from briefings.models import (Briefing, BriefingItem, Classification, Entry, ReadingItem, Section, StoredBriefing,
                               StoryBefore, stored_id)
from briefings.text import excerpt, html_to_text

OTHER = Section(theme_id=None, name="Other", description="Entries that match no norms theme.", items=[])


def slugify(text: str, limit: int = 48) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "briefing"


def entry_excerpt(entry: Entry, sentences: int) -> str:
    text = html_to_text(entry.summary_html) or html_to_text(entry.content_html)
    return excerpt(text, sentences, skip=entry.title)


def compose(
    config: Config,
    pending: list[tuple[Entry, Classification]],
    *,
    now: datetime,
    since: datetime | None = None,
    slug_taken=lambda slug: False,
    earlier: Sequence[tuple[Entry, str, StoredBriefing]] = (),
) -> tuple[Briefing, list[int]]:
    """Build the briefing from classified pending entries.

    earlier: entries earlier briefings listed in stories (store.briefings.story_entries), so a story
    this briefing continues is told as one. Returns the briefing and the ids of the entries it leaves
    out (off-topic, unless [briefing] include_off_topic), which it settles all the same.
    """
    settings = config.briefing
    by_theme: dict[str | None, list[BriefingItem]] = {}
    left_out: list[int] = []
    items: list[BriefingItem] = []
    for entry, classification in pending:
        if classification.theme is None and not settings.include_off_topic:
            left_out.append(stored_id(entry.id))
            continue
        items.append(BriefingItem(
            entry=entry,
            classification=classification,
            excerpt=entry_excerpt(entry, settings.excerpt_sentences),
            also=[s for s in entry.sources[1:]],
        ))
    for item in tell_stories(items, list(earlier)):
        by_theme.setdefault(item.classification.theme, []).append(item)

    def rank(item: BriefingItem):
        c = item.classification
        when = item.entry.published or item.entry.first_seen or now
        return (-(c.scores.get(c.theme, 0.0) if c.theme else 0.0), -when.timestamp(), item.entry.title)

    sections = []
    for theme in config.themes:
        items = sorted(by_theme.get(theme.id, []), key=rank)
        if items:
            sections.append(Section(theme_id=theme.id, name=theme.name, description=theme.description, items=items))
    if by_theme.get(None):
        sections.append(Section(OTHER.theme_id, OTHER.name, OTHER.description, sorted(by_theme[None], key=rank)))

    base = f"{now:%Y-%m-%d}-{slugify(settings.title)}"
    slug, n = base, 2
    while slug_taken(slug):
        slug, n = f"{base}-{n}", n + 1
    if since is None:
        seen = [e.first_seen for e, _ in pending if e.first_seen]
        since = min(seen) if seen else None
    briefing = Briefing(
        title=settings.title,
        slug=slug,
        created=now,
        period_start=since,
        period_end=now,
        sections=sections,
        off_topic=sum(1 for _, c in pending if c.theme is None),
    )
    briefing.top = top_stories(briefing, settings.top_stories, {t.id: t.name for t in config.themes})
    return briefing, left_out


def _report(key: int, entry: Entry, classification: Classification | None) -> story_grouping.Report:
    theme = classification.theme if classification else None
    return story_grouping.Report(
        id=key, title=entry.title, text=html_to_text(entry.summary_html) or html_to_text(entry.content_html),
        source=entry.source_name, when=entry.published or entry.first_seen, link=entry.link, theme=theme,
        score=classification.scores.get(theme, 0.0) if classification and theme else 0.0,
    )


def tell_stories(items: list[BriefingItem], earlier: Sequence[tuple[Entry, str, StoredBriefing]]) -> list[BriefingItem]:
    """The stories these items make: each lead item with the story's other items in .reports and every
    other source in .also. A story that takes in reports an earlier briefing listed keeps their story id
    and says where it appeared before (.before); otherwise its id is "s" and its smallest entry id."""
    n = len(items)
    reports = [_report(i, item.entry, item.classification) for i, item in enumerate(items)]
    reports += [_report(n + k, entry, None) for k, (entry, _, _) in enumerate(earlier)]
    leads = []
    for story in story_grouping.group(reports):
        ids = [r.id for r in story.reports if isinstance(r.id, int)]  # this function numbers its reports
        new = [i for i in ids if i < n]
        if not new:
            continue  # only earlier reports: told already
        old = [earlier[i - n] for i in ids if i >= n]
        lead, rest = items[new[0]], [items[i] for i in new[1:]]
        lead.reports = rest
        also = list(lead.also)
        for other in rest:
            for carrier in [(other.entry.source_name, other.entry.link), *other.entry.sources[1:]]:
                if carrier not in also and carrier != (lead.entry.source_name, lead.entry.link):
                    also.append(carrier)
        lead.also = also
        if old:
            stories = [story_id for _, story_id, _ in old]
            lead.story = max(set(stories), key=lambda s: (stories.count(s), s))
            shown = [(b, e) for e, story_id, b in old if story_id == lead.story]
            times = [t for t in (e.published or e.first_seen for _, e in shown) if t is not None]
            newest = max((b for b, _ in shown), key=lambda b: (b.created, b.id))
            lead.before = StoryBefore(briefing=newest, since=min(times) if times else newest.created)
        else:
            lead.story = f"s{min(items[i].entry.id or 0 for i in new)}"
        for other in rest:
            other.story = lead.story
        leads.append(lead)
    return leads


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def top_stories(briefing: Briefing, limit: int, theme_names: dict[str, str]) -> list[BriefingItem]:
    """Up to limit on-topic stories, ranked: most distinct sources, developing before new, theme score,
    most recent. Each gets its rank (.top) and its one-line reason (.reason). In a briefing of no more
    stories than limit, only the stories that stand out (told by two sources or more, or developing)
    are top stories: the others would be the whole briefing printed twice."""
    if limit <= 0:
        return []
    candidates = [item for section, item in briefing.stories() if section.theme_id is not None]
    if len(candidates) <= limit:
        candidates = [item for item in candidates if len(item.sources) > 1 or item.before is not None]

    def rank(item: BriefingItem):
        c = item.classification
        when = max((i.entry.published or i.entry.first_seen or briefing.created) for i in (item, *item.reports))
        return (-len(item.sources), item.before is None, -c.scores.get(c.theme or "", 0.0), -when.timestamp(),
                item.entry.title, item.entry.id or 0)

    chosen = sorted(candidates, key=rank)[:limit]
    for position, item in enumerate(chosen, start=1):
        item.top = position
        c = item.classification
        when = "developing since " + item.before.since.strftime("%d %b").lstrip("0") if item.before else "new"
        item.reason = " · ".join([_plural(len(item.sources), "source"), when, theme_names.get(c.theme, c.theme or ""),
                                  f"score {c.scores.get(c.theme, 0.0):.1f}"])
    return chosen


def pick_reading(briefing: Briefing, documents: list[tuple[Entry, Classification | None]], *, limit: int) -> list[ReadingItem]:
    """The reading-list documents most relevant to this briefing: those whose themes it covers.

    A document's relevance is the sum, over the themes it is about (primary and
    secondary) that this briefing has entries on, of its score for the theme
    times the briefing's count of entries on it. Documents the briefing lists
    itself are not repeated.
    """
    if limit <= 0:
        return []
    counts = {s.theme_id: len(s.items) for s in briefing.sections if s.theme_id}
    listed = {item.entry.id for s in briefing.sections for item in s.items}
    ranked = []
    for entry, c in documents:
        if c is None or entry.id in listed:
            continue
        shared = sorted((t for t in c.themes if t in counts), key=lambda t: -c.scores.get(t, 0.0))
        if not shared:
            continue
        relevance = sum(c.scores.get(t, 0.0) * counts[t] for t in shared)
        when = entry.published or entry.first_seen
        ranked.append((-relevance, -(when.timestamp() if when else 0), entry.title, entry, shared))
    ranked.sort(key=lambda r: r[:3])
    return [
        ReadingItem(title=entry.title, link=entry.link, source=entry.author or entry.source_name,
                    date=entry.published, themes=shared)
        for *_, entry, shared in ranked[:limit]
    ]
