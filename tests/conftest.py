"""Real parts for the tests: a loopback HTTP server, a config in a temp folder, the CLI.

Nothing here mocks HTTP, feedparser, SQLite or premailer: feeds are served by a
real HTTP server on 127.0.0.1, state is a real SQLite file in tmp_path.
"""

from __future__ import annotations

import gzip as gzip_module
import hashlib
import shutil
import socket
import textwrap
import threading
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


@dataclass
class LoggedRequest:
    method: str
    path: str
    headers: dict
    status: int


class FeedServer:
    """A real HTTP server on 127.0.0.1 with routes set by the test and a request log."""

    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.log: list[LoggedRequest] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

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
                modified = formatdate(1_700_000_000, usegmt=True)
                headers = {"ETag": etag, "Last-Modified": modified} if route.conditional else {}
                headers.update(route.headers)
                if route.conditional and route.status == 200:
                    inm = self.headers.get("If-None-Match")
                    ims = self.headers.get("If-Modified-Since")
                    if inm == etag or (inm is None and ims and parsedate_to_datetime(ims).timestamp() >= 1_700_000_000):
                        self._send(304, b"", None, headers)
                        return
                body = route.body
                if route.gzip and "gzip" in (self.headers.get("Accept-Encoding") or ""):
                    body = gzip_module.compress(body)
                    headers["Content-Encoding"] = "gzip"
                self._send(route.status, body, route.content_type, headers)

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
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes | str = b"", **kwargs) -> str:
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.routes[path] = Route(body=body, **kwargs)
        return self.url(path)

    def add_file(self, path: str, file: Path, **kwargs) -> str:
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
