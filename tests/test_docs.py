"""The docs keep up with the code: every command has help and is in the README; every setting is documented."""

from __future__ import annotations

import importlib.util
import re

import click
import pytest
from click.testing import CliRunner

from briefings.cli import COMMANDS, cli
from conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def all_commands():
    ctx = click.Context(cli)
    out = []
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        out.append(((name,), command))
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                out.append(((name, sub), command.get_command(ctx, sub)))
    return out


@pytest.mark.parametrize("path,command", all_commands(), ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_every_command_has_help_and_is_in_the_readme(path, command):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert command.help and len(command.help.strip()) > 30, f"{' '.join(path)} needs a helpful --help"
    assert f"briefings {' '.join(path)}" in README, f"`briefings {' '.join(path)}` is not in the README"


def test_every_setting_is_in_the_readme_table():
    spec = importlib.util.spec_from_file_location("update_readme", ROOT / "tools" / "update_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.updated(README) == README, "README's configuration table is stale: run `make docs`"


def test_commands_registry_points_at_real_commands():
    for name in COMMANDS:
        assert isinstance(cli.get_command(click.Context(cli), name), click.Command), name


def test_top_level_help_lists_commands():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert re.search(rf"^\s+{re.escape(name)}\b", result.output, re.M), name
