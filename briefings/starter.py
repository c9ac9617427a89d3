"""A working folder for briefings outside a checkout: `briefings init DIR`."""

from __future__ import annotations

import shutil
from pathlib import Path

from briefings import resources


def init_folder(folder: Path, *, force: bool = False) -> tuple[list[Path], list[Path]]:
    """Copy the starter config, templates, reading list and theme examples into folder.

    The config's [render] templates points at the copied templates, so editing
    them changes the briefing. Returns (written, kept) paths.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    kept: list[Path] = []

    def put(source: Path, target: Path, text: str | None = None) -> None:
        if target.exists() and not force:
            kept.append(target)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            shutil.copyfile(source, target)
        else:
            target.write_text(text, encoding="utf-8")
        written.append(target)

    config = resources.shipped_config().read_text(encoding="utf-8")
    config = config.replace('templates = ""', 'templates = "templates"', 1)
    put(resources.shipped_config(), folder / "config.toml", config)
    put(resources.examples_file(), folder / "themes-examples.jsonl")
    for name, base in (("templates", resources.templates_dir()), ("sources", resources.sources_dir())):
        for source in sorted(p for p in base.rglob("*") if p.is_file()):
            put(source, folder / name / source.relative_to(base))
    return written, kept
