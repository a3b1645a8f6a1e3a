# connection-repair — every entry point a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime is python3.12: use it for the virtualenvs and for `sam build`.
PYTHON312 ?= $(shell command -v python3.12 2>/dev/null || ls -d $$HOME/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | tail -n 1)
VENV := .venv
TOOLS := .venv-tools
PY := $(VENV)/bin/python
# SAM and cfn-lint need a region, never credentials.
export AWS_DEFAULT_REGION ?= us-east-1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export SAM_CLI_TELEMETRY := 0

$(VENV)/.installed: requirements-dev.txt layers/common/requirements.txt
	@test -n "$(PYTHON312)" || { echo "Python 3.12 is required (python3.12 on PATH or under pyenv)"; exit 1; }
	$(PYTHON312) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	@touch $@

$(TOOLS)/.installed: requirements-tools.txt
	@test -n "$(PYTHON312)" || { echo "Python 3.12 is required (python3.12 on PATH or under pyenv)"; exit 1; }
	$(PYTHON312) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet -r requirements-tools.txt
	@touch $@

.PHONY: help install test lint typecheck pytest template build clean

help: ## This list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: $(VENV)/.installed $(TOOLS)/.installed ## Create .venv (app + tests) and .venv-tools (SAM CLI, cfn-lint)

test: lint typecheck pytest template build ## Everything CI runs: lint, types, tests, template checks, sam build

lint: $(VENV)/.installed ## ruff lint + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed ## mypy --strict on the layer and the functions
	$(VENV)/bin/mypy

pytest: $(VENV)/.installed ## unit, integration and e2e tests
	$(VENV)/bin/pytest

template: $(TOOLS)/.installed ## cfn-lint and sam validate --lint
	$(TOOLS)/bin/cfn-lint template.yaml
	$(TOOLS)/bin/sam validate --lint --template template.yaml

build: $(TOOLS)/.installed ## sam build without Docker (needs python3.12 on PATH, supplied from .venv)
	PATH="$(abspath $(VENV))/bin:$$PATH" $(TOOLS)/bin/sam build --cached --parallel

clean: ## Remove virtualenvs and build output
	rm -rf $(VENV) $(TOOLS) .aws-sam .pytest_cache .mypy_cache .ruff_cache
