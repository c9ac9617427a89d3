"""Delivery to disk: the briefing's files and the archive index, each written atomically."""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import Iterable

from briefings.config import Config
from briefings.errors import DeliveryError, storage_fault


@functools.cache
def file_mode() -> int:
    """0o666 less the umask: the mode a plain open() would give, so a web server can read the archive.

    Read once, from /proc without changing it (no other thread sees a zero umask); else set and put back.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write to a temporary file beside path, flush it to disk, then rename it over path.

    A disk fault (full, read-only, no permission) is a DeliveryError naming path; path is left as it was.
    """
    if isinstance(content, str):
        content = content.encode("utf-8")
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(fd, file_mode())  # mkstemp makes it 0600
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        error = storage_fault(exc, path, "the archive file", DeliveryError) if isinstance(exc, OSError) else None
        if error is None:
            raise
        raise error from exc


def briefing_paths(output_dir: Path, slug: str) -> tuple[Path, Path]:
    return output_dir / f"{slug}.html", output_dir / f"{slug}.txt"


def write_briefing(output_dir: Path, slug: str, web_html: str, text: str) -> tuple[Path, Path]:
    html_path, text_path = briefing_paths(output_dir, slug)
    write_atomic(html_path, web_html)
    write_atomic(text_path, text)
    return html_path, text_path


def write_archive(config: Config, store, themes: Iterable[str] | None = None) -> list[Path]:
    """archive/index.html and the pages of the given themes (archive/themes/<id>.html), from the store.

    The index lists every briefing, newest first, with its date, entry count and
    theme counts; each theme page lists that theme's entries across briefings.
    themes: the ids whose pages changed (a new briefing's); None for all. A page
    missing on disk is always written. Plain relative links: it all works from
    the file system, without a server.
    """
    from briefings import __version__
    from briefings.compose import entry_excerpt
    from briefings.models import BriefingItem
    from briefings.render import environment, inline_css, item_view

    env = environment(config)
    names = {t.id: t.name for t in config.themes}
    order = {t.id: i for i, t in enumerate(config.themes)}
    pages = {t.id: config.output.dir / "themes" / f"{t.id}.html" for t in config.themes}
    wanted = set(pages) if themes is None else {t for t in themes if t in pages} | {
        t for t, path in pages.items() if not path.exists()}
    totals: dict[str, int] = {}
    groups: dict[str, list[dict]] = {t: [] for t in wanted}
    for row in store.briefings.history():
        theme = row.theme
        if theme not in pages:
            continue  # off-topic, or a theme no longer in config.toml
        totals[theme] = totals.get(theme, 0) + 1
        if theme not in groups:
            continue  # its page has not changed: counted for the index only
        briefing = row.briefing
        bucket = groups[theme]
        if not bucket or bucket[-1]["id"] != briefing.id:
            bucket.append({"id": briefing.id, "slug": briefing.slug, "title": briefing.title,
                           "created": briefing.created, "items": []})
        entry = row.entry
        excerpt = entry_excerpt(entry, config.briefing.excerpt_sentences)
        item = item_view(BriefingItem(entry, row.classification, excerpt), names)
        item["tags"] = [t for t in item["tags"] if t["id"] in names]  # each tag links to its theme's page
        bucket[-1]["items"].append(item)
    written = []
    for theme in config.themes:
        if theme.id not in groups:
            continue
        html = env.get_template("theme.html.j2").render(
            title=config.briefing.title, theme=theme, groups=groups[theme.id], count=totals.get(theme.id, 0),
            version=__version__,
        )
        path = pages[theme.id]
        write_atomic(path, inline_css(html))
        written.append(path)
    rows = []
    listed = store.briefings.all()
    days = [b.created.date() for b in listed]
    for b in listed:
        html_name = Path(b.html_path).name if b.html_path else None
        text_name = Path(b.text_path).name if b.text_path else None
        themes = sorted(b.theme_counts.items(), key=lambda kv: order.get(kv[0], len(order)))
        rows.append(
            {
                "title": b.title,
                "created": b.created,
                # Two briefings on one day are told apart by their time.
                "time": f"{b.created:%H:%M} UTC" if days.count(b.created.date()) > 1 else None,
                "entry_count": b.entry_count,
                "href": html_name,
                "text_href": text_name,
                "themes": [{"id": k, "name": names.get(k, k), "count": v,
                            "page": f"themes/{k}.html" if k in names else None} for k, v in themes],
            }
        )
    index = env.get_template("index.html.j2").render(
        title=config.briefing.title, briefings=rows, version=__version__,
        themes=[{"id": t.id, "name": t.name, "count": totals.get(t.id, 0)} for t in config.themes],
    )
    path = config.output.dir / "index.html"
    write_atomic(path, inline_css(index))
    return [path, *written]
