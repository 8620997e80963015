# Two commands on a fresh machine: `make demo` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[cpu,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m actorflow.demo

lint: $(STAMP)
	$(BIN)/ruff check actorflow tests benchmarks examples graphs
	$(BIN)/ruff format --check actorflow tests benchmarks examples graphs

typecheck: $(STAMP)
	$(BIN)/mypy --strict actorflow

pytest: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/hops.py
	$(BIN)/python benchmarks/backpressure.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
