"""The dataclasses that flow through the stages, nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypedDict

# The outcome of fetching a feed (FeedResult.status; FeedState.status keeps the last one).
FeedStatus = Literal["ok", "not-modified", "failed", "gone", "skipped"]
FETCHED: tuple[FeedStatus, ...] = ("ok", "not-modified")  # the feed answered: its validators are kept
FAILED: tuple[FeedStatus, ...] = ("failed", "gone")  # a problem the run reports


def stored_id(value: int | None) -> int:
    """An id the store fills in (Entry.id, Delivery.id, Delivery.briefing_id), of an object read from it."""
    if value is None:
        raise ValueError("no id: this was not read from the store")
    return value
# Where one delivery of the outbox stands.
DeliveryStatus = Literal["pending", "sent", "failed", "skipped"]


@dataclass
class Entry:
    """One item from a feed or the corpus, normalized.

    ``key`` is the stable identity: the feed GUID, else the link, else a hash
    of the content. Times are timezone-aware UTC.
    """

    key: str
    source_kind: str  # "feed" or "corpus"
    source_name: str
    title: str
    link: str | None = None
    guid: str | None = None
    author: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    summary_html: str = ""
    content_html: str = ""
    flags: tuple[str, ...] = ()
    fingerprint: str | None = None  # same-story fingerprint; computed at collect, else by the store
    canonical: str | None = None  # canonical link ("" for none); computed at collect, else by the store
    labels: tuple[str, ...] = ()  # themes a reading-list document is labeled with (front matter), not stored
    # Filled by the store:
    id: int | None = None
    first_seen: datetime | None = None
    sources: list[tuple[str, str | None]] = field(default_factory=list)  # (source name, link) of every carrier


@dataclass(slots=True)
class Match:
    """One term found in one field of an entry (or one feature of the model: see classify.py).
    Not frozen: a classification makes a few dozen, and a frozen dataclass takes three times as long to make."""

    term: str
    field: str  # "title", "summary" or "body"
    count: int
    weight: float


@dataclass(frozen=True)
class Classification:
    theme: str | None  # primary theme id; None = off-topic
    themes: tuple[str, ...]  # primary first, then secondary
    scores: dict[str, float]
    evidence: dict[str, tuple[Match, ...]]
    # Not stored: what the classifier knew when it decided (for `themes review` and `explain`).
    on_topic: float | None = None  # the model's probability that the entry is on topic
    margin: float | None = None  # how far the decision is from flipping (0: a coin toss)
    source: str = ""  # "correction" when the desk's correction decided it

    @property
    def secondary(self) -> tuple[str, ...]:
        return self.themes[1:]


@dataclass
class FeedResult:
    """What fetching one feed gave: entries, or the reason it failed."""

    name: str
    url: str
    status: FeedStatus
    entries: list[Entry] = field(default_factory=list)
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    new_url: str | None = None  # set when a permanent redirect moved the feed
    title: str | None = None
    warning: str | None = None  # a bozo feed's parse warning
    seconds: float = 0.0
    new: int = 0  # filled by the pipeline after storing
    alternates: list[str] = field(default_factory=list)  # feeds a web page named instead of being one
    item_hashes: bytes | None = None  # digests of the items fetched (stored with the entries, for the next fetch)
    skipped: int = 0  # items not parsed again: unchanged since the previous fetch
    discovered_from: str | None = None  # the web page `feeds add` was given, when it found this feed there


class FeedLine(TypedDict):
    """What the collect stage says of one feed: the fields its problem line reads."""

    name: str
    status: FeedStatus
    error: str | None
    warning: str | None
    moved_to: str | None  # the URL a permanent redirect moved it to


class FeedReport(FeedLine):
    """One feed in RunReport.feeds (the --json output of run and collect)."""

    url: str
    new: int
    entries: int
    unchanged_items: int
    seconds: float


@dataclass
class FeedState:
    """What the store remembers of one feed between fetches: validators and health."""

    name: str
    url: str
    title: str | None = None
    etag: str | None = None
    last_modified: str | None = None  # the server's Last-Modified, sent back as it came
    status: FeedStatus | None = None  # the last fetch's outcome; None: never fetched
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    next_try: datetime | None = None  # backing off until then
    disabled: bool = False  # gone (HTTP 410): not fetched again until its URL changes
    moved_to: str | None = None  # the URL a permanent redirect moved it to
    item_hashes: bytes | None = None  # digests of the items of the last successful fetch


@dataclass
class CorpusResult:
    entries: list[Entry] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)


@dataclass
class StoryBefore:
    """Where a story this briefing continues appeared before."""

    briefing: "StoredBriefing"  # the newest earlier briefing that listed it
    since: datetime  # its earliest report


@dataclass
class BriefingItem:
    """One story as a briefing lists it: its lead report, and the other reports of the same event."""

    entry: Entry
    classification: Classification
    excerpt: str
    also: list[tuple[str, str | None]] = field(default_factory=list)  # every other (source, link) of the story
    story: str | None = None  # the story's id, stored with each of its entries
    reports: list["BriefingItem"] = field(default_factory=list)  # the story's other reports, not printed in full
    before: StoryBefore | None = None  # set when the story continues one from an earlier briefing
    top: int | None = None  # its rank among the top stories (1: first), None when not one
    reason: str = ""  # why it is a top story, in one line ("4 sources · developing since 24 Nov")

    @property
    def sources(self) -> list[str]:
        """The distinct sources that carried the story."""
        seen = [self.entry.source_name]
        for source, _ in self.also:
            if source not in seen:
                seen.append(source)
        return seen


@dataclass
class Section:
    theme_id: str | None
    name: str
    description: str
    items: list[BriefingItem]
    hidden: int = 0  # entries beyond the per-theme limit in the e-mail


@dataclass
class ReadingItem:
    """A reading-list document shown under "From the reading list": why it is relevant now."""

    title: str
    link: str | None
    source: str
    date: datetime | None
    themes: list[str]  # ids of this briefing's themes the document speaks to, strongest first


@dataclass
class Briefing:
    title: str
    slug: str
    created: datetime
    period_start: datetime | None
    period_end: datetime
    sections: list[Section]
    off_topic: int = 0
    id: int | None = None
    previous_counts: dict[str, int] | None = None  # theme counts of the briefing before, for "change since"
    reading: list[ReadingItem] = field(default_factory=list)
    top: list[BriefingItem] = field(default_factory=list)  # the top stories, in rank order
    trend: list["StoredBriefing"] = field(default_factory=list)  # the briefings before (up to eight), oldest first

    @property
    def entry_count(self) -> int:
        return sum(1 + len(item.reports) for s in self.sections for item in s.items)

    @property
    def theme_counts(self) -> dict[str, int]:
        """Entries per theme (every report of a story counts under the story's theme)."""
        return {s.theme_id or "off-topic": sum(1 + len(i.reports) for i in s.items) for s in self.sections}

    def stories(self):
        """(section, story) for every story, in the order the briefing lists them."""
        for section in self.sections:
            for item in section.items:
                yield section, item


@dataclass
class StoredBriefing:
    """A briefing as the store lists it: what it was, not its bodies or entries."""

    id: int
    slug: str
    title: str
    created: datetime
    period_end: datetime
    entry_count: int
    theme_counts: dict[str, int]
    period_start: datetime | None = None
    off_topic: int = 0
    html_path: str | None = None
    text_path: str | None = None


@dataclass
class Delivery:
    """One message the outbox owes one recipient for one briefing."""

    recipient: str  # the destination on its channel: an e-mail address, a webhook's name
    message_id: str
    channel: str = "email"  # which channel delivers it (briefings.deliver.channels.CHANNELS)
    name: str = ""
    themes: tuple[str, ...] = ()  # the recipient's theme filter when the briefing was composed (all when empty)
    status: DeliveryStatus = "pending"
    # Filled by the store:
    id: int | None = None
    briefing_id: int | None = None
    slug: str | None = None  # the briefing's
    attempts: int = 0
    last_error: str | None = None
    next_try: datetime | None = None
    sent_at: datetime | None = None
    created: datetime | None = None


@dataclass
class HistoryItem:
    """One entry as a briefing listed it: under which theme, in which briefing."""

    entry: Entry
    classification: Classification | None
    theme: str | None  # the section it was listed in (None: off-topic)
    briefing: StoredBriefing
    story: str | None = None  # the story it was listed in (None: before stories were stored)


@dataclass
class Rendered:
    html: str
    text: str
    web_html: str  # the full web version, every entry listed
    email_limit: int | None = None  # entries per theme the e-mail shows (lowered to stay under Gmail's clip)
    archive_text: str = ""  # the text for the archive: the e-mail's, without the unsubscribe link


@dataclass(frozen=True)
class StoredCorrection:
    """The desk's themes for one stored entry (`briefings themes teach`), as the store keeps them."""

    entry: Entry
    theme: str | None  # None: off-topic
    also: tuple[str, ...]  # secondary themes
    created: datetime
