"""The feed list in config.toml: edited in place (comments and layout kept), OPML in and out."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

import tomlkit

from briefings.errors import ConfigError
from briefings.files import write_atomic


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


@dataclass
class ImportReport:
    """What import_outlines did: how many were added, already there, and which were skipped and why."""

    added: int = 0
    already: int = 0
    invalid: list[tuple[OutlineFeed, str]] = field(default_factory=list)


_PLAIN = re.compile(r'[^"\\\x00-\x1f\x7f]*')


def _toml_string(value: str) -> str:
    """value as a TOML string: quoted as it is when nothing in it needs escaping, else escaped by tomlkit."""
    return f'"{value}"' if _PLAIN.fullmatch(value) else tomlkit.string(value).as_string()


def _same_url(url: str) -> str:
    return url.rstrip("/")


class FeedEditor:
    """Adds and removes [[feeds]] tables in a config file, keeping every other line as it was.

    Edits are made on the lines of the file, so comments and layout stay where
    the user put them (a TOML library re-attaches comments between tables to
    the wrong table); values are written by tomlkit, so they are escaped
    correctly. New tables are kept aside and written in one go, so adding many
    feeds costs one pass over the file, not one per feed; the names and URLs
    taken are kept in sets. Before the result replaces the file it is loaded
    with the real config loader: an edit that would leave a config.toml that
    does not load is refused and the file is left as it was.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.text = self.path.read_text(encoding="utf-8")
            data = tomllib.loads(self.text)
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot read: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{self.path}: {exc}", "run `briefings check` and fix the file first") from exc
        self._index(data)

    def _index(self, data: dict) -> None:
        tables = data.get("feeds", [])
        tables = tables if isinstance(tables, list) else []
        self._feeds = [OutlineFeed(str(t.get("name", "")), str(t.get("url", ""))) for t in tables if isinstance(t, dict)]
        self._names = {f.name for f in self._feeds}
        self._urls = {_same_url(f.url) for f in self._feeds}
        self._next_number: dict[str, int] = {}  # name -> the first "name (n)" that may be free
        self._pending: list[str] = []  # [[feeds]] tables added, not yet in self.text

    def feeds(self) -> list[OutlineFeed]:
        return list(self._feeds)

    def has_name(self, name: str) -> bool:
        return name in self._names

    def has_url(self, url: str) -> bool:
        return _same_url(url) in self._urls

    def unique_name(self, name: str) -> str:
        if name not in self._names:
            return name
        n = self._next_number.get(name, 2)
        while f"{name} ({n})" in self._names:
            n += 1
        self._next_number[name] = n
        return f"{name} ({n})"

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
        self._pending.append(f"[[feeds]]\nname = {_toml_string(name)}\nurl = {_toml_string(url)}\n")
        self._feeds.append(OutlineFeed(name, url))
        self._names.add(name)
        self._urls.add(_same_url(url))

    def import_outlines(self, outlines: list[OutlineFeed]) -> ImportReport:
        """Add every outline whose URL is valid and not there yet; a name already taken gets a number."""
        from briefings.config import feed_url_problem

        report = ImportReport()
        for outline in outlines:
            problem = feed_url_problem(outline.url)
            if problem:
                report.invalid.append((outline, problem))
            elif self.has_url(outline.url):
                report.already += 1
            else:
                self.add(self.unique_name(outline.name or outline.url), outline.url)
                report.added += 1
        return report

    def _flush(self) -> None:
        """Write the tables kept aside into self.text: after the last [[feeds]], else before the themes."""
        if not self._pending:
            return
        lines = self.text.splitlines(keepends=True)
        block = []
        for table in self._pending:
            block += ["\n"] + table.splitlines(keepends=True)
        blocks = self._blocks(lines)
        if blocks:
            at = blocks[-1][1] + 1
            if at > 0 and not lines[at - 1].endswith("\n"):
                lines[at - 1] += "\n"
            lines[at:at] = block
        else:
            at = next((i for i, line in enumerate(lines) if _TABLE.match(line) and "themes" in line), len(lines))
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            lines[at:at] = block + ["\n"]
        self.text = "".join(lines)
        self._pending = []

    def remove(self, name: str) -> bool:
        self._flush()
        names = [f.name for f in self._feeds]
        if name not in names:
            return False
        lines = self.text.splitlines(keepends=True)
        first, last = self._blocks(lines)[names.index(name)]
        if first > 0 and not lines[first - 1].strip():
            first -= 1  # the blank line that separated it
        del lines[first : last + 1]
        text = "".join(lines)
        data = tomllib.loads(text)  # an edit that breaks the syntax is a bug: fail before saving
        self.text = text
        self._index(data)
        return True

    def check(self) -> None:
        """Load the edited text with the real config loader; ConfigError (nothing saved) if it would not load."""
        from briefings import config as config_module

        self._flush()
        try:
            data = tomllib.loads(self.text)  # an edit that breaks the syntax is a bug, but still never saved
            config_module.from_dict(data, self.path.resolve(), self.text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{self.path}: not saved: the edit would break the TOML syntax: {exc}") from exc
        except ConfigError as exc:
            raise ConfigError(f"{self.path}: not saved, it would not load: {exc.message}",
                              exc.hint or "the file was left as it was") from exc

    def save(self) -> None:
        """Check the result loads, then write atomically: a crash leaves the old file or the new one, never half of one."""
        self.check()
        write_atomic(self.path, self.text, mode=self.path.stat().st_mode & 0o777 if self.path.exists() else None)
