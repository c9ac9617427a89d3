"""`briefings stories explain ENTRY`: why an entry is in its story, or why a near report is not."""

from __future__ import annotations

import json

import click

from briefings.cli import config_option, echo_err, load_config


@click.group()
def stories() -> None:
    """The stories briefings tells: the same event reported by several feeds, grouped."""


@stories.command()
@config_option
@click.argument("entry")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as one JSON object on stdout.")
@click.pass_context
def explain(ctx: click.Context, config_path, entry: str, as_json: bool) -> None:
    """Why ENTRY (an id, key or link) is grouped with the reports of its story, and why the nearest
    other report is not: their similarity, the names and numbers they share, the days between them,
    and the veto that kept them apart. Reads the stored feed entries within the stories window."""
    from briefings.pipeline import explain_entry

    config = load_config(ctx)
    try:
        why = explain_entry(config, entry)
    except LookupError as exc:
        echo_err(f"error: {exc}")
        echo_err("hint: give an id from `briefings run --json` (stories), or an entry's link")
        ctx.exit(1)
    if as_json:
        click.echo(json.dumps(why, default=str, sort_keys=True))
        return
    click.echo(f"Entry {why['id']} is in story {why['story']} (lead: entry {why['lead']}; {why['rule']}).")
    click.echo(f"Grouped when: {why['gate']}.")
    if not why["grouped_with"]:
        click.echo("No other report is in its story.")
    for other in why["grouped_with"]:
        shared = ", ".join(other["shared"]) or "nothing"
        click.echo(f"  with {other['id']} ({other['source']}): {other['title']}\n"
                   f"    similarity {other['similarity']}, shares {shared}, {other['days_apart']} days apart")
    near = why["nearest_not_grouped"]
    if near:
        click.echo(f"Nearest report left out: {near['id']} ({near['source']}): {near['title']}\n"
                   f"    similarity {near['similarity']}; kept apart: {near['reason']}")
