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

test: bootstrap tools
	@$(VENV)/bin/python -m pytest tests

# Regenerate the CRDs' spec schemas (crds/ and the chart's copy) from the spec models.
crds: bootstrap
	@$(VENV)/bin/python -m finops_operator.api.crdgen

bench: bootstrap tools
	@$(VENV)/bin/python benchmarks/run.py
