#!/usr/bin/env bash
# Build the binaries of the test control plane from their Go modules:
#   etcd            go.etcd.io/etcd/server/v3  (pinned in tests/tools/kube/etcd/go.mod)
#   kube-apiserver  k8s.io/kubernetes          (K8S_VERSION in tests/tools/versions.env)
#   helm            helm.sh/helm/v3            (HELM_VERSION in tests/tools/versions.env)
# into ${FINOPS_TOOLS_DIR:-$HOME/.cache/finops-operator/tools}/bin.
#
# Idempotent: a tool is rebuilt only when its stamp file (bin/.<tool>.version)
# does not name the pinned version. Go's own module and build caches (default
# locations) make a rebuild after a stamp change fast. Needs nothing but Go and
# the Go module proxy; no Docker, no CGO.
#
# Usage: tests/tools/install-kube-tools.sh [etcd|kube-apiserver|helm ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
LOG_NAME=install-kube-tools
source tests/tools/lib.sh    # versions, dirs, Go, lock, timed/stamped installs

ETCD_DIR="$ROOT/tests/tools/kube/etcd"
ETCD_VERSION=$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" {print $3}' "$ETCD_DIR/go.mod")

take_lock

build_etcd() {
    local version=$1 out=$2
    (cd "$ETCD_DIR" && "$GO" build -trimpath -ldflags "-s -w" -o "$out" .)
}

# kube-apiserver: a throwaway module requiring k8s.io/kubernetes at the pinned
# release and replacing every staging module (the v0.0.0 requires in its
# go.mod) with the matching v0.MINOR.PATCH published module.
build_kube_apiserver() {
    local version=$1 out=$2 dir="$BUILD/kube-apiserver-$1"
    local gomod commit date staging_ver="v0.${1#v1.}"
    read -r gomod commit date < <(mod_info "k8s.io/kubernetes@$version")
    [[ $commit != - ]] || commit=""
    mkdir -p "$dir"
    {
        echo "module finops-operator/tools/kube-apiserver"
        echo
        grep -E '^go [0-9]' "$gomod"
        grep -E '^godebug ' "$gomod" || true
        echo
        echo "require k8s.io/kubernetes $version"
        echo
        echo "replace ("
        awk '/^require \(/ {r=1; next} r && /^\)/ {r=0} r && $1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod" \
            | sort -u | sed "s|.*|\t& => & $staging_ver|"
        echo ")"
    } > "$dir/go.mod.new"
    if ! cmp -s "$dir/go.mod.new" "$dir/go.mod.gen"; then
        cp "$dir/go.mod.new" "$dir/go.mod"; cp "$dir/go.mod.new" "$dir/go.mod.gen"; rm -f "$dir/go.sum"
    fi
    rm -f "$dir/go.mod.new"
    log "kube-apiserver: $(grep -c '=>' "$dir/go.mod") staging modules replaced with $staging_ver (commit ${commit:-unknown}, $date)"
    local major=${version#v}; major=${major%%.*}
    local minor=${version#v*.}; minor=${minor%%.*}
    local ld="-s -w" pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ld+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
        ld+=" -X $pkg.gitCommit=$commit -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
    done
    (cd "$dir" && "$GO" build -mod=mod -trimpath -ldflags "$ld" -o "$out" k8s.io/kubernetes/cmd/kube-apiserver)
}

# helm: go install at the pinned tag, with the version ldflags helm's Makefile sets.
build_helm() {
    local version=$1 out=$2 gomod commit date kmaj kmin cgo gobin="$BUILD/helm-gobin"
    read -r gomod commit date < <(mod_info "helm.sh/helm/v3@$version")
    [[ $commit != - ]] || commit=""
    cgo=$(awk '$1 == "k8s.io/client-go" {print $2; exit}' "$gomod")   # e.g. v0.32.2
    kmin=${cgo#v0.}; kmin=${kmin%%.*}; kmaj=1
    local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$version"
    ld+=" -X helm.sh/helm/v3/internal/version.gitCommit=$commit -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
    ld+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$kmaj -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$kmin"
    ld+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$kmaj -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$kmin"
    rm -rf "$gobin"; mkdir -p "$gobin"
    (cd "$BUILD" && GOBIN="$gobin" "$GO" install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$version")
    mv -f "$gobin/helm" "$out"
    check_version "$out" "$version" version --short
}

want=("$@")
[[ ${#want[@]} -gt 0 ]] || want=(etcd kube-apiserver helm)
total=$SECONDS
for tool in "${want[@]}"; do
    case $tool in
        etcd) timed etcd "$ETCD_VERSION" build_etcd ;;
        kube-apiserver) timed kube-apiserver "$K8S_VERSION" build_kube_apiserver ;;
        helm) timed helm "$HELM_VERSION" build_helm ;;
        *) echo "install-kube-tools: unknown tool '$tool' (etcd, kube-apiserver, helm)" >&2; exit 2 ;;
    esac
done
log "done in $((SECONDS - total))s: $(cd "$BIN" && ls etcd kube-apiserver helm 2>/dev/null | tr '\n' ' ')"
