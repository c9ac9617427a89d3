"""Fixed briefings for the render tests: the same input every time, hostile or not."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from briefings.compose import entry_excerpt
from briefings.models import Briefing, BriefingItem, Classification, Entry, ReadingItem, Section

CREATED = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)

XSS_TITLE = '<script>alert("title")</script><img src=x onerror=alert(1)> Talks & "norms"'
HOSTILE_HTML = """
<p onclick="alert('p')">Delegates met <b>in Geneva</b>.<script>alert('script')</script></p>
<img src="x" onerror="alert('img')"><body onload="alert('body')">
<a href="javascript:alert('js')">js link</a> <a href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;">data link</a>
<a href="JaVaScRiPt:alert('mixed')">mixed</a> <a href="https://ok.example/">fine link</a>
<div style="position:fixed;top:0;left:0;width:100%;height:100%;background:red">overlay</div>
<iframe src="https://evil.example/"></iframe><form action="https://evil.example/"><input name="q"><button>Go</button></form>
<svg onload="alert('svg')"><script>alert('svg script')</script><a xlink:href="javascript:alert('svg link')">s</a></svg>
<style>body { display:none }</style><object data="x.swf"></object><embed src="x.swf"><math><mi>x</mi></math>
<meta http-equiv="refresh" content="0;url=https://evil.example/"><base href="https://evil.example/">
"""


def entry(i: int, title: str, *, source: str = "Norms Watch", link: str | None = None, html: str = "",
          days_ago: int = 1, author: str | None = None) -> Entry:
    return Entry(
        id=i, key=f"k{i}", source_kind="feed", source_name=source, title=title,
        link=link if link is not None else f"https://news.example.org/{i}", author=author,
        published=CREATED - timedelta(days=days_ago, hours=i), summary_html=html,
        first_seen=CREATED - timedelta(hours=2),
    )


def item(e: Entry, theme: str, score: float, secondary: tuple[str, ...] = (), also=()) -> BriefingItem:
    c = Classification(theme=theme, themes=(theme, *secondary), scores={theme: score}, evidence={})
    return BriefingItem(entry=e, classification=c, excerpt=entry_excerpt(e, 3), also=list(also))


def sample_briefing(config) -> Briefing:
    """Three themes, one entry reported twice, secondary tags, a reading list, a previous briefing."""
    names = {t.id: t for t in config.themes}

    def section(theme_id, items):
        t = names[theme_id]
        return Section(theme_id=t.id, name=t.name, description=t.description, items=items)

    fora = [
        item(entry(1, "UN Open-Ended Working Group adopts its annual progress report", html=(
            "<p>After a week of negotiation in New York, states in the Open-Ended Working Group adopted their "
            "annual progress report by consensus. The report records agreement on a global points-of-contact "
            "directory. Several delegations regretted that a permanent mechanism is still undecided.</p>")),
             "international-fora", 22.5, ("confidence-building",),
             also=[("Cyber Desk", "https://desk.example.net/oewg-report"), ("Policy Wire", None)]),
        item(entry(2, "Paris Call working groups publish their recommendations", html=(
            "<p>The working groups of the Paris Call for Trust and Security in Cyberspace published their "
            "recommendations on protecting elections and the public core of the internet.</p>"), days_ago=2),
             "international-fora", 14.0),
        item(entry(3, "Regional forum agrees a cyber dialogue for next year", days_ago=3, html=(
            "<p>Ministers at the regional forum agreed to hold a cyber dialogue next year.</p>")),
             "international-fora", 9.0),
    ]
    cbm = [
        item(entry(4, "OSCE participating States test their cyber hotline", source="Security Diplomacy",
                   author="A. Analyst", html=(
            "<p>Participating States ran a communication check of the OSCE points of contact. "
            "Most answered within the hour. The exercise is one of the confidence-building measures "
            "agreed in 2016.</p>")), "confidence-building", 18.0, ("international-fora",)),
    ]
    capacity = [
        item(entry(5, "Donors fund CERT training across the Pacific", source="Capacity Weekly", link="", html=(
            "<p>A new fund will train national computer emergency response teams in twelve Pacific "
            "island states over three years.</p>")), "capacity-building", 12.0),
    ]
    briefing = Briefing(
        title=config.briefing.title, slug="2026-11-23-cyber-norms-briefing", created=CREATED,
        period_start=CREATED - timedelta(days=7), period_end=CREATED,
        sections=[section("international-fora", fora), section("confidence-building", cbm),
                  section("capacity-building", capacity)],
        off_topic=2, previous_counts={"international-fora": 1, "confidence-building": 1, "harmonization": 2},
        reading=[ReadingItem(title="Advancing the Discussion on Cybersecurity Norms",
                             link="https://blogs.example.com/norms", source="Microsoft",
                             date=datetime(2013, 10, 24, tzinfo=timezone.utc),
                             themes=["international-fora", "confidence-building"])],
    )
    return briefing


def hostile_briefing(config) -> Briefing:
    t = config.themes[0]
    e = entry(66, XSS_TITLE, link="javascript:alert('link')", html=HOSTILE_HTML, author='<b onmouseover="x()">A</b>')
    also = [("Evil <i>Feed</i>", "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="),
            ("Other", "vbscript:msgbox(1)")]
    items = [item(e, t.id, 20.0, also=also)]
    items[0].excerpt = '<script>alert("excerpt")</script> & more'
    return Briefing(
        title=config.briefing.title, slug="2026-11-23-hostile", created=CREATED, period_start=CREATED,
        period_end=CREATED, sections=[Section(t.id, t.name, t.description, items)],
    )


def big_briefing(config, count: int = 300) -> Briefing:
    """count entries spread over every theme, with real-length excerpts: the size and speed case."""
    themes = config.themes
    body = ("<p>" + " ".join(
        f"Sentence {n} of the report says that states should cooperate on norms of responsible behaviour "
        "and on confidence-building measures in cyberspace." for n in range(8)) + "</p>")
    by_theme: dict[str, list] = {t.id: [] for t in themes}
    for i in range(count):
        theme = themes[i % len(themes)]
        e = entry(1000 + i, f"Entry {i}: a development on {theme.name.lower()} worth reading", html=body,
                  days_ago=i % 7, source=f"Feed {i % 17}")
        by_theme[theme.id].append(item(e, theme.id, 30.0 - (i % 20), (themes[(i + 1) % len(themes)].id,),
                                       also=[(f"Feed {(i + 3) % 17}", f"https://other.example.org/{i}")] if i % 5 == 0 else []))
    sections = [Section(t.id, t.name, t.description, by_theme[t.id]) for t in themes if by_theme[t.id]]
    return Briefing(title=config.briefing.title, slug="2026-11-23-big", created=CREATED,
                    period_start=CREATED - timedelta(days=7), period_end=CREATED, sections=sections,
                    previous_counts={t.id: 20 for t in themes})
