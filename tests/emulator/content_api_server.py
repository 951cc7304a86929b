"""The AI Content API emulator served by uvicorn on loopback, in a thread of the test process."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import uvicorn
from fastapi import FastAPI

from findesk.emulator.content_api import store_of
from findesk.emulator.content_store import ContentStore

TOKEN = "test-token-1"
OTHER_TOKEN = "test-token-2"


class ServedApp:
    def __init__(self, app: FastAPI, port: int | None = None) -> None:
        self.app = app
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = port or int(sock.getsockname()[1])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("content API emulator did not start")
            time.sleep(0.005)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def store(self) -> ContentStore:
        return store_of(self.app)

    def client(self, token: str | None = TOKEN, **headers: str) -> httpx.Client:
        all_headers = {"Intercom-Version": "2.14", **headers}
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.base_url, headers=all_headers, timeout=10)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
