# lakehouse-crypto. `make help` lists every target; variables can be overridden: make test PYTEST_ARGS=-x
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
LAKEHOUSE := $(VENV)/bin/lakehouse
PYTEST_ARGS ?=
DEMO_ARGS ?=
BENCH_ARGS ?=
STAMP := $(VENV)/.installed

##@ Embedded stack (no Docker)

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^##@/ {printf "\n%s\n", substr($$0, 5)} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: setup
setup: $(STAMP) ## Create .venv and install everything (pip packages, Debian packages via apt-get); idempotent

$(STAMP): pyproject.toml infrastructure/scripts/install-system-packages.sh
	bash infrastructure/scripts/install-system-packages.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

.PHONY: up
up: setup ## Start the embedded stack (Kafka broker, SeaweedFS S3 + Iceberg catalog, Prometheus); idempotent
	$(LAKEHOUSE) up

.PHONY: down
down: ## Stop the embedded stack's services (data is kept)
	$(LAKEHOUSE) down

.PHONY: status
status: ## Show each embedded service (healthy / down) and its URL
	$(LAKEHOUSE) status

.PHONY: demo
demo: setup ## Stack up, bootstrap, ingestion + bronze writer with a live summary until Ctrl-C (DEMO_ARGS="--duration 60")
	$(LAKEHOUSE) demo $(DEMO_ARGS)

.PHONY: bench-bronze
bench-bronze: setup ## Benchmark Kafka -> bronze against raw consume and raw append baselines (own stack)
	$(PY) bench/bronze.py $(BENCH_ARGS)

##@ Development

.PHONY: test
test: setup ## Run the whole suite: unit, integration (real local services) and e2e
	$(VENV)/bin/pytest $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: setup ## Run only the fast unit tests
	$(VENV)/bin/pytest -m unit $(PYTEST_ARGS)

.PHONY: lint
lint: setup ## Ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

.PHONY: clean
clean: ## Stop the embedded stack if it runs, then remove local data (.lakehouse/) and caches; keeps .venv
	if [ -x $(LAKEHOUSE) ] && [ -d .lakehouse/run ]; then $(LAKEHOUSE) down; fi
	rm -rf .lakehouse .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +
