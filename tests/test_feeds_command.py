"""`briefings feeds`: list, add, remove, import and export, editing a real config.toml."""

from __future__ import annotations

import difflib
import json
import tomllib

import pytest

from briefings import config as config_module
from conftest import ROOT, fixture_feed, free_port, write_config

OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0"><head><title>My reader</title></head><body>
  <outline text="Policy">
    <outline type="rss" text="Norms Watch" xmlUrl="{norms}" htmlUrl="https://norms.example.org/"/>
    <outline type="rss" title="Cyber &amp; Law" xmlUrl="https://law.example.org/feed"/>
  </outline>
  <outline text="a folder with no feed"/>
  <outline type="rss" text="Norms Watch" xmlUrl="https://other.example.org/rss"/>
  <outline type="rss" text="ftp feed" xmlUrl="ftp://old.example.org/feed"/>
</body></opml>
"""


def shipped_copy(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text((ROOT / "config.toml").read_text(encoding="utf-8"), encoding="utf-8")
    return cfg


def test_add_names_the_feed_from_its_title_and_keeps_comments(tmp_path, feed_server, cli_run):
    cfg = shipped_copy(tmp_path)
    before = cfg.read_text(encoding="utf-8")
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    result = cli_run("--config", cfg, "feeds", "add", url)
    assert result.exit_code == 0, result.output
    assert "Added 'Norms Watch'" in result.stdout
    after = cfg.read_text(encoding="utf-8")
    # Every line of the file is still there, in order; the new table sits after the last feed.
    diff = [d for d in difflib.ndiff(before.splitlines(), after.splitlines()) if d[:1] in "+-"]
    assert sorted(diff) == sorted(["+ ", "+ [[feeds]]", '+ name = "Norms Watch"', f'+ url = "{url}"'])
    assert f'url = "https://directionsblog.eu/feed/"\n\n[[feeds]]\nname = "Norms Watch"\nurl = "{url}"\n' in after
    config = config_module.load(cfg)
    assert config.feeds[-1].name == "Norms Watch" and config.feeds[-1].url == url
    assert len(config.themes) == 12
    assert after.index(f'url = "{url}"') < after.index("# The norms themes")


def test_add_refuses_what_is_not_a_feed_and_duplicates(tmp_path, feed_server, cli_run):
    cfg = shipped_copy(tmp_path)
    before = cfg.read_text(encoding="utf-8")
    page = feed_server.add("/page.html", "<html><body><p>Blog</p></body></html>", content_type="text/html")
    result = cli_run("--config", cfg, "feeds", "add", page)
    assert result.exit_code == 2
    assert "not a feed (text/html" in result.stderr and "--no-check" in result.stderr
    result = cli_run("--config", cfg, "feeds", "add", "https://www.lawfaremedia.org/feeds/lawfare")
    assert result.exit_code == 2 and "already in" in result.stderr
    assert cfg.read_text(encoding="utf-8") == before


@pytest.mark.parametrize("case, reason", [
    ("dead link", "connection refused by 127.0.0.1"),
    ("server error", "HTTP 500"),
    ("not found", "HTTP 404"),
    ("gone", "410 Gone"),
    ("empty", "empty response"),
])
def test_add_refuses_a_dead_link_or_a_failing_server(tmp_path, feed_server, cli_run, case, reason):
    url = {
        "dead link": f"http://127.0.0.1:{free_port()}/feed.xml",
        "server error": feed_server.add("/500", b"oops", status=500, content_type="text/plain"),
        "not found": feed_server.add("/404", b"nope", status=404, content_type="text/plain"),
        "gone": feed_server.add("/410", b"", status=410),
        "empty": feed_server.add("/empty", b""),
    }[case]
    cfg = shipped_copy(tmp_path)
    before = cfg.read_text(encoding="utf-8")
    result = cli_run("--config", cfg, "feeds", "add", url)
    assert result.exit_code == 2, result.output
    (line,) = [text for text in result.stderr.splitlines() if url in text]
    assert reason in line and "--no-check" in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert cfg.read_text(encoding="utf-8") == before
    # --no-check adds it all the same.
    forced = cli_run("--config", cfg, "feeds", "add", url, "--name", "anyway", "--no-check")
    assert forced.exit_code == 0, forced.output
    assert [(f.name, f.url) for f in config_module.load(cfg).feeds][-1] == ("anyway", url)


def test_add_with_name_and_no_check(tmp_path, cli_run):
    cfg = shipped_copy(tmp_path)
    result = cli_run("--config", cfg, "feeds", "add", "https://x.example.org/feed", "--name", 'Quote "me"', "--no-check")
    assert result.exit_code == 0, result.output
    assert config_module.load(cfg).feeds[-1].name == 'Quote "me"'


def test_remove_takes_out_one_table_only(tmp_path, cli_run):
    cfg = shipped_copy(tmp_path)
    result = cli_run("--config", cfg, "feeds", "remove", "The Record")
    assert result.exit_code == 0, result.output
    names = [f.name for f in config_module.load(cfg).feeds]
    assert "The Record" not in names and len(names) == 10
    assert "# Feeds: name and URL." in cfg.read_text(encoding="utf-8")
    result = cli_run("--config", cfg, "feeds", "remove", "No such feed")
    assert result.exit_code == 2 and "no feed named 'No such feed'" in result.stderr


def test_import_opml_then_export_round_trips(tmp_path, cli_run):
    cfg = write_config(tmp_path, [], corpus=None)
    opml = tmp_path / "subs.opml"
    opml.write_text(OPML.format(norms="https://norms.example.org/feed"), encoding="utf-8")
    result = cli_run("--config", cfg, "feeds", "import", opml)
    assert result.exit_code == 0, result.output
    assert "Imported 3 feeds" in result.stdout and "skipped 1" in result.stdout
    feeds = config_module.load(cfg).feeds
    assert [(f.name, f.url) for f in feeds] == [
        ("Norms Watch", "https://norms.example.org/feed"),
        ("Cyber & Law", "https://law.example.org/feed"),
        ("Norms Watch (2)", "https://other.example.org/rss"),
    ]
    # Importing again adds nothing.
    again = cli_run("--config", cfg, "feeds", "import", opml)
    assert "Imported 0 feeds" in again.stdout
    exported = cli_run("--config", cfg, "feeds", "export").stdout
    out = tmp_path / "out.opml"
    out.write_text(exported, encoding="utf-8")
    cfg2 = write_config(tmp_path / "other", [], corpus=None)
    cli_run("--config", cfg2, "feeds", "import", out)
    assert [(f.name, f.url) for f in config_module.load(cfg2).feeds] == [(f.name, f.url) for f in feeds]


def test_import_rejects_a_file_that_is_not_opml(tmp_path, cli_run):
    cfg = write_config(tmp_path, [], corpus=None)
    bad = tmp_path / "bad.opml"
    bad.write_text("<opml><body><outline", encoding="utf-8")
    result = cli_run("--config", cfg, "feeds", "import", bad)
    assert result.exit_code == 2 and "not valid OPML" in result.stderr


def test_list_shows_health_after_a_collect(tmp_path, feed_server, cli_run):
    good = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    bad = feed_server.add("/500", b"", status=500)
    cfg = write_config(tmp_path, [("good", good), ("bad", bad), ("never", "https://n.example.org/")], corpus=None)
    rows_before = [json.loads(line) for line in cli_run("--config", cfg, "feeds", "list", "--json").stdout.splitlines()]
    assert [r["status"] for r in rows_before] == ["new", "new", "new"]
    config = tomllib.loads(cfg.read_text())
    config["feeds"] = config["feeds"][:2]
    cfg.write_text(cfg.read_text().replace('[[feeds]]\nname = "never"\nurl = "https://n.example.org/"\n', ""))
    cli_run("--config", cfg, "collect")
    rows = {r["name"]: r for r in map(json.loads, cli_run("--config", cfg, "feeds", "list", "--json").stdout.splitlines())}
    assert rows["good"]["status"] == "ok" and rows["good"]["entries"] == 4 and rows["good"]["last_success"]
    assert rows["bad"]["status"] == "failed" and "HTTP 500" in rows["bad"]["last_error"]
    assert rows["bad"]["consecutive_failures"] == 1
    table = cli_run("--config", cfg, "feeds", "list").stdout
    assert table.splitlines()[0].split() == ["NAME", "STATUS", "LAST", "SUCCESS", "ENTRIES", "NEXT", "TRY", "URL"]
    assert "HTTP 500" in table
