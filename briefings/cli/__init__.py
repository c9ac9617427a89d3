"""The command line: the only part of briefings that prints, prompts or exits.

Commands live in their own modules and are imported only when run, so a quick
command does not pay for the imports of a heavy one. Add a command by adding
a line to COMMANDS.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from briefings import __version__
from briefings.errors import BriefingsError

# command name -> "module:function" (imported when the command runs)
COMMANDS: dict[str, str] = {
    "run": "briefings.cli.run:run",
    "collect": "briefings.cli.collect:collect",
    "feeds": "briefings.cli.feeds:feeds",
    "classify": "briefings.cli.classify:classify",
    "themes": "briefings.cli.themes:themes",
    "outbox": "briefings.cli.outbox:outbox",
    "send": "briefings.cli.outbox:send",
    "check": "briefings.cli.check:check",
    "daemon": "briefings.cli.daemon:daemon",
    "init": "briefings.cli.init:init",
    "archive": "briefings.cli.archive:archive",
    "preview": "briefings.cli.archive:preview",
    "state": "briefings.cli.state:state",
    "stories": "briefings.cli.stories:stories",
    "serve": "briefings.cli.serve:serve",
    "search": "briefings.cli.search:search",
    "recipients": "briefings.cli.recipients:recipients",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BriefingsError as exc:
            echo_err(f"briefings: {exc.message}")
            if exc.hint:
                echo_err(f"  hint: {exc.hint}")
            ctx.exit(exc.exit_code)


CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=LazyGroup, context_settings=CONTEXT)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="BRIEFINGS_CONFIG",
    default="config.toml",
    show_default=True,
    help="The config file (also BRIEFINGS_CONFIG). Paths in it are relative to it.",
)
@click.version_option(__version__, prog_name="briefings")
@click.pass_context
def cli(ctx: click.Context, config_path: Path) -> None:
    """briefings: the week's writing on cybersecurity norms, as one briefing grouped by norms theme.

    Collects new entries from the feeds in config.toml and from the reading list
    (the corpus folder), groups them by norms theme with the evidence, and writes
    an HTML and a plain-text briefing to the archive folder.

    Start with `briefings run`; `briefings daemon` runs it on a schedule.
    Every command has --help.
    """
    ctx.obj = {"config_path": config_path}


def load_config(ctx: click.Context):
    """The config named by --config (on this command or the group), loaded once."""
    from briefings import config as config_module

    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    if "config" not in obj:
        obj["config"] = config_module.load(config_file(ctx))
        root.obj = obj
    return obj["config"]


def config_file(ctx: click.Context) -> Path:
    """The path of the config named by --config (on this command or the group), without loading it."""
    from briefings import config as config_module

    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    given = ctx.params.get("config_path") or obj.get("config_path")
    return Path(given) if given else config_module.default_path()


def config_option(f):
    """--config accepted after the command name too: `briefings run --config PATH`."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        expose_value=True,
        help="The config file (overrides the one given before the command).",
    )(f)


def echo_err(message: str = "", **kwargs) -> None:
    click.echo(message, err=True, **kwargs)


def main() -> None:
    cli(prog_name="briefings")
