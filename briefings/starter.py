"""A working folder for briefings outside a checkout: `briefings init DIR`.

The starter config is the shipped config.toml (also the source of the default
themes) with one real TOML edit: [render] templates points at the folder's
templates/. That folder gets a small briefing.html.j2 that extends the shipped
one, so an upgrade of briefings still reaches every block the user left alone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import tomlkit

from briefings import resources

TEMPLATES = "templates"

EXTENDING_TEMPLATE = """\
{#- Your briefing: the shipped one, with the blocks you override here.
    Blocks: styles, header, glance, sections (each section, and in it each entry),
    reading_list, footer. {{ super() }} inside a block keeps the shipped content.
    A file in this folder named like a shipped template (briefing.txt.j2,
    subject.txt.j2, _styles.html.j2, index.html.j2, theme.html.j2) replaces it;
    "default:NAME" always means the shipped one. They are in
    {shipped}
-#}
{% extends "default:briefing.html.j2" %}
{#- For example, a colour for the title:
{% block styles %}{{ super() }}<style>.title { color: #7a1f1f; }</style>{% endblock %}
-#}
"""


def starter_config() -> str:
    """The shipped config.toml with [render] templates set to the folder's templates/."""
    doc = tomlkit.parse(resources.shipped_config().read_text(encoding="utf-8"))
    if "render" not in doc:
        doc.add("render", tomlkit.table())
    doc["render"]["templates"] = TEMPLATES  # type: ignore[index]
    return tomlkit.dumps(doc)


def init_folder(folder: Path, *, force: bool = False) -> tuple[list[Path], list[Path]]:
    """Write the starter config, a template extending the shipped one, the reading list and theme examples.

    Returns (written, kept) paths: files already there are kept unless force.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    kept: list[Path] = []

    def put(target: Path, *, source: Path | None = None, text: str | None = None) -> None:
        if target.exists() and not force:
            kept.append(target)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        if source is not None:
            shutil.copyfile(source, target)
        else:
            target.write_text(text or "", encoding="utf-8")
        written.append(target)

    put(folder / "config.toml", text=starter_config())
    put(folder / "themes-examples.jsonl", source=resources.examples_file())
    shipped_templates = resources.templates_dir()
    put(folder / TEMPLATES / "briefing.html.j2", text=EXTENDING_TEMPLATE.replace("{shipped}", str(shipped_templates)))
    base = resources.sources_dir()
    for source in sorted(p for p in base.rglob("*") if p.is_file()):
        put(folder / "sources" / source.relative_to(base), source=source)
    return written, kept
