"""Atom 1.0 feeds of the archive: feed.xml (one entry per briefing) and themes/<id>.xml (one per story).

Rendered from templates/feed.xml.j2. Every entry id is a urn:uuid made from
stored data (a briefing's slug and date, a story's key and theme), so a rebuild
gives the same ids and a feed reader shows nothing twice. Links are absolute
when [output] base_url says where the archive is published, else relative to
the feed's own place in the archive.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from markupsafe import Markup

from briefings.config import Config
from briefings.models import HistoryItem, StoredBriefing

MAX_BRIEFINGS = 50  # entries in feed.xml: the newest briefings
MAX_STORIES = 100  # entries in a theme's feed: its newest stories
_NAMESPACE = uuid.UUID("6f1c3f5e-3b0e-5a55-9d38-6d9a1c1c0b77")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Characters XML 1.0 does not allow anywhere, not even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _x(text: str | None) -> str:
    return _NOT_XML.sub("", str(text)) if text else ""


def _when(value: datetime | None) -> str | None:
    """RFC 3339 in UTC, as Atom wants it."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _day(value: datetime) -> str:
    return f"{value.day} {value:%B %Y}"


def stable_id(*parts: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, chr(10).join(parts))}"


class _Links:
    """Hrefs from a feed at `depth` folders below the archive's root: absolute with a base_url, else relative."""

    def __init__(self, config: Config, depth: int):
        base = config.output.base_url.strip()
        self.prefix = (base.rstrip("/") + "/") if base else "../" * depth

    def __call__(self, path: str) -> str:
        return self.prefix + path


def render_feed(config: Config, feed: dict, entries: list[dict]) -> str:
    """The Atom document for one feed (feed: id, title, subtitle, updated, self, page, author)."""
    from briefings import __version__
    from briefings.render import environment

    template = environment(config).get_template("feed.xml.j2")
    keys = ("link", "related", "related_title", "published", "author", "summary", "content")
    entries = [dict.fromkeys(keys) | {"categories": []} | e for e in entries]
    return template.render(feed=dict.fromkeys(("subtitle",)) | feed, entries=entries, version=__version__)


def _glance(names: dict[str, str], counts: dict[str, int], order: dict[str, int]) -> list[tuple[str, str, int]]:
    rows = sorted(counts.items(), key=lambda kv: order.get(kv[0], len(order)))
    return [(k, names.get(k, "Other" if k == "off-topic" else k), v) for k, v in rows]


def briefings_feed(config: Config, listed: list[StoredBriefing]) -> str:
    """feed.xml: the newest briefings, each linked to its web page, its summary and counts as content."""
    names = {t.id: t.name for t in config.themes}
    order = {t.id: i for i, t in enumerate(config.themes)}
    link = _Links(config, 0)
    entries = []
    for b in listed[:MAX_BRIEFINGS]:
        page = Path(b.html_path).name if b.html_path else f"{b.slug}.html"
        glance = [row for row in _glance(names, b.theme_counts, order) if row[0] != "off-topic"]
        when = b.created
        period = ""
        if b.period_start and b.period_end and b.period_start.date() != b.period_end.date():
            period = f", covering {_day(b.period_start)} to {_day(b.period_end)}"
        summary = (f"{b.entry_count} {'entry' if b.entry_count == 1 else 'entries'} in {len(glance)} "
                   f"{'theme' if len(glance) == 1 else 'themes'}{period}.")
        content = Markup("<p>{}</p><ul>{}</ul>").format(summary, Markup("").join(
            Markup('<li><a href="{}">{}</a>: {}</li>').format(link(f"themes/{k}.html"), _x(name), count)
            if k in names else Markup("<li>{}: {}</li>").format(_x(name), count)
            for k, name, count in glance))
        entries.append({
            "id": stable_id("briefing", b.slug, _when(when) or ""),
            "title": _x(f"{b.title} — {_day(when)}"),
            "link": link(page),
            "published": _when(when),
            "updated": _when(when),
            "summary": summary,
            "content": str(content),
            "categories": [{"id": k, "name": _x(name)} for k, name, _ in glance],
        })
    title = config.briefing.title
    feed = {
        "id": stable_id("feed", config.output.base_url.strip() or title),
        "title": _x(title),
        "subtitle": "Every briefing, newest first.",
        "updated": entries[0]["updated"] if entries else _when(_EPOCH),
        "self": link("feed.xml"),
        "page": link("index.html"),
        "author": _x(title),
    }
    return render_feed(config, feed, entries)


def theme_feeds(config: Config, history: list[HistoryItem], themes: Iterable[str]) -> dict[str, str]:
    """themes/<id>.xml for the given theme ids: each theme's newest stories across briefings."""
    from briefings.compose import entry_excerpt
    from briefings.render import safe_url, sanitize

    names = {t.id: t.name for t in config.themes}
    wanted = {t for t in themes if t in names}
    link = _Links(config, 1)
    stories: dict[str, list[dict]] = {t: [] for t in wanted}
    for row in history:
        theme = row.theme
        if theme not in stories or len(stories[theme]) >= MAX_STORIES:
            continue
        entry, classification, briefing = row.entry, row.classification, row.briefing
        page = link(f"{briefing.slug}.html") + f"#{theme}"
        published = entry.published or entry.first_seen
        tags = classification.themes if classification is not None else (theme,)
        stories[theme].append({
            "id": stable_id("story", theme, entry.key),
            "title": _x(entry.title) or "(untitled)",
            "link": safe_url(entry.link) or page,
            "related": page,
            "related_title": _x(f"{briefing.title} — {_day(briefing.created)}"),
            "published": _when(published),
            "updated": _when(entry.updated or published),
            "author": _x(entry.author or entry.source_name),
            "summary": _x(entry_excerpt(entry, config.briefing.excerpt_sentences)),
            "content": _x(str(sanitize(entry.summary_html or entry.content_html))),
            "categories": [{"id": t, "name": _x(names[t])} for t in tags if t in names],
        })
    out = {}
    for th in config.themes:
        if th.id not in stories:
            continue
        entries = stories[th.id]
        feed = {
            "id": stable_id("feed", config.output.base_url.strip() or config.briefing.title, "theme", th.id),
            "title": _x(f"{th.name}: {config.briefing.title}"),
            "subtitle": _x(th.description),
            "updated": max((e["updated"] for e in entries), default=_when(_EPOCH)),
            "self": link(f"themes/{th.id}.xml"),
            "page": link(f"themes/{th.id}.html"),
            "author": _x(config.briefing.title),
        }
        out[th.id] = render_feed(config, feed, entries)
    return out


def feed_pages(config: Config, history: list[HistoryItem], listed: list[StoredBriefing],
               themes: Iterable[str] | None = None) -> dict[str, str]:
    """The feeds, built: {"themes/<id>.xml": atom, ..., "feed.xml": atom}.

    history: every entry a briefing listed (store.briefings.history()); listed: every briefing, newest
    first (store.briefings.all()); themes: the ids whose feeds to build (None: all)."""
    every = [t.id for t in config.themes]
    built = theme_feeds(config, history, every if themes is None else themes)
    pages = {f"themes/{theme_id}.xml": text for theme_id, text in built.items()}
    pages["feed.xml"] = briefings_feed(config, listed)
    return pages
