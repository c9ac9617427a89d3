"""Where the shipped templates, corpus and config live: the checkout, or the installed package."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    # In a checkout (or an editable install) the files sit beside the package;
    # in a wheel they are copied into briefings/_data/.
    for base in (_PACKAGE.parent, _PACKAGE / "_data"):
        candidate = base / name
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"briefings is missing its shipped {name!r}; reinstall briefings")


def templates_dir() -> Path:
    return _find("templates")


def sources_dir() -> Path:
    return _find("sources")


def shipped_config() -> Path:
    return _find("config.toml")


def examples_file() -> Path:
    return _find("themes-examples.jsonl")
