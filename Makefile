# The README's two commands are `make demo` and `make test`. Everything installs from uv.lock.
SHELL := /bin/bash
UV_VERSION := 0.13.9
PYTHON ?= $(shell command -v python3.11 || command -v python3)
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))

.PHONY: bench browser readme-screenshot setup setup-spark demo test test-unit test-integration test-e2e lint docs clean serve

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# --inexact: a default setup keeps the Spark extra that `make test` installed (it removes nothing)
$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --compile-bytecode --inexact
	touch $@

$(VENV)/.synced-spark: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --compile-bytecode --inexact --extra spark
	touch $@

## setup: create .venv from uv.lock (every version pinned there)
setup: $(VENV)/.synced

## setup-spark: setup with the Spark engine's extra (pyspark, dbt-spark), also from uv.lock
setup-spark: $(VENV)/.synced-spark

## demo: set up, generate the demo sample and run the whole pipeline into ./warehouse
demo: setup
	$(VENV)/bin/liucun demo --warehouse warehouse

# the report tests open pages in the system's headless Chromium (Debian's chromium package)
CHROMIUM := $(or $(LIUCUN_CHROMIUM),$(shell command -v chromium 2>/dev/null))
browser:
ifeq ($(CHROMIUM),)
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium for the report tests"; \
	  (apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)) \
	  && echo "chromium: $$(command -v chromium)"; \
	else \
	  echo "the report tests need headless Chromium: run 'sudo apt-get install chromium' (or set LIUCUN_CHROMIUM)" >&2; \
	  exit 1; \
	fi
endif

# `make test` runs in two pytest-xdist workers: one test module (all Spark modules as one) per worker at a time
TEST_WORKERS ?= 2

## test: every test tier (unit, integration incl. dbt on a throwaway PostgreSQL, end-to-end)
test: setup-spark browser
	$(VENV)/bin/python -m pytest tests -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder --durations=15

test-unit: setup-spark
	$(VENV)/bin/python -m pytest tests/unit

test-integration: setup-spark
	$(VENV)/bin/python -m pytest tests/integration

test-e2e: setup-spark browser
	$(VENV)/bin/python -m pytest tests/e2e

## bench: liucun runs (tiny input, demo size, 10x on DuckDB and Spark; 50x full refresh only) beside a raw DuckDB scan and a pandas notebook, as ratios (slow)
bench: setup-spark
	$(VENV)/bin/python -m tests.benchmarks.bench_run --scale 1 --scale 10 --large 50

## readme-screenshot: docs/report.png, the top of ./warehouse's current report as headless Chromium draws it (after make demo)
readme-screenshot: setup-spark browser
	$(VENV)/bin/python -m tests.support.readme_screenshot warehouse docs/report.png

lint: setup
	$(VENV)/bin/ruff check flows expectations tests

## docs: build the dbt docs site (definitions, glossary, lineage) into dbt_project/target
docs: setup
	cd dbt_project && LIUCUN_DUCKDB_PATH=$(abspath warehouse/docs.duckdb) ../$(VENV)/bin/dbt docs generate --profiles-dir .

## serve: local Prefect server + worker running the scheduled deployments of flows/prefect.yaml (Ctrl-C stops)
serve: setup
	$(VENV)/bin/liucun serve

clean:
	-[ -x $(VENV)/bin/liucun ] && $(VENV)/bin/liucun server stop
	rm -rf warehouse dbt_project/target dbt_project/logs .pytest_cache
