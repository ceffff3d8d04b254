#!/usr/bin/env bash
# Builds (or finds in the cache) the release tooling the ship tests use, all
# from Go modules (nothing from apt):
#   - helm, from helm.sh/helm/v3 (cmd/helm), with the version strings the
#     upstream Makefile stamps in;
#   - prometheus and promtool, from github.com/prometheus/prometheus (alert rule
#     unit tests, and the dashboard/alerts end-to-end test against a real server);
#   - lua, a tiny helper around gopher-lua, the Lua VM Argo CD embeds, that runs
#     the Argo CD health check the way Argo CD does (test/env/go/lua).
#
#   $CACHE/helm-<ver>/bin/helm
#   $CACHE/prometheus-<ver>/bin/{prometheus,promtool}
#   $CACHE/gopher-lua-<ver>/bin/lua
#   $CACHE/bin/{helm,prometheus,promtool,lua}   -> stable symlinks to the above
#
# CACHE defaults to ~/.cache/s3-encryption-operator (override: S3EO_CACHE_DIR).
# Arguments name the tools to build (helm, prometheus, lua); none means all.
# Each build is skipped when its binaries exist and were built with the same
# inputs (.stamp). Cold, on 2 cores: helm a few minutes, Prometheus 5-15
# minutes, the Lua helper under a minute.
set -euo pipefail

HELM_MODULE=helm.sh/helm/v3
HELM_VERSION=v3.22.0
# Kubernetes version helm reports in .Capabilities.KubeVersion by default:
# the minor of the k8s.io/* modules in helm's go.mod (v0.37.x => 1.37).
HELM_K8S_MAJOR=1
HELM_K8S_MINOR=37

PROMETHEUS_MODULE=github.com/prometheus/prometheus
PROMETHEUS_VERSION=v0.316.0   # Prometheus 3.16.0 (the Go module numbers 3.x releases v0.3xx.y)
PROMETHEUS_RELEASE=3.16.0
# No service discovery but static/file/http (the tests only scrape static
# targets), and no embedded web UI assets (the tests use the HTTP API only):
# both cut the cold build by minutes.
PROMETHEUS_TAGS=netgo,remove_all_sd

GOPHER_LUA_VERSION=v1.1.2     # must match test/env/go/lua/go.mod

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${S3EO_CACHE_DIR:-$HOME/.cache/s3-encryption-operator}"

log() { printf 'build-tools: %s\n' "$*"; }
die() { printf 'build-tools: ERROR: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null 2>&1 \
  || die "go not found in PATH: Go >= 1.26.7 is needed to build helm, prometheus/promtool and the Lua helper"
mkdir -p "$CACHE/bin" "$CACHE/work"
export CGO_ENABLED=0

if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/.build-tools.lock"
  flock 9
fi

grep -Eq "^(require)?[[:space:]]*github.com/yuin/gopher-lua $GOPHER_LUA_VERSION( |\$)" "$HERE/go/lua/go.mod" \
  || die "test/env/go/lua/go.mod does not require github.com/yuin/gopher-lua $GOPHER_LUA_VERSION"

# cached DEST WANT BIN...: true when every BIN is in DEST/bin and DEST/.stamp is WANT.
cached() {
  local dest="$1" want="$2" have=""; shift 2
  [ -f "$dest/.stamp" ] && have="$(cat "$dest/.stamp")"
  [ "$want" = "$have" ] || return 1
  for bin in "$@"; do [ -x "$dest/bin/$bin" ] || return 1; done
}

# install_bins TOOL WORK DEST WANT BIN...: moves the built BINs from WORK into DEST/bin and stamps DEST.
install_bins() {
  local tool="$1" work="$2" dest="$3" want="$4"; shift 4
  for bin in "$@"; do
    [ -x "$work/$bin" ] || die "FAILED building $tool: $bin not produced"
  done
  mkdir -p "$dest/bin"
  for bin in "$@"; do mv -f "$work/$bin" "$dest/bin/$bin"; done
  printf '%s\n' "$want" >"$dest/.stamp"
}

# go_install TOOL MODULE@VERSION LDFLAGS TAGS DEST PACKAGE...
# `go install pkg@version` builds a module with exactly the dependency versions its
# go.sum pins (helm's and Prometheus's go.mod have no replace directives). Runs
# outside the checkout so that no go.mod of ours is involved.
go_install() {
  local tool="$1" modver="$2" ldflags="$3" tags="$4" dest="$5"; shift 5
  local module="${modver%@*}" version="${modver#*@}"
  local bins=() want work start=$SECONDS
  for pkg in "$@"; do bins+=("$(basename "$pkg")"); done
  # (Without tags this is the stamp earlier versions of this script wrote for helm.)
  want="$(printf '%s\n' "$modver" "$ldflags" ${tags:+"tags=$tags"} "$(go env GOVERSION)" | sha256sum | cut -d' ' -f1)"
  if cached "$dest" "$want" "${bins[@]}"; then
    log "$tool: cached in $dest/bin"
    return 0
  fi
  log "building $tool ... ($(go env GOVERSION))"
  work="$CACHE/work/$(basename "$dest")"
  rm -rf "$work"
  mkdir -p "$work"
  local targets=()
  for pkg in "$@"; do targets+=("$module/$pkg@$version"); done
  if ! (cd "$work" && GOBIN="$work" GOFLAGS=-trimpath go install -tags="$tags" -ldflags="$ldflags" "${targets[@]}" >"$work/build.log" 2>&1); then
    tail -n 30 "$work/build.log" >&2
    die "FAILED building $tool at step \"go install\" (log: $work/build.log)"
  fi
  install_bins "$tool" "$work" "$dest" "$want" "${bins[@]}"
  rm -rf "$work"
  log "building $tool ... done in $((SECONDS - start))s"
}

# ------------------------------------------------------------------- helm
build_helm() {
  local ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldflags+=" -X $pkg.k8sVersionMajor=$HELM_K8S_MAJOR -X $pkg.k8sVersionMinor=$HELM_K8S_MINOR"
  done
  go_install "helm $HELM_VERSION" "$HELM_MODULE@$HELM_VERSION" "$ldflags" "" "$CACHE/helm-$HELM_VERSION" cmd/helm
  ln -sfn "../helm-$HELM_VERSION/bin/helm" "$CACHE/bin/helm"
  "$CACHE/bin/helm" version --short >/dev/null 2>&1 || die "$CACHE/bin/helm does not run"
  log "helm: $("$CACHE/bin/helm" version --short)"
}

# ------------------------------------------------------ prometheus, promtool
build_prometheus() {
  local ldflags="-s -w"
  ldflags+=" -X github.com/prometheus/common/version.Version=$PROMETHEUS_RELEASE"
  ldflags+=" -X github.com/prometheus/common/version.Revision=$PROMETHEUS_VERSION"
  ldflags+=" -X github.com/prometheus/common/version.Branch=HEAD"
  ldflags+=" -X github.com/prometheus/common/version.BuildUser=s3eo-test-env"
  go_install "prometheus+promtool $PROMETHEUS_RELEASE" "$PROMETHEUS_MODULE@$PROMETHEUS_VERSION" "$ldflags" \
    "$PROMETHEUS_TAGS" "$CACHE/prometheus-$PROMETHEUS_VERSION" cmd/prometheus cmd/promtool
  for bin in prometheus promtool; do
    ln -sfn "../prometheus-$PROMETHEUS_VERSION/bin/$bin" "$CACHE/bin/$bin"
    "$CACHE/bin/$bin" --version >/dev/null 2>&1 || die "$CACHE/bin/$bin does not run"
  done
  log "prometheus, promtool: $("$CACHE/bin/promtool" --version 2>&1 | head -n 1)"
}

# ---------------------------------------------------------------- gopher-lua
# A helper module of ours (test/env/go/lua), built from a copy so that go never
# writes into the checkout; its go.sum pins gopher-lua.
build_lua() {
  local dest="$CACHE/gopher-lua-$GOPHER_LUA_VERSION" tool="lua (gopher-lua $GOPHER_LUA_VERSION)"
  local want work start=$SECONDS
  want="$({ cat "$HERE/go/lua/go.mod" "$HERE/go/lua/go.sum" "$HERE"/go/lua/*.go; go env GOVERSION; } | sha256sum | cut -d' ' -f1)"
  if cached "$dest" "$want" lua; then
    log "$tool: cached in $dest/bin"
  else
    log "building $tool ..."
    work="$CACHE/work/gopher-lua-$GOPHER_LUA_VERSION"
    rm -rf "$work"
    mkdir -p "$work/src"
    cp "$HERE"/go/lua/go.mod "$HERE"/go/lua/go.sum "$HERE"/go/lua/*.go "$work/src/"
    if ! (cd "$work/src" && go build -mod=readonly -trimpath -ldflags="-s -w" -o "$work/lua" . >"$work/build.log" 2>&1); then
      tail -n 30 "$work/build.log" >&2
      die "FAILED building $tool at step \"go build\" (log: $work/build.log)"
    fi
    install_bins "$tool" "$work" "$dest" "$want" lua
    rm -rf "$work"
    log "building $tool ... done in $((SECONDS - start))s"
  fi
  ln -sfn "../gopher-lua-$GOPHER_LUA_VERSION/bin/lua" "$CACHE/bin/lua"
  local probe
  probe="$(mktemp)"
  printf 'return { status = "Healthy", message = obj.m }\n' >"$probe"
  echo '[{"m":"ok"}]' | "$CACHE/bin/lua" health "$probe" 2>&1 | grep -q '"message":"ok"' \
    || { rm -f "$probe"; die "$CACHE/bin/lua does not run"; }
  rm -f "$probe"
  log "lua: gopher-lua $GOPHER_LUA_VERSION"
}

for tool in ${@:-helm prometheus lua}; do
  case "$tool" in
    helm) build_helm ;;
    prometheus) build_prometheus ;;
    lua) build_lua ;;
    *) die "unknown tool \"$tool\" (helm, prometheus, lua)" ;;
  esac
done
