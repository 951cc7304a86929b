# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
#
# Every dependency comes from a lock file, with every file's hash checked (pip stops at a file
# whose hash is not in it): requirements/run.txt holds what running findesk needs,
# requirements/test.txt that and the test tools. `make lock` writes them from pyproject.toml
# (keeping the current pins; `make lock UPGRADE=1` moves every pin to the newest release).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_LOCK ?= requirements/run.txt
TEST_LOCK ?= requirements/test.txt
TOOLS_LOCK := requirements/lock-tools.txt
# One stamp per lock file and pyproject.toml content: a change to either installs again.
stamp = $(VENV)/.installed-$(1)-$(shell cat pyproject.toml $(2) 2>/dev/null | cksum | cut -d' ' -f1)
RUN_STAMP := $(call stamp,run,$(RUN_LOCK))
TEST_STAMP := $(call stamp,test,$(TEST_LOCK))
PIP := $(BIN)/python -m pip --disable-pip-version-check
say = @printf '==> %s\n' "$(1)"

.PHONY: run test install install-test lint typecheck bench lock clean

# $(1): the lock file. findesk itself is installed without its dependencies (they are all in
# the lock), without build isolation (its build backend is locked too) and without an index.
define install_locked
	$(call say,virtual environment $(VENV) (Python from $(PYTHON)))
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(call say,installing the $(shell grep -c '^[a-z]' $(1)) packages pinned in $(1)$(comma) every hash checked)
	$(PIP) install --require-hashes --no-input -r $(1)
	$(call say,installing findesk itself (editable))
	$(PIP) install --quiet --no-deps --no-build-isolation --no-index -e .
endef
comma := ,

$(RUN_STAMP): pyproject.toml $(RUN_LOCK)
	$(call install_locked,$(RUN_LOCK))
	@rm -f $(VENV)/.installed-run-*
	@touch $@

# The test lock holds the run lock's pins (tests/test_packaging.py checks it), so it serves both.
$(TEST_STAMP): pyproject.toml $(TEST_LOCK)
	$(call install_locked,$(TEST_LOCK))
	@rm -f $(VENV)/.installed-*
	@touch $@ $(RUN_STAMP)

install: $(RUN_STAMP)  ## what running findesk needs

install-test: $(TEST_STAMP)  ## that and the test tools

run: $(RUN_STAMP)  ## migrate, seed a demo, start findesk and the Fin emulator wired together
	$(call say,starting the demo: findesk and the Fin emulator (FINDESK_PORT$(comma) FINDESK_EMULATOR_PORT))
	$(BIN)/findesk demo

test: $(TEST_STAMP)  ## lint, types, then every test (SQLite and a throwaway PostgreSQL server)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

bench: $(TEST_STAMP)
	$(BIN)/python bench/fin_api.py

# uv resolves (itself installed from its own lock); one universal resolution for every platform
# and Python >= 3.11, with the hashes of every file of each pinned release.
COMPILE = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade)
BUILD_REQUIRES = $(BIN)/python -c 'import tomllib; \
	print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")'

lock:  ## write the lock files from pyproject.toml (UPGRADE=1: newest releases)
	$(call say,installing uv from $(TOOLS_LOCK))
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --require-hashes -r $(TOOLS_LOCK)
	$(call say,resolving $(RUN_LOCK) (the dependencies and the build backend))
	$(BUILD_REQUIRES) | $(COMPILE) pyproject.toml - -o $(RUN_LOCK)
	$(call say,resolving $(TEST_LOCK) (those pins and the test extra))
	$(BUILD_REQUIRES) | $(COMPILE) pyproject.toml - --extra test -c $(RUN_LOCK) -o $(TEST_LOCK)
	$(call say,resolving $(TOOLS_LOCK))
	$(COMPILE) requirements/lock-tools.in -o $(TOOLS_LOCK)

clean:
	rm -rf $(VENV) .findesk .pytest_cache
