"""Real parts for the tests: a loopback HTTP server, a config in a temp folder, the CLI.

Nothing here mocks HTTP, feedparser, SQLite or premailer: feeds are served by a
real HTTP server on 127.0.0.1, state is a real SQLite file in tmp_path.
"""

from __future__ import annotations

import gzip as gzip_module
import hashlib
import os
import shutil
import socket
import textwrap
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner

from briefings.cli import cli

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=utf-8"
    headers: dict = field(default_factory=dict)
    conditional: bool = True  # answer If-None-Match / If-Modified-Since with 304
    gzip: bool = False
    handler: Callable | None = None  # handler(request_handler) takes over the response entirely
    modified: int = 0  # Last-Modified, in whole seconds: set by FeedServer.add, later whenever the body changes


@dataclass
class LoggedRequest:
    method: str
    path: str
    headers: dict
    status: int


class FeedServer:
    """A real HTTP server on 127.0.0.1 with routes set by the test and a request log.

    tls: an ssl server context to serve HTTPS with (base then starts with https://).
    """

    def __init__(self, tls=None):
        self.routes: dict[str, Route] = {}
        self.log: list[LoggedRequest] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no delayed-ACK stalls

            def do_GET(self):
                route = server.routes.get(self.path)
                if route is None:
                    self._send(404, b"not found", "text/plain", {})
                    return
                if route.handler is not None:
                    server.log.append(LoggedRequest("GET", self.path, dict(self.headers), -1))
                    route.handler(self)
                    return
                etag = '"' + hashlib.sha1(route.body).hexdigest()[:16] + '"'
                headers = {"ETag": etag, "Last-Modified": formatdate(route.modified, usegmt=True)} if route.conditional else {}
                headers.update(route.headers)
                if route.conditional and route.status == 200 and self._not_modified(route, etag):
                    self._send(304, b"", None, headers)
                    return
                body = route.body
                if route.gzip and "gzip" in (self.headers.get("Accept-Encoding") or ""):
                    body = gzip_module.compress(body)
                    headers["Content-Encoding"] = "gzip"
                self._send(route.status, body, route.content_type, headers)

            def _not_modified(self, route, etag) -> bool:
                """RFC 9110: If-None-Match decides when sent; If-Modified-Since only without it."""
                inm = self.headers.get("If-None-Match")
                if inm is not None:
                    return etag in [tag.strip() for tag in inm.split(",")]
                ims = self.headers.get("If-Modified-Since")
                try:
                    return bool(ims) and parsedate_to_datetime(ims).timestamp() >= route.modified
                except (TypeError, ValueError):
                    return False

            def _send(self, status, body, content_type, headers):
                server.log.append(LoggedRequest("GET", self.path, dict(self.headers), status))
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body:
                    self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        # serve_forever checks for shutdown() every poll_interval: 0.5 s by default, paid at every teardown.
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes | str = b"", **kwargs) -> str:
        if isinstance(body, str):
            body = body.encode("utf-8")
        route = Route(body=body, **kwargs)
        if not route.modified:
            # A changed body is served as modified later than the one before (HTTP dates count whole seconds).
            old = self.routes.get(path)
            now = int(time.time())
            route.modified = old.modified if old is not None and old.body == body else max(now, old.modified + 1 if old else 0)
        self.routes[path] = route
        return self.url(path)

    def add_file(self, path: str, file: Path, **kwargs) -> str:
        kwargs.setdefault("modified", int(Path(file).stat().st_mtime))
        return self.add(path, Path(file).read_bytes(), **kwargs)

    def statuses(self, path: str) -> list[int]:
        return [r.status for r in self.log if r.path == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def feed_server():
    server = FeedServer()
    yield server
    server.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(
    folder: Path,
    feeds: list[tuple[str, str]] = (),
    *,
    corpus: str | None = "sources",
    copy_corpus: bool = True,
    extra: str = "",
    themes: str | None = None,
    fetch: str = "timeout = 5",
) -> Path:
    """A config.toml in folder: the shipped themes (unless given), the feeds, the shipped corpus copied in."""
    folder.mkdir(parents=True, exist_ok=True)
    if copy_corpus and corpus == "sources":
        shutil.copytree(ROOT / "sources", folder / "sources", dirs_exist_ok=True)
    lines = [
        "[corpus]",
        f'path = "{corpus or ""}"',
        "[state]",
        'path = "state/briefings.sqlite3"',
        f'url = "{BACKEND["url"]}"',
        "[output]",
        'dir = "archive"',
        "[fetch]",
        fetch,
        "",
    ]
    for name, url in feeds:
        lines += ["[[feeds]]", f'name = "{name}"', f'url = "{url}"', ""]
    text = "\n".join(lines) + "\n" + textwrap.dedent(extra) + "\n" + (themes or "")
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def cli_run():
    """Run the CLI in-process (CliRunner); stdout and stderr kept apart."""

    def run(*args, env=None):
        runner = CliRunner()
        return runner.invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)

    return run


def fixture_feed(name: str) -> bytes:
    return (FIXTURES / "feeds" / name).read_bytes()


# The backend write_config points [state] at: url "" is the SQLite file, else a PostgreSQL database (the
# `backend` fixture sets it for the test modules that run on both).
BACKEND = {"url": ""}


def state_db(tmp: Path):
    """A DB-API connection to the state of a config written by write_config in tmp (SQLite or PostgreSQL)."""
    if BACKEND["url"]:
        import psycopg

        class Translating:
            def __init__(self, conn):
                self.conn = conn

            def execute(self, sql, params=()):
                return self.conn.execute(sql.replace("?", "%s"), params or None)

            def commit(self):
                self.conn.commit()

            def close(self):
                self.conn.close()

        return Translating(psycopg.connect(BACKEND["url"]))
    import sqlite3

    return sqlite3.connect(tmp / "state" / "briefings.sqlite3")


def db_rows(tmp: Path, sql: str, params=()) -> list[tuple]:
    """Rows from the state of a config written by write_config in tmp."""
    db = state_db(tmp)
    try:
        return [tuple(r) for r in db.execute(sql, params).fetchall()]
    finally:
        db.close()


def state_store(tmp: Path):
    """The Store of a config written by write_config in tmp."""
    from briefings.store import Store

    return Store(BACKEND["url"]) if BACKEND["url"] else Store(tmp / "state" / "briefings.sqlite3")


# -- a real SMTP server on 127.0.0.1 (aiosmtpd) ----------------------------------------------


class SmtpSink:
    """aiosmtpd on 127.0.0.1 that keeps every message it accepts, and misbehaves on request.

    refuse: address -> "550 ..." or "451 ..." reply to RCPT TO for that address.
    data_reply: a reply to DATA instead of 250 (e.g. "421 ..."), for the next N messages.
    drop_data: close the connection instead of answering DATA, for the next N messages.
    hang_rcpt: address whose RCPT TO never gets an answer (sets hang_reached first).
    """

    def __init__(self, *, tls: str = "none", users: dict | None = None):
        import asyncio
        import ssl

        import trustme
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages: list[tuple[list[str], bytes]] = []
        self.refuse: dict[str, str] = {}
        self.data_reply: list[str] = []
        self.drop_data = 0
        self.hang_rcpt: str | None = None
        self.hang_reached = threading.Event()
        self.logins: list[str] = []
        self.connections = 0
        sink = self

        class Handler:
            async def handle_EHLO(self, server, session, envelope, hostname, responses):
                session.host_name = hostname
                return responses

            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if address == sink.hang_rcpt:
                    sink.hang_reached.set()
                    await asyncio.sleep(3600)
                if address in sink.refuse:
                    return sink.refuse[address]
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                if sink.drop_data:
                    sink.drop_data -= 1
                    server.transport.close()
                    return "421 closing"
                if sink.data_reply:
                    return sink.data_reply.pop(0)
                sink.messages.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
                return "250 Message accepted"

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = users is not None and users.get(auth_data.login.decode()) == auth_data.password.decode()
            if ok:
                sink.logins.append(auth_data.login.decode())
            return AuthResult(success=ok, handled=False)

        self.ca = trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(server_ctx)
        kwargs: dict = {}
        if tls == "starttls":
            kwargs.update(tls_context=server_ctx, require_starttls=True)
        elif tls == "ssl":
            kwargs.update(ssl_context=server_ctx)
        if users is not None:
            kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=tls != "none")
        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)
        if tls == "ssl":
            # The controller's readiness probe must speak TLS as a client that trusts our CA.
            def trigger():
                client = ssl.create_default_context()
                self.ca.configure_trust(client)
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
                    with client.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
                        conn.recv(1024)

            self.controller._trigger_server = trigger
        self.controller.start()

    def write_ca(self, folder: Path) -> Path:
        path = folder / "smtp-ca.pem"
        self.ca.cert_pem.write_to_path(str(path))
        return path

    def parsed(self):
        import email
        import email.policy

        return [email.message_from_bytes(raw, policy=email.policy.default) for _, raw in self.messages]

    def copies(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for rcpts, _ in self.messages:
            for r in rcpts:
                counts[r] = counts.get(r, 0) + 1
        return counts

    def close(self):
        self.hang_rcpt = None
        self.controller.stop()


@pytest.fixture
def smtp_sink():
    sinks = []

    def make(**kwargs) -> SmtpSink:
        sink = SmtpSink(**kwargs)
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.close()


def mail_config(port: int, recipients: list[dict], *, security: str = "none", extra_smtp: str = "", email: str = "") -> str:
    """[smtp], [email] and [[recipients]] tables for write_config(extra=...)."""
    lines = [
        "[smtp]",
        'host = "127.0.0.1"',
        f"port = {port}",
        f'security = "{security}"',
        'from = "Norms Briefing <briefings@norms.example.org>"',
        'reply_to = "desk@norms.example.org"',
        "timeout = 5",
        "retry_minutes = 0",
        extra_smtp,
        "[email]",
        email or 'unsubscribe_mailto = "leave@norms.example.org"\nunsubscribe_url = "https://norms.example.org/unsubscribe?who={email}"',
    ]
    for r in recipients:
        lines.append("[[recipients]]")
        for k, v in r.items():
            lines.append(f"{k} = {json_value(v)}")
    return "\n".join(lines) + "\n"


def json_value(v) -> str:
    import json

    return json.dumps(v)


CHROMIUM = os.environ.get("BRIEFINGS_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium, driven by Playwright. Missing Chromium fails the tests: `make test` installs it."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make system-deps` (apt-get install chromium) "
                    "or set BRIEFINGS_CHROMIUM")
    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"],
        )
        yield launched
        launched.close()


class PageProbe:
    """A page opened at a given width, with every console error and dialog it produced."""

    def __init__(self, browser, width: int = 375, height: int = 800):
        self.context = browser.new_context(viewport={"width": width, "height": height}, java_script_enabled=True)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def open(self, path: Path):
        self.page.goto(Path(path).resolve().as_uri())
        self.page.wait_for_load_state("load")
        return self.page

    def horizontal_overflow(self) -> int:
        return self.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self):
        self.context.close()


@pytest.fixture
def page_probe(browser):
    probes = []

    def make(width: int = 375, height: int = 800) -> PageProbe:
        probe = PageProbe(browser, width, height)
        probes.append(probe)
        return probe

    yield make
    for probe in probes:
        probe.close()


def deliveries(folder: Path) -> list[dict]:
    """The outbox rows of the state under folder, in order."""
    db = state_db(folder)
    try:
        cursor = db.execute("SELECT * FROM deliveries ORDER BY id")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r)) for r in cursor.fetchall()]
    finally:
        db.close()


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL cluster on 127.0.0.1 for the session (tests/pgcluster.py). Without PostgreSQL the
    tests that need it skip, except under `make test` / CI (BRIEFINGS_REQUIRE_POSTGRES=1), where they fail."""
    from pgcluster import PgCluster, PostgresMissing

    try:
        import psycopg  # noqa: F401

        cluster = PgCluster()
    except (PostgresMissing, ImportError) as exc:
        message = str(exc) if isinstance(exc, PostgresMissing) else "psycopg not installed: pip install -e '.[test]'"
        if os.environ.get("BRIEFINGS_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster, request):
    """The URL of a new, empty PostgreSQL database for this test, dropped after it."""
    url = pg_cluster.create_database(request.node.name)
    yield url
    pg_cluster.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    """Run the test on each store: the SQLite file, and a new PostgreSQL database (write_config points
    [state] url at it; db_rows, deliveries and state_store read it)."""
    if request.param == "postgresql":
        if request.node.get_closest_marker("sqlite_only"):
            pytest.skip("about the SQLite file itself")
        BACKEND["url"] = request.getfixturevalue("pg_url")
    try:
        yield request.param
    finally:
        BACKEND["url"] = ""
