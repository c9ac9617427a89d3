"""`briefings themes`: the taxonomy with counts, and why an entry got its themes."""

from __future__ import annotations

import click

from briefings.cli import config_option, load_config


@click.group(invoke_without_command=True)
@config_option
@click.pass_context
def themes(ctx: click.Context, config_path) -> None:
    """The norms themes in config.toml, in briefing order, with the entries stored under each.

    Counts are of stored entries by primary theme (pending and already briefed).
    `briefings themes explain ENTRY` shows the evidence for one entry.
    """
    if ctx.invoked_subcommand is not None:
        return
    from briefings.store import Store

    config = load_config(ctx)
    counts: dict = {}
    if config.state.path.exists():
        with Store(config.state.path) as store:
            counts = store.entries.theme_counts()
    width = max((len(t.id) for t in config.themes), default=8)
    click.echo(f"{'ID':<{width}}  {'ENTRIES':>7}  NAME")
    for theme in config.themes:
        click.echo(f"{theme.id:<{width}}  {counts.get(theme.id, 0):>7}  {theme.name}")
        click.echo(f"{'':<{width}}  {'':>7}  {len(theme.terms)} terms: {theme.description}")
    click.echo(f"{'off-topic':<{width}}  {counts.get(None, 0):>7}  (matched no theme; left out of briefings)")


@themes.command()
@config_option
@click.argument("entry")
@click.pass_context
def explain(ctx: click.Context, config_path, entry: str) -> None:
    """Why ENTRY (a stored entry's id, key or URL) got its themes: every matched term, field and weight.

    The entry is classified again with the current config.toml, so this also
    shows the effect of an edit to the taxonomy before the next run.
    """
    from briefings.classify import build_classifier, explain
    from briefings.errors import BriefingsError
    from briefings.store import Store

    config = load_config(ctx)
    with Store(config.state.path) as store:
        found = store.entries.find(entry)
    if found is None:
        raise BriefingsError(f"no stored entry matches {entry!r}", "give an id from `briefings run --json`, or the entry's URL")
    item, _ = found
    result = build_classifier(config).classify(item)
    names = {t.id: t.name for t in config.themes}
    click.echo(f"{item.title}")
    click.echo(f"  {item.link or item.key}  (id {item.id}, from {item.source_name})")
    if result.theme is None:
        best = max(result.scores.values(), default=0.0)
        click.echo(f"Off-topic: the best score, {best:.2f}, is below the threshold {config.classify.threshold:g}.")
    else:
        click.echo(f"Primary theme: {result.theme} ({names[result.theme]}), score {result.scores[result.theme]:.2f}")
        if result.secondary:
            click.echo("Secondary: " + ", ".join(f"{t} ({result.scores[t]:.2f})" for t in result.secondary))
    click.echo(
        f"(threshold {config.classify.threshold:g}; a secondary theme needs "
        f"{config.classify.secondary_share:.0%} of the primary's score)"
    )
    for theme_id, score in sorted(result.scores.items(), key=lambda kv: -kv[1]):
        click.echo(f"\n{theme_id}: {score:.2f}")
        for part in explain(result, theme_id):
            click.echo(f"  {part}")
