"""Delivery benchmark: one briefing to N recipients over SMTP on loopback.

    python bench/smtp_bench.py [--recipients 1000] [--theme-sets 4]

Steps, each a whole `briefings` process timed from outside:
  1. `briefings run` with the shipped reading list and [smtp] pointing at a port
     where nothing listens: the briefing is composed and its N deliveries stored
     in the outbox (every send fails at connect and stays pending);
  2. an aiosmtpd sink starts on 127.0.0.1 (in this process, a thread);
  3. `briefings send --now` delivers the outbox: messages/s and peak memory.

Recipients are spread over --theme-sets distinct theme restrictions, so the
briefing is rendered that many times, as for a real list. For a floor, the
same number of ready-made messages is then sent with plain smtplib over one
connection, and the ratio printed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import smtplib
import sys
import tempfile
import time
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from collect_bench import timed  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BRIEFINGS = str(Path(sys.executable).parent / "briefings")
THEME_SETS = [[], ["international-fora", "harmonization"], ["critical-infrastructure"],
              ["capacity-building", "confidence-building"], ["incident-response"], ["secure-development", "transparency"]]
LABELED = Path(__file__).resolve().parent / "data" / "norms-labeled.jsonl"


def labeled_feed(folder: Path) -> Path:
    """An RSS feed of the labeled set (a busy week of norms news, with some off-topic items)."""
    from email.utils import format_datetime
    from datetime import datetime, timedelta, timezone
    from xml.sax.saxutils import escape

    now = datetime.now(timezone.utc)
    items = []
    for i, line in enumerate(LABELED.read_text(encoding="utf-8").splitlines()):
        item = json.loads(line)
        items.append(f"<item><title>{escape(item['title'])}</title><link>https://news.bench.example/{item['id']}</link>"
                     f"<guid>https://news.bench.example/{item['id']}</guid>"
                     f"<pubDate>{format_datetime(now - timedelta(hours=i))}</pubDate>"
                     f"<description>{escape(item['text'])}</description></item>")
    path = folder / "feeds" / "week.rss"
    path.parent.mkdir()
    path.write_text('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Norms week</title>'
                    + "".join(items) + "</channel></rss>", encoding="utf-8")
    return path


class Sink:
    """Counts what arrives; keeps the last message to check it parses."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.count = 0
        self.last = b""
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.count += len(envelope.rcpt_tos)
                sink.last = envelope.content
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        self.controller.stop()


def write_config(folder: Path, port: int, recipients: int, theme_sets: int, feed_url: str) -> Path:
    shutil.copytree(ROOT / "sources", folder / "sources")
    shipped = (ROOT / "config.toml").read_text(encoding="utf-8")
    themes = shipped[shipped.index("[themes."):]
    lines = ['[corpus]', 'path = "sources"', '[state]', 'path = "state/briefings.sqlite3"', '[output]',
             'dir = "archive"', '[smtp]', 'host = "127.0.0.1"', f'port = {port}', 'security = "none"',
             'from = "Norms Briefing <briefings@bench.example>"', 'timeout = 10', 'retry_minutes = 0',
             'max_attempts = 50', '[email]', 'unsubscribe_mailto = "leave@bench.example"',
             'unsubscribe_url = "https://bench.example/unsubscribe?who={email}"', '[classify]',
             'examples = "' + str(ROOT / "themes-examples.jsonl") + '"', '',
             '[[feeds]]', 'name = "Norms week"', f'url = "{feed_url}"', '']
    for i in range(recipients):
        themes_of = THEME_SETS[i % max(1, min(theme_sets, len(THEME_SETS)))]
        lines += ["[[recipients]]", f'email = "reader{i:05d}@bench.example"', f'name = "Reader {i}"']
        if themes_of:
            lines.append("themes = " + json.dumps(themes_of))
        lines.append("")
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n" + themes, encoding="utf-8")
    return path


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smtplib_floor(port: int, count: int, message: bytes) -> float:
    msg = message_from_bytes(message, _class=EmailMessage)
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as client:
        for i in range(count):
            del msg["To"]
            msg["To"] = f"reader{i:05d}@bench.example"
            client.send_message(msg)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument("--theme-sets", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    from feedserver import FeedServer

    with tempfile.TemporaryDirectory(prefix="briefings-smtp-bench-") as tmp:
        work = Path(tmp)
        port = free_port()
        feed = labeled_feed(work)
        server = FeedServer(feed.parent).__enter__()
        config = write_config(work, port, args.recipients, args.theme_sets, server.url(feed.name))
        compose_s, compose_mb, _ = timed([BRIEFINGS, "--config", str(config), "run", "--json"], cwd=work,
                                         allow_fail=True)
        sink = Sink()
        try:
            # Point the config at the sink's port: the outbox itself is unchanged.
            text = config.read_text(encoding="utf-8").replace(f"port = {port}\n", f"port = {sink.port}\n", 1)
            config.write_text(text, encoding="utf-8")
            send_s, send_mb, out = timed([BRIEFINGS, "--config", str(config), "send", "--now", "--json"], cwd=work)
            report = json.loads(out)
            delivered = sink.count
            size = len(sink.last)
            floor_s = smtplib_floor(sink.port, args.recipients, sink.last)
        finally:
            sink.stop()
            server.__exit__(None, None, None)

    rate = delivered / send_s if send_s else 0.0
    floor_rate = args.recipients / floor_s if floor_s else 0.0
    figures = {
        "recipients": args.recipients,
        "theme_sets": min(args.theme_sets, len(THEME_SETS)),
        "compose_seconds": round(compose_s, 2),
        "compose_peak_mb": round(compose_mb, 1),
        "delivered": delivered,
        "send_seconds": round(send_s, 2),
        "messages_per_second": round(rate, 1),
        "send_peak_mb": round(send_mb, 1),
        "message_bytes": size,
        "smtplib_floor_seconds": round(floor_s, 2),
        "smtplib_messages_per_second": round(floor_rate, 1),
        "report_sent": report.get("sent"),
    }
    print(f"{args.recipients} recipients over {figures['theme_sets']} theme sets, messages of {size / 1024:.0f} KB")
    print(f"  compose + outbox (briefings run, sends refused): {compose_s:.2f} s, peak {compose_mb:.0f} MB")
    print(f"  briefings send --now: {delivered} delivered in {send_s:.2f} s = {rate:.0f} messages/s, "
          f"peak {send_mb:.0f} MB")
    print(f"  plain smtplib, one ready-made message re-addressed: {floor_rate:.0f} messages/s "
          f"(briefings at {rate / floor_rate:.2f}x of it)" if floor_rate else "")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if delivered == args.recipients else 1


if __name__ == "__main__":
    sys.exit(main())
