# The two commands a new user needs: `make demo` and `make test`. Everything they need is
# installed here, into .venv (and the emulators' own folders), from the project's own files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-only lint format bench services services-stop clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,gcp,stream,otlp,redis]"
	touch $(STAMP)

install: $(STAMP)

## Run the main job: a little agent run on the embedded SQLite default, printed as events.
demo: $(STAMP)
	$(BIN)/logkit demo

## Install, lint, start the emulators, run the whole suite, stop the emulators (also on failure).
test: $(STAMP) lint browser
	bash scripts/services.sh start
	status=0; $(BIN)/python -m pytest || status=$$?; \
	  bash scripts/services.sh stop; exit $$status

## Debian's chromium, for the test that drives a real EventSource against the stream.
browser:
	bash scripts/install-chromium.sh

## The suite against emulators you started yourself with `make services`.
test-only: $(STAMP)
	$(BIN)/python -m pytest

## Start the Firestore and BigQuery emulators and redis-server; addresses go to .logkit/services.env.
services:
	bash scripts/services.sh start

services-stop:
	bash scripts/services.sh stop

lint: $(STAMP)
	$(BIN)/ruff check logkit codemods tests bench
	$(BIN)/ruff format --check logkit codemods tests bench
	$(BIN)/mypy logkit codemods

format: $(STAMP)
	$(BIN)/ruff format logkit codemods tests bench
	$(BIN)/ruff check --fix logkit codemods tests bench

BENCH_STAMP := $(VENV)/.bench-stamp

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,gcp,stream,otlp,redis,bench]"
	touch $(BENCH_STAMP)

## Benchmarks: one line per figure (the stream, sink, scale and OTel benchmarks use the
## services: redis-server, the emulators and Phoenix).
bench: $(BENCH_STAMP)
	$(BIN)/python bench/import_time.py
	$(BIN)/python bench/emit.py
	$(BIN)/python bench/redaction.py
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/dsar.py
	$(BIN)/python bench/codemod.py
	bash scripts/services.sh start
	status=0; $(BIN)/python bench/stream.py || status=$$?; \
	  $(BIN)/python bench/sinks.py || status=$$?; \
	  $(BIN)/python bench/scale.py || status=$$?; \
	  $(BIN)/python bench/otel.py || status=$$?; \
	  bash scripts/services.sh stop; exit $$status

clean: services-stop
	rm -rf $(VENV) .logkit .pytest_cache .mypy_cache .ruff_cache .hypothesis
