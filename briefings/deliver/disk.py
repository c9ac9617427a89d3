"""Delivery to disk: the briefing's files and the archive index, each written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from briefings.config import Config


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write to a temporary file beside path, flush it to disk, then rename it over path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if isinstance(content, str):
            content = content.encode("utf-8")
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def briefing_paths(output_dir: Path, slug: str) -> tuple[Path, Path]:
    return output_dir / f"{slug}.html", output_dir / f"{slug}.txt"


def write_briefing(output_dir: Path, slug: str, web_html: str, text: str) -> tuple[Path, Path]:
    html_path, text_path = briefing_paths(output_dir, slug)
    write_atomic(html_path, web_html)
    write_atomic(text_path, text)
    return html_path, text_path


def write_index(config: Config, briefings: list[dict]) -> Path:
    """archive/index.html: every briefing, newest first, with its date, entry count and theme counts."""
    from briefings.render import environment, inline_css

    names = {t.id: t.name for t in config.themes}
    order = {t.id: i for i, t in enumerate(config.themes)}
    rows = []
    for b in briefings:
        html_name = Path(b["html_path"]).name if b.get("html_path") else None
        text_name = Path(b["text_path"]).name if b.get("text_path") else None
        themes = sorted(b["theme_counts"].items(), key=lambda kv: order.get(kv[0], len(order)))
        rows.append(
            {
                "title": b["title"],
                "created": b["created"],
                "entry_count": b["entry_count"],
                "href": html_name,
                "text_href": text_name,
                "themes": [{"id": k, "name": names.get(k, k), "count": v} for k, v in themes],
            }
        )
    html = environment(config).get_template("index.html.j2").render(title=config.briefing.title, briefings=rows)
    path = config.output.dir / "index.html"
    write_atomic(path, inline_css(html))
    return path
