# Two commands on a fresh machine: `make run` and `make test`. Each installs what it needs.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_STAMP := $(VENV)/.apt-installed-v2
NATIVE_STAMP := $(VENV)/.native-built
NATIVE_SOURCES := stream/native.py $(wildcard stream/engine/*.py) stream/app/processing.py
# Debian packages the tests use: a real Redis, a real Prometheus (with promtool), and tmux
# (a real terminal for `rcr top`).
APT_PACKAGES := redis-server prometheus tmux
LINT_PATHS := $(wildcard stream tests bench deploy)

.PHONY: install system-deps run test test-fast lint bench bench-quick soak generate clean

install: $(STAMP) $(NATIVE_STAMP) system-deps

# Reinstall only when the project or its pins change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

# The engine's per-event modules compiled with mypyc (stream/native.py), again whenever
# one of them changes; without a C compiler the engine runs as plain Python.
$(NATIVE_STAMP): $(STAMP) $(NATIVE_SOURCES)
	$(PY) stream/native.py >/dev/null || echo "engine not compiled: it runs as plain Python"
	touch $@

# apt-get only when something is missing and we are root; otherwise say what is missing.
system-deps: $(APT_STAMP)
$(APT_STAMP):
	@missing=""; for b in redis-server prometheus promtool tmux; do command -v $$b >/dev/null || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$(APT_PACKAGES)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	    systemctl disable --now prometheus >/dev/null 2>&1 || true; \
	  else echo "missing:$$missing (install Debian packages: $(APT_PACKAGES))"; fi; \
	fi
	@touch $@

run: install
	$(VENV)/bin/rcr dev

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -q -m "not integration" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy stream

# The kill test, many times over: SOAK_ROUNDS kills per run.
SOAK_ROUNDS ?= 10
soak: install
	RCR_KILL_ROUNDS=$(SOAK_ROUNDS) $(PY) -m pytest -q tests/integration/test_worker.py -k killed

bench: install
	$(PY) -m bench $(BENCH_ARGS)

bench-quick: install
	$(PY) -m bench --quick

# Regenerate committed outputs (dashboards, PrometheusRule); tests fail when they are stale.
generate: install
	$(PY) deploy/grafana/generate.py
	$(PY) deploy/k8s/generate.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache build stream/*.so stream/engine/*.so
