# Two commands on a fresh machine: `make demo` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	@# opencv-python needs libGL and glib from the system; install them where we can
	@ldconfig -p 2>/dev/null | grep -q 'libGL.so.1' || { [ "$$(id -u)" = 0 ] \
	  && command -v apt-get >/dev/null && apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgl1 libglib2.0-0; } \
	  || echo "warning: OpenCV needs libGL and glib: apt-get install libgl1 libglib2.0-0"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[cpu,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m actorflow.demo

lint: $(STAMP)
	$(BIN)/ruff check actorflow tests benchmarks examples graphs fuzz
	$(BIN)/ruff format --check actorflow tests benchmarks examples graphs fuzz

typecheck: $(STAMP)
	$(BIN)/mypy --strict actorflow

pytest: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck pytest

bench: $(STAMP)  # minutes; every script prints JSON against a baseline from the same run
	$(BIN)/python benchmarks/hops.py
	$(BIN)/python benchmarks/backpressure.py
	$(BIN)/python benchmarks/stop.py
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/serve.py
	$(BIN)/python benchmarks/wrapper.py
	$(BIN)/python examples/detect_classify.py --compare

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
