"""Briefing -> HTML (Jinja2, then premailer to inline the CSS) and plain text.

No feed HTML reaches a template unsanitized: titles and excerpts are plain
text (escaped by Jinja2's autoescape), links are kept only for http, https and
mailto, and the one HTML field shown (the full summary in the web version) has
passed nh3's allowlist first.
"""

from __future__ import annotations

import functools

import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import urlsplit

import jinja2
import nh3
from markupsafe import Markup

from briefings import __version__, resources
from briefings.config import Config
from briefings.errors import BriefingsError
from briefings.models import Briefing, HistoryItem, Rendered, StoredBriefing
from briefings.serve.tokens import one_click, unsubscribe_url as serve_unsubscribe_url
from briefings.signals import StopCheck, check

SAFE_SCHEMES = {"http", "https", "mailto"}
ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "li", "ol", "p", "pre", "q", "s", "small", "strong", "sub", "sup", "table", "tbody", "td",
    "tfoot", "th", "thead", "tr", "u", "ul",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}


def sanitize(markup: str | None) -> Markup:
    """Feed HTML through an allowlist: no script, style, event handler, form, frame or image."""
    if not markup:
        return Markup("")
    clean = nh3.clean(
        markup,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=SAFE_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return Markup(clean)


def safe_url(url: str | None) -> str | None:
    if not url:
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in SAFE_SCHEMES else None


def environment(config: Config | None = None) -> jinja2.Environment:
    """Templates from the user's [render] templates folder first, file by file, then the shipped ones.

    "default:NAME" always names the shipped template, so a user's template can
    `{% extends "default:briefing.html.j2" %}` and override only some blocks.
    One environment per templates folder, so each template is compiled once per process.
    """
    user = config.render.templates if config is not None else None
    return _environment(str(user) if user is not None else None)


SHIPPED_PREFIX = "default"


class _Environment(jinja2.Environment):
    """A fault in the user's templates (or [email] subject) becomes one line naming the file and line."""

    def handle_exception(self, source: str | None = None):
        from jinja2.debug import rewrite_traceback_stack

        exc = rewrite_traceback_stack(source=source)
        if not isinstance(exc, jinja2.TemplateError):
            raise exc
        filename, line = getattr(exc, "filename", None), getattr(exc, "lineno", None)
        if filename is None:
            tb = exc.__traceback__
            while tb is not None:  # the innermost template frame
                if tb.tb_frame.f_code.co_filename.endswith(".j2"):
                    filename, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
                tb = tb.tb_next
        shipped = str(resources.templates_dir())
        if filename is not None and str(Path(filename).resolve()).startswith(shipped + os.sep):
            raise exc  # a shipped template's fault is a bug in briefings
        where = f"{filename}:{line}" if filename and line else (filename or "a template")
        if isinstance(exc, jinja2.TemplateNotFound):
            message = f"no template named {exc.name!r}"
            shipped_names = ", ".join(sorted(p.name for p in resources.templates_dir().glob("*.j2")))
            hint = f'put it in [render] templates, or write "{SHIPPED_PREFIX}:NAME" for a shipped one ({shipped_names})'
        else:
            message = exc.message or type(exc).__name__
            hint = "fix the template, or take it out of [render] templates to use the shipped one"
        raise BriefingsError(f"{where}: {message}", hint) from None


@functools.lru_cache(maxsize=8)
def _environment(user_templates: str | None) -> jinja2.Environment:
    shipped = jinja2.FileSystemLoader(str(resources.templates_dir()))
    loaders: list[jinja2.BaseLoader] = [jinja2.PrefixLoader({SHIPPED_PREFIX: shipped}, delimiter=":")]
    if user_templates is not None:
        loaders.append(jinja2.FileSystemLoader(user_templates))
    loaders.append(shipped)
    env = _Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm", "xml", "html.j2", "htm.j2"), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["date"] = lambda d, fmt="%d %B %Y": d.strftime(fmt).lstrip("0") if d else ""
    env.filters["safe_url"] = safe_url
    return env


# Gmail clips a message whose HTML passes 102 KB (and hides the rest behind a link); the e-mail
# is kept under this, with room for the personal unsubscribe link and the headers.
MAX_EMAIL_HTML = 100 * 1024


@dataclass
class _View:
    """The briefing as the templates see it."""

    briefing: Briefing
    themes: dict[str, str]
    limit: int | None
    web_url: str | None = None  # the full web version, for "N more" links from the e-mail
    stop: StopCheck | None = None  # a stop request, honoured between two sections (raises Stopped)
    page_of: Callable[[str], str | None] | None = None  # slug -> the link to that briefing's page (relative on the web, base_url in the e-mail)

    def item(self, item) -> dict:
        view = item_view(item, self.themes)
        if item.before is not None:
            b = item.before.briefing
            view["before"] = {"title": b.title, "date": b.created, "since": item.before.since,
                              "href": self.page_of(b.slug) if self.page_of else None}
        return view

    def top(self):
        return [self.item(item) for item in self.briefing.top]

    def sections(self):
        for section in self.briefing.sections:
            check(self.stop)
            # A top story is one line here (told in full under Top stories): always shown, never counted.
            rest = [item for item in section.items if item.top is None]
            kept = {id(item) for item in (rest if self.limit is None else rest[: self.limit])}
            shown = [item for item in section.items if item.top is not None or id(item) in kept]
            sid = section.theme_id or "other"
            yield {
                "id": sid,
                "theme_id": section.theme_id,
                "name": section.name,
                "description": section.description,
                "count": len(section.items),
                "hidden": len(rest) - len(kept),
                "more_url": f"{self.web_url}#{sid}" if self.web_url else None,
                "items": [self.item(item) for item in shown],
            }

    def glance(self):
        counts = [(s.theme_id or "other", s.name, len(s.items)) for s in self.briefing.sections]
        top = max((n for _, _, n in counts), default=0) or 1
        previous = self.briefing.previous_counts
        rows = []
        for sid, name, n in counts:
            change = None
            if previous is not None:
                before = previous.get(sid if sid != "other" else "off-topic", 0)
                change = "new" if before == 0 else ("same" if n == before else f"{n - before:+d}".replace("-", "\u2212"))
            key = sid if sid != "other" else "off-topic"
            points = [(_day(b.created), b.theme_counts.get(key, 0)) for b in self.briefing.trend]
            points.append((_day(self.briefing.created) + " (this briefing)", n))
            rows.append({"id": sid, "name": name, "count": n, "bar": max(2, round(100 * n / top)), "change": change,
                         "trend": [c for _, c in points],
                         "trend_svg": spark_svg(points, label=f"{name}: this briefing and the {len(points) - 1} before"),
                         "trend_mail": mail_bars(points)})
        return rows

    def reading(self):
        return [
            {"title": r.title, "link": safe_url(r.link), "source": r.source, "date": r.date,
             "themes": [self.themes.get(t, t) for t in r.themes]}
            for r in self.briefing.reading
        ]


# -- the trend: counts over briefings, drawn without script (inline SVG on the web, tables in the e-mail) --


def _esc(text: str) -> str:
    import html as html_module

    return html_module.escape(str(text), quote=True)


def _bars(points: list[tuple[str, int]], tallest: int):
    """(index, label, count, height, colour) of each bar: the tallest for the largest count, this briefing's dark."""
    top = max((n for _, n in points), default=0) or 1
    for i, (name, n) in enumerate(points):
        yield i, name, n, max(1, round(tallest * n / top)) if n else 1, "#1d4ed8" if i == len(points) - 1 else "#93c5fd"


def spark_svg(points: list[tuple[str, int]], *, label: str) -> Markup:
    """Small bars, one per (label, count), the last one (this briefing) dark; an inline SVG, no script."""
    width, height = 10 * len(points), 24
    bars = []
    for i, name, n, h, fill in _bars(points, 20):
        bars.append(f'<rect x="{i * 10 + 1}" y="{height - h}" width="8" height="{h}" fill="{fill}">'
                    f"<title>{_esc(name)}: {n}</title></rect>")
    return Markup(f'<svg class="trend-svg" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
                  f'viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(label)}">{"".join(bars)}</svg>')


def mail_bars(points: list[tuple[str, int]]) -> Markup:
    """The same bars as a table every e-mail client draws (SVG does not render in Gmail)."""
    cells = []
    for _, name, n, h, color in _bars(points, 18):
        cells.append(f'<td valign="bottom" width="7" title="{_esc(name)}: {n}" style="padding:0 1px 0 0">'
                     f'<div style="height:{h}px;width:6px;background-color:{color};font-size:1px;line-height:1px">&nbsp;</div></td>')
    return Markup('<table role="presentation" class="trend-bars" cellpadding="0" cellspacing="0" border="0" height="20">'
                  f'<tr>{"".join(cells)}</tr></table>')


def grid_svg(rows: list[tuple[str, list[int]]], columns: list[str]) -> Markup:
    """Themes (rows) over briefings (columns, oldest first) as one chart: a dot per count, its area the count."""
    import math

    top = max((n for _, counts in rows for n in counts), default=0) or 1
    left, step, line = 150, 14, 16
    width, height = left + step * max(len(columns), 1), line * len(rows) + 18
    parts = []
    for r, (name, counts) in enumerate(rows):
        y = line * r + 12
        short = name if len(name) <= 26 else name[:25] + "…"
        parts.append(f'<text x="0" y="{y + 4}" font-size="11" fill="currentColor">{_esc(short)}</text>')
        for c, n in enumerate(counts):
            if n:
                radius = max(1.5, 6 * math.sqrt(n / top))
                parts.append(f'<circle cx="{left + step * c + 7}" cy="{y}" r="{radius:.1f}" fill="#1d4ed8">'
                             f"<title>{_esc(name)}, {_esc(columns[c])}: {n}</title></circle>")
    if len(columns) >= 4:  # fewer columns leave no room for two labels
        parts.append(f'<text x="{left}" y="{height - 2}" font-size="10" fill="currentColor">{_esc(columns[0])}</text>')
    if columns:
        parts.append(f'<text x="{width}" y="{height - 2}" font-size="10" text-anchor="end" fill="currentColor">'
                     f"{_esc(columns[-1])}</text>")
    return Markup(f'<svg class="trend-grid" xmlns="http://www.w3.org/2000/svg" width="100%" viewBox="0 0 {width} {height}" '
                  f'role="img" aria-label="Entries per theme in each briefing, oldest left">{"".join(parts)}</svg>')


def _day(d: datetime) -> str:
    return d.strftime("%d %b").lstrip("0")


def item_view(item, themes: dict[str, str]) -> dict:
    """One entry as a template sees it: text escaped by the template, links checked, HTML sanitized."""
    entry = item.entry
    return {
        "id": entry.id,
        "title": entry.title,
        "link": safe_url(entry.link),
        "source": entry.source_name,
        "author": entry.author,
        "date": entry.published or entry.first_seen,
        "date_estimated": "date-estimated" in entry.flags,
        "excerpt": item.excerpt,
        "summary": sanitize(entry.summary_html or entry.content_html),
        "tags": [{"id": t, "name": themes.get(t, t)} for t in item.classification.secondary],
        "also": [{"source": s, "link": safe_url(link)} for s, link in item.also],
        "story": item.story,
        "top": item.top,
        "reason": item.reason,
        "before": None,
    }


# Stands in for each recipient's unsubscribe link until the CSS is inlined: premailer runs once per
# distinct briefing, and the personal parts are put in afterwards (see personalize).
UNSUBSCRIBE_SENTINEL = "https://unsubscribe.briefings.invalid/"


def web_url(config: Config, slug: str) -> str | None:
    base = config.output.base_url.strip()
    return f"{base.rstrip('/')}/{slug}.html" if base else None


def render(briefing: Briefing, config: Config, *, generated: datetime | None = None, web: bool = True,
           stop: StopCheck | None = None) -> Rendered:
    """The e-mail HTML (limited per theme, CSS inlined), the plain text, and (web=True) the full web version.

    stop: a stop request, checked between sections and between the versions (raises Stopped).

    When [email] sets an unsubscribe address, the e-mail and text carry a
    placeholder link that ``personalize`` replaces per recipient. Should the
    e-mail HTML pass MAX_EMAIL_HTML, fewer entries per theme are shown (the rest
    are counted, and linked when [output] base_url is set).
    """
    env = environment(config)
    themes = {t.id: t.name for t in config.themes}
    online = web_url(config, briefing.slug)
    on_web = lambda slug: f"{slug}.html"  # noqa: E731 - the archive's pages sit side by side
    in_mail = lambda slug: web_url(config, slug)  # noqa: E731 - absolute, when [output] base_url is set
    view = _View(briefing, themes, None, online, stop, on_web)
    start, end = briefing.period_start, briefing.period_end
    common = {
        "briefing": briefing,
        "title": briefing.title,
        "footer": config.briefing.footer,
        "version": __version__,
        "generated": generated or briefing.created,
        "covering": bool(start and end and start.date() != end.date()),
        "glance": view.glance(),
        "top_stories": view.top(),
        "reading": view.reading(),
        "total": briefing.entry_count,
        "off_topic": briefing.off_topic,
        "unsubscribe": None,
        "web_url": online,
    }
    mail_common = common | {
        # [serve] public_url: each recipient's signed link, made when the message is (it needs the secret).
        "unsubscribe": UNSUBSCRIBE_SENTINEL if one_click(config) or unsubscribe_link(config, "") is not None else None,
        "top_stories": _View(briefing, themes, None, online, stop, in_mail).top(),
    }
    limit = config.briefing.max_per_theme or None
    template = env.get_template("briefing.html.j2")
    biggest = max((len(s.items) for s in briefing.sections), default=0)
    while True:
        email_view = _View(briefing, themes, limit, online, stop, in_mail)
        sections = list(email_view.sections())
        check(stop)
        html = inline_css(template.render(mail_common, sections=sections, web=False))
        if len(html.encode("utf-8")) <= MAX_EMAIL_HTML or biggest <= 1 or (limit is not None and limit <= 1):
            break
        limit = max(1, (min(limit, biggest) if limit else biggest) * 3 // 4)
    text_template = env.get_template("briefing.txt.j2")
    text = text_template.render(mail_common, sections=sections)
    # The archive's copy has no recipient, so no unsubscribe link (nor the placeholder).
    archive_text = text if mail_common["unsubscribe"] is None else text_template.render(common, sections=sections)
    web_html = ""
    if web:
        check(stop)
        web_html = inline_css(template.render(common, sections=list(view.sections()), web=True))
    return Rendered(html=html, text=text, web_html=web_html, email_limit=limit, archive_text=archive_text)


def archive_pages(config: Config, history: list[HistoryItem], listed: list[StoredBriefing],
                  themes: Iterable[str] | None = None) -> dict[str, str]:
    """The archive's pages, built: {"themes/<id>.html": html, ..., "index.html": html}, the index last.

    history: every entry a briefing listed (store.briefings.history()); listed: every briefing, newest first
    (store.briefings.all()). The index lists every briefing with its date, entry count and theme counts;
    each theme page lists that theme's entries across briefings. themes: the ids whose pages to build
    (None: all). Plain relative links: it all works from the file system, without a server.
    """
    from briefings.compose import entry_excerpt
    from briefings.models import BriefingItem

    env = environment(config)
    names = {t.id: t.name for t in config.themes}
    order = {t.id: i for i, t in enumerate(config.themes)}
    wanted = set(names) if themes is None else set(themes) & set(names)
    totals: dict[str, int] = {}
    groups: dict[str, list[dict]] = {t: [] for t in wanted}
    for row in history:
        theme_id, classification = row.theme, row.classification
        if theme_id not in names or classification is None:
            continue  # off-topic, or a theme no longer in config.toml (a listed entry is always classified)
        totals[theme_id] = totals.get(theme_id, 0) + 1
        if theme_id not in groups:
            continue  # its page is not built: counted for the index only
        briefing = row.briefing
        bucket = groups[theme_id]
        if not bucket or bucket[-1]["id"] != briefing.id:
            bucket.append({"id": briefing.id, "slug": briefing.slug, "title": briefing.title,
                           "created": briefing.created, "items": []})
        entry = row.entry
        lead = next((i for i in bucket[-1]["items"] if row.story and i["story"] == row.story), None)
        if lead is not None:  # another report of a story listed above: told under it
            lead["also"].append({"source": entry.source_name, "link": safe_url(entry.link)})
            continue
        excerpt = entry_excerpt(entry, config.briefing.excerpt_sentences)
        item = item_view(BriefingItem(entry, classification, excerpt, story=row.story), names)
        item["tags"] = [t for t in item["tags"] if t["id"] in names]  # each tag links to its theme's page
        bucket[-1]["items"].append(item)
    pages: dict[str, str] = {}
    over_time = list(reversed(listed))[-26:]  # the charts show the newest 26 briefings, oldest left
    columns = [_day(b.created) for b in over_time]
    for theme in config.themes:
        if theme.id not in groups:
            continue
        html = env.get_template("theme.html.j2").render(
            title=config.briefing.title, theme=theme, groups=groups[theme.id], count=totals.get(theme.id, 0),
            version=__version__,
            trend=spark_svg([(c, b.theme_counts.get(theme.id, 0)) for c, b in zip(columns, over_time)],
                            label=f"{theme.name}: entries in each briefing, oldest left") if over_time else None,
        )
        pages[f"themes/{theme.id}.html"] = inline_css(html)
    rows = []
    days = [b.created.date() for b in listed]
    for b in listed:
        html_name = Path(b.html_path).name if b.html_path else None
        text_name = Path(b.text_path).name if b.text_path else None
        counts = sorted(b.theme_counts.items(), key=lambda kv: order.get(kv[0], len(order)))
        rows.append(
            {
                "title": b.title,
                "created": b.created,
                # Two briefings on one day are told apart by their time.
                "time": f"{b.created:%H:%M} UTC" if days.count(b.created.date()) > 1 else None,
                "entry_count": b.entry_count,
                "href": html_name,
                "text_href": text_name,
                "themes": [{"id": k, "name": names.get(k, k), "count": v,
                            "page": f"themes/{k}.html" if k in names else None} for k, v in counts],
            }
        )
    index = env.get_template("index.html.j2").render(
        title=config.briefing.title, briefings=rows, version=__version__,
        themes=[{"id": t.id, "name": t.name, "count": totals.get(t.id, 0)} for t in config.themes],
        chart=grid_svg([(t.name, [b.theme_counts.get(t.id, 0) for b in over_time]) for t in config.themes], columns)
        if over_time else None,
    )
    pages["index.html"] = inline_css(index)  # last: it links to the theme pages
    return pages


def unsubscribe_link(config: Config, email: str) -> str | None:
    """The recipient's unsubscribe link for the footer: the https URL when set, else `briefings serve`'s when
    [serve] public_url is set, else the mailto when set, else the mailto to Reply-To (or From) that
    List-Unsubscribe offers by default; None without any address."""
    from email.utils import parseaddr
    from urllib.parse import quote

    served = serve_unsubscribe_url(config, email)
    if served:
        return served
    if config.email.unsubscribe_url:
        return config.email.unsubscribe_url.replace("{email}", quote(email, safe="@"))
    if config.email.unsubscribe_mailto:
        return unsubscribe_mailto(config.email.unsubscribe_mailto, email)
    default = parseaddr(config.smtp.reply_to or config.smtp.sender)[1]
    return unsubscribe_mailto(default, email) if default else None


def unsubscribe_mailto(address: str, email: str) -> str:
    """mailto:address?subject=unsubscribe, with {email} in address replaced by the recipient's, VERP-style:
    its @ written = (leave+{email}@example.org: leave+ana=example.org@example.org), so the address keeps
    one @; URL-quoted. config.py allows {email} only before the @."""
    from urllib.parse import quote

    return "mailto:" + address.replace("{email}", quote(email.replace("@", "="), safe="")) + "?subject=unsubscribe"


def personalize(rendered: Rendered, config: Config, email: str) -> tuple[str, str]:
    """The e-mail HTML and text for one recipient: the placeholder link replaced by theirs."""
    import html as html_module

    link = unsubscribe_link(config, email) or ""
    return (
        rendered.html.replace(UNSUBSCRIBE_SENTINEL, html_module.escape(link, quote=True)),
        rendered.text.replace(UNSUBSCRIBE_SENTINEL, link),
    )


def inline_css(html: str) -> str:
    """premailer with the network off; media queries stay in <style> for clients that honour them."""
    import premailer  # imported here: only rendering pays for lxml and cssutils

    logging.getLogger("CSSUTILS").setLevel(logging.CRITICAL)
    return premailer.Premailer(
        html,
        allow_network=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        remove_classes=False,
        keep_style_tags=False,
        strip_important=False,
        disable_leftover_css=False,
    ).transform(pretty_print=False)
