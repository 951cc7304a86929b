"""``findesk backup`` while findesk serves a steady write load, and ``findesk restore``: the copy
is consistent, holds every write acknowledged before the backup began, its attachments come back
byte for byte, and a restored findesk serves all of it."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from inbox.web_support import new_agent, sign_in
from support.cli import Cli
from support.server import LiveServer

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    data = tmp_path / "data"
    server = LiveServer(f"sqlite:///{data / 'findesk.db'}", {"data_dir": data}).start()
    yield server
    server.stop()


def cli_for(server: LiveServer, data: Path) -> Cli:
    """The command line on findesk's machine: its database and attachments."""
    cli = Cli(data)
    cli.env["FINDESK_DATABASE_URL"] = server.database_url
    cli.env["FINDESK_FILES_DIR"] = str(server.settings.attachments_dir)
    return cli


class Writer(threading.Thread):
    """Fin writing end users' messages, one after another, noting when each was acknowledged."""

    def __init__(self, server: LiveServer, conversation_id: str, user_id: str) -> None:
        super().__init__(daemon=True)
        self.fin = server.fin_world().api
        self.conversation_id, self.user_id = conversation_id, user_id
        self.acknowledged: list[tuple[float, str]] = []  # (monotonic time, message id)
        self.stop = threading.Event()
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            reply = self.fin.create_message(
                conversation_id=self.conversation_id,
                body=f"<p>{uuid.uuid4().hex}</p>",
                author={"id": self.user_id, "user_type": "end_user"},
                object_id=uuid.uuid4().hex,
            )
            if reply.status != 201:
                self.failures.append(f"{reply.status} {reply.error}")
                return
            self.acknowledged.append((time.monotonic(), str(reply.data["id"])))

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + 30
        while len(self.acknowledged) < count and time.monotonic() < deadline:
            self.stop.wait(0.01)
        assert len(self.acknowledged) >= count, self.failures


def message_ids(database: Path) -> set[str]:
    with sqlite3.connect(database) as connection:
        return {row[0] for row in connection.execute("SELECT id FROM messages")}


def test_a_backup_under_write_load_holds_every_acknowledged_write_and_restores(
    live: LiveServer, tmp_path: Path
) -> None:
    world = live.fin_world()
    conversation, _ = world.conversation()
    agent = sign_in(live, new_agent(live, "Bea Backup"))
    sent = agent.post(
        f"/inbox/conversations/{conversation['id']}/reply",
        {"body": "<p>The scan you asked for</p>"},
        files=[("files", ("scan.png", PNG, "image/png"))],
    )
    assert sent.status_code == 303, sent.text
    agent.close()
    cli = cli_for(live, tmp_path / "cli")

    writer = Writer(live, conversation["id"], conversation["user"]["id"])
    writer.start()
    try:
        writer.wait_for(20)
        began = time.monotonic()
        result = cli.run("backup", str(tmp_path / "backup"), "--json")
        ended = time.monotonic()
        writer.wait_for(len(writer.acknowledged) + 20)  # the load went on after it too
    finally:
        writer.stop.set()
        writer.join(timeout=30)
    assert result.returncode == 0, result.stderr
    assert not writer.failures, writer.failures[:3]
    manifest = json.loads(result.stdout)
    assert manifest["files"] == 1 and manifest["missing_files"] == []
    assert manifest["schema_revision"] and manifest["rows"]["messages"] >= 20

    copy = tmp_path / "backup" / "findesk.db"
    with sqlite3.connect(copy) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
    in_copy = message_ids(copy)
    before = {mid for at, mid in writer.acknowledged if at < began}
    after = {mid for at, mid in writer.acknowledged if at > ended}
    assert before <= in_copy  # every write acknowledged before the backup began
    assert after and not (after & in_copy)  # and nothing from after it ended: one snapshot
    assert (tmp_path / "backup").stat().st_mode & 0o777 == 0o700
    assert copy.stat().st_mode & 0o777 == 0o600

    # Restore on another machine (a fresh data folder), then serve it.
    elsewhere = Cli(tmp_path / "restored")
    restored = elsewhere.run("restore", str(tmp_path / "backup"))
    assert restored.returncode == 0, restored.stderr
    server = LiveServer(
        f"sqlite:///{elsewhere.database_path}", {"data_dir": elsewhere.data_dir}
    ).start()
    try:
        api = server.fin_world().api
        messages = api.get_messages(conversation["id"])
        assert messages.status == 200
        served = {m["id"] for m in messages.data}
        assert before <= served
        [with_file] = [m for m in messages.data if m.get("attachments")]
        url = with_file["attachments"][0]["url"].replace(live.base_url, server.base_url)
        assert httpx.get(url).content == PNG
    finally:
        server.stop()


def test_restore_never_overwrites_a_database_unless_told_and_keeps_it(
    live: LiveServer, tmp_path: Path
) -> None:
    live.fin_world().conversation()
    cli = cli_for(live, tmp_path / "cli")
    assert cli.run("backup", str(tmp_path / "backup")).returncode == 0
    assert "is not empty" in cli.fails("backup", str(tmp_path / "backup"))
    target = Cli(tmp_path / "target")
    assert target.run("migrate").returncode == 0
    refused = target.fails("restore", str(tmp_path / "backup"))
    assert "exists" in refused and "--force" in refused
    done = target.run("restore", str(tmp_path / "backup"), "--force")
    assert done.returncode == 0, done.stderr
    kept = list(target.data_dir.glob("findesk.db.before-restore-*"))
    assert len(kept) == 1 and kept[0].stat().st_size > 0
    assert message_ids(target.database_path) == message_ids(tmp_path / "backup" / "findesk.db")
    assert "not a findesk backup" in target.fails("restore", str(tmp_path), "--force")


def test_backup_of_postgresql_points_to_pg_dump(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "data")
    cli.env["FINDESK_DATABASE_URL"] = "postgresql+psycopg://findesk@127.0.0.1:1/findesk"
    assert "pg_dump" in cli.fails("backup", str(tmp_path / "backup"))


def test_an_error_naming_a_folder_shows_the_name_as_it_is(live: LiveServer, tmp_path: Path) -> None:
    """Rich would read "[bold]" in a path as markup and print something else."""
    folder = tmp_path / "nightly [bold]copy"
    folder.mkdir()
    (folder / "something").write_text("already here")
    said = cli_for(live, tmp_path / "cli").fails("backup", str(folder))
    assert f"{folder} is not empty" in said
