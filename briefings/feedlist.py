"""The feed list in config.toml: edited in place (comments and layout kept), OPML in and out."""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

import tomlkit

from briefings.errors import ConfigError


@dataclass(frozen=True)
class OutlineFeed:
    name: str
    url: str


def read_opml(path: Path) -> list[OutlineFeed]:
    """Every outline with an xmlUrl, at any depth; its text or title is the name."""
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as exc:
        raise ConfigError(f"{path}: not valid OPML: {exc}", "export the subscriptions again from your feed reader") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if root.tag.lower() != "opml":
        raise ConfigError(f"{path}: not an OPML file (root element <{root.tag}>)")
    feeds = []
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if not url:
            continue
        name = (outline.get("text") or outline.get("title") or url).strip()
        feeds.append(OutlineFeed(" ".join(name.split()), url))
    return feeds


def write_opml(feeds, title: str) -> str:
    """OPML 2.0 with one outline per feed (type rss, text and title = name, xmlUrl = url)."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<opml version="2.0">',
        "  <head>",
        f"    <title>{_text(title)}</title>",
        "  </head>",
        "  <body>",
    ]
    for feed in feeds:
        name = quoteattr(feed.name)
        lines.append(f'    <outline type="rss" text={name} title={name} xmlUrl={quoteattr(feed.url)}/>')
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines)


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_TABLE = re.compile(r"^\s*\[")
_FEEDS_HEADER = re.compile(r"^\s*\[\[\s*feeds\s*\]\]\s*(#.*)?$")


class FeedEditor:
    """Adds and removes [[feeds]] tables in a config file, keeping every other line as it was.

    Edits are made on the lines of the file, so comments and layout stay where
    the user put them (a TOML library re-attaches comments between tables to
    the wrong table); values are written by tomlkit, so they are escaped
    correctly; the result is parsed again before it replaces the file.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.text = self.path.read_text(encoding="utf-8")
            self.data = tomllib.loads(self.text)
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot read: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{self.path}: {exc}", "run `briefings check` and fix the file first") from exc

    def feeds(self) -> list[OutlineFeed]:
        return [OutlineFeed(str(t.get("name", "")), str(t.get("url", ""))) for t in self.data.get("feeds", [])]

    def has_name(self, name: str) -> bool:
        return any(f.name == name for f in self.feeds())

    def has_url(self, url: str) -> bool:
        return any(f.url.rstrip("/") == url.rstrip("/") for f in self.feeds())

    def unique_name(self, name: str) -> str:
        candidate, n = name, 2
        while self.has_name(candidate):
            candidate, n = f"{name} ({n})", n + 1
        return candidate

    def _blocks(self, lines: list[str]) -> list[tuple[int, int]]:
        """(first, last) line index of each [[feeds]] table: its header to its last key line."""
        blocks = []
        for i, line in enumerate(lines):
            if not _FEEDS_HEADER.match(line):
                continue
            last = i
            for j in range(i + 1, len(lines)):
                stripped = lines[j].strip()
                if _TABLE.match(lines[j]):
                    break
                if stripped and not stripped.startswith("#"):
                    last = j
            blocks.append((i, last))
        return blocks

    def add(self, name: str, url: str) -> None:
        lines = self.text.splitlines(keepends=True)
        block = ["[[feeds]]\n", f"name = {tomlkit.string(name).as_string()}\n", f"url = {tomlkit.string(url).as_string()}\n"]
        blocks = self._blocks(lines)
        if blocks:
            at = blocks[-1][1] + 1
            if at > 0 and not lines[at - 1].endswith("\n"):
                lines[at - 1] += "\n"
            lines[at:at] = ["\n"] + block
        else:
            at = next((i for i, line in enumerate(lines) if _TABLE.match(line) and "themes" in line), len(lines))
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            lines[at:at] = ["\n"] + block + ["\n"]
        self._replace("".join(lines))

    def remove(self, name: str) -> bool:
        names = [f.name for f in self.feeds()]
        if name not in names:
            return False
        lines = self.text.splitlines(keepends=True)
        first, last = self._blocks(lines)[names.index(name)]
        if first > 0 and not lines[first - 1].strip():
            first -= 1  # the blank line that separated it
        del lines[first : last + 1]
        self._replace("".join(lines))
        return True

    def _replace(self, text: str) -> None:
        data = tomllib.loads(text)  # an edit that breaks the file is a bug: fail before saving
        self.text, self.data = text, data

    def save(self) -> None:
        """Write atomically: a crash leaves the old file or the new one, never half of one."""
        fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(self.text)
                handle.flush()
                os.fsync(handle.fileno())
            if self.path.exists():
                os.chmod(tmp, self.path.stat().st_mode & 0o777)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
