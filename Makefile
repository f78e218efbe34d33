# The two commands a newcomer needs: `make demo` and `make test`.
# Each installs what it needs (idempotently, cached) before it runs.
SHELL := /bin/bash
VENV := .venv

.PHONY: demo test bootstrap tools bench

bootstrap:
	@tests/tools/bootstrap.sh

demo: bootstrap
	@$(VENV)/bin/finops demo

tools:
	@tests/tools/install-tools.sh

test: bootstrap tools
	@$(VENV)/bin/python -m pytest tests

bench: bootstrap tools
	@$(VENV)/bin/python benchmarks/run.py
