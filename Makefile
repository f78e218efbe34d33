# The two commands a newcomer needs: `make demo` and `make test`.
# Each installs what it needs (idempotently, cached) before it runs.
SHELL := /bin/bash
VENV := .venv

.PHONY: demo test bootstrap tools render-tools bench crds

bootstrap:
	@tests/tools/bootstrap.sh

# The demo proves every edit by rendering: it needs helm, kustomize and tofu.
demo: bootstrap render-tools
	@$(VENV)/bin/finops demo

render-tools:
	@tests/tools/install-kube-tools.sh helm
	@tests/tools/install-render-tools.sh kustomize tofu

tools:
	@tests/tools/install-tools.sh

# Two pytest-xdist workers (the CI machine has 2 CPUs; much of an e2e test is waiting on the operator), each
# given one test file at a time, so a file's module fixtures (an e2e operator world) are made once.
# `make test WORKERS=0` runs everything in one process.
WORKERS ?= 2
test: bootstrap tools
	@$(VENV)/bin/python -m pytest tests -n $(WORKERS) --dist loadfile

# Regenerate the CRDs' spec schemas (crds/ and the chart's copy) from the spec models.
crds: bootstrap
	@$(VENV)/bin/python -m finops_operator.api.crdgen

bench: bootstrap tools
	@$(VENV)/bin/python benchmarks/run.py
