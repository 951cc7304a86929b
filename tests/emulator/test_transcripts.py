"""The transcript store: what a store written by an older emulator becomes, and who hears of
new messages."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from findesk.emulator.server import TypingBoard
from findesk.emulator.transcripts import TranscriptStore


def test_a_store_from_before_statuses_gains_the_column_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "messenger.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE conversations (id TEXT PRIMARY KEY, visitor_id INTEGER, user_id TEXT, "
            "last_id TEXT, owner VARCHAR(16), created_at FLOAT, updated_at FLOAT)"
        )
        db.execute("INSERT INTO conversations VALUES ('conv_1', NULL, 'usr_1', NULL, 'fin', 1, 1)")
    store = TranscriptStore(f"sqlite:///{path}")
    try:
        assert store.state("conv_1").owner == "fin" and store.state("conv_1").status is None
        store.remember("conv_1", "usr_1", [], None, "human", status="resolved")
        assert store.state("conv_1").status == "resolved"
    finally:
        store.close()


def test_listeners_hear_of_each_public_message_once(tmp_path: Path) -> None:
    store = TranscriptStore(f"sqlite:///{tmp_path / 'messenger.db'}")
    heard: list[tuple[str, list[str]]] = []
    store.on_new_messages(lambda cid, messages: heard.append((cid, [m["id"] for m in messages])))

    def message(id: str, visibility: str = "public") -> dict[str, Any]:
        return {"id": id, "author": {"id": "agt_1", "user_type": "agent"}, "visibility": visibility}

    try:
        store.remember("conv_1", "usr_1", [message("m1"), message("n1", "private")], None, None)
        store.remember("conv_1", "usr_1", [message("m1"), message("m2")], None, None)
        store.remember("conv_1", "usr_1", [message("m2")], None, None)
        assert heard == [("conv_1", ["m1"]), ("conv_1", ["m2"])]
    finally:
        store.close()


def test_an_agents_message_takes_the_place_of_their_typing() -> None:
    board = TypingBoard(seconds=600)
    board.show("conv_1", {"id": "agt_1", "name": "Maria"})
    board.clear("conv_1", {"agt_2"})  # someone else wrote: Maria is still typing
    assert board.current("conv_1") == {"id": "agt_1", "name": "Maria"}
    board.clear("conv_1", {"agt_1", "usr_1"})
    assert board.current("conv_1") is None
    board.clear("conv_2", {"agt_1"})  # nothing shown there: nothing to do
