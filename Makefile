# The two commands a new user needs: `make demo` and `make test`. Everything they need is
# installed here, into .venv, from the project's own files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Run the main job: a little agent run on the embedded default, printed as canonical events.
demo: $(STAMP)
	$(BIN)/logkit demo

## Install, lint, and run the whole test suite.
test: $(STAMP) lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check logkit codemods tests bench
	$(BIN)/ruff format --check logkit codemods tests bench
	$(BIN)/mypy logkit codemods

format: $(STAMP)
	$(BIN)/ruff format logkit codemods tests bench
	$(BIN)/ruff check --fix logkit codemods tests bench

## Benchmarks: one line per figure.
bench: $(STAMP)
	$(BIN)/python bench/import_time.py
	$(BIN)/python bench/emit.py

clean:
	rm -rf $(VENV) .logkit .pytest_cache .mypy_cache .ruff_cache .hypothesis
