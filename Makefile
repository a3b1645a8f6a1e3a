# connection-repair — every entry point a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime is python3.12: use it for the virtualenvs and for `sam build`.
# The first candidate that really is 3.12 (a pyenv shim for a version not selected fails to run).
PYTHON312 ?= $(shell for candidate in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12; do \
	"$$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1 && { command -v "$$candidate"; break; }; \
	done)
VENV := .venv
TOOLS := .venv-tools
CHECKOV := .venv-checkov
PY := $(VENV)/bin/python
# The browser tests drive Debian's Chromium (browser builds downloaded by test tools cannot be fetched here).
CHROMIUM ?= /usr/bin/chromium
export CHROMIUM
# SAM and cfn-lint need a region, never credentials.
export AWS_DEFAULT_REGION ?= us-east-1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export SAM_CLI_TELEMETRY := 0

$(VENV)/.installed: requirements-dev.txt layers/common/requirements.txt
	@test -n "$(PYTHON312)" || { echo "Python 3.12 is required (python3.12 on PATH or under pyenv)"; exit 1; }
	$(PYTHON312) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	@touch $@

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "The browser tests need Chromium at $(CHROMIUM): sudo apt-get install chromium, or make CHROMIUM=<path>"; \
		exit 2; \
	fi

WEB := web/reconnect-prompt
$(WEB)/node_modules/.installed: $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(TOOLS)/.installed: requirements-tools.txt
	@test -n "$(PYTHON312)" || { echo "Python 3.12 is required (python3.12 on PATH or under pyenv)"; exit 1; }
	$(PYTHON312) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet -r requirements-tools.txt
	@touch $@

$(CHECKOV)/.installed: requirements-checkov.txt
	@test -n "$(PYTHON312)" || { echo "Python 3.12 is required (python3.12 on PATH or under pyenv)"; exit 1; }
	$(PYTHON312) -m venv $(CHECKOV)
	$(CHECKOV)/bin/pip install --quiet -r requirements-checkov.txt
	@touch $@

.PHONY: help install test lint typecheck web pytest template security reliability build clean bench bench-webhook

help: ## This list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: $(VENV)/.installed $(TOOLS)/.installed ## Create .venv (app + tests) and .venv-tools (SAM CLI, cfn-lint)

test: lint typecheck web pytest template security build ## Everything CI runs: lint, types, tests (front end too), template checks, checkov, sam build

lint: $(VENV)/.installed ## ruff lint + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed ## mypy --strict on the layer and the functions
	$(VENV)/bin/mypy

web: $(WEB)/node_modules/.installed ## The reconnect prompt: its types (tsc --checkJs) and its unit tests (node --test)
	cd $(WEB) && npm run --silent typecheck && npm test --silent

pytest: $(VENV)/.installed $(CHROMIUM) ## unit, integration, e2e and browser tests
	$(VENV)/bin/pytest

template: $(TOOLS)/.installed ## cfn-lint and sam validate --lint
	$(TOOLS)/bin/cfn-lint template.yaml
	$(TOOLS)/bin/sam validate --lint --template template.yaml

# BC_SKIP_MAPPING: checkov would otherwise fetch its guideline mappings from the internet on every run.
security: $(CHECKOV)/.installed ## checkov on template.yaml: zero failed checks (skips and reasons: .checkov.yaml, docs/decisions.md §26)
	BC_SKIP_MAPPING=TRUE $(CHECKOV)/bin/checkov --file template.yaml --config-file .checkov.yaml

reliability: $(VENV)/.installed ## The reliability suite alone: fault matrix, fuzzing, log hygiene (all part of `make pytest`)
	$(VENV)/bin/pytest tests/reliability/test_fault_matrix.py tests/reliability/test_webhook_fuzz.py \
		tests/contract/test_repair_api_contract.py tests/reliability/test_log_hygiene.py

build: $(VENV)/.installed $(TOOLS)/.installed ## sam build without Docker (needs python3.12 on PATH, supplied from .venv)
	PATH="$(abspath $(VENV))/bin:$$PATH" $(TOOLS)/bin/sam build --cached --parallel

bench: $(VENV)/.installed $(TOOLS)/.installed ## Every benchmark (~10 min): writes bench/results.json afresh, prints the table
	@rm -f bench/results.json
	@for module in $$(cd bench && ls bench_*.py | sed 's/\.py$$//'); do \
		echo "== $$module"; PYTHONPATH=layers/common:. $(PY) -m bench.$$module || exit 1; \
	done
	@echo; PYTHONPATH=layers/common:. $(PY) -m bench.report

bench-webhook: $(VENV)/.installed ## Warm p50 of the webhook handler vs the same transaction sent by bare boto3
	PYTHONPATH=layers/common:. $(PY) -m bench.bench_webhook

clean: ## Remove virtualenvs and build output
	rm -rf $(VENV) $(TOOLS) $(CHECKOV) .aws-sam .pytest_cache .mypy_cache .ruff_cache

.PHONY: openapi bench-repair

openapi: $(VENV)/.installed ## Regenerate docs/openapi.json, the reconnect prompt's API types and docs/events/ (bus events' JSON Schemas) from the code (tests fail when they drift)
	PYTHONPATH=layers/common:. $(PY) -m local.make_openapi
	PYTHONPATH=layers/common:. $(PY) -m local.make_web_types
	PYTHONPATH=layers/common:. $(PY) -m local.make_event_schemas

bench-repair: $(VENV)/.installed ## Warm p50 of POST /connections/{id}/repair vs its floor (boto3 + one httpx POST)
	PYTHONPATH=layers/common:. $(PY) -m bench.bench_repair

.PHONY: run token outbox demo backfill preview-messages upload-messages redrive inspect erase replay e2e-deployed

# The operator tools on a deployed stack (STACK=) use the caller's region, their profile's included: not this file's
# default, which would override it.
OPS := $(if $(filter file,$(origin AWS_DEFAULT_REGION)),env -u AWS_DEFAULT_REGION) PYTHONPATH=layers/common:. $(PY)

# The local stack: ports and secrets come from the environment (README, "Run it locally").
run: $(VENV)/.installed ## Run the whole system locally, no Docker: moto, API + JWT, EventBridge, Meld simulator
	$(PY) -m local.stack

token: $(VENV)/.installed ## Print a JWT for the local API: make token CUSTOMER=<externalCustomerId>
	@test -n "$(CUSTOMER)" || { echo "usage: make token CUSTOMER=<externalCustomerId>" >&2; exit 2; }
	@$(PY) -m local.jwt_tokens "$(CUSTOMER)"

outbox: $(VENV)/.installed ## Print the email the local stack sent (moto's SES)
	@$(PY) -m local.outbox

backfill: $(VENV)/.installed ## Import every connection Meld has into a running `make run` (the reconciler's backfill mode)
	@$(PY) -m local.invoke ReconcilerFunction '{"mode": "backfill"}'

redrive: $(VENV)/.installed ## A dead-letter queue's messages, sent back with APPLY=1: make redrive QUEUE=notifier|replacer [APPLY=1] [STACK=<deployed stack>]
	@test -n "$(QUEUE)" || { echo "usage: make redrive QUEUE=notifier|replacer [APPLY=1] [STACK=<deployed stack>]" >&2; exit 2; }
	@$(OPS) -m ops.redrive "$(QUEUE)" "APPLY=$(APPLY)" "STACK=$(STACK)"

inspect: $(VENV)/.installed ## One connection's history in order: make inspect CONNECTION=<id> | CUSTOMER=<externalCustomerId> [STACK=<deployed stack>]
	@$(OPS) -m ops.inspect "CONNECTION=$(CONNECTION)" "CUSTOMER=$(CUSTOMER)" "STACK=$(STACK)"

replay: $(VENV)/.installed ## After a logic fix: recompute from stored events, show what changes, APPLY=1 writes and announces it: make replay CONNECTION=<id> | SINCE=<time> [APPLY=1] [STACK=<deployed stack>]
	@$(OPS) -m ops.replay "CONNECTION=$(CONNECTION)" "SINCE=$(SINCE)" "APPLY=$(APPLY)" "STACK=$(STACK)"

erase: $(VENV)/.installed ## Erase a customer, as DELETE /me does: make erase CUSTOMER=<externalCustomerId> APPLY=1 [STACK=<deployed stack>]
	@$(OPS) -m ops.erase "CUSTOMER=$(CUSTOMER)" "APPLY=$(APPLY)" "STACK=$(STACK)"

e2e-deployed: $(VENV)/.installed ## The checks that hold for any stack (webhook, Repair API auth, unsubscribe, inspect, replay) against a deployed one: make e2e-deployed STACK=<name>
	@test -n "$(STACK)" || { echo "usage: make e2e-deployed STACK=<deployed stack> (your AWS credentials and region)" >&2; exit 2; }
	AWS_SAM_STACK_NAME="$(STACK)" $(if $(filter file,$(origin AWS_DEFAULT_REGION)),env -u AWS_DEFAULT_REGION) $(VENV)/bin/pytest tests/e2e/test_deployed_stack.py

demo: $(VENV)/.installed ## The repair story against a running `make run`, step by step
	@$(PY) -m local.demo

preview-messages: $(VENV)/.installed $(CHROMIUM) ## Every message, every language: HTML, text, SMS and screenshots in .local/messages
	PYTHONPATH=layers/common:. $(PY) -m local.preview_messages

upload-messages: $(VENV)/.installed ## Check messages/ (your own templates) and upload them: make upload-messages BUCKET=<bucket> PREFIX=<prefix/>
	@test -n "$(BUCKET)" || { echo "usage: make upload-messages BUCKET=<bucket> PREFIX=<prefix/> (your AWS credentials)"; exit 2; }
	PYTHONPATH=layers/common:. $(PY) -m local.preview_messages --no-screenshots --upload-bucket "$(BUCKET)" --upload-prefix "$(PREFIX)"

.PHONY: bench-sweep bench-cold-start bench-throughput bench-layer bench-report bench-reconcile bench-surge bench-prompt

bench-prompt: $(VENV)/.installed $(CHROMIUM) ## The repair round trip in Chromium: widget login to "Reconnected", p50/p95 (kept in results.json)
	BENCH_RECORD_PROMPT=1 $(VENV)/bin/pytest -q tests/e2e/browser/test_reconnect_prompt.py -k round_trip

bench-sweep: $(VENV)/.installed ## Reminder sweep: items read vs due, and time at 100 000 vs 10 000 connections (moto)
	PYTHONPATH=layers/common:. $(PY) -m bench.bench_sweep

bench-reconcile: $(VENV)/.installed ## Reconciliation of 10 000 connections at the simulator: drift found = injected, Meld requests vs needed
	PYTHONPATH=layers/common:. $(PY) -m bench.bench_reconcile

bench-surge: $(VENV)/.installed ## A bank's outage: 10 000 break in a minute, 80 % heal; messages = still broken, rate kept
	PYTHONPATH=layers/common:. $(PY) -m bench.bench_surge

bench-cold-start: $(VENV)/.installed $(TOOLS)/.installed ## Each function's import + wiring in a fresh Lambda-like interpreter vs boto3 + its clients
	PYTHONPATH=layers/common:. $(PY) -m bench.bench_cold_start

bench-throughput: $(VENV)/.installed ## 10 000 signed webhooks (1 % redelivered, 10 % late) through the handler, then the proof
	PYTHONPATH=layers/common:. $(PY) -m bench.bench_throughput

bench-layer: $(VENV)/.installed $(TOOLS)/.installed ## Size of the built CommonLayer, zipped (deflated) and unzipped
	PYTHONPATH=layers/common:. $(PY) -m bench.bench_layer_size

bench-report: $(VENV)/.installed ## Print the table of bench/results.json (runs nothing)
	@PYTHONPATH=layers/common:. $(PY) -m bench.report

.PHONY: mutation mutation-all mutation-report mutation-survivors mutation-show

$(VENV)/.mutmut: requirements-mutation.txt $(VENV)/.installed
	$(VENV)/bin/pip install --quiet -r requirements-mutation.txt
	@touch $@

mutation: $(VENV)/.mutmut ## Mutation testing of the modules that guard data, messages and access (~35 min on 2 cores; not in `make test`)
	$(PY) -m mutation.run

mutation-all: $(VENV)/.mutmut ## `make mutation` and the wider groups: wording and sending, incidents, reconciliation (~70 min)
	$(PY) -m mutation.run --all

mutation-report: $(VENV)/.mutmut ## Print the table of mutation/results.json again, from the last run's .mutation/ (runs nothing)
	@$(PY) -m mutation.run --report

mutation-survivors: $(VENV)/.mutmut ## After adding tests: test the last run's surviving mutants again (GROUP=<a group of mutation/run.py> to narrow)
	$(PY) -m mutation.run --survivors $(GROUP)

mutation-show: $(VENV)/.mutmut ## Print each surviving mutant of the last run with the lines it changed (GROUP= to narrow)
	@$(PY) -m mutation.run --show $(GROUP)
