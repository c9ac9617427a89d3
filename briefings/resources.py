"""Where the shipped templates, reading list, config and theme examples live.

One rule, decided once per process: a wheel carries them in briefings/_data/
(pyproject.toml's force-include copies them there); a checkout, or an editable
install of one, has no _data/ and keeps them at the top of the repo, beside the
package. Every shipped file is then looked up under that one root, so a run
never mixes files of two installs.
"""

from __future__ import annotations

import functools
from pathlib import Path

from briefings.errors import BriefingsError

_PACKAGE = Path(__file__).resolve().parent

# The shipped files, by their name at the top of the repo (and under briefings/_data/ in a wheel).
SHIPPED = ("templates", "sources", "config.toml", "themes-examples.jsonl")


@functools.cache
def data_root() -> Path:
    """The folder holding every shipped file: briefings/_data in a wheel, else the checkout."""
    installed = _PACKAGE / "_data"
    return installed if installed.is_dir() else _PACKAGE.parent


def shipped(name: str) -> Path:
    """The path of one shipped file or folder (one of SHIPPED)."""
    if name not in SHIPPED:
        raise ValueError(f"{name!r} is not a shipped file (known: {', '.join(SHIPPED)})")
    path = data_root() / name
    if not path.exists():
        raise BriefingsError(f"briefings is missing its shipped {name} (looked in {data_root()})", "reinstall briefings")
    return path


def templates_dir() -> Path:
    return shipped("templates")


def sources_dir() -> Path:
    return shipped("sources")


def shipped_config() -> Path:
    return shipped("config.toml")


def examples_file() -> Path:
    return shipped("themes-examples.jsonl")
