"""The corpus: a folder of .md, .txt and .html documents with optional front matter.

Front matter is YAML between two ``---`` lines at the top of the file::

    ---
    title: Five Principles for Shaping Cybersecurity Norms
    author: Paul Nicholas
    publisher: Microsoft
    date: 2013-02-28
    url: https://example.org/post
    ---

Every key is optional: the title falls back to the first heading or the file
name, the date to the file's modification time.
"""

from __future__ import annotations

import hashlib
import html
import re
from datetime import date, datetime, time, timezone
from pathlib import Path


from briefings.models import CorpusResult, Entry
from briefings.text import html_to_text, plain_title

SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm")
_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.M)
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_HTML_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.I | re.S)


def load_corpus(folder: Path | None, source_name: str = "Reading list") -> CorpusResult:
    """Every readable document under folder; unreadable ones are skipped and named."""
    result = CorpusResult()
    if folder is None:
        return result
    problem = folder_problem(folder)
    if problem:
        result.skipped.append((str(folder), problem))
        return result
    import yaml  # here: a collect with no reading list does not pay for it

    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        try:
            result.entries.append(load_document(path, source_name))
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
            result.skipped.append((str(path), _reason(exc)))
    return result


def folder_problem(folder: Path) -> str | None:
    """What is wrong with folder as the reading list (None: nothing): missing, or a file."""
    if folder.is_dir():
        return None
    if folder.exists():
        return "is a file, not a folder: set [corpus] path to the folder of your documents (empty: no reading list)"
    return "corpus folder not found: create it, or check [corpus] path (empty: no reading list)"


def _reason(exc: Exception) -> str:
    import yaml

    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text: save it as UTF-8"
    if isinstance(exc, yaml.YAMLError):
        return f"front matter is not valid YAML: {str(exc).splitlines()[0]}"
    return str(exc) or type(exc).__name__


def load_document(path: Path, source_name: str = "Reading list") -> Entry:
    raw = path.read_text(encoding="utf-8")
    meta, body = split_front_matter(raw)
    is_html = path.suffix.lower() in (".html", ".htm")
    if is_html:
        title = meta.get("title") or _first(_HTML_TITLE, body)
        inner = _first(_HTML_BODY, body) or body
        content_html = inner
    else:
        title = meta.get("title") or _first(_HEADING, body)
        content_html = markdown_to_html(body)
    title = plain_title(str(title)) if title else path.stem.replace("-", " ").replace("_", " ")
    if not html_to_text(content_html).strip():
        raise ValueError("document has no text")
    url = meta.get("url") or meta.get("link")
    published = _as_datetime(meta.get("date")) or datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    flags = ("date-estimated",) if meta.get("date_estimated") else ()
    labels = meta.get("themes") or ()
    if isinstance(labels, str):
        labels = [labels]
    if not isinstance(labels, (list, tuple)) or not all(isinstance(x, str) for x in labels):
        raise ValueError("front matter themes must be a list of theme ids")
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()[:24]
    author = meta.get("author")
    if isinstance(author, list):
        author = ", ".join(map(str, author))
    return Entry(
        key=f"link:{url}" if url else f"corpus:{digest}",
        source_kind="corpus",
        source_name=str(meta.get("publisher") or source_name),
        title=title,
        link=str(url) if url else None,
        author=str(author) if author else None,
        published=published,
        summary_html=html.escape(str(meta["summary"])) if meta.get("summary") else "",
        content_html=content_html,
        flags=flags,
        labels=tuple(labels),
    )


def split_front_matter(raw: str) -> tuple[dict, str]:
    raw = raw.lstrip("\ufeff")
    match = _FRONT.match(raw)
    if not match:
        return {}, raw
    import yaml

    meta = yaml.safe_load(match.group(1)) or {}
    if not isinstance(meta, dict):
        raise ValueError("front matter must be key: value lines")
    return meta, raw[match.end():]


def markdown_to_html(text: str) -> str:
    """Enough Markdown for a reading list: headings, paragraphs, lists, emphasis and links, escaped."""
    blocks = re.split(r"\n\s*\n", text.strip())
    out = []
    for block in blocks:
        lines = [ln.rstrip() for ln in block.splitlines() if ln.strip()]
        if not lines:
            continue
        heading = _HEADING.match(lines[0])
        if heading and len(lines) == 1:
            level = min(6, len(lines[0].lstrip()) - len(lines[0].lstrip().lstrip("#")))
            out.append(f"<h{level}>{_inline(heading.group(1))}</h{level}>")
        elif all(_BULLET.match(ln) for ln in lines):
            tag = "ol" if re.match(r"^\s*\d", lines[0]) else "ul"
            items = "".join(f"<li>{_inline(_BULLET.sub('', ln))}</li>" for ln in lines)
            out.append(f"<{tag}>{items}</{tag}>")
        elif all(ln.lstrip().startswith(">") for ln in lines):
            out.append(f"<blockquote>{_inline(' '.join(ln.lstrip()[1:].strip() for ln in lines))}</blockquote>")
        else:
            out.append(f"<p>{_inline(' '.join(ln.strip() for ln in lines))}</p>")
    return "\n".join(out)


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"\[([^\]]+)\]\((https?://[^)\s]+)\)", lambda m: f'<a href="{html.escape(m.group(2))}">{m.group(1)}</a>', text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", text)
    return text


def _first(pattern: re.Pattern, text: str) -> str | None:
    m = pattern.search(text)
    return m.group(1).strip() if m else None


def _as_datetime(value) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time(12, 0), timezone.utc)
    if isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None
