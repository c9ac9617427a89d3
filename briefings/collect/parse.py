"""Feed bytes -> entries: feedparser, then one normalized Entry per item.

Runs in worker processes (the parse is the CPU-bound part of collecting), so
everything here takes and returns plain picklable values and touches no state.
"""

from __future__ import annotations

import calendar
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urljoin

from briefings.models import Entry
from briefings.text import html_to_text, plain_title

FUTURE_SLACK = timedelta(days=1)
# Enough of an entry's HTML to find its opening words for the duplicate fingerprint.
_FINGERPRINT_HTML = 4000


@dataclass
class Parsed:
    """What the parse of one feed document gave."""

    ok: bool
    title: str | None = None
    warning: str | None = None
    reason: str | None = None  # when not ok: why this is not a feed
    entries: list[Entry] = field(default_factory=list)


def parse_feed(body: bytes, headers: dict[str, str], url: str, feed_name: str, now: datetime) -> Parsed:
    """Parse one feed document. Sanitizing is left to render (nh3), so feedparser's is off."""
    import feedparser  # here, so a run where every feed answers 304 never loads it

    parsed = feedparser.parse(
        body,
        response_headers=headers | {"content-location": url},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    if not parsed.get("version") and not parsed.entries:
        kind = headers.get("content-type", "unknown type").split(";")[0]
        why = str(parsed.get("bozo_exception") or "")[:120]
        return Parsed(ok=False, reason=f"not a feed ({kind}{': ' + why if why else ''})")
    warning = None
    if parsed.get("bozo"):
        warning = f"feed is not well-formed, kept what parsed: {str(parsed.get('bozo_exception'))[:160]}"
    return Parsed(
        ok=True,
        title=plain_title(parsed.feed.get("title")) or None,
        warning=warning,
        entries=[normalize(item, feed_name, url, now) for item in parsed.entries],
    )


def normalize(item, feed_name: str, base_url: str, now: datetime) -> Entry:
    """One feedparser entry -> Entry: plain title, absolute link, UTC times, duplicate fingerprint."""
    from briefings.store import fingerprint

    link = item.get("link")
    if link:
        link = urljoin(base_url, link.strip())
    guid = (item.get("id") or "").strip() or None
    contents = item.get("content") or []
    content_html = "\n".join(c.get("value", "") for c in contents if c.get("value"))
    summary_html = item.get("summary", "") or ""
    if content_html and content_html.strip() == summary_html.strip():
        summary_html = ""
    title = _title(item) or plain_title(summary_html)[:90] or "(untitled)"
    flags: list[str] = []
    # dict.get: feedparser's own get() maps a missing updated_parsed to published_parsed, with a warning.
    updated = _when(dict.get(item, "updated_parsed"))
    published = _when(dict.get(item, "published_parsed")) or updated
    if published and published > now + FUTURE_SLACK:
        published, flags = now, flags + ["future-date"]
    if updated and updated > now + FUTURE_SLACK:
        updated = now
    if guid:
        key = f"guid:{guid}" if guid.startswith(("http://", "https://", "urn:", "tag:")) else f"guid:{feed_name}:{guid}"
    elif link:
        key = f"link:{link}"
    else:
        digest = hashlib.sha256(f"{title}\n{summary_html}\n{content_html}".encode()).hexdigest()[:24]
        key = f"hash:{feed_name}:{digest}"
    opening = html_to_text((summary_html or content_html)[:_FINGERPRINT_HTML])
    return Entry(
        key=key,
        source_kind="feed",
        source_name=feed_name,
        title=title,
        link=link,
        guid=guid,
        author=plain_title(item.get("author")) or None,
        published=published,
        updated=updated,
        summary_html=summary_html,
        content_html=content_html,
        flags=tuple(flags),
        fingerprint=fingerprint(title, opening),
    )


def _title(item) -> str:
    """Plain text: a text/plain title is already decoded (its "<" is a character); an HTML one is stripped."""
    detail = item.get("title_detail") or {}
    if detail.get("type") == "text/plain":
        return " ".join((item.get("title") or "").split())
    return plain_title(item.get("title"))


def _when(struct) -> datetime | None:
    if not struct:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(struct), timezone.utc)
    except (OverflowError, ValueError, TypeError):
        return None
