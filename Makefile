# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make book   - create .venv, install the pinned set, build the book with execution
#   make test   - create or reuse .venv, run unit tests, doctests and notebook tests
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# One BLAS/OpenMP thread: on a 2-core machine small matmuls run up to 40x slower with two.
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export OPENBLAS_NUM_THREADS := 1
export PYTHONHASHSEED := 0

.PHONY: help venv book test test-unit bench clean strip set-repo

help:
	@echo "make book   build the book with execution into _build/html"
	@echo "make test   run unit tests, doctests and notebook tests (quick mode)"
	@echo "make bench  run the CPU benchmarks (results in benchmarks/results/)"
	@echo "make strip  remove outputs from the notebooks"
	@echo "make clean  remove _build and caches (keeps .venv)"
	@echo "make set-repo URL=https://github.com/ORG/REPO  change the repository address everywhere"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when the pinned set or the package metadata change. Requirements and the
# package in ONE pip command, so that pip never picks an unpinned (CUDA) torch.
$(STAMP): requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

venv: $(STAMP)

book: $(STAMP)
	rm -rf _build/html
	$(BIN)/jupyter-book build -W -n --keep-going .
	@echo "The book is in _build/html: open file://$(CURDIR)/_build/html/index.html"

# Unit tests, doctests of the package, and every notebook under nbval in quick mode.
test: $(STAMP)
	PNC_QUICK=1 $(BIN)/python -m pytest -q -p no:cacheprovider \
		tests pncutils book --doctest-modules --nbval-lax --nbval-current-env

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests pncutils --doctest-modules

bench: $(STAMP)
	$(BIN)/python benchmarks/metrics_bench.py --out benchmarks/results

strip: $(STAMP)
	$(BIN)/nbstripout book/*.ipynb

set-repo:
	@test -n "$(URL)" || { echo "usage: make set-repo URL=https://github.com/ORG/REPO"; exit 2; }
	$(PYTHON) tools/set_repo.py "$(URL)"

clean:
	rm -rf _build .pytest_cache
	find . -name __pycache__ -not -path "./.venv/*" -prune -exec rm -rf {} +
