# The front door. Every target does its own set-up (scripts/bootstrap.sh) when needed.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
BIN       := $(VENV)/bin
PY        := $(BIN)/python
INVENTORY ?= inventories/sandbox/hosts.yml
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# make deploy DOMAIN=... EMAIL=...: the public zone's name and the alarm recipient, recorded with the inventory
# (scripts/deploy_vars.py: group_vars/all/zz-deploy-inputs.yml) so that every later run uses them too. Only when
# given on make's command line: EMAIL in particular is often exported for mail and packaging tools, and a plain
# `make deploy` must not pick it up. The values reach the recipes through the environment (make exports
# command-line variables), never pasted into the shell's text, and deploy_vars.py refuses a bad one.
DEPLOY_INPUTS := $(if $(filter command line,$(origin DOMAIN)),--domain="$$DOMAIN") \
                 $(if $(filter command line,$(origin EMAIL)),--email="$$EMAIL")
DEPLOY_INPUTS := $(strip $(DEPLOY_INPUTS))

.PHONY: help bootstrap deploy teardown test lint sandbox-up sandbox-down sandbox-reset \
        sandbox-status sandbox-env controller-status leftovers endpoints sandbox-outage sandbox-restore sandbox-outbox drills bench-webapp bench-deploy bench-failover bench-sandbox lock

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

bootstrap: ## Create .venv with the pinned dependencies and check system packages
	@scripts/bootstrap.sh

deploy: bootstrap sandbox-up ## The main job: sandbox up, site.yml against the sandbox, then wait until the edge serves ([DOMAIN=name EMAIL=address]: scripts/deploy.sh)
ifneq ($(DEPLOY_INPUTS),)
	$(PY) scripts/deploy_vars.py --write-to $(INVENTORY) $(DEPLOY_INPUTS)
endif
	$(BIN)/ansible-playbook -i $(INVENTORY) site.yml
	@$(PY) -m sandbox serving
	@if [ "$(INVENTORY)" = "inventories/sandbox/hosts.yml" ]; then $(PY) scripts/controller.py start -i $(INVENTORY); fi

endpoints: bootstrap ## Where the deployment serves (CloudFront, zone and its name servers, ALBs) and who hears its alarms
	@$(PY) scripts/endpoints.py -i $(INVENTORY)

teardown: bootstrap ## Remove everything site.yml made (sandbox inventory unless INVENTORY= says otherwise)
	@if [ "$(INVENTORY)" = "inventories/sandbox/hosts.yml" ]; then $(PY) -m sandbox up && $(PY) scripts/controller.py stop; fi
	$(BIN)/ansible-playbook -i $(INVENTORY) playbooks/teardown.yml

leftovers: bootstrap ## What is left of a deployment after teardown, per region (exit 1 when something was left behind)
	@$(PY) scripts/leftovers.py -i $(INVENTORY)

# Lint runs beside the suites rather than before them: the suites leave about a fifth of the two cores idle while
# they wait on their sandboxes, and lint's minute of CPU fits there (niced, as every file beside the README walk
# is: tests/conftest.py). Its output comes in one block when it ends (kept in reports/lint.log); a failure of
# either fails the target.
test: bootstrap ## Lint beside every test suite (each suite starts its own sandbox on a free port)
	@echo "make test: lint beside every suite (its output in one block when it ends), the suites on three workers, a line per test; the end-to-end files start first (the README walk deploys, fails over and tears down, about 14 minutes)"
	@mkdir -p reports; \
	( nice -n 10 $(MAKE) --no-print-directory lint > reports/lint.log 2>&1; rc=$$?; \
	  echo "make test: lint $$( [ $$rc -eq 0 ] && echo passed || echo FAILED ) (reports/lint.log):"; cat reports/lint.log; exit $$rc ) & lint=$$!; \
	$(BIN)/pytest -n 3 --dist loadfile --no-loadscope-reorder --durations=15 -v; tests=$$?; \
	wait $$lint; linted=$$?; \
	[ $$linted -eq 0 ] || echo "make test: lint FAILED (reports/lint.log, above)" >&2; \
	[ $$tests -eq 0 ] && [ $$linted -eq 0 ]

lint: bootstrap ## ruff, yamllint, ansible-lint (production profile), hadolint and ansible-test sanity on the built collection
	@echo "make lint: ruff, yamllint, ansible-lint, hadolint, ansible-test sanity (about two minutes; the first sanity run installs its test environments)"
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/yamllint --strict .
	@# Offline (.ansible-lint), ansible-lint looks for collections in $$ANSIBLE_HOME/collections first, by default
	@# ~/.ansible, where molecule installs this collection as it was at its last run: a stale copy would shadow the
	@# checkout. The project's own .ansible instead, without the copy an older, online ansible-lint left there.
	@rm -rf .ansible/collections/ansible_collections/hawa
	ANSIBLE_HOME=$(CURDIR)/.ansible $(BIN)/ansible-lint
	$(BIN)/hadolint webapp/Dockerfile
	scripts/sanity.sh

sandbox-up: bootstrap ## Start the local AWS on 127.0.0.1:$${SANDBOX_PORT:-4566}
	@$(PY) -m sandbox up

sandbox-down: bootstrap ## Stop the sandbox and everything it started
	@$(PY) scripts/controller.py stop
	@$(PY) -m sandbox down

controller-status: bootstrap ## The automatic failover controller: running or not, mode, signals, last decisions and playbook runs
	@$(PY) scripts/controller.py status

sandbox-reset: bootstrap ## Forget every resource in the sandbox
	@$(PY) -m sandbox reset

sandbox-status: bootstrap ## Is the sandbox running, and what does it hold
	@$(PY) -m sandbox status

sandbox-env: bootstrap ## Print export lines that point any AWS client at the sandbox (and SANDBOX_URL, the edge)
	@$(PY) -m sandbox env

sandbox-outage: bootstrap ## Take a whole region dark: make sandbox-outage REGION=us-east-1
	@test -n "$(REGION)" || { echo "name the region: make sandbox-outage REGION=us-east-1 (or us-west-2)" >&2; exit 2; }
	@$(PY) -m sandbox outage $(REGION)

sandbox-restore: bootstrap ## Bring a dark region back: make sandbox-restore REGION=us-east-1
	@test -n "$(REGION)" || { echo "name the region: make sandbox-restore REGION=us-east-1 (or us-west-2)" >&2; exit 2; }
	@$(PY) -m sandbox restore $(REGION)

sandbox-outbox: bootstrap ## SNS deliveries (email, SMS, HTTP attempts) the sandbox made: make sandbox-outbox [SINCE=2026-01-31T12:00:00Z]
	@$(PY) -m sandbox outbox $(if $(SINCE),--since $(SINCE))

drills: bootstrap sandbox-up ## Drill every failure scenario on the sandbox (deploys first if needed); report in reports/drills/
	@scripts/test-failover.sh --preflight >/dev/null 2>&1 || $(MAKE) --no-print-directory deploy
	scripts/test-failover.sh --scenario all

bench-webapp: bootstrap ## Load-test the web app against local PostgreSQL (prints req/s, p50, p99)
	$(PY) scripts/bench_webapp.py

bench-deploy: bootstrap ## Time site.yml from an empty sandbox and a no-op re-run (prints seconds, CPU-seconds and task count beside Terraform's)
	$(PY) scripts/bench_deploy.py

bench-failover: bootstrap ## Time failover.yml planned, failback and unplanned (under an outage) on a deployed sandbox (prints seconds, CPU-seconds and each step's)
	$(PY) scripts/bench_failover.py

bench-sandbox: bootstrap ## Sandbox budgets: memory with both regions deployed, time to serving, outage detection
	$(PY) scripts/bench_sandbox.py

lock: ## Re-pin requirements/lock.txt from requirements/requirements.in
	@scripts/bootstrap.sh
	$(BIN)/pip install --quiet -r requirements/requirements.in
	$(BIN)/pip freeze --exclude-editable > requirements/lock.txt
