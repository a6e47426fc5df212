# `make run` starts Airflow with the example models; `make test` runs lint, types and the tests.
# Both set everything up first: a .venv with the package, and an Airflow home inside the project.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin

export PATH := $(BIN):$(PATH)
export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export NO_MKDOCS_2_WARNING := 1
export AIRFLOW__CORE__PARALLELISM := 4
export AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG := 2
export AIRFLOW__API__WORKERS := 1
export AIRFLOW__API__HOST ?= 127.0.0.1
# `make run PORT=8090`: the UI and API move, and tasks report to the API server on that port
# (Airflow's default execution API URL says port 8080 whatever [api] port is).
PORT ?= 8080
export AIRFLOW__API__PORT := $(PORT)
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL := http://localhost:$(PORT)/execution/
export AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES := 1
export MODEL_STEPS_ASSETS_ROOT := $(CURDIR)/.data/assets
export MODEL_STEPS_DATA_ROOT := $(CURDIR)/.data/data

.PHONY: setup env run run-cluster test lint types system docs docs-build clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: setup env
	mkdir -p $(MODEL_STEPS_ASSETS_ROOT)
	test -f $(MODEL_STEPS_DATA_ROOT)/iris/train.csv || $(BIN)/model-steps example-data
	$(BIN)/airflow standalone

# The same settings for a shell of your own (`. .airflow/env`): the model-steps and airflow
# commands then see this project's Airflow home, DAGs folder and stores, as `make run` does.
env: $(AIRFLOW_HOME)/env

$(AIRFLOW_HOME)/env: Makefile
	mkdir -p $(AIRFLOW_HOME)
	printf '%s\n' "export PATH=$(BIN):\$$PATH" "export AIRFLOW_HOME=$(AIRFLOW_HOME)" \
		"export AIRFLOW__CORE__DAGS_FOLDER=$(AIRFLOW__CORE__DAGS_FOLDER)" \
		"export AIRFLOW__CORE__LOAD_EXAMPLES=False" \
		"export MODEL_STEPS_ASSETS_ROOT=$(MODEL_STEPS_ASSETS_ROOT)" \
		"export MODEL_STEPS_DATA_ROOT=$(MODEL_STEPS_DATA_ROOT)" > $@

# The docker/ topology without containers: PostgreSQL, Redis, a moto S3, Airflow's servers and two
# Celery workers (needs Debian's postgresql and redis-server). The UI is on CLUSTER_API_PORT.
run-cluster: setup
	env -u AIRFLOW_HOME -u MODEL_STEPS_ASSETS_ROOT -u MODEL_STEPS_DATA_ROOT \
		CLUSTER_API_PORT=$${CLUSTER_API_PORT:-8080} $(BIN)/python -m tests.cluster

lint: setup
	$(BIN)/ruff check plugin dags tests bench
	$(BIN)/ruff format --check plugin dags tests bench

types: setup
	$(BIN)/mypy

# The browser tests drive Chromium and the distributed test runs PostgreSQL and Redis: Debian
# packages pip cannot install. Name the missing ones up front instead of failing inside a test
# (.ci/run installs them).
system:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	{ command -v initdb || ls /usr/lib/postgresql/*/bin/initdb; } >/dev/null 2>&1 \
		|| missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		echo "make test also needs these Debian packages, which pip cannot install:$$missing"; \
		echo "install them with: sudo apt-get install -y$$missing   (or run .ci/run, which does)"; \
		exit 1; \
	fi

test: lint types system docs-build
	$(BIN)/pytest

# The docs site (mkdocs.yml, pages in docs/). `make docs` regenerates the field reference page
# from the pydantic models, then builds the site into .site/; `make test` builds it as it is, in
# strict mode, so a broken link, a missing page or a page outside the navigation fails (and a
# test fails when the field reference is stale).
docs: setup
	$(BIN)/python -m model_steps.definition.reference docs/reference/fields.md
	$(MAKE) docs-build

docs-build: setup
	$(BIN)/mkdocs build --strict --site-dir $(CURDIR)/.site

clean:
	rm -rf $(VENV) $(AIRFLOW_HOME) .data .site .mypy_cache .ruff_cache .pytest_cache
