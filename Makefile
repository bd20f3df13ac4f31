# Two commands for a newcomer: `make demo` and `make test`.
# Both create .venv (once) and install evmeta with every extra and the test tools into it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: docs demo test test-fast test-fresh test-slow lint install clean-venv bench

$(STAMP): pyproject.toml
	@echo "Installing evmeta and its dependencies into .venv (about 2 minutes, once)..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[all,test,docs]"
	@touch $(STAMP)
	@echo "Installed: $$($(BIN)/evmeta --version)"

install: $(STAMP)

demo: $(STAMP)
	@echo "Running the bundled example analysis (analyses/example.toml) -> reports/example/ ..."
	$(BIN)/evmeta run analyses/example.toml

test: $(STAMP)
	@echo "Lint (ruff), types (mypy, scope in pyproject.toml), then the test suite (fast tests; MCMC tests: make test-slow)..."
	$(BIN)/ruff check evmeta tests extraction benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# The suite as a stranger's machine runs it: empty HOME and caches (ArviZ's daily stamp,
# matplotlib's font cache, PyTensor's compile cache all start from nothing).
test-fresh: $(STAMP)
	@fresh=$$(mktemp -d) && echo "Test suite with an empty HOME and caches ($$fresh)..." && \
	HOME=$$fresh XDG_CACHE_HOME= MPLCONFIGDIR= PYTENSOR_FLAGS=compiledir=$$fresh/pytensor \
	$(MAKE) --no-print-directory test; status=$$?; rm -rf $$fresh; exit $$status

# The inner development loop: fast unit tests, no end-to-end runs (tests/conftest.py lists
# those); goal under 60 s on 2 cores. `make test` still runs everything.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "fast and not slow"

# MCMC tests (NUTS against exact quadrature, coverage simulation); about a minute.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# The documentation site (guides, spec reference, API from the docstrings); warnings are errors.
docs: $(STAMP)
	rm -rf docs/_build docs/generated
	$(BIN)/python docs/_ext/api_page.py
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html
	@echo "Documentation: docs/_build/html/index.html"

lint: $(STAMP)
	$(BIN)/ruff check evmeta tests extraction benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_harmonize.py
	$(BIN)/python benchmarks/bench_frequentist.py
	$(BIN)/python benchmarks/bench_bayes.py
	$(BIN)/python benchmarks/bench_dedupe.py
	$(BIN)/python benchmarks/bench_multiverse.py
	$(BIN)/python benchmarks/bench_null.py

clean-venv:
	rm -rf $(VENV)
