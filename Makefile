# diffgem-lsp — the two commands a newcomer runs: `make demo` and `make test`.
# Each creates .venv at the repo root when missing: torch 2.13.0 first, the CPU build (`+cpu`: PyPI has
# no such build, so pip can only take it from PyTorch's CPU wheel index or a local wheel, never a multi-GB
# CUDA build), then the project with its test extras. `make check` = lint + format + types.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# --retries 0: where that index is unreachable (offline mirrors), pip moves on to the local wheel at once.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
CHECKED := diffgem_lsp diffgem_protocol model kernels

.PHONY: demo test test-fast bench eval train-bench nvim check editors-deps clean-venv test-tf-oldest

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --retries 0 --extra-index-url $(TORCH_INDEX) 'torch==2.13.0+cpu'
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
	$(PY) bench/repair_eval.py  # syntax repair rate vs baselines (bench/repair_results.md)
	$(PY) bench/holes_eval.py  # holes filled jointly vs one at a time (bench/holes_results.md)
	$(PY) bench/candidates_bench.py  # K candidates: sequential vs one batched denoise (bench/candidates_results.md)
	$(PY) bench/context_eval.py  # repository-context gain on held-out packages (bench/context_results_validation.md)
	$(PY) bench/cache_eval.py  # typing replay: requests answered from the cache (bench/cache_results.md)
	$(PY) bench/backends.py  # 3 windows on the shared daemon vs 1; vLLM backend overhead (bench/backends.md)
	nice -n 10 $(PY) bench/drafts_bench.py  # streamDrafts on vs off: keystroke -> final ghost (bench/drafts.md)

# Builds model/data (PyPI/npm/Debian sources at the locked versions) on first use; test split, shipped sampler.
eval: $(STAMP)
	$(PY) -m diffgem_model.train.evaluate --split test

# Training tokens/s and MFU for the shipped shape (a smoke figure on CPU; the real one on a GPU).
train-bench: $(STAMP)
	$(PY) -m diffgem_model.train.bench

nvim: $(STAMP)
	bash scripts/nvim.sh $(FILE)

check: $(STAMP)
	$(VENV)/bin/ruff check $(CHECKED) tests
	$(VENV)/bin/ruff format --check $(CHECKED) tests
	$(VENV)/bin/mypy $(CHECKED)

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
