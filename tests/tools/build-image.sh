#!/usr/bin/env bash
# Build the operator image (the repository's Dockerfile) on a machine that reaches Debian's
# packages but no container registry, with no daemon:
#   1. buildah and mmdebstrap from Debian's packages, installed when missing;
#   2. the Python base: a Debian rootfs made by mmdebstrap (python3, python3-venv, git,
#      ca-certificates, user 65532), imported into buildah as localhost/finops-operator-base:<key>;
#   3. the tools image: helm, kustomize and tofu as the test installers built them
#      (tests/tools/install-*.sh, versions.env) in /out of localhost/finops-operator-tools:<key>;
#   4. `buildah bud --isolation chroot` of the Dockerfile with PYTHON_BASE and TOOLS set to
#      those two, tagged as the chart references it (values.yaml image.repository : appVersion).
#
# Idempotent and cached in ${FINOPS_IMAGE_CACHE:-$HOME/.cache/finops-operator/image}:
#   - the rootfs tarball is keyed by a hash of its package list, Debian release and sources;
#   - each image is tagged with the hash of its inputs and made only when that tag is missing;
#     the final image's inputs are the Dockerfile, .dockerignore, every file under the paths
#     .dockerignore lets through (the wheel's sources), the base and the tools.
# A warm run (nothing changed) does no build: it checks the tags and prints the image.
# One run at a time (flock on the cache's .lock): buildah's storage is shared by every checkout.
#
# Build-time only, nothing of it lands in the image: the host's CA bundle and a pip.conf naming
# it are mounted into the RUN steps, so pip trusts what the host trusts (a TLS-inspecting proxy).
#
# Prints "<image reference> <image id>" as the last line of stdout (run the id: another checkout
# may re-point the shared tag to its own build at any time); logs go to stderr.
# Usage: tests/tools/build-image.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE=${FINOPS_IMAGE_CACHE:-$HOME/.cache/finops-operator/image}
TOOLS_BIN=${FINOPS_TOOLS_DIR:-$HOME/.cache/finops-operator/tools}/bin
mkdir -p "$CACHE"

log() { printf 'build-image: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
sha() { sha256sum | cut -c1-16; }

# --- the base's recipe: every input of the rootfs is in this block (its hash is the key) ---
RELEASE=bookworm
PACKAGES=python3,python3-venv,git,ca-certificates
SOURCES=(
    "deb http://deb.debian.org/debian $RELEASE main"
    "deb http://deb.debian.org/debian $RELEASE-updates main"
    "deb http://deb.debian.org/debian-security $RELEASE-security main"
)
MMDEBSTRAP_ARGS=(
    --variant=minbase --include="$PACKAGES"
    --aptopt='APT::Install-Recommends "false"'
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
    # The chart's non-root user (values.yaml podSecurityContext.runAsUser), as the Dockerfile makes it.
    --customize-hook='chroot "$1" groupadd --gid 65532 finops'
    --customize-hook='chroot "$1" useradd --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin finops'
)
BASE_KEY=$(printf '%s\n' "$RELEASE" "${SOURCES[@]}" "${MMDEBSTRAP_ARGS[@]}" | sha)

install_build_tools() {
    command -v buildah >/dev/null && command -v mmdebstrap >/dev/null && return 0
    local sudo=""
    [[ "$(id -u)" == 0 ]] || sudo=sudo
    log "installing buildah and mmdebstrap from Debian's packages ..."
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q >&2
    $sudo apt-get install -y -q --no-install-recommends buildah mmdebstrap >&2
}

have_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }

make_base() {
    local image=localhost/finops-operator-base:$BASE_KEY tar="$CACHE/base-$RELEASE-$BASE_KEY.tar" start=$SECONDS c
    if [[ ! -s $tar ]]; then
        log "making the $RELEASE rootfs ($PACKAGES) with mmdebstrap ..."
        rm -f "$tar.tmp"
        mmdebstrap --mode=auto --format=tar "${MMDEBSTRAP_ARGS[@]}" "$RELEASE" "$tar.tmp" "${SOURCES[@]}" \
            >&2 2>"$CACHE/mmdebstrap.log" || die "mmdebstrap failed; see $CACHE/mmdebstrap.log"
        mv -f "$tar.tmp" "$tar"
        log "rootfs made in $((SECONDS - start))s: $tar"
    fi
    if ! have_image "$image"; then
        log "importing the rootfs as $image ..."
        c=$(buildah from --quiet scratch)
        buildah add --quiet "$c" "$tar" / >/dev/null
        buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            --env LANG=C.UTF-8 --cmd /bin/bash "$c"
        buildah commit --quiet --rm "$c" "$image" >/dev/null
        log "base imported in $((SECONDS - start))s"
    fi
    BASE=$image
}

make_tools() {
    local tools=(helm kustomize tofu) key image c
    tests/tools/install-kube-tools.sh helm >&2
    tests/tools/install-render-tools.sh kustomize tofu >&2
    key=$(cd "$TOOLS_BIN" && cat "${tools[@]}" | sha)
    image=localhost/finops-operator-tools:$key
    if ! have_image "$image"; then
        log "making $image from $TOOLS_BIN ..."
        c=$(buildah from --quiet scratch)
        buildah copy --quiet "$c" "${tools[@]/#/$TOOLS_BIN/}" /out/ >/dev/null
        buildah commit --quiet --rm "$c" "$image" >/dev/null
    fi
    TOOLS=$image
}

# The chart's image reference: values.yaml image.repository and Chart.yaml appVersion.
chart_image() {
    local chart=charts/finops-operator repo version
    repo=$(sed -n '/^image:/,/^[^ #]/s/^  repository: *"\{0,1\}\([^" ]*\)"\{0,1\} *$/\1/p' "$chart/values.yaml")
    version=$(sed -n 's/^appVersion: *"\{0,1\}\([^" ]*\)"\{0,1\} *$/\1/p' "$chart/Chart.yaml")
    [[ -n $repo && -n $version ]] || die "no image.repository in $chart/values.yaml or appVersion in $chart/Chart.yaml"
    echo "$repo:$version"
}

# The final image's key: the Dockerfile, .dockerignore, every file under the paths .dockerignore
# lets through (its "!" lines; byte-compiled and egg-info noise left out), the base and the tools.
context_key() {
    local allowed
    mapfile -t allowed < <(sed -n 's|^!\(.*[^/]\)/*$|\1|p' .dockerignore)
    {
        printf '%s\n' "$BASE" "$TOOLS"
        find Dockerfile .dockerignore "${allowed[@]}" \( -name __pycache__ -o -name '*.pyc' -o -name '*.egg-info' \) \
            -prune -o \( -type f -o -type l \) -print | LC_ALL=C sort | while read -r f; do
            if [[ -L $f ]]; then printf 'link %s %s\n' "$f" "$(readlink "$f")"
            else printf 'file %s %s\n' "$f" "$(sha256sum <"$f" | cut -d' ' -f1)"; fi
        done
    } | sha
}

build_final() {
    local target key build start=$SECONDS certs=/etc/ssl/certs/ca-certificates.crt
    target=$(chart_image)
    key=$(context_key)
    build=localhost/finops-operator-build:$key
    if have_image "$build"; then
        log "$target is up to date ($build)"
    else
        [[ -s $certs ]] || die "$certs missing: install ca-certificates"
        printf '[global]\ncert = %s\n' "$certs" >"$CACHE/pip.conf"
        log "building $target (PYTHON_BASE=$BASE TOOLS=$TOOLS) ..."
        # Layer cache: the venv stage is tagged too, so its layers (the dependencies' one above
        # all) outlive the pruning below and a change to the sources reinstalls only the package.
        local bud=(buildah bud --isolation chroot --layers --force-rm
                   --build-arg PYTHON_BASE="$BASE" --build-arg TOOLS="$TOOLS"
                   --volume "$certs:$certs:ro" --volume "$CACHE/pip.conf:/etc/pip.conf:ro")
        "${bud[@]}" --target venv --tag "localhost/finops-operator-venv:$key" "$ROOT" >&2
        "${bud[@]}" --tag "$build" "$ROOT" >&2
        log "built in $((SECONDS - start))s"
        prune_old_builds "$build"
    fi
    buildah tag "$build" "$target"
    IMAGE=$target
    IMAGE_ID=$(buildah inspect --type image --format '{{.FromImageID}}' "$build")
}

# Keep the three newest final builds and venv stages (other checkouts may be testing theirs)
# and only the current rootfs tarball; an image still used by a container is kept. Then drop
# dangling layers (those of the builds just untagged; the kept tags hold their layer caches).
prune_old_builds() {
    local old repo
    for repo in localhost/finops-operator-build localhost/finops-operator-venv; do
        for old in $(buildah images --noheading --format '{{.CreatedAt}}|{{.Name}}:{{.Tag}}' \
                     | grep -F "|$repo:" | LC_ALL=C sort | cut -d'|' -f2 \
                     | grep -vxF "$repo:${1##*:}" | head -n -2 || true); do
            buildah rmi "$old" >/dev/null 2>&1 || true
        done
    done
    find "$CACHE" -maxdepth 1 -name 'base-*.tar' ! -name "base-$RELEASE-$BASE_KEY.tar" -delete
    buildah rmi --prune >/dev/null 2>&1 || true
}

main() {
    local start=$SECONDS
    install_build_tools
    exec 9>"$CACHE/.lock"
    flock -n 9 || { log "another build holds $CACHE/.lock; waiting ..."; flock 9; }
    make_base
    make_tools
    build_final
    log "done in $((SECONDS - start))s: $IMAGE"
    echo "$IMAGE $IMAGE_ID"
}

main "$@"
