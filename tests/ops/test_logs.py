"""Logged URLs never carry credentials: userinfo, query values and fragments are redacted in
every line findesk's loggers write, whoever logs them."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from support.aio import run
from support.cli import Cli

from findesk.kit import logs
from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.migrations import upgrade
from findesk.notifier.worker import Worker

SECRET_URL = "https://fin:s3cret-pass@hooks.example.com/hooks/x?key=k3y-value&plain#tok3n"


def test_a_url_loses_its_userinfo_query_values_and_fragment() -> None:
    assert logs.redact_url(SECRET_URL) == "https://***@hooks.example.com/hooks/x?key=***&plain#***"
    assert logs.redact_url("https://api.intercom.io/hooks/a") == "https://api.intercom.io/hooks/a"
    said = logs.redact(f"could not reach {SECRET_URL} (503); see http://a:b@c.test/?t=1")
    assert "s3cret" not in said and "k3y" not in said and "tok3n" not in said
    assert "a:b" not in said and "t=1" not in said
    assert "hooks.example.com/hooks/x" in said


def test_the_notifier_does_not_log_its_webhook_credentials(tmp_path) -> None:
    """The worker names its target when it starts: redacted."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("findesk")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    url = f"sqlite:///{tmp_path / 'findesk.db'}"
    upgrade(url)
    db = Database(url)
    settings = Settings(database_url=url, fin_webhook_url=SECRET_URL, notifier_poll_seconds=0.05)
    worker = Worker(db, settings)

    async def start_and_stop() -> None:
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0)  # the task runs to its first await: it logs before any
        worker.stop()
        await task

    try:
        run(start_and_stop)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        db.dispose()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    started = [line for line in lines if line["msg"] == "worker started"]
    assert (
        started
        and started[0]["target"] == "https://***@hooks.example.com/hooks/x?key=***&plain#***"
    )
    assert "s3cret" not in stream.getvalue() and "k3y-value" not in stream.getvalue()


def test_outbox_status_names_the_target_without_its_credentials(tmp_path) -> None:
    cli = Cli(tmp_path / "data")
    cli.env["FINDESK_FIN_WEBHOOK_URL"] = SECRET_URL
    redacted = "https://***@hooks.example.com/hooks/x?key=***&plain#***"
    assert cli.json("outbox", "status")["target"] == redacted
    said = cli.run("outbox", "status")
    assert said.returncode == 0, said.stderr
    assert f"target: {redacted}" in said.stdout
    assert "s3cret" not in said.stdout + said.stderr and "k3y" not in said.stdout + said.stderr
