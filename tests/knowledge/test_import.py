"""``findesk kb import``: the console script, run for real in a subprocess against a SQLite file
in a temporary data folder, and the file parsing behind it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from support.cli import Cli

from findesk.kit.db import Database
from findesk.knowledge import importer
from findesk.knowledge.models import Article


class ImportCli(Cli):
    def import_json(self, folder: Path, *options: str, ok: bool = True) -> dict[str, Any]:
        result = self.run("kb", "import", str(folder), *options, "--json")
        assert result.returncode == (0 if ok else 1), (result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        data = json.loads(result.stdout)  # exactly one JSON document on stdout
        assert isinstance(data, dict)
        return data


@pytest.fixture
def cli(tmp_path: Path) -> ImportCli:
    return ImportCli(tmp_path / "data")


@pytest.fixture
def articles(cli: ImportCli) -> Iterator[Any]:
    """A function returning every article in the CLI's database, by slug."""
    db = Database(cli.database_url)

    def read() -> dict[str, Article]:
        with db.read_session() as session:
            rows = session.scalars(select(Article).where(Article.deleted_at.is_(None))).all()
            return {a.slug: a for a in rows}

    yield read
    db.dispose()


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    write(
        folder,
        "getting-started.md",
        "---\ntitle: Getting started\nstate: published\ntags: [intro]\n---\n\n"
        "Welcome to **Acme**.\n",
    )
    write(
        folder,
        "guides/reset-password.md",
        "# Reset your password\n\nOpen *Settings*.\n\n```sh\n# not a title\n```\n",
    )
    write(folder, "guides/plain_file_name.markdown", "Just a body.\n")
    write(
        folder,
        "fr/bienvenue.md",
        "---\ntitle: Bienvenue\nlocale: fr\nslug: welcome-fr\nurl: https://help.example.com/fr/1\n"
        "---\nBonjour.\n",
    )
    write(folder, ".drafts/hidden.md", "# Hidden\n\nNot imported.\n")
    write(folder, "notes.txt", "# Not Markdown\n")
    return folder


def test_import_creates_articles_and_importing_again_changes_nothing(
    cli: ImportCli, docs: Path, articles: Any
) -> None:
    first = cli.import_json(docs)
    assert (first["created"], first["updated"], first["unchanged"], first["failed"]) == (4, 0, 0, 0)

    found = articles()
    assert set(found) == {
        "getting-started",
        "guides-reset-password",
        "guides-plain-file-name",
        "welcome-fr",
    }
    started = found["getting-started"]
    assert started.title == "Getting started" and started.state == "published"
    assert started.body_html == "<p>Welcome to <b>Acme</b>.</p>"
    assert started.author_id is None

    reset = found["guides-reset-password"]
    assert reset.title == "Reset your password"  # from the heading...
    assert "Reset your password" not in reset.body_source  # ...taken out of the body
    assert "# not a title" in reset.body_source  # a comment in a code block is not a heading
    assert reset.state == "draft" and reset.locale == "en"

    assert found["guides-plain-file-name"].title == "Plain file name"
    french = found["welcome-fr"]
    assert (french.title, french.locale, french.url) == (
        "Bienvenue",
        "fr",
        "https://help.example.com/fr/1",
    )

    edited_at = {slug: a.updated_at for slug, a in found.items()}
    again = cli.import_json(docs)
    assert (again["created"], again["updated"], again["unchanged"], again["failed"]) == (0, 0, 4, 0)
    assert {slug: a.updated_at for slug, a in articles().items()} == edited_at

    write(docs, "guides/reset-password.md", "# Reset your password\n\nOpen *Account*.\n")
    changed = cli.import_json(docs)
    assert (changed["created"], changed["updated"], changed["unchanged"]) == (0, 1, 3)
    assert [f["path"] for f in changed["files"] if f["outcome"] == "updated"] == [
        "guides/reset-password.md"
    ]
    after = articles()
    assert len(after) == 4
    assert after["guides-reset-password"].body_html == "<p>Open <i>Account</i>.</p>"
    assert after["guides-reset-password"].id == reset.id


def test_bad_files_are_reported_and_the_others_imported(
    cli: ImportCli, tmp_path: Path, articles: Any
) -> None:
    folder = tmp_path / "mixed"
    write(folder, "a-good.md", "# Good one\n\nFine.\n")
    write(folder, "bad-yaml.md", "---\ntitle: [never closed\n---\nBody.\n")
    write(folder, "bad-state.md", "---\nstate: live\n---\nBody.\n")
    write(folder, "empty-published.md", "---\ntitle: Empty\nstate: published\n---\n\n")
    write(folder, "unclosed.md", "---\ntitle: Oops\nBody without a closing line.\n")
    write(folder, "z-good.md", "Also fine.\n")

    result = cli.run("kb", "import", str(folder))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert "2 created, 0 updated, 0 unchanged, 4 failed." in result.stdout
    lines = [line for line in result.stderr.splitlines() if "failed:" in line]
    assert len(lines) == 4, result.stderr
    by_file = {
        name: next(line for line in lines if name in line)
        for name in ("bad-yaml.md", "bad-state.md", "empty-published.md", "unclosed.md")
    }
    assert "YAML" in by_file["bad-yaml.md"]
    assert "live" in by_file["bad-state.md"] and "draft" in by_file["bad-state.md"]
    assert "body" in by_file["empty-published.md"]
    assert "never closed" in by_file["unclosed.md"]
    assert set(articles()) == {"a-good", "z-good"}

    # Fixing the files and importing again imports them, and only them.
    write(folder, "bad-yaml.md", "---\ntitle: Fixed\n---\nBody.\n")
    write(folder, "bad-state.md", "---\nstate: archived\n---\nBody.\n")
    write(folder, "empty-published.md", "---\ntitle: Empty\nstate: published\n---\nNow full.\n")
    (folder / "unclosed.md").unlink()
    fixed = cli.import_json(folder)
    assert (fixed["created"], fixed["unchanged"], fixed["failed"]) == (3, 2, 0)
    assert articles()["empty-published"].state == "published"
    assert articles()["bad-state"].state == "archived"


def test_json_output_lists_each_file(cli: ImportCli, tmp_path: Path) -> None:
    folder = tmp_path / "json"
    write(folder, "one.md", "# One\n\nx\n")
    write(folder, "two.md", "---\nlocale: no\n---\nNorwegian, unquoted.\n")
    data = cli.import_json(folder, ok=False)
    files = {f["path"]: f for f in data["files"]}
    assert files["one.md"]["outcome"] == "created" and files["one.md"]["article_id"]
    assert files["two.md"]["outcome"] == "failed"
    assert "locale" in files["two.md"]["error"] and "quotes" in files["two.md"]["error"]
    assert data["failed"] == 1


def test_state_and_locale_options(cli: ImportCli, tmp_path: Path, articles: Any) -> None:
    folder = tmp_path / "opts"
    write(folder, "hallo.md", "# Hallo\n\nWillkommen.\n")
    write(folder, "kept.md", "---\nstate: draft\nlocale: en\n---\n# Kept\n\nx\n")
    cli.import_json(folder, "--state", "published", "--locale", "de")
    found = articles()
    assert (found["hallo"].state, found["hallo"].locale) == ("published", "de")
    assert (found["kept"].state, found["kept"].locale) == ("draft", "en")  # the file wins

    # An article published since keeps its state when imported again without --state.
    write(folder, "hallo.md", "# Hallo\n\nWillkommen zurück.\n")
    again = cli.import_json(folder)
    assert again["updated"] == 1
    assert articles()["hallo"].state == "published"


def test_bad_arguments_fail_clearly(cli: ImportCli, tmp_path: Path) -> None:
    missing = cli.run("kb", "import", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "nowhere" in missing.stderr
    assert "Traceback" not in missing.stderr
    folder = tmp_path / "ok"
    write(folder, "a.md", "x")
    bad_state = cli.run("kb", "import", str(folder), "--state", "deleted")
    assert bad_state.returncode == 1 and "--state" in bad_state.stderr
    assert not (cli.data_dir / "findesk.db").exists()  # nothing was done


def test_two_files_with_one_slug_are_not_merged(
    cli: ImportCli, tmp_path: Path, articles: Any
) -> None:
    folder = tmp_path / "dupes"
    write(folder, "a.md", "---\nslug: shared\n---\nFirst.\n")
    write(folder, "b.md", "---\nslug: Shared\n---\nSecond.\n")
    data = cli.import_json(folder, ok=False)
    outcomes = {f["path"]: f["outcome"] for f in data["files"]}
    assert outcomes == {"a.md": "created", "b.md": "failed"}
    assert "a.md" in next(f["error"] for f in data["files"] if f["path"] == "b.md")
    assert articles()["shared"].body_source == "First."


# --- parsing, in process -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "title", "body"),
    [
        ("# Title here\n\nBody.", "Title here", "Body."),
        ("\ufeff# With BOM ##\r\n\r\nBody.\r\n", "With BOM", "Body."),
        ("Intro.\n\n# Later heading\n\nMore.", "Later heading", "Intro.\n\n\nMore."),
        ("```\n# code\n```\n\n## Sub\n", "Some file", "```\n# code\n```\n\n## Sub"),
        ("---\ntitle: 2024\n---\n# Kept heading\n", "2024", "# Kept heading"),
        ("---\n---\nNo meta.", "Some file", "No meta."),
    ],
)
def test_titles(text: str, title: str, body: str) -> None:
    parsed = importer.parse(text, "some_file.md")
    assert (parsed.title, parsed.body) == (title, body)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("---\n- a list\n---\nx", "keys and values"),
        ("---\ntitle: [1, 2]\n---\nx", "title must be text"),
        ("---\nslug: {a: 1}\n---\nx", "slug must be text"),
        ("---\nstate: true\n---\nx", "state must be text"),
        ("---\ntitle: ok\n  bad: indent\n---\nx", "bad YAML front matter (line 3)"),
    ],
)
def test_bad_front_matter(text: str, message: str) -> None:
    with pytest.raises(importer.BadFile, match=message.replace("(", r"\(").replace(")", r"\)")):
        importer.parse(text, "f.md")


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin.md"
    path.write_bytes("# Café\n".encode("latin-1"))
    with pytest.raises(importer.BadFile, match="UTF-8"):
        importer.read_file(path, "latin.md")
