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

##@ Refinement

START ?=
END ?=
ENGINE ?=

.PHONY: silver
silver: setup ## Refine bronze ingested in [START, END) into silver (ISO times, UTC): make silver START=2026-01-01T10:00 END=2026-01-01T11:00 [ENGINE=duckdb|spark]
	@test -n "$(START)" -a -n "$(END)" || { echo "usage: make silver START=<ISO time> END=<ISO time> [ENGINE=duckdb|spark]" >&2; exit 2; }
	$(LAKEHOUSE) silver --start '$(START)' --end '$(END)' $(if $(ENGINE),--engine $(ENGINE))
