"""Delivery channels: how one delivery of the outbox reaches its destination.

A channel has a name (stored with each of its deliveries), lists the
destinations config.toml gives it, prepares the message for one destination
from a briefing (built by briefings.messages and briefings.render), and sends
it. A failure is TemporaryFailure (try again later: the outbox's retry rule),
PermanentFailure (this destination will not take it), or a DeliveryError: a
fault of the configuration that stops the channel's batch at once and costs no
try. The outbox (outbox.py) picks each delivery's channel from CHANNELS by the
name stored with it, and retries by the same rule for all.

Adding a channel: a class here, registered in CHANNELS, and its settings in config.py.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import parseaddr, parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from briefings.config import Config, Recipient, Webhook
from briefings.errors import DeliveryError
from briefings.models import Briefing


class TemporaryFailure(Exception):
    """Try again later. retry_after: the seconds the destination asked for (429, 503); whole_channel:
    the channel itself cannot be reached (not this destination), so every delivery on it waits."""

    def __init__(self, message: str, *, retry_after: float | None = None, whole_channel: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.whole_channel = whole_channel


class PermanentFailure(Exception):
    """This destination refused the message: retrying cannot help."""


@dataclass(frozen=True)
class Destination:
    """One delivery's destination, as stored in the outbox."""

    channel: str
    address: str  # the e-mail address; the webhook's name
    name: str = ""
    themes: tuple[str, ...] = ()  # only these sections; empty: every theme
    key: str = ""  # the same for every try of this briefing to this destination: Message-ID, Idempotency-Key


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    retry_minutes: float


class Channel(Protocol):
    name: str
    configured: bool  # config.toml gives it destinations
    send_empty: bool  # also deliver a briefing with nothing on the destination's themes

    def destinations(self, briefing: Briefing) -> list[Destination]: ...

    def policy(self, destination: Destination) -> RetryPolicy: ...

    def prepare(self, briefing: Briefing, destination: Destination) -> Any: ...

    def send(self, message: Any) -> None: ...

    def sent(self, message: Any) -> None:
        """After the outbox recorded the message as sent (e.g. keep a copy)."""

    def close(self) -> None: ...


# -- e-mail ----------------------------------------------------------------------------------------


@dataclass
class Mail:
    message: EmailMessage
    recipient: str
    slug: str


class EmailChannel:
    """E-mail over SMTP ([smtp], [email], [[recipients]]): one connection for the batch."""

    name = "email"

    def __init__(self, config: Config, *, now: datetime | None = None, eml_dir: Path | None = None):
        self.config = config
        self.now = now
        self.eml_dir = eml_dir
        self.mailer = None
        self._rendered: dict[tuple[str, tuple[str, ...]], tuple] = {}

    @property
    def configured(self) -> bool:
        return self.config.mail_enabled

    @property
    def send_empty(self) -> bool:
        return self.config.email.send_empty

    def destinations(self, briefing: Briefing) -> list[Destination]:
        from briefings.messages import message_id

        if not self.configured:
            return []
        return [Destination(self.name, r.email, r.name, r.themes, message_id(self.config, briefing.slug, r.email))
                for r in self.config.recipients]

    def policy(self, destination: Destination) -> RetryPolicy:
        return RetryPolicy(self.config.smtp.max_attempts, self.config.smtp.retry_minutes)

    def prepare(self, briefing: Briefing, destination: Destination) -> Mail:
        from briefings.messages import build_message, subject
        from briefings.render import render

        if not self.config.smtp.host:
            raise DeliveryError("messages are pending but [smtp] host is not set",
                                "set [smtp] host and from to send it; `briefings outbox` lists it")
        key = (briefing.slug, destination.themes)
        if key not in self._rendered:  # premailer runs once per distinct briefing, not once per recipient
            self._rendered[key] = (render(briefing, self.config, web=False), subject(self.config, briefing))
        rendered, subject_line = self._rendered[key]
        recipient = Recipient(destination.address, destination.name, destination.themes)
        message = build_message(self.config, briefing, rendered, recipient, destination.key,
                                self.now or datetime.now(timezone.utc), subject_line)
        return Mail(message, destination.address, briefing.slug)

    def send(self, mail: Mail) -> None:
        from briefings.deliver.smtp import Mailer, SendError

        if self.mailer is None:
            self.mailer = Mailer(self.config.smtp)
        try:
            self.mailer.send(mail.message, parseaddr(self.config.smtp.sender)[1], mail.recipient)
        except SendError as exc:
            if exc.temporary:
                raise TemporaryFailure(str(exc), whole_channel=exc.connecting) from exc
            raise PermanentFailure(str(exc)) from exc

    def sent(self, mail: Mail) -> None:
        if self.eml_dir is None:
            return
        from briefings.deliver.disk import write_atomic

        safe = "".join(c if c.isalnum() or c in "@.-_" else "_" for c in mail.recipient)
        write_atomic(self.eml_dir / "eml" / f"{mail.slug}--{safe}.eml", mail.message.as_bytes())

    def close(self) -> None:
        if self.mailer is not None:
            self.mailer.close()


# -- webhooks --------------------------------------------------------------------------------------


@dataclass
class Post:
    hook: Webhook
    body: bytes
    key: str
    headers: dict = field(default_factory=dict)


def webhook_key(slug: str, name: str) -> str:
    """Stable per briefing and webhook: sent as Idempotency-Key, so a receiver can drop a repeat."""
    return "briefing." + hashlib.sha256(f"{slug}\nwebhook\n{name}".encode()).hexdigest()[:24]


class WebhookChannel:
    """An HTTP POST of a JSON body ([[webhooks]]: Slack, Teams or any JSON endpoint)."""

    name = "webhook"
    send_empty = False

    def __init__(self, config: Config, *, now: datetime | None = None, eml_dir: Path | None = None):
        self.config = config
        self.hooks = {h.name: h for h in config.webhooks}
        self.client = None

    @property
    def configured(self) -> bool:
        return bool(self.config.webhooks)

    def destinations(self, briefing: Briefing) -> list[Destination]:
        return [Destination(self.name, h.name, "", h.themes, webhook_key(briefing.slug, h.name))
                for h in self.config.webhooks]

    def policy(self, destination: Destination) -> RetryPolicy:
        hook = self.hooks.get(destination.address)
        return RetryPolicy(hook.max_attempts, hook.retry_minutes) if hook else RetryPolicy(1, 0)

    def prepare(self, briefing: Briefing, destination: Destination) -> Post:
        from briefings.messages import webhook_payload

        hook = self.hooks.get(destination.address)
        if hook is None:
            raise PermanentFailure(f"no [[webhooks]] named {destination.address!r} in config.toml any more")
        body = json.dumps(webhook_payload(self.config, briefing, hook.format), ensure_ascii=False).encode("utf-8")
        return Post(hook, body, destination.key)

    def send(self, post: Post) -> None:
        import httpx

        from briefings import USER_AGENT

        if self.client is None:
            self.client = httpx.Client(headers={"User-Agent": USER_AGENT}, follow_redirects=False)
        host = urlsplit(post.hook.url).netloc  # the URL's path is often its secret: never shown
        headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": post.key,
                   "X-Briefings-Delivery": post.key}
        try:
            response = self.client.post(post.hook.url, content=post.body, headers=headers,
                                        timeout=post.hook.timeout)
        except httpx.TimeoutException as exc:
            raise TemporaryFailure(f"{host} timed out after {post.hook.timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise TemporaryFailure(f"cannot connect to {host}: {_reason(exc)}") from exc
        code = response.status_code
        if 200 <= code < 300:
            return
        said = " ".join(response.text.split())[:200]
        answer = f"{host} answered {code} {response.reason_phrase}".rstrip() + (f": {said}" if said else "")
        if code == 429 or code >= 500:
            raise TemporaryFailure(answer, retry_after=retry_after(response.headers.get("Retry-After")))
        if 300 <= code < 400:
            raise PermanentFailure(f"{answer} (a redirect: set the webhook's url to the address it names)")
        raise PermanentFailure(answer)

    def sent(self, post: Post) -> None:
        pass

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header in seconds: a number of seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def _reason(exc: Exception) -> str:
    text = str(exc)
    if "refused" in text.lower():
        return "connection refused"
    return text or type(exc).__name__


# The channel each delivery names, by its stored name.
CHANNELS: dict[str, type] = {"email": EmailChannel, "webhook": WebhookChannel}
