"""Feeds: HTTP with timeouts and conditional GET (httpx), parsing by feedparser.

briefings fetches the bytes itself and hands them to ``feedparser.parse``:
feedparser's own fetching has no timeout. Nothing one feed does can stop the
others: every failure becomes a FeedResult with a reason that says what to do.
"""

from __future__ import annotations

import calendar
import hashlib
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable
from urllib.parse import urljoin, urlsplit

import feedparser
import httpx

from briefings import USER_AGENT
from briefings.config import FeedConfig, FetchSettings
from briefings.models import Entry, FeedResult
from briefings.text import plain_title

ACCEPT = "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
PERMANENT = (301, 308)
FUTURE_SLACK = timedelta(days=1)


class _TooLarge(Exception):
    pass


class _Deadline(Exception):
    pass


def fetch_all(
    feeds: Iterable[FeedConfig],
    settings: FetchSettings,
    *,
    states: dict | None = None,
    now: datetime | None = None,
    progress: Callable[[FeedResult], None] | None = None,
) -> list[FeedResult]:
    """Fetch and parse every feed, a bounded number at a time; results in the order given."""
    feeds = list(feeds)
    states = states or {}
    now = now or datetime.now(timezone.utc)
    host_limits: dict[str, threading.Semaphore] = defaultdict(lambda: threading.Semaphore(max(1, settings.per_host)))
    lock = threading.Lock()
    timeout = httpx.Timeout(settings.timeout, connect=min(settings.timeout, 10.0))
    limits = httpx.Limits(max_connections=max(1, settings.concurrency), max_keepalive_connections=max(1, settings.concurrency))
    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"}

    with httpx.Client(
        headers=headers, timeout=timeout, limits=limits, follow_redirects=True, max_redirects=settings.max_redirects
    ) as client:

        def one(feed: FeedConfig) -> FeedResult:
            state = states.get(feed.name)
            url = feed.url
            if state is not None and state["url"] and state["moved_to"]:
                url = state["url"]
            skip = _skip_reason(state, now)
            if skip:
                result = FeedResult(name=feed.name, url=url, status="skipped", error=skip)
            else:
                with lock:
                    sem = host_limits[urlsplit(url).hostname or ""]
                with sem:
                    result = fetch_one(client, feed.name, url, settings, state=state, now=now)
            if progress:
                progress(result)
            return result

        workers = max(1, min(settings.concurrency, len(feeds) or 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch") as pool:
            return list(pool.map(one, feeds))


def _skip_reason(state, now: datetime) -> str | None:
    if state is None:
        return None
    if state["disabled"]:
        return "disabled after 410 Gone: remove it, or change its URL in config.toml"
    if state["next_try"]:
        next_try = datetime.fromisoformat(state["next_try"])
        if next_try > now:
            return (
                f"backing off after {state['consecutive_failures']} failures "
                f"(last: {state['last_error']}); next try {next_try:%Y-%m-%d %H:%M} UTC"
            )
    return None


def fetch_one(
    client: httpx.Client,
    name: str,
    url: str,
    settings: FetchSettings,
    *,
    state=None,
    now: datetime | None = None,
) -> FeedResult:
    now = now or datetime.now(timezone.utc)
    started = time.monotonic()
    result = FeedResult(name=name, url=url, status="failed")
    request_headers = {}
    if state is not None and state["url"] == url:
        if state["etag"]:
            request_headers["If-None-Match"] = state["etag"]
        if state["last_modified"]:
            request_headers["If-Modified-Since"] = state["last_modified"]
    try:
        response, body = _get(client, url, request_headers, settings, started)
    except _Deadline:
        result.error = f"timed out after {settings.timeout:g} s: raise [fetch] timeout or check the URL"
    except _TooLarge:
        result.error = f"response larger than {settings.max_bytes} bytes: raise [fetch] max_bytes if the feed is right"
    except httpx.TooManyRedirects:
        result.error = f"redirect loop or more than {settings.max_redirects} redirects: check the URL in a browser"
    except httpx.TimeoutException:
        result.error = f"timed out after {settings.timeout:g} s: raise [fetch] timeout or check the URL"
    except httpx.ConnectError as exc:
        result.error = _connect_reason(url, exc)
    except httpx.DecodingError as exc:
        result.error = f"the server sent a body that does not decode ({exc}): report it to the feed's owner"
    except (httpx.HTTPError, OSError, ValueError) as exc:
        result.error = f"{type(exc).__name__}: {exc or 'connection failed'}: check the URL or try again later"
    else:
        _interpret(result, response, body, now)
    result.seconds = time.monotonic() - started
    return result


def _get(client, url, request_headers, settings, started) -> tuple[httpx.Response, bytes]:
    with client.stream("GET", url, headers=request_headers) as response:
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > settings.max_bytes:
                raise _TooLarge()
            if time.monotonic() - started > settings.timeout:
                raise _Deadline()
            chunks.append(chunk)
        return response, b"".join(chunks)


def _connect_reason(url: str, exc: Exception) -> str:
    text = str(exc)
    host = urlsplit(url).hostname
    if "Name or service not known" in text or "nodename nor servname" in text or "resolution" in text.lower() \
            or "Temporary failure" in text or "No address associated" in text:
        return f"cannot resolve host {host}: check the URL or the network"
    if "refused" in text.lower():
        return f"connection refused by {host}: the server is down or the port is wrong"
    return f"cannot connect to {host} ({text or type(exc).__name__}): check the URL or the network"


def _interpret(result: FeedResult, response: httpx.Response, body: bytes, now: datetime) -> None:
    final_url = str(response.url)
    if response.history and all(r.status_code in PERMANENT for r in response.history):
        result.new_url = final_url
    if response.status_code == 304:
        result.status = "not-modified"
        return
    if response.status_code == 410:
        result.status = "gone"
        result.error = "410 Gone: the feed was removed; it is disabled until its URL changes"
        return
    if response.status_code >= 400:
        phrase = response.reason_phrase or ""
        hint = "check the URL" if response.status_code < 500 else "the server is failing; it will be retried"
        result.error = f"HTTP {response.status_code} {phrase}".rstrip() + f": {hint}"
        return
    if not body.strip():
        result.error = "empty response: the server sent no feed"
        return
    parsed = feedparser.parse(
        body,
        response_headers={k.lower(): v for k, v in response.headers.items() if k.lower() != "content-encoding"}
        | {"content-location": final_url},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    if not parsed.get("version") and not parsed.entries:
        kind = response.headers.get("content-type", "unknown type").split(";")[0]
        why = str(parsed.get("bozo_exception") or "")[:120]
        result.error = f"not a feed ({kind}{': ' + why if why else ''}): check that the URL is the feed, not its web page"
        return
    result.status = "ok"
    result.etag = response.headers.get("etag")
    result.last_modified = response.headers.get("last-modified")
    result.title = plain_title(parsed.feed.get("title")) or None
    if parsed.get("bozo"):
        result.warning = f"feed is not well-formed, kept what parsed: {str(parsed.get('bozo_exception'))[:160]}"
    result.entries = [normalize(e, result.name, final_url, now) for e in parsed.entries]


def normalize(item, feed_name: str, base_url: str, now: datetime) -> Entry:
    """One feedparser entry -> Entry: plain title, absolute link, UTC times."""
    link = item.get("link")
    if link:
        link = urljoin(base_url, link.strip())
    guid = (item.get("id") or "").strip() or None
    contents = item.get("content") or []
    content_html = "\n".join(c.get("value", "") for c in contents if c.get("value"))
    summary_html = item.get("summary", "") or ""
    if content_html and content_html.strip() == summary_html.strip():
        summary_html = ""
    title = plain_title(item.get("title")) or plain_title(summary_html)[:90] or "(untitled)"
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
    )


def _when(struct) -> datetime | None:
    if not struct:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(struct), timezone.utc)
    except (OverflowError, ValueError, TypeError):
        return None
