# syntax=docker/dockerfile:1
# The finops-operator image the Helm chart runs: charts/finops-operator/values.yaml
# image.repository, tag = the chart's appVersion (= the package version):
#
#   docker build -t ghcr.io/finops-operator/finops-operator:0.1.0 .
#   buildah bud --isolation chroot -t ghcr.io/finops-operator/finops-operator:0.1.0 .
#
# Stages: `tools-go` builds helm, kustomize and tofu from their Go modules (the renderers the
# operator's edit proofs run), `venv` builds the wheel and installs it into /opt/finops,
# the final stage is the Python base with git, the tools and the venv, run as the chart's
# non-root user 65532. Tool versions come from tests/tools/versions.env, the one file the
# test installers (tests/tools/*.sh) read too; the golang tag below must equal its GO_VERSION
# (tests/unit/test_dockerfile.py checks both).
#
# The same file builds where no container registry is reachable (this project's machines):
# tests/tools/build-image.sh passes a Python base made from Debian's packages (mmdebstrap:
# python3, python3-venv, git, ca-certificates, user 65532) and an image holding the tools the
# test installers built, so neither registry base is pulled:
#
#   buildah bud --build-arg PYTHON_BASE=localhost/finops-operator-base:<key> \
#               --build-arg TOOLS=localhost/finops-operator-tools:<key> ...
ARG GOLANG_BASE=docker.io/library/golang:1.26.8-bookworm
ARG PYTHON_BASE=docker.io/library/python:3.11.14-slim-bookworm
# TOOLS: the stage or image with /out/helm, /out/kustomize and /out/tofu (default: built below).
ARG TOOLS=tools-go

FROM ${GOLANG_BASE} AS tools-go
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false GOBIN=/out
COPY tests/tools/versions.env /versions.env
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    set -eu; . /versions.env; \
    go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} \
        -X helm.sh/helm/v3/internal/version.gitTreeState=clean" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"; \
    /out/helm version --short | grep -q "^${HELM_VERSION}"
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    set -eu; . /versions.env; \
    go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kustomize/kustomize/v5@${KUSTOMIZE_VERSION}"; \
    /out/kustomize version | grep -q "${KUSTOMIZE_VERSION}"
# OpenTofu's go.mod has replace directives, which `go install module@version` refuses:
# build cmd/tofu inside a writable copy of the downloaded module.
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    set -eu; . /versions.env; \
    src=$(go mod download -json "github.com/opentofu/opentofu@${TOFU_VERSION}" \
          | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p'); \
    cp -r "$src" /opentofu; chmod -R u+w /opentofu; cd /opentofu; \
    go build -trimpath -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" -o /out/tofu ./cmd/tofu; \
    /out/tofu version | grep -q "OpenTofu ${TOFU_VERSION}"

FROM ${TOOLS} AS tools
# An instruction, so buildah commits this stage (a FROM-only stage leaves its working container).
WORKDIR /out

FROM ${PYTHON_BASE} AS venv
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# The dependencies first, read from pyproject.toml alone: with layer caching (docker, buildah
# --layers) a change to the sources reinstalls only the package. The venv's own pip does all
# of it: Debian's python3 has no pip outside a venv.
COPY pyproject.toml ./
RUN python3 -m venv /opt/finops \
    && python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
       >/requirements.txt \
    && /opt/finops/bin/pip install -r /requirements.txt
COPY README.md ./
COPY terraform_templates/ terraform_templates/
COPY examples/gitops/ examples/gitops/
COPY operator/ operator/
RUN /opt/finops/bin/pip wheel --no-deps -w /dist . \
    && /opt/finops/bin/pip install --no-deps /dist/finops_operator-*.whl \
    && /opt/finops/bin/pip check \
    && /opt/finops/bin/finops --version

FROM ${PYTHON_BASE}
LABEL org.opencontainers.image.title="finops-operator" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.source="https://github.com/finops-operator/finops-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
# git: the operator commits and pushes GitOps branches with the git CLI. The Debian-built
# base already has git, ca-certificates and the user: then this step installs nothing.
RUN set -eu; \
    if ! command -v git >/dev/null || [ ! -s /etc/ssl/certs/ca-certificates.crt ]; then \
        apt-get update; \
        apt-get install -y --no-install-recommends git ca-certificates; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    if ! getent passwd 65532 >/dev/null; then \
        groupadd --gid 65532 finops; \
        useradd --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin finops; \
    fi
COPY --from=tools /out/helm /out/kustomize /out/tofu /usr/local/bin/
COPY --from=venv /opt/finops /opt/finops
# HOME=/tmp: git needs a writable home and the chart mounts an emptyDir there (read-only root).
ENV PATH=/opt/finops/bin:$PATH HOME=/tmp PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["finops"]
CMD ["run", "--all-namespaces"]
