"""The web application: the archive as it is on disk, a search page, and one-click unsubscribe.

Starlette, run by uvicorn (see cli/serve.py). Everything it answers is
server-rendered HTML under a strict Content-Security-Policy (no script at all),
so it works with scripts disabled. What it refuses: an unknown path or a file
outside the archive (404, the same page whatever the reason), a method other
than GET, HEAD or POST (405), a body over MAX_BODY bytes (413) and a URL over
MAX_URL characters (414). A fault is logged with its traceback; the browser gets
a plain page saying the server failed.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from briefings import __version__, search
from briefings.search import Hit
from briefings.config import Config
from briefings.errors import BriefingsError
from briefings.serve import tokens

log = logging.getLogger("briefings.serve")

MAX_BODY = 16 * 1024  # an unsubscribe POST is 26 bytes; nothing here takes an upload
MAX_URL = 16 * 1024  # a 10 KB query reaches the search page, which says what is wrong with it
MAX_RESULTS = 100  # results per search page
SOURCES_TTL = 300.0  # seconds the search form's list of sources is kept
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; script-src 'none'; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
# The files of the archive that are served, by suffix; anything else (the .eml copies of messages,
# temporary files, whatever else is in the folder) is not.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".xml": "application/atom+xml; charset=utf-8",
}
_TOKEN_PATH = re.compile(r"^(/unsubscribe/).+")


def _page(title: str, message: str) -> str:
    from markupsafe import escape

    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{escape(title)}</title></head><body>'
            f"<h1>{escape(title)}</h1><p>{escape(message)}</p><p><a href=\"/\">The archive</a></p></body></html>")


class Guard:
    """Security headers on every answer, oversized and odd requests refused, one log line per request."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answer = {"status": 500, "bytes": 0}

        async def send_guarded(message):
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                message["headers"] = [h for h in message.get("headers", []) if h[0].lower() not in dict(HEADERS)]
                message["headers"] += HEADERS
            elif message["type"] == "http.response.body":
                answer["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            refusal = self._refuse(scope)
            if refusal is not None:
                await refusal(scope, receive, send_guarded)
                return
            await self.app(scope, self._bounded(receive), send_guarded)
        finally:
            self._log(scope, answer, started)

    @staticmethod
    def _refuse(scope) -> Response | None:
        if scope["method"] not in ("GET", "HEAD", "POST"):
            return HTMLResponse(_page("Method not allowed", "Only GET, HEAD and POST are answered here."), 405,
                                headers={"Allow": "GET, HEAD, POST"})
        if len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") > MAX_URL:
            return HTMLResponse(_page("Address too long", f"At most {MAX_URL} characters are read."), 414)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return HTMLResponse(_page("Request too large", f"At most {MAX_BODY} bytes are read."), 413)
        return None

    @staticmethod
    def _bounded(receive):
        """receive, raising 413 once a body without a Content-Length passes MAX_BODY."""
        seen = 0

        async def bounded():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_BODY:
                    raise HTTPException(413, "request too large")
            return message

        return bounded

    @staticmethod
    def _log(scope, answer, started) -> None:
        path = _TOKEN_PATH.sub(r"\1…", scope.get("path", ""))  # an unsubscribe token names its recipient
        query = (scope.get("query_string") or b"").decode("latin-1")
        client = scope.get("client") or ("-", 0)
        log.info('%s "%s %s%s" %d %d %.1fms', client[0], scope["method"], path, f"?{query[:200]}" if query else "",
                 answer["status"], answer["bytes"], (time.perf_counter() - started) * 1000)


class Site:
    """The handlers, over one config: the archive folder, the store, the templates."""

    def __init__(self, config: Config):
        from briefings.render import environment

        self.config = config
        self.root = config.output.dir.resolve()
        self.env = environment(config)
        self.local = threading.local()
        self.title = config.briefing.title
        self.secret = tokens.secret(config)
        self.themes = {t.id: t.name for t in config.themes}
        self.source_names: tuple[float, list[str]] = (-SOURCES_TTL - 1, [])

    # -- the store, one connection per worker thread --------------------------------------

    def store(self):
        from briefings.store import Store

        store = getattr(self.local, "store", None)
        if store is None:
            store = self.local.store = Store.open(self.config.state)
        return store

    # -- the archive ------------------------------------------------------------------------

    def file(self, request: Request) -> Response:
        relative = request.path_params.get("path", "")
        target = self._resolve(relative)
        if target is None:
            raise HTTPException(404)
        return FileResponse(target, media_type=MEDIA_TYPES[target.suffix], headers={"Cache-Control": "no-cache"})

    def _resolve(self, relative: str) -> Path | None:
        """The archive file a URL path names, or None: never a file outside the folder, a hidden one or an .eml."""
        if relative == "" or relative.endswith("/"):
            relative += "index.html"
        parts = relative.split("/")
        if any(not p or p.startswith(".") or "\\" in p or "\x00" in p for p in parts) or parts[0] == "eml":
            return None
        candidate = self.root.joinpath(*parts)
        if candidate.suffix not in MEDIA_TYPES:
            return None
        try:
            resolved = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not resolved.is_relative_to(self.root) or not resolved.is_file():
            return None
        return resolved

    # -- search -----------------------------------------------------------------------------

    def search(self, request: Request) -> Response:
        args = request.query_params
        q = args.get("q", "")
        shown = {k: args.get(k, "") for k in ("theme", "since", "source")}
        hits, error, status, limit = [], None, 200, MAX_RESULTS
        if q.strip():
            try:
                query = search.parse(q)
                filters = search.check_filters(**shown, limit=args.get("limit") or 20, theme_ids=self.themes)
                limit = min(filters.limit, MAX_RESULTS)
                filters = search.Filters(filters.theme, filters.since, filters.source, limit)
                hits = [self._hit_view(h) for h in self.store().fulltext.search(query, filters)]
            except BriefingsError as exc:
                error, status = str(exc), 400 if isinstance(exc, search.QueryError) else 503
                if status == 503:
                    log.error("search: %s", exc)
        sources = self._sources()
        html = self.env.get_template("search.html.j2").render(
            title=self.title, q=q, hits=hits, error=error, limit=limit, max_chars=search.MAX_QUERY_CHARS,
            themes=[{"id": k, "name": v} for k, v in self.themes.items()], sources=sources,
            version=__version__, **shown,
        )
        return HTMLResponse(html, status)

    def _sources(self) -> list[str]:
        """The sources to suggest in the form: read once every SOURCES_TTL seconds (a scan of every entry)."""
        stamp, names = self.source_names
        if time.monotonic() - stamp > SOURCES_TTL:
            try:
                names = sorted(self.store().entries.counts_by_source(), key=str.lower)[:500]
            except BriefingsError:
                names = []
            self.source_names = (time.monotonic(), names)
        return names

    def _hit_view(self, hit: Hit) -> dict:
        from briefings.render import safe_url

        date = datetime.fromisoformat(hit.date) if hit.date else None
        briefing = None
        if hit.briefing:
            page = f"{hit.briefing['slug']}.html"
            briefing = {"title": hit.briefing["title"], "created": datetime.fromisoformat(hit.briefing["created"]),
                        "href": page}
        original = safe_url(hit.link)
        href = f"{briefing['href']}#entry-{hit.id}" if briefing else original or "#"
        return {
            "title": hit.title, "href": href, "original": original if briefing else None, "source": hit.source,
            "kind": hit.kind, "date": date, "briefing": briefing, "snippet": hit.snippet,
            "themes": [{"id": t, "name": self.themes[t]} for t in hit.themes if t in self.themes],
        }

    # -- unsubscribe ------------------------------------------------------------------------

    def unsubscribe_page(self, done: bool) -> HTMLResponse:
        html = self.env.get_template("unsubscribe.html.j2").render(title=self.title, done=done, version=__version__)
        return HTMLResponse(html, 200, headers={"Cache-Control": "no-store"})

    async def unsubscribe(self, request: Request) -> Response:
        """GET: a page with one button. POST with List-Unsubscribe=One-Click (RFC 8058): unsubscribed at once.

        The answer is the same whatever the token (valid, forged, expired, made with another
        secret), so no one can learn from it whether an address is on the list."""
        if request.method in ("GET", "HEAD"):
            return self.unsubscribe_page(done=False)
        body = await request.body()
        content_type = request.headers.get("content-type", "")
        if not _one_click(content_type, body):
            return self.unsubscribe_page(done=False)
        subscriber = tokens.read_token(self.secret, request.path_params.get("token", ""))
        if subscriber is not None:
            from starlette.concurrency import run_in_threadpool

            via = "the unsubscribe page" if _field(content_type, body, "via") == "page" else "one-click"
            await run_in_threadpool(self._suppress, subscriber, via)
        return self.unsubscribe_page(done=True)

    def _suppress(self, subscriber: tokens.Subscriber, via: str) -> None:
        self.store().suppressions.add(subscriber.email, list_id=subscriber.list_id, via=via,
                                      now=datetime.now(timezone.utc).replace(microsecond=0))
        log.info("unsubscribed a recipient of %s", subscriber.list_id)


_MULTIPART_FIELD = re.compile(rb'name="?List-Unsubscribe"?\s*\r?\n\r?\n\s*One-Click\s*\r?\n', re.I)


def _one_click(content_type: str, body: bytes) -> bool:
    """Whether a POST body carries List-Unsubscribe=One-Click (urlencoded, as mail providers send it, or multipart)."""
    if content_type.lower().startswith("multipart/form-data"):
        return bool(_MULTIPART_FIELD.search(body))
    return _field(content_type, body, "List-Unsubscribe") == "One-Click"


def _field(content_type: str, body: bytes, name: str) -> str | None:
    """One field of an urlencoded form body (None: absent, or not such a body)."""
    if content_type.lower().startswith("multipart/form-data"):
        return None
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return None
    return fields.get(name, [None])[0]


def create_app(config: Config) -> "Guard":
    site = Site(config)

    def not_found(request: Request, exc: Exception) -> Response:
        return HTMLResponse(_page("Not found", "Nothing is here. The archive's index lists every briefing."), 404)

    def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return not_found(request, exc)
        titles = {405: "Method not allowed", 413: "Request too large"}
        return HTMLResponse(_page(titles.get(exc.status_code, "Bad request"), "The server did not take this request."),
                            exc.status_code)

    def server_error(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return HTMLResponse(_page("Server error", "The server failed to answer; the fault is in its log."), 500)

    routes = [
        Route("/search", site.search, methods=["GET", "HEAD"]),
        # Whatever follows /unsubscribe/ is a token, good or bad: every one gets the same neutral page.
        Route("/unsubscribe/{token:path}", site.unsubscribe, methods=["GET", "HEAD", "POST"]),
        Route("/unsubscribe", site.unsubscribe, methods=["GET", "HEAD", "POST"]),
        Route("/{path:path}", site.file, methods=["GET", "HEAD"]),
    ]
    handlers: dict[Any, Any] = {HTTPException: http_error, 404: not_found, Exception: server_error}
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.state.site = site
    return Guard(app)
