"""Rendering benchmark: a 300-entry briefing, premailer included.

    python bench/render_bench.py [--entries 300] [--repeat 5]

Builds a briefing of N entries over the twelve shipped themes (the fixed sample
the render tests use), renders it as `briefings run` does (the e-mail, limited
per theme and CSS-inlined; the plain text; the full web page, CSS-inlined) and
prints the wall time, the share of it spent in premailer, and the sizes. Also
times one e-mail variant alone (what each distinct recipient theme-set costs).
Target: under 1 s for the whole render. Figures only: nothing here fails.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from briefings import config as config_module
    from briefings import render as render_module
    from render_samples import CREATED, big_briefing

    config = config_module.load(ROOT / "config.toml")
    briefing = big_briefing(config, args.entries)
    premailer_seconds = 0.0
    original = render_module.inline_css

    def timed_inline(html: str) -> str:
        nonlocal premailer_seconds
        started = time.perf_counter()
        try:
            return original(html)
        finally:
            premailer_seconds += time.perf_counter() - started

    render_module.inline_css = timed_inline
    render_module.render(briefing, config, generated=CREATED)  # warm: templates compiled, lxml loaded
    walls, shares = [], []
    for _ in range(args.repeat):
        premailer_seconds = 0.0
        started = time.perf_counter()
        rendered = render_module.render(briefing, config, generated=CREATED)
        wall = time.perf_counter() - started
        walls.append(wall)
        shares.append(premailer_seconds / wall)
    email_only = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        render_module.render(briefing, config, generated=CREATED, web=False)
        email_only.append(time.perf_counter() - started)
    email_kb = len(rendered.html.encode()) / 1024
    web_kb = len(rendered.web_html.encode()) / 1024
    print(f"{args.entries} entries in {len(briefing.sections)} themes, best of {args.repeat} (median in brackets)")
    print(f"  render, e-mail + text + web page: {min(walls):.3f} s ({statistics.median(walls):.3f} s); "
          f"premailer {statistics.median(shares):.0%} of it")
    print(f"  one e-mail variant alone (per distinct recipient theme set): {min(email_only):.3f} s")
    print(f"  e-mail HTML {email_kb:.1f} KB ({rendered.email_limit} entries per theme shown; Gmail clips at 102 KB), "
          f"text {len(rendered.text.encode()) / 1024:.1f} KB, web page {web_kb:.1f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
