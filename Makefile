# robustreg: reproduce the studies, run the tests and the benchmarks.
# `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --warn-undefined-variables --no-builtin-rules

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed-stamp

.PHONY: help install test bench clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(INSTALLED) ## Create .venv and install the project with its dev extra (again only when pyproject.toml changed)

test: $(INSTALLED) ## Run the test suite
	$(PY) -m pytest

bench: $(INSTALLED) ## Print the speed benchmarks (ratios measured side by side)
	$(PY) experiments/bench.py

clean: ## Remove the environment, caches and raw job folders (keeps committed results)
	rm -rf $(VENV) results/runs .pytest_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
