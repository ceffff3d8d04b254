#!/usr/bin/env bash
# Builds (or finds in the cache) the release tooling the ship tests use:
#   - helm, from its Go module helm.sh/helm/v3 (cmd/helm), with the version
#     strings the upstream Makefile stamps in.
#
#   $CACHE/helm-<ver>/bin/helm
#   $CACHE/bin/helm               -> stable symlink to the above
#
# CACHE defaults to ~/.cache/s3-encryption-operator (override: S3EO_CACHE_DIR).
# Skipped when the binary exists and was built with the same flags; a cold
# build takes a few minutes on 2 cores.
#
# promtool and lua5.1 come from Debian packages (prometheus, lua5.1); .ci/run
# installs them. This script only reports when they are missing.
set -euo pipefail

HELM_MODULE=helm.sh/helm/v3
HELM_VERSION=v3.22.0
# Kubernetes version helm reports in .Capabilities.KubeVersion by default:
# the minor of the k8s.io/* modules in helm's go.mod (v0.37.x => 1.37).
HELM_K8S_MAJOR=1
HELM_K8S_MINOR=37

CACHE="${S3EO_CACHE_DIR:-$HOME/.cache/s3-encryption-operator}"
HELM_DIR="$CACHE/helm-$HELM_VERSION"

log() { printf 'build-tools: %s\n' "$*"; }
die() { printf 'build-tools: ERROR: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "go not found in PATH (needed to build helm)"
mkdir -p "$CACHE/bin" "$CACHE/work"
export CGO_ENABLED=0

if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/.build-tools.lock"
  flock 9
fi

LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  LDFLAGS+=" -X $pkg.k8sVersionMajor=$HELM_K8S_MAJOR -X $pkg.k8sVersionMinor=$HELM_K8S_MINOR"
done
want="$(printf '%s\n%s\n%s\n' "$HELM_MODULE@$HELM_VERSION" "$LDFLAGS" "$(go env GOVERSION)" | sha256sum | cut -d' ' -f1)"
have=""
[ -f "$HELM_DIR/.stamp" ] && have="$(cat "$HELM_DIR/.stamp")"

if [ -x "$HELM_DIR/bin/helm" ] && [ "$want" = "$have" ]; then
  log "helm $HELM_VERSION: cached in $HELM_DIR/bin"
else
  start=$SECONDS
  log "building helm $HELM_VERSION ... ($(go env GOVERSION))"
  work="$CACHE/work/helm-$HELM_VERSION"
  rm -rf "$work"
  mkdir -p "$work"
  # helm's go.mod has no replace directives, so `go install module@version` builds
  # it with exactly the dependency versions its go.sum pins. Run outside the
  # checkout so that no go.mod of ours is involved.
  if ! (cd "$work" && GOBIN="$work" GOFLAGS=-trimpath go install -ldflags="$LDFLAGS" "$HELM_MODULE/cmd/helm@$HELM_VERSION" >"$work/build.log" 2>&1); then
    tail -n 30 "$work/build.log" >&2
    die "FAILED building helm $HELM_VERSION at step \"go install\""
  fi
  [ -x "$work/helm" ] || die "FAILED building helm $HELM_VERSION: binary not produced"
  mkdir -p "$HELM_DIR/bin"
  mv -f "$work/helm" "$HELM_DIR/bin/helm"
  printf '%s\n' "$want" >"$HELM_DIR/.stamp"
  rm -rf "$work"
  log "building helm $HELM_VERSION ... done in $((SECONDS - start))s"
fi
ln -sfn "../helm-$HELM_VERSION/bin/helm" "$CACHE/bin/helm"
"$CACHE/bin/helm" version --short >/dev/null 2>&1 || die "$CACHE/bin/helm does not run"
log "helm: $("$CACHE/bin/helm" version --short)"

for tool in promtool lua5.1; do
  if command -v "$tool" >/dev/null 2>&1; then
    log "$tool: $(command -v "$tool")"
  else
    log "WARNING: $tool not found: install the Debian packages prometheus and lua5.1 (.ci/run does); the ship tests need them"
  fi
done
