"""`briefings serve`: the archive, its search page and one-click unsubscribe over HTTP."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

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
    import uvicorn

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
    server = uvicorn.Server(uvicorn.Config(
        create_app(config), host=host, port=port, log_config=None, access_log=False, server_header=False,
        proxy_headers=False, timeout_keep_alive=5, timeout_graceful_shutdown=10, lifespan="off",
        h11_max_incomplete_event_size=16 * 1024,
    ))
    try:
        server.run()
    except OSError as exc:  # the address is taken, or not this machine's
        echo_err(f"briefings serve: cannot listen on {host}:{port}: {exc.strerror or exc}")
        echo_err("  hint: pick another --port, or stop what listens there")
        ctx.exit(1)
    if not server.started:
        echo_err(f"briefings serve: could not listen on {host}:{port}")
        echo_err("  hint: pick another --port, or stop what listens there")
        ctx.exit(1)
