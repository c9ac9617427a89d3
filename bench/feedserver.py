"""Serve a folder of feed files on 127.0.0.1 the way a good feed host does.

    python bench/feedserver.py FOLDER [--port 8000]

ETag (a hash of the bytes) and Last-Modified (the file's mtime) on every
response; If-None-Match / If-Modified-Since answered with 304; gzip when the
client accepts it. A ``<file>.headers`` sidecar (``Name: value`` lines) adds or
replaces response headers, Content-Type included. Usable from Python: ``with FeedServer(folder) as s: s.url(name)``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import socket
import threading
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote

TYPES = {".xml": "application/xml", ".rss": "application/rss+xml", ".atom": "application/atom+xml",
         ".rdf": "application/rdf+xml", ".html": "text/html", ".json": "application/json"}


class FeedServer:
    def __init__(self, folder: Path, port: int = 0):
        self.folder = Path(folder).resolve()
        self.stats = {"requests": 0, "not_modified": 0, "bytes": 0}
        self.lock = threading.Lock()
        self._gzip_cache: dict = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                # As production servers do on keep-alive connections: without it, the body written
                # after the headers waits on the client's delayed ACK (about 40 ms per response).
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self):
                path = (server.folder / unquote(self.path.split("?")[0]).lstrip("/")).resolve()
                if server.folder not in path.parents or not path.is_file():
                    self._reply(404, b"not found", "text/plain", {})
                    return
                body = path.read_bytes()
                mtime = path.stat().st_mtime
                headers = {"ETag": '"' + hashlib.sha1(body).hexdigest()[:20] + '"',
                           "Last-Modified": formatdate(mtime, usegmt=True)}
                inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
                fresh = inm == headers["ETag"] if inm else False
                if not inm and ims:
                    try:
                        fresh = parsedate_to_datetime(ims).timestamp() >= int(mtime)
                    except (TypeError, ValueError):
                        fresh = False
                with server.lock:
                    server.stats["requests"] += 1
                    server.stats["not_modified"] += fresh
                if fresh:
                    self._reply(304, b"", None, headers)
                    return
                if "gzip" in (self.headers.get("Accept-Encoding") or ""):
                    body = server.gzipped(path, body)
                    headers["Content-Encoding"] = "gzip"
                content_type = TYPES.get(path.suffix.lower(), "application/octet-stream")
                sidecar = path.with_name(path.name + ".headers")
                if sidecar.is_file():
                    for line in sidecar.read_text(errors="replace").splitlines():
                        name, sep, value = line.partition(":")
                        if not sep:
                            continue
                        if name.strip().lower() == "content-type":
                            content_type = value.strip()
                        else:
                            headers[name.strip()] = value.strip()
                self._reply(200, body, content_type, headers)

            def _reply(self, status, body, content_type, headers):
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body:
                    self.wfile.write(body)
                with server.lock:
                    server.stats["bytes"] += len(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def gzipped(self, path: Path, body: bytes) -> bytes:
        """Compressed once per file version, as a web server's cache would: the bench times the client."""
        key = (path, len(body), hashlib.sha1(body).digest())
        with self.lock:
            cached = self._gzip_cache.get(key)
        if cached is None:
            cached = gzip.compress(body, 5)
            with self.lock:
                self._gzip_cache[key] = cached
        return cached

    def warm(self) -> None:
        """Compress every file now, so no timed run pays for the server's first gzip of a file."""
        for path in sorted(self.folder.rglob("*")):
            if path.is_file() and not path.name.endswith(".headers"):
                self.gzipped(path.resolve(), path.read_bytes())

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def url(self, relative: str) -> str:
        return f"http://127.0.0.1:{self.port}/{quote(str(relative))}"

    def __enter__(self) -> "FeedServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    with FeedServer(args.folder, args.port) as server:
        print(f"serving {args.folder} on http://127.0.0.1:{server.port}/ (Ctrl-C to stop)")
        try:
            server.thread.join()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
