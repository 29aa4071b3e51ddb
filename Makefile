# Entry points for people and CI. Settings come from the environment / .env (shared/settings.py);
# the test profile's settings live in infra/test.env.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
# sha256 of requirements.txt + requirements-dev.txt as last installed: pip runs again only when
# either file changes.
REQUIREMENTS_STAMP := $(VENV)/.requirements.sha256
# `make test` runs against the test profile's own ports and data, never the `make run` stack.
TEST_ENV := $(shell grep -E '^[A-Z_]+=' infra/test.env)
# pytest-xdist workers for the tests that share the stack peacefully (each has its own database
# and topics; most of their time is spent waiting on the servers, hence two more workers than
# CI's 2 cores); the `serial` ones, which stop a server, run alone afterwards. worksteal: an idle
# worker takes tests queued on a busy one (xdist's default hands out fixed shares up front, and
# a worker left with the minute-long chaos tests ran on alone: 10 min against 6.5).
TEST_WORKERS ?= 4
TEST_DIST ?= worksteal

.PHONY: help setup interpreted stack setup-db run test lint stop clean monitor

help:
	@echo "make setup     create $(VENV), install requirements-dev.txt (again only when one changes),"
	@echo "               compile the hot path with mypyc (again only when its sources change)"
	@echo "make interpreted  remove the compiled hot path: the same sources run interpreted"
	@echo "make stack     start the local Kafka + PostgreSQL (run profile: 19092 / 15432)"
	@echo "make setup-db  apply migrations and create the Kafka topics"
	@echo "make run       setup + stack + start_pipeline.py"
	@echo "make monitor   Prometheus (127.0.0.1:19090) scraping a running make run; installs prometheus"
	@echo "make test      lint, the test stack (29092 / 25432), pytest (benchmark smokes included)"
	@echo "make lint      ruff check"
	@echo "make stop      stop both local stacks"
	@echo "make clean     stop both local stacks and delete their data"

setup:
	@test -x $(PY) || python3 -m venv $(VENV)
	@want=$$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1); \
	if [ "$$(cat $(REQUIREMENTS_STAMP) 2>/dev/null)" = "$$want" ]; then \
		echo "[setup] $(VENV) matches requirements.txt + requirements-dev.txt"; \
	else \
		$(PY) -m pip install --disable-pip-version-check --progress-bar off -r requirements-dev.txt; \
		echo "$$want" > $(REQUIREMENTS_STAMP); \
	fi
	@$(PY) -m infra.hot_path build
	@$(PY) -m ml.arma_kernels

# The hot path's compiled modules removed (shared/hot_path.py); `make setup` builds them again.
interpreted:
	@if [ -x $(PY) ]; then $(PY) -m infra.hot_path clean; else echo "no $(VENV): nothing compiled"; fi

stack: setup
	$(PY) -m infra.stack up --profile run

setup-db: stack
	$(PY) -m db migrate
	$(PY) -m shared.topic_setup

# start_pipeline.py applies migrations and creates topics itself before starting the services.
run: setup stack
	$(PY) start_pipeline.py

# Beside a running `make run` (another terminal): Debian's prometheus, installed when missing,
# with the scrape config generated from shared/services.py and infra/prometheus/rules.yml.
monitor: setup
	$(PY) -m infra.prometheus

lint: setup
	$(PY) -m ruff check .

test: setup lint
	env $(TEST_ENV) $(PY) -m infra.stack up --profile test
	env $(TEST_ENV) $(PY) -m pytest -n $(TEST_WORKERS) --dist $(TEST_DIST) -m "not serial" --durations=15
	env $(TEST_ENV) $(PY) -m pytest -m serial

# Without a venv nothing was ever started from this checkout.
stop:
	@if [ -x $(PY) ]; then $(PY) -m infra.stack down; fi

clean:
	@if [ -x $(PY) ]; then $(PY) -m infra.stack clean; fi
