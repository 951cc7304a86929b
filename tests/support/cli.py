"""The ``findesk`` console script, run for real in a subprocess against its own data folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def findesk_command() -> list[str]:
    """The installed console script, next to this interpreter (or on PATH); else ``-m``."""
    beside = Path(sys.executable).parent / "findesk"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("findesk")
    return [found] if found else [sys.executable, "-m", "findesk"]


class Cli:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FINDESK_")}
        self.env["FINDESK_DATA_DIR"] = str(data_dir)
        self.env["COLUMNS"] = "200"  # keep rich from wrapping messages

    @property
    def database_path(self) -> Path:
        return self.data_dir / "findesk.db"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.database_path}"

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run to the end; ``input`` is what stdin holds (nothing: stdin is empty, not a
        terminal)."""
        return subprocess.run(
            [*findesk_command(), *args],
            env=self.env,
            cwd=self.data_dir.parent,
            input=input or "",
            capture_output=True,
            text=True,
            timeout=120,
        )

    def json(self, *args: str, input: str | None = None) -> dict[str, Any]:
        """Run with --json; stdout must be exactly one JSON object."""
        result = self.run(*args, "--json", input=input)
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)  # fails on anything but one JSON document
        assert isinstance(data, dict), data
        return data

    def fails(self, *args: str, input: str | None = None) -> str:
        """Run expecting failure; returns stderr (whitespace collapsed)."""
        result = self.run(*args, input=input)
        assert result.returncode != 0, (result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        return " ".join(result.stderr.split())
