# HuleEdu monorepo. `make setup` works as root (or with sudo) on a fresh Debian machine:
# it installs uv, PostgreSQL, Redis and wrk when they are missing and syncs the venv.
# Tests start real PostgreSQL, Redis and a Kafka-protocol broker themselves
# (huleedu_devstack: local processes when there is no Docker engine).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# uv itself if on PATH, else the module installed by `make setup`.
UV := $(shell command -v uv >/dev/null 2>&1 && echo uv || echo python3 -m uv)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_GET := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get

.PHONY: help setup setup-uv setup-system setup-node lint test run reset clean

help:
	@echo "make setup  - install uv, postgresql, redis-server, wrk, node if missing; uv sync; npm ci (idempotent)"
	@echo "make lint   - ruff check, ruff format --check, mypy (common_core, devstack, the service and its unit fakes)"
	@echo "make test   - setup, lint, then the whole pytest suite"
	@echo "make run    - start the devstack and serve the service locally (scripts/serve_local.sh);"
	@echo "              PostgreSQL keeps its data in .devstack/ between runs"
	@echo "make reset  - delete that data (.devstack/): the next make run starts empty"
	@echo "make clean  - remove caches and build artefacts (keeps .venv and .devstack)"

setup: setup-uv setup-system setup-node
	$(UV) sync --all-packages --frozen

# The AsyncAPI parser the tests validate docs/asyncapi.json with (tools/asyncapi): `npm ci`
# from the committed lock, only when node_modules is missing or older than the lock.
ASYNCAPI_TOOLS := tools/asyncapi
setup-node: $(ASYNCAPI_TOOLS)/node_modules/.package-lock.json

$(ASYNCAPI_TOOLS)/node_modules/.package-lock.json: $(ASYNCAPI_TOOLS)/package.json $(ASYNCAPI_TOOLS)/package-lock.json
	npm ci --prefix $(ASYNCAPI_TOOLS) --no-audit --no-fund --loglevel=error
	touch $@

setup-uv:
	@if command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1; then \
		echo "uv: $$( (command -v uv >/dev/null 2>&1 && uv --version) || python3 -m uv --version)"; \
	else \
		if ! python3 -m pip --version >/dev/null 2>&1; then \
			echo "installing python3-pip"; \
			$(APT_GET) update -q; \
			$(APT_GET) install -y -q --no-install-recommends python3 python3-pip; \
		fi; \
		echo "installing uv with pip"; \
		python3 -m pip install --quiet uv \
			|| python3 -m pip install --quiet --break-system-packages uv; \
		python3 -m uv --version; \
	fi

# Debian package per binary; installed only when the binary is missing.
setup-system:
	@missing=""; \
	if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then \
		missing="$$missing postgresql"; \
	fi; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(APT_GET) update -q; \
		$(APT_GET) install -y -q --no-install-recommends $$missing; \
	else \
		echo "postgresql, redis-server, wrk and npm are installed"; \
	fi

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy common_core/src devstack/src services/class_management_service services/class_management_service/tests/unit/fakes.py

test: setup lint
	$(UV) run pytest

# The venv's python directly, not `uv run` (one process less between the terminal and the
# service). PostgreSQL's data lives in .devstack/postgres-data (ignored by git) and is reused
# by the next run, as compose's named volume is; `make reset` deletes it.
DEVSTACK_DATA := $(CURDIR)/.devstack
run: setup
	PATH="$(CURDIR)/.venv/bin:$$PATH" VIRTUAL_ENV="$(CURDIR)/.venv" \
		HULEEDU_DEVSTACK_POSTGRES_DATA_DIR="$(DEVSTACK_DATA)/postgres-data" \
		python -m huleedu_devstack run -- bash scripts/serve_local.sh

reset:
	rm -rf "$(DEVSTACK_DATA)"

clean:
	rm -rf .pytest_cache .ruff_cache .mypy_cache .hypothesis .coverage build dist
	find . -path ./.venv -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
	find . -path ./.venv -prune -o -type d -name '*.egg-info' -prune -exec rm -rf {} +

# Load test of the Class Management Service as production serves it (docs/performance.md):
# starts its own local stack, serves the service, runs wrk, prints the table (~5 minutes).
# Arguments through ARGS, e.g. `make bench ARGS=--quick`; `make bench ARGS=--scale` adds a
# platform-sized database (1M students, loaded with COPY), paced runs and an outbox backlog.
.PHONY: bench
bench: setup
	$(UV) run python scripts/bench/run_bench.py $(ARGS)
