"""Robustness sweep: serve a folder of feed documents on loopback and collect them all.

    python bench/realworld_sweep.py FOLDER [--timeout 15] [--json]

Every .xml, .rss, .atom, .rdf, .json and .html file under FOLDER becomes one feed
in a throwaway config; one whole `briefings collect --json` process fetches them
from a loopback server (bench/feedserver.py, which honours `<file>.headers`
sidecars). The sweep then prints how many documents parsed, how many failed and
why, and compares each document's entry count with plain `feedparser.parse` of the
same bytes, so an entry briefings dropped that feedparser kept shows up by name.

Exit status 1 if the collect process crashed; a failing document is a finding,
not a crash.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from collect_bench import timed  # noqa: E402
from feedserver import FeedServer  # noqa: E402

FEED_SUFFIXES = {".xml", ".rss", ".atom", ".rdf", ".json", ".html"}


def documents(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in FEED_SUFFIXES
                  and "LICENSES" not in p.parts)


def feedparser_counts(folder: Path, docs: list[Path]) -> dict[str, tuple[int, bool]]:
    """Entries and bozo flag per document from plain feedparser over the same bytes."""
    import feedparser

    counts = {}
    for doc in docs:
        headers = {}
        sidecar = doc.with_name(doc.name + ".headers")
        if sidecar.is_file():
            for line in sidecar.read_text(errors="replace").splitlines():
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
        parsed = feedparser.parse(doc.read_bytes(), response_headers=headers)
        counts[str(doc.relative_to(folder))] = (len(parsed.entries), bool(parsed.bozo))
    return counts


def reason_class(error: str | None) -> str:
    """Group failure messages: the text up to the first colon, with numbers folded."""
    if not error:
        return "(no reason given)"
    head = error.split(":")[0]
    return re.sub(r"\d+(\.\d+)?", "N", head).strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--timeout", type=float, default=15)
    parser.add_argument("--json", action="store_true", help="print the findings as one JSON object")
    args = parser.parse_args()
    folder = args.folder.resolve()
    docs = documents(folder)
    if not docs:
        print(f"no feed documents under {folder}", file=sys.stderr)
        return 2
    names = [str(d.relative_to(folder)) for d in docs]

    with tempfile.TemporaryDirectory(prefix="briefings-sweep-") as tmp, FeedServer(folder) as server:
        work = Path(tmp)
        lines = ['[corpus]', 'path = ""', '[state]', 'path = "state/briefings.sqlite3"', '[output]',
                 'dir = "archive"', '[fetch]', f'timeout = {args.timeout}', 'per_host = 8', '']
        for name in names:
            lines += ["[[feeds]]", f"name = {json.dumps(name)}", f"url = {json.dumps(server.url(name))}", ""]
        config = work / "config.toml"
        config.write_text("\n".join(lines))
        started = time.perf_counter()
        try:
            seconds, peak_mb, out = timed([str(Path(sys.executable).parent / "briefings"), "--config", str(config),
                                           "collect", "--json"], cwd=work)
        except RuntimeError as exc:
            print(f"CRASH: {exc}", file=sys.stderr)
            return 1
        report = json.loads(out)
        wall = time.perf_counter() - started

    oracle = feedparser_counts(folder, docs)
    by_status = collections.Counter(f["status"] for f in report["feeds"])
    failures = collections.defaultdict(list)
    fewer = []
    stored = 0
    for feed in report["feeds"]:
        stored += feed["new"]
        if feed["status"] in ("failed", "gone"):
            failures[reason_class(feed["error"])].append((feed["name"], feed["error"]))
            continue
        expected, _bozo = oracle[feed["name"]]
        if feed["entries"] < expected:
            fewer.append((feed["name"], feed["entries"], expected))
    warned = sum(1 for f in report["feeds"] if f.get("warning"))
    findings = {
        "documents": len(docs),
        "parsed": by_status.get("ok", 0),
        "failed": sum(len(v) for v in failures.values()),
        "with_parse_warning": warned,
        "entries_parsed": sum(f["entries"] for f in report["feeds"]),
        "entries_feedparser": sum(c for c, _ in oracle.values()),
        "entries_stored": stored,
        "seconds": round(seconds, 2),
        "peak_mb": round(peak_mb, 1),
        "failures": {k: v for k, v in sorted(failures.items())},
        "fewer_entries_than_feedparser": fewer,
    }
    if args.json:
        print(json.dumps(findings, indent=2))
        return 0
    print(f"{findings['documents']} documents from {folder} in {seconds:.2f} s (peak {peak_mb:.0f} MB, sweep {wall:.1f} s)")
    print(f"  parsed: {findings['parsed']} ({warned} with a parse warning kept as bozo)")
    print(f"  failed: {findings['failed']}")
    print(f"  entries: {findings['entries_parsed']} parsed by briefings, {findings['entries_feedparser']} by plain "
          f"feedparser over the same bytes, {stored} stored after de-duplication")
    for reason, items in sorted(failures.items(), key=lambda kv: -len(kv[1])):
        print(f"\n  {len(items)} x {reason}")
        for name, error in items:
            print(f"    {name}: {error}")
    if fewer:
        print("\n  documents where briefings kept fewer entries than feedparser found:")
        for name, got, expected in fewer:
            print(f"    {name}: {got} of {expected}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
