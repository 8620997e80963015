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
	$(BIN)/ruff check actorflow tests benchmarks examples graphs
	$(BIN)/ruff format --check actorflow tests benchmarks examples graphs

typecheck: $(STAMP)
	$(BIN)/mypy --strict actorflow

pytest: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck pytest

bench: $(STAMP)  # minutes; JSON into benchmarks/results/, tables into docs/benchmarks.md
	@# callgrind counts instructions per hop (repeatable on a busy machine)
	@command -v valgrind >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; } \
	  || echo "warning: benchmarks/callgrind_hops.py needs valgrind: apt-get install valgrind"
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/render.py
	$(BIN)/python examples/detect_classify.py --compare

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
