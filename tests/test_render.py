"""The briefing as people see it: golden files, hostile feeds, Gmail's size limit, and a real Chromium."""

from __future__ import annotations

import os
import re
import sqlite3
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from briefings import config as config_module
from briefings.render import MAX_EMAIL_HTML, render
from conftest import ROOT, fixture_feed, write_config
from render_samples import CREATED, XSS_TITLE, big_briefing, hostile_briefing, sample_briefing

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("BRIEFINGS_UPDATE_GOLDEN") == "1"


def golden(name: str, actual: str) -> None:
    """Compare with tests/golden/NAME; BRIEFINGS_UPDATE_GOLDEN=1 rewrites it instead (review the diff)."""
    path = GOLDEN / name
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run BRIEFINGS_UPDATE_GOLDEN=1 pytest tests/test_render.py"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} differs from its golden file; if the change is intended, regenerate it " \
                               "with BRIEFINGS_UPDATE_GOLDEN=1 and review the diff"


def sample_config(tmp_path, extra: str = ""):
    cfg = write_config(tmp_path, corpus=None, extra="""
        [output]
        base_url = "https://intranet.example.org/briefings/"
        [briefing]
        max_per_theme = 2
        footer = "Norms desk, Ministry of Foreign Affairs. Reply to this message to leave the list."
        [email]
        unsubscribe_url = "https://intranet.example.org/unsubscribe?who={email}"
    """.replace("        ", "") + extra)
    # write_config starts with its own [output]; merge the two tables into one.
    text = cfg.read_text().replace('[output]\ndir = "archive"\n', "")
    text = text.replace("[output]\n", '[output]\ndir = "archive"\n', 1)
    cfg.write_text(text)
    return config_module.load(cfg)


class Tags(HTMLParser):
    """Every start tag with its attributes, and the visible text."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self._skip = 0
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        if tag in ("style", "title"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("style", "title"):
            self._skip = max(0, self._skip - 1)

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)

    @property
    def visible(self) -> str:
        return " ".join(" ".join(self.text).split())


# -- golden files ----------------------------------------------------------------


def test_golden_email_web_and_text(tmp_path):
    config = sample_config(tmp_path)
    rendered = render(sample_briefing(config), config, generated=CREATED)
    golden("briefing-email.html", rendered.html)
    golden("briefing-web.html", rendered.web_html)
    golden("briefing.txt", rendered.text)


def test_the_email_reads_in_order_with_everything_the_issue_lists(tmp_path):
    config = sample_config(tmp_path)
    rendered = render(sample_briefing(config), config, generated=CREATED)
    page = Tags(rendered.html)
    text = page.visible
    order = ["Cyber Norms Briefing", "covering 16 November 2026 to 23 November 2026", "5 entries in 3 themes",
             "2 off-topic left out", "At a glance", "International fora and diplomacy", "International fora",
             "UN Open-Ended Working Group adopts", "Also reported by Cyber Desk", "1 more in the archive",
             "Confidence-building measures", "Capacity building", "From the reading list",
             "Advancing the Discussion on Cybersecurity Norms", "Unsubscribe"]
    at = text.index("At a glance") - 400  # after the preheader, which names the themes first
    for wanted in order:
        found = text.find(wanted, max(at, 0))
        assert found >= 0, f"{wanted!r} missing or out of order in: {text[max(at, 0):][:300]}"
        at = found + len(wanted)
    # Change since the previous briefing: fora 1 -> 3, CBMs unchanged, capacity building new.
    assert re.search(r"International fora and diplomacy\s+3\s+\+2", text)
    assert re.search(r"Confidence-building measures\s+1\s+same", text)
    assert re.search(r"Capacity building\s+1\s+new", text)
    bars = [a.get("width") for tag, a in page.tags if tag == "td" and "glance-bar" == a.get("class")]
    assert bars == ["100%", "33%", "33%"]
    hrefs = [a["href"] for tag, a in page.tags if tag == "a" and "href" in a]
    assert "https://intranet.example.org/briefings/2026-11-23-cyber-norms-briefing.html#international-fora" in hrefs
    assert "https://intranet.example.org/briefings/2026-11-23-cyber-norms-briefing.html" in hrefs  # view in browser
    assert not any(tag in ("script", "img", "link", "iframe") for tag, _ in page.tags)  # nothing remote, no script
    preheader = next(a for tag, a in page.tags if a.get("class") == "preheader")
    assert "display:none" in preheader["style"].replace(" ", "")
    # CSS inlined (premailer), the media queries kept for clients that honour them.
    container = next(a for tag, a in page.tags if tag == "table" and a.get("class") == "container")
    assert "width:620px" in container["style"].replace(" ", "")
    assert "@media only screen and (max-width: 640px)" in rendered.html
    assert "prefers-color-scheme: dark" in rendered.html
    # The web version lists everything and links every theme page.
    web = Tags(rendered.web_html)
    assert "Regional forum agrees a cyber dialogue" in web.visible and "more in the archive" not in web.visible
    assert {a["href"] for t, a in web.tags if t == "a" and a.get("class") == "theme-link"} == {
        "themes/international-fora.html", "themes/confidence-building.html", "themes/capacity-building.html"}


def test_plain_text_is_written_for_people(tmp_path):
    config = sample_config(tmp_path)
    text = render(sample_briefing(config), config, generated=CREATED).text
    lines = text.splitlines()
    assert lines[0] == "CYBER NORMS BRIEFING"
    assert "INTERNATIONAL FORA AND DIPLOMACY (3)" in lines
    assert any(line.startswith("1. UN Open-Ended Working Group") for line in lines)
    assert "   https://news.example.org/1" in lines  # URLs on their own lines
    assert "   https://desk.example.net/oewg-report" in lines
    assert "FROM THE READING LIST" in lines
    assert max(len(line) for line in lines if "://" not in line) <= 76  # only a URL may run long
    assert "<" not in text.replace("<!--", "")  # no markup left over


def test_covering_is_left_out_when_the_period_is_one_day(tmp_path):
    config = sample_config(tmp_path)
    briefing = sample_briefing(config)
    briefing.period_start = briefing.period_end
    rendered = render(briefing, config, generated=CREATED)
    assert "covering" not in rendered.html and "covering" not in rendered.text


# -- hostile feeds -----------------------------------------------------------------

def hostile_config(tmp_path):
    """The shipped templates: the web version shows each entry's summary, the e-mail its excerpt."""
    return config_module.load(write_config(tmp_path, corpus=None))


# What HOSTILE_HTML would run or load, were any of it live.
LIVE = ("alert('", "javascript:", "vbscript:", "evil.example", "x.swf", "position:fixed", "display:none }")


def test_hostile_entries_come_out_inert(tmp_path):
    config = hostile_config(tmp_path)
    rendered = render(hostile_briefing(config), config, generated=CREATED)
    for name, markup in (("email", rendered.html), ("web", rendered.web_html)):
        page = Tags(markup)
        tags = {tag for tag, _ in page.tags}
        assert not tags & {"script", "iframe", "form", "input", "button", "svg", "object", "embed", "img", "base",
                           "math", "body-onload"}, (name, tags)
        assert sum(1 for tag, _ in page.tags if tag == "meta" and "refresh" in _.get("http-equiv", "")) == 0
        for tag, attrs in page.tags:
            assert not any(k.startswith("on") for k in attrs), (name, tag, attrs)
            for key in ("href", "src", "action", "xlink:href"):
                if key in attrs:
                    assert urlsplit(attrs[key].strip()).scheme in ("http", "https", "mailto", ""), (name, attrs)
        for live in LIVE:
            assert live not in markup.lower(), (name, live)
        assert XSS_TITLE in page.visible  # shown as text, not run
    # The e-mail shows the excerpt, as text.
    assert '<script>alert("excerpt")</script> & more' in Tags(rendered.html).visible
    # The web version shows the summary itself: what the allowlist keeps is live markup, the rest is gone.
    (body,) = re.findall(r'<div class="entry-body"[^>]*>(.*?)</div>', rendered.web_html, flags=re.S)
    assert re.search(r"<p>Delegates met <b>in Geneva</b>\.</p>", body), body
    assert re.search(r'<a href="https://ok.example/" rel="noopener noreferrer nofollow"[^>]*>fine link</a>', body), body
    body_tags = Tags(body)
    assert {tag for tag, _ in body_tags.tags} <= {"p", "b", "a", "div"}, body_tags.tags
    assert [a["href"] for tag, a in body_tags.tags if tag == "a" and "href" in a] == ["https://ok.example/"]
    assert "js link" in body_tags.visible and "overlay" in body_tags.visible  # their text stays, as text
    assert XSS_TITLE in " ".join(rendered.text.split()).replace("   ", " ")
    assert "javascript:" not in rendered.text and "data:text" not in rendered.text


def test_hostile_entries_run_nothing_in_chromium(tmp_path, page_probe):
    config = hostile_config(tmp_path)
    rendered = render(hostile_briefing(config), config, generated=CREATED)
    for name, markup in (("email", rendered.html), ("web", rendered.web_html)):
        path = tmp_path / f"hostile-{name}.html"
        path.write_text(markup, encoding="utf-8")
        probe = page_probe()
        page = probe.open(path)
        page.mouse.click(10, 10)
        for link in page.query_selector_all("a"):
            assert not (link.get_attribute("href") or "").lower().startswith(("javascript", "data", "vbscript"))
        time.sleep(0.3)
        assert probe.dialogs == [], (name, probe.dialogs)
        assert page.evaluate("document.scripts.length") == 0
        assert XSS_TITLE in page.inner_text("h3.entry-title")
        assert not [u for u in probe.requests if not u.startswith("file:")], probe.requests
        assert probe.horizontal_overflow() <= 0
        probe.screenshot(f"hostile-{name}-375.png")


# -- Gmail's clip ------------------------------------------------------------------


def test_a_300_entry_briefing_stays_under_gmails_clip(tmp_path):
    import dataclasses

    config = sample_config(tmp_path)
    config = dataclasses.replace(config, briefing=dataclasses.replace(config.briefing, max_per_theme=50))
    briefing = big_briefing(config, 300)
    rendered = render(briefing, config, generated=CREATED)
    size = len(rendered.html.encode("utf-8"))
    assert size <= MAX_EMAIL_HTML < 102 * 1024
    assert rendered.email_limit is not None and rendered.email_limit < 25  # 25 per theme would not fit
    shown = len(re.findall(r'class="entry-title"', rendered.html))
    assert shown == rendered.email_limit * len(briefing.sections)
    hidden = 300 - shown
    counted = sum(int(n) for n in re.findall(r"(\d+) more in the archive", rendered.html))
    assert counted == hidden
    assert re.search(r'href="https://intranet\.example\.org/briefings/2026-11-23-big\.html#\w', rendered.html)
    assert len(re.findall(r'class="entry-title"', rendered.web_html)) == 300  # the web version lists all


# -- the archive, in Chromium ----------------------------------------------------------


LATER_ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Later News</title><id>urn:later</id><updated>2026-11-20T10:00:00Z</updated>
<entry><title>States publish national positions on public-private cooperation in cyberspace</title>
<id>urn:later:1</id><link href="https://later.example.org/1"/><updated>2026-11-20T10:00:00Z</updated>
<summary>Governments set out how industry and civil society take part in multi-stakeholder work on cyber norms,
with public-private partnerships on information sharing and transparency about national cyber capabilities.</summary></entry>
<entry><title>Vendors and ministries agree to share threat information faster</title>
<id>urn:later:2</id><link href="https://later.example.org/2"/><updated>2026-11-21T10:00:00Z</updated>
<summary>A new information sharing arrangement between vendors and governments sets incident reporting timelines
and a trusted channel for threat intelligence exchange.</summary></entry>
</feed>"""


def two_briefings(tmp_path, feed_server, cli_run):
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    cfg = write_config(tmp_path, [("Norms Watch", url)])
    assert cli_run("--config", cfg, "run").exit_code == 0
    later = feed_server.add("/later.atom", LATER_ATOM, content_type="application/atom+xml")
    text = cfg.read_text() + f'\n[[feeds]]\nname = "Later News"\nurl = "{later}"\n'
    cfg.write_text(text)
    result = cli_run("--config", cfg, "run")
    assert result.exit_code == 0, result.output
    return cfg, tmp_path / "archive"


def local_links(page_file: Path) -> list[Path]:
    links = []
    for tag, attrs in Tags(page_file.read_text(encoding="utf-8")).tags:
        href = attrs.get("href")
        if tag == "a" and href and not urlsplit(href).scheme and not href.startswith("#"):
            links.append((page_file.parent / unquote(href.split("#")[0])).resolve())
    return links


def test_archive_index_and_theme_pages_in_chromium(tmp_path, feed_server, cli_run, page_probe):
    cfg, archive = two_briefings(tmp_path, feed_server, cli_run)
    pages = [archive / "index.html", *sorted(archive.glob("*.html")), *sorted((archive / "themes").glob("*.html"))]
    assert len(list((archive / "themes").glob("*.html"))) == 12
    for page_file in set(pages):
        markup = page_file.read_text(encoding="utf-8")
        assert "script-src 'none'" in markup and "<script" not in markup  # no script, and CSP forbids one
        for target in local_links(page_file):
            assert target.exists(), f"{page_file.name} links to missing {target}"
    briefings = sorted(archive.glob("2026-*.html"), key=lambda p: (len(p.name), p.name))  # first, then "-2"
    assert len(briefings) == 2
    second = briefings[-1].read_text()
    assert "From the reading list" in second  # the corpus documents on this briefing's themes
    assert "change since the previous briefing" in second
    later = "Vendors and ministries agree to share threat information faster"
    (later_theme,) = sqlite3.connect(tmp_path / "state" / "briefings.sqlite3").execute(
        "SELECT theme FROM entries WHERE title = ?", (later,)).fetchone()
    assert later in (archive / "themes" / f"{later_theme}.html").read_text()  # the second briefing's pages updated

    oewg = "UN Open-Ended Working Group agrees annual progress report"
    theme_id, theme_name = sqlite3.connect(tmp_path / "state" / "briefings.sqlite3").execute(
        "SELECT theme, ? FROM entries WHERE title = ?", ("", oewg)).fetchone()
    theme_name = config_module.load(cfg).theme(theme_id).name
    for width in (375, 1024):
        probe = page_probe(width=width)
        page = probe.open(archive / "index.html")
        assert page.title().endswith("archive")
        assert probe.horizontal_overflow() <= 0, f"index scrolls sideways at {width} px"
        probe.screenshot(f"archive-index-{width}.png")
        assert len(page.query_selector_all("a.entry-link")) == 2  # both briefings, newest first
        page.query_selector(f"a.glance-link[href='themes/{theme_id}.html']").click()
        page.wait_for_load_state("load")
        assert page.url.endswith(f"/themes/{theme_id}.html")
        assert page.inner_text("h1") == theme_name
        assert oewg in page.inner_text("body")
        assert probe.horizontal_overflow() <= 0
        probe.screenshot(f"archive-theme-{width}.png")
        page.query_selector("h2.section-title a").click()  # back to the briefing that listed it
        page.wait_for_load_state("load")
        assert re.search(rf"/2026-[\d-]+-cyber-norms-briefing(-\d)?\.html#{theme_id}$", page.url)
        assert page.query_selector(f"#{theme_id}") is not None
        for briefing_file in briefings:
            probe.open(briefing_file)
            assert probe.horizontal_overflow() <= 0, f"{briefing_file.name} scrolls sideways at {width} px"
        probe.screenshot(f"briefing-web-{width}.png")
        assert probe.errors == [], probe.errors
        assert probe.dialogs == []


def test_email_html_in_chromium_at_phone_width(tmp_path, page_probe):
    config = sample_config(tmp_path)
    rendered = render(sample_briefing(config), config, generated=CREATED)
    path = tmp_path / "email.html"
    path.write_text(rendered.html, encoding="utf-8")
    probe = page_probe(width=375)
    page = probe.open(path)
    assert probe.horizontal_overflow() <= 0
    assert page.evaluate("getComputedStyle(document.querySelector('.preheader')).display") == "none"
    bar = page.evaluate("document.querySelector('td.glance-bar').getBoundingClientRect().width")
    assert bar > 20  # the bars are drawn
    probe.screenshot("email-375.png")
    assert probe.errors == []


# -- preview and rebuild -------------------------------------------------------------


def test_preview_renders_the_next_briefing_and_marks_nothing(tmp_path, feed_server, cli_run):
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    cfg = write_config(tmp_path, [("Norms Watch", url)])
    assert cli_run("--config", cfg, "collect").exit_code == 0
    db = tmp_path / "state" / "briefings.sqlite3"
    before = sqlite3.connect(db).execute("SELECT COUNT(*), COUNT(theme) FROM entries WHERE briefing_id IS NULL").fetchone()
    result = cli_run("--config", cfg, "preview")
    assert result.exit_code == 0, result.output
    files = [Path(line) for line in result.stdout.splitlines()]
    assert [f.name for f in files] == ["email.html", "web.html", "email.txt"]
    assert "UN Open-Ended Working Group agrees annual progress report" in files[0].read_text()
    after = sqlite3.connect(db).execute("SELECT COUNT(*), COUNT(theme) FROM entries WHERE briefing_id IS NULL").fetchone()
    assert after == before  # nothing marked, nothing classified on disk
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM briefings").fetchone() == (0,)
    assert not (tmp_path / "archive").exists()


def test_preview_serves_on_loopback(tmp_path, feed_server, cli_run):
    import subprocess
    import sys

    import httpx

    from conftest import free_port

    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    cfg = write_config(tmp_path, [("Norms Watch", url)])
    assert cli_run("--config", cfg, "collect").exit_code == 0
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "briefings", "--config", str(cfg), "preview", "--serve", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        body = None
        while time.monotonic() < deadline and body is None:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/email.html", timeout=1)
                body = response.text if response.status_code == 200 else None
            except httpx.HTTPError:
                time.sleep(0.2)
        assert body is not None and "At a glance" in body
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_archive_rebuild_regenerates_every_page_from_the_store(tmp_path, feed_server, cli_run):
    cfg, archive = two_briefings(tmp_path, feed_server, cli_run)
    names = sorted(p.relative_to(archive) for p in archive.rglob("*.html"))
    mine = tmp_path / "my-templates"
    mine.mkdir()
    shipped = (ROOT / "templates" / "briefing.html.j2").read_text()
    (mine / "briefing.html.j2").write_text(shipped.replace('<p class="kicker">Cybersecurity norms</p>',
                                                           '<p class="kicker">Norms desk edition</p>'))
    cfg.write_text(cfg.read_text().replace("[fetch]", '[render]\ntemplates = "my-templates"\n[fetch]', 1))
    import shutil

    shutil.rmtree(archive)
    result = cli_run("--config", cfg, "archive", "rebuild")
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(archive) for p in archive.rglob("*.html")) == names
    for page in archive.glob("2026-*.html"):
        assert "Norms desk edition" in page.read_text()
    assert len(list(archive.glob("2026-*.txt"))) == 2


def test_a_big_week_tells_the_reader_the_email_was_shortened(tmp_path, feed_server, cli_run):
    config = config_module.load(ROOT / "config.toml")
    items = []
    for i in range(12 * 12):
        theme = config.themes[i % len(config.themes)]
        a, b = theme.terms[0], theme.terms[1 % len(theme.terms)]
        sentence = (f"Officials discussed {a} and {b} at length in the meeting number {i}, and agreed that {a} "
                    f"matters for {b} in every region of the world this year.")
        items.append(f"<item><title>{a.capitalize()} and {b}: development {i} in the long debate on how states "
                     f"should behave in cyberspace</title><author>desk@big.example.org (Norms Desk)</author>"
                     f"<link>https://big.example.org/{i}</link><description>{sentence} {sentence} {sentence}"
                     f"</description></item>")
    rss = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Big week</title>' + \
          "".join(items) + "</channel></rss>"
    url = feed_server.add("/big.rss", rss)
    # Items built from each theme's first terms: the terms classifier spreads them over all twelve themes.
    terms = '[classify]\nmethod = "terms"\n'
    cfg = write_config(tmp_path, [("Big week", url)], corpus=None, extra=terms)
    result = cli_run("--config", cfg, "run", "--json")
    assert result.exit_code == 0, result.output
    import json

    briefing = json.loads(result.stdout)["briefing"]
    assert briefing["email_html_bytes"] <= MAX_EMAIL_HTML
    assert briefing["email_per_theme"] < briefing["email_per_theme_configured"] == 8, briefing
    assert f"it shows {briefing['email_per_theme']} entries per theme, not 8, to stay under Gmail's 102 KB clip" \
        in cli_run("--config", write_config(tmp_path / "again", [("Big week", url)], corpus=None, extra=terms), "run").stderr
    web = Path(briefing["html"]).read_text()
    assert web.count('class="entry-title"') == briefing["entries"] == 144  # the web page lists them all
