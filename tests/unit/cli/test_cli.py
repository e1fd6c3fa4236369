"""The command line explains itself, and never pretends to have what it has not."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from suandian import __version__
from suandian.cli import cli

COMMANDS = sorted(cli.commands)  # type: ignore[attr-defined]


def test_contract_commands_exist() -> None:
    assert {"run", "simulate", "forecast", "plan", "crds"} <= set(COMMANDS)


def test_top_help_teaches() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output
    assert "suandian simulate" in result.output  # a first command to try


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_each_command_help(name: str) -> None:
    command: click.Command = cli.commands[name]  # type: ignore[attr-defined]
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert len((command.help or "").strip()) > 20
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"{name} {param.opts} has no help"


def test_every_command_is_available() -> None:
    """The skeleton's "not yet available" placeholders are gone: each command is real."""
    for name in COMMANDS:
        assert "not yet available" not in (cli.commands[name].help or ""), name  # type: ignore[attr-defined]
