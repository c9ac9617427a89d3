"""Feeds: HTTP with timeouts and conditional GET (httpx), parsing by feedparser.

briefings fetches the bytes itself and hands them to ``feedparser.parse``:
feedparser's own fetching has no timeout. Nothing one feed does can stop the
others: every failure becomes a FeedResult with a reason that says what to do.
"""

from __future__ import annotations

import os
import sys
import queue
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator
from urllib.parse import urlsplit

import httpx

from briefings import USER_AGENT
from briefings.collect.parse import Caps, Parsed, TooLarge, parse_response, too_large
from briefings.config import FeedConfig, FetchSettings
from briefings.models import FeedResult

ACCEPT = "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
PERMANENT = (301, 308)


class _Deadline(Exception):
    pass


def fetch_all(
    feeds: Iterable[FeedConfig],
    settings: FetchSettings,
    *,
    states: dict | None = None,
    now: datetime | None = None,
    stop: Callable[[], bool] | None = None,
) -> Iterator[list[FeedResult]]:
    """Fetch and parse every feed; yield the results as they are ready (completion order), in
    batches of whatever is ready at once.

    Downloads run in a bounded thread pool, at most ``per_host`` at once per
    host. Parsing is CPU-bound, so with four feeds or more it runs in worker
    processes (one per core): forked at the start on Linux (cheap, before any
    thread exists; the parser is imported only when a feed needs it), else
    started from a fork server when the first body arrives.
    """
    feeds = list(feeds)
    states = states or {}
    now = now or datetime.now(timezone.utc)
    host_limits: dict[str, threading.Semaphore] = defaultdict(lambda: threading.Semaphore(max(1, settings.per_host)))
    lock = threading.Lock()
    done: queue.Queue[FeedResult] = queue.Queue()
    parser = _Parser(settings.workers if len(feeds) >= 4 else 1)
    parser.start_early()  # before any thread of ours exists

    def one(client: httpx.Client, feed: FeedConfig) -> None:
        if stop is not None and stop():
            done.put(FeedResult(name=feed.name, url=feed.url, status="skipped", error="not fetched: stopping"))
            return
        try:
            state = states.get(feed.name)
            url = feed.url
            if state is not None and state.url and state.moved_to:
                url = state.url
            skip = _skip_reason(state, now)
            if skip:
                done.put(FeedResult(name=feed.name, url=url, status="skipped", error=skip))
                return
            with lock:
                sem = host_limits[urlsplit(url).hostname or ""]
            with sem:
                result, parse_args = fetch_one(client, feed.name, url, settings, state=state, now=now)
            if parse_args is None:
                done.put(result)
            else:
                parser.submit(result, parse_args, done.put)
        except Exception as exc:  # a bug must cost one feed, never the run
            done.put(FeedResult(name=feed.name, url=feed.url, status="failed", error=f"internal error: {exc!r}"))

    try:
        with _client(settings, settings.concurrency) as client:
            workers = max(1, min(settings.concurrency, len(feeds) or 1))
            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch")
            try:
                for feed in feeds:
                    pool.submit(one, client, feed)
                left = len(feeds)
                while left:
                    batch = [done.get()]
                    while len(batch) < left:  # and whatever else is ready: stored in one transaction
                        try:
                            batch.append(done.get_nowait())
                        except queue.Empty:
                            break
                    left -= len(batch)
                    yield batch
            finally:
                # Closed early (a stop request): feeds not started are dropped; those in
                # flight end within their timeout.
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        parser.close()


def _client(settings: FetchSettings, connections: int = 1) -> httpx.Client:
    """The HTTP client every fetch goes through: timeouts, redirects, our User-Agent, gzip."""
    connections = max(1, connections)
    return httpx.Client(
        headers={"User-Agent": USER_AGENT, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"},
        timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, 10.0)),
        follow_redirects=True,
        max_redirects=settings.max_redirects,
        transport=_Transports(httpx.Limits(max_connections=connections, max_keepalive_connections=connections)),
    )


class _Transports(httpx.BaseTransport):
    """One connection pool for http:// and one for https://, made on the first https:// request.

    Making an HTTPS pool loads the system's CA certificates (20 to 40 ms of CPU), which
    a run whose feeds are all plain HTTP (an intranet, a mirror, a test) never needs.
    Proxies from the environment are unaffected: the client routes to them before this.
    """

    def __init__(self, limits: httpx.Limits):
        import ssl

        self.limits = limits
        self.lock = threading.Lock()
        # Never does TLS (http:// only). Should it ever, a context that trusts no one fails closed.
        self.plain = httpx.HTTPTransport(limits=limits, verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
        self.tls: httpx.HTTPTransport | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "http":
            return self.plain.handle_request(request)
        with self.lock:
            if self.tls is None:
                self.tls = httpx.HTTPTransport(limits=self.limits)
        return self.tls.handle_request(request)

    def close(self) -> None:
        self.plain.close()
        if self.tls is not None:
            self.tls.close()


class _Parser:
    """Parses feed bodies in worker processes, or in the calling thread when workers <= 1."""

    def __init__(self, workers: int):
        self.workers = workers if workers > 0 else (os.cpu_count() or 1)
        self.pool = None
        self.lock = threading.Lock()
        # Bodies waiting for a worker are held in memory: when downloads outrun parsing, the
        # fetch threads wait here instead of piling up every feed at once.
        self.slots = threading.BoundedSemaphore(2 * self.workers + 2)

    def start_early(self) -> None:
        """On Linux, fork the workers now, while this process has no other thread: a fork costs
        milliseconds (a fresh interpreter, a tenth of a second), and the workers load the parser
        while the first feeds download. Elsewhere they start when the first body arrives."""
        if self.workers <= 1 or not sys.platform.startswith("linux") or threading.active_count() > 1:
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with self.lock:
            self.pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("fork"),
                                            initializer=_worker_start, initargs=(os.getpid(),))
            self.pool.submit(int)  # a first task makes the pool fork its workers, now

    def _pool(self):
        with self.lock:
            if self.pool is None and self.workers > 1:
                import multiprocessing  # here: a run where every feed answers 304 starts no workers
                from concurrent.futures import ProcessPoolExecutor

                # forkserver: the workers do not inherit this process's threads and locks.
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(["briefings.collect.parse", "feedparser", "lxml.etree"])
                self.pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=context, initializer=_worker_start,
                                                initargs=(None,))
            return self.pool

    def submit(self, result: FeedResult, args: tuple, deliver: Callable[[FeedResult], None]) -> None:
        started = time.monotonic()
        pool = self._pool()
        if pool is not None:
            self.slots.acquire()
            try:
                future = pool.submit(parse_response, *args)
            except RuntimeError:  # BrokenProcessPool is one
                self.slots.release()
            else:
                def finished(f):
                    self.slots.release()
                    try:
                        _apply(result, f.result())
                    except BaseException as exc:  # CancelledError too, when a stop closed the pool
                        result.status, result.error = "failed", f"the parser failed on this feed ({exc!r})"
                    result.seconds += time.monotonic() - started
                    deliver(result)

                future.add_done_callback(finished)
                return
        try:
            _apply(result, parse_response(*args))
        except Exception as exc:
            result.status, result.error = "failed", f"the parser failed on this feed ({exc!r})"
        result.seconds += time.monotonic() - started
        deliver(result)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _worker_start(parent_pid: int | None) -> None:
    """A parse worker dies with the process that started it, however that one ends (its locks were
    closed at the fork: see briefings.lock), and leaves Ctrl-C, SIGHUP and SIGTERM to that process,
    which stops between two feeds and then ends the workers itself. (A signal sent to the whole
    group, as systemd and a terminal do, would otherwise kill a worker mid-parse and fail its feed.)"""
    import signal

    from briefings.signals import die_with_parent

    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    die_with_parent(parent_pid)


def _apply(result: FeedResult, parsed: Parsed) -> None:
    if parsed.error:  # the body itself: too large once decompressed, corrupt, or empty
        result.status, result.error = "failed", parsed.error
        result.etag = result.last_modified = None
        return
    if not parsed.ok:
        result.status = "failed"
        result.alternates = parsed.alternates
        if parsed.alternates:
            result.error = (f"{parsed.reason}: this is a web page; it names its feed at {parsed.alternates[0]}:"
                            " put that URL in config.toml")
        else:
            result.error = f"{parsed.reason}: check that the URL is the feed, not its web page"
        result.etag = result.last_modified = None
        return
    result.status = "ok"
    result.item_hashes = parsed.item_hashes
    result.skipped = parsed.skipped
    result.title = parsed.title
    result.warning = parsed.warning
    result.entries = parsed.entries


def _skip_reason(state, now: datetime) -> str | None:
    if state is None:
        return None
    if state.disabled:
        return "disabled after 410 Gone: remove it, or change its URL in config.toml"
    if state.next_try:
        next_try = state.next_try
        if next_try > now:
            return (
                f"backing off after {state.consecutive_failures} failures "
                f"(last: {state.last_error}); next try {next_try:%Y-%m-%d %H:%M} UTC"
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
) -> tuple[FeedResult, tuple | None]:
    """Download one feed. Returns its result and, when there is a body to parse, the parse_feed arguments."""
    now = now or datetime.now(timezone.utc)
    parse_args = None
    started = time.monotonic()
    result = FeedResult(name=name, url=url, status="failed")
    request_headers = {}
    if state is not None and state.url == url:
        if state.etag:
            request_headers["If-None-Match"] = state.etag
        if state.last_modified:
            request_headers["If-Modified-Since"] = state.last_modified
    try:
        response, body = _get(client, url, request_headers, settings, started)
    except _Deadline:
        result.error = f"timed out after {settings.timeout:g} s: raise [fetch] timeout or check the URL"
    except TooLarge:
        result.error = too_large(settings.max_bytes)
    except httpx.TooManyRedirects:
        result.error = f"redirect loop or more than {settings.max_redirects} redirects: check the URL in a browser"
    except httpx.TimeoutException:
        result.error = f"timed out after {settings.timeout:g} s: raise [fetch] timeout or check the URL"
    except httpx.ConnectError as exc:
        result.error = _connect_reason(url, exc)
    except (httpx.HTTPError, OSError, ValueError) as exc:
        result.error = f"{type(exc).__name__}: {exc or 'connection failed'}: check the URL or try again later"
    else:
        parse_args = _interpret(result, response, body, now, settings.max_bytes)
        if parse_args is not None:
            known = state is not None and state.url == url and state.item_hashes
            parse_args = (*parse_args, bytes(known or b""), Caps.of(settings))
    result.seconds = time.monotonic() - started
    return result, parse_args


def _get(client, url, request_headers, settings, started) -> tuple[httpx.Response, bytes]:
    """The body as sent (gzip stays gzip): the parse worker decompresses it, so this process,
    which every download goes through, neither spends its time on zlib nor pipes the
    uncompressed bytes to the worker. The cap here bounds what is received; the worker
    bounds what it decompresses to."""
    with client.stream("GET", url, headers=request_headers) as response:
        chunks, size = [], 0
        for chunk in response.iter_raw():
            size += len(chunk)
            if size > settings.max_bytes:
                raise TooLarge()
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
    if "CERTIFICATE_VERIFY_FAILED" in text:
        why = text.split("certificate verify failed:")[-1].split("(_ssl")[0].strip(" :") or "not trusted"
        return (f"the TLS certificate of {host} is not trusted ({why}): check the URL; a feed behind a"
                " private CA needs that CA in SSL_CERT_FILE")
    return f"cannot connect to {host} ({text or type(exc).__name__}): check the URL or the network"


def _interpret(result: FeedResult, response: httpx.Response, body: bytes, now: datetime, max_bytes: int) -> tuple | None:
    """Status, validators and redirects from the response; the parse_feed arguments when there is a feed to parse."""
    final_url = str(response.url)
    if response.history and all(r.status_code in PERMANENT for r in response.history):
        result.new_url = final_url
    if response.status_code == 304:
        result.status = "not-modified"
        return None
    if response.status_code == 410:
        result.status = "gone"
        result.error = "410 Gone: the feed was removed; it is disabled until its URL changes"
        return None
    if response.status_code >= 400:
        phrase = response.reason_phrase or ""
        hint = "check the URL" if response.status_code < 500 else "the server is failing; it will be retried"
        result.error = f"HTTP {response.status_code} {phrase}".rstrip() + f": {hint}"
        return None
    if not body.strip():
        result.error = "empty response: the server sent no feed"
        return None
    result.etag = response.headers.get("etag")
    result.last_modified = response.headers.get("last-modified")
    headers = {k.lower(): v for k, v in response.headers.items()}
    return (body, headers, final_url, result.name, now, max_bytes)


def probe(url: str, settings: FetchSettings, *, name: str = "new feed", discover: bool = True) -> FeedResult:
    """Fetch and parse one feed now, unconditionally: used to validate a feed before it is added.

    Given a web page that names its feed (<link rel="alternate">), probes that feed
    instead, as feed readers do; the result's url is then the feed's.
    """
    with _client(settings) as client:
        result, parse_args = fetch_one(client, name, url, settings)
    if parse_args is not None:
        try:
            _apply(result, parse_response(*parse_args))
        except Exception as exc:
            result.status, result.error = "failed", f"the parser failed on this feed ({exc!r})"
    if result.status == "failed" and result.alternates and discover:
        found = probe(result.alternates[0], settings, name=name, discover=False)
        if found.status == "ok":
            found.url = found.new_url or found.url
            found.discovered_from = url
            return found
    return result
