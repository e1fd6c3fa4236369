"""The command line explains itself, and never pretends to have what it has not."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from suandian import __version__
from suandian.cli import EXIT_NOT_AVAILABLE, cli

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


def _not_yet() -> list[str]:
    return [n for n in COMMANDS if "(not yet available)" in (cli.commands[n].help or "")]  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", _not_yet() or ["<none>"])
def test_unavailable_commands_say_so_and_exit_2(name: str) -> None:
    if name == "<none>":
        return  # every command has landed
    command = cli.commands[name]  # type: ignore[attr-defined]
    args = [name]
    for param in command.params:
        if param.required:
            args += [param.opts[0], "pyproject.toml" if "file" in param.name else "gansu"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == EXIT_NOT_AVAILABLE
    assert "not yet available" in result.output
