"""The identity of an entry: when two items are the same story.

The canonical link (the link without the differences that do not change the
story) and the fingerprint (the normalized title and opening words). The parse
workers compute both at collect; the store computes them for entries that come
without (the reading list), and uses them to store a story carried by two
sources once.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_TRACKING = re.compile(r"^(utm_|fbclid$|gclid$|mc_cid$|mc_eid$|ref$|ref_src$)")

WORD = re.compile(r"\w+")
FINGERPRINT_WORDS = 60


def canonical_link(link: str | None) -> str | None:
    """A link with the differences that do not change the story removed."""
    if not link:
        return None
    parts = urlsplit(link.strip())
    if parts.scheme not in ("http", "https"):
        return link.strip()
    host = parts.hostname or ""
    if host.startswith("www."):
        host = host[4:]
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query) if not _TRACKING.match(k)))
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(("https", host, path, query, ""))


def first_words(text: str, count: int) -> list[str]:
    """The first ``count`` words of text, reading no further into it than they need."""
    scan = 16 * count
    while True:
        # As if the text ended at `scan`: only the last word found can be cut short, so
        # with more than `count` found, the first `count` are whole.
        words = WORD.findall(text, 0, scan)
        if len(words) > count or scan >= len(text):
            return words[:count]
        scan *= 4


def fingerprint(title: str, text: str, text_words: list[str] | None = None) -> str | None:
    """Same story, other wording of the markup: the normalized title and opening words.

    text_words: first_words(text, FINGERPRINT_WORDS), when the caller has them. For ASCII
    text they are reused (lowercasing ASCII moves no word boundary); else text is read again.
    """
    if text_words is not None and title.isascii() and text.isascii():
        words = (first_words(title, FINGERPRINT_WORDS) + text_words)[:FINGERPRINT_WORDS]
        joined = " ".join(words).lower()
    else:
        words = first_words(f"{title} {text}".lower(), FINGERPRINT_WORDS)
        joined = " ".join(words)
    if len(words) < 6:
        return None
    return hashlib.sha1(joined.encode()).hexdigest()
