# Two commands for a fresh machine: `make run` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast bench check lint clean test-deps

# The checkout is installed as a plain path (.pth), not through setuptools' import hook, which
# costs every command ~20 ms of start-up (pathlib and importlib.util at interpreter start);
# should a later setuptools drop that mode, the usual editable install still works.
EDITABLE := --config-settings editable_mode=compat

$(STAMP): pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]' $(EDITABLE) || $(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/statusd run

# What the tests need from outside Python: Mosquitto, PostgreSQL, nginx with nchan, Debian's chromium, a
# Bluesky PDS and an OpenID Connect provider from npm, a Synapse homeserver from PyPI (in its own venv).
# Each script is quick when its part is already there.
test-deps:
	command -v systemd-analyze >/dev/null || (apt-get update && apt-get install -y systemd)
	sh tests/install-mosquitto.sh
	sh tests/install-postgres.sh
	sh tests/install-nginx.sh
	bash tests/browser/install.sh
	bash tests/pds/install.sh
	bash tests/oidc/install.sh
	bash tests/matrix/install.sh

test: $(STAMP) test-deps
	$(PY) -m pytest -q

# The unit tier: pure and fast, no daemon, server, broker or browser (markers in pyproject).
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "unit and not (e2e or browser or faults)"

bench: $(STAMP)
	$(PY) bench/run.py

lint: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,dev]' $(EDITABLE) || $(PY) -m pip install --quiet -e '.[test,dev]'
	$(VENV)/bin/ruff check statusd tests bench
	$(VENV)/bin/mypy statusd tests bench

check: $(STAMP)
	$(VENV)/bin/statusd check

clean:
	rm -rf $(VENV) state .pytest_cache .hypothesis
