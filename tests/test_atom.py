"""The archive's Atom feeds: valid in feedparser, stable ids across rebuilds, absolute links with a base_url."""

from __future__ import annotations

import re
from pathlib import Path

import feedparser
import pytest

from test_render import Tags, two_briefings


def parsed(path: Path):
    feed = feedparser.parse(path.read_bytes())
    assert not feed.bozo, f"{path.name}: {feed.get('bozo_exception')}"
    assert feed.version == "atom10"
    return feed


def test_feed_xml_has_one_entry_per_briefing_linked_to_its_page(tmp_path, feed_server, cli_run):
    cfg, archive = two_briefings(tmp_path, feed_server, cli_run)
    feed = parsed(archive / "feed.xml")
    pages = sorted(p.name for p in archive.glob("2026-*.html"))
    assert len(feed.entries) == 2
    assert sorted(e.link for e in feed.entries) == pages  # relative to the feed, which sits beside them
    newest = feed.entries[0]
    assert newest.link == max(pages, key=lambda p: (len(p), p))  # newest first
    counts = re.search(r"(\d+) entr(?:y|ies) in (\d+) themes?", newest.summary)
    assert counts, newest.summary
    content = newest.content[0].value
    for theme_page in re.findall(r'href="(themes/[a-z-]+\.html)"', content):
        assert (archive / theme_page).exists()
    assert len(re.findall(r"<li>", content)) == int(counts.group(2))  # one line per theme at a glance
    assert {t.term for t in newest.tags} <= {p.stem for p in (archive / "themes").glob("*.html")}


def test_a_theme_feed_has_one_entry_per_story_of_that_theme(tmp_path, feed_server, cli_run):
    import sqlite3

    cfg, archive = two_briefings(tmp_path, feed_server, cli_run)
    db = sqlite3.connect(tmp_path / "state" / "briefings.sqlite3")
    listed = db.execute("SELECT be.theme, e.title FROM briefing_entries be JOIN entries e ON e.id = be.entry_id").fetchall()
    feeds = sorted((archive / "themes").glob("*.xml"))
    assert len(feeds) == 12  # every theme has one, empty or not
    for path in feeds:
        feed = parsed(path)
        expected = sorted(title for theme, title in listed if theme == path.stem)
        assert sorted(e.title for e in feed.entries) == expected, path.name
        for entry in feed.entries:
            related = [link.href for link in entry.links if link.rel == "related"]
            assert related and (path.parent / related[0].split("#")[0]).resolve().exists()


def test_entry_ids_stay_the_same_when_the_archive_is_rebuilt(tmp_path, feed_server, cli_run):
    import shutil

    cfg, archive = two_briefings(tmp_path, feed_server, cli_run)
    before = {p.name: [e.id for e in parsed(p).entries] for p in [archive / "feed.xml", *(archive / "themes").glob("*.xml")]}
    assert all(i.startswith("urn:uuid:") for ids in before.values() for i in ids)
    assert len({i for ids in before.values() for i in ids}) == sum(len(ids) for ids in before.values())  # unique
    shutil.rmtree(archive)
    assert cli_run("--config", cfg, "archive", "rebuild").exit_code == 0
    after = {p.name: [e.id for e in parsed(p).entries] for p in [archive / "feed.xml", *(archive / "themes").glob("*.xml")]}
    assert after == before


def test_links_are_absolute_when_base_url_is_set(tmp_path, feed_server, cli_run):
    base = "https://intranet.example.org/briefings/"
    cfg, archive = two_briefings(tmp_path, feed_server, cli_run)
    text = cfg.read_text().replace('[output]\ndir = "archive"\n', f'[output]\ndir = "archive"\nbase_url = "{base}"\n')
    cfg.write_text(text)
    assert cli_run("--config", cfg, "archive", "rebuild").exit_code == 0
    feed = parsed(archive / "feed.xml")
    assert [link.href for link in feed.feed.links if link.rel == "self"] == [base + "feed.xml"]
    assert all(e.link.startswith(base) and e.link.endswith(".html") for e in feed.entries)
    theme = next(p for p in (archive / "themes").glob("*.xml") if parsed(p).entries)
    for entry in parsed(theme).entries:
        assert all(link.href.startswith(("https://", "http://")) for link in entry.links)
        assert any(link.href.startswith(base) for link in entry.links if link.rel == "related")


@pytest.mark.parametrize("page", ["index.html", "briefing", "themes/international-fora.html"])
def test_every_archive_page_names_its_feeds(tmp_path, feed_server, cli_run, page):
    cfg, archive = two_briefings(tmp_path, feed_server, cli_run)
    path = next(archive.glob("2026-*.html")) if page == "briefing" else archive / page
    alternates = [a["href"] for tag, a in Tags(path.read_text()).tags
                  if tag == "link" and a.get("rel") == "alternate" and a.get("type") == "application/atom+xml"]
    assert alternates
    for href in alternates:
        target = (path.parent / href).resolve()
        assert target.exists(), f"{page} names {href}, which is not there"
        parsed(target)
