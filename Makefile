# make demo : set up (virtualenv + Debian packages) and run the demo against the embedded local server
# make test : set up and run the whole test suite (what .ci/run runs)
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
DEBIAN_PACKAGES := espeak-ng flite pocketsphinx-testdata sox libportaudio2 chromium

.PHONY: demo test lint setup system-deps bench wheel-check clean

demo: setup
	$(VENV)/bin/vkit demo

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check vkit tests bench

setup: system-deps $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[notebook,analysis,test,interop]'
	touch $@

# Debian packages the tests and the demo use (speech synthesis, real speech samples, the browser test).
system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

bench: setup
	$(PY) -m pip install -q -e '.[test,bench]'
	$(PY) bench/overhead.py
	$(PY) bench/gate.py
	$(PY) bench/throughput.py
	$(PY) bench/server_load.py
	$(PY) bench/endpoint.py

# build the wheel, install it into fresh virtualenvs from the registry (no extras, then [notebook])
# and run vkit from an empty folder: what `pip install vkit` gives a Dask worker and a notebook user
wheel-check: setup
	VKIT_WHEEL_CHECK=1 $(PY) -m pytest -q tests/test_packaging.py

clean:
	rm -rf $(VENV) sessions .pytest_cache
