# gfbook: build the book, run the tests. Each target sets up .venv itself (see README.md).
#
#   make book       build the site into _build/html from the outputs stored in notebooks/*.ipynb
#   make test       lint (ruff, import contracts), check .py/.ipynb pairs, run the library's tests, run every
#                   chapter (GF_MODE=fast)
#   make lint       only ruff, the import contracts (lint-imports; see pyproject.toml) and the workflows' schema
#   make book-exec  re-execute every chapter into its .ipynb (GF_MODE from the environment), then build
#   make book-check after make book: load every page offline in headless Chromium
#   make bench      run every benchmark of bench/ at a small size, then write bench/results/summary.md
#   make gpu-check  on a GPU machine: the CUDA tests, every preset, the shipped models and the benchmarks in about
#                   8 minutes (scripts/gpu_check.py); results in bench/results/gpu_check_<card>.json
#   make colab-check every chapter executed from an empty folder in a fresh venv holding only Colab's packages
#   make venv       only create/update .venv
#   make clean      remove build outputs;  make distclean  also removes .venv

SHELL := /bin/bash

# Python used to create the virtual environment: python3.11 if present, else python3.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp
# torch release installed first when torch is missing: this exact pin picks the local CPU wheel where one exists;
# a newer release from the index would pull a multi-GB CUDA build. requirements.txt bounds torch to match.
TORCH_PIN ?= torch==2.13.0
# per-cell limit (seconds) when the tests run the chapters; NBVAL_FLAGS: more pytest options for them
NBVAL_CELL_TIMEOUT ?= 900
NBVAL_FLAGS ?=
# per-cell limit (seconds) for book-exec; -1 means none (full mode trains models)
EXEC_CELL_TIMEOUT ?= -1
JB_FLAGS ?= -W -n --keep-going

NOTEBOOK_SOURCES := $(sort $(wildcard notebooks/[0-9]*.py))

.PHONY: all venv lint test test-lib test-notebooks check-pairs book book-exec clean distclean

all: book

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: need python3.11 or python3 on PATH" >&2; exit 1; }
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --upgrade pip
	@$(PY) -c "import torch" 2>/dev/null || { echo "installing $(TORCH_PIN) first"; $(PY) -m pip install "$(TORCH_PIN)"; }
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install -e . --no-deps
	$(PY) -c "import torch; print('torch', torch.__version__)"
	@touch $(STAMP)

# ruff (pyproject.toml [tool.ruff]), the layering of the house (pyproject.toml [tool.importlinter]) and the GitHub
# workflows against GitHub's workflow schema (check-jsonschema's vendored copy: offline)
lint: venv
	$(VENV)/bin/ruff check gfcore tests scripts bench notebooks
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

check-pairs: venv
	GF_MODE=fast MPLBACKEND=Agg $(PY) scripts/check_pairs.py

# The tests and the chapters run in TEST_JOBS processes at once (pytest-xdist; 0 or 1: one process), each with
# TEST_THREADS threads: on a 2-core machine two one-thread processes beat one two-thread process, and
# oversubscribed threads slow PyTorch's small iterative kernels down many times over.
TEST_JOBS ?= 2
TEST_THREADS ?= $(if $(filter 0 1,$(TEST_JOBS)),,1)
XDIST := $(if $(filter 0 1,$(TEST_JOBS)),,-n $(TEST_JOBS))
THREADS_ENV := $(if $(TEST_THREADS),OMP_NUM_THREADS=$(TEST_THREADS) MKL_NUM_THREADS=$(TEST_THREADS),)

test-lib: venv
	$(THREADS_ENV) GF_MODE=fast MPLBACKEND=Agg $(PY) -m pytest $(XDIST) tests

# The kernel keeps matplotlib's inline backend (MPLBACKEND unset), as in Jupyter. With several processes every
# chapter stays whole in one of them (--dist loadscope: its cells in order, in one kernel).
test-notebooks: venv
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
	  set -x; env -u MPLBACKEND $(THREADS_ENV) GF_MODE=fast $(PY) -m pytest --nbval-lax --nbval-current-env \
	    --nbval-cell-timeout=$(NBVAL_CELL_TIMEOUT) -p no:cacheprovider $(if $(XDIST),$(XDIST) --dist loadscope,) \
	    --durations=12 $(NBVAL_FLAGS) notebooks/*.ipynb; \
	else echo "no notebooks/*.ipynb to run"; fi

test: venv
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory check-pairs
	$(MAKE) --no-print-directory test-lib
	$(MAKE) --no-print-directory test-notebooks

# Builds from the outputs stored in the .ipynb files (execute_notebooks: "off" in _config.yml);
# -W turns every Sphinx warning into an error, --keep-going reports them all first.
book: venv
	$(VENV)/bin/jupyter-book build . $(JB_FLAGS)
	@echo "open _build/html/index.html"

# After `make book`: serve _build/html on 127.0.0.1 and load every page in headless Chromium with no network
# (scripts/check_book.py); fails on a console error, a failed or outside request, untypeset math or a broken link,
# and keeps screenshots in _build/screenshots. Needs Chromium (Debian: apt-get install chromium). Without it the
# check fails, or with BOOK_CHECK_ALLOW_SKIP=1 (never under CI=true) says SKIPPED and why.
.PHONY: book-check
book-check: venv
	@$(PY) scripts/check_book.py; rc=$$?; \
	if [ $$rc -eq 77 ]; then echo "book-check: SKIPPED, the pages were not checked (reason above)"; exit 0; fi; \
	exit $$rc

# For each chapter: refresh the .ipynb's inputs from the .py (keeping ids), execute it in place with the
# venv's kernel (GF_MODE as set in the environment), then build the book from the stored outputs.
book-exec: venv
	@test -n "$(NOTEBOOK_SOURCES)" || { echo "no notebooks/NN_*.py found" >&2; exit 1; }
	@echo "GF_MODE=$${GF_MODE:-<unset: full on CUDA, else fast>}"
	@set -e; for f in $(NOTEBOOK_SOURCES); do \
	  nb="$${f%.py}.ipynb"; \
	  echo "== $$f -> $$nb"; \
	  $(VENV)/bin/jupytext --to ipynb --update "$$f"; \
	  env -u MPLBACKEND $(VENV)/bin/jupyter-execute --inplace --kernel_name=python3 \
	    --timeout=$(EXEC_CELL_TIMEOUT) "$$nb"; \
	done
	$(PY) scripts/check_pairs.py
	$(MAKE) --no-print-directory book

# Every benchmark of bench/ at a small size on this machine's device (CUDA when present, else CPU; a few minutes on
# an idle CPU), each writing its JSON into $(BENCH_OUT), then bench/summary.py builds bench/results/summary.md: one
# table, every row a speed ratio against a baseline measured in the same run, with device, torch version and date.
BENCH_OUT ?= bench/results/make
BENCH_FIELD ?= --quick
BENCH_TRAIN_STEP ?= --quick
BENCH_SAMPLE ?= --quick
BENCH_SURFACE ?= --resolutions 64
BENCH_METRICS ?= --quick --sets 6 --points 1024 --error-pairs 4
BENCH_NOTE ?=
.PHONY: bench
bench: venv
	@set -e; dev=$$($(PY) -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')"); \
	mkdir -p $(BENCH_OUT); \
	for b in "field $(BENCH_FIELD)" "train_step $(BENCH_TRAIN_STEP)" "sample $(BENCH_SAMPLE)" \
	         "surface $(BENCH_SURFACE)" "metrics $(BENCH_METRICS)"; do \
	  set -- $$b; name=$$1; shift; \
	  echo "== bench/$$name.py $$* --device $$dev"; \
	  $(PY) bench/$$name.py "$$@" --device $$dev --out $(BENCH_OUT)/$${name}_$$dev.json; \
	done
	$(PY) bench/summary.py --results $(BENCH_OUT) --out bench/results/summary.md --note "$(BENCH_NOTE)"

# One prepared script for a GPU machine (exits 2 without CUDA; `--dry-run` runs the same steps on the CPU, tested by
# tests/test_gpu_check.py). Commit bench/results/gpu_check_<card>.json and the benchmarks' JSON it writes.
.PHONY: gpu-check
gpu-check: venv
	$(PY) scripts/gpu_check.py $(GPU_CHECK_FLAGS)

# Every chapter from an empty folder in a fresh venv with only Colab's preinstalled packages, its install cell
# pointed at this clone (scripts/colab_check.py; about half an hour on a 2-core CPU; not part of CI).
.PHONY: colab-check
colab-check: venv
	$(PY) scripts/colab_check.py $(COLAB_CHECK_FLAGS)

clean:
	rm -rf _build .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info
