"""`briefings check`: validate config.toml and say what it sets."""

from __future__ import annotations

import click

from briefings.cli import config_option, echo_err, load_config


@click.command()
@config_option
@click.pass_context
def check(ctx: click.Context, config_path) -> None:
    """Validate config.toml: syntax, keys, types, feeds and the theme taxonomy.

    Exits 0 when the config is usable (warnings are printed), 2 when it is not.
    """
    config = load_config(ctx)
    click.echo(f"{config.path}: ok")
    click.echo(f"  {len(config.feeds)} feeds, {len(config.themes)} themes")
    click.echo(f"  reading list: {config.corpus.path or '(none)'}")
    click.echo(f"  state file:   {config.state.path}")
    click.echo(f"  archive:      {config.output.dir}")
    for theme in config.themes:
        if not theme.terms:
            echo_err(f"warning: theme {theme.id} has no terms: nothing can be classified under it")
