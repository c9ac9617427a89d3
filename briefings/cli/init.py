"""`briefings init DIR`: a working folder with a starter config, a template to edit and the reading list."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files that are already there.")
def init(folder: Path, force: bool) -> None:
    """Write a starter config.toml, a template extending the shipped one and the reading list into FOLDER.

    Use it after `pip install briefings`, outside a checkout: then
    `cd FOLDER && briefings run` writes a first briefing to FOLDER/archive.
    Files already in FOLDER are kept unless --force is given.
    """
    from briefings.starter import init_folder

    written, kept = init_folder(folder, force=force)
    for path in written:
        click.echo(f"wrote {path}")
    for path in kept:
        click.echo(f"kept {path} (already there; --force to overwrite)", err=True)
    click.echo(f"Next: cd {folder} && briefings run   (or: briefings --config {folder / 'config.toml'} run)")
