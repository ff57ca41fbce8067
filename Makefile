# pinpipe: `make demo` runs the pipeline on this machine, `make test` proves it.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON311 ?= $(shell command -v python3.11 || echo python3.11)
PYTHON313 ?= $(shell command -v python3.13 || ls -d /root/.pyenv/versions/3.13*/bin/python 2>/dev/null | tail -n1 || echo python3.13)
VENV      := .venv
BIN       := $(VENV)/bin
LS_VENV   := .venv-localstack
STATE     := .pinpipe
PIN       := $(BIN)/pinpipe
LOCALSTACK_PINS := 'localstack-core[runtime]==4.14.0' 'cbor2<6' 'pyopenssl<26' 'cryptography<47' service_identity

.PHONY: help setup demo test lint bench stack-up stack-down status clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

setup: $(VENV)/.installed $(LS_VENV)/.installed db_creds.yaml ## Install everything the project needs (idempotent)

$(VENV)/.installed: pyproject.toml
	@mkdir -p $(STATE)/logs
	@command -v $(PYTHON311) >/dev/null || { echo "Python 3.11 is required (python3.11 not found)."; exit 1; }
	@echo "==> project venv ($(VENV)) with Python 3.11"
	@test -x $(BIN)/python || $(PYTHON311) -m venv $(VENV)
	@$(BIN)/pip install -q -U pip >$(STATE)/logs/setup-pip.log 2>&1
	@$(BIN)/pip install -q -e '.[dev]' >>$(STATE)/logs/setup-pip.log 2>&1 \
	  || { tail -n 30 $(STATE)/logs/setup-pip.log; exit 1; }
	@touch $@

$(LS_VENV)/.installed:
	@mkdir -p $(STATE)/logs
	@test -x "$(PYTHON313)" || command -v "$(PYTHON313)" >/dev/null \
	  || { echo "LocalStack needs Python 3.13 and none was found: install it (e.g. pyenv install 3.13) or set PYTHON313=/path/to/python3.13."; exit 1; }
	@echo "==> LocalStack venv ($(LS_VENV)) with Python 3.13"
	@test -x $(LS_VENV)/bin/python || $(PYTHON313) -m venv $(LS_VENV)
	@$(LS_VENV)/bin/pip install -q $(LOCALSTACK_PINS) >$(STATE)/logs/setup-localstack.log 2>&1 \
	  || { tail -n 30 $(STATE)/logs/setup-localstack.log; exit 1; }
	@echo "==> kinesis-mock (LocalStack's Kinesis engine, from npm)"
	@mkdir -p $(LS_VENV)/filesystem
	@cd $(LS_VENV)/filesystem && FILESYSTEM_ROOT=$(CURDIR)/$(LS_VENV)/filesystem OVERRIDE_IN_DOCKER=0 \
	  LOCALSTACK_TELEMETRY=0 ../bin/python -m localstack.cli.lpm install kinesis-mock \
	  >>$(CURDIR)/$(STATE)/logs/setup-localstack.log 2>&1 \
	  || { tail -n 30 $(CURDIR)/$(STATE)/logs/setup-localstack.log; exit 1; }
	@touch $@

db_creds.yaml:
	@cp db_creds.example.yaml db_creds.yaml
	@echo "==> created db_creds.yaml from db_creds.example.yaml (local defaults)"

demo: setup ## Run the pipeline on the native stack and show its results
	@$(PIN) stack up
	@$(PIN) db seed
	@$(PIN) db profile

test: setup ## Install what the tests need and run them all
	@$(BIN)/python -m pytest

lint: setup ## ruff (lint + format check) and mypy
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy

bench: setup ## Measure and print the pipeline's speeds
	@$(PIN) bench

stack-up: setup ## Start and provision the native services
	@$(PIN) stack up

stack-down: ## Stop the native services the stack started
	@test -x $(PIN) && $(PIN) stack down || true

status: ## Show the native services' state
	@$(PIN) stack status

clean: stack-down ## Stop the stack and remove local state (keeps the venvs)
	@rm -rf $(STATE)
