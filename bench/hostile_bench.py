"""Hostile-feeds benchmark: the peak memory of one `briefings run` over feeds built to hurt.

    python bench/hostile_bench.py [--scale 1.0] [--keep FOLDER]

The folder, built in a temporary directory and served on 127.0.0.1 as sent (no
compression but the bomb's own):
  huge        a 50 MB well-formed RSS feed (past the default [fetch] max_bytes)
  gzip-bomb   a feed sent gzip-compressed, 1 MB on the wire, 1 GB once inflated
  big-entry   one entry whose content is 5 MB of HTML
  deep        an entry nested 50,000 elements deep, and one whose HTML is nested 100,000 deep
  quadratic   25 KB defining one entity of 10,000 characters and referring to it 5,000 times
  long-title  an entry with a 65,000-character title
  plain       an ordinary feed of five norms entries (the run must still brief them)
One `briefings run --json` (default settings, no reading list) runs in a child
process started by a small launcher, which reports the peak RSS of the largest
process in the run's tree (wait4's ru_maxrss; Linux keeps a process's peak across
exec, so the launcher, not this process, is the command's parent). Printed: the
peak, the wall time, each feed's status, the state file's size, and the longest
title, summary and content stored.

Figures only: nothing here fails on memory or time.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from collect_bench import timed  # noqa: E402

VENV_BIN = Path(sys.executable).parent
MB = 1_000_000
WORDS = ("Member states meet at the open-ended working group to agree on norms of responsible state behaviour "
         "in cyberspace, confidence-building measures and capacity building. ")


def rss(items: list[str], title: str = "Hostile") -> str:
    return ('<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>{title}</title><link>http://hostile.test/</link><description>d</description>"
            + "".join(items) + "</channel></rss>\n")


def item(n, title: str, description: str, extra: str = "") -> str:
    return (f"<item><title>{title}</title><link>http://hostile.test/{n}</link><guid>http://hostile.test/{n}</guid>"
            f"<pubDate>Mon, 03 Jun 2024 09:00:00 GMT</pubDate><description>{description}</description>{extra}</item>")


def build(folder: Path, scale: float = 1.0) -> dict[str, tuple[str, dict]]:
    """Write the hostile feeds into folder: {feed name: (file name, extra response headers)}."""
    folder.mkdir(parents=True, exist_ok=True)
    feeds: dict[str, tuple[str, dict]] = {}

    def put(name: str, data: bytes, headers: dict | None = None) -> None:
        (folder / f"{name}.xml").write_bytes(data)
        feeds[name] = (f"{name}.xml", headers or {})

    # 50 MB of ordinary items.
    one = item("huge/0", "A story", WORDS * 8)
    count = int(50 * MB * scale) // len(one) + 1
    put("huge", rss([item(f"huge/{n}", f"Story {n}", WORDS * 8) for n in range(count)]).encode())

    # A gzip bomb: a feed's opening, then a gigabyte of spaces inside one description.
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    parts = [packer.compress(rss([]).split("</channel>")[0].encode() + b"<item><title>bomb</title><description>")]
    block = b" " * MB
    parts += [packer.compress(block) for _ in range(int(1000 * scale))]
    parts.append(packer.compress(b"</description></item></channel></rss>") + packer.flush())
    put("gzip-bomb", b"".join(parts), {"Content-Encoding": "gzip"})

    # One entry of 5 MB of HTML.
    paragraph = f"<p>{WORDS * 4}</p>"
    html = paragraph * (int(5 * MB * scale) // len(paragraph) + 1)
    put("big-entry", rss([item("big-entry/1", "A five-megabyte entry", "Short summary.",
                               f"<content:encoded><![CDATA[{html}]]></content:encoded>")]).replace(
        '<rss version="2.0">', '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">').encode())

    # Deep nesting: XML elements inside a description, and escaped HTML in another.
    depth = int(50_000 * scale)
    xml_nest = "<x>" * depth + "norms" + "</x>" * depth
    html_depth = 2 * depth
    html_nest = "&lt;div&gt;" * html_depth + "confidence-building measures" + "&lt;/div&gt;" * html_depth
    put("deep", rss([item("deep/1", "Deep XML", xml_nest), item("deep/2", "Deep HTML", html_nest)]).encode())

    # The quadratic blow-up: one entity of 10,000 characters, referred to 5,000 times (25 KB).
    entity = ("norms " * 2000)[: int(10_000 * scale) or 1]
    refs = "&e;" * int(5_000 * scale)
    doc = (f'<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE rss [\n<!ENTITY e "{entity}">\n]>\n'
           + rss([item("quadratic/1", "Quadratic", refs)]).split("\n", 1)[1])
    put("quadratic", doc.encode())

    # A 65,000-character title.
    title = ("Cyber norms " * 6000)[: int(65_000 * scale)]
    put("long-title", rss([item("long-title/1", title, "An entry with a very long title.")]).encode())

    # An ordinary feed, so the run has something to brief.
    topics = ("ransomware attribution", "the hotline test", "capacity building in Africa", "critical infrastructure",
              "the programme of action")
    put("plain", rss([item(f"plain/{n}", f"UN open-ended working group on {topic}",
                           f"States discussed {topic} and the norms of responsible state behaviour. {WORDS}")
                      for n, topic in enumerate(topics)], "Plain").encode())
    return feeds


class RawServer:
    """Files served as they are on disk, with the given extra headers: no compression of its own."""

    def __init__(self, folder: Path, feeds: dict[str, tuple[str, dict]]):
        files = {f"/{file}": (folder / file, headers) for file, headers in feeds.values()}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                path, headers = files.get(self.path, (None, {}))
                if path is None:
                    self.send_error(404)
                    return
                body = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading past its cap, as it should

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, file: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{file}"

    def __enter__(self) -> "RawServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def config(work: Path, server: RawServer, feeds: dict[str, tuple[str, dict]]) -> Path:
    lines = ['[corpus]', 'path = ""', '[state]', 'path = "state/briefings.sqlite3"', '[output]', 'dir = "archive"', '']
    for name, (file, _) in feeds.items():
        lines += ["[[feeds]]", f'name = "{name}"', f'url = "{server.url(file)}"', ""]
    path = work / "config.toml"
    path.write_text("\n".join(lines))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="size of every hostile shape (1.0: as described)")
    parser.add_argument("--keep", type=Path, help="also copy the hostile folder here")
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "briefings")], check=True)
    with tempfile.TemporaryDirectory(prefix="briefings-hostile-") as tmp:
        tmp = Path(tmp)
        feeds = build(tmp / "feeds", args.scale)
        if args.keep:
            shutil.copytree(tmp / "feeds", args.keep, dirs_exist_ok=True)
        sizes = {name: (tmp / "feeds" / file).stat().st_size for name, (file, _) in feeds.items()}
        work = tmp / "work"
        work.mkdir()
        with RawServer(tmp / "feeds", feeds) as server:
            cfg = config(work, server, feeds)
            seconds, peak_mb, out = timed([str(VENV_BIN / "briefings"), "--config", str(cfg), "run", "--json"],
                                          cwd=work, allow_fail=True)
        report = json.loads(out) if out.strip() else {}
        state = work / "state" / "briefings.sqlite3"
        longest = (0, 0, 0)
        if state.exists():
            db = sqlite3.connect(state)
            longest = db.execute("SELECT max(length(title)), max(length(summary_html)), max(length(content_html))"
                                 " FROM entries").fetchone()
            db.close()
        print(f"one `briefings run` over {len(feeds)} hostile feeds (scale {args.scale:g})")
        print(f"  peak RSS       {peak_mb:8.0f} MB   (largest process in the run's tree)")
        print(f"  wall time      {seconds:8.1f} s")
        print(f"  state file     {state.stat().st_size / MB if state.exists() else 0:8.1f} MB")
        print(f"  longest stored title {longest[0] or 0:,} chars, summary {longest[1] or 0:,}, content {longest[2] or 0:,}")
        by_name = {f["name"]: f for f in report.get("feeds", [])}
        for name in feeds:
            feed = by_name.get(name, {})
            status = feed.get("status", "?")
            why = feed.get("error") or feed.get("warning") or ""
            print(f"  {name:<11} {sizes[name] / MB:7.2f} MB on disk  {status:<8} {feed.get('new', 0):>3} new  {why[:90]}")
        print(f"  briefing: {(report.get('briefing') or {}).get('entries', 'none')} entries;"
              f" written: {len(report.get('written', []))} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
