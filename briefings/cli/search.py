"""`briefings search`: every stored entry and the reading list, searched from the command line."""

from __future__ import annotations

import json

import click

from briefings.cli import config_option, echo_err, load_config


# No short options, and --help only: `-word` in a query leaves that word out and must not read as an option.
@click.command(context_settings={"ignore_unknown_options": True, "help_option_names": ["--help"]})
@config_option
@click.argument("query", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--theme", metavar="ID", help="Only entries on this theme (primary or secondary).")
@click.option("--since", metavar="DATE", help="Only entries published on or after this date (YYYY-MM-DD).")
@click.option("--source", metavar="NAME", help="Only entries from this feed or source (any that carried the story).")
@click.option("--limit", metavar="N", default="20", show_default=True, help="At most this many results, best first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout: the query and its results.")
@click.pass_context
def search(ctx: click.Context, config_path, query: tuple[str, ...], theme, since, source, limit, as_json: bool) -> None:
    """Search every stored entry and the reading list: words, "a phrase", -word to leave out, word*.

    \b
      briefings search '"risk reduction"' -ransomware --since 2026-03-01
      briefings search OEWG --theme international-fora --json

    Results come best first (BM25; a match in the title counts most), each with
    its title, source, date, themes, the briefing that listed it, its link and
    the text around the words matched (in [brackets]).
    """
    from briefings import search as search_module
    from briefings.store import Store

    config = load_config(ctx)
    text = " ".join(query)
    parsed = search_module.parse(text)
    filters = search_module.check_filters(theme, since, source, limit, theme_ids={t.id for t in config.themes})
    with Store.open(config.state) as store:
        hits = store.fulltext.search(parsed, filters)
    if as_json:
        click.echo(json.dumps({"query": text, "match": parsed.match(), "results": [h.as_dict() for h in hits]},
                              ensure_ascii=False))
        return
    if not hits:
        echo_err(f"Nothing matches {text!r}: try fewer words, or another theme or date.")
        return
    names = {t.id: t.name for t in config.themes}
    for number, hit in enumerate(hits, 1):
        row = hit.as_dict()
        click.echo(f"{number}. {hit.title}")
        meta = [hit.source + (" (reading list)" if hit.kind == "corpus" else "")]
        if hit.date:
            meta.append(hit.date[:10])
        if hit.themes:
            meta.append(", ".join(names.get(t, t) for t in hit.themes))
        if hit.briefing:
            meta.append(f"in {hit.briefing['title']} of {hit.briefing['created'][:10]} ({hit.briefing['slug']}.html)")
        click.echo("   " + " · ".join(meta))
        click.echo("   " + " ".join(row["snippet"].split()))
        if hit.link:
            click.echo(f"   {hit.link}")
    if len(hits) == filters.limit:
        echo_err(f"The best {filters.limit}; --limit shows more.")
