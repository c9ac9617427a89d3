"""Pending entries -> a Briefing: sections in taxonomy order, items by relevance then recency."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from briefings.config import Config
from briefings.models import Briefing, BriefingItem, Classification, Entry, ReadingItem, Section, stored_id
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
) -> tuple[Briefing, list[int]]:
    """Build the briefing from classified pending entries.

    Returns the briefing and the ids of the entries it leaves out (off-topic,
    unless [briefing] include_off_topic), which it settles all the same.
    """
    settings = config.briefing
    by_theme: dict[str | None, list[BriefingItem]] = {}
    left_out: list[int] = []
    for entry, classification in pending:
        if classification.theme is None and not settings.include_off_topic:
            left_out.append(stored_id(entry.id))
            continue
        item = BriefingItem(
            entry=entry,
            classification=classification,
            excerpt=entry_excerpt(entry, settings.excerpt_sentences),
            also=[s for s in entry.sources[1:]],
        )
        by_theme.setdefault(classification.theme, []).append(item)

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
    return briefing, left_out


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
