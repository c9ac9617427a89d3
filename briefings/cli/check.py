"""`briefings check`: validate config.toml and say what it sets."""

from __future__ import annotations

import click

from briefings.cli import config_option, echo_err, load_config


def taxonomy_warnings(config) -> list[str]:
    """What is legal in config.toml but probably a mistake in the taxonomy."""
    from briefings.classify import load_examples, tokens

    warnings = []
    owners: dict[tuple[str, ...], list[str]] = {}
    for theme in config.themes:
        if not theme.terms:
            warnings.append(f"theme {theme.id} has no terms: only its examples and description can classify under it")
        for term in theme.terms:
            key = tuple(tokens(term))
            if theme.id not in owners.setdefault(key, []):
                owners[key].append(theme.id)
    for key, ids in owners.items():
        if len(ids) > 1:
            warnings.append(f"term {' '.join(key)!r} is listed under several themes ({', '.join(ids)}): it counts for each")
    known = {t.id for t in config.themes}
    unknown: dict[str, int] = {}
    for example in load_examples(config.classify.examples):
        if example.theme is not None and example.theme not in known:
            unknown[example.theme] = unknown.get(example.theme, 0) + 1
    for theme_id, count in sorted(unknown.items()):
        warnings.append(f"{count} example(s) in {config.classify.examples} name unknown theme {theme_id!r}: they are ignored")
    if config.corpus.path:
        from briefings.collect.corpus import folder_problem, load_corpus

        problem = folder_problem(config.corpus.path)
        if problem:
            warnings.append(f"reading list {config.corpus.path}: {problem}")

        for entry in load_corpus(config.corpus.path).entries:
            for label in entry.labels:
                if label not in known:
                    warnings.append(f"reading-list document {entry.title!r} is labeled with unknown theme {label!r}")
    return warnings


@click.command()
@config_option
@click.option("--smtp", "smtp", is_flag=True, help="Also connect to the SMTP server: EHLO, STARTTLS and AUTH as configured, no message sent.")
@click.pass_context
def check(ctx: click.Context, config_path, smtp: bool) -> None:
    """Validate config.toml: syntax, keys, types, feeds, recipients and the theme taxonomy.

    Errors name the file, line and key, and exit 2. Warnings (a theme with no
    terms, a term under two themes, an example or reading-list document that
    names a theme that does not exist, a reading-list folder that is missing or
    is a file, e-mail without one-click unsubscribe)
    are printed and exit 0; an [smtp] ca_file that is missing or holds no PEM
    certificate is an error. With --smtp,
    the SMTP session is tried as configured and what the server offers is
    reported; nothing is sent (exit 1 when the session fails).
    """
    config = load_config(ctx)
    _check_ca_file(config)
    click.echo(f"{config.path}: ok")
    click.echo(f"  {len(config.feeds)} feeds, {len(config.themes)} themes")
    click.echo(f"  reading list: {config.corpus.path or '(none)'}")
    click.echo(f"  state:        {_state_line(config)}")
    click.echo(f"  archive:      {config.output.dir}")
    click.echo(f"  e-mail:       {_mail_line(config)}")
    click.echo(f"  webhooks:     {_webhooks_line(config)}")
    click.echo(f"  schedule:     {_schedule_line(config)}")
    for warning in mail_warnings(config) + taxonomy_warnings(config):
        echo_err(f"warning: {warning}")
    if smtp:
        _check_smtp(ctx, config)


def _state_line(config) -> str:
    """Which store, where, and its schema version; a database that cannot be reached is a StoreError (one line)."""
    from briefings.store import state_version

    version, latest = state_version(config.state)
    if version is None:
        return f"SQLite {config.state.path} (not created yet)"
    kind = config.state.where if config.state.postgres else f"SQLite {config.state.path}"
    behind = "" if version == latest else f", migrated to {latest} at the next run"
    return f"{kind}, schema version {version}{behind}"


def _check_ca_file(config) -> None:
    """[smtp] ca_file must be a readable PEM file: a config error (exit 2) here, not a failed send later."""
    from briefings.config import _Locator
    from briefings.deliver.smtp import CA_FILE_HINT, ca_file_problem
    from briefings.errors import ConfigError

    problem = ca_file_problem(config.smtp.ca_file)
    if problem:
        line = _Locator(config.path.read_text(encoding="utf-8")).line("smtp", "ca_file")
        raise ConfigError(f"{config.path}{f':{line}' if line else ''}: [smtp] ca_file: {problem}", CA_FILE_HINT)


def mail_warnings(config) -> list[str]:
    from briefings.serve.tokens import one_click, secret

    if config.mail_enabled and config.serve.public_url and not config.email.unsubscribe_url and secret(config) is None:
        return [f"[serve] public_url is set but {config.serve.secret_env} is not: messages cannot carry a signed "
                "unsubscribe link, so sending waits until it is set (to the same secret as `briefings serve`'s)"]
    if not config.mail_enabled or one_click(config):
        return []
    return ["no one-click unsubscribe (RFC 8058), which Gmail and Yahoo require of bulk senders: List-Unsubscribe "
            "offers only a mailto; set [serve] public_url to where `briefings serve` answers, or [email] "
            "unsubscribe_url to an https URL that unsubscribes on POST"]


def _schedule_line(config) -> str:
    """What `briefings daemon` would do, and when it would next make a briefing."""
    from briefings.clock import utcnow

    from briefings.daemon import next_briefing
    from briefings.timetable import zone

    cfg = config.schedule
    when = next_briefing(config, utcnow())
    collect = f"collect {cfg.collect}" if cfg.collect.strip() else "collect only at briefing time"
    return (f"briefing {', '.join(cfg.briefing)} ({cfg.timezone}), {collect}; "
            f"next briefing {when.astimezone(zone(cfg.timezone)):%a %Y-%m-%d %H:%M %Z} (daemon)")


def _mail_line(config) -> str:
    if not config.smtp.host:
        return "off (no [smtp] host): briefings are written to the archive only"
    if not config.recipients:
        return f"off: [smtp] host {config.smtp.host} is set but there are no [[recipients]]"
    return f"{len(config.recipients)} recipient(s) via {config.smtp.host} ({config.smtp.security})"


def _webhooks_line(config) -> str:
    if not config.webhooks:
        return "none"
    return ", ".join(f"{h.name} ({h.format}{', ' + ' '.join(h.themes) if h.themes else ''})" for h in config.webhooks)


def _check_smtp(ctx: click.Context, config) -> None:
    from briefings.deliver.smtp import Mailer, SendError
    from briefings.errors import DeliveryError

    if not config.smtp.host:
        echo_err("smtp: no [smtp] host to check")
        ctx.exit(1)
    mailer = Mailer(config.smtp)
    try:
        mailer.connect()
    except (SendError, DeliveryError) as exc:
        hint = getattr(exc, "hint", None)
        echo_err(f"smtp: FAILED: {exc}" + (f"\n  hint: {hint}" if hint else ""))
        ctx.exit(1)
    found = mailer.found
    mailer.close()
    click.echo(f"smtp: connected to {found['host']}:{found['port']}")
    click.echo(f"  encryption: {'TLS (' + config.smtp.security + ')' if found.get('tls') else 'none'}")
    click.echo(f"  AUTH offered: {', '.join(found.get('auth_methods') or []) or 'none'}")
    if found.get("authenticated_as"):
        click.echo(f"  logged in as {found['authenticated_as']}")
    click.echo("  nothing was sent")
