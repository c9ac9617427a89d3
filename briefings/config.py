"""config.toml -> frozen dataclasses.

Every setting is declared once, as a dataclass field with its default and one
line of help (``metadata={"help": ...}``). The loader is generic over those
declarations: it checks types, checks every number is finite and in the range
its setting declares (``range=Range(...)``; not negative when none is declared),
resolves paths against the config file's folder and rejects unknown keys, and
every error names the file, the line and the key.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from briefings import resources
from briefings.errors import ConfigError

ENV_VAR = "BRIEFINGS_CONFIG"
THEME_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class Range:
    """The values a numeric setting accepts; every number must also be finite (TOML allows nan and inf).

    lo/hi: the bounds (None: unbounded on that side); open_lo/open_hi: the bound itself is not allowed.
    """

    lo: float | None = 0
    hi: float | None = None
    open_lo: bool = False
    open_hi: bool = False

    def allows(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.lo is not None and (value <= self.lo if self.open_lo else value < self.lo):
            return False
        return self.hi is None or (value < self.hi if self.open_hi else value <= self.hi)

    def __str__(self) -> str:
        lo, hi = (None if v is None else f"{int(v)}" if float(v).is_integer() else f"{v:g}" for v in (self.lo, self.hi))
        if lo is not None and hi is not None and not (self.open_lo or self.open_hi):
            return f"from {lo} to {hi}"
        parts = []
        if lo is not None:
            parts.append(f"{'more than' if self.open_lo else 'at least'} {lo}")
        if hi is not None:
            parts.append(f"{'less than' if self.open_hi else 'at most'} {hi}")
        return " and ".join(parts) or "any finite number"


# A numeric setting that declares no range: finite and not negative.
DEFAULT_RANGE = Range(0)


def _s(default: Any, help: str, key: str | None = None, range: Range | None = None) -> Any:
    """A setting: its default and one line of help, declared once (key: its TOML name, when not the field's;
    range: the values a number accepts, DEFAULT_RANGE when not given)."""
    metadata = {"help": help} | ({"key": key} if key else {}) | ({"range": range} if range else {})
    if range is not None and not range.allows(default):
        raise ValueError(f"default {default!r} is outside its range ({range})")
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _range(f) -> Range:
    return f.metadata.get("range", DEFAULT_RANGE)


def _key(f) -> str:
    return f.metadata.get("key", f.name)


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise TypeError(f"setting {f.name} has no default")


@dataclass(frozen=True)
class CorpusSettings:
    path: Path | None = _s("sources", "Folder of .md/.txt/.html documents (the reading list); empty to disable.")


@dataclass(frozen=True)
class StateSettings:
    path: Path = _s("state/briefings.sqlite3", "SQLite file that remembers feeds, entries and briefings.")
    url: str = _s("", "postgresql://user@host:port/database: keep the state in PostgreSQL instead of the SQLite file (needs the postgres extra: pip install 'briefings[postgres]'). Empty: the SQLite file at path.")
    password_env: str = _s("", "Name of the environment variable that holds the PostgreSQL password; empty: libpq's own (PGPASSWORD, ~/.pgpass).")
    lease_seconds: float = _s(300.0, "PostgreSQL: how long a `briefings send` holds the deliveries it claimed; those of a sender that died go to another after it.", range=Range(1, 86400))

    @property
    def postgres(self) -> bool:
        return bool(self.url)

    @property
    def exists(self) -> bool:
        """Whether there is a state to read yet (a PostgreSQL database is taken to exist)."""
        return bool(self.url) or self.path.exists()

    @property
    def where(self) -> str:
        """The state, for a message: the SQLite file, or the PostgreSQL host and database (never a password)."""
        if not self.url:
            return str(self.path)
        from briefings.store.postgres import describe

        return describe(self.url)


@dataclass(frozen=True)
class OutputSettings:
    dir: Path = _s("archive", "Folder the briefings and the archive index are written to.")
    eml: bool = _s(False, "Also write every e-mail message to the archive as .eml.")
    base_url: str = _s("", "URL the archive folder is published at (e.g. https://intranet.example.org/briefings/): e-mails then link to the full web version. Empty: no such links.")


@dataclass(frozen=True)
class FetchSettings:
    concurrency: int = _s(8, "Feeds fetched at the same time.", range=Range(1, 1000))
    per_host: int = _s(2, "Feeds fetched at the same time from one host.", range=Range(1, 1000))
    timeout: float = _s(15.0, "Seconds allowed per feed: connect, each read, and the whole download.", range=Range(0, 3600, open_lo=True))
    max_bytes: int = _s(10_000_000, "Largest feed body accepted, in bytes; a larger one fails the feed.", range=Range(1, 1_000_000_000))
    max_redirects: int = _s(5, "Redirects followed before a feed fails.", range=Range(0, 100))
    backoff_max_hours: float = _s(24.0, "Longest wait before a failing feed is tried again.", range=Range(0, 8760))
    workers: int = _s(0, "Processes that parse feeds: 0 = one per CPU core, 1 = parse in the main process.", range=Range(0, 1024))
    max_title_chars: int = _s(300, "Longest entry title kept, in characters; a longer one is cut on a word and ends with \u2026.", range=Range(10, 100_000))
    max_summary_chars: int = _s(262_144, "Longest entry summary kept, in characters of HTML; a longer one is cut, marked \u2026 and flagged truncated.", range=Range(1, 100_000_000))
    max_content_chars: int = _s(262_144, "Longest entry content kept, in characters of HTML; a longer one is cut, marked \u2026 and flagged truncated.", range=Range(1, 100_000_000))


@dataclass(frozen=True)
class BriefingSettings:
    title: str = _s("Cyber Norms Briefing", "Title of every briefing.")
    include_off_topic: bool = _s(False, "Also list entries that match no theme, in an 'Other' section.")
    max_per_theme: int = _s(8, "Entries shown per theme in the e-mail (0: all); the web version lists all.", range=Range(0, 10_000))
    excerpt_sentences: int = _s(3, "Sentences in each entry's excerpt.", range=Range(0, 100))
    footer: str = _s("", "Contact or unsubscribe line printed at the foot of every briefing.")
    reading_list: int = _s(3, "Reading-list documents shown under \"From the reading list\": those most relevant to the briefing's themes; 0: none.", range=Range(0, 1000))
    top_stories: int = _s(5, "Stories shown first, under \"Top stories\": those most sources carried, then developing before new, then by theme score and recency; 0: none.", range=Range(0, 50))


@dataclass(frozen=True)
class RenderSettings:
    templates: Path | None = _s("", "Folder of your own templates; each replaces the shipped one of its name, or extends it as \"default:NAME\".")


@dataclass(frozen=True)
class ClassifySettings:
    method: str = _s("model", "How entries are classified: \"model\" (the shipped model, with the terms and the desk's corrections) or \"terms\" (the previous classifier: terms and likeness to examples).")
    threshold: float = _s(4.0, "Score a theme needs to be an entry's primary theme; below it for all: off-topic.", range=Range(0))
    secondary_share: float = _s(0.5, "Share of the primary's score a theme needs to be a secondary theme.", range=Range(0, 1))
    similarity_weight: float = _s(32.0, "Weight of an entry's TF-IDF likeness to each theme's examples; 0 = terms only.", range=Range(0))
    off_topic_terms: list = _s([], "Terms that count against every theme: signs of product news, finance, tutorials.")
    examples: Path | None = _s("", "JSON-lines file of labeled examples ({theme, title, text}) that teach the themes.")


@dataclass(frozen=True)
class SmtpSettings:
    host: str = _s("", "SMTP server; empty: briefings are only written to the archive, not e-mailed.")
    port: int = _s(0, "SMTP port; 0: 587 for starttls, 465 for ssl, 25 for none.", range=Range(0, 65535))
    security: str = _s("starttls", "starttls, ssl or none.")
    username: str = _s("", "Login name; empty: no AUTH.")
    password_env: str = _s("", "Name of the environment variable that holds the password (never the password itself).")
    timeout: float = _s(30.0, "Seconds allowed for each SMTP command.", range=Range(0, 3600, open_lo=True))
    sender: str = _s("", "From address, e.g. \"Norms Briefing <briefings@example.org>\".", key="from")
    reply_to: str = _s("", "Reply-To address; empty: none.")
    max_attempts: int = _s(5, "Tries per recipient before the delivery is reported failed.", range=Range(1, 1000))
    retry_minutes: float = _s(5.0, "Wait after a temporary (4xx) failure; doubles with each try, at most a day.", range=Range(0, 1440))
    ca_file: Path | None = _s("", "PEM file of the CA that signed the server's certificate, for a private relay; empty: the system's.")


@dataclass(frozen=True)
class EmailSettings:
    subject: str = _s("", "Subject template (Jinja2); empty: the shipped subject.txt.j2 template.")
    list_id: str = _s("", "List-Id header value, e.g. \"norms-briefing.example.org\"; empty: derived from the From domain.")
    unsubscribe_mailto: str = _s("", "Address for List-Unsubscribe (mailto); {email}, before the @ only, is replaced by the recipient's address with its @ written = (leave+{email}@example.org: leave+ana=example.org@example.org). Empty: a mailto to Reply-To (or From).")
    unsubscribe_url: str = _s("", "https URL for List-Unsubscribe and one-click unsubscribe (RFC 8058); {email} is replaced.")
    send_empty: bool = _s(False, "Send a recipient a briefing with nothing on their themes (saying so) instead of nothing.")


@dataclass(frozen=True)
class ScheduleSettings:
    timezone: str = _s("UTC", "IANA time zone the briefing times are in, e.g. \"Europe/Brussels\".")
    collect: str = _s("every 30 minutes", "How often the daemon collects between briefings (an interval); empty: only at briefing time.")
    briefing: list = _s(["monday 08:00"], "When the daemon makes and sends a briefing: one or more of \"monday 08:00\", \"daily 07:30\", \"weekdays 09:00\", \"every 2 hours\".")
    catch_up: bool = _s(True, "At start, make the briefing that fell due while the daemon was down (once).")
    heartbeat: str = _s("every 60 minutes", "How often the daemon logs that it is alive; empty: never.")
    retry_seconds: float = _s(60.0, "Wait before a failed job is tried again; doubles with each failure in a row, at most an hour.", range=Range(0, 3600, open_lo=True))
    lock_wait: float = _s(600.0, "Seconds a command waits for a running daemon job (or another run) to finish before giving up.", range=Range(0, 86400))


@dataclass(frozen=True)
class ServeSettings:
    host: str = _s("127.0.0.1", "Address `briefings serve` listens on; 0.0.0.0 or :: for every interface (put a reverse proxy with TLS in front).")
    port: int = _s(8040, "Port `briefings serve` listens on.", range=Range(1, 65535))
    public_url: str = _s("", "URL `briefings serve` is reached at from outside (e.g. https://briefings.example.org/): e-mails then carry its one-click unsubscribe link. Empty: none.")
    secret_env: str = _s("BRIEFINGS_SECRET", "Name of the environment variable holding the secret that signs unsubscribe links (never the secret itself); the same for serve and for the runs that send.")


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str = ""
    themes: tuple[str, ...] = ()  # empty: every theme


@dataclass(frozen=True)
class Webhook:
    """One [[webhooks]] table: where a briefing's summary and top links are posted."""

    name: str = _s("", "Name shown by `briefings outbox` and in every message about it; default: the URL's host.")
    url: str = _s("", "Required: the incoming-webhook URL (Slack, Teams) or any JSON endpoint; http or https. Never shown in messages.")
    format: str = _s("json", "slack (Block Kit), teams (MessageCard) or json (the object documented under Webhooks).")
    themes: list = _s([], "Only these themes' entries and counts; empty: every theme.")
    timeout: float = _s(10.0, "Seconds allowed for each post: connect, send and the answer.", range=Range(0, 600, open_lo=True))
    max_attempts: int = _s(5, "Tries before the delivery is reported failed.", range=Range(1, 1000))
    retry_minutes: float = _s(5.0, "Wait after a temporary failure (429, 5xx, timeout); doubles with each try, at most a day; a longer Retry-After wins.", range=Range(0, 1440))


@dataclass(frozen=True)
class FeedConfig:
    name: str
    url: str


@dataclass(frozen=True)
class Theme:
    id: str
    name: str
    description: str
    terms: tuple[str, ...]
    weights: dict[str, float] = field(default_factory=dict)
    negative: tuple[str, ...] = ()


# table name -> settings class; the order is the order of the docs.
SECTIONS: dict[str, type] = {
    "corpus": CorpusSettings,
    "state": StateSettings,
    "output": OutputSettings,
    "fetch": FetchSettings,
    "briefing": BriefingSettings,
    "render": RenderSettings,
    "classify": ClassifySettings,
    "smtp": SmtpSettings,
    "email": EmailSettings,
    "schedule": ScheduleSettings,
    "serve": ServeSettings,
}


@dataclass(frozen=True)
class Config:
    path: Path
    corpus: CorpusSettings
    state: StateSettings
    output: OutputSettings
    fetch: FetchSettings
    briefing: BriefingSettings
    render: RenderSettings
    classify: ClassifySettings
    smtp: SmtpSettings
    email: EmailSettings
    schedule: ScheduleSettings
    feeds: tuple[FeedConfig, ...]
    themes: tuple[Theme, ...]
    recipients: tuple[Recipient, ...] = ()
    webhooks: tuple[Webhook, ...] = ()
    serve: ServeSettings = field(default_factory=ServeSettings)

    @property
    def mail_enabled(self) -> bool:
        """E-mail goes out when [smtp] names a host and there is at least one recipient."""
        return bool(self.smtp.host and self.recipients)

    @property
    def delivery_enabled(self) -> bool:
        """Briefings are delivered (the outbox is kept and sent) when any channel is configured."""
        return self.mail_enabled or bool(self.webhooks)

    @property
    def root(self) -> Path:
        return self.path.parent

    def theme(self, theme_id: str) -> Theme | None:
        return next((t for t in self.themes if t.id == theme_id), None)


def settings_reference() -> list[tuple[str, str, Any, str]]:
    """(table, key, default, help) for every setting: for `briefings check` and the docs.

    The keys of each [[webhooks]] table come last, under the table "[webhooks]"."""
    rows = []
    for table, cls in [*SECTIONS.items(), ("[webhooks]", Webhook)]:
        for f in dataclasses.fields(cls):
            default = _default(f)
            help_text = f.metadata.get("help", "")
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                help_text += f" Range: {_range(f)}."
            rows.append((table, _key(f), default, help_text))
    return rows


def default_path() -> Path:
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else Path("config.toml")


class _Locator:
    """Finds the line of a key in the TOML text, for error messages."""

    HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?")
    KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")

    def __init__(self, text: str):
        self.lines = text.splitlines()

    def line(self, table: str | None, key: str | None = None, index: int | None = None) -> int | None:
        current, seen = "", -1
        header_line = None
        for number, raw in enumerate(self.lines, 1):
            header = self.HEADER.match(raw)
            if header:
                current = header.group(1).replace('"', "").replace("'", "").strip()
                if current == table:
                    seen += 1
                    if index is None or seen == index:
                        header_line = number
                continue
            if key is None or current != (table or ""):
                continue
            if index is not None and seen != index:
                continue
            m = self.KEY.match(raw)
            if m and m.group(1).strip("\"'") == key:
                return number
        return header_line


def load(path: str | os.PathLike | None = None) -> Config:
    """Read and validate a config file. Raises ConfigError naming file, line and key."""
    cfg_path = Path(path) if path is not None else default_path()
    if not cfg_path.is_file():
        hint = "pass --config PATH, set BRIEFINGS_CONFIG, or run `briefings init DIR` to write a starter config"
        raise ConfigError(f"{cfg_path}: config file not found", hint)
    try:
        text = cfg_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{cfg_path}: cannot read config: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{cfg_path}: invalid TOML: {exc}", "fix the syntax at that line") from exc
    return from_dict(data, cfg_path.resolve(), text)


def from_dict(data: dict, cfg_path: Path, text: str = "") -> Config:
    loc = _Locator(text)
    root = cfg_path.parent

    def fail(message: str, table: str | None, key: str | None = None, index: int | None = None, hint=None):
        line = loc.line(table, key, index)
        where = f"{cfg_path}" + (f":{line}" if line else "")
        name = ".".join(p for p in (table, key) if p)
        raise ConfigError(f"{where}: [{table}] {key}: {message}" if key else f"{where}: [{name}]: {message}", hint)

    known = set(SECTIONS) | {"feeds", "themes", "recipients", "webhooks"}
    for table in data:
        if table not in known:
            fail(f"unknown table (known: {', '.join(sorted(known))})", table)

    sections = {}
    for table, cls in SECTIONS.items():
        raw = data.get(table, {})
        if not isinstance(raw, dict):
            fail("must be a table", table)
        if table == "schedule" and isinstance(raw.get("briefing"), str):
            raw = raw | {"briefing": [raw["briefing"]]}  # one time may be written without the list
        sections[table] = _build(cls, raw, table, root, fail)
    _check_schedule(sections["schedule"], fail)
    _check_templates(sections["render"], fail)
    if sections["classify"].method not in ("model", "terms"):
        fail(f"must be \"model\" or \"terms\", got {sections['classify'].method!r}", "classify", "method")
    for table, key in (("output", "base_url"), ("serve", "public_url")):
        url = getattr(sections[table], key)
        if url and not re.match(r"^https?://[^\s/]+", url):
            fail(f"must be an http(s) URL, got {url!r}", table, key)

    feeds = _feeds(data.get("feeds", []), fail)
    if "themes" in data:
        themes = _themes(data["themes"], fail)
    else:
        themes = default_themes()
    recipients = _recipients(data.get("recipients", []), {t.id for t in themes}, fail)
    _check_state(sections["state"], fail)
    _check_mail(sections["smtp"], sections["email"], recipients, fail)
    webhooks = _webhooks(data.get("webhooks", []), {t.id for t in themes}, root, fail)
    return Config(path=cfg_path, feeds=feeds, themes=themes, recipients=recipients, webhooks=webhooks, **sections)


def _check_schedule(schedule: "ScheduleSettings", fail) -> None:
    from briefings import timetable

    try:
        timetable.zone(schedule.timezone)
    except timetable.SpecError as exc:
        fail(str(exc), "schedule", "timezone")
    for key in ("collect", "heartbeat"):
        value = getattr(schedule, key)
        if value.strip():
            try:
                spec = timetable.parse(value)
            except timetable.SpecError as exc:
                fail(str(exc), "schedule", key)
            if spec.interval is None:
                fail(f"{value!r}: must be an interval, e.g. \"every 30 minutes\"", "schedule", key)
    if not schedule.briefing:
        fail("needs at least one time, e.g. [\"monday 08:00\"]", "schedule", "briefing")
    for value in schedule.briefing:
        try:
            timetable.parse(value)
        except timetable.SpecError as exc:
            fail(str(exc), "schedule", "briefing")


def _check_templates(render: "RenderSettings", fail) -> None:
    """[render] templates must be a folder: a missing one would quietly mean the shipped templates."""
    folder = render.templates
    if folder is None or folder.is_dir():
        return
    what = "is a file, not a folder" if folder.exists() else "no such folder"
    fail(f"{folder}: {what}: create it, or set templates to the folder of your templates (empty: the shipped ones)",
         "render", "templates")


def _check_state(state: "StateSettings", fail) -> None:
    if state.url and not state.url.startswith(("postgresql://", "postgres://")):
        fail(f"must be a postgresql:// URL, got {state.url!r}", "state", "url",
             hint='e.g. url = "postgresql://briefings@db.example.org/briefings", or leave it out for the SQLite file')


def _check_mail(smtp: "SmtpSettings", email: "EmailSettings", recipients, fail) -> None:
    if smtp.security not in ("starttls", "ssl", "none"):
        fail(f"must be starttls, ssl or none, got {smtp.security!r}", "smtp", "security")
    if smtp.host and not smtp.sender:
        fail("is required when [smtp] host is set", "smtp", "from", hint='e.g. from = "Norms Briefing <briefings@example.org>"')
    for key, value in (("from", smtp.sender), ("reply_to", smtp.reply_to)):
        if value and not _address_ok(value):
            fail(f"not a valid e-mail address: {value!r}", "smtp", key)
    if smtp.username and not smtp.password_env:
        fail("is required when username is set: name the environment variable that holds the password",
             "smtp", "password_env")
    if email.unsubscribe_url and not email.unsubscribe_url.startswith("https://"):
        fail("must be an https:// URL", "email", "unsubscribe_url")
    if email.unsubscribe_mailto and not _address_ok(email.unsubscribe_mailto.replace("{email}", "x")):
        fail(f"not a valid e-mail address: {email.unsubscribe_mailto!r}", "email", "unsubscribe_mailto")
    if "{email}" in email.unsubscribe_mailto.rpartition("@")[2]:
        fail(f"{email.unsubscribe_mailto!r}: {{email}} may stand only before the @, where the recipient's @ is written ="
             " (leave+{email}@example.org: leave+ana=example.org@example.org)", "email", "unsubscribe_mailto")


_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


def _address_ok(value: str) -> bool:
    """A single address, bare or as 'Name <addr>'; no CR or LF anywhere."""
    from email.utils import parseaddr

    if "\r" in value or "\n" in value:
        return False
    name, addr = parseaddr(value)
    return bool(addr) and bool(_ADDRESS.match(addr)) and (value.strip() == addr or value.strip().endswith(f"<{addr}>"))


def _recipients(raw: Any, theme_ids: set[str], fail) -> tuple["Recipient", ...]:
    if not isinstance(raw, list):
        fail("must be an array of tables: write each recipient as [[recipients]]", "recipients")
    out, seen = [], set()
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            fail("each recipient must be a table with email, name and themes", "recipients", index=i)
        for key in item:
            if key not in ("email", "name", "themes"):
                fail("unknown key (known: email, name, themes)", "recipients", key, index=i)
        email = item.get("email")
        if not isinstance(email, str) or not _ADDRESS.match(email.strip()):
            fail(f"not a valid e-mail address: {email!r}", "recipients", "email", index=i,
                 hint="write the bare address, e.g. email = \"ana@example.org\", and the name in name")
        email = email.strip()
        if email.lower() in seen:
            fail(f"{email} is listed twice", "recipients", "email", index=i)
        seen.add(email.lower())
        name = item.get("name", "")
        if not isinstance(name, str) or "\n" in name or "\r" in name:
            fail("expected a one-line string", "recipients", "name", index=i)
        themes = item.get("themes", [])
        if not isinstance(themes, list) or not all(isinstance(t, str) for t in themes):
            fail("expected a list of theme ids", "recipients", "themes", index=i)
        for theme in themes:
            if theme not in theme_ids:
                fail(f"unknown theme id {theme!r} (known: {', '.join(sorted(theme_ids))})", "recipients", "themes", index=i)
        out.append(Recipient(email=email, name=name.strip(), themes=tuple(themes)))
    return tuple(out)


def _webhooks(raw: Any, theme_ids: set[str], root: Path, fail) -> tuple[Webhook, ...]:
    from urllib.parse import urlsplit

    from briefings.messages import FORMATS

    if not isinstance(raw, list):
        fail("must be an array of tables: write each webhook as [[webhooks]]", "webhooks")
    out, names = [], set()
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            fail("each webhook must be a table with url and format", "webhooks", index=i)

        def at(message, table, key=None, index=None, hint=None, i=i):
            fail(message, table, key, index=i, hint=hint)

        hook = _build(Webhook, item, "webhooks", root, at)
        problem = feed_url_problem(hook.url)
        if problem:
            at(problem, "webhooks", "url", hint="paste the whole incoming-webhook URL, e.g. https://hooks.slack.com/services/...")
        if hook.format not in FORMATS:
            at(f"must be {', '.join(FORMATS[:-1])} or {FORMATS[-1]}, got {hook.format!r}", "webhooks", "format")
        for theme in hook.themes:
            if theme not in theme_ids:
                at(f"unknown theme id {theme!r} (known: {', '.join(sorted(theme_ids))})", "webhooks", "themes")
        name = hook.name.strip() or urlsplit(hook.url).hostname or hook.url
        if "\n" in name or "\r" in name:
            at("expected a one-line string", "webhooks", "name")
        if name in names:
            at(f"two webhooks are named {name!r}", "webhooks", "name", hint="give each webhook its own name")
        names.add(name)
        out.append(dataclasses.replace(hook, name=name))
    return tuple(out)


def _check_type(value: Any, annotation: Any) -> Any:
    """Coerce value to the annotated type or raise TypeError with what was expected."""
    text = str(annotation)
    optional = "None" in text
    if "Path" in text:
        if isinstance(value, str):
            return value
        raise TypeError("expected a path (a string)")
    if annotation is bool or text == "bool":
        if isinstance(value, bool):
            return value
        raise TypeError("expected true or false")
    if annotation is int or text == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError("expected a whole number")
    if annotation is float or text == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError("expected a number")
    if annotation is str or text == "str":
        if isinstance(value, str):
            return value
        raise TypeError("expected a string")
    if annotation is list or text == "list":
        if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
            return tuple(v.strip() for v in value)
        raise TypeError("expected a list of non-empty strings")
    if value is None and optional:
        return value
    return value


def _build(cls: type, raw: dict, table: str, root: Path, fail) -> Any:
    hints = get_type_hints(cls)
    names = {_key(f) for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            fail(f"unknown key (known: {', '.join(sorted(names))})", table, key)
    values = {}
    for f in dataclasses.fields(cls):
        default = _default(f)
        value = raw.get(_key(f), default)
        try:
            value = _check_type(value, hints[f.name])
        except TypeError as exc:
            fail(f"{exc}, got {value!r}", table, _key(f))
        if "Path" in str(hints[f.name]):
            if value in ("", None):
                if "None" not in str(hints[f.name]):
                    fail("must not be empty", table, _key(f))
                value = None
            else:
                value = (root / Path(value).expanduser()).resolve()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                fail(f"must be a finite number ({_range(f)}), got {raw.get(_key(f))!r}", table, _key(f))
            if not _range(f).allows(value):
                fail(f"must be {_range(f)}, got {raw.get(_key(f))!r}", table, _key(f))
        values[f.name] = value
    return cls(**values)


_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_ASCII_HOST = re.compile(r"(?:(?!-)[a-z0-9_-]{1,63}(?<!-)\.)*(?!-)[a-z0-9_-]{1,63}(?<!-)\.?")


def feed_url_problem(url: str) -> str | None:
    """What is wrong with url as a feed's address (None: nothing): http or https, a valid host, no spaces."""
    from urllib.parse import urlsplit

    shown = repr(url)
    if not url:
        return "is empty: give the feed's full address, starting with https://"
    if _SPACE_OR_CONTROL.search(url):
        return f"{shown} contains spaces or control characters (write a space in a path as %20)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number from 0 to 65535)
    except ValueError as exc:
        message = str(exc)
        if "port" in message.lower():
            return f"{shown} has an invalid port: {message}"
        return f"{shown} is not a valid URL: {message}"
    if parts.scheme.lower() not in ("http", "https"):
        return f"{shown} must be an http or https URL, starting with https:// or http://"
    host = parts.hostname or ""
    if not host:
        return f"{shown} has no host: write it as https://HOST/PATH"
    if "[" in parts.netloc:
        import ipaddress

        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return f"{shown}: {host!r} is not a valid IPv6 address"
        return None
    if _ASCII_HOST.fullmatch(host):
        return None
    if not host.isascii():
        # The fetcher (httpx) encodes a non-ASCII host with IDNA 2008 (the idna package), which
        # refuses what Python's IDNA 2003 codec lets through (symbols such as ☃): check it the same way.
        import idna

        try:
            host = idna.encode(host).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            return f"{shown}: {parts.hostname!r} is not a valid host name (no international domain name may hold these characters)"
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    for label in labels:
        if not _HOST_LABEL.match(label):
            return f"{shown}: {parts.hostname!r} is not a valid host name"
    return None


def _feeds(raw: Any, fail) -> tuple[FeedConfig, ...]:
    if not isinstance(raw, list):
        fail("must be an array of tables: write each feed as [[feeds]]", "feeds")
    feeds, names = [], set()
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            fail("each feed must be a table with name and url", "feeds", index=i)
        for key in item:
            if key not in ("name", "url"):
                fail("unknown key (known: name, url)", "feeds", key, index=i)
        url = item.get("url")
        if isinstance(url, str):
            url = url.strip()  # spaces around a pasted URL; one inside stays an error
        problem = feed_url_problem(url) if isinstance(url, str) else f"expected a string, got {url!r}"
        if problem:
            fail(problem, "feeds", "url", index=i, hint="give the feed's full address, e.g. https://example.org/feed.xml")
        name = item.get("name") or url
        if not isinstance(name, str):
            fail(f"expected a string, got {name!r}", "feeds", "name", index=i)
        if name in names:
            fail(f"duplicate feed name {name!r}", "feeds", "name", index=i, hint="give every feed its own name")
        names.add(name)
        feeds.append(FeedConfig(name=name, url=url))
    return tuple(feeds)


def _themes(raw: Any, fail) -> tuple[Theme, ...]:
    if not isinstance(raw, dict):
        fail("must be tables like [themes.<id>]", "themes")
    themes = []
    for theme_id, body in raw.items():
        table = f"themes.{theme_id}"
        if not THEME_ID.match(theme_id):
            fail("theme ids are lowercase letters, digits and hyphens", table)
        if not isinstance(body, dict):
            fail("must be a table with name, description and terms", table)
        for key in body:
            if key not in ("name", "description", "terms", "weights", "negative"):
                fail("unknown key (known: name, description, terms, weights, negative)", table, key)
        name = body.get("name", theme_id)
        description = body.get("description", "")
        if not isinstance(name, str) or not name.strip():
            fail("expected a non-empty string", table, "name")
        if not isinstance(description, str):
            fail("expected a string", table, "description")
        terms = body.get("terms", [])
        if not isinstance(terms, list) or not all(isinstance(t, str) and t.strip() for t in terms):
            fail("expected a list of non-empty strings", table, "terms")
        negative = body.get("negative", [])
        if not isinstance(negative, list) or not all(isinstance(t, str) and t.strip() for t in negative):
            fail("expected a list of non-empty strings", table, "negative")
        weights = body.get("weights", {})
        if not isinstance(weights, dict) or not all(
            isinstance(w, (int, float)) and not isinstance(w, bool) and 0 < w < math.inf for w in weights.values()
        ):
            fail("expected a table of term = positive finite number", table, "weights")
        folded = {t.strip().lower() for t in terms}
        for term in weights:
            if term.strip().lower() not in folded:
                fail(f"weight given for {term!r}, which is not in terms", table, "weights")
        themes.append(
            Theme(
                id=theme_id,
                name=name.strip(),
                description=description.strip(),
                terms=tuple(t.strip() for t in terms),
                weights={k.strip().lower(): float(v) for k, v in weights.items()},
                negative=tuple(t.strip() for t in negative),
            )
        )
    return tuple(themes)


_DEFAULT_THEMES: tuple[Theme, ...] | None = None


def default_themes() -> tuple[Theme, ...]:
    """The shipped taxonomy (the [themes] tables of the shipped config.toml)."""
    global _DEFAULT_THEMES
    if _DEFAULT_THEMES is None:
        shipped = resources.shipped_config()
        text = shipped.read_text(encoding="utf-8")
        loc_fail = _shipped_fail(shipped)
        _DEFAULT_THEMES = _themes(tomllib.loads(text).get("themes", {}), loc_fail)
    return _DEFAULT_THEMES


def _shipped_fail(path: Path):
    def fail(message, table, key=None, index=None, hint=None):
        raise ConfigError(f"{path}: [{table}] {key or ''}: {message}", hint)

    return fail


def settings_markdown() -> str:
    """The configuration reference table of the README, generated from the declarations above."""
    lines = ["| key | default | what it does |", "|---|---|---|"]
    for table, key, default, help_text in settings_reference():
        shown = "(empty)" if default in ("", None) else repr(default) if isinstance(default, str) else str(default)
        if isinstance(default, bool):
            shown = str(default).lower()
        lines.append(f"| `[{table}] {key}` | `{shown}` | {help_text} |")
    return "\n".join(lines)
