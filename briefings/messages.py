"""What each channel delivers, built from a briefing: the e-mail (subject, MIME message, list headers)
and the webhook payloads (Slack, Microsoft Teams, plain JSON).

Nothing here sends or stores anything: briefings/deliver/ sends what this builds.
"""

from __future__ import annotations

import binascii
import hashlib
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any

from briefings import __version__
from briefings.config import Config, Recipient
from briefings.models import Briefing, Rendered
from briefings.serve.tokens import one_click

# -- e-mail ----------------------------------------------------------------------------------------


def message_id(config: Config, slug: str, email: str) -> str:
    """Stable per briefing and recipient: a resend is recognisably the same message."""
    digest = hashlib.sha256(f"{slug}\n{email.lower()}".encode()).hexdigest()[:24]
    return f"<briefing.{digest}@{_domain(config)}>"


def _domain(config: Config) -> str:
    address = parseaddr(config.smtp.sender)[1]
    return address.rpartition("@")[2] or "briefings.invalid"


def subject(config: Config, briefing: Briefing) -> str:
    """The subject from its template, on one line whatever a title contains."""
    from briefings.render import environment

    env = environment(config)
    template = env.from_string(config.email.subject) if config.email.subject else env.get_template("subject.txt.j2")
    text = template.render(
        title=briefing.title, total=briefing.entry_count, sections=briefing.sections,
        period_start=briefing.period_start, period_end=briefing.period_end, briefing=briefing,
    )
    return one_line(text)[:250]


def one_line(text: str) -> str:
    """Header text: CR, LF and every other whitespace run become one space."""
    return " ".join(str(text).split())


def build_message(config: Config, briefing: Briefing, rendered: Rendered, recipient: Recipient, msg_id: str,
                  now: datetime, subject_line: str | None = None) -> EmailMessage:
    """multipart/alternative, UTF-8, one recipient in To, every list header."""
    from briefings.render import personalize

    html, text = personalize(rendered, config, recipient.email)
    message = EmailMessage()
    message["Subject"] = subject_line if subject_line is not None else subject(config, briefing)
    message["From"] = config.smtp.sender
    local, _, domain = recipient.email.rpartition("@")
    message["To"] = Address(display_name=one_line(recipient.name), username=local, domain=domain)
    if config.smtp.reply_to:
        message["Reply-To"] = config.smtp.reply_to
    message["Date"] = format_datetime(now)
    message["Message-ID"] = msg_id
    list_id = config.email.list_id or f"{_slug(briefing.title)}.{_domain(config)}"
    message["List-Id"] = formataddr((one_line(briefing.title), "")).rstrip(" <>") + f" <{one_line(list_id)}>"
    message["List-Unsubscribe"] = ", ".join(f"<{link}>" for link in list_unsubscribe(config, recipient.email))
    if one_click(config):
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message["MIME-Version"] = "1.0"  # the email package adds it only through set_content, which is not used here
    message.make_alternative()
    message.attach(_qp_part(text, "plain"))
    message.attach(_qp_part(html, "html"))
    return message


def list_unsubscribe(config: Config, email: str) -> list[str]:
    """The List-Unsubscribe links: the configured mailto and/or https URL, else a mailto to Reply-To (or From)."""
    from briefings.render import unsubscribe_link, unsubscribe_mailto

    links = []
    if config.email.unsubscribe_mailto:
        links.append(unsubscribe_mailto(config.email.unsubscribe_mailto, email))
    # The one-click URL ([email] unsubscribe_url, else `briefings serve`'s at [serve] public_url), else the
    # default mailto, as in the footer.
    if (one_click(config) or not links) and (link := unsubscribe_link(config, email)) is not None:
        links.append(link)
    return links


def _qp_part(body: str, subtype: str) -> EmailMessage:
    """A UTF-8 text part, quoted-printable, encoded by binascii (C) rather than the email package's pure
    Python encoder, which costs more than everything else in a message."""
    part = EmailMessage()
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["Content-Transfer-Encoding"] = "quoted-printable"
    encoded = binascii.b2a_qp(body.replace("\r\n", "\n").encode("utf-8"), istext=True).decode("ascii")
    part.set_payload(encoded if encoded.endswith("\n") else encoded + "\n")
    return part


def _slug(text: str) -> str:
    from briefings.compose import slugify

    return slugify(text) or "briefing"


# -- webhooks --------------------------------------------------------------------------------------

FORMATS = ("slack", "teams", "json")
TOP_ENTRIES = 10  # links a webhook message carries: the first entry of each theme, then the second ...


def summary(config: Config, briefing: Briefing) -> dict[str, Any]:
    """The briefing as every webhook format tells it: the documented object of format = "json".

    {"briefing": {title, slug, period: {start, end}, entries, themes: [{id, name, count}], url},
     "top": [{title, link, source, theme, theme_name}], "version": briefings' version}
    Times are ISO 8601 in UTC; url (the web version) is null unless [output] base_url is set.
    """
    from briefings.render import safe_url, web_url

    top: list[dict] = []
    depth = 0
    while len(top) < TOP_ENTRIES and any(depth < len(s.items) for s in briefing.sections):
        for section in briefing.sections:
            if depth < len(section.items) and len(top) < TOP_ENTRIES:
                entry = section.items[depth].entry
                top.append({"title": one_line(entry.title), "link": safe_url(entry.link), "source": entry.source_name,
                            "theme": section.theme_id, "theme_name": section.name})
        depth += 1
    return {
        "briefing": {
            "title": briefing.title,
            "slug": briefing.slug,
            "period": {"start": _iso(briefing.period_start), "end": _iso(briefing.period_end)},
            "entries": briefing.entry_count,
            "themes": [{"id": s.theme_id, "name": s.name, "count": len(s.items)} for s in briefing.sections],
            "url": web_url(config, briefing.slug),
        },
        "top": top,
        "version": __version__,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _period(data: dict) -> str:
    start, end = (data["briefing"]["period"][k] for k in ("start", "end"))
    days = [v[:10] for v in (start, end) if v]
    return " to ".join(dict.fromkeys(days))


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_url(url: str) -> str:
    """A URL inside <url|text>: the three characters that would end it, percent-encoded."""
    return url.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")


def slack_payload(data: dict) -> dict:
    """A Slack incoming-webhook message: Block Kit, with a plain "text" fallback for notifications."""
    b = data["briefing"]
    counts = ", ".join(f"{t['name']} {t['count']}" for t in b["themes"])
    links = []
    for item in data["top"]:
        title = _slack_escape(item["title"])
        links.append(f"\u2022 <{_slack_url(item['link'])}|{title}> ({_slack_escape(item['source'])})" if item["link"]
                     else f"\u2022 {title} ({_slack_escape(item['source'])})")
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": b["title"][:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(
            f"{b['entries']} entries, {_period(data)}: {counts}")[:3000]}},
    ]
    if links:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(links)[:3000]}})
    if b["url"]:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{_slack_url(b['url'])}|Read the briefing>"}]})
    return {"text": f"{b['title']}: {b['entries']} entries ({counts})", "blocks": blocks}


def _md_escape(text: str) -> str:
    return "".join("\\" + c if c in "\\[]()*_`#" else c for c in text)


def teams_payload(data: dict) -> dict:
    """A Microsoft Teams incoming-webhook message: an Office 365 connector MessageCard."""
    b = data["briefing"]
    links = [f"- [{_md_escape(i['title'])}]({i['link']}) ({_md_escape(i['source'])})" if i["link"]
             else f"- {_md_escape(i['title'])} ({_md_escape(i['source'])})" for i in data["top"]]
    card: dict[str, Any] = {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": b["title"],
        "themeColor": "1F3A5F",
        "title": b["title"],
        "text": f"{b['entries']} entries, {_period(data)}",
        "sections": [
            {"facts": [{"name": t["name"], "value": str(t["count"])} for t in b["themes"]]},
            {"text": "\n".join(links)},
        ],
    }
    if b["url"]:
        card["potentialAction"] = [{"@type": "OpenUri", "name": "Read the briefing",
                                    "targets": [{"os": "default", "uri": b["url"]}]}]
    return card


def webhook_payload(config: Config, briefing: Briefing, format: str) -> dict:
    """The JSON body a webhook of that format is posted."""
    data = summary(config, briefing)
    if format == "slack":
        return slack_payload(data)
    if format == "teams":
        return teams_payload(data)
    return data
