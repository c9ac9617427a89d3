"""What one entry may hold: hostile feeds are capped after parsing, and classification reads a bounded opening.

Feeds are served by a real HTTP server on 127.0.0.1 and collected by the CLI into a
real SQLite file; the caps come from [fetch] in config.toml.
"""

from __future__ import annotations

import sqlite3
import tracemalloc

import pytest

from briefings.classify import READ_HTML, READ_TEXT, Classifier, fold, opening_text
from briefings.config import FetchSettings, load as load_config
from briefings.text import ELLIPSIS, cut_html, html_to_text, shorten
from conftest import ROOT, write_config

CAPS = {"max_title_chars": 200, "max_summary_chars": 20_000, "max_content_chars": 30_000}
WORDS = "States agreed on confidence-building measures for cyberspace at the working group. "


def rss(item: str, doctype: str = "") -> str:
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + doctype
            + '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
            "<title>Hostile</title><link>http://hostile.test/</link><description>d</description>"
            f"<item><link>http://hostile.test/1</link><guid>http://hostile.test/1</guid>{item}</item>"
            "</channel></rss>\n")


def _para(n: int) -> str:
    return f"<p>{WORDS * 4}</p>" * n


# name -> (document, what must hold of the stored row: (title, summary_html, content_html, flags))
HOSTILE = {
    "long title": (
        rss("<title>" + "Cyber norms " * 6000 + "</title><description>Short.</description>"),
        lambda t, s, c, f: len(t) <= 200 and t.endswith(ELLIPSIS) and ("Cyber norms " * 6000).startswith(t[:-1] + " ")
        and "truncated" not in f,
    ),
    "a title of one endless word": (
        rss("<title>" + "x" * 65_000 + "</title><description>Short.</description>"),
        lambda t, s, c, f: t == "x" * 199 + ELLIPSIS,
    ),
    "huge summary": (
        rss("<title>Big</title><description><![CDATA[" + _para(2_000) + "]]></description>"),
        lambda t, s, c, f: len(s) <= 20_000 and s.endswith(ELLIPSIS) and "truncated" in f and t == "Big",
    ),
    "5 MB content": (
        rss("<title>Big</title><description>Short.</description><content:encoded><![CDATA["
            + _para(5_000_000 // len(_para(1))) + "]]></content:encoded>"),
        lambda t, s, c, f: len(c) <= 30_000 and c.endswith(ELLIPSIS) and s == "Short." and "truncated" in f,
    ),
    "deeply nested HTML": (
        rss("<title>Deep</title><description>" + "&lt;div&gt;" * 100_000 + "norms" + "&lt;/div&gt;" * 100_000
            + "</description>"),
        lambda t, s, c, f: len(s) <= 20_000 and s.startswith("<div><div>") and "truncated" in f,
    ),
    "quadratic entity expansion": (
        # 15 KB: one entity of 5,000 characters referred to 3,000 times. Expat refuses it (its
        # amplification limit); feedparser's loose parser then expands it to 15,000,000 characters.
        rss("<title>Quadratic</title><description>" + "&e;" * 3_000 + "</description>",
            '<!DOCTYPE rss [\n<!ENTITY e "' + "norms " * 833 + 'norm">\n]>\n'),
        lambda t, s, c, f: 19_000 < len(s) <= 20_000 and s.startswith("norms norms") and "truncated" in f,
    ),
}


def _collect(tmp_path, feed_server, cli_run, document: str, caps: dict = CAPS) -> tuple:
    url = feed_server.add("/feed.xml", document)
    fetch = "timeout = 10\n" + "\n".join(f"{k} = {v}" for k, v in caps.items())
    cfg = write_config(tmp_path, [("Hostile", url)], corpus=None, fetch=fetch)
    result = cli_run("--config", cfg, "collect", "--json")
    assert result.exit_code == 0, result.output
    db = sqlite3.connect(tmp_path / "state" / "briefings.sqlite3")
    try:
        rows = db.execute("SELECT title, summary_html, content_html, flags FROM entries").fetchall()
    finally:
        db.close()
    assert len(rows) == 1, rows
    title, summary, content, flags = rows[0]
    return title, summary, content, flags.split(",")


@pytest.mark.parametrize("shape", HOSTILE)
def test_each_hostile_shape_is_capped_when_stored(tmp_path, feed_server, cli_run, shape):
    document, holds = HOSTILE[shape]
    stored = _collect(tmp_path, feed_server, cli_run, document)
    assert holds(*stored), [(len(v), v[:80], v[-80:]) for v in stored[:3]] + [stored[3]]


def test_an_entry_within_the_caps_is_kept_whole(tmp_path, feed_server, cli_run):
    html = _para(40)  # 13,000 characters: under the 20,000 of the summary cap
    title, summary, content, flags = _collect(
        tmp_path, feed_server, cli_run, rss(f"<title>Whole</title><description><![CDATA[{html}]]></description>"))
    assert (title, summary, flags) == ("Whole", html, [""])


def test_the_default_caps_bound_the_quadratic_blow_up(tmp_path, feed_server, cli_run):
    document = HOSTILE["quadratic entity expansion"][0]
    title, summary, content, flags = _collect(tmp_path, feed_server, cli_run, document, caps={})
    default = FetchSettings().max_summary_chars
    assert default - 300 < len(summary) <= default and "truncated" in flags


@pytest.mark.parametrize("key,value", [("max_title_chars", 100), ("max_summary_chars", 1_000),
                                       ("max_content_chars", 2_000)])
def test_the_caps_are_fetch_settings(tmp_path, key, value):
    cfg = write_config(tmp_path, corpus=None, fetch=f"{key} = {value}")
    assert getattr(load_config(cfg).fetch, key) == value
    assert getattr(FetchSettings(), key) > value


@pytest.mark.parametrize("markup,limit,expected", [
    ("<p>one two three</p>", 100, "<p>one two three</p>"),
    ("<p>one two</p><p>three four</p>", 20, "<p>one two</p><p>"),  # not inside "<p>three"... the tag's end
    ("<p>one <a href='http://x.test/'>two</a></p>", 12, "<p>one "),  # not half a tag
    ("abc &amp; def", 7, "abc "),  # not half an entity
    ("abcdefghij", 4, "abcd"),  # nowhere better to cut
])
def test_cut_html_cuts_where_the_markup_allows(markup, limit, expected):
    assert cut_html(markup, limit) == expected


@pytest.mark.parametrize("text,limit,expected", [
    ("Short title", 50, "Short title"),
    ("Cyber norms at the United Nations, again", 20, "Cyber norms at the\u2026"),
    ("Cyber norms at the United Nations", 19, "Cyber norms at the\u2026"),  # the cut falls on a space
    ("Norms, treaties; and more", 9, "Norms\u2026"),  # no dangling punctuation
])
def test_shorten_cuts_on_a_word(text, limit, expected):
    assert shorten(text, limit) == expected
    assert len(shorten(text, limit)) <= limit


@pytest.mark.parametrize("text", ["Confidence-Building Measures in Cooperación " * 2, "Ünïcödé ÅNGSTRÖM ﬁnal"])
def test_fold_strips_diacritics_as_before(text):
    import unicodedata

    whole = "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))
    assert fold(text) == whole


@pytest.mark.parametrize("char", ["a", "\u00e9", "\u4e2d"])  # ASCII, Latin-1 with a diacritic, CJK
def test_fold_is_small_in_memory_on_a_large_text(char):
    text = (char * 9 + " ") * 400_000  # 4,000,000 characters
    tracemalloc.start()
    try:
        folded = fold(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(folded) == len(text)
    # A list of one item per character would take 8 bytes a character; the folded copies take 1 to 4.
    assert peak < 3 * len(text) * (4 if char == "\u4e2d" else 2), peak


def test_classification_reads_a_bounded_opening():
    classifier = Classifier(load_config(ROOT / "config.toml").themes)
    opening = f"<p>{WORDS * 700}</p>"  # 58,000 characters: past READ_TEXT
    tail = "<p>" + "ransomware botnet takedown " * 100_000 + "</p>"  # another theme's terms, 2.7 MB
    read = opening_text(opening + tail)
    assert len(read) <= READ_TEXT and html_to_text(opening).startswith(read)
    assert opening_text("<p>" + "<b></b>" * READ_HTML + "norms</p>") == ""  # markup past READ_HTML is not read
    whole, first = classifier.classify_text("A title", opening + tail), classifier.classify_text("A title", read)
    assert whole.scores == first.scores
    # The tail says something else: read, it would change the scores.
    assert classifier.classify_text("A title", tail[:READ_TEXT]).scores != first.scores
