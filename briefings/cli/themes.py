"""`briefings themes`: the taxonomy with counts, and why an entry got its themes."""

from __future__ import annotations

import json
from pathlib import Path

import click

from briefings.cli import config_option, echo_err, load_config


@click.group(invoke_without_command=True)
@config_option
@click.pass_context
def themes(ctx: click.Context, config_path) -> None:
    """The norms themes in config.toml, in briefing order, with the entries stored under each.

    Counts are of stored entries by primary theme (pending and already briefed).
    `briefings themes explain ENTRY` shows the evidence for one entry; `teach` corrects
    one, `review` lists those the classifier is least sure of, `corrections` what was taught.
    """
    if ctx.invoked_subcommand is not None:
        return
    from briefings.store import Store

    config = load_config(ctx)
    counts: dict = {}
    if config.state.exists:
        with Store.open(config.state) as store:
            counts = store.entries.theme_counts()
    width = max((len(t.id) for t in config.themes), default=8)
    click.echo(f"{'ID':<{width}}  {'ENTRIES':>7}  NAME")
    for theme in config.themes:
        click.echo(f"{theme.id:<{width}}  {counts.get(theme.id, 0):>7}  {theme.name}")
        click.echo(f"{'':<{width}}  {'':>7}  {len(theme.terms)} terms: {theme.description}")
    click.echo(f"{'off-topic':<{width}}  {counts.get(None, 0):>7}  (matched no theme; left out of briefings)")


@themes.command()
@config_option
@click.argument("entry")
@click.pass_context
def explain(ctx: click.Context, config_path, entry: str) -> None:
    """Why ENTRY (a stored entry's id, key or URL) got its themes: the words and phrases, with their weights,
    that decided the primary theme and the off-topic call, and every matched term.

    The entry is classified again with the current config.toml and corrections, so this
    also shows the effect of an edit to the taxonomy before the next run.
    """
    from briefings.classify import OFF_TOPIC, explain
    from briefings.errors import BriefingsError
    from briefings.models import stored_id
    from briefings.pipeline import classifier_for
    from briefings.store import Store

    config = load_config(ctx)
    with Store.open(config.state) as store:
        found = store.entries.find(entry)
        if found is None:
            raise BriefingsError(f"no stored entry matches {entry!r}", "give an id from `briefings run --json`, or the entry's URL")
        item, _ = found
        result = classifier_for(config, store).classify(item)
        correction = store.corrections.of(stored_id(item.id))
        when = correction.created if correction else None
    names = {t.id: t.name for t in config.themes}
    model = config.classify.method == "model"
    click.echo(f"{item.title}")
    click.echo(f"  {item.link or item.key}  (id {item.id}, from {item.source_name})")
    if result.source == "correction":
        label = f"{result.theme} ({names.get(result.theme, result.theme)})" if result.theme else "off-topic"
        click.echo(f"Corrected by the desk{f' on {when:%Y-%m-%d}' if when else ''}: {label}"
                   + (f", also {', '.join(result.secondary)}" if result.secondary else "")
                   + ". The correction decides, whatever the classifier would say.")
        return
    if result.theme is None:
        if model:
            click.echo(f"Off-topic: the on-topic model gives {result.on_topic:.2f}, below its threshold {_on_threshold():.2f}.")
        else:
            best = max(result.scores.values(), default=0.0)
            click.echo(f"Off-topic: the best score, {best:.2f}, is below the threshold {config.classify.threshold:g}.")
    else:
        click.echo(f"Primary theme: {result.theme} ({names[result.theme]}), score {result.scores[result.theme]:.2f}")
        if result.secondary:
            click.echo("Secondary: " + ", ".join(f"{t} ({result.scores.get(t, 0.0):.2f})" for t in result.secondary))
    if model:
        on = f"on-topic probability {result.on_topic:.2f}" if result.on_topic is not None else "on topic by its terms"
        click.echo(f"({on}; scores are the probability of each theme; themes without a model are decided by their terms "
                   f"at the threshold {config.classify.threshold:g})")
    else:
        click.echo(
            f"(threshold {config.classify.threshold:g}; a secondary theme needs "
            f"{config.classify.secondary_share:.0%} of the primary's score)"
        )
    shown = list(result.themes) or [OFF_TOPIC]
    rest = [t for t, _ in sorted(result.scores.items(), key=lambda kv: -kv[1]) if t not in shown]
    for theme_id in shown + rest[: 2 if model else len(rest)]:
        lines = explain(result, theme_id)
        if not lines and theme_id not in result.scores:
            continue
        score = f": {result.scores[theme_id]:.2f}" if theme_id in result.scores else ""
        click.echo(f"\n{theme_id}{score}")
        for part in lines:
            click.echo(f"  {part}")


def _on_threshold() -> float:
    from briefings.themes_model import shipped_model

    return shipped_model().on_threshold


@themes.command()
@config_option
@click.argument("entry")
@click.argument("theme")
@click.option("--also", "also", multiple=True, metavar="THEME", help="A secondary theme (repeat for more).")
@click.pass_context
def teach(ctx: click.Context, config_path, entry: str, theme: str, also: tuple[str, ...]) -> None:
    """Correct ENTRY (a stored entry's id or URL): file it under THEME, or `off-topic`.

    The entry keeps the correction in every later briefing and page (one already
    in a briefing moves there too, and its pages are written again); entries
    like it lean to the same label; every pending entry is classified again.
    `briefings themes corrections` lists what the desk has taught.
    """
    from briefings.lock import job_lock
    from briefings.pipeline import open_store, teach as record

    config = load_config(ctx)
    with job_lock(config.state).held(config.schedule.lock_wait):
        store = open_store(config)
        try:
            done = record(config, store, entry, None if theme == "off-topic" else theme, also)
        finally:
            store.close()
    item, before, after = done["entry"], done["before"], done["after"]
    was = (before.theme or "off-topic") if before else "not classified yet"
    click.echo(f"#{item.id} {item.title}")
    click.echo(f"  {was} -> {after.theme or 'off-topic'}" + (f" (also {', '.join(after.secondary)})" if after.secondary else ""))
    if done["briefing_id"] is not None:
        click.echo(f"  moved in briefing {done['briefing_id']}" + (f"; wrote {len(done['written'])} pages" if done["written"] else ""))
    pending = done["pending"]
    on = sum(1 for _, c in pending if c.theme)
    echo_err(f"Classified {len(pending)} pending entries again ({on} on topic).")


@themes.command()
@config_option
@click.option("--limit", default=10, show_default=True, type=click.IntRange(min=1), help="How many entries to list.")
@click.pass_context
def review(ctx: click.Context, config_path, limit: int) -> None:
    """The pending entries the classifier is least sure about, least sure first: close to the on-topic
    threshold, or between two themes. Correct one with `briefings themes teach ID THEME`."""
    from briefings.pipeline import classifier_for
    from briefings.store import Store

    config = load_config(ctx)
    if not config.state.exists:
        click.echo("Nothing pending.")
        return
    with Store.open(config.state) as store:
        pending = store.entries.pending()
        rows = []
        if pending:  # the classifier (and the model it loads) only when anything is pending
            classifier = classifier_for(config, store)
            items = [item for item, _ in pending]
            for item, result in zip(items, classifier.classify_many(items)):
                if result.source == "correction":
                    continue
                margin = result.margin if result.margin is not None else _terms_margin(result, config.classify.threshold)
                rows.append((margin, item, result))
    if not rows:
        click.echo("Nothing pending to review.")
        return
    rows.sort(key=lambda r: (r[0], r[1].id))
    click.echo(f"{'ID':>6}  {'SURE':>5}  {'DECISION':<24}  {'OR':<24}  TITLE")
    for margin, item, result in rows[:limit]:
        ranked = sorted(result.scores, key=lambda t: -result.scores[t])
        decision = result.theme or "off-topic"
        other = next((t for t in ranked if t != result.theme), "") if result.theme else (ranked[0] if ranked else "")
        if result.theme and result.on_topic is not None and abs(result.on_topic - _on_threshold()) <= margin + 1e-9:
            other = "off-topic"
        click.echo(f"{item.id:>6}  {margin:>5.2f}  {decision:<24}  {other:<24}  {item.title[:70]}")


def _terms_margin(result, threshold: float) -> float:
    """How sure a decision of the terms classifier is: the gap to the threshold or to the runner-up, over the threshold."""
    ranked = sorted(result.scores.values(), reverse=True)
    best = ranked[0] if ranked else 0.0
    gap = best - ranked[1] if len(ranked) > 1 and best >= threshold else abs(best - threshold)
    return min(abs(best - threshold), gap) / threshold


@themes.command()
@config_option
@click.option("--export", "export", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write them to FILE as JSON lines in the examples format ({theme, title, text}; theme null: off-topic).")
@click.pass_context
def corrections(ctx: click.Context, config_path, export) -> None:
    """The corrections the desk has made, oldest first; --export writes them as teaching examples,
    to share or to add to the [classify] examples file."""
    from briefings.classify import correction_of
    from briefings.store import Store

    config = load_config(ctx)
    found = []
    if config.state.exists:
        with Store.open(config.state) as store:
            found = store.corrections.all()
    if export is not None:
        lines = []
        for stored in found:
            c = correction_of(stored.entry, stored.theme, stored.also)
            lines.append(json.dumps({"theme": c.theme, "title": c.title, "text": c.text.strip(), "secondary": list(c.also),
                                     "source": stored.entry.link or stored.entry.key,
                                     "corrected": stored.created.isoformat()}, ensure_ascii=False))
        try:
            export.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        except OSError as exc:
            from briefings.errors import BriefingsError

            raise BriefingsError(f"{export}: cannot write: {exc.strerror or exc}", "give a path in a folder you can write to") from exc
        echo_err(f"Wrote {len(lines)} corrections to {export}")
        return
    if not found:
        click.echo("No corrections yet: `briefings themes teach ENTRY THEME` makes one.")
        return
    click.echo(f"{'ID':>6}  {'WHEN':<10}  {'THEME':<24}  TITLE")
    for stored in found:
        label = (stored.theme or "off-topic") + (f" +{len(stored.also)}" if stored.also else "")
        click.echo(f"{stored.entry.id:>6}  {stored.created:%Y-%m-%d}  {label:<24}  {stored.entry.title[:70]}")
