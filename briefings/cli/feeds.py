"""`briefings feeds`: list, add, remove, import and export the feeds in config.toml."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click

from briefings.cli import config_file, config_option, echo_err, load_config


@click.group()
def feeds() -> None:
    """The feeds in config.toml: list their health, add, remove, import and export (OPML).

    add, remove and import edit config.toml in place: comments and layout are kept.
    """


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


@feeds.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per feed on stdout.")
@click.pass_context
def list_feeds(ctx: click.Context, config_path, as_json: bool) -> None:
    """Each feed: name, URL, status, last success, entries stored, next try.

    Status is the last fetch's outcome (ok, not-modified, failed, gone, or new
    for a feed not fetched yet); a failing feed shows its last error below it.
    """
    from briefings.store import Store

    config = load_config(ctx)
    states, counts = {}, {}
    if config.state.exists:
        with Store.open(config.state) as store:
            states = store.feeds.all()
            counts = store.entries.counts_by_source()
    rows = []
    for feed in config.feeds:
        state = states.get(feed.name)
        rows.append(
            {
                "name": feed.name,
                "url": state.url if state is not None and state.moved_to else feed.url,
                "status": ("disabled" if state.disabled else state.status) if state is not None and state.status else "new",
                "last_success": state.last_success if state is not None else None,
                "last_error": state.last_error if state is not None else None,
                "consecutive_failures": state.consecutive_failures if state is not None else 0,
                "next_try": state.next_try if state is not None else None,
                "entries": counts.get(feed.name, 0),
            }
        )
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, sort_keys=True, default=datetime.isoformat))
        return
    if not rows:
        echo_err(f"No feeds in {config.path}. Add one with `briefings feeds add URL`.")
        return
    width = max(len(r["name"]) for r in rows)
    click.echo(f"{'NAME':<{width}}  {'STATUS':<12}  {'LAST SUCCESS':<16}  {'ENTRIES':>7}  {'NEXT TRY':<16}  URL")
    for r in rows:
        click.echo(
            f"{r['name']:<{width}}  {r['status']:<12}  {_when(r['last_success']):<16}  {r['entries']:>7}  "
            f"{_when(r['next_try']):<16}  {r['url']}"
        )
        if r["status"] in ("failed", "gone", "disabled") and r["last_error"]:
            click.echo(f"{'':<{width}}  {r['last_error']} ({r['consecutive_failures']} failures in a row)")


@feeds.command("add")
@config_option
@click.argument("url")
@click.option("--name", help="The feed's name in briefings (default: the feed's own title).")
@click.option("--no-check", is_flag=True, help="Add without fetching the feed first.")
@click.pass_context
def add_feed(ctx: click.Context, config_path, url: str, name: str | None, no_check: bool) -> None:
    """Fetch URL once to check it is a feed, then add it to config.toml.

    URL may be a web page that names its feed (<link rel="alternate">): the feed
    it names is added instead. Without --name the feed is named by its own
    title. A URL or name already in config.toml is refused.
    """
    from briefings.collect.feeds import probe
    from briefings.config import feed_url_problem
    from briefings.errors import ConfigError
    from briefings.feedlist import FeedEditor

    config = load_config(ctx)
    url = url.strip()  # spaces around a pasted URL; one inside stays an error
    problem = feed_url_problem(url)
    if problem:
        raise ConfigError(f"not a feed URL: {problem}", "give the feed's full address, e.g. https://example.org/feed.xml")
    editor = FeedEditor(config.path)
    if editor.has_url(url):
        raise ConfigError(f"{url} is already in {config.path}")
    if name and editor.has_name(name):
        raise ConfigError(f"a feed named {name!r} is already in {config.path}", "choose another --name")
    title = None
    if not no_check:
        result = probe(url, config.fetch)
        if result.status != "ok":
            raise ConfigError(f"{url}: {result.error}", "or add it anyway with --no-check")
        title = result.title
        if result.discovered_from:
            echo_err(f"{url} is a web page; adding the feed it names: {result.url}")
            url = result.url
            if editor.has_url(url):
                raise ConfigError(f"{url} is already in {config.path}")
        elif result.new_url:
            echo_err(f"{url} moved permanently to {result.new_url}: adding the new address")
            url = result.new_url
        problem = feed_url_problem(url)
        if problem:
            raise ConfigError(f"the feed's address is not a feed URL: {problem}", "or add it anyway with --no-check")
        echo_err(f"ok: {title or url}, {len(result.entries)} entries")
    final = name or editor.unique_name(title or url)
    editor.add(final, url)
    editor.save()
    click.echo(f"Added {final!r} to {config.path}")


@feeds.command("remove")
@config_option
@click.argument("name")
@click.pass_context
def remove_feed(ctx: click.Context, config_path, name: str) -> None:
    """Remove the feed called NAME from config.toml (its stored entries stay).

    Works on a config.toml that does not load, as long as it loads once the
    feed is gone (e.g. to take out a feed whose URL is not valid).
    """
    from briefings.errors import ConfigError
    from briefings.feedlist import FeedEditor

    try:
        path = load_config(ctx).path
    except ConfigError:
        path = config_file(ctx)
        if not path.is_file():
            raise
    editor = FeedEditor(path)
    if not editor.remove(name):
        known = ", ".join(f.name for f in editor.feeds()) or "none"
        raise ConfigError(f"no feed named {name!r} in {path}", f"feeds: {known}")
    editor.save()
    click.echo(f"Removed {name!r} from {path}")


@feeds.command("import")
@config_option
@click.argument("opml", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def import_feeds(ctx: click.Context, config_path, opml: Path) -> None:
    """Add every feed of an OPML file (a feed reader's export) to config.toml.

    Feeds whose URL is already there are skipped; a name already taken gets a
    number; an outline whose URL is not a valid http(s) URL is skipped with a
    line saying why. Feeds are not fetched: the next collect reports any that fail.
    """
    from briefings.feedlist import FeedEditor, read_opml

    config = load_config(ctx)
    outlines = read_opml(opml)
    editor = FeedEditor(config.path)
    report = editor.import_outlines(outlines)
    for outline, problem in report.invalid:
        echo_err(f"skipped {outline.name!r}: {problem}")
    if report.added:
        editor.save()
    skipped = report.already + len(report.invalid)
    click.echo(f"Imported {report.added} feeds from {opml} into {config.path}; skipped {skipped} "
               f"({report.already} already there, {len(report.invalid)} not a valid feed URL).")


@feeds.command("export")
@config_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file instead of stdout.")
@click.pass_context
def export_feeds(ctx: click.Context, config_path, output: Path | None) -> None:
    """Print the feeds as OPML 2.0, for any feed reader to import."""
    from briefings.feedlist import write_opml

    config = load_config(ctx)
    text = write_opml(config.feeds, f"{config.briefing.title}: feeds")
    if output:
        output.write_text(text, encoding="utf-8")
        echo_err(f"Wrote {len(config.feeds)} feeds to {output}")
    else:
        click.echo(text, nl=False)
