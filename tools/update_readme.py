"""Regenerate the configuration reference in README.md from briefings/config.py (`make docs`)."""

import re
import sys
from pathlib import Path

from briefings.config import settings_markdown

README = Path(__file__).resolve().parent.parent / "README.md"
PATTERN = re.compile(r"(<!-- settings-table:[^\n]*-->\n).*?(\n<!-- /settings-table -->)", re.S)


def updated(text: str) -> str:
    return PATTERN.sub(lambda m: m.group(1) + settings_markdown() + m.group(2), text)


if __name__ == "__main__":
    text = README.read_text(encoding="utf-8")
    new = updated(text)
    if "--check" in sys.argv:
        sys.exit(0 if new == text else 1)
    README.write_text(new, encoding="utf-8")
