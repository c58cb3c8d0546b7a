# Every target creates .venv and installs what it needs; nothing else is assumed on the machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= dev

.PHONY: demo render golden test lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet '.[dev]'
	touch $@

## demo: render every stack offline and print a summary of each
demo: $(VENV)/.installed
	$(PY) -m tools.render

## render: render one stack (make render STACK=prod) to build/render/<stack>/
render: $(VENV)/.installed
	$(PY) -m tools.render $(STACK)

## golden: accept the current renders as tests/golden/ (review the diff before committing)
golden: $(VENV)/.installed
	$(PY) -m tools.render --out tests/golden
	git diff --stat -- tests/golden

## test: lint and run every test
test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

clean:
	rm -rf $(VENV) build
