# Shared plumbing of the tool installers (sourced, not run):
#   - the pinned versions (tests/tools/versions.env)
#   - where tools go: ${FINOPS_TOOLS_DIR:-$HOME/.cache/finops-operator/tools}/bin
#   - Go discovery and build environment (no CGO, no toolchain download)
#   - one lock for every installer, so two runs never build at once
#   - timed, stamped, atomic installs: a tool is rebuilt only when its stamp
#     file (bin/.<tool>.version) does not name the pinned version.
# The sourcing script sets LOG_NAME first and runs from the repository root.

ROOT=$PWD
# shellcheck source=versions.env
source "$ROOT/tests/tools/versions.env"

TOOLS=${FINOPS_TOOLS_DIR:-$HOME/.cache/finops-operator/tools}
BIN="$TOOLS/bin"
BUILD="$TOOLS/build"
mkdir -p "$BIN" "$BUILD"

log() { printf '%s: %s\n' "${LOG_NAME:-install-tools}" "$*" >&2; }

if command -v go >/dev/null 2>&1; then GO=$(command -v go)
elif [[ -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go
else log "Go not found (install Go >= $GO_VERSION or put it on PATH)"; exit 1
fi
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false

# take_lock: one build at a time (two pytest sessions or the lead's install run
# may race). Held until the sourcing script exits. Waiting is logged with its time.
take_lock() {
    local start=$SECONDS
    exec 9>"$TOOLS/.install.lock"
    if ! flock -n 9; then
        log "another install holds $TOOLS/.install.lock; waiting ..."
        flock 9
        log "got the lock after $((SECONDS - start))s"
    fi
}

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
# records the commit; then it is "-".
mod_info() {
    local json info
    json=$(cd "$BUILD" && "$GO" mod download -json "$1")
    info=$(sed -n 's/^[[:space:]]*"Info": "\(.*\)",*$/\1/p' <<<"$json")
    printf '%s %s %s\n' \
        "$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p' <<<"$json")" \
        "$(grep -o '"Hash": *"[0-9a-f]*"' "$info" | grep -o '[0-9a-f]\{40\}' || echo -)" \
        "$(grep -o '"Time": *"[^"]*"' "$info" | cut -d'"' -f4)"
}

# mod_dir MODULE@VERSION -> the module's (read-only) directory in the module cache.
mod_dir() {
    (cd "$BUILD" && "$GO" mod download -json "$1") | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p'
}

# check_version BINARY EXPECTED ARGS...: the built binary's output must contain EXPECTED.
# (Whole output, not `| head -n1`: head closing the pipe is a SIGPIPE failure under pipefail.)
check_version() {
    local bin=$1 want=$2 got
    shift 2
    got=$("$bin" "$@" 2>&1) || { log "$(basename "$bin") $* failed: $got"; exit 1; }
    [[ $got == *"$want"* ]] || { log "built $(basename "$bin") reports '$got', not $want"; exit 1; }
}
