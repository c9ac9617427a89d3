"""The first complete path, as a user walks it: feeds and corpus in, briefing on disk out."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tomllib
from datetime import datetime, timezone
from pathlib import Path

import pytest

from briefings import config as config_module
from briefings.store import MIGRATIONS, SCHEMA_VERSION, Store
from conftest import BACKEND, ROOT, db_rows, fixture_feed, free_port, state_store, write_config

pytestmark = pytest.mark.usefixtures("backend")  # each test on SQLite and on PostgreSQL

THEME_IDS = [
    "harmonization", "risk-reduction", "transparency", "collaboration", "proportionality", "information-sharing",
    "confidence-building", "capacity-building", "critical-infrastructure", "incident-response",
    "international-fora", "secure-development",
]


def serve_fixture_feeds(feed_server):
    return [
        ("Norms Watch", feed_server.add("/norms.rss", fixture_feed("norms.rss"))),
        ("Policy News", feed_server.add("/news.atom", fixture_feed("news.atom"), content_type="application/atom+xml")),
        ("Web page", feed_server.add("/page.html", "<html><body><h1>Our blog</h1><p>Hi</p></body></html>",
                                     content_type="text/html")),
        ("Dead host", f"http://127.0.0.1:{free_port()}/feed.xml"),
    ]


def archive_files(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "archive").glob("*") if p.is_file())


def test_first_run_writes_a_briefing_then_nothing_new(tmp_path, feed_server, cli_run):
    cfg = write_config(tmp_path, serve_fixture_feeds(feed_server))
    result = cli_run("--config", cfg, "run")
    assert result.exit_code == 0, result.stderr
    err = result.stderr
    # One line per failed feed, naming it and why.
    assert re.search(r"^feed Web page: not a feed \(text/html", err, re.M), err
    assert re.search(r"^feed Dead host: connection refused", err, re.M), err
    assert "feed Norms Watch" not in err
    # The path and the one-paragraph summary.
    html_files = [p for p in (tmp_path / "archive").glob("*.html") if p.name != "index.html"]
    assert len(html_files) == 1
    assert f"Wrote {html_files[0]}" in err
    assert "Collected " in err and "from Norms Watch" in err and "Left out as off-topic: " in err
    assert "Feeds: 2 of 4 fetched, 2 failed." in err
    assert html_files[0].with_suffix(".txt").is_file()
    assert (tmp_path / "archive" / "index.html").is_file()

    # Second run: nothing new, no new briefing, says so, exit 0.
    before = archive_files(tmp_path)
    again = cli_run("--config", cfg, "run")
    assert again.exit_code == 0
    assert "Nothing new since the last briefing" in again.stderr
    assert archive_files(tmp_path) == before


def test_briefing_html_reads_as_promised(tmp_path, feed_server, cli_run):
    cfg = write_config(tmp_path, serve_fixture_feeds(feed_server))
    assert cli_run("--config", cfg, "run").exit_code == 0
    page = next(p for p in (tmp_path / "archive").glob("*.html") if p.name != "index.html").read_text()
    assert "<title>Cyber Norms Briefing" in page
    assert "At a glance" in page
    # Sections in taxonomy order, empty ones left out.
    config = config_module.load(cfg)
    names = [t.name for t in config.themes]
    shown = [n for n in names if f">{n} <span" in page]
    assert len(shown) >= 3
    positions = [page.index(f">{n} <span") for n in shown]
    assert positions == sorted(positions)
    # Entries: linked title, source, date; absolute link resolved against the feed's base.
    assert 'href="https://news.example.com/articles/national-strategy"' in page
    assert ">Norms Watch" in page
    assert "16 November 2026" in page
    # The off-topic laptop is left out; the duplicated botnet story appears once, with "also reported by".
    assert "Acme launches" not in page
    assert page.count(">Europol and partners take down a ransomware botnet</a></h3>") == 1  # in full once (a top story)
    assert "Also reported by" in page
    # Feed markup never reaches the page as markup.
    assert "<script>alert(1)</script>" not in page and "alert(1)" not in page
    # CSS inlined: the styled elements carry their style themselves, so a client that strips <style> shows the same.
    without_style = re.sub(r"<style.*?</style>", "", page, flags=re.S)
    assert re.search(r'<h1 class="title" style="[^"]*font-size:\s*26px', without_style)
    assert re.search(r'<a class="entry-link" href="[^"]+" style="[^"]*color:\s*#1d4ed8', without_style)


def test_secondary_themes_are_tags(tmp_path, feed_server, cli_run):
    cfg = write_config(tmp_path, serve_fixture_feeds(feed_server))
    cli_run("--config", cfg, "run")
    with state_store(tmp_path) as store:
        rows = store.db.execute("SELECT title, theme, themes FROM entries WHERE themes IS NOT NULL").fetchall()
    multi = [r for r in rows if len(json.loads(r["themes"])) > 1]
    assert multi, [tuple(r) for r in rows]
    names = {t.id: t.name for t in config_module.load(cfg).themes}
    page = next(p for p in (tmp_path / "archive").glob("*.html") if p.name != "index.html").read_text()
    # Each entry's block carries exactly its secondary themes as tags, by name; the primary is its section.
    blocks = {}
    for block in re.split(r'<div class="entry"', page)[1:]:
        title = re.search(r'<h3 class="entry-title"[^>]*>(?:<a [^>]*>)?(.*?)<', block, flags=re.S).group(1)
        blocks[html.unescape(title)] = re.findall(r'<span class="tag"[^>]*>(.*?)</span>', block)
    for row in rows:
        if row["title"] in blocks:
            secondary = json.loads(row["themes"])[1:]
            assert blocks[row["title"]] == [html.escape(names[t]) for t in secondary], row["title"]
    assert any(blocks[r["title"]] for r in multi if r["title"] in blocks)


def test_json_report_on_stdout(tmp_path, feed_server, cli_run):
    cfg = write_config(tmp_path, serve_fixture_feeds(feed_server))
    result = cli_run("--config", cfg, "run", "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    statuses = {f["name"]: f["status"] for f in report["feeds"]}
    assert statuses == {"Norms Watch": "ok", "Policy News": "ok", "Web page": "failed", "Dead host": "failed"}
    assert report["feeds_failed"] == 2
    assert report["new_by_source"]["Norms Watch"] == 4
    assert report["off_topic"] >= 1
    assert report["briefing"]["entries"] >= 5
    assert all(Path(p).is_file() for p in report["written"])
    assert result.stderr == ""  # --json: nothing but the report


def test_dry_run_writes_and_marks_nothing(tmp_path, feed_server, cli_run):
    cfg = write_config(tmp_path, serve_fixture_feeds(feed_server))
    result = cli_run("--config", cfg, "run", "--dry-run")
    assert result.exit_code == 0
    assert "Would write" in result.stderr
    assert not (tmp_path / "archive").exists()
    assert not (tmp_path / "state" / "briefings.sqlite3").exists()
    if BACKEND["url"]:  # PostgreSQL: the schema may be made, but nothing is stored
        assert db_rows(tmp_path, "SELECT COUNT(*) FROM entries") == [(0,)]
    # The real run afterwards still finds everything new.
    real = cli_run("--config", cfg, "run", "--json")
    assert json.loads(real.stdout)["briefing"] is not None


def test_conditional_get_on_second_run(tmp_path, feed_server, cli_run):
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    cfg = write_config(tmp_path, [("Norms Watch", url)], corpus=None)
    cli_run("--config", cfg, "run")
    cli_run("--config", cfg, "run")
    assert feed_server.statuses("/norms.rss") == [200, 304]
    second = feed_server.log[-1]
    assert second.headers.get("If-None-Match")


def test_entries_included_once_new_ones_next_time(tmp_path, feed_server, cli_run):
    body = fixture_feed("norms.rss").decode()
    url = feed_server.add("/norms.rss", body)
    cfg = write_config(tmp_path, [("Norms Watch", url)], corpus=None)
    first = json.loads(cli_run("--config", cfg, "run", "--json").stdout)
    assert first["briefing"]["entries"] == 3
    newer = body.replace(
        "<item>",
        "<item><title>Paris Call supporters meet on capacity building for emerging economies</title>"
        "<link>https://norms.example.org/2026/paris-call</link><guid>nw-200</guid>"
        "<description>Training for national CERTs and cyber capacity building in emerging economies.</description>"
        "</item><item>",
        1,
    )
    feed_server.add("/norms.rss", newer)
    second = json.loads(cli_run("--config", cfg, "run", "--json").stdout)
    assert second["new_entries"] == 1
    assert second["briefing"]["entries"] == 1
    with state_store(tmp_path) as store:
        counts = store.db.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM entries").fetchone()
        assert counts[0] == counts[1] == 5
        assert store.db.execute("SELECT COUNT(*) FROM entries WHERE briefing_id IS NULL").fetchone()[0] == 0
    index = (tmp_path / "archive" / "index.html").read_text()
    links = re.findall(r'href="(\d{4}-\d\d-\d\d-[^"]+\.html)"', index)
    assert len(links) == 2 and links[0].endswith("-2.html")  # newest first


def test_broken_config_names_file_line_and_key(tmp_path, cli_run):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[output]\ndir = "archive"\n\n[fetch]\nconcurrency = 4\ntimeout = "soon"\n')
    result = cli_run("--config", cfg, "run")
    assert result.exit_code == 2
    assert f"{cfg.resolve()}:6: [fetch] timeout: expected a number" in result.stderr

    cfg.write_text('[output]\ndir = "archive"\nsize = 3\n')
    result = cli_run("--config", cfg, "run")
    assert result.exit_code == 2 and ":3: [output] size: unknown key" in result.stderr

    cfg.write_text('[output\ndir = "archive"\n')
    result = cli_run("--config", cfg, "run")
    assert result.exit_code == 2 and "invalid TOML" in result.stderr and "line 1" in result.stderr

    result = cli_run("--config", tmp_path / "missing.toml", "run")
    assert result.exit_code == 2 and "config file not found" in result.stderr


def test_config_from_environment_variable(tmp_path, cli_run):
    cfg = write_config(tmp_path / "elsewhere", [])
    result = cli_run("run", "--json", env={"BRIEFINGS_CONFIG": str(cfg)})
    assert result.exit_code == 0
    assert json.loads(result.stdout)["corpus_documents"] == 5


def test_unreadable_corpus_document_is_skipped_and_named(tmp_path, cli_run):
    cfg = write_config(tmp_path, [])
    (tmp_path / "sources" / "broken.md").write_bytes(b"---\ntitle: x\n---\n\xff\xfe not utf-8 \x80")
    (tmp_path / "sources" / "bad-front.md").write_text("---\ntitle: [unclosed\n---\nbody text here\n")
    result = cli_run("--config", cfg, "run")
    assert result.exit_code == 0
    assert "skipped" in result.stderr and "broken.md: not UTF-8 text" in result.stderr
    assert "bad-front.md: front matter is not valid YAML" in result.stderr
    assert "Wrote" in result.stderr


@pytest.mark.sqlite_only
def test_store_schema_is_versioned_and_migrations_are_idempotent(tmp_path):
    path = tmp_path / "s.sqlite3"
    with Store(path) as store:
        assert store.version == SCHEMA_VERSION
    with Store(path) as store:  # reopening migrates nothing and loses nothing
        assert store.version == SCHEMA_VERSION
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    from briefings.errors import StoreError

    with pytest.raises(StoreError, match="newer than this briefings"):
        Store(path)


def _database_at_version(path: Path, version: int) -> None:
    """A state file as briefings left it at schema `version`, holding a feed, entries, a briefing and its outbox."""
    db = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:version]:
        db.executescript(script)
    db.execute(f"PRAGMA user_version = {version}")
    db.execute("INSERT INTO feeds (name, url, etag, last_modified, status, consecutive_failures)"
               " VALUES ('Norms Watch', 'https://norms.example.org/feed', '\"v1\"', 'Mon, 16 Nov 2026 08:00:00 GMT', 'ok', 0)")
    db.execute("INSERT INTO briefings (id, slug, title, created, period_end, entry_count, theme_counts)"
               " VALUES (1, '2026-11-16-norms', 'Norms', '2026-11-16T08:00:00+00:00', '2026-11-16T08:00:00+00:00', 1,"
               " '{\"confidence-building\": 1}')")
    for i, briefing in ((1, 1), (2, None)):
        db.execute("INSERT INTO entries (id, key, source_kind, source_name, title, link, first_seen, summary_html,"
                   " theme, themes, scores, evidence, briefing_id) VALUES (?, ?, 'feed', 'Norms Watch', ?, ?,"
                   " '2026-11-15T08:00:00+00:00', '<p>Body</p>', 'confidence-building', '[\"confidence-building\"]',"
                   " '{\"confidence-building\": 9.0}', '{}', ?)",
                   (i, f"key-{i}", f"Story {i}", f"https://norms.example.org/{i}", briefing))
    db.execute("INSERT INTO entry_sources (entry_id, source_name, link, key, first_seen)"
               " VALUES (2, 'Other', 'https://other.example.org/2', 'other-2', '2026-11-15T09:00:00+00:00')")
    db.execute("INSERT INTO briefing_entries (briefing_id, entry_id, theme, position) VALUES (1, 1, 'confidence-building', 0)")
    db.execute("INSERT INTO deliveries (briefing_id, recipient, status, attempts, last_error, message_id)"
               " VALUES (1, 'ana@example.org', 'pending', 1, '451 later', '<m1@norms.example.org>')")
    if version >= 2:
        db.execute("UPDATE deliveries SET name = 'Ana', themes = '[\"confidence-building\"]'")
    if version >= 3:
        db.execute("INSERT INTO meta (key, value) VALUES ('last_briefing_run', '2026-11-16T08:05:00+00:00')")
    if version >= 4:
        db.execute("UPDATE feeds SET item_hashes = X'00112233'")
    db.close()


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
@pytest.mark.sqlite_only
def test_every_migration_keeps_the_data_of_the_schema_before(tmp_path, version):
    path = tmp_path / "state.sqlite3"
    _database_at_version(path, version)
    with Store(path) as store:
        assert store.version == SCHEMA_VERSION
        feed = store.feeds.get("Norms Watch")
        assert (feed.url, feed.etag, feed.status) == ("https://norms.example.org/feed", '"v1"', "ok")
        assert feed.item_hashes == (b"\x00\x11\x22\x33" if version >= 4 else None)
        pending = store.entries.pending()
        assert [(e.title, c.theme) for e, c in pending] == [("Story 2", "confidence-building")]
        assert pending[0][0].sources == [("Norms Watch", "https://norms.example.org/2"), ("Other", "https://other.example.org/2")]
        assert [e.title for e, _ in store.entries.of_briefing(1)] == ["Story 1"]
        assert [(b.slug, b.theme_counts) for b in store.briefings.all()] == [("2026-11-16-norms", {"confidence-building": 1})]
        (delivery,) = store.outbox.list()
        assert (delivery.recipient, delivery.status, delivery.attempts, delivery.last_error) == (
            "ana@example.org", "pending", 1, "451 later")
        assert delivery.channel == "email"  # every delivery stored before channels is an e-mail
        assert (delivery.name, delivery.themes) == (("Ana", ("confidence-building",)) if version >= 2 else ("", ()))
        assert store.meta.last_briefing_time().isoformat() == (
            "2026-11-16T08:05:00+00:00" if version >= 3 else "2026-11-16T08:00:00+00:00")
        # And the migrated file takes the writes of today's schema.
        store.meta.set_time("last_briefing_run", datetime(2026, 11, 23, tzinfo=timezone.utc))
        assert [d.recipient for d in store.outbox.due(datetime(2026, 11, 23, tzinfo=timezone.utc))] == ["ana@example.org"]
    with Store(path) as store:
        assert store.version == SCHEMA_VERSION and len(store.entries.pending()) == 1


def test_shipped_config_has_the_twelve_themes_in_order():
    data = tomllib.loads((ROOT / "config.toml").read_text())
    assert list(data["themes"]) == THEME_IDS
    for theme in data["themes"].values():
        assert theme["name"] and theme["description"] and len(theme["terms"]) >= 5
    assert 8 <= len(data["feeds"]) <= 15
    config = config_module.load(ROOT / "config.toml")
    assert config.corpus.path == ROOT / "sources"


def test_shipped_corpus_has_front_matter():
    from briefings.collect.corpus import load_corpus, split_front_matter

    docs = sorted((ROOT / "sources").glob("*.md"))
    assert len(docs) == 5
    for doc in docs:
        meta, body = split_front_matter(doc.read_text())
        for key in ("title", "author", "publisher", "date"):
            assert meta.get(key), (doc.name, key)
        if meta.get("date_estimated"):
            assert meta.get("date_evidence"), doc.name
        assert "\t" not in body and "•" not in body
        assert not re.search(r"[a-z]-\n[a-z]", body), f"{doc.name}: hyphenated line break left"
    result = load_corpus(ROOT / "sources")
    assert len(result.entries) == 5 and not result.skipped


def test_readme_first_command_with_shipped_config_offline(tmp_path):
    """The acceptance path in a subprocess: the shipped config, its real feeds failing fast, a briefing of the corpus."""
    work = tmp_path / "checkout"
    work.mkdir()
    shutil.copy(ROOT / "config.toml", work / "config.toml")
    shutil.copytree(ROOT / "sources", work / "sources")
    shutil.copy(ROOT / "themes-examples.jsonl", work / "themes-examples.jsonl")
    env = {k: v for k, v in os.environ.items() if k != "BRIEFINGS_CONFIG"}
    # Offline on purpose: every proxy variable names a closed local port, so every feed fails fast there
    # and nothing leaves this machine, with or without a network.
    closed = f"http://127.0.0.1:{free_port()}"
    for name in ("http_proxy", "https_proxy", "all_proxy"):  # both cases: the lower-case one wins where both are set
        env[name] = env[name.upper()] = closed
    env["no_proxy"] = env["NO_PROXY"] = ""
    cmd = [sys.executable, "-m", "briefings", "--config", str(work / "config.toml"), "run"]
    first = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    config = config_module.load(work / "config.toml")
    failed_lines = [ln for ln in first.stderr.splitlines() if ln.startswith("feed ")]
    assert len(failed_lines) == len(config.feeds)
    # Every feed went to the closed proxy, none to the network: the test holds on a machine with DNS.
    assert all(f"cannot reach the proxy {closed} (connection refused)" in ln for ln in failed_lines), failed_lines
    assert re.search(r"^Wrote .*/archive/\d{4}-\d\d-\d\d-cyber-norms-briefing\.html$", first.stderr, re.M)
    assert "Collected 5 new entries" in first.stderr
    second = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0
    assert "Nothing new since the last briefing" in second.stderr
