"""``make run``: findesk and the Fin emulator as two processes, wired together.

findesk's notifier is aimed at the emulator's webhook (integration ``demo``, a fresh key), its
knowledge base at the emulator's AI Content API (a fresh token), and the emulator at findesk's
Fin API (the demo OAuth client, the Fin bot agent). Secrets go to the children in their
environment, never on a command line. Their logs go to files in the data folder, so the terminal
shows only what a person needs: where to click and how to sign in.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from findesk.kit.settings import WEBHOOK_PATH

INTEGRATION_ID = "demo"


class DemoError(RuntimeError):
    pass


@dataclass(frozen=True)
class Wiring:
    host: str
    port: int
    emulator_port: int
    client_id: str
    client_secret: str
    fin_agent_id: str
    webhook_key: str = ""
    content_token: str = ""
    # findesk's own chat, answered by the emulator's Fin Agent API (or Custom Channel Events).
    chat_token: str = ""
    chat_webhook_secret: str = ""
    chat_callback_token: str = ""
    chat_identity_secret: str = ""

    @property
    def helpdesk_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def emulator_url(self) -> str:
        return f"http://{self.host}:{self.emulator_port}"


def fresh_secrets(wiring: Wiring) -> Wiring:
    return replace(
        wiring,
        webhook_key=secrets.token_urlsafe(24),
        content_token=secrets.token_urlsafe(24),
        chat_token=secrets.token_urlsafe(24),
        chat_webhook_secret=secrets.token_urlsafe(24),
        chat_callback_token=secrets.token_urlsafe(24),
        chat_identity_secret=secrets.token_urlsafe(24),
    )


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class PortChoice:
    """A port the demo needs, and how a person picks another."""

    what: str  # "findesk"
    port: int
    setting: str  # "FINDESK_PORT"
    option: str  # "--port"
    from_option: bool  # given on the command line (else from the setting or its default)


def check_ports(host: str, choices: list[PortChoice]) -> None:
    """Before anything is seeded or started: every port free, else say which setting (or
    option, when that is what chose the port) to change, with a free port to change it to."""
    taken = {c.port for c in choices}
    problems = []
    for choice in choices:
        if port_is_free(host, choice.port):
            continue
        free = next(
            p for p in range(choice.port + 1, 65536) if p not in taken and port_is_free(host, p)
        )
        taken.add(free)
        if choice.from_option:
            how = f"pick another with {choice.option}, e.g. {choice.option} {free}"
        else:
            how = (
                f"set {choice.setting} to a free one, e.g. `{choice.setting}={free} make run` "
                f"(or `findesk demo {choice.option} {free}`)"
            )
        problems.append(f"Port {choice.port} on {host} ({choice.what}) is in use: {how}.")
    if problems:
        raise DemoError(" ".join(problems) + " Nothing was seeded or started.")


class Stack:
    """The two processes; ``stop`` ends both (SIGTERM, then SIGKILL after a grace period)."""

    def __init__(self, wiring: Wiring, log_dir: Path) -> None:
        self.wiring = wiring
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        w = self.wiring
        for port, setting in ((w.port, "FINDESK_PORT"), (w.emulator_port, "FINDESK_EMULATOR_PORT")):
            if not port_is_free(w.host, port):  # taken since the check before seeding
                raise DemoError(f"Port {port} on {w.host} is in use: set {setting} to another.")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        base_env = {k: v for k, v in os.environ.items() if k not in _DEMO_OWNED}
        findesk_env = {
            **base_env,
            "FINDESK_HOST": w.host,
            "FINDESK_PORT": str(w.port),
            "FINDESK_FIN_WEBHOOK_URL": f"{w.emulator_url}{WEBHOOK_PATH}/{INTEGRATION_ID}",
            "FINDESK_FIN_WEBHOOK_KEY": w.webhook_key,
            "FINDESK_INTERCOM_API_URL": w.emulator_url,
            "FINDESK_INTERCOM_ACCESS_TOKEN": w.content_token,
            # A teammate the emulator's Articles API knows (its default ids are 1, 2 and 3).
            "FINDESK_INTERCOM_ARTICLE_AUTHOR_ID": "1",
            # The emulator's Reporting Data Export takes any workspace and client id.
            "FINDESK_INTERCOM_APP_ID": "demo",
            "FINDESK_INTERCOM_CLIENT_ID": "demo",
            "FINDESK_INTERCOM_EXPORT_DAILY": "true",
            # The chat widget (/chat/demo): Fin answers through the emulator's Fin Agent API
            # unless the caller picked another channel.
            "FINDESK_CHAT_CHANNEL": os.environ.get("FINDESK_CHAT_CHANNEL") or "fin_agent_api",
            "FINDESK_CHAT_IDENTITY_SECRET": w.chat_identity_secret,
            "FINDESK_FIN_AGENT_API_TOKEN": w.chat_token,
            "FINDESK_FIN_AGENT_API_WEBHOOK_SECRET": w.chat_webhook_secret,
            "FINDESK_CUSTOM_CHANNEL_TOKEN": w.chat_token,
            "FINDESK_CUSTOM_CHANNEL_CALLBACK_TOKEN": w.chat_callback_token,
        }
        chat_hooks = f"{w.helpdesk_url}/chat/hooks"
        emulator_env = {
            **base_env,
            "FINDESK_EMULATOR_CLIENT_ID": w.client_id,
            "FINDESK_EMULATOR_CLIENT_SECRET": w.client_secret,
            "FINDESK_EMULATOR_WEBHOOK_KEY": w.webhook_key,
            "FINDESK_EMULATOR_CONTENT_TOKEN": w.content_token,
            "FINDESK_EMULATOR_FIN_AGENT_TOKEN": w.chat_token,
            "FINDESK_EMULATOR_FIN_AGENT_WEBHOOK_URL": f"{chat_hooks}/fin-agent-api",
            "FINDESK_EMULATOR_FIN_AGENT_WEBHOOK_SECRET": w.chat_webhook_secret,
            "FINDESK_EMULATOR_CUSTOM_CHANNEL_TOKEN": w.chat_token,
            "FINDESK_EMULATOR_CUSTOM_CHANNEL_CALLBACK_URL": f"{chat_hooks}/custom-channel",
            "FINDESK_EMULATOR_CUSTOM_CHANNEL_CALLBACK_TOKEN": w.chat_callback_token,
        }
        self._spawn("findesk", ["serve"], findesk_env)
        self._spawn(
            "emulator",
            [
                "emulator",
                "--helpdesk-url",
                w.helpdesk_url,
                "--integration-id",
                INTEGRATION_ID,
                "--fin-agent-id",
                w.fin_agent_id,
                "--host",
                w.host,
                "--port",
                str(w.emulator_port),
            ],
            emulator_env,
        )

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = (self.log_dir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "findesk", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()  # the child has its own descriptor

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until findesk answers /healthz and the emulator serves the Messenger."""
        checks = {
            "findesk": f"{self.wiring.helpdesk_url}/healthz",
            "emulator": f"{self.wiring.emulator_url}/messenger",
        }
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as http:
            while checks:
                self.check_alive()
                for name, url in list(checks.items()):
                    try:
                        if http.get(url).status_code == 200:
                            del checks[name]
                    except httpx.TransportError:
                        pass
                if checks and time.monotonic() > deadline:
                    raise DemoError(f"{', '.join(checks)} did not start; see {self.log_dir}.")
                if checks:
                    time.sleep(0.2)

    def wait_for_library(self, count: int, timeout: float = 30.0) -> bool:
        """Until the emulator's content library holds ``count`` pages (findesk publishes them)."""
        headers = {"Authorization": f"Bearer {self.wiring.content_token}"}
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.wiring.emulator_url, headers=headers, timeout=5) as http:
            while time.monotonic() < deadline:
                self.check_alive()
                try:
                    listed = http.get("/ai/external_pages", params={"per_page": 1})
                    if listed.status_code == 200 and listed.json()["total_count"] >= count:
                        return True
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        return False

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise DemoError(
                    f"{name} exited with code {process.returncode}; "
                    f"see {self.log_dir / (name + '.log')}."
                )

    def run_until_signal(self, on_stop: Callable[[], None] | None = None) -> int:
        """Block until Ctrl-C / SIGTERM or a child exits; return a shell exit code."""
        stopping = False

        def handle(_signum: int, _frame: object) -> None:
            nonlocal stopping
            stopping = True

        previous = signal.signal(signal.SIGTERM, handle)
        try:
            while not stopping:
                try:
                    self.check_alive()
                except DemoError as exc:
                    print(exc, file=sys.stderr)
                    return 1
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            if on_stop is not None:
                on_stop()
            self.stop()
        return 0

    def stop(self, grace: float = 10.0) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# Wiring the stack sets these; values inherited from the caller's shell would fight it.
_DEMO_OWNED = {
    "FINDESK_HOST",
    "FINDESK_PORT",
    "FINDESK_FIN_WEBHOOK_URL",
    "FINDESK_FIN_INTEGRATION_ID",
    "FINDESK_FIN_WEBHOOK_KEY",
    "FINDESK_INTERCOM_API_URL",
    "FINDESK_INTERCOM_ACCESS_TOKEN",
    "FINDESK_INTERCOM_ARTICLE_AUTHOR_ID",
    "FINDESK_INTERCOM_APP_ID",
    "FINDESK_INTERCOM_CLIENT_ID",
    "FINDESK_INTERCOM_EXPORT_DAILY",
    "FINDESK_PUBLIC_BASE_URL",
    "FINDESK_CHAT_IDENTITY_SECRET",
    "FINDESK_FIN_AGENT_API_TOKEN",
    "FINDESK_FIN_AGENT_API_WEBHOOK_SECRET",
    "FINDESK_CUSTOM_CHANNEL_TOKEN",
    "FINDESK_CUSTOM_CHANNEL_CALLBACK_TOKEN",
}
