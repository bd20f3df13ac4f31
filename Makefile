# Two commands for a newcomer: `make demo` and `make test`.
# Both create .venv (once) and install evmeta with its test extra into it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow lint install clean-venv bench

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/evmeta run analyses/example.toml

test: $(STAMP)
	$(BIN)/ruff check evmeta tests extraction benchmarks
	$(BIN)/python -m pytest -q

# MCMC tests (NUTS against exact quadrature, coverage simulation); about a minute.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check evmeta tests extraction benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_harmonize.py
	$(BIN)/python benchmarks/bench_frequentist.py
	$(BIN)/python benchmarks/bench_bayes.py
	$(BIN)/python benchmarks/bench_dedupe.py
	$(BIN)/python benchmarks/bench_multiverse.py

clean-venv:
	rm -rf $(VENV)
