"""Installing findesk: every dependency pinned, with hashes, in lock files that agree with
pyproject.toml; `make run` installs only what running needs; a hash mismatch stops the install.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RUN_LOCK = ROOT / "requirements" / "run.txt"
TEST_LOCK = ROOT / "requirements" / "test.txt"
TOOLS_LOCK = ROOT / "requirements" / "lock-tools.txt"


@dataclass(frozen=True)
class Pin:
    version: str
    marker: str | None
    hashes: frozenset[str]


def read_lock(text: str) -> dict[str, list[Pin]]:
    """``name==version [; marker] --hash=…`` entries (continuation lines joined), by name."""
    pins: dict[str, list[Pin]] = {}
    joined = re.sub(r"\\\n", " ", text)
    for line in joined.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        hashes = frozenset(re.findall(r"--hash=(sha256:[0-9a-f]{64})", line))
        spec = re.sub(r"--hash=\S+", "", line).strip()
        requirement = Requirement(spec)
        [specifier] = list(requirement.specifier) or [None]
        assert specifier is not None and specifier.operator == "==", f"not pinned: {line}"
        marker = str(requirement.marker) if requirement.marker else None
        name = canonicalize_name(requirement.name)
        pins.setdefault(name, []).append(Pin(specifier.version, marker, hashes))
    return pins


def lock_problems(requirements: list[str], lock_text: str) -> list[str]:
    """What in ``requirements`` (pyproject's strings) the lock does not pin, or pins at a
    version the requirement excludes, or pins without a hash."""
    pins = read_lock(lock_text)
    problems = []
    for raw in requirements:
        requirement = Requirement(raw)
        found = pins.get(canonicalize_name(requirement.name))
        if not found:
            problems.append(f"{raw}: not in the lock file")
            continue
        for pin in found:
            if not requirement.specifier.contains(pin.version, prereleases=True):
                problems.append(f"{raw}: locked at {pin.version}")
            if not pin.hashes:
                problems.append(f"{raw}: locked without a hash")
    return problems


def closure_problems(requirements: list[str], lock_text: str) -> list[str]:
    """Every package that ``requirements`` pull in here (with their extras, through the installed
    metadata) must be pinned at the installed version: a dependency of a dependency too."""
    pins = read_lock(lock_text)
    problems: list[str] = []
    todo = [(Requirement(raw), "") for raw in requirements]
    seen: set[tuple[str, str]] = set()
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        for wanted in ["", *sorted(requirement.extras)]:
            if (name, wanted) in seen:
                continue
            seen.add((name, wanted))
            try:
                installed = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                problems.append(f"{name} (needed here) is not installed")
                continue
            applicable = [
                pin
                for pin in pins.get(name, [])
                if pin.marker is None or Marker(pin.marker).evaluate()
            ]
            if not any(pin.version == installed for pin in applicable):
                problems.append(f"{name}=={installed} is installed but not locked")
            for sub in importlib.metadata.requires(name) or []:
                todo.append((Requirement(sub), wanted))
    return problems


def run_requirements() -> list[str]:
    return list(PYPROJECT["project"]["dependencies"]) + list(PYPROJECT["build-system"]["requires"])


def test_requirements_helpers_read_a_lock_file() -> None:
    lock = "demo==1.2 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via findesk\n"
    assert lock_problems(["demo>=1"], lock) == []
    assert lock_problems(["demo>=2"], lock) == ["demo>=2: locked at 1.2"]
    assert lock_problems(["other"], lock) == ["other: not in the lock file"]
    assert lock_problems(["demo"], "demo==1.2\n") == ["demo: locked without a hash"]


def test_every_dependency_in_pyproject_is_pinned_with_hashes() -> None:
    assert lock_problems(run_requirements(), RUN_LOCK.read_text()) == []
    test_extra = PYPROJECT["project"]["optional-dependencies"]["test"]
    assert lock_problems(run_requirements() + test_extra, TEST_LOCK.read_text()) == []
    assert lock_problems(["uv"], TOOLS_LOCK.read_text()) == []


def test_a_dependency_added_to_pyproject_but_not_locked_fails() -> None:
    added = [*run_requirements(), "requests>=2"]
    assert lock_problems(added, RUN_LOCK.read_text()) == ["requests>=2: not in the lock file"]
    raised = [r if not r.startswith("fastapi") else "fastapi>=999" for r in run_requirements()]
    [problem] = lock_problems(raised, RUN_LOCK.read_text())
    assert problem.startswith("fastapi>=999: locked at")


def test_every_pin_carries_hashes_and_the_test_lock_keeps_the_run_pins() -> None:
    run, test = read_lock(RUN_LOCK.read_text()), read_lock(TEST_LOCK.read_text())
    for lock in (run, test, read_lock(TOOLS_LOCK.read_text())):
        assert all(pin.hashes for pins in lock.values() for pin in pins)
    for name, pins in run.items():
        assert test.get(name) == pins, name
    for path in (RUN_LOCK, TEST_LOCK, TOOLS_LOCK):
        assert "make lock" in path.read_text().split("\n", 3)[1], f"{path} not from `make lock`"


def test_what_is_installed_here_is_what_the_lock_files_pin() -> None:
    """The whole tree, through each package's own metadata: a dependency that a new release of
    a dependency brings, or an extra (``uvicorn[standard]``), is locked too."""
    assert closure_problems(run_requirements(), RUN_LOCK.read_text()) == []
    test_extra = PYPROJECT["project"]["optional-dependencies"]["test"]
    assert closure_problems(run_requirements() + test_extra, TEST_LOCK.read_text()) == []


def dry_run(target: str, venv: Path) -> str:
    result = subprocess.run(
        ["make", "-n", "-C", str(ROOT), target, f"VENV={venv}", f"PYTHON={sys.executable}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_run_installs_only_the_run_lock_and_make_test_the_test_lock(tmp_path: Path) -> None:
    run = dry_run("run", tmp_path / "venv")
    assert "--require-hashes" in run and "-r requirements/run.txt" in run
    assert "test.txt" not in run and "[test]" not in run
    assert "--quiet" not in run.split("-r requirements/run.txt")[0].splitlines()[-1]
    test = dry_run("test", tmp_path / "venv")
    assert "--require-hashes" in test and "-r requirements/test.txt" in test


def test_an_install_whose_file_does_not_match_its_locked_hash_fails(tmp_path: Path) -> None:
    """What CI does on a fresh clone (`make test` installs its lock file first), with a lock
    whose only file has been swapped: the install stops, and nothing is marked installed."""
    wheel = tmp_path / "tampered-1.0-py3-none-any.whl"
    wheel.write_bytes(b"not the file that was locked")
    locked = hashlib.sha256(b"the file that was locked").hexdigest()
    lock = tmp_path / "run.txt"
    lock.write_text(f"tampered @ {wheel.as_uri()} \\\n    --hash=sha256:{locked}\n")
    venv = tmp_path / "venv"
    result = subprocess.run(
        [
            "make",
            "-C",
            str(ROOT),
            "install",
            f"VENV={venv}",
            f"RUN_LOCK={lock}",
            f"PYTHON={sys.executable}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "DO NOT MATCH THE HASHES" in output, output
    assert not list(venv.glob(".installed-*")), "a failed install must not be marked done"
    assert not (venv / "bin" / "findesk").exists()


@pytest.mark.parametrize("path", [RUN_LOCK, TEST_LOCK])
def test_the_lock_files_are_universal(path: Path) -> None:
    """One resolution for every platform: Windows-only dependencies are there, with markers."""
    pins = read_lock(path.read_text())
    assert any(pin.marker and "win32" in pin.marker for pins_ in pins.values() for pin in pins_)
