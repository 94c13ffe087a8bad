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
# instructor-only environment for the autograded assignments (otter-grader); never the book's
ASSIGN_VENV := .venv-assign
ASSIGN_STAMP := $(ASSIGN_VENV)/.installed
# MathJax, require.js and the widget manager, installed from npm at build time (not committed)
VENDOR_STAMP := _vendor/.installed
# developer tools of `make test` (ruff, workflow checks, build/twine) and cffconvert, each in
# its own venv: cffconvert pins jsonschema<4, and neither belongs in the book's environment
TOOLS_VENV := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
CFF_VENV := .venv-cff
CFF_STAMP := $(CFF_VENV)/.installed

# TORCH=cpu: take torch from PyTorch's CPU wheel index (about 200 MB) instead of PyPI's
# default Linux wheel, the CUDA build (several GB with its NVIDIA libraries). The default
# (TORCH=default) is unchanged; on the development machines it takes the CPU file on disk.
TORCH ?= default
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
PIP_TORCH := $(if $(filter cpu,$(TORCH)),--extra-index-url $(TORCH_CPU_INDEX),)

# One BLAS/OpenMP thread: on a 2-core machine small matmuls run up to 40x slower with two.
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export OPENBLAS_NUM_THREADS := 1
export PYTHONHASHSEED := 0
export PNC_PROGRESS := 0

.PHONY: help venv lint book book-student assignments test test-unit bench clean strip set-repo vendor \
	system-book system-test

# What the book and its tests need from outside Python (tools/ensure_system.py): FashionMNIST
# (found, else downloaded with checksums, else Debian's package as root) and, for the tests,
# a Chromium. The `pre` stage runs with the system Python BEFORE the venv is built, so a
# machine that can get neither stops in seconds with one message; `post` downloads with the
# venv's pncutils (pooch) or tries Playwright's browser. Listed first among the prerequisites
# of `book` and `test`, so it runs first (make builds prerequisites in order).
system-book:
	$(PYTHON) tools/ensure_system.py pre --data

system-test:
	$(PYTHON) tools/ensure_system.py pre --data --browser

help:
	@echo "make book   build the book with execution into _build/html"
	@echo "make test   run unit tests, doctests and notebook tests (quick mode)"
	@echo "make assignments   student notebooks and autograder zips (instructor env .venv-assign)"
	@echo "make book-student  the book without the exercises' solutions, in _build/student"
	@echo "make lint   ruff check (also run by make test)"
	@echo "TORCH=cpu   (with book/test/venv) install torch from PyTorch's CPU wheel index"
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
	$(BIN)/python -m pip install --quiet $(PIP_TORCH) -r requirements.txt -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

venv: $(STAMP)

$(TOOLS_STAMP): tools/requirements-dev.txt
	test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet -r tools/requirements-dev.txt
	touch $(TOOLS_STAMP)

$(CFF_STAMP): tools/requirements-cff.txt
	test -x $(CFF_VENV)/bin/python || $(PYTHON) -m venv $(CFF_VENV)
	$(CFF_VENV)/bin/python -m pip install --quiet -r tools/requirements-cff.txt
	touch $(CFF_STAMP)

lint: $(TOOLS_STAMP)
	$(TOOLS_VENV)/bin/ruff check .

$(VENDOR_STAMP): tools/vendor_assets.sh tools/widgets_setup.js
	bash tools/vendor_assets.sh _vendor
	touch $(VENDOR_STAMP)

vendor: $(VENDOR_STAMP)

# The instructor environment sees the book's packages through a .pth file (site.addsitedir of
# .venv's site-packages, .pth files included) and installs only otter-grader and what it adds:
# 35 s instead of a second 1.8 GB copy; otter never enters the book's .venv.
$(ASSIGN_STAMP): assignments/requirements.txt requirements.txt pyproject.toml $(STAMP)
	test -x $(ASSIGN_VENV)/bin/python || $(PYTHON) -m venv $(ASSIGN_VENV)
	$(BIN)/python -c "import site; print(f'import site; site.addsitedir({site.getsitepackages()[0]!r})')" \
		> $$($(ASSIGN_VENV)/bin/python -c "import site; print(site.getsitepackages()[0])")/_book_env.pth
	$(ASSIGN_VENV)/bin/python -m pip install --quiet -r assignments/requirements.txt -e .
	touch $(ASSIGN_STAMP)

# student notebooks and autograder packages of every assignment, into assignments/dist/
assignments: $(ASSIGN_STAMP)
	$(ASSIGN_VENV)/bin/python tools/make_assignments.py

book-student: system-book $(STAMP) $(VENDOR_STAMP)
	$(BIN)/python tools/ensure_system.py post --data
	bash tools/build_student_book.sh

book: system-book $(STAMP) $(VENDOR_STAMP)
	$(BIN)/python tools/ensure_system.py post --data
	rm -rf _build/html
	$(BIN)/jupyter-book build -W -n --keep-going .
	@echo "The book is in _build/html: open file://$(CURDIR)/_build/html/index.html"

# Unit tests, doctests of the package, every notebook under nbval in quick mode, the book
# build and its browser test, the Colab-like runs and the assignments: two workers, one
# file per worker at a time (nbval needs a notebook's cells on one worker).
test: system-test $(STAMP) $(VENDOR_STAMP) $(ASSIGN_STAMP) $(TOOLS_STAMP) $(CFF_STAMP)
	$(BIN)/python tools/ensure_system.py post --data --browser
	$(TOOLS_VENV)/bin/ruff check .
	PNC_QUICK=1 $(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile \
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
	rm -rf _build .pytest_cache assignments/dist
	find . -name __pycache__ -not -path "./.venv/*" -prune -exec rm -rf {} +
