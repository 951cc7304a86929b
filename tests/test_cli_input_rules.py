"""The ``findesk`` command line holds text to the same rules as the APIs and the inbox's forms
(``kit.text``): a control character, broken Unicode or a 100,000-character name, alias, client
name, token label or article title is refused with a clear error and a non-zero exit, and stores
nothing; a value at the limit is stored whole. Run for real, on SQLite and on PostgreSQL.

A NUL byte cannot be a command-line argument at all; it can be in a file that ``kb import``
reads, which is where it is tried."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from support.cli import Cli
from support.server import database_url

from findesk.agents.models import Agent
from findesk.auth.models import AgentToken, OAuthClient
from findesk.kit.db import Database
from findesk.kit.text import ARTICLE_TITLE_MAX, EMAIL_MAX, NAME_MAX, TOKEN_LABEL_MAX
from findesk.knowledge.models import Article

CONTROL = "must not contain control characters"
HUGE = 100_000


def bad_values(limit: int) -> dict[str, tuple[str, str]]:
    """name -> (an argument, what the error says) for a one-line field of ``limit`` characters."""
    return {
        "escape sequence": ("Ada \x1b[2J", f"{CONTROL} (found U+001B)"),
        "bell": ("Ada\x07", f"{CONTROL} (found U+0007)"),
        # Bytes that are not UTF-8 reach Python as lone surrogates (PEP 383).
        "invalid UTF-8": ("Ada \udcff", "is not valid Unicode text"),
        "100,000 characters": ("x" * HUGE, f"must be at most {limit} characters (it has {HUGE})"),
    }


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def cli(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    tmp = tmp_path_factory.mktemp("cli-rules")
    cli = Cli(tmp / "data")
    if request.param == "postgres":
        cli.env["FINDESK_DATABASE_URL"] = database_url("postgres", request, tmp)
    cli.json("agents", "list")  # creates and migrates the database
    return cli


@pytest.fixture(scope="module")
def db(cli: Cli) -> Iterator[Database]:
    database = Database(cli.env.get("FINDESK_DATABASE_URL", cli.database_url))
    yield database
    database.dispose()


def stored(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """What the commands below could have written."""
    with db.read_session() as session:
        return {
            "agents": sorted(session.execute(select(Agent.email, Agent.name, Agent.alias)).all()),
            "clients": sorted(session.execute(select(OAuthClient.id, OAuthClient.name)).all()),
            "tokens": sorted(session.execute(select(AgentToken.id, AgentToken.label)).all()),
            "articles": sorted(session.execute(select(Article.id, Article.title)).all()),
        }


def email() -> str:
    return f"ada-{uuid.uuid4().hex[:8]}@example.com"


COMMANDS = {
    # what: the command, given the bad value
    "agent name": lambda value: ["agents", "create", email(), "--name", value],
    "agent alias": lambda value: ["agents", "create", email(), "--name", "Ada", "--alias", value],
    "client name": lambda value: ["clients", "create", value],
}
LIMITS = {"agent name": NAME_MAX, "agent alias": NAME_MAX, "client name": NAME_MAX}


@pytest.mark.parametrize("bad", list(bad_values(0)))
@pytest.mark.parametrize("what", list(COMMANDS))
def test_a_bad_name_is_refused_and_nothing_is_stored(
    cli: Cli, db: Database, what: str, bad: str
) -> None:
    value, says = bad_values(LIMITS[what])[bad]
    before = stored(db)
    error = cli.fails(*COMMANDS[what](value))
    assert error.startswith("error: ") and says in error, error[:300]
    assert len(error) < 300, "the error must not echo the value"
    assert stored(db) == before


@pytest.mark.parametrize("bad", list(bad_values(0)))
def test_a_bad_token_label_is_refused_and_no_token_issued(cli: Cli, db: Database, bad: str) -> None:
    holder = email()
    cli.json("agents", "create", holder, "--name", "Token Holder")
    value, says = bad_values(TOKEN_LABEL_MAX)[bad]
    before = stored(db)
    error = cli.fails("agents", "token", holder, "--label", value)
    assert says in error, error[:300]
    assert stored(db) == before


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("ada\x07@example.com", "not a valid email address"),
        ("x" * HUGE + "@example.com", f"at most {EMAIL_MAX} characters"),
    ],
)
def test_a_bad_email_is_refused(cli: Cli, db: Database, address: str, says: str) -> None:
    before = stored(db)
    assert says in cli.fails("agents", "create", address, "--name", "Ada")
    assert stored(db) == before


def test_values_at_the_limit_are_stored_whole(cli: Cli, db: Database) -> None:
    address = email()
    address = "e" * (EMAIL_MAX - len(address)) + address
    name, alias, label = "N" * NAME_MAX, "Ä" * NAME_MAX, "L" * TOKEN_LABEL_MAX
    created = cli.json("agents", "create", address, "--name", f" {name}\t", "--alias", alias)
    assert (created["email"], created["name"], created["alias"]) == (address, name, alias)
    assert cli.json("agents", "token", address, "--label", label)["label"] == label

    client_name = uuid.uuid4().hex.ljust(NAME_MAX, "c")
    assert cli.json("clients", "create", client_name)["name"] == client_name
    assert "needs a name" in cli.fails("clients", "create", "  ")


def test_kb_import_refuses_a_nul_or_a_huge_title_and_imports_the_rest(
    cli: Cli, db: Database, tmp_path: Path
) -> None:
    good = uuid.uuid4().hex.ljust(ARTICLE_TITLE_MAX, "t")
    (tmp_path / "nul.md").write_text("# Bad\x00title\n\nBody.\n")
    (tmp_path / "huge.md").write_text(f"# {'x' * HUGE}\n\nBody.\n")
    (tmp_path / "good.md").write_text(f"# {good}\n\nBody.\n")
    before = stored(db)
    result = cli.run("kb", "import", str(tmp_path), "--json")
    assert result.returncode == 1, result.stderr
    report = {f["path"]: f for f in json.loads(result.stdout)["files"]}
    assert report["nul.md"]["outcome"] == "failed"
    assert f"{CONTROL} (found U+0000)" in report["nul.md"]["error"]
    assert report["huge.md"]["outcome"] == "failed"
    assert f"at most {ARTICLE_TITLE_MAX} characters" in report["huge.md"]["error"]
    assert report["good.md"]["outcome"] == "created"
    after = stored(db)
    assert [t for _, t in after["articles"] if (_, t) not in before["articles"]] == [good]
