"""A small forwarding proxy on 127.0.0.1 for the tests: HTTP (absolute-URI GET and CONNECT) and SOCKS5.

It stands for a company's proxy: the client connects to it alone, and it reaches the
feeds. It never connects beyond this machine: every host the client names (feeds.invalid,
169.254.169.254, ...) is reached at ``upstream``, a server the test started on 127.0.0.1,
except 127.0.0.1 itself, reached at the port asked for. ``log`` records what was asked
for, as "GET http://host/path" or "CONNECT host:port".
"""

from __future__ import annotations

import select
import socket
import socketserver
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


def _relay(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    sockets = [a, b]
    try:
        while True:
            readable, _, _ = select.select(sockets, [], [], 10)
            if not readable:
                return
            for s in readable:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)
    except OSError:
        return


class _Proxy:
    log: list[str]

    def __init__(self, upstream_port: int | None):
        self.upstream_port = upstream_port
        self.log = []

    def where(self, host: str, port: int) -> tuple[str, int]:
        if host == "127.0.0.1":
            return host, port
        if self.upstream_port is None:
            raise OSError(f"no upstream for {host}")
        return "127.0.0.1", self.upstream_port

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _serve(self, server) -> None:
        self.server = server
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()


class HttpProxy(_Proxy):
    """An HTTP forwarding proxy: absolute-URI GET forwarded over a fresh connection, CONNECT tunnelled."""

    scheme = "http"

    def __init__(self, upstream_port: int | None):
        super().__init__(upstream_port)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                proxy.log.append(f"GET {self.path}")
                parts = urlsplit(self.path)
                if parts.scheme != "http" or not parts.hostname:
                    self._fail(400, "absolute http:// URI expected")
                    return
                try:
                    upstream = socket.create_connection(proxy.where(parts.hostname, parts.port or 80), timeout=10)
                except OSError as exc:
                    self._fail(502, str(exc))
                    return
                with upstream:
                    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
                    head = [f"GET {target} HTTP/1.1"]
                    head += [f"{k}: {v}" for k, v in self.headers.items()
                             if k.lower() not in ("connection", "proxy-connection", "proxy-authorization")]
                    head += ["Connection: close", "", ""]
                    upstream.sendall("\r\n".join(head).encode("latin-1"))
                    chunks = []
                    while data := upstream.recv(65536):
                        chunks.append(data)
                self.close_connection = True
                self.wfile.write(b"".join(chunks))

            def do_CONNECT(self):
                proxy.log.append(f"CONNECT {self.path}")
                host, _, port = self.path.rpartition(":")
                try:
                    upstream = socket.create_connection(proxy.where(host.strip("[]"), int(port)), timeout=10)
                except (OSError, ValueError) as exc:
                    self._fail(502, str(exc))
                    return
                with upstream:
                    self.send_response(200, "Connection established")
                    self.end_headers()
                    self.wfile.flush()
                    _relay(self.connection, upstream)
                self.close_connection = True

            def _fail(self, status, text):
                body = text.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

        self._serve(ThreadingHTTPServer(("127.0.0.1", 0), Handler))


class SocksProxy(_Proxy):
    """A SOCKS5 proxy without authentication: CONNECT only, names resolved here (as socks5h)."""

    scheme = "socks5"

    def __init__(self, upstream_port: int | None):
        super().__init__(upstream_port)
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                conn = self.request
                conn.settimeout(10)
                version, count = conn.recv(2)
                conn.recv(count)  # the methods offered: "no authentication" is always taken
                conn.sendall(b"\x05\x00")
                _, command, _, kind = conn.recv(4)
                if kind == 1:
                    host = socket.inet_ntoa(conn.recv(4))
                elif kind == 3:
                    host = conn.recv(conn.recv(1)[0]).decode()
                else:
                    host = socket.inet_ntop(socket.AF_INET6, conn.recv(16))
                (port,) = struct.unpack("!H", conn.recv(2))
                proxy.log.append(f"CONNECT {host}:{port}")
                try:
                    upstream = socket.create_connection(proxy.where(host, port), timeout=10)
                except OSError:
                    conn.sendall(b"\x05\x05\x00\x01" + bytes(6))  # connection refused
                    return
                with upstream:
                    conn.sendall(b"\x05\x00\x00\x01" + bytes(6))
                    _relay(conn, upstream)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._serve(server)
