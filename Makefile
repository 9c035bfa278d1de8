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

# The studies `make reproduce` runs, and where their job folders go.
STUDIES := efficiency real_data contamination breakdown sensitivity step_size convergence penalty
RUNS := results/runs
# Worker processes for a sweep (-1: every core).
JOBS ?= -1
STUDY ?= smoke
# What a sweep's results depend on: change any of these and the study runs again
# (jobs whose record holds the same config hash are skipped, so only changed jobs rerun).
# (A study's own conf/experiment file is its stamp's own prerequisite: editing one study reruns that study.)
LIBRARY := $(shell find robustreg hydra_plugins -name '*.py' -o -name '*.csv') pyproject.toml \
	$(filter-out conf/experiment/%,$(wildcard conf/*.yaml conf/*/*.yaml conf/hydra/*/*.yaml)) experiments/run.py

.PHONY: help install test test-slurm bench clean sweep report reproduce findings

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(INSTALLED) ## Create .venv and install the project with its dev extra (again only when pyproject.toml changed)

test: $(INSTALLED) ## Run the test suite (its files side by side, one worker per core)
	$(PY) -m pytest -n auto --dist loadfile

# Starts a one-node SLURM cluster (tests/cluster/start-slurm.sh: root, Debian packages) and stops it after.
test-slurm: $(INSTALLED) ## Run the SLURM launcher's tests on a one-node cluster started here (root; about 2 minutes)
	ROBUSTREG_SLURM=1 $(PY) -m pytest tests/test_slurm.py

bench: $(INSTALLED) ## Print the speed benchmarks (ratios measured side by side)
	$(PY) experiments/bench.py

sweep: $(INSTALLED) ## Run one study's sweep: make sweep STUDY=contamination [JOBS=2]
	$(PY) experiments/run.py experiment=$(STUDY) hydra.launcher.n_jobs=$(JOBS)

report: $(INSTALLED) ## Write one study's tables, figures and report: make report STUDY=contamination
	$(PY) experiments/report.py $(RUNS)/$(STUDY) --out results/$(STUDY) --index results

# A study's sweep is complete when its sweeper exited 0 (every job done); the
# stamp is written only then.  multirun.yaml is no such proof: Hydra writes it
# before the first job runs.
# Static pattern rules: every stamp is an explicit file, so a missing one (a
# fresh clone) makes its study run again even where a committed report exists.
SWEEPS := $(foreach s,$(STUDIES),$(RUNS)/$(s)/.complete)
NPROC := $(shell nproc 2>/dev/null || echo 2)

$(SWEEPS): $(RUNS)/%/.complete: conf/experiment/%.yaml $(LIBRARY) | $(INSTALLED)
	$(PY) experiments/run.py experiment=$* hydra.launcher.n_jobs=$(JOBS)
	touch $@

# The findings step writes the reports of the studies whose report is missing or older than their
# sweep (every report when a report or findings script changed), side by side, then judges the
# claims: each study's records are read once, for its report and for the pool.
FINDINGS := results/findings.json
STALE = $(if $(filter experiments/%,$?),$(STUDIES),$(foreach s,$(STUDIES),$(if $(shell test 	results/$(s)/report.json -nt $(RUNS)/$(s)/.complete && echo current),,$(s))))

$(FINDINGS): $(SWEEPS) experiments/findings.py experiments/report.py | $(INSTALLED)
	$(PY) experiments/findings.py $(foreach s,$(STUDIES),$(RUNS)/$(s)) --out results $(foreach s,$(STALE),--report $(s))

findings: $(INSTALLED) ## Judge each claim on every default study together: results/README.md
	$(PY) experiments/findings.py $(foreach s,$(STUDIES),$(RUNS)/$(s)) --out results

reproduce: $(INSTALLED) ## Install, run every default study, write its report and the findings page
	@# Two studies' sweeps at a time, then their reports and the findings.
	$(MAKE) --no-print-directory -j$(NPROC) $(FINDINGS)
	@echo "Findings: results/README.md; reports: results/<study>/report.md"

clean: ## Remove the environment, caches and raw job folders (keeps committed results)
	rm -rf $(VENV) results/runs .pytest_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
