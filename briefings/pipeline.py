"""The stages in order: collect -> store -> classify -> compose -> render -> deliver.

``run_once`` walks the path once; a failure of one source is recorded in the
report, never fatal. Nothing here prints: progress goes to a callback.

A stop request (``stop``, see briefings.signals) is honoured at safe points:
between two feeds, two entries classified, two sections rendered and two
recipients, never inside a transaction.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable

from briefings.collect.corpus import load_corpus
from briefings.collect.feeds import fetch_all
from briefings.config import Config
from briefings.models import FAILED, Classification, Entry, FeedReport, FeedResult, stored_id
from briefings.signals import Stopped, check
from briefings.clock import utcnow
from briefings.store import Store
from briefings.text import html_to_text

log = logging.getLogger("briefings.pipeline")
# Pending entries classified together (the model scores a batch at once); a stop request is seen between two.
CLASSIFY_BATCH = 500


@dataclass
class RunReport:
    dry_run: bool = False
    feeds: list[FeedReport] = field(default_factory=list)
    corpus_documents: int = 0
    corpus_skipped: list[dict] = field(default_factory=list)
    new_by_source: dict[str, int] = field(default_factory=dict)
    new_entries: int = 0
    pending: int = 0
    by_theme: dict[str, int] = field(default_factory=dict)
    off_topic: int = 0
    briefing: dict | None = None
    nothing_new: bool = False
    written: list[str] = field(default_factory=list)
    delivery: dict | None = None  # what the outbox sent, retried and failed
    stopped: bool = False  # a stop request (a signal) cut the run short; nothing is lost

    @property
    def feeds_failed(self) -> list[FeedReport]:
        return [f for f in self.feeds if f["status"] in FAILED]

    def as_dict(self) -> dict:
        data = asdict(self)
        data["feeds_failed"] = len(self.feeds_failed)
        return data


def entry_text(entry: Entry) -> str:
    return html_to_text(entry.summary_html) or html_to_text(entry.content_html)


def open_store(config: Config, *, dry_run: bool = False) -> Store:
    """The state file; for a dry run, an in-memory copy of it, so nothing is written."""
    if not dry_run:
        return Store.open(config.state)
    return Store.in_memory_copy(config.state.url or config.state.path, password_env=config.state.password_env)


def collect(
    config: Config,
    store: Store,
    report: RunReport,
    *,
    now: datetime,
    progress: Callable[[FeedResult], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> list[Entry]:
    """Fetch the feeds and read the corpus; store what is new; return the new entries.

    When stop() turns true, no other feed starts: the feeds in flight are stored
    (each feed in one transaction), the rest is fetched next time.
    """
    states = store.feeds.ensure_all((feed.name, feed.url) for feed in config.feeds)
    order = {feed.name: i for i, feed in enumerate(config.feeds)}
    new: list[Entry] = []
    ready: dict[int, FeedResult] = {}
    next_index = 0
    # Results arrive in completion order; they are stored in config order, as soon as every
    # earlier feed is in, so the same story carried by two feeds always belongs to the first.
    results = fetch_all(config.feeds, config.fetch, states=states, now=now, stop=stop)
    try:
        for batch in results:
            for result in batch:
                ready[order[result.name]] = result
                if progress:
                    progress(result)
            if next_index in ready:
                with store.transaction():  # each feed's validators with its entries; a batch at once
                    while next_index in ready:
                        _store_result(config, store, report, ready.pop(next_index), new, now)
                        next_index += 1
            if stop and stop():
                # The feeds in flight still come in (and are stored); those not started come back
                # at once as skipped, to be fetched next time.
                report.stopped = True
    finally:
        results.close()
    if not report.stopped:
        corpus = load_corpus(config.corpus.path)
        report.corpus_documents = len(corpus.entries)
        report.corpus_skipped = [{"file": f, "reason": r} for f, r in corpus.skipped]
        new.extend(store.entries.add(corpus.entries, now=now, text_of=entry_text))
    report.new_entries = len(new)  # stopped early too: what was stored is counted
    report.new_by_source = dict(Counter(e.source_name for e in new))
    return new


def _store_result(config: Config, store: Store, report: RunReport, result: FeedResult, new: list, now) -> None:
    # One transaction: the feed's new validators (ETag) are never stored without its
    # entries, or a crash between the two would lose them to the next 304.
    with store.transaction():
        if result.status != "skipped":
            store.feeds.record(result, now=now, backoff_max_hours=config.fetch.backoff_max_hours)
        added = store.entries.add(result.entries, now=now, text_of=entry_text)
    result.new = len(added)
    new.extend(added)
    report.feeds.append(
        {
            "name": result.name,
            "url": result.url,
            "status": result.status,
            "new": result.new,
            "entries": len(result.entries),
            "unchanged_items": result.skipped,
            "error": result.error,
            "warning": result.warning,
            "moved_to": result.new_url,
            "seconds": round(result.seconds, 3),
        }
    )
    result.entries = []


def collect_once(
    config: Config,
    *,
    now: datetime | None = None,
    progress: Callable[[FeedResult], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> RunReport:
    """The collect stage alone: fetch, read the reading list, store what is new."""
    now = now or utcnow()
    report = RunReport()
    store = open_store(config)
    try:
        collect(config, store, report, now=now, progress=progress, stop=stop)
    finally:
        store.close()
    return report


def classifier_for(config: Config, store: Store):
    """The config's classifier, taught by the desk's corrections in the store."""
    from briefings.classify import build_classifier, correction_of

    return build_classifier(config, [correction_of(c.entry, c.theme, c.also) for c in store.corrections.all()])


def classify_pending(config: Config, store: Store, *, stop: Callable[[], bool] | None = None) -> list:
    """Classify every pending entry; return them, classified. With nothing pending, nothing is loaded.
    Stopped (raised between two batches of CLASSIFY_BATCH entries, before anything is saved) when stop()
    turns true."""
    pending = store.entries.pending()
    log.debug("classifying %d pending entries", len(pending))
    if not pending:
        return []
    # Every pending entry is classified again, so an edit to the themes, or a correction, applies to the next briefing.
    classifier = classifier_for(config, store)
    done: list[tuple[int, Classification]] = []
    for start in range(0, len(pending), CLASSIFY_BATCH):
        check(stop)
        batch = [entry for entry, _ in pending[start:start + CLASSIFY_BATCH]]
        done.extend((stored_id(entry.id), c) for entry, c in zip(batch, classifier.classify_many(batch)))
    check(stop)
    store.entries.save_classifications(done)
    return [(entry, c) for (entry, _), (_, c) in zip(pending, done)]


def teach(config: Config, store: Store, ref: str, theme: str | None, also: tuple[str, ...] = (), *,
          now: datetime | None = None) -> dict:
    """Record the desk's themes for a stored entry (theme None: off-topic) and apply them: the entry keeps
    them in every later briefing and page; an already briefed entry's pages are written again; every
    pending entry is classified again, with the correction among the classifier's examples."""
    from briefings.classify import Correction, corrected
    from briefings.errors import BriefingsError

    known = [t.id for t in config.themes]
    for theme_id in (theme, *also) if theme else also:
        if theme_id not in known:
            raise BriefingsError(f"no theme {theme_id!r} in {config.path.name}", f"use one of: {', '.join(known)}, off-topic")
    if theme is None and also:
        raise BriefingsError("an off-topic entry has no other themes", "drop --also, or give a theme instead of off-topic")
    if theme in also:
        raise BriefingsError(f"{theme} is the primary theme; --also takes the others")
    found = store.entries.find(ref)
    if found is None:
        raise BriefingsError(f"no stored entry matches {ref!r}", "give an id from `briefings run --json` or `briefings themes review`, or the entry's URL")
    entry, before = found
    if before is None:  # collected, not classified yet: what the classifier says now
        before = classifier_for(config, store).classify(entry)
    classification = corrected(Correction(stored_id(entry.id), entry.key, theme, tuple(dict.fromkeys(also)), entry.title, ""))
    briefing_id = store.corrections.save(stored_id(entry.id), classification, now=now or utcnow())
    written: list[str] = []
    if briefing_id is not None:
        from briefings.deliver.disk import write_briefing
        from briefings.render import render

        stored = store.briefings.get(briefing_id)
        if stored is not None and stored.html_path:
            rendered = render(load_briefing(config, store, briefing_id), config)
            written += [str(p) for p in write_briefing(config.output.dir, stored.slug, rendered.web_html, rendered.text)]
            changed = {t for t in (*(before.themes if before else ()), *classification.themes)}
            written += [str(p) for p in write_archive(config, store, themes=changed)]
    pending = classify_pending(config, store)
    return {"entry": entry, "before": before, "after": classification, "briefing_id": briefing_id,
            "written": written, "pending": pending}


def run_once(
    config: Config,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    progress: Callable[[FeedResult], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> RunReport:
    """One whole briefing: collect, classify, compose, render, write to the archive, send the outbox.

    stop (a signal's stop request) is honoured between feeds, between entries
    classified, between sections rendered and between recipients, never inside a
    transaction; a run cut short is not recorded as done, so the daemon's catch-up
    finishes it at the next start.
    """
    now = now or utcnow()
    report = RunReport(dry_run=dry_run)
    store = open_store(config, dry_run=dry_run)
    try:
        if not dry_run:
            report.written.extend(finish_unwritten(config, store))
        collect(config, store, report, now=now, progress=progress, stop=stop)
        if report.stopped:
            return report
        make_briefing(config, store, report, now=now, dry_run=dry_run, stop=stop)
        if report.stopped:
            return report
        # The outbox is sent whether or not this run made a briefing: earlier deliveries may be due.
        if not dry_run and config.delivery_enabled:
            delivery = send_outbox(config, store, now=now, stop=stop)
            report.delivery = delivery.as_dict()
            report.stopped = delivery.stopped
        if not dry_run and not report.stopped:
            store.meta.set_time("last_briefing_run", now)
        return report
    finally:
        store.close()


def make_briefing(config: Config, store: Store, report: RunReport, *, now: datetime, dry_run: bool = False,
                  stop: Callable[[], bool] | None = None) -> None:
    """Classify what is pending and, when anything is on topic, store, render and write a briefing.

    A stop request while classifying or rendering sets report.stopped and stores nothing of the
    briefing; once it is stored, its files are written whatever comes."""
    from briefings.deliver.disk import write_briefing
    from briefings.deliver.outbox import outbox_rows
    from briefings.render import render

    try:
        pending, composed = compose_pending(config, store, now=now, stop=stop)
    except Stopped:
        report.stopped = True
        return
    report.pending = len(pending)
    themes = [c.theme for _, c in pending if c.theme is not None]
    report.off_topic = len(pending) - len(themes)
    report.by_theme = dict(Counter(themes))
    if composed is None:
        report.nothing_new = True
        return
    briefing, left_out = composed
    log.debug("rendering briefing %s (%d entries)", briefing.slug, briefing.entry_count)
    try:
        rendered = render(briefing, config, stop=stop)
        check(stop)  # the last point where a stop costs nothing: the briefing is stored next
    except Stopped:
        report.stopped = True
        return
    html_path, text_path = _paths(config, briefing.slug)
    report.briefing = {
        "title": briefing.title,
        "slug": briefing.slug,
        "entries": briefing.entry_count,
        "themes": briefing.theme_counts,
        "html": str(html_path),
        "text": str(text_path),
        "email_html_bytes": len(rendered.html.encode("utf-8")),
        "email_per_theme": rendered.email_limit,
        "email_per_theme_configured": config.briefing.max_per_theme or None,
        **stories_json(briefing),
    }
    # The briefing and its outbox are stored (its entries settled) before any file is written or
    # message sent: if either fails, the next run finishes it from the store; nothing is lost or repeated.
    briefing_id = store.briefings.save(
        briefing, html=rendered.html, text=rendered.text, left_out=left_out, deliveries=outbox_rows(config, briefing)
    )
    report.briefing["id"] = briefing_id
    if not dry_run:
        write_briefing(config.output.dir, briefing.slug, rendered.web_html, rendered.archive_text)
        store.briefings.set_paths(briefing_id, str(html_path), str(text_path))
        report.written += [str(html_path), str(text_path)]
        # Only the theme pages this briefing adds to change; the others stay as they are.
        report.written.append(str(write_archive(config, store, themes=briefing.theme_counts)[-1]))
        store.meta.set_archived_through(briefing_id)


def stories_json(briefing) -> dict:
    """The briefing's stories as `run --json` and `preview --json` give them (a stable format; see README):
    "stories", every story in the briefing's order, singletons included, and "top_stories", the top ones
    in rank order; each {"theme": id or null, "top": bool, "entries": [{"id", "title", "link", "source"}, ...]}
    with the lead report first."""
    def story(theme, item) -> dict:
        return {"theme": theme, "top": item.top is not None,
                "entries": [{"id": i.entry.id, "title": i.entry.title, "link": i.entry.link, "source": i.entry.source_name}
                            for i in (item, *item.reports)]}

    themes = {id(item): section.theme_id for section, item in briefing.stories()}
    return {"stories": [story(section.theme_id, item) for section, item in briefing.stories()],
            "top_stories": [story(themes.get(id(item), item.classification.theme), item) for item in briefing.top]}


def compose_pending(config: Config, store: Store, *, now: datetime, stop: Callable[[], bool] | None = None):
    """(every pending entry classified, and the briefing they make with the ids it leaves out, or None
    when nothing on topic is pending). Nothing is stored but the classifications."""
    from briefings.compose import compose

    pending = classify_pending(config, store, stop=stop)
    if not any(c.theme is not None for _, c in pending) and not (config.briefing.include_off_topic and pending):
        return pending, None
    last = store.briefings.last()
    briefing, left_out = compose(
        config, pending, now=now, since=last.created if last else None, slug_taken=store.briefings.slug_taken,
        earlier=_earlier(store, [e for e, _ in pending], None),
    )
    enrich(config, store, briefing)
    return pending, (briefing, left_out)


def _paths(config: Config, slug: str):
    from briefings.deliver.disk import briefing_paths

    return briefing_paths(config.output.dir, slug)


def finish_unwritten(config: Config, store: Store) -> list[str]:
    """Write every archive file a stored briefing needs and does not have; return their paths.

    A briefing's page and text (stored but never written, or gone since), index.html and the theme
    pages it links to; and the index and those theme pages again when their last write did not finish
    (a crash, a full disk): the store keeps the newest briefing the archive pages were written for.
    """
    from briefings.deliver.disk import briefing_paths, write_briefing

    stored = store.briefings.all()
    if not stored:
        return []
    written: list[str] = []
    through = store.meta.archived_through()
    owed: set[str] = set()  # the themes whose pages must list a briefing they may not list yet
    for row in reversed(stored):  # oldest first, as they were made
        html_path, text_path = briefing_paths(config.output.dir, row.slug)
        if row.html_path is None or not html_path.exists() or not text_path.exists():
            web_html, text = rebuild_briefing(config, store, row.id)
            write_briefing(config.output.dir, row.slug, web_html, text)
            store.briefings.set_paths(row.id, str(html_path), str(text_path))
            written += [str(html_path), str(text_path)]
        elif through is not None and row.id <= through:
            continue
        owed.update(row.theme_counts)
    pages = [config.output.dir / "themes" / f"{t.id}.html" for t in config.themes]  # the index links them all
    index = config.output.dir / "index.html"
    if owed or not index.exists() or not all(p.exists() for p in pages):
        # write_archive also writes every theme page missing on disk.
        written += [str(p) for p in write_archive(config, store, themes=owed)]
        store.meta.set_archived_through(stored[0].id)
    return written


def write_archive(config: Config, store: Store, themes: Iterable[str] | None = None) -> list[Path]:
    """index.html and the pages and Atom feeds of the given themes (None: all), with feed.xml, rendered from
    the store and written; their paths, the index last. A theme page or feed missing on disk is always written."""
    from briefings.atom import feed_pages
    from briefings.deliver.disk import write_pages
    from briefings.render import archive_pages

    if themes is not None:
        missing = [t.id for t in config.themes
                   if not all((config.output.dir / "themes" / f"{t.id}{kind}").exists() for kind in (".html", ".xml"))]
        themes = {*themes, *missing}
    history, listed = store.briefings.history(), store.briefings.all()
    # The feeds first: the pages, the index last, link to them.
    return write_pages(config.output.dir, feed_pages(config, history, listed, themes) | archive_pages(config, history, listed, themes))


def load_briefing(config: Config, store: Store, briefing_id: int):
    """A stored briefing, composed again from the entries it included."""
    from briefings.compose import compose

    stored = store.briefings.get(briefing_id)
    if stored is None:
        raise LookupError(f"no stored briefing has id {briefing_id}")
    entries = [(e, c) for e, c in store.entries.of_briefing(briefing_id) if c is not None]
    briefing, _ = compose(config, entries, now=stored.created, since=stored.period_start,
                          earlier=_earlier(store, [e for e, _ in entries], briefing_id))
    briefing.slug, briefing.title, briefing.off_topic, briefing.id = stored.slug, stored.title, stored.off_topic, stored.id
    enrich(config, store, briefing)
    return briefing


def _earlier(store: Store, entries: list[Entry], briefing_id: int | None):
    """The entries earlier briefings listed in stories that these entries may continue: those within the
    stories window of the earliest of them (for a stored briefing, only the briefings before it)."""
    from datetime import timedelta

    from briefings.stories import DEFAULT

    times = [t for t in (e.published or e.first_seen for e in entries) if t is not None]
    if not times:
        return []
    return store.briefings.story_entries(min(times) - timedelta(days=DEFAULT.window_days), before=briefing_id)


def explain_entry(config: Config, ref: str) -> dict:
    """Why the entry (an id, key or link) is grouped with the reports it is in a story with, and why the
    nearest other report is not: briefings.stories.explain over the feed entries within the stories
    window of it. Raises LookupError for an entry the state does not hold."""
    from datetime import timedelta

    from briefings.compose import _report
    from briefings.stories import DEFAULT, explain

    store = open_store(config, dry_run=True)
    try:
        found = store.entries.find(ref)
        if found is None:
            raise LookupError(f"no stored entry has the id, key or link {ref!r}")
        entry, classification = found
        when = entry.published or entry.first_seen
        if when is None or entry.id is None:
            raise LookupError(f"the stored entry {ref!r} has no date to group it by")
        window = timedelta(days=DEFAULT.window_days)
        near = store.entries.around(when - window, when + window)
        if all(e.id != entry.id for e, _ in near):
            near.append(found)
        reports = [_report(stored_id(e.id), e, c) for e, c in near]
        return explain(entry.id, reports)
    finally:
        store.close()


def enrich(config: Config, store: Store, briefing) -> None:
    """What a briefing shows beyond its entries: the change since the one before, the counts of the
    eight before (the trend), and the reading list."""
    from briefings.compose import pick_reading

    before = store.briefings.before(briefing.id)
    briefing.previous_counts = before.theme_counts if before else None
    earlier = [b for b in store.briefings.all() if briefing.id is None or b.id < briefing.id]
    briefing.trend = list(reversed(earlier[:8]))
    briefing.reading = pick_reading(briefing, store.entries.reading_list(), limit=config.briefing.reading_list)


def rebuild_archive(config: Config, store: Store) -> list[str]:
    """Every briefing's web page and text, the index and the theme pages, rendered again from the store.

    For after an upgrade or a change of templates; the e-mails already sent are
    not touched, and nothing is marked or collected.
    """
    from briefings.deliver.disk import write_briefing
    from briefings.render import render

    written: list[str] = []
    for row in store.briefings.all():
        rendered = render(load_briefing(config, store, row.id), config)
        html_path, text_path = write_briefing(config.output.dir, row.slug, rendered.web_html, rendered.archive_text)
        store.briefings.set_paths(row.id, str(html_path), str(text_path))
        written += [str(html_path), str(text_path)]
    written += [str(p) for p in write_archive(config, store)]
    newest = store.briefings.last()
    if newest is not None:
        store.meta.set_archived_through(newest.id)
    return written


def preview(config: Config, *, now: datetime | None = None):
    """The next briefing from what is pending, rendered, with nothing stored or marked (None: nothing to show)."""
    from briefings.render import render

    store = open_store(config, dry_run=True)  # an in-memory copy: classifying here changes nothing on disk
    try:
        _, composed = compose_pending(config, store, now=now or utcnow())
        if composed is None:
            return None
        briefing, _ = composed
        return briefing, render(briefing, config)
    finally:
        store.close()


def rebuild_briefing(config: Config, store: Store, briefing_id: int) -> tuple[str, str]:
    """The web HTML and the text of a stored briefing, rendered again from its entries."""
    from briefings.render import render

    rendered = render(load_briefing(config, store, briefing_id), config)
    return rendered.web_html, rendered.archive_text  # the stored text is the e-mail's, with its unsubscribe link


def send_outbox(config: Config, store: Store, *, now: datetime | None = None, ignore_wait: bool = False,
                stop: Callable[[], bool] | None = None):
    """Send every pending delivery that is due (the outbox), whatever briefing it belongs to."""
    from briefings.deliver.outbox import send_pending

    return send_pending(
        config,
        store,
        now=now or utcnow(),
        load_briefing=lambda bid: load_briefing(config, store, bid),
        ignore_wait=ignore_wait,
        eml_dir=config.output.dir if config.output.eml else None,
        stop=stop,
    )
