#!/usr/bin/env bash
# Build the renderers that prove GitOps edits from their Go modules:
#   kustomize  sigs.k8s.io/kustomize/kustomize/v5  (KUSTOMIZE_VERSION in tests/tools/versions.env)
#   tofu       github.com/opentofu/opentofu         (TOFU_VERSION in tests/tools/versions.env)
# into ${FINOPS_TOOLS_DIR:-$HOME/.cache/finops-operator/tools}/bin, next to the
# helm that install-kube-tools.sh builds (`kustomize build --enable-helm` runs it).
#
# Same contract as install-kube-tools.sh (shared in tests/tools/lib.sh): pinned,
# stamped, rebuilt only when the pin moves, one build at a time under the shared
# lock, installed atomically, build time logged. No Docker, no CGO.
#
# Build times measured on the 2-core CI machine (2026-11-30): cold (empty Go
# caches, load average 10-15 from parallel test runs) kustomize 37s, tofu about
# 20 min; with warm Go module and build caches kustomize 2s, tofu 10s.
#
# Usage: tests/tools/install-render-tools.sh [kustomize|tofu ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
LOG_NAME=install-render-tools
source tests/tools/lib.sh    # versions, dirs, Go, lock, timed/stamped installs

take_lock

# kustomize: its release go.mod has no replace directives, so `go install
# module@version` is the documented build; the version comes from the module's
# build info, the build date from the proxy's record of the tag.
build_kustomize() {
    local version=$1 out=$2 gomod commit date gobin="$BUILD/kustomize-gobin"
    read -r gomod commit date < <(mod_info "sigs.k8s.io/kustomize/kustomize/v5@$version")
    local ld="-s -w -X sigs.k8s.io/kustomize/api/provenance.buildDate=$date"
    rm -rf "$gobin"; mkdir -p "$gobin"
    (cd "$BUILD" && GOBIN="$gobin" "$GO" install -trimpath -ldflags "$ld" \
        "sigs.k8s.io/kustomize/kustomize/v5@$version")
    mv -f "$gobin/kustomize" "$out"
    check_version "$out" "$version" version
}

# tofu: its go.mod replaces github.com/hashicorp/hcl/v2 with OpenTofu's fork,
# and `go install module@version` refuses modules with replace directives. So
# copy the downloaded module (the module cache is read-only) and build cmd/tofu
# inside it, where its go.mod and go.sum apply. dev=no is what release builds
# set, so `tofu version` says v1.x.y rather than v1.x.y-dev.
build_tofu() {
    local version=$1 out=$2 src dir="$BUILD/opentofu-$1"
    src=$(mod_dir "github.com/opentofu/opentofu@$version")
    [[ -n $src && -f $src/go.mod ]] || { log "go mod download gave no directory for opentofu $version"; exit 1; }
    rm -rf "$dir"
    cp -r "$src" "$dir"
    chmod -R u+w "$dir"
    (cd "$dir" && "$GO" build -trimpath \
        -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" -o "$out" ./cmd/tofu)
    rm -rf "$dir"    # 45 MB of source; Go's build cache keeps what a rebuild needs
    # No CLI config: a TF_CLI_CONFIG_FILE naming a missing file makes tofu print a warning first.
    TF_CLI_CONFIG_FILE=/dev/null check_version "$out" "OpenTofu $version" version
}

want=("$@")
[[ ${#want[@]} -gt 0 ]] || want=(kustomize tofu)
total=$SECONDS
for tool in "${want[@]}"; do
    case $tool in
        kustomize) timed kustomize "$KUSTOMIZE_VERSION" build_kustomize ;;
        tofu) timed tofu "$TOFU_VERSION" build_tofu ;;
        *) log "unknown tool '$tool' (kustomize, tofu)"; exit 2 ;;
    esac
done
log "done in $((SECONDS - total))s: $(cd "$BIN" && ls kustomize tofu 2>/dev/null | tr '\n' ' ')"
