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


def command_variables(name: str) -> set[str]:
    """The secrets a command reads from the environment (`findesk emulator`, `findesk doctor`)."""
    command: Any = typer.main.get_command(cli.app)
    return {
        str(param.envvar)
        for param in command.commands[name].params
        if getattr(param, "envvar", None)
    }


def test_every_setting_is_in_the_settings_table_and_nothing_else() -> None:
    documented = set(re.findall(r"^\| `(FINDESK_[A-Z_]+)`", README, re.MULTILINE))
    actual = {f"FINDESK_{name.upper()}" for name in Settings.model_fields}
    emulator, doctor = command_variables("emulator"), command_variables("doctor")
    assert len(emulator) == 10 and len(doctor) == 2
    assert documented == actual | emulator | doctor


def test_the_readme_says_where_the_findesk_command_is() -> None:
    """`make run` does not put `findesk` on the PATH: the top of the README says where it is."""
    top = README.split("\n## ", 1)[0]
    assert ".venv/bin/findesk" in top
    assert ". .venv/bin/activate" in top


def readme_commands() -> list[str]:
    """Every `findesk …` the README shows: in shell blocks (continuation lines joined, comments
    dropped) and in inline code."""
    found: list[str] = []
    parts = README.split("```")
    for number, part in enumerate(parts):
        if number % 2:  # a code block
            if not part.startswith("sh"):
                continue
            for line in part.replace("\\\n", " ").splitlines()[1:]:
                for piece in line.split(" # ", 1)[0].split("&&"):
                    command = piece.strip().removeprefix(".venv/bin/")
                    if command.startswith("findesk "):
                        found.append(command)
        else:
            spans = re.findall(r"`((?:\.venv/bin/)?findesk [^`]+)`", part)
            found += [span.removeprefix(".venv/bin/").replace("\\|", "|") for span in spans]
    return found


def test_every_findesk_command_in_the_readme_exists_with_its_options() -> None:
    root: Any = typer.main.get_command(cli.app)
    commands = readme_commands()
    assert len(commands) > 40
    for shown in commands:
        words = shown.split()[1:]
        targets = [root]
        for word in words[:2]:  # a command, or a group and its command (`a|b` for either)
            groups = [t for t in targets if hasattr(t, "commands")]
            if not groups or word.startswith(("-", "[")) or word.isupper():
                break
            names = word.split("|")
            for group in groups:
                missing = [n for n in names if n not in group.commands]
                assert not missing, f"README: `{shown}`: no command {missing}"
            targets = [group.commands[n] for group in groups for n in names]
        for word in words:
            option = re.match(r"\[?(--[a-z][a-z0-9-]*)", word)
            if option is None or option.group(1) == "--help":
                continue
            for target in targets:
                known = {o for p in target.params for o in (*p.opts, *p.secondary_opts)}
                assert option.group(1) in known, f"README: `{shown}`: no option {option.group(1)}"
