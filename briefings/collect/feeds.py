"""Feeds: HTTP with timeouts and conditional GET (httpx), parsing by feedparser.

briefings fetches the bytes itself and hands them to ``feedparser.parse``:
feedparser's own fetching has no timeout. Nothing one feed does can stop the
others: every failure becomes a FeedResult with a reason that says what to do.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import queue
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable, Generator, Iterable
from urllib.parse import urlsplit

import httpx

from briefings import USER_AGENT
from briefings.collect.parse import Caps, Parsed, TooLarge, parse_response, too_large
from briefings.config import FeedConfig, FetchSettings
from briefings.models import FeedResult

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

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
) -> Generator[list[FeedResult], None, None]:
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
                if _into_private(urlsplit(feed.url).hostname, urlsplit(url).hostname):
                    url = feed.url  # a move into the private network, saved before such moves were refused
            skip = _skip_reason(state, now)
            if skip:
                done.put(FeedResult(name=feed.name, url=url, status="skipped", error=skip))
                return
            with lock:
                sem = host_limits[urlsplit(url).hostname or ""]
            with sem:
                if stop is not None and stop():  # asked while this feed waited for its host's turn
                    done.put(FeedResult(name=feed.name, url=feed.url, status="skipped", error="not fetched: stopping"))
                    return
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
    """The HTTP client every fetch goes through: timeouts, redirects, our User-Agent, gzip, and the
    proxies of the environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY, in either case)."""
    connections = max(1, connections)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.Client(
        headers={"User-Agent": USER_AGENT, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"},
        timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, 10.0)),
        follow_redirects=True,
        max_redirects=settings.max_redirects,
        transport=_Transports(limits),
        mounts=_proxy_mounts(limits),
        event_hooks={"response": [_guard_redirect]},
    )


class _Transports(httpx.BaseTransport):
    """One connection pool for http:// and one for https://, made on the first https:// request.

    Making an HTTPS pool loads the system's CA certificates (20 to 40 ms of CPU), which
    a run whose feeds are all plain HTTP (an intranet, a mirror, a test) never needs.
    Requests for a proxy do not come here: the client routes them to their _ProxyTransport.
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


class _ProxyFailed(Exception):
    """The proxy, not the feed: its reason names the proxy and the variable that set it."""


def _proxy_mounts(limits: httpx.Limits) -> dict[str, httpx.BaseTransport | None]:
    """The environment's proxies as httpx mounts, read as httpx reads them (a custom transport
    turns httpx's own reading off): a URL pattern to a _ProxyTransport, or to None (the direct
    _Transports) for the hosts in NO_PROXY."""
    from httpx._utils import get_environment_proxies

    mounts: dict[str, httpx.BaseTransport | None] = {}
    for pattern, url in get_environment_proxies().items():
        mounts[pattern] = None if url is None else _ProxyTransport(url, _proxy_variable(pattern), limits)
    return mounts


def _proxy_variable(pattern: str) -> str:
    name = pattern.split("://")[0] + "_proxy"
    return name if os.environ.get(name) else name.upper()  # lower case wins, as for urllib


class _ProxyTransport(httpx.BaseTransport):
    """Every request through one proxy; its pool is made on the first request, so that a proxy no
    feed uses costs nothing (a pool loads the CA certificates). Its failures name the proxy."""

    def __init__(self, url: str, variable: str, limits: httpx.Limits):
        self.url, self.variable, self.limits = url, variable, limits
        parts = urlsplit(url)
        self.shown = url if parts.password is None else url.replace(parts.netloc, parts.netloc.rpartition("@")[2], 1)
        self.lock = threading.Lock()
        self.transport: httpx.HTTPTransport | None = None

    def _make(self) -> httpx.HTTPTransport:
        where = f"the proxy {self.shown} in {self.variable}"
        if urlsplit(self.url).scheme.lower() not in ("http", "https", "socks5", "socks5h"):
            raise _ProxyFailed(f"{where} is not one briefings can use: give an http://, https:// or socks5:// URL")
        try:
            return httpx.HTTPTransport(proxy=httpx.Proxy(self.url), limits=self.limits)
        except ImportError:
            raise _ProxyFailed(f"{where} is a SOCKS proxy, which needs the socksio package:"
                               " pip install 'httpx[socks]'") from None
        except ValueError as exc:
            raise _ProxyFailed(f"{where} is not a valid URL ({exc}): correct {self.variable}") from None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            if self.transport is None:
                self.transport = self._make()
        try:
            response = self.transport.handle_request(request)
        except httpx.ProxyError as exc:
            raise _ProxyFailed(f"the proxy {self.shown} could not connect to {request.url.host} ({exc}):"
                               " check the URL, or ask whoever runs the proxy") from exc
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            text = str(exc)
            if "SSL" in text or "certificate" in text.lower():
                raise  # the feed's own TLS, through the tunnel
            if isinstance(exc, httpx.ConnectTimeout):
                why = "no answer"
            elif "refused" in text.lower():
                why = "connection refused"
            else:
                why = text or type(exc).__name__
            raise _ProxyFailed(f"cannot reach the proxy {self.shown} ({why}): check {self.variable},"
                               " or list this host in NO_PROXY") from exc
        response.extensions["briefings.proxy"] = self.shown  # an HTTP error then names it
        return response

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def resolve(host: str) -> list[str]:
    """The addresses this machine resolves host to, [] when it does not.

    Only the redirect guard asks (the connection resolves on its own), and only for a
    redirect. A module attribute on purpose: tests replace it with their own mapping.
    """
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _RedirectRefused(Exception):
    """A redirect from a public address into the private network."""


def _guard_redirect(response: httpx.Response) -> None:
    """Response hook: refuse a redirect that leads from a public address to a non-public one.
    Costs nothing but this test on a response that is not a redirect."""
    if not response.has_redirect_location:
        return
    try:
        target = urlsplit(str(response.url.join(response.headers["Location"]))).hostname
    except (ValueError, httpx.InvalidURL):
        return  # httpx refuses it on its own
    why = _into_private(response.url.host, target)
    if why:
        raise _RedirectRefused(f"redirect from a public address to a private one ({why}) refused:"
                               " a feed on the internet may not lead into this network; check the URL")


def _into_private(origin: str | None, target: str | None) -> str | None:
    """What makes origin -> target a step from a public address into the private network
    (e.g. "169.254.169.254, link-local"), or None when it is not one.

    The target counts as private when any of its addresses is not public; the origin as public
    when any of its addresses is, or when it does not resolve here (only a proxy reaches it).
    An intranet feed (a private origin) may lead anywhere.
    """
    if not target:
        return None
    why = None
    for address, literal in _addresses(target):
        kind = _kind(address)
        if kind:
            why = f"{target}, {kind}" if literal else f"{target} at {address}, {kind}"
            break
    if why is None or not origin:
        return None
    found = _addresses(origin)
    if found and all(_kind(address) for address, _ in found):
        return None
    return why


def _addresses(host: str) -> list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, bool]]:
    """The host's addresses, each with whether the host was that address written out."""
    try:
        return [(ipaddress.ip_address(host.strip("[]")), True)]
    except ValueError:
        pass
    found = []
    for text in resolve(host):
        try:
            found.append((ipaddress.ip_address(text.split("%")[0]), False))
        except ValueError:
            continue
    return found


def _kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """None for a public address; else loopback, link-local, private or reserved."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "reserved"
    if address.is_global:
        return None
    return "private" if address.is_private else "reserved"


class _Parser:
    """Parses feed bodies in worker processes, or in the calling thread when workers <= 1."""

    def __init__(self, workers: int):
        self.workers = workers if workers > 0 else (os.cpu_count() or 1)
        self.pool: ProcessPoolExecutor | None = None
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

    def _pool(self) -> ProcessPoolExecutor | None:
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
        elif parsed.page:
            result.error = f"{parsed.reason}: this is a web page and names no feed: give the feed's URL"
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
    except (_ProxyFailed, _RedirectRefused) as exc:
        result.error = str(exc)
    except httpx.TooManyRedirects:
        result.error = f"redirect loop or more than {settings.max_redirects} redirects: check the URL in a browser"
    except httpx.TimeoutException:
        result.error = f"timed out after {settings.timeout:g} s: raise [fetch] timeout or check the URL"
    except httpx.ConnectError as exc:
        result.error = _connect_reason(url, exc)
    except httpx.InvalidURL as exc:  # not an HTTPError; a redirect's Location can be one
        result.error = f"invalid URL ({exc}): check the URL"
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
        proxy = response.extensions.get("briefings.proxy")
        via = f" (through the proxy {proxy})" if proxy else ""
        result.error = f"HTTP {response.status_code} {phrase}".rstrip() + f"{via}: {hint}"
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
    page = parse_args[2] if parse_args is not None else url  # where the page was, after redirects
    if parse_args is not None:
        try:
            _apply(result, parse_response(*parse_args))
        except Exception as exc:
            result.status, result.error = "failed", f"the parser failed on this feed ({exc!r})"
    if result.status == "failed" and result.alternates and discover:
        why = _into_private(urlsplit(page).hostname, urlsplit(result.alternates[0]).hostname)
        if why:
            result.error = (f"the page names its feed at {result.alternates[0]}, a private address ({why}): refused,"
                            " a page on the internet may not lead into this network")
            return result
        found = probe(result.alternates[0], settings, name=name, discover=False)
        if found.status == "ok":
            found.url = found.new_url or found.url
            found.discovered_from = url
            return found
    return result
