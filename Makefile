# ServerFlow: `make up` runs the whole stack, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: up down status test test-unit test-functional evals bench install system-deps clean

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
	@$(PY) -m pytest -q -ra $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-unit: install
	@$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

test-functional: install
	@$(PY) -m pytest -q tests/functional $(PYTEST_ARGS)

evals: install
	@$(PY) -m salt_ext.evals ../shared/evals/public/core.yaml

# Benchmarks print each figure beside its baseline; they are never part of `make test`.
bench: install
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean: down
	rm -rf .serverflow .test-stack
