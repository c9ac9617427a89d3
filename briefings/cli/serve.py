"""`briefings serve`: the archive, its search page and one-click unsubscribe over HTTP."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sys
import threading
from pathlib import Path

import click
import uvicorn  # this module is imported only to run `briefings serve`

from briefings.cli import config_option, echo_err, load_config


@click.command()
@config_option
@click.option("--host", default=None, help="Address to listen on (default: [serve] host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port to listen on (default: [serve] port).")
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Append the log (one line per request) to this file instead of stderr.")
@click.pass_context
def serve(ctx: click.Context, config_path, host: str | None, port: int | None, log_file: Path | None) -> None:
    """Serve the archive folder, a search page (/search) and unsubscribe links (/unsubscribe/TOKEN) until stopped.

    Listens on 127.0.0.1 unless told otherwise: put a reverse proxy with TLS in
    front of it (README: "briefings serve"). Unsubscribe links are signed with
    the secret in the variable named by [serve] secret_env (BRIEFINGS_SECRET).
    Logs one line per request; SIGTERM or Ctrl-C stops it cleanly (exit 0).
    """
    from briefings.serve import tokens
    from briefings.serve.app import create_app

    config = load_config(ctx)
    host = host or config.serve.host
    port = config.serve.port if port is None else port
    handler: logging.Handler = logging.FileHandler(log_file, encoding="utf-8") if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    for name in ("briefings", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
    if tokens.secret(config) is None:
        echo_err(f"briefings serve: warning: {config.serve.secret_env or '[serve] secret_env'} is not set, so no "
                 "unsubscribe link is honoured: set it to the secret the runs that send use")
    try:
        listening = _listen(host, port)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        echo_err(f"briefings serve: cannot listen on {host}:{port}: {exc.strerror or exc}")
        echo_err("  hint: pick another --port (or [serve] port), or stop what listens there")
        ctx.exit(1)
    server = _Server(uvicorn.Config(
        create_app(config), log_config=None, access_log=False, server_header=False, proxy_headers=False,
        timeout_keep_alive=5, timeout_graceful_shutdown=10, lifespan="off", h11_max_incomplete_event_size=32 * 1024,
    ))
    shown = f"[{host}]" if ":" in host else host
    logging.getLogger("briefings.serve").info("serving %s on http://%s:%d/ (search: /search)", config.output.dir, shown,
                                              listening.getsockname()[1])
    with listening:
        server.run(sockets=[listening])
    if server.stopped_by is not None:
        logging.getLogger("briefings.serve").info("stopped by %s", signal.Signals(server.stopped_by).name)


def _listen(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, stopping cleanly on SIGTERM or Ctrl-C and exiting 0 (uvicorn's own raises the signal again)."""

    stopped_by: int | None = None

    @contextlib.contextmanager
    def capture_signals(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    def _stop(self, sig, frame) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: at once
        self.stopped_by = sig
        self.should_exit = True
