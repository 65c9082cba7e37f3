# salsweep: `make sweep` runs the default sweep, `make test` runs every check.
# Both set up .venv themselves on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SPEC ?= sweeps/default.yaml
STUDY ?= salsweep-default
export SALSWEEP_HOME ?= $(CURDIR)/.salsweep

.PHONY: all setup sweep test lint typecheck pytest server server-stop bench clean

all: test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch is pinned to the CPU wheel that lies on this machine's disk; install it first
	# so that nothing pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

sweep: $(STAMP)
	$(BIN)/salsweep server start
	$(BIN)/salsweep sweep launch $(SPEC) --study-name $(STUDY)
	$(BIN)/salsweep studies export $(STUDY) -o best.yaml
	@echo "Best configuration written to best.yaml:"
	@cat best.yaml
	$(BIN)/salsweep server status

server: $(STAMP)
	$(BIN)/salsweep server start

server-stop: $(STAMP)
	$(BIN)/salsweep server stop

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/loss_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
