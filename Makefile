# Two entry points (see README): `make serve` and `make test`. Everything else is a helper target.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: serve build test bench clean

serve: $(VENV)/.deps node_modules/.deps
	$(PY) build.py --serve

build: $(VENV)/.deps node_modules/.deps
	$(PY) build.py --strict

test: $(VENV)/.deps-test node_modules/.deps
	$(PY) -m pytest

bench: $(VENV)/.deps-test node_modules/.deps
	$(PY) bench/train_step.py

$(VENV)/.deps: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.deps-test: pyproject.toml $(VENV)/.deps
	$(PY) -m pip install -q -e '.[test]'
	touch $@

node_modules/.deps: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

clean:
	rm -rf site $(VENV) node_modules .cache
