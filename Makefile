# flightpipe — one command to start everything, one to test everything.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(shell python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/uv
endif
VENV := .venv
FP := $(VENV)/bin/flightpipe
PYTEST_ARGS ?=

.PHONY: help up live down status clean psql password test lint unit chaos cluster-test bench docs video demo

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	@echo "Installing uv (Python package manager) from PyPI ..."
	python3 -m pip install --quiet --disable-pip-version-check uv

$(VENV)/.synced: pyproject.toml tools/pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet --compile-bytecode
	@touch $@

up: $(VENV)/.synced ## Install what is missing, start Kafka, PostgreSQL, Dask, Airflow and the first pipeline cycle
	@$(FP) up

live: $(VENV)/.synced ## Like up, in live mode: paced producers, always-on consumers, a load per landed file
	@FLIGHTPIPE_MODE=live $(FP) up

down: $(VENV)/.synced ## Stop every service (data is kept)
	@$(FP) down

status: $(VENV)/.synced ## Show each service and a real health probe of it
	@$(FP) status

clean: $(VENV)/.synced ## Stop everything and delete all local state
	@$(FP) clean --yes

psql: $(VENV)/.synced ## Open a psql shell on the warehouse
	@$(FP) psql

password: $(VENV)/.synced ## Print the Airflow admin password
	@$(FP) password

LINTED := src tests dags bench tools

lint: $(VENV)/.synced ## ruff (lint + format check), mypy and deptry (declared = imported)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy src tools/src
	$(VENV)/bin/deptry .
	cd tools && ../$(VENV)/bin/deptry src

unit: $(VENV)/.synced ## Tests that need no services, Airflow or secrets (< 1 min)
	$(VENV)/bin/pytest tests/unit -p no:cacheprovider $(PYTEST_ARGS)

chaos: $(VENV)/.synced ## Fault tests: kill a broker, the postmaster, a Dask worker, ... mid-run
	$(VENV)/bin/pytest tests/faults -m "faults or cluster" -p no:cacheprovider $(PYTEST_ARGS)

cluster-test: $(VENV)/.synced ## A whole year through Airflow across 10 simulated hosts (network namespaces; root)
	$(VENV)/bin/pytest tests/multihost -m multihost -p no:cacheprovider $(PYTEST_ARGS)

test: lint ## Lint, type-check and run all tests (starts the stack when it is not running)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

include mk/docs.mk
include mk/bench.mk
include mk/video.mk
