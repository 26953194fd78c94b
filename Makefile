# diffgem-lsp — the two commands a newcomer runs: `make demo` and `make test`.
# Each creates .venv at the repo root when missing: torch 2.13.0 first (the CPU wheel on local disk;
# an unpinned torch would pull a multi-GB CUDA build), then the project with its test extras.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-fast bench eval nvim check editors-deps clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,train]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP) editors-deps
	$(PY) -m pytest -q -ra

test-fast: $(STAMP)
	$(PY) -m pytest -q -ra -m "not editor"

bench: $(STAMP)
	$(PY) bench/run.py

eval: $(STAMP)
	$(PY) -m diffgem_model.train.evaluate

nvim: $(STAMP)
	bash scripts/nvim.sh

check: $(STAMP)
	$(VENV)/bin/ruff check diffgem_lsp model kernels tests
	$(VENV)/bin/mypy diffgem_lsp

editors-deps: $(STAMP)
	@if [ -f scripts/install-editor-deps.sh ]; then bash scripts/install-editor-deps.sh; fi

clean-venv:
	rm -rf $(VENV)
