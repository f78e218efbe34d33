#!/usr/bin/env bash
# Build the binaries of the test control plane from their Go modules:
#   etcd            go.etcd.io/etcd/server/v3  (pinned in tests/tools/kube/etcd/go.mod)
#   kube-apiserver  k8s.io/kubernetes          (K8S_VERSION below)
#   helm            helm.sh/helm/v3            (HELM_VERSION below)
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
ROOT=$PWD

K8S_VERSION=v1.32.13    # kubectl on the machine is v1.32.x (skew policy: +-1 minor)
HELM_VERSION=v3.17.4    # last helm 3 release built on k8s.io/client-go v0.32
ETCD_DIR="$ROOT/tests/tools/kube/etcd"
ETCD_VERSION=$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" {print $3}' "$ETCD_DIR/go.mod")

TOOLS=${FINOPS_TOOLS_DIR:-$HOME/.cache/finops-operator/tools}
BIN="$TOOLS/bin"
BUILD="$TOOLS/build"
mkdir -p "$BIN" "$BUILD"

if command -v go >/dev/null 2>&1; then GO=$(command -v go)
elif [[ -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go
else echo "install-kube-tools: Go not found (install Go >= 1.23 or put it on PATH)" >&2; exit 1
fi
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false

# One build at a time: two pytest sessions (or the lead's install run) may race.
exec 9>"$TOOLS/.install.lock"
flock 9

log() { printf 'install-kube-tools: %s\n' "$*" >&2; }

# up_to_date TOOL VERSION: true when the binary and its stamp are present.
up_to_date() {
    [[ -x "$BIN/$1" && "$(cat "$BIN/.$1.version" 2>/dev/null)" == "$2" ]]
}

# timed TOOL VERSION FUNC: run FUNC (which builds into $BIN/TOOL.tmp) with timing,
# then install atomically and write the stamp.
timed() {
    local tool=$1 version=$2 fn=$3 start=$SECONDS
    if up_to_date "$tool" "$version"; then
        log "$tool $version already installed in $BIN"
        return 0
    fi
    log "building $tool $version ..."
    rm -f "$BIN/$tool.tmp"
    "$fn" "$version" "$BIN/$tool.tmp"
    mv -f "$BIN/$tool.tmp" "$BIN/$tool"
    echo "$version" > "$BIN/.$tool.version"
    log "built $tool $version in $((SECONDS - start))s -> $BIN/$tool"
}

# mod_info MODULE@VERSION -> "<go.mod path> <commit or -> <time>" from the module
# cache (downloading it), for reproducible version ldflags. The proxy rarely
# records the commit; then it is left empty.
mod_info() {
    local json info
    json=$(cd "$BUILD" && "$GO" mod download -json "$1")
    info=$(sed -n 's/^[[:space:]]*"Info": "\(.*\)",*$/\1/p' <<<"$json")
    printf '%s %s %s\n' \
        "$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p' <<<"$json")" \
        "$(grep -o '"Hash": *"[0-9a-f]*"' "$info" | grep -o '[0-9a-f]\{40\}' || echo -)" \
        "$(grep -o '"Time": *"[^"]*"' "$info" | cut -d'"' -f4)"
}

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
    "$out" version --short | grep -q "^$version" \
        || { echo "install-kube-tools: built helm does not report $version: $("$out" version --short)" >&2; exit 1; }
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
