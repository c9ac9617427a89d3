"""The outbox: each briefing owes each recipient exactly one message.

The deliveries are stored with the briefing, in the transaction that settles
its entries (``outbox_rows``). ``send_pending`` then sends what is due, over
one SMTP connection, recording each recipient's outcome the moment the server
accepts or refuses it. A crash at any point leaves the rest pending; the next
run sends only those. A 4xx reply is retried later, with backoff; a 5xx fails
that recipient and the others go on; after [smtp] max_attempts a delivery is
failed and reported, never dropped. A server that cannot be reached costs one
connect, one try and one backoff for the whole batch; a fault of the
configuration (certificate, ca_file, login) stops the batch at once and costs
no try.
"""

from __future__ import annotations

import binascii

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path

from briefings.clock import backoff
from briefings.config import Config, Recipient
from briefings.models import Briefing, Delivery, Rendered

MAX_WAIT = timedelta(days=1)


@dataclass
class DeliveryReport:
    sent: list[str] = field(default_factory=list)
    retrying: list[dict] = field(default_factory=list)  # {recipient, error, next_try}
    failed: list[dict] = field(default_factory=list)  # {recipient, error}
    skipped: int = 0
    error: str | None = None  # a problem that stopped sending altogether (config, login)
    unreachable: dict | None = None  # the server could not be reached: {error, deliveries, next_try}, one backoff for all
    waiting: int = 0  # deliveries still pending after this send, waiting out a backoff
    next_try: datetime | None = None  # the earliest of their retry times
    stopped: bool = False  # a stop request ended sending between two recipients; the rest stays pending

    def as_dict(self) -> dict:
        return {"sent": self.sent, "retrying": self.retrying, "failed": self.failed, "error": self.error,
                "unreachable": self.unreachable, "waiting": self.waiting, "next_try": self.next_try}


def restrict(briefing: Briefing, themes: tuple[str, ...]) -> Briefing:
    """The briefing with only the sections (and reading-list documents) of the given themes (all when none given).

    Every other field is the briefing's own (dataclasses.replace), so a field added later is kept too.
    """
    if not themes:
        return briefing
    wanted = set(themes)
    reading = [replace(r, themes=[t for t in r.themes if t in wanted]) for r in briefing.reading
               if any(t in wanted for t in r.themes)]
    return replace(briefing, sections=[s for s in briefing.sections if s.theme_id in wanted], reading=reading)


def message_id(config: Config, slug: str, email: str) -> str:
    """Stable per briefing and recipient: a resend is recognisably the same message."""
    digest = hashlib.sha256(f"{slug}\n{email.lower()}".encode()).hexdigest()[:24]
    return f"<briefing.{digest}@{_domain(config)}>"


def _domain(config: Config) -> str:
    address = parseaddr(config.smtp.sender)[1]
    return address.rpartition("@")[2] or "briefings.invalid"


def outbox_rows(config: Config, briefing: Briefing) -> list[Delivery]:
    """One delivery per recipient for a briefing about to be stored; empty unless e-mail is configured."""
    if not config.mail_enabled:
        return []
    rows = []
    for recipient in config.recipients:
        mine = restrict(briefing, recipient.themes)
        status = "pending" if mine.entry_count or config.email.send_empty else "skipped"
        rows.append(Delivery(recipient=recipient.email, name=recipient.name, themes=recipient.themes,
                             message_id=message_id(config, briefing.slug, recipient.email), status=status))
    return rows


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
    if config.email.unsubscribe_url:
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message["MIME-Version"] = "1.0"  # the email package adds it only through set_content, which is not used here
    message.make_alternative()
    message.attach(_qp_part(text, "plain"))
    message.attach(_qp_part(html, "html"))
    return message


def list_unsubscribe(config: Config, email: str) -> list[str]:
    """The List-Unsubscribe links: the configured mailto and/or https URL, else a mailto to Reply-To (or From)."""
    from briefings.render import unsubscribe_link

    links = []
    if config.email.unsubscribe_mailto:
        links.append("mailto:" + config.email.unsubscribe_mailto.replace("{email}", email) + "?subject=unsubscribe")
    if config.email.unsubscribe_url:
        links.append(unsubscribe_link(config, email))
    if not links:
        links.append("mailto:" + parseaddr(config.smtp.reply_to or config.smtp.sender)[1] + "?subject=unsubscribe")
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


def send_pending(config: Config, store, *, now: datetime, load_briefing, ignore_wait: bool = False,
                 eml_dir: Path | None = None, stop=None) -> DeliveryReport:
    """Send every due delivery this sender claims (all of them on SQLite; batch by batch, beside any other
    senders, on PostgreSQL); record each outcome as it happens."""
    from briefings.deliver.smtp import Mailer, SendError
    from briefings.errors import DeliveryError
    from briefings.render import render

    report = DeliveryReport()
    due = store.outbox.claim(now, ignore_wait=ignore_wait)
    if not due:
        _count_waiting(store, now, report)
        return report
    if not config.smtp.host:
        report.error = f"{len(due)} deliveries are pending but [smtp] host is not set"
        return report
    briefings: dict[int, Briefing] = {}
    variants: dict[tuple[int, tuple[str, ...]], tuple[Briefing, Rendered, str]] = {}
    with Mailer(config.smtp) as mailer:
        tried: set[int] = set()
        while due:
            for index, delivery in enumerate(due):
                if stop is not None and stop():
                    report.stopped = True
                    break
                bid = delivery.briefing_id
                if bid not in briefings:
                    briefings[bid] = load_briefing(bid)
                key = (bid, tuple(sorted(delivery.themes)))
                if key not in variants:
                    # premailer runs once per distinct briefing, not once per recipient.
                    mine = restrict(briefings[bid], delivery.themes)
                    variants[key] = (mine, render(mine, config, web=False), subject(config, mine))
                mine, rendered, subject_line = variants[key]
                recipient = Recipient(delivery.recipient, delivery.name, delivery.themes)
                message = build_message(config, mine, rendered, recipient, delivery.message_id, now, subject_line)
                try:
                    mailer.send(message, parseaddr(config.smtp.sender)[1], recipient.email)
                except DeliveryError as exc:  # configuration: nothing can be sent until it is fixed; no try is counted
                    report.error = exc.message + (f" ({exc.hint})" if exc.hint else "")
                    for rest in due[index:]:
                        store.outbox.record(rest.id, status="pending", error=report.error, count_attempt=False)
                    break
                except SendError as exc:
                    if exc.connecting:  # the server, not this recipient: one try and one backoff for all that are due
                        _back_off(config, store, due[index:], str(exc), now, report)
                        break
                    attempts = delivery.attempts + 1
                    if exc.temporary and attempts < config.smtp.max_attempts:
                        wait = _wait(config, attempts)
                        store.outbox.record(delivery.id, status="pending", error=str(exc), next_try=now + wait)
                        report.retrying.append({"recipient": recipient.email, "error": str(exc), "next_try": now + wait})
                    else:
                        why = str(exc) if not exc.temporary else f"{exc} (after {attempts} tries)"
                        store.outbox.record(delivery.id, status="failed", error=why)
                        report.failed.append({"recipient": recipient.email, "error": why})
                    continue
                store.outbox.record(delivery.id, status="sent", sent_at=now)
                report.sent.append(recipient.email)
                if eml_dir is not None:
                    _write_eml(eml_dir, mine.slug, recipient.email, message)
            else:
                # The whole batch went through. PostgreSQL claims by batches: claim the next (SQLite claimed all).
                if store.outbox.batch is not None and len(due) == store.outbox.batch:
                    tried.update(d.id for d in due)
                    due = store.outbox.claim(now, ignore_wait=ignore_wait, skip=tried)
                    continue
            break
    _count_waiting(store, now, report)
    return report


def _wait(config: Config, attempts: int) -> timedelta:
    return backoff(attempts, timedelta(minutes=config.smtp.retry_minutes), MAX_WAIT)


def _back_off(config: Config, store, rest: list[Delivery], error: str, now: datetime, report: DeliveryReport) -> None:
    """The server cannot be reached: every delivery still due counts one try and waits until the same time."""
    next_try = now + _wait(config, min(d.attempts for d in rest) + 1)
    waiting = 0
    for delivery in rest:
        attempts = delivery.attempts + 1
        if attempts < config.smtp.max_attempts:
            store.outbox.record(delivery.id, status="pending", error=error, next_try=next_try)
            waiting += 1
        else:
            why = f"{error} (after {attempts} tries)"
            store.outbox.record(delivery.id, status="failed", error=why)
            report.failed.append({"recipient": delivery.recipient, "error": why})
    if waiting:
        report.unreachable = {"error": error, "deliveries": waiting, "next_try": next_try}


def _count_waiting(store, now: datetime, report: DeliveryReport) -> None:
    """How many deliveries are still waiting out a backoff after this send, and the earliest retry."""
    later = [d.next_try for d in store.outbox.list(("pending",)) if d.next_try and d.next_try > now]
    report.waiting, report.next_try = len(later), min(later, default=None)


def _write_eml(folder: Path, slug: str, email: str, message: EmailMessage) -> None:
    from briefings.deliver.disk import write_atomic

    safe = "".join(c if c.isalnum() or c in "@.-_" else "_" for c in email)
    write_atomic(folder / "eml" / f"{slug}--{safe}.eml", message.as_bytes())
