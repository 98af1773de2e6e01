# The two commands: `make dev` runs the studio locally, `make test` runs every test.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Vercel's default runtime is Python 3.12; fall back to any python3 (the code also runs on 3.11).
PYTHON ?= $(shell PYENV_VERSION=3.12.1 pyenv which python3.12 2>/dev/null || command -v python3.12 || command -v python3)
PYTEST_WORKERS ?= 2

.PHONY: dev test lint bench setup clean

$(VENV)/.installed: requirements.txt requirements-dev.txt scripts/setup-system.sh scripts/setup-t2v.sh hf-worker/requirements.txt hf-worker/requirements-gpu.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	bash scripts/setup-system.sh
	touch $@

setup: $(VENV)/.installed

dev: setup
	$(PY) -m devstack

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: setup lint
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadgroup

bench: setup
	$(PY) -m bench
	$(PY) -m bench.worker_protocol
	$(PY) -m bench.analysis_speed
	$(PY) -m bench.t2v_overhead

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache test-artifacts
