"""Delivery to disk: the briefing's files and the archive pages, each written atomically.

Nothing here renders: the pages come built from briefings.render (``archive_pages``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from briefings import files
from briefings.errors import DeliveryError, storage_fault


def write_atomic(path: Path, content: str | bytes) -> None:
    """files.write_atomic for an archive file: a disk fault (full, read-only, no permission) is a
    DeliveryError naming path; path is left as it was."""
    try:
        files.write_atomic(path, content)
    except OSError as exc:
        error = storage_fault(exc, path, "the archive file", DeliveryError)
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


def write_pages(output_dir: Path, pages: Mapping[str, str]) -> list[Path]:
    """Each page (a path relative to output_dir -> its HTML) written, in the order given; their paths."""
    written = []
    for name, content in pages.items():
        path = output_dir / name
        write_atomic(path, content)
        written.append(path)
    return written
