#!/usr/bin/env bash
# Builds the Kubernetes control plane used by the integration tests
# (kube-apiserver, kubectl, kube-controller-manager, etcd) from Go modules and
# caches the binaries. kube-controller-manager is started only by the tests that
# need real Job/Pod controllers (test/harness/controller-manager.ts).
#
#   $CACHE/kubernetes-<ver>/bin/{kube-apiserver,kubectl,kube-controller-manager}
#   $CACHE/etcd-<ver>/bin/etcd
#   $CACHE/bin/{kube-apiserver,kubectl,kube-controller-manager,etcd}   -> stable symlinks
#
# CACHE defaults to ~/.cache/s3-encryption-operator (override: S3EO_CACHE_DIR).
# A build is skipped when its binaries exist and were built from the same
# helper module (go.mod + go.sum + flags); a warm run takes seconds.
# A cold build of kube-apiserver takes 10+ minutes on 2 cores.
#
# The helper modules live in test/env/go/{kube,etcd}; their go.sum pins every
# dependency. To move to another version, change the versions below and in the
# helper go.mod files (mirror k8s.io/kubernetes's staging `replace` list), then
# run `go mod tidy` in the helper module.
set -euo pipefail

KUBE_VERSION=v1.35.4          # k8s.io/kubernetes
KUBE_STAGING_VERSION=v0.35.4  # k8s.io/{api,apimachinery,apiserver,client-go,...}
ETCD_VERSION=v3.6.16          # go.etcd.io/etcd/server/v3

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${S3EO_CACHE_DIR:-$HOME/.cache/s3-encryption-operator}"
KUBE_DIR="$CACHE/kubernetes-$KUBE_VERSION"
ETCD_DIR="$CACHE/etcd-$ETCD_VERSION"

log() { printf 'build-kube: %s\n' "$*"; }
die() { printf 'build-kube: ERROR: %s\n' "$*" >&2; exit 1; }

# run_step TOOL STEP CMD...: runs CMD; on failure names the tool and step.
run_step() {
  local tool="$1" step="$2"; shift 2
  local rc=0
  "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then
    printf 'build-kube: FAILED building %s at step "%s" (exit %s)\n' "$tool" "$step" "$rc" >&2
    exit "$rc"
  fi
}

command -v go >/dev/null 2>&1 || die "go not found in PATH (Go >= 1.26 is required to build the control plane)"
mkdir -p "$CACHE/bin" "$CACHE/work"
export CGO_ENABLED=0

# Serialise concurrent runs (e.g. parallel test workers) on one cache.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/.build-kube.lock"
  flock 9
fi

# The helper modules must pin the versions named above.
grep -Eq "^(require)?[[:space:]]*k8s.io/kubernetes $KUBE_VERSION( |\$)" "$HERE/go/kube/go.mod" \
  || die "test/env/go/kube/go.mod does not require k8s.io/kubernetes $KUBE_VERSION"
grep -q "=> k8s.io/api $KUBE_STAGING_VERSION\$" "$HERE/go/kube/go.mod" \
  || die "test/env/go/kube/go.mod does not replace the staging modules with $KUBE_STAGING_VERSION"
grep -Eq "^(require)?[[:space:]]*go.etcd.io/etcd/server/v3 $ETCD_VERSION( |\$)" "$HERE/go/etcd/go.mod" \
  || die "test/env/go/etcd/go.mod does not require go.etcd.io/etcd/server/v3 $ETCD_VERSION"

# The version strings kube-apiserver and kubectl report (as the upstream build does).
kube_minor="${KUBE_VERSION#v1.}"; kube_minor="${kube_minor%%.*}"
KUBE_LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  KUBE_LDFLAGS+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$kube_minor"
  KUBE_LDFLAGS+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
ETCD_LDFLAGS="-s -w"

# stamp MODULE_DIR LDFLAGS: identifies what a cached binary was built from.
stamp() {
  { cat "$1/go.mod" "$1/go.sum"; printf '%s\n' "$2"; } | sha256sum | cut -d' ' -f1
}

# build TOOL MODULE_DIR DEST_DIR LDFLAGS PACKAGE...
# Builds PACKAGEs from the helper module into DEST_DIR/bin, atomically.
build() {
  local tool="$1" module="$2" dest="$3" ldflags="$4"; shift 4
  local want have="" missing=0 bin
  want="$(stamp "$module" "$ldflags")"
  [ -f "$dest/.stamp" ] && have="$(cat "$dest/.stamp")"
  for pkg in "$@"; do
    bin="$dest/bin/$(basename "$pkg")"
    [ -x "$bin" ] || missing=1
  done
  if [ "$missing" -eq 0 ] && [ "$want" = "$have" ]; then
    log "$tool: cached in $dest/bin"
    return 0
  fi

  local work
  work="$CACHE/work/$(basename "$dest")"
  local start=$SECONDS
  log "building $tool ... ($(go env GOVERSION), GOMODCACHE=$(go env GOMODCACHE))"
  # Build from a copy so go never writes into the repository checkout.
  rm -rf "$work"
  run_step "$tool" "copy helper module" mkdir -p "$work/src" "$work/out"
  run_step "$tool" "copy helper module" cp "$module"/go.mod "$module"/go.sum "$work/src/"
  if compgen -G "$module/*.go" >/dev/null; then
    run_step "$tool" "copy helper module" cp "$module"/*.go "$work/src/"
  fi
  (cd "$work/src" && run_step "$tool" "go mod download" go mod download 2>"$work/download.log") \
    || { tail -n 30 "$work/download.log" >&2; exit 1; }
  (cd "$work/src" && run_step "$tool" "go build" \
    go build -mod=readonly -trimpath -ldflags="$ldflags" -o "$work/out/" "$@")
  for pkg in "$@"; do
    [ -x "$work/out/$(basename "$pkg")" ] \
      || { printf 'build-kube: FAILED building %s at step "go build": %s not produced\n' "$tool" "$(basename "$pkg")" >&2; exit 1; }
  done
  run_step "$tool" "install" mkdir -p "$dest/bin"
  for pkg in "$@"; do
    bin="$(basename "$pkg")"
    run_step "$tool" "install" mv -f "$work/out/$bin" "$dest/bin/$bin"
  done
  printf '%s\n' "$want" >"$dest/.stamp"
  rm -rf "$work"
  log "building $tool ... done in $((SECONDS - start))s"
}

total_start=$SECONDS
build "kube-apiserver+kubectl+kube-controller-manager $KUBE_VERSION" "$HERE/go/kube" "$KUBE_DIR" "$KUBE_LDFLAGS" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl k8s.io/kubernetes/cmd/kube-controller-manager
build "etcd $ETCD_VERSION" "$HERE/go/etcd" "$ETCD_DIR" "$ETCD_LDFLAGS" \
  s3eo.test/etcd

# Stable names; the etcd helper package is built as "etcd".
ln -sfn "../kubernetes-$KUBE_VERSION/bin/kube-apiserver" "$CACHE/bin/kube-apiserver"
ln -sfn "../kubernetes-$KUBE_VERSION/bin/kubectl" "$CACHE/bin/kubectl"
ln -sfn "../kubernetes-$KUBE_VERSION/bin/kube-controller-manager" "$CACHE/bin/kube-controller-manager"
ln -sfn "../etcd-$ETCD_VERSION/bin/etcd" "$CACHE/bin/etcd"

"$CACHE/bin/kubectl" version --client=true >/dev/null 2>&1 \
  || die "$CACHE/bin/kubectl does not run"
"$CACHE/bin/etcd" --version >/dev/null 2>&1 || die "$CACHE/bin/etcd does not run"
log "ready in $((SECONDS - total_start))s: $CACHE/bin/{kube-apiserver,kubectl,kube-controller-manager,etcd}"
