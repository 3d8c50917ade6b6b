# lakehouse-crypto. `make help` lists every target; variables can be overridden: make test PYTEST_ARGS=-x
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
LAKEHOUSE := $(VENV)/bin/lakehouse
PYTEST_ARGS ?=
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

##@ Refinement

GOLD_ARGS ?=
START ?=
END ?=

.PHONY: dbt-run
dbt-run: setup ## Build gold: dbt models + tests for the current stack (GOLD_ARGS=--full-refresh etc.)
	$(LAKEHOUSE) gold $(GOLD_ARGS)

.PHONY: quality
quality: setup ## Run the Great Expectations suites for a window: make quality START=... END=...
	$(LAKEHOUSE) quality --start "$(START)" --end "$(END)"

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
clean: ## Remove local data (.lakehouse/) and caches; keeps .venv
	rm -rf .lakehouse .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +
