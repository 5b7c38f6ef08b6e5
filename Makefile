# Setup is part of every target: a fresh machine needs only Python 3.11 and make.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup test demo benchmark table1 clean

setup: $(STAMP)

# The pinned stack, then this checkout as the editable package rl_cyclegan (its console scripts
# rl-cyclegan-*; tools/*.py import it): no dependencies of its own, no build env, no network.
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n $(or $(JOBS),2) --dist worksteal tests

demo: $(STAMP)
	$(PY) tools/demo.py --root_dir=$(or $(ROOT_DIR),runs/demo)

benchmark: $(STAMP)
	$(PY) tools/benchmark.py

# Paper Table 1 in the pseudo-real world (docs/table1.md): resumable stages, many hours on 2
# cores. ROWS=rl_cyclegan_seed0,cyclegan_seed0 runs a subset; WORK_DIR holds the runs.
table1: $(STAMP)
	$(PY) tools/table1.py --rows=$(or $(ROWS),all) --work_dir=$(or $(WORK_DIR),../runs/table1)

clean:
	rm -rf $(VENV)
