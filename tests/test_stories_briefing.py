"""Stories in a real briefing: feeds served from 127.0.0.1, a real `briefings run`, a real SQLite file.

One event told by two feeds is one story with both sources linked; two events with the same actors
stay two; a story continued from the last briefing links back; the top stories come first and are
not repeated in full; `run --json` and `preview --json` carry `stories` and `top_stories`."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from xml.sax.saxutils import escape

import pytest

from conftest import db_rows, write_config

NOW = datetime.now(timezone.utc)


def rss(title: str, items: list[tuple[str, str, str, datetime]]) -> str:
    """An RSS feed of (slug, title, text, published) items, linked under https://<feed>.example/."""
    host = re.sub(r"\W+", "", title.lower())
    body = "".join(
        f"<item><title>{escape(t)}</title><link>https://{host}.example/{slug}</link><guid>{host}-{slug}</guid>"
        f"<pubDate>{format_datetime(when)}</pubDate><description>{escape(text)}</description></item>"
        for slug, t, text, when in items)
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
            f"<link>https://{host}.example/</link>{body}</channel></rss>")


EMOTET_A = ("emotet", "Police in eight countries take down the Emotet botnet",
            "Europol said investigators from the Netherlands, Germany, the United States and Ukraine took control of "
            "Emotet's servers in a takedown of one of the most significant botnets of the decade; law enforcement "
            "seized the malware infrastructure.")
EMOTET_B = ("emotet-seized", "Emotet malware network seized in international operation",
            "Law enforcement coordinated by Europol and the FBI now controls the infrastructure of Emotet, which "
            "gangs rented to install ransomware; the botnet takedown disrupts cybercrime.")
QAKBOT = ("qakbot", "Europol and FBI take down the Qakbot botnet",
          "Police coordinated by Europol and the FBI seized servers of the Qakbot botnet used by ransomware gangs "
          "and removed the malware from infected computers in a takedown.")
PIKABOT = ("pikabot", "Europol and FBI take down the Pikabot botnet",
           "Police coordinated by Europol and the FBI seized servers of the Pikabot botnet used by ransomware gangs "
           "and removed the malware from infected computers in a takedown.")
FILLER = [
    ("cert", "Donors fund national CERTs in emerging economies",
     "A programme trains officials and helps set up computer emergency response teams; capacity building for "
     "developing countries continues with a trust fund."),
    ("grid", "Regulator orders power grid operators to report incidents",
     "Electricity and water utility operators must notify the regulator of security incidents affecting "
     "critical infrastructure within 24 hours."),
]


def run_json(cli_run, cfg) -> dict:
    result = cli_run("--config", cfg, "run", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def story_with(stories: list[dict], title: str) -> dict:
    return next(s for s in stories if any(e["title"] == title for e in s["entries"]))


def serve(feed_server, feeds: dict[str, list[tuple]]) -> list[tuple[str, str]]:
    return [(name, feed_server.add(f"/{name.lower().replace(' ', '-')}.xml", rss(name, items)))
            for name, items in feeds.items()]


def at(item: tuple, hours: float) -> tuple:
    return (*item, NOW - timedelta(hours=hours))


def test_two_wordings_from_two_feeds_are_one_story_with_both_sources_linked(tmp_path, feed_server, cli_run):
    feeds = serve(feed_server, {"Wire A": [at(EMOTET_A, 30), at(FILLER[0], 20)],
                                "Wire B": [at(EMOTET_B, 26), at(FILLER[1], 10)]})
    cfg = write_config(tmp_path, feeds, corpus=None)
    briefing = run_json(cli_run, cfg)["briefing"]
    story = story_with(briefing["stories"], EMOTET_A[1])
    assert {e["source"] for e in story["entries"]} == {"Wire A", "Wire B"}
    assert len(briefing["stories"]) == 3  # the two filler items stay stories of their own
    web = (tmp_path / "archive" / f"{briefing['slug']}.html").read_text()
    lead, other = story["entries"]
    assert web.count(f'href="{lead["link"]}"') == 1  # printed once
    also = re.search(r'Also reported by (.*?)</p>', web[web.index("entry-title", web.index('id="top-stories"')):]).group(1)
    assert f'href="{other["link"]}"' in also and other["source"] in also
    stored = db_rows(tmp_path, "SELECT DISTINCT story FROM briefing_entries be JOIN entries e ON e.id = be.entry_id"
                               " WHERE e.title IN ('%s', '%s')" % (EMOTET_A[1], EMOTET_B[1]))
    assert len(stored) == 1 and stored[0][0]


def test_two_events_with_the_same_actors_stay_two_stories(tmp_path, feed_server, cli_run):
    feeds = serve(feed_server, {"Wire A": [at(QAKBOT, 30), at(FILLER[0], 20)], "Wire B": [at(PIKABOT, 28)]})
    cfg = write_config(tmp_path, feeds, corpus=None)
    stories = run_json(cli_run, cfg)["briefing"]["stories"]
    assert story_with(stories, QAKBOT[1]) is not story_with(stories, PIKABOT[1])
    assert [len(s["entries"]) for s in stories] == [1, 1, 1]


def test_a_story_continued_from_the_last_briefing_links_back(tmp_path, feed_server, cli_run):
    feeds = serve(feed_server, {"Wire A": [at(EMOTET_A, 50), at(FILLER[0], 40)], "Wire B": [at(FILLER[1], 45)]})
    cfg = write_config(tmp_path, feeds, corpus=None)
    first = run_json(cli_run, cfg)["briefing"]
    feed_server.add("/wire-b.xml", rss("Wire B", [at(FILLER[1], 45), at(EMOTET_B, 3)]))
    second = run_json(cli_run, cfg)["briefing"]
    story = story_with(second["stories"], EMOTET_B[1])
    assert [e["title"] for e in story["entries"]] == [EMOTET_B[1]]  # the earlier report is not listed again
    web = (tmp_path / "archive" / f"{second['slug']}.html").read_text()
    assert re.search(rf'Continues a story from <a class="before-link" href="{re.escape(first["slug"])}\.html">', web)
    text = (tmp_path / "archive" / f"{second['slug']}.txt").read_text()
    assert "Continues a story from" in text
    assert "developing since" in next(s for s in [web] if "entry-reason" in s)
    rows = db_rows(tmp_path, "SELECT e.title, be.story FROM briefing_entries be JOIN entries e ON e.id = be.entry_id")
    stories = dict(rows)
    assert stories[EMOTET_A[1]] == stories[EMOTET_B[1]]
    assert stories[FILLER[0][1]] != stories[EMOTET_A[1]]


def test_top_stories_come_first_and_are_not_repeated_in_full(tmp_path, feed_server, cli_run):
    feeds = serve(feed_server, {"Wire A": [at(EMOTET_A, 30), at(FILLER[0], 20), at(QAKBOT, 12)],
                                "Wire B": [at(EMOTET_B, 26), at(FILLER[1], 10)]})
    cfg = write_config(tmp_path, feeds, corpus=None, extra="[briefing]\ntop_stories = 2\n")
    briefing = run_json(cli_run, cfg)["briefing"]
    top = briefing["top_stories"]
    assert len(top) == 2 and all(s["top"] for s in top)
    assert top[0]["entries"][0]["title"] in (EMOTET_A[1], EMOTET_B[1])  # two sources: first
    assert sum(s["top"] for s in briefing["stories"]) == 2
    for name in (f"{briefing['slug']}.html",):
        page = (tmp_path / "archive" / name).read_text()
        first_section = page.index('class="section"')
        assert page.index('id="top-stories"') < page.index('class="glance"') < first_section
        for rank, story in enumerate(top, start=1):
            title = story["entries"][0]["title"]
            assert page.count(f">{title}</a></h3>") == 1  # in full once: under Top stories
            assert f'Top story {rank}: <a class="ref-link" href="#top-{rank}">{title}</a>' in page[first_section:]
    assert re.search(r"2 sources · new · [\w ,-]+ · score \d", page)


@pytest.mark.parametrize("limit, tops", [
    (5, 1),  # no more stories than the limit: only the one two sources told stands out
    (2, 2),  # more stories than the limit: the limit's worth, ranked
])
def test_a_short_briefing_lists_only_the_stories_that_stand_out_as_top(tmp_path, feed_server, cli_run, limit, tops):
    feeds = serve(feed_server, {"Wire A": [at(EMOTET_A, 30), at(FILLER[0], 20), at(QAKBOT, 12)],
                                "Wire B": [at(EMOTET_B, 26), at(FILLER[1], 10)]})
    cfg = write_config(tmp_path, feeds, corpus=None, extra=f"[briefing]\ntop_stories = {limit}\n")
    briefing = run_json(cli_run, cfg)["briefing"]
    on_topic = [s for s in briefing["stories"] if s["theme"] is not None]
    assert (len(on_topic) > limit) == (limit == 2)
    leads = [s["entries"][0]["title"] for s in briefing["top_stories"]]
    assert len(leads) == tops and leads[0] in (EMOTET_A[1], EMOTET_B[1])


def test_json_carries_stories_and_top_stories(tmp_path, feed_server, cli_run):
    feeds = serve(feed_server, {"Wire A": [at(EMOTET_A, 30), at(FILLER[0], 20)], "Wire B": [at(EMOTET_B, 26)]})
    cfg = write_config(tmp_path, feeds, corpus=None)
    assert cli_run("--config", cfg, "collect").exit_code == 0
    result = cli_run("--config", cfg, "preview", "--json")
    assert result.exit_code == 0, result.output
    previewed = json.loads(result.stdout)["briefing"]
    ran = run_json(cli_run, cfg)["briefing"]
    for briefing in (previewed, ran):
        assert set(briefing) >= {"stories", "top_stories"}
        for story in briefing["stories"]:
            assert set(story) == {"theme", "top", "entries"}
            assert all(set(e) == {"id", "title", "link", "source"} for e in story["entries"])
        assert sorted(len(s["entries"]) for s in briefing["stories"]) == [1, 2]
        assert briefing["top_stories"][0] == story_with(briefing["stories"], EMOTET_A[1])
    assert previewed["stories"] == ran["stories"]


def test_stories_explain_names_the_shared_signals(tmp_path, feed_server, cli_run):
    feeds = serve(feed_server, {"Wire A": [at(EMOTET_A, 30), at(QAKBOT, 20)], "Wire B": [at(EMOTET_B, 26)]})
    cfg = write_config(tmp_path, feeds, corpus=None)
    stories = run_json(cli_run, cfg)["briefing"]["stories"]
    emotet = story_with(stories, EMOTET_A[1])["entries"]
    result = cli_run("--config", cfg, "stories", "explain", str(emotet[0]["id"]), "--json")
    assert result.exit_code == 0, result.output
    why = json.loads(result.stdout)
    assert [g["id"] for g in why["grouped_with"]] == [emotet[1]["id"]]
    assert "emotet" in why["grouped_with"][0]["shared"]
    missing = cli_run("--config", cfg, "stories", "explain", "999999")
    assert missing.exit_code == 1 and "no stored entry" in missing.stderr


# -- the trend and the top stories, rendered ---------------------------------------------------------


def _week(config, count: int):
    """A big briefing with its top stories ranked and eight briefings before it."""
    from render_samples import CREATED, big_briefing

    from briefings.compose import top_stories
    from briefings.models import StoredBriefing

    briefing = big_briefing(config, count)
    briefing.trend = [
        StoredBriefing(id=i, slug=f"2026-11-{i + 2:02d}-b", title="B", created=CREATED - timedelta(days=7 * (8 - i)),
                       period_end=CREATED, entry_count=40, theme_counts={t.id: (i * 3 + k) % 9 for k, t in enumerate(config.themes)})
        for i in range(8)]
    briefing.top = top_stories(briefing, config.briefing.top_stories, {t.id: t.name for t in config.themes})
    return briefing


def test_the_email_stays_under_gmails_clip_with_top_stories_on_a_300_entry_week(tmp_path):
    import dataclasses

    from test_render import sample_config

    from briefings.render import MAX_EMAIL_HTML, render

    config = sample_config(tmp_path)
    config = dataclasses.replace(config, briefing=dataclasses.replace(config.briefing, max_per_theme=50))
    briefing = _week(config, 300)
    assert len(briefing.top) == 5
    rendered = render(briefing, config)
    assert len(rendered.html.encode("utf-8")) <= MAX_EMAIL_HTML < 102 * 1024
    html = rendered.html
    assert html.index('id="top-stories"') < html.index('class="glance"')
    assert len(re.findall(r'id="top-\d"', html)) == 5
    assert len(re.findall(r'class="trend-bars"', html)) == len(briefing.sections)  # bars as tables, no SVG
    assert "<svg" not in html
    for number in range(1, 6):
        assert f'href="#top-{number}"' in html  # the one-line reference in its theme section


def test_the_trend_charts_render_in_chromium_without_script(tmp_path, page_probe):
    from test_render import sample_config

    from briefings.render import render

    config = sample_config(tmp_path)
    briefing = _week(config, 60)
    rendered = render(briefing, config)
    text = rendered.text
    assert "before: " in text and "; now " in text  # the numbers, in the text version
    pages = {"web.html": rendered.web_html, "email.html": rendered.html}
    for name, markup in pages.items():
        (tmp_path / name).write_text(markup, encoding="utf-8")
        assert "<script" not in markup
    assert "script-src 'none'" in rendered.web_html
    assert len(re.findall(r'<svg class="trend-svg"', rendered.web_html)) == len(briefing.sections)
    for width in (375, 1024):
        probe = page_probe(width=width)
        page = probe.open(tmp_path / "web.html")
        charts = page.query_selector_all("svg.trend-svg")
        assert len(charts) == len(briefing.sections)
        box = charts[0].bounding_box()
        assert box and box["width"] == 90 and box["height"] == 24  # nine bars drawn
        assert len(charts[0].query_selector_all("rect")) == 9
        assert probe.horizontal_overflow() <= 0, f"the web page scrolls sideways at {width} px"
        probe.screenshot(f"trend-web-{width}.png")
        probe.open(tmp_path / "email.html")
        assert probe.horizontal_overflow() <= 0, f"the e-mail scrolls sideways at {width} px"
        assert probe.errors == [], probe.errors


def test_the_archive_charts_themes_over_time(tmp_path, feed_server, cli_run, page_probe):
    feeds = serve(feed_server, {"Wire A": [at(EMOTET_A, 50), at(FILLER[0], 40)], "Wire B": [at(FILLER[1], 45)]})
    cfg = write_config(tmp_path, feeds, corpus=None)
    run_json(cli_run, cfg)
    feed_server.add("/wire-b.xml", rss("Wire B", [at(FILLER[1], 45), at(EMOTET_B, 3)]))
    second = run_json(cli_run, cfg)["briefing"]
    index = tmp_path / "archive" / "index.html"
    markup = index.read_text()
    assert "<script" not in markup and markup.count('<svg class="trend-grid"') == 1
    theme = story_with(second["stories"], EMOTET_B[1])["theme"]
    theme_page = tmp_path / "archive" / "themes" / f"{theme}.html"
    assert theme_page.read_text().count('<svg class="trend-svg"') == 1
    for width in (375, 1024):
        probe = page_probe(width=width)
        page = probe.open(index)
        grid = page.query_selector("svg.trend-grid")
        assert grid is not None and grid.bounding_box()["width"] <= width
        assert len(grid.query_selector_all("circle")) >= 3  # a dot for each theme's count in each briefing
        assert probe.horizontal_overflow() <= 0, f"index scrolls sideways at {width} px"
        page = probe.open(theme_page)
        assert len(page.query_selector_all("svg.trend-svg rect")) == 2  # both briefings
        assert EMOTET_B[1] in page.inner_text("body")
        assert probe.horizontal_overflow() <= 0
        probe.screenshot(f"trend-theme-{width}.png")
        assert probe.errors == [], probe.errors
