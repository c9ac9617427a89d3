"""Feed bytes -> entries: feedparser, then one normalized Entry per item.

Runs in worker processes (the parse is the CPU-bound part of collecting), so
everything here takes and returns plain picklable values and touches no state.
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import json
import re
import zlib
from html.parser import HTMLParser
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import NamedTuple
from urllib.parse import urljoin

from briefings.models import Entry
from briefings.text import ELLIPSIS, cut_html, html_to_text, plain_title, shorten

FUTURE_SLACK = timedelta(days=1)
# Enough of an entry's HTML to find its opening words for the duplicate fingerprint:
# a short cut first (it nearly always holds them), the long one when it does not.
_FINGERPRINT_HTML = (1200, 4000)


class Caps(NamedTuple):
    """What one entry may hold, in characters ([fetch] max_title_chars, max_summary_chars, max_content_chars)."""

    title: int
    summary: int
    content: int

    @classmethod
    def of(cls, settings) -> "Caps":
        return cls(settings.max_title_chars, settings.max_summary_chars, settings.max_content_chars)


@functools.cache
def default_caps() -> Caps:
    from briefings.config import FetchSettings

    return Caps.of(FetchSettings())


@dataclass
class Parsed:
    """What the parse of one feed document gave."""

    ok: bool
    title: str | None = None
    warning: str | None = None
    reason: str | None = None  # when not ok: why this is not a feed
    error: str | None = None  # when the body itself failed (too large, corrupt, empty): the whole message
    item_hashes: bytes = b""  # a digest of every item's bytes, for the next fetch to skip the unchanged ones
    skipped: int = 0  # items left unparsed because the previous fetch had them byte for byte
    alternates: list[str] = field(default_factory=list)  # feeds a web page names (autodiscovery)
    page: bool = False  # when not ok: the body is a web page (HTML), not a broken feed
    entries: list[Entry] = field(default_factory=list)


def parse_response(body: bytes, headers: dict[str, str], url: str, feed_name: str, now: datetime,
                   max_bytes: int, known: bytes = b"", caps: Caps | None = None) -> Parsed:
    """A response body as received (Content-Encoding not yet undone) -> parse_feed's result.

    Decompressing here, in the parse worker, keeps zlib off the process that every
    download goes through. The body as received is within max_bytes already (the
    download stops there); at most max_bytes are decompressed: a small gzip that
    inflates past the cap fails the feed as a large body would.
    """
    encodings = [e.strip().lower() for e in headers.get("content-encoding", "").split(",") if e.strip()]
    mislabeled = None
    try:
        for encoding in reversed(encodings):  # the last applied is undone first
            body = _decompress(body, encoding, max_bytes)
    except TooLarge:
        return Parsed(ok=False, error=too_large(max_bytes))
    except zlib.error as exc:
        if not _looks_uncompressed(body):
            return Parsed(ok=False, error=f"the server sent a body that does not decode ({encodings[-1]}: {exc}):"
                                          " report it to the feed's owner")
        # A server that labels a plain document as compressed (it happens): read it as sent.
        mislabeled = f"the server labels the body {', '.join(encodings)} but sent it uncompressed; read as sent"
    if not body.strip():
        return Parsed(ok=False, error="empty response: the server sent no feed")
    headers = {k: v for k, v in headers.items() if k != "content-encoding"}
    parsed = parse_feed(body, headers, url, feed_name, now, known, caps)
    if mislabeled and parsed.ok:
        parsed.warning = f"{mislabeled}; {parsed.warning}" if parsed.warning else mislabeled
    return parsed


def too_large(max_bytes: int) -> str:
    return f"response larger than {max_bytes} bytes: raise [fetch] max_bytes if the feed is right"


def _looks_uncompressed(body: bytes) -> bool:
    """Plain XML or JSON (after a BOM and spaces), not compressed bytes."""
    start = body[:512].lstrip(b"\xef\xbb\xbf\xfe\xff\x00 \t\r\n")
    return start[:1] in (b"<", b"{")


class TooLarge(Exception):
    """A body past [fetch] max_bytes: as received (the download stops), or once decompressed."""


def _decompress(body: bytes, encoding: str, max_bytes: int) -> bytes:
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
    elif encoding == "deflate":
        # "deflate" is zlib-wrapped by the standard, raw deflate from some servers.
        raw = len(body) >= 2 and (body[0] & 0x0F != 8 or ((body[0] << 8) | body[1]) % 31 != 0)
        decoder = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
    else:
        return body  # identity, or an encoding we did not ask for: left as sent, as browsers do
    out = decoder.decompress(body, max_bytes + 1)
    if len(out) > max_bytes:
        raise TooLarge()
    return out


def parse_feed(body: bytes, headers: dict[str, str], url: str, feed_name: str, now: datetime,
               known: bytes = b"", caps: Caps | None = None) -> Parsed:
    """Parse one feed document. Sanitizing is left to render (nh3), so feedparser's is off.

    known: the item digests of this feed's previous fetch (whose entries are stored).
    Items whose bytes are unchanged are cut out before feedparser sees the document:
    a feed that gained five items costs the parse of five, not fifty.
    """
    feedparser = _feedparser()

    content_type = headers.get("content-type", "")
    if "json" in content_type or body.lstrip()[:1] == b"{":
        json_feed = _json_feed(body)
        if json_feed is not None:
            return _parsed(json_feed, feed_name, url, now, caps)
    body = _recode_utf16(body)
    digests, reduced = item_digests(body, known)
    skipped = 0
    if reduced is not None:
        body, skipped = reduced
        headers = headers | {"content-type": "application/xml"}  # the reduced document is UTF-8
    # No content-location: feedparser would resolve every link against it, and
    # normalize() resolves the entry link against the feed's address anyway.
    parsed = feedparser.parse(
        body,
        response_headers=headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    if not parsed.get("version") and not parsed.entries:
        kind = content_type.split(";")[0].strip() or "unknown type"
        page = is_web_page(body, kind)
        # A web page is no broken feed: the XML parser's complaint about its HTML says nothing useful.
        why = "" if page else str(parsed.get("bozo_exception") or "")[:120]
        found = discover_feeds(body, url) if b"<" in body[:2048] else []
        return Parsed(ok=False, reason=f"not a feed ({kind}{': ' + why if why else ''})", alternates=found, page=page)
    result = _parsed(parsed, feed_name, url, now, caps)
    result.item_hashes, result.skipped = digests, skipped
    return result


@functools.cache
def _feedparser():
    """feedparser, imported here (a run where every feed answers 304 never loads it), reading
    with briefings' SAX driver: expat with text buffering, a quarter faster."""
    import feedparser

    from briefings.collect import saxdriver

    saxdriver.install()
    return feedparser


def _parsed(parsed, feed_name: str, url: str, now: datetime, caps: Caps | None) -> Parsed:
    warning = None
    if parsed.get("bozo"):
        warning = f"feed is not well-formed, kept what parsed: {str(parsed.get('bozo_exception'))[:160]}"
    return Parsed(
        ok=True,
        title=plain_title(parsed["feed"].get("title")) or None,
        warning=warning,
        entries=[normalize(item, feed_name, url, now, caps) for item in parsed["entries"]],
    )


DIGEST = 12  # bytes per item digest
_ITEMS = {"item", "entry"}


def item_digests(body: bytes, known: bytes = b"") -> tuple[bytes, tuple[bytes, int] | None]:
    """(every item's digest, and the document without the items in known, or None to parse it whole).

    lxml reads the document (strict, no entities resolved, no network: ten times
    faster than feedparser); anything it cannot read is left to feedparser whole.
    Items are the RSS <item> and Atom <entry> elements at the top of the feed.
    """
    from lxml import etree

    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
        root = etree.fromstring(body, parser)
    except (etree.LxmlError, ValueError, TypeError):
        return b"", None
    containers = [root] + [child for child in root if isinstance(child.tag, str) and etree.QName(child).localname == "channel"]
    items = [el for parent in containers for el in parent
             if isinstance(el.tag, str) and etree.QName(el).localname in _ITEMS]
    digests = [hashlib.blake2b(etree.tostring(el, encoding="utf-8", with_tail=False), digest_size=DIGEST).digest()
               for el in items]
    joined = b"".join(digests)
    if not known or not items:
        return joined, None
    seen = {known[i:i + DIGEST] for i in range(0, len(known), DIGEST)}
    old = [el for el, digest in zip(items, digests) if digest in seen]
    if not old:
        return joined, None
    for el in old:
        parent = el.getparent()  # an item's container: never None
        if parent is not None:
            parent.remove(el)
    return joined, (etree.tostring(root.getroottree(), xml_declaration=True, encoding="utf-8"), len(old))


def _recode_utf16(body: bytes) -> bytes:
    """UTF-16 with neither BOM nor XML declaration (it happens): recode it to UTF-8 ourselves."""
    start = body[:4]
    if len(start) == 4 and start[0] == 0 and start[1] == 0x3C and start[2] == 0 and start[3] != 0:
        codec = "utf-16-be"
    elif len(start) == 4 and start[0] == 0x3C and start[1] == 0 and start[2] != 0 and start[3] == 0:
        codec = "utf-16-le"
    else:
        return body
    text = body.decode(codec, "replace")
    return re.sub(r"^<\?xml[^>]*\?>", '<?xml version="1.0" encoding="utf-8"?>', text, count=1).encode("utf-8")


def _json_feed(body: bytes) -> dict | None:
    """A JSON Feed (jsonfeed.org, 1.0 and 1.1) in the shape normalize() reads; None if it is not one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or "jsonfeed.org" not in str(data.get("version", "")):
        return None
    items = data.get("items")
    entries = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        authors = item.get("authors") or ([item["author"]] if isinstance(item.get("author"), dict) else [])
        author = next((a.get("name") for a in authors if isinstance(a, dict) and a.get("name")), None)
        content = item.get("content_html") or _text_as_html(item.get("content_text"))
        entries.append({
            "id": str(item.get("id") or ""),
            "link": item.get("url") or item.get("external_url"),
            "title": str(item.get("title") or ""),
            "title_detail": {"type": "text/plain"},
            "summary": str(item.get("summary") or ""),
            "content": [{"value": str(content)}] if content else [],
            "author": author,
            "published_parsed": _iso_struct(item.get("date_published")),
            "updated_parsed": _iso_struct(item.get("date_modified")),
        })
    return {"feed": {"title": data.get("title")}, "entries": entries, "bozo": False}


def _text_as_html(text) -> str:
    if not text:
        return ""
    from html import escape

    return "".join(f"<p>{escape(p)}</p>" for p in str(text).split("\n\n") if p.strip())


def _iso_struct(value):
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.utctimetuple()


_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json", "application/json",
               "application/rdf+xml")


_PAGE_START = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])",
                         re.I | re.S)


def is_web_page(body: bytes, content_type: str) -> bool:
    """Whether a body that is no feed is a web page: served as HTML, or opening as one whatever its label."""
    return content_type.lower() in ("text/html", "application/xhtml+xml") or bool(_PAGE_START.match(body[:4096]))


class _LinkFinder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag != "link":
            return
        a = {k.lower(): (v or "") for k, v in attrs}
        rel = a.get("rel", "").lower().split()
        if "alternate" in rel and a.get("type", "").lower().strip() in _FEED_TYPES and a.get("href"):
            self.found.append(a["href"].strip())


def discover_feeds(body: bytes, base_url: str) -> list[str]:
    """The http(s) feeds a web page names in <link rel="alternate">, absolute, in page order (autodiscovery).
    Any other scheme (javascript:, file:, data:, ftp:) is never suggested."""
    head = body[:200_000].decode("utf-8", "replace")
    cut = re.search(r"<body[\s>]", head, re.I)
    finder = _LinkFinder()
    try:
        finder.feed(head[: cut.start()] if cut else head)
    except Exception:  # noqa: BLE001 - a page too broken to read names no feed
        return []
    found = (urljoin(base_url, href) for href in finder.found)
    return list(dict.fromkeys(url for url in found if url.lower().startswith(("http://", "https://"))))


def normalize(item, feed_name: str, base_url: str, now: datetime, caps: Caps | None = None) -> Entry:
    """One feedparser entry -> Entry: plain title, absolute link, UTC times, duplicate fingerprint.

    Whatever the parser made of the document (an entity expansion can turn 25 KB into
    50 MB), the entry holds at most caps: a longer title is cut on a word, a longer
    summary or content is cut where its markup allows, ends with an ellipsis and is
    flagged "truncated". Its key is computed from all of it, so a cap never changes it.
    """
    from briefings.identity import canonical_link, fingerprint

    link = item.get("link")
    if link:
        link = urljoin(base_url, link.strip())
    guid = (item.get("id") or "").strip() or None
    contents = item.get("content") or []
    content_html = "\n".join(c.get("value", "") for c in contents if c.get("value"))
    summary_html = item.get("summary", "") or ""
    if content_html and content_html.strip() == summary_html.strip():
        summary_html = ""
    caps = caps or default_caps()
    whole = (summary_html, content_html)
    summary_html, summary_cut = _cap_html(summary_html, caps.summary)
    content_html, content_cut = _cap_html(content_html, caps.content)
    title = _title(item) or plain_title(summary_html or content_html)[:90] or "(untitled)"
    flags: list[str] = ["truncated"] if summary_cut or content_cut else []
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
        key = f"hash:{feed_name}:{_digest(title, *whole)}"
    title = shorten(title, caps.title)
    opening, opening_words = _opening(summary_html or content_html)
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
        fingerprint=fingerprint(title, opening, opening_words),
        canonical=canonical_link(link) or "",
    )


def _cap_html(markup: str, limit: int) -> tuple[str, bool]:
    """(markup, False), or when longer than limit its opening cut where the markup allows,
    ending with an ellipsis, and True."""
    if len(markup) <= limit:
        return markup, False
    return cut_html(markup, max(limit - len(ELLIPSIS), 0)) + ELLIPSIS, True


def _digest(title: str, summary_html: str, content_html: str) -> str:
    """The hash key's digest of an entry's text, encoded a block at a time (an entry can be 50 MB)."""
    digest = hashlib.sha256()
    for part in (title, "\n", summary_html, "\n", content_html):
        for i in range(0, len(part), 1 << 20):
            digest.update(part[i:i + (1 << 20)].encode())
    return digest.hexdigest()[:24]


def _opening(markup: str) -> tuple[str, list[str]]:
    """The text of an entry's first words, enough for its fingerprint, without converting all of
    it; and its first words (as many as a fingerprint takes)."""
    from briefings.identity import FINGERPRINT_WORDS, first_words

    for size in _FINGERPRINT_HTML:
        chunk = markup[:size]
        if len(markup) > size:
            cut = chunk.rfind("<")
            if cut > chunk.rfind(">"):
                chunk = chunk[:cut]  # not half a tag
        text = html_to_text(chunk)
        words = first_words(text, FINGERPRINT_WORDS)
        if len(markup) <= size or len(words) == FINGERPRINT_WORDS:
            return text, words
    return text, words


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
