"""The server's key: made once in the data folder, readable by its owner only, shared by every
process that uses the folder, replaced by ``FINDESK_SECRET_KEY`` when set; secrets derived from
it differ by nonce and purpose and never without it."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import ValidationError

from findesk.kit import serverkey
from findesk.kit.settings import Settings


def test_the_key_is_made_once_private_and_shared(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: serverkey.server_key(settings), range(32)))
    assert len(keys) == 1
    path = tmp_path / "data" / serverkey.KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert serverkey.server_key(Settings(data_dir=tmp_path / "data")) == keys.pop()
    assert serverkey.server_key(Settings(data_dir=tmp_path / "other")) != serverkey.server_key(
        settings
    )


def test_a_configured_key_wins_and_derives_the_same_everywhere(tmp_path) -> None:
    key = "k" * 40
    one = Settings(data_dir=tmp_path / "one", secret_key=key)
    two = Settings(data_dir=tmp_path / "two", secret_key=key)
    assert serverkey.derived(one, "webhook-signing", "n1") == serverkey.derived(
        two, "webhook-signing", "n1"
    )
    assert not (tmp_path / "one" / serverkey.KEY_FILE).exists()
    assert serverkey.derived(one, "webhook-signing", "n1") != serverkey.derived(
        one, "webhook-signing", "n2"
    )
    assert serverkey.derived(one, "webhook-signing", "n1") != serverkey.derived(one, "other", "n1")
    other = Settings(data_dir=tmp_path / "one", secret_key="x" * 40)
    assert serverkey.derived(one, "p", "n") != serverkey.derived(other, "p", "n")


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(secret_key="too short")
