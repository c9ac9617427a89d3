"""The collect stage against a server that misbehaves in every way the web does.

Every case is a real HTTP exchange on 127.0.0.1; the state is a real SQLite file.
"""

from __future__ import annotations

import gzip
import json
import os
import pty
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import zlib
from datetime import datetime, timedelta, timezone

import pytest

from briefings.models import FeedResult
from briefings.store import Store
from conftest import FIXTURES, fixture_feed, free_port, write_config

TIMEOUT = 2  # [fetch] timeout in these tests, seconds
NORMS_TITLES = {
    "UN Open-Ended Working Group agrees annual progress report",
    "Europol and partners take down a ransomware botnet",
    "OSCE participating States test their cyber hotline",
    "Acme launches a faster laptop with a brighter screen",
}


def fetch_settings(**extra) -> str:
    settings = {"timeout": TIMEOUT, "concurrency": 16, "per_host": 16, "max_bytes": 200_000} | extra
    return "\n".join(f"{k} = {v}" for k, v in settings.items())


def collect_json(cli_run, cfg) -> dict:
    result = cli_run("--config", cfg, "collect", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def stored(cfg_dir, source: str) -> set[str]:
    """Titles of the stories a source carried: stored under it, or as another source of a story stored first."""
    db = sqlite3.connect(cfg_dir / "state" / "briefings.sqlite3")
    try:
        return {
            row[0]
            for row in db.execute(
                "SELECT title FROM entries WHERE source_name = ? OR id IN"
                " (SELECT entry_id FROM entry_sources WHERE source_name = ?)",
                (source, source),
            )
        }
    finally:
        db.close()


# -- handlers that misbehave ------------------------------------------------------------


def slow_first_byte(handler):
    time.sleep(TIMEOUT + 1.5)
    try:
        handler.send_response(200)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    except OSError:
        pass


def one_byte_per_second(handler):
    body = fixture_feed("norms.rss")
    try:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        for i in range(len(body)):
            handler.wfile.write(body[i : i + 1])
            handler.wfile.flush()
            time.sleep(0.5 if i < 4 else 1.0)
    except OSError:
        pass  # the client gave up, as it should


class SilentServer:
    """Accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.conns = []
        self.stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
                self.conns.append(conn)
            except OSError:
                continue

    @property
    def url(self):
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/feed.xml"

    def close(self):
        self.stop = True
        self.thread.join()
        for conn in self.conns:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.close()


def _raw_deflate(data: bytes) -> bytes:
    """Deflate without the zlib wrapper, as some servers send Content-Encoding: deflate."""
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


NORMS = fixture_feed("norms.rss")
# Declared UTF-8 (header and XML), written in Windows-1252.
WRONG_ENCODING = NORMS.replace(b"faster laptop", "faster laptop for the caf\u00e9".encode("cp1252")).replace(
    b"norms.example.org", b"enc.example.org")
BROKEN_XML = NORMS.replace(b"</channel>", b"<item><title>Broken & <b>unclosed</title></channel>")

# name: (route path, body or handler, route options, status, words in the error, words in the warning)
MISBEHAVIOURS = {
    "healthy rss": ("/healthy.rss", NORMS, {}, "ok", (), ()),
    "healthy atom": ("/healthy.atom", fixture_feed("news.atom"), {"content_type": "application/atom+xml"}, "ok", (), ()),
    "slow first byte": ("/slow", slow_first_byte, {}, "failed", (f"timed out after {TIMEOUT} s", "raise [fetch] timeout"), ()),
    "one byte a second": ("/trickle", one_byte_per_second, {}, "failed",
                          (f"timed out after {TIMEOUT} s", "raise [fetch] timeout"), ()),
    "never answers": (None, None, {}, "failed", (f"timed out after {TIMEOUT} s", "raise [fetch] timeout"), ()),
    "server error": ("/500", b"oops", {"status": 500, "content_type": "text/plain"}, "failed", ("HTTP 500", "retried"), ()),
    "not found": ("/404", b"nope", {"status": 404, "content_type": "text/plain"}, "failed", ("HTTP 404", "check the URL"), ()),
    "gone": ("/410", b"gone", {"status": 410, "content_type": "text/plain"}, "gone", ("410 Gone",), ()),
    "redirect loop": ("/loop-a", b"", {"status": 302, "headers": {"Location": "/loop-b"}, "conditional": False},
                      "failed", ("redirect loop",), ()),
    "gzip": ("/gzip.rss", NORMS.replace(b"nw-1", b"gz-1"), {"gzip": True}, "ok", (), ()),
    "too large": ("/large.rss", NORMS + b"<!--" + b"x" * 300_000 + b"-->", {}, "failed", ("larger than 200000 bytes",), ()),
    # 1 KB on the wire, past the cap once inflated: the cap holds on what is decompressed.
    "gzip bomb": ("/bomb.rss", gzip.compress(NORMS + b"<!--" + b" " * 1_000_000 + b"-->"),
                  {"headers": {"Content-Encoding": "gzip"}}, "failed", ("larger than 200000 bytes",), ()),
    "corrupt gzip": ("/corrupt.rss", b"\x1f\x8b\x08\x00" + b"not gzip at all" * 20, {"headers": {"Content-Encoding": "gzip"}},
                     "failed", ("does not decode (gzip",), ()),
    "labeled gzip, sent plain": ("/mislabeled.rss", NORMS.replace(b"nw-1", b"ml-1"), {"headers": {"Content-Encoding": "gzip"}},
                                 "ok", (), ("labels the body gzip but sent it uncompressed",)),
    "deflate": ("/deflate.rss", zlib.compress(NORMS.replace(b"nw-1", b"df-1")), {"headers": {"Content-Encoding": "deflate"}},
                "ok", (), ()),
    "raw deflate": ("/raw-deflate.rss", _raw_deflate(NORMS.replace(b"nw-1", b"rd-1")),
                    {"headers": {"Content-Encoding": "deflate"}}, "ok", (), ()),
    "html page": ("/page.html", b"<html><head><title>Blog</title></head><body><p>Hello</p></body></html>",
                  {"content_type": "text/html"}, "failed", ("not a feed (text/html",), ()),
    # Bozo feeds keep what parses and say so.
    "invalid xml": ("/invalid.rss", BROKEN_XML.replace(b"nw-1", b"bx-1"), {}, "ok", (), ("not well-formed",)),
    "wrong encoding": ("/enc.rss", WRONG_ENCODING.replace(b"nw-1", b"we-1"), {}, "ok", (), ("declared as utf-8, but parsed as windows-1252",)),
    "empty 200": ("/empty", b"", {}, "failed", ("empty response",), ()),
}
# What an ok feed carried, stored under it or as another source of the same story stored first.
STORED = {
    "healthy rss": NORMS_TITLES,
    "healthy atom": 3,
    "invalid xml": NORMS_TITLES | {"Broken & unclosed"},
    "wrong encoding": NORMS_TITLES - {"Acme launches a faster laptop with a brighter screen"}
    | {"Acme launches a faster laptop for the caf\u00e9 with a brighter screen"},
}


@pytest.fixture(scope="module")
def misbehaving_collect(tmp_path_factory):
    """One collect of every misbehaving feed at once, side by side: (report, seconds, folder, server)."""
    from conftest import FeedServer

    server, silent = FeedServer(), SilentServer()
    try:
        feeds = []
        for name, (path, body, options, *_) in MISBEHAVIOURS.items():
            if path is None:
                feeds.append((name, silent.url))
            elif callable(body):
                feeds.append((name, server.add(path, handler=body, **options)))
            else:
                feeds.append((name, server.add(path, body, **options)))
        server.add("/loop-b", b"", status=302, headers={"Location": "/loop-a"}, conditional=False)
        folder = tmp_path_factory.mktemp("misbehaving")
        cfg = write_config(folder, feeds, corpus=None, fetch=fetch_settings())
        from click.testing import CliRunner

        from briefings.cli import cli

        started = time.monotonic()
        result = CliRunner().invoke(cli, ["--config", str(cfg), "collect", "--json"], catch_exceptions=False)
        seconds = time.monotonic() - started
        assert result.exit_code == 0, result.output
        yield json.loads(result.stdout), seconds, folder, server
    finally:
        silent.close()
        server.close()


@pytest.mark.parametrize("name", list(MISBEHAVIOURS))
def test_each_misbehaviour_is_reported_and_each_healthy_feed_stored(misbehaving_collect, name):
    report, _, folder, _ = misbehaving_collect
    *_, status, error_words, warning_words = MISBEHAVIOURS[name]
    (feed,) = [f for f in report["feeds"] if f["name"] == name]
    assert feed["status"] == status, feed
    for word in error_words:
        assert word in (feed["error"] or ""), feed
    if not error_words:
        assert not feed["error"], feed
    for word in warning_words:
        assert word.lower() in (feed["warning"] or "").lower(), feed["warning"]
    carried = stored(folder, name)
    if status == "ok":
        expected = STORED.get(name, NORMS_TITLES)
        assert (len(carried) == expected) if isinstance(expected, int) else (carried == expected), carried
    else:
        assert not carried


def test_misbehaving_feeds_run_side_by_side_and_are_reported_in_config_order(misbehaving_collect):
    report, seconds, folder, server = misbehaving_collect
    # Every slow case is cut at the timeout; they run side by side.
    assert seconds < TIMEOUT * 3, seconds
    assert [f["name"] for f in report["feeds"]] == list(MISBEHAVIOURS)
    # The gzip feed was asked for compressed.
    (request,) = [r for r in server.log if r.path == "/gzip.rss"]
    assert "gzip" in request.headers.get("Accept-Encoding", "")
    # The copies under other GUIDs are stored once, with every source remembered; health is stored per feed.
    db = sqlite3.connect(folder / "state" / "briefings.sqlite3")
    try:
        carriers = {row[0] for row in db.execute("SELECT source_name FROM entry_sources")}
        assert {"gzip", "deflate", "raw deflate", "labeled gzip, sent plain", "invalid xml", "wrong encoding"} <= carriers
        row = db.execute("SELECT consecutive_failures, last_error, disabled FROM feeds WHERE name = 'gone'").fetchone()
        assert row[0] == 1 and "410" in row[1] and row[2] == 1
    finally:
        db.close()


def test_gone_feed_is_not_requested_again(tmp_path, feed_server, cli_run):
    url = feed_server.add("/410", b"", status=410)
    cfg = write_config(tmp_path, [("gone", url)], corpus=None, fetch=fetch_settings())
    collect_json(cli_run, cfg)
    second = collect_json(cli_run, cfg)
    assert feed_server.statuses("/410") == [410]
    assert second["feeds"][0]["status"] == "skipped"
    assert "disabled after 410 Gone" in second["feeds"][0]["error"]


def test_gone_feed_is_enabled_again_when_its_url_changes(tmp_path, feed_server, cli_run):
    gone = feed_server.add("/410", b"", status=410)
    cfg = write_config(tmp_path, [("gone", gone)], corpus=None, fetch=fetch_settings())
    assert collect_json(cli_run, cfg)["feeds"][0]["status"] == "gone"
    assert collect_json(cli_run, cfg)["feeds"][0]["status"] == "skipped"
    new = feed_server.add("/new.rss", fixture_feed("norms.rss"))
    cfg.write_text(cfg.read_text().replace(gone, new))
    again = collect_json(cli_run, cfg)["feeds"][0]
    assert (again["status"], again["url"], again["entries"]) == ("ok", new, 4)
    assert feed_server.statuses("/410") == [410] and feed_server.statuses("/new.rss") == [200]
    row = sqlite3.connect(tmp_path / "state" / "briefings.sqlite3").execute(
        "SELECT disabled, consecutive_failures, url FROM feeds WHERE name = 'gone'").fetchone()
    assert row == (0, 0, new)


@pytest.mark.parametrize("code", [301, 308])
def test_permanent_redirect_updates_the_stored_url(tmp_path, feed_server, cli_run, code):
    new = feed_server.add("/new.rss", fixture_feed("norms.rss"))
    old = feed_server.add("/old.rss", b"", status=code, headers={"Location": "/new.rss"}, conditional=False)
    cfg = write_config(tmp_path, [("moved", old)], corpus=None, fetch=fetch_settings())
    first = collect_json(cli_run, cfg)
    assert first["feeds"][0]["moved_to"] == new
    assert len(stored(tmp_path, "moved")) == 4
    second = collect_json(cli_run, cfg)
    # The second run goes straight to the new address, conditionally.
    assert feed_server.statuses("/old.rss") == [code]
    assert feed_server.statuses("/new.rss") == [200, 304]
    assert second["feeds"][0]["status"] == "not-modified"
    assert second["feeds"][0]["url"] == new


def test_temporary_redirect_keeps_the_configured_url(tmp_path, feed_server, cli_run):
    feed_server.add("/new.rss", fixture_feed("norms.rss"))
    old = feed_server.add("/old.rss", b"", status=302, headers={"Location": "/new.rss"}, conditional=False)
    cfg = write_config(tmp_path, [("moved", old)], corpus=None, fetch=fetch_settings())
    assert collect_json(cli_run, cfg)["feeds"][0]["moved_to"] is None
    collect_json(cli_run, cfg)
    assert feed_server.statuses("/old.rss") == [302, 302]


# A collect in a fresh process, which then says whether it ever loaded the feed parser.
COLLECT_THEN_REPORT_MODULES = """
import json, sys
from briefings.cli import cli
try:
    cli(["--config", sys.argv[1], "collect", "--json"])
except SystemExit as end:
    assert not end.code, end.code
print(json.dumps({"feedparser": "feedparser" in sys.modules, "parse": "briefings.collect.parse" in sys.modules
                  and "feedparser" in vars(sys.modules["briefings.collect.parse"])}), file=sys.stderr)
"""


@pytest.mark.parametrize("count", [1, 4])  # parsed in the collecting thread; in worker processes
def test_conditional_get_costs_no_parse(tmp_path, feed_server, cli_run, count):
    feeds = [(f"norms {i}", feed_server.add(f"/norms{i}.rss", fixture_feed("norms.rss").replace(b"nw-", f"n{i}-".encode())))
             for i in range(count)]
    cfg = write_config(tmp_path, feeds, corpus=None, fetch=fetch_settings(workers=2))
    first = collect_json(cli_run, cfg)
    assert [f["entries"] for f in first["feeds"]] == [4] * count
    run = subprocess.run([sys.executable, "-c", COLLECT_THEN_REPORT_MODULES, str(cfg)],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    second = json.loads(run.stdout)
    assert json.loads(run.stderr.splitlines()[-1]) == {"feedparser": False, "parse": False}
    for i in range(count):
        assert feed_server.statuses(f"/norms{i}.rss") == [200, 304]
        request = [r for r in feed_server.log if r.path == f"/norms{i}.rss"][1]
        assert request.headers["If-None-Match"].startswith('"')
        assert request.headers["If-Modified-Since"].endswith("GMT")
    assert [(f["status"], f["entries"]) for f in second["feeds"]] == [("not-modified", 0)] * count
    assert second["new_entries"] == 0


def test_the_test_server_serves_a_changed_feed_as_modified(feed_server):
    """What the tests above rely on: a feed whose body changed is never answered 304, whichever validator is sent."""
    import httpx

    url = feed_server.add("/f.rss", fixture_feed("norms.rss"))
    first = httpx.get(url)
    validators = {"If-None-Match": first.headers["ETag"], "If-Modified-Since": first.headers["Last-Modified"]}
    for sent in ({"If-None-Match"}, {"If-Modified-Since"}, set(validators)):
        headers = {k: v for k, v in validators.items() if k in sent}
        assert httpx.get(url, headers=headers).status_code == 304, sent
    feed_server.add("/f.rss", fixture_feed("norms.rss").replace(b"nw-1", b"changed-1"))
    for sent in ({"If-None-Match"}, {"If-Modified-Since"}, set(validators)):
        headers = {k: v for k, v in validators.items() if k in sent}
        changed = httpx.get(url, headers=headers)
        assert changed.status_code == 200 and b"changed-1" in changed.content, sent
        assert changed.headers["ETag"] != validators["If-None-Match"]
        assert changed.headers["Last-Modified"] != validators["If-Modified-Since"]


def test_user_agent_names_briefings_version_and_url(tmp_path, feed_server, cli_run):
    from briefings import __version__

    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    cfg = write_config(tmp_path, [("norms", url)], corpus=None, fetch=fetch_settings())
    collect_json(cli_run, cfg)
    agent = feed_server.log[0].headers["User-Agent"]
    assert agent.startswith(f"briefings/{__version__}") and "http" in agent


def test_per_host_limit_is_respected(tmp_path, feed_server, cli_run):
    active, peak, lock = [0], [0], threading.Lock()
    body = fixture_feed("norms.rss")

    def counted(handler):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.3)
        with lock:
            active[0] -= 1
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    feeds = [(f"f{i}", feed_server.add(f"/f{i}.rss", handler=counted)) for i in range(6)]
    cfg = write_config(tmp_path, feeds, corpus=None, fetch=fetch_settings(per_host=2, concurrency=8))
    report = collect_json(cli_run, cfg)
    assert all(f["status"] == "ok" for f in report["feeds"])
    assert peak[0] == 2


def test_failing_feed_backs_off_exponentially_and_success_resets(tmp_path):
    now = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
    with Store(tmp_path / "s.sqlite3") as store:
        store.feeds.ensure("flaky", "http://127.0.0.1:9/flaky")
        waits = []
        for i in range(8):
            store.feeds.record(FeedResult("flaky", "u", "failed", error="HTTP 503"), now=now, backoff_max_hours=6)
            row = store.feeds.get("flaky")
            waits.append((row.next_try - now) if row.next_try else timedelta(0))
        assert row.consecutive_failures == 8
        hours = [w.total_seconds() / 3600 for w in waits]
        assert hours[0] == 0  # one failure: tried again next run
        assert hours[1:5] == [0.5, 1, 2, 4]
        assert hours[5:] == [6, 6, 6]  # capped
        store.feeds.record(FeedResult("flaky", "u", "ok"), now=now, backoff_max_hours=6)
        row = store.feeds.get("flaky")
        assert row.consecutive_failures == 0 and row.next_try is None and row.last_success == now


def test_backing_off_feed_is_skipped_with_the_reason(tmp_path, feed_server, cli_run):
    url = feed_server.add("/503", b"", status=503)
    cfg = write_config(tmp_path, [("flaky", url)], corpus=None, fetch=fetch_settings())
    collect_json(cli_run, cfg)
    collect_json(cli_run, cfg)
    third = collect_json(cli_run, cfg)
    assert feed_server.statuses("/503") == [503, 503]
    assert third["feeds"][0]["status"] == "skipped"
    assert "backing off after 2 failures" in third["feeds"][0]["error"]


def test_entries_are_normalized(tmp_path, feed_server, cli_run):
    future = (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    rss = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>T</title><link>http://x.test/</link>
<item><title>Ministers &amp; diplomats &lt;agree&gt; on &#8220;norms&#8221;</title><link>/posts/one</link>
<guid isPermaLink="false">one</guid><pubDate>Tue, 17 Nov 2026 10:30:00 +0200</pubDate><dc:creator>A. Author</dc:creator>
<description>&lt;p&gt;Body &lt;b&gt;kept&lt;/b&gt; as HTML.&lt;/p&gt;</description></item>
<item><title>From the future</title><link>http://x.test/future</link><pubDate>{future}</pubDate>
<description>Dated a month ahead.</description></item>
<item><title>No date</title><link>http://x.test/nodate</link><description>Undated.</description></item>
<item><title>Twice</title><guid isPermaLink="false">dup</guid><description>First copy of the same GUID.</description></item>
<item><title>Twice</title><guid isPermaLink="false">dup</guid><description>First copy of the same GUID.</description></item>
</channel></rss>"""
    url = feed_server.add("/n.rss", rss)
    cfg = write_config(tmp_path, [("n", url)], corpus=None, fetch=fetch_settings())
    before = datetime.now(timezone.utc).replace(microsecond=0)
    report = collect_json(cli_run, cfg)
    assert report["new_entries"] == 4  # the repeated GUID is stored once
    db = sqlite3.connect(tmp_path / "state" / "briefings.sqlite3")
    db.row_factory = sqlite3.Row
    rows = {r["title"]: r for r in db.execute("SELECT * FROM entries")}
    one = rows["Ministers & diplomats <agree> on \u201cnorms\u201d"]
    assert one["link"] == feed_server.url("/posts/one")  # resolved against the feed's address
    assert one["published"] == "2026-11-17T08:30:00+00:00"
    assert one["author"] == "A. Author"
    assert "<b>kept</b>" in one["summary_html"]
    assert "future-date" in rows["From the future"]["flags"]
    assert datetime.fromisoformat(rows["From the future"]["published"]) < before + timedelta(days=1, minutes=5)
    nodate = rows["No date"]
    assert nodate["published"] is None and datetime.fromisoformat(nodate["first_seen"]) >= before


def test_json_collect_is_silent_on_stderr(tmp_path, feed_server, cli_run):
    cfg = write_config(tmp_path, [("dead", f"http://127.0.0.1:{free_port()}/x")], corpus=None, fetch=fetch_settings())
    result = cli_run("--config", cfg, "collect", "--json")
    assert result.stderr == ""
    report = json.loads(result.stdout)
    assert "connection refused" in report["feeds"][0]["error"]


def test_progress_bar_on_a_terminal_only(tmp_path, feed_server):
    feeds = [(f"f{i}", feed_server.add(f"/f{i}.rss", fixture_feed("norms.rss").replace(b"nw-", f"f{i}-".encode())))
             for i in range(3)]
    feeds.append(("dead", f"http://127.0.0.1:{free_port()}/x"))
    cfg = write_config(tmp_path, feeds, corpus=None, fetch=fetch_settings())
    command = [sys.executable, "-m", "briefings", "--config", str(cfg), "collect"]
    # stderr a terminal: the bar, then the problem line after it.
    master, slave = pty.openpty()
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    tty_text = b"".join(chunks).decode("utf-8", "replace")
    assert "Fetching feeds" in tty_text and "4/4" in tty_text
    assert tty_text.index("4/4") < tty_text.index("feed dead: connection refused")
    # stderr a pipe (cron, a log): no bar, the problem line only.
    piped = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert "Fetching feeds" not in piped.stderr
    assert "feed dead: connection refused" in piped.stderr


def test_json_feed_and_bomless_utf16_are_read(tmp_path, feed_server, cli_run):
    json_feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Cyber Desk",
        "items": [
            {"id": "https://desk.example/1", "url": "https://desk.example/1", "title": "GGE <report> adopted",
             "content_html": "<p>The group <b>adopted</b> its report.</p>", "date_published": "2026-11-17T09:00:00+01:00",
             "authors": [{"name": "Desk"}]},
            {"id": "2", "url": "/2", "content_text": "Untitled note on capacity building.\n\nSecond paragraph.",
             "date_modified": "2026-11-18T10:00:00Z"},
        ],
    }
    utf16 = ('<rss version="2.0"><channel><title>Sixteen</title><item><title>Caf\u00e9 diplomacy</title>'
             '<link>http://x.test/cafe</link><description>Norms over coffee.</description></item></channel></rss>')
    feeds = [("json", feed_server.add("/feed.json", json.dumps(json_feed), content_type="application/feed+json")),
             ("be", feed_server.add("/be.xml", utf16.encode("utf-16-be"), content_type="application/xml")),
             ("le", feed_server.add("/le.xml", utf16.encode("utf-16-le"), content_type="application/xml"))]
    cfg = write_config(tmp_path, feeds, corpus=None, fetch=fetch_settings())
    report = collect_json(cli_run, cfg)
    assert [f["status"] for f in report["feeds"]] == ["ok", "ok", "ok"], report["feeds"]
    db = sqlite3.connect(tmp_path / "state" / "briefings.sqlite3")
    db.row_factory = sqlite3.Row
    rows = {r["title"]: r for r in db.execute("SELECT * FROM entries")}
    first = rows["GGE <report> adopted"]  # JSON Feed titles are plain text
    assert first["published"] == "2026-11-17T08:00:00+00:00" and first["author"] == "Desk"
    assert "<b>adopted</b>" in first["content_html"]
    second = next(r for t, r in rows.items() if t.startswith("Untitled note"))
    assert second["link"] == feed_server.url("/2") and "<p>Second paragraph.</p>" in second["content_html"]
    assert "Caf\u00e9 diplomacy" in rows  # once: both byte orders carry the same story


def test_a_web_page_names_its_feed(tmp_path, feed_server, cli_run):
    page = ('<!doctype html><html><head><title>Blog</title>'
            '<link rel="alternate" type="application/rss+xml" title="RSS" href="/feed.rss"></head>'
            '<body><p>Posts</p></body></html>')
    page_url = feed_server.add("/blog/", page, content_type="text/html")
    feed_url = feed_server.add("/feed.rss", fixture_feed("norms.rss"))
    cfg = write_config(tmp_path, [("blog", page_url)], corpus=None, fetch=fetch_settings())
    report = collect_json(cli_run, cfg)
    assert report["feeds"][0]["status"] == "failed"
    assert f"names its feed at {feed_url}" in report["feeds"][0]["error"]
    other = tmp_path / "other"
    cfg = write_config(other, [], corpus=None, fetch=fetch_settings())
    result = cli_run("--config", cfg, "feeds", "add", page_url)
    assert result.exit_code == 0, result.output
    assert "is a web page; adding the feed it names" in result.stderr
    assert f'url = "{feed_url}"' in cfg.read_text() and page_url not in cfg.read_text()


NO_FEED_PAGES = {
    "well-formed": ("<html><head><title>Blog</title></head><body><p>Hello</p></body></html>", "text/html"),
    "not well-formed": ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>Blog</title></head>'
                        "<body><p>Hello<br>world</p></body></html>", "text/html; charset=utf-8"),
    "XHTML": ('<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>Blog</title></head>'
              "<body><p>Hi</p></body></html>", "application/xhtml+xml"),
    "labeled as a download": ("<!doctype html>\n<html><head><title>Blog</title><link rel=stylesheet href=/s.css>"
                              "</head><body><p>Hi</body></html>", "application/octet-stream"),
}


@pytest.mark.parametrize("command", ["collect", "feeds add"])
@pytest.mark.parametrize("page", list(NO_FEED_PAGES))
def test_a_web_page_that_names_no_feed_says_so_not_a_parse_error(tmp_path, feed_server, cli_run, page, command):
    body, content_type = NO_FEED_PAGES[page]
    url = feed_server.add("/blog/", body, content_type=content_type)
    if command == "collect":
        cfg = write_config(tmp_path, [("blog", url)], corpus=None, fetch=fetch_settings())
        (feed,) = collect_json(cli_run, cfg)["feeds"]
        assert feed["status"] == "failed"
        said = feed["error"]
    else:
        cfg = write_config(tmp_path, [], corpus=None, fetch=fetch_settings())
        result = cli_run("--config", cfg, "feeds", "add", url)
        assert result.exit_code == 2 and "Traceback" not in result.output
        (said,) = result.stderr.splitlines()[:1]
        assert url in said and url not in cfg.read_text()
    assert "this is a web page and names no feed: give the feed's URL" in said, said
    assert not any(word in said for word in ("mismatched", "not well-formed", "syntax error", "XML media type")), said


def _rss(items: list[tuple[str, str]], extra_channel: str = "") -> str:
    body = "".join(f"<item><title>{t}</title><link>https://inc.example.org/{g}</link><guid>https://inc.example.org/{g}</guid>"
                   f"<description>{t}: the text of item {g}.</description></item>" for g, t in items)
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Inc</title>{extra_channel}'
            f"{body}</channel></rss>")


@pytest.mark.parametrize("ill_formed", [False, True])
def test_a_changed_feed_parses_only_the_items_that_changed(tmp_path, feed_server, cli_run, ill_formed):
    # An unescaped "&" makes the document ill-formed: it is then parsed whole every time, and nothing is lost.
    noise = "<copyright>Tom & Jerry</copyright>" if ill_formed else ""
    old = [("1", "Ministers meet on norms"), ("2", "OEWG session opens"), ("3", "CERTs exercise together")]
    url = feed_server.add("/inc.rss", _rss(old, noise))
    cfg = write_config(tmp_path, [("inc", url)], corpus=None, fetch=fetch_settings(workers=1))
    first = collect_json(cli_run, cfg)["feeds"][0]
    assert (first["entries"], first["unchanged_items"], first["new"]) == (3, 0, 3)
    changed = [("4", "A new treaty is signed"), ("1", "Ministers meet on norms (updated)"), ("2", "OEWG session opens"),
               ("3", "CERTs exercise together"), ("5", "Capacity fund announced")]
    feed_server.add("/inc.rss", _rss(changed, noise + "<lastBuildDate>Mon, 23 Nov 2026 08:00:00 GMT</lastBuildDate>"))
    second = collect_json(cli_run, cfg)["feeds"][0]
    assert second["status"] == "ok" and second["new"] == 2
    if ill_formed:
        assert (second["entries"], second["unchanged_items"]) == (5, 0)
    else:
        assert (second["entries"], second["unchanged_items"]) == (3, 2)  # items 4, 5 and the edited 1
    titles = {r[0] for r in sqlite3.connect(tmp_path / "state" / "briefings.sqlite3").execute("SELECT title FROM entries")}
    assert titles == {"Ministers meet on norms", "OEWG session opens", "CERTs exercise together",
                      "A new treaty is signed", "Capacity fund announced"}


def test_a_whole_collect_process_parses_in_forked_workers(tmp_path, feed_server):
    """The CLI as cron runs it: a fresh process with no other thread forks its parse workers."""
    feeds = []
    for i in range(6):
        items = [(f"{i}-{n}", f"Story {n} of feed {i} on cyber norms") for n in range(4)]
        feeds.append((f"f{i}", feed_server.add(f"/f{i}.rss", _rss(items))))
    cfg = write_config(tmp_path, feeds, corpus=None, fetch=fetch_settings(workers=2))
    run = subprocess.run([sys.executable, "-m", "briefings", "--config", str(cfg), "collect", "--json"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert [f["status"] for f in report["feeds"]] == ["ok"] * 6 and report["new_entries"] == 24
    # Again after a change: only the new item of each feed is parsed.
    for i in range(6):
        items = [(f"{i}-new", f"Fresh story of feed {i}")] + [(f"{i}-{n}", f"Story {n} of feed {i} on cyber norms") for n in range(4)]
        feed_server.add(f"/f{i}.rss", _rss(items))
    run = subprocess.run([sys.executable, "-m", "briefings", "--config", str(cfg), "collect", "--json"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    report = json.loads(run.stdout)
    assert report["new_entries"] == 6
    assert all((f["entries"], f["unchanged_items"]) == (1, 4) for f in report["feeds"])


def test_the_buffered_sax_driver_reads_feeds_as_the_standard_one_does():
    import xml.sax
    from xml.sax import expatreader
    from xml.sax.handler import ContentHandler

    from briefings.collect import saxdriver
    from briefings.collect.parse import _feedparser

    feedparser = _feedparser()
    # Many lines and entities in one element: unbuffered expat reports them in dozens of pieces.
    escaped = "\n".join(f"&lt;p&gt;Line {i} &amp;amp; more&lt;/p&gt;" for i in range(40))
    many_pieces = fixture_feed("norms.rss").replace(b"<description>", f"<description>{escaped}".encode(), 1)
    documents = [fixture_feed("norms.rss"), fixture_feed("news.atom"), many_pieces,
                 fixture_feed("norms.rss").replace(b"</channel>", b"<item><title>Broken & </channel>")]

    preferred = feedparser.api.PREFERRED_XML_PARSERS
    assert preferred == ["briefings.collect.saxdriver"]
    assert isinstance(xml.sax.make_parser(preferred), saxdriver.BufferedExpatParser)
    buffered = [feedparser.parse(d, sanitize_html=False, resolve_relative_uris=False) for d in documents]
    saved = preferred[:]
    preferred[:] = ["xml.sax.expatreader"]
    try:
        standard = [feedparser.parse(d, sanitize_html=False, resolve_relative_uris=False) for d in documents]
    finally:
        preferred[:] = saved
    assert not standard[0].bozo and standard[3].bozo and len(standard[2].entries) == 4
    for before, after in zip(standard, buffered):
        assert after.entries == before.entries and after.feed == before.feed
        assert after.bozo == before.bozo and str(after.get("bozo_exception")) == str(before.get("bozo_exception"))

    class Pieces(ContentHandler):
        def __init__(self):
            super().__init__()
            self.pieces = []

        def characters(self, content):
            if "Line" in content:
                self.pieces.append(content)

    counts = {}
    for name, reader in (("standard", expatreader.create_parser()), ("buffered", saxdriver.create_parser())):
        handler = Pieces()
        reader.setContentHandler(handler)
        reader.feed(many_pieces)
        reader.close()
        counts[name] = len(handler.pieces)
    assert counts["buffered"] == 1 and counts["standard"] >= 40, counts


def test_https_feeds_are_verified_and_plain_http_ones_redirect_to_them(tmp_path, feed_server, cli_run, monkeypatch):
    import ssl

    import trustme

    from conftest import FeedServer

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    secure = FeedServer(tls=context)
    try:
        norms = fixture_feed("norms.rss")
        feeds = [
            ("secure", secure.add("/feed.rss", norms)),
            ("moved to https", feed_server.add("/old.rss", b"", status=301, conditional=False,
                                               headers={"Location": secure.url("/moved.rss")})),
        ]
        secure.add("/moved.rss", norms.replace(b"nw-1", b"mv-1"))
        cfg = write_config(tmp_path, feeds, corpus=None, fetch=fetch_settings())

        # Our CA is not trusted yet: the certificate is refused, and nothing is stored.
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        monkeypatch.setenv("SSL_CERT_FILE", str(_ca_file(tmp_path, trustme.CA())))
        report = collect_json(cli_run, cfg)
        for feed in report["feeds"]:
            assert feed["status"] == "failed" and "TLS certificate of 127.0.0.1 is not trusted" in feed["error"], feed
            assert "SSL_CERT_FILE" in feed["error"]
        assert not stored(tmp_path, "secure")

        monkeypatch.setenv("SSL_CERT_FILE", str(_ca_file(tmp_path, ca)))
        report = collect_json(cli_run, cfg)
        by_name = {f["name"]: f for f in report["feeds"]}
        assert by_name["secure"]["status"] == "ok" and by_name["moved to https"]["status"] == "ok"
        assert by_name["moved to https"]["moved_to"] == secure.url("/moved.rss")
        assert stored(tmp_path, "secure") == NORMS_TITLES
        assert {r.path for r in secure.log} == {"/feed.rss", "/moved.rss"}
        # `feeds add` checks an https:// feed through the same client.
        added = cli_run("--config", cfg, "feeds", "add", secure.add("/other.rss", norms), "--name", "other")
        assert added.exit_code == 0 and "Added 'other'" in added.stdout, added.output
    finally:
        secure.close()


def _ca_file(folder, ca):
    path = folder / f"ca-{id(ca)}.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def test_a_stop_request_starts_no_feed_that_waits_for_its_hosts_turn(feed_server):
    """Feeds queued behind [fetch] per_host are not fetched once a stop is asked (#13)."""
    from briefings.collect.feeds import fetch_all
    from briefings.config import FeedConfig, FetchSettings

    body = fixture_feed("norms.rss")
    asked = threading.Event()

    def slow(handler):
        asked.set()  # the first request: the stop comes while it is in flight
        time.sleep(0.5)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    feeds = [FeedConfig(f"f{i}", feed_server.add(f"/f{i}.rss", handler=slow)) for i in range(6)]
    settings = FetchSettings(concurrency=6, per_host=1, workers=1)
    results = [r for batch in fetch_all(feeds, settings, stop=asked.is_set) for r in batch]
    fetched = [r for r in results if r.status == "ok"]
    assert len(results) == 6
    assert len(fetched) == 1, [(r.name, r.status) for r in results]
    assert len(feed_server.log) == 1
    assert all(r.error == "not fetched: stopping" for r in results if r.status != "ok")



def test_a_url_httpx_refuses_is_one_reason_not_an_internal_error():
    """httpx.InvalidURL is not an httpx.HTTPError: a URL that got past the config (#13)."""
    from briefings.collect.feeds import fetch_all
    from briefings.config import FeedConfig, FetchSettings

    feeds = [FeedConfig("odd", "http://\u2603.example/feed")]
    (result,) = [r for batch in fetch_all(feeds, FetchSettings(workers=1)) for r in batch]
    assert result.status == "failed"
    assert result.error.startswith("invalid URL") and "internal error" not in result.error, result.error
