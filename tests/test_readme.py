"""The README is what a new user meets first: its commands and settings must be true."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from findesk import cli
from findesk.kit.settings import Settings

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_readme_opens_with_the_two_commands() -> None:
    first_block = README.split("```")[1]
    assert "make run" in first_block and "make test" in first_block


def emulator_variables() -> set[str]:
    """The Fin emulator's secrets, read from the environment by `findesk emulator`."""
    command: Any = typer.main.get_command(cli.app)
    return {
        str(param.envvar)
        for param in command.commands["emulator"].params
        if getattr(param, "envvar", None)
    }


def test_every_setting_is_in_the_settings_table_and_nothing_else() -> None:
    documented = set(re.findall(r"^\| `(FINDESK_[A-Z_]+)`", README, re.MULTILINE))
    actual = {f"FINDESK_{name.upper()}" for name in Settings.model_fields}
    emulator = emulator_variables()
    assert len(emulator) == 4
    assert documented == actual | emulator
