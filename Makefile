# The two commands a new machine needs: `make demo` and `make test`. Both set everything up.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# Re-install whenever the pinned dependencies change.
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: setup services demo test lint typecheck unit bench bench-quick docs clean

$(STAMP): pyproject.toml scripts/setup.sh
	@scripts/setup.sh
	@rm -f $(VENV)/.installed-*
	@touch $@

# Python packages are reinstalled only when pyproject.toml changes; the system and npm parts
# check themselves each time (both are quick when nothing is missing).
setup: $(STAMP)
	@scripts/setup-system.sh
	@scripts/setup-web.sh

services:
	@scripts/ensure-postgres.sh

## make demo                 build a 20,000-person county and serve the portal
## make demo ARGS=--no-serve build it and stop (any `candour demo` option can go in ARGS)
demo: setup
	$(BIN)/candour demo $(ARGS)

## make test                 ruff, mypy and the whole test suite (slow and browser tests too)
test: setup services lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check src tests benchmarks scripts

typecheck: setup
	$(BIN)/mypy

## make unit                 the fast tests only (no slow, Spark or browser tests)
unit: setup services
	$(BIN)/pytest -m "not slow and not spark and not e2e" $(PYTEST_ARGS)

## make bench                every benchmark at full scale; rewrites docs/benchmarks.md
bench: setup services
	$(BIN)/python -m benchmarks.run $(ARGS)

bench-quick: setup services
	$(BIN)/python -m benchmarks.run --quick $(ARGS)

## make docs                 regenerate docs/cli.md from the commands' --help
docs: setup
	$(BIN)/python scripts/cli_reference.py > docs/cli.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache candour-demo
