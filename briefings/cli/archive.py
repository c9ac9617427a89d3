"""`briefings archive rebuild` and `briefings preview`: the archive pages, and the next briefing before it goes out."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from briefings.cli import config_option, echo_err, load_config


@click.group()
def archive() -> None:
    """The archive on disk: index.html, a page per briefing and a page per theme."""


@archive.command("rebuild")
@config_option
@click.pass_context
def rebuild(ctx: click.Context, config_path) -> None:
    """Render every briefing's web page and text, the index and the theme pages again from the store.

    Use it after changing templates or upgrading briefings. Nothing is collected,
    marked or sent; e-mails already sent stay as they were.
    """
    from briefings.lock import job_lock
    from briefings.pipeline import open_store, rebuild_archive

    config = load_config(ctx)
    with job_lock(config.state).held(config.schedule.lock_wait):
        store = open_store(config)
        try:
            written = rebuild_archive(config, store)
        finally:
            store.close()
    for path in written:
        click.echo(path)
    echo_err(f"Rebuilt {len(written)} files in {config.output.dir}")


@click.command()
@config_option
@click.option("--open", "open_browser", is_flag=True, help="Open the e-mail version in the default web browser.")
@click.option("--serve", "serve_port", type=int, is_flag=False, flag_value=8025, default=None, metavar="[PORT]",
              help="Serve the preview on http://127.0.0.1:PORT (8025 when no port is given) until Ctrl-C.")
@click.option("--json", "as_json", is_flag=True,
              help="Print {\"briefing\": {...}} as one JSON object on stdout (its stories and top stories, the files).")
@click.pass_context
def preview(ctx: click.Context, config_path, open_browser: bool, serve_port: int | None, as_json: bool) -> None:
    """Render the next briefing from what is pending, without storing or marking anything.

    Writes email.html (what inboxes get), web.html (the archive page, every
    entry) and email.txt to a new temporary folder and prints their paths. Run
    `briefings collect` first to preview what the feeds have now.
    """
    import json

    from briefings.pipeline import preview as make_preview, stories_json

    config = load_config(ctx)
    made = make_preview(config)
    if made is None:
        echo_err("Nothing pending is on topic: the next briefing would be empty.")
        ctx.exit(1)
    briefing, rendered = made
    folder = Path(tempfile.mkdtemp(prefix=f"briefings-preview-{briefing.slug}-"))
    files = {"email.html": rendered.html, "web.html": rendered.web_html, "email.txt": rendered.text}
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
        if not as_json:
            click.echo(folder / name)
    if as_json:
        click.echo(json.dumps({"briefing": {
            "title": briefing.title, "slug": briefing.slug, "entries": briefing.entry_count,
            "themes": briefing.theme_counts, "files": {name: str(folder / name) for name in files},
            "email_html_bytes": len(rendered.html.encode("utf-8")), **stories_json(briefing)}}, sort_keys=True))
    echo_err(f"{briefing.entry_count} entries in {len(briefing.sections)} themes; the e-mail HTML is "
             f"{len(rendered.html.encode('utf-8')) / 1024:.1f} KB.")
    if open_browser:
        import webbrowser

        webbrowser.open((folder / "email.html").as_uri())
    if serve_port is not None:
        serve(folder, serve_port)


def serve(folder: Path, port: int) -> None:
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    with ThreadingHTTPServer(("127.0.0.1", port), handler) as httpd:
        echo_err(f"Serving the preview on http://127.0.0.1:{httpd.server_address[1]}/email.html (Ctrl-C to stop)")
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass
