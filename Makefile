# diffgem-lsp — the two commands a newcomer runs: `make demo` and `make test`.
# Each creates .venv at the repo root when missing: torch 2.13.0 first (the CPU wheel on local disk;
# an unpinned torch would pull a multi-GB CUDA build), then the project with its test extras.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-fast bench eval train-bench nvim check editors-deps clean-venv test-tf-oldest

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,train]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP) editors-deps test-tf-oldest
	$(PY) -m pytest -q -ra

test-fast: $(STAMP)
	$(PY) -m pytest -q -ra -m "not editor"

bench: $(STAMP)
	$(PY) bench/run.py
	$(PY) bench/soak.py  # typing soak: every request answered once, RSS (bench/soak.json)

# Builds model/data (PyPI/npm/Debian sources at the locked versions) on first use; test split, shipped sampler.
eval: $(STAMP)
	$(PY) -m diffgem_model.train.evaluate --split test

# Training tokens/s and MFU for the shipped shape (a smoke figure on CPU; the real one on a GPU).
train-bench: $(STAMP)
	$(PY) -m diffgem_model.train.bench

nvim: $(STAMP)
	bash scripts/nvim.sh $(FILE)

check: $(STAMP)
	$(VENV)/bin/ruff check diffgem_lsp model kernels tests
	$(VENV)/bin/mypy diffgem_lsp

editors-deps: $(STAMP)
	@if [ -f scripts/install-editor-deps.sh ]; then bash scripts/install-editor-deps.sh; fi

# The engine's equivalence tests (own sampler == generate(), cached == uncached) on the oldest transformers
# we support; `make test` runs them on the newest (what a fresh .venv resolves). The second venv layers just
# transformers (and the huggingface_hub it needs) over .venv's site-packages, so torch is not installed twice.
TF_OLDEST := 5.17.0
VENV_OLDEST := .venv-tf-oldest
OLDEST_STAMP := $(VENV_OLDEST)/.installed-$(TF_OLDEST)

$(OLDEST_STAMP): $(STAMP)
	rm -rf $(VENV_OLDEST)
	$(PYTHON) -m venv $(VENV_OLDEST)
	echo "import site; site.addsitedir('$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')')" \
		> "$$($(VENV_OLDEST)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/_diffgem_base.pth"
	$(VENV_OLDEST)/bin/python -m pip install -q transformers==$(TF_OLDEST) 'huggingface-hub<2'
	touch $(OLDEST_STAMP)

test-tf-oldest: $(OLDEST_STAMP)
	DIFFGEM_EXPECT_TRANSFORMERS=$(TF_OLDEST) $(VENV_OLDEST)/bin/python -m pytest -q -ra -m tf_equivalence tests/unit

clean-venv:
	rm -rf $(VENV) $(VENV_OLDEST)
