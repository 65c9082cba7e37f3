# salsweep: `make sweep` runs the default sweep, `make test` runs every check (what CI runs),
# `make test-fast` the tests without servers or child processes (the edit loop).
# They set up .venv themselves on a fresh machine: `make sweep` installs what the sweep
# runs on (the runtime dependencies), `make test` adds the dev tools (pytest, ruff, mypy,
# selenium, yacs). Set-up times: docs/BENCHMARKS.md, "Set-up and server start".
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
SPEC ?= sweeps/default.yaml
STUDY ?= salsweep-default
# Worker processes of `make sweep`: auto = one per CPU core (at most 8), at least one per GPU.
WORKERS ?= auto
export SALSWEEP_HOME ?= $(CURDIR)/.salsweep

# The installer: uv, which installs the same wheels as pip several times faster, or pip
# (`make setup INSTALLER=pip`, and the fallback when uv cannot be had). uv comes from the
# PATH, else from PyPI through the machine's pip into .venv/uv.
INSTALLER ?= uv
UV_DIR := $(VENV)/uv
UV ?= $(or $(shell command -v uv 2>/dev/null),$(UV_DIR)/bin/uv)
# torch is pinned to the CPU build that lies on this machine's disk, found through pip's
# configuration (find-links, extra indexes, constraints: `pip config list`); uv does not
# read pip's configuration, so the same options are passed to it. Without them an
# unpinned or unfound torch is a multi-GB CUDA build. `unsafe-best-match` picks versions
# across indexes as pip does (uv's default takes a package from the first index that has it).
define PIP_TO_UV
import ast, sys
keys = ("index-url", "extra-index-url", "find-links", "constraint")
for line in sys.stdin:
    name, sep, value = line.rstrip("\n").partition("=")
    key = name.rsplit(".", 1)[-1]
    if sep and key in keys:
        for item in ast.literal_eval(value).split():
            print(f"--{key}={item}")
endef
export PIP_TO_UV

# $(call install,REQUIREMENTS): install into .venv with uv, or with pip when uv cannot be had.
define install
	@if [ "$(INSTALLER)" = uv ] && { test -x "$(UV)" || $(PYTHON) -m pip install -q \
	    --root-user-action=ignore --target $(UV_DIR) 'uv>=0.5'; }; then \
	  opts="$$($(PYTHON) -m pip config list 2>/dev/null | $(PYTHON) -c "$$PIP_TO_UV")"; \
	  echo "uv pip install $(1) $$(echo $$opts)"; \
	  "$(UV)" pip install --quiet --python $(BIN)/python --index-strategy unsafe-best-match \
	    $$opts $(1); \
	else \
	  [ "$(INSTALLER)" = pip ] || echo "uv cannot be installed here: installing with pip"; \
	  echo "pip install $(1)"; \
	  { test -x $(BIN)/pip || $(BIN)/python -m ensurepip --default-pip >/dev/null; } && \
	  $(BIN)/python -m pip install -q $(1); \
	fi
endef

.PHONY: all setup setup-dev sweep test test-fast lint typecheck pytest server server-stop \
	bench clean

all: test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv --without-pip $(VENV)
	$(call install,pip torch==2.13.0 -e .)
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(call install,-e '.[dev]')
	touch $(DEV_STAMP)

setup: $(STAMP)

setup-dev: $(DEV_STAMP)

# The server starts in the background while `sweep launch` loads torch, Optuna and MLflow
# (both take seconds); launch then finds it starting and waits for it (studies/server.py
# lets two starts at once launch one server).
sweep: $(STAMP)
	$(BIN)/salsweep server start >/dev/null 2>&1 & \
	$(BIN)/salsweep sweep launch $(SPEC) --study-name $(STUDY) --workers $(WORKERS); \
	  status=$$?; wait; exit $$status
	$(BIN)/salsweep studies export $(STUDY) -o best.yaml
	@echo "Best configuration written to best.yaml:"
	@cat best.yaml
	$(BIN)/salsweep server status

server: $(STAMP)
	$(BIN)/salsweep server start

server-stop: $(STAMP)
	$(BIN)/salsweep server stop

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

# The 20 slowest tests are listed at the end of every run (CI's log shows where time goes).
# Tests run in TEST_WORKERS processes (pytest-xdist; `auto`: one per core, `0`: in this
# process); the tests on the session's sweep stay in one of them (tests/conftest.py).
PYTEST_ARGS ?=
TEST_WORKERS ?= auto
XDIST := -n $(TEST_WORKERS) --dist loadgroup
pytest: $(DEV_STAMP)
	$(BIN)/python -m pytest -q $(XDIST) --durations=20 $(PYTEST_ARGS)

test: lint typecheck pytest

# The edit loop: every test but those marked (from their fixtures, tests/conftest.py) as
# using an MLflow server, a `salsweep` or Python child process, PostgreSQL, Chromium,
# docker-compose or Slurm, and those marked `slow` by hand (simulations of thousands of
# races, fuzzing). Not a substitute for `make test`.
FAST_MARKERS := not (server or cli_process or child_process or postgres or browser or compose or slurm or slow)
test-fast: $(DEV_STAMP)
	$(BIN)/python -m pytest -q $(XDIST) --durations=10 -m "$(FAST_MARKERS)" $(PYTEST_ARGS)

bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/loss_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
