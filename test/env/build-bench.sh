#!/usr/bin/env bash
# Builds (or finds in the cache) the tools only the benchmarks use:
#   - s5cmd (MIT), from its Go module, as a contender in bench/
# The AWS CLI contender comes from build-s3.sh (the python venv), the servers
# from build-all.sh. Same cache layout as the other build scripts:
#   $CACHE/s5cmd-<ver>/bin/s5cmd  and the stable symlink $CACHE/bin/s5cmd
# A warm run takes well under a second.
set -euo pipefail

S5CMD_MODULE="github.com/peak/s5cmd/v2"
S5CMD_VERSION="v2.3.0"

CACHE="${S3EO_CACHE_DIR:-$HOME/.cache/s3-encryption-operator}"
BIN="$CACHE/bin"
mkdir -p "$CACHE" "$BIN"

log() { printf '[build-bench] %s\n' "$*" >&2; }
fail() {
  log "FAILED: tool=$1 step=$2"
  exit 1
}

build_s5cmd() {
  local dest="$CACHE/s5cmd-$S5CMD_VERSION"
  if [[ -x "$dest/bin/s5cmd" ]]; then
    log "s5cmd $S5CMD_VERSION: cached ($dest/bin/s5cmd)"
    return
  fi
  command -v go >/dev/null 2>&1 || fail s5cmd "find 'go' on PATH"
  local t0=$SECONDS
  log "s5cmd $S5CMD_VERSION: building"
  # `go install mod@ver` asks the proxy for the module's version list (to report
  # deprecation), which the proxy here refuses: download the pinned version and
  # build it as the main module instead (as build-s3.sh does for SeaweedFS);
  # -mod=mod since a module zip carries vendor/modules.txt but not the packages.
  local json dir
  json=$(cd "$CACHE" && GOFLAGS=-mod=mod go mod download -json "$S5CMD_MODULE@$S5CMD_VERSION") ||
    fail s5cmd "go mod download $S5CMD_MODULE@$S5CMD_VERSION"
  dir=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  [[ -n "$dir" && -d "$dir" ]] || fail s5cmd "locate downloaded module dir"
  local src="$CACHE/s5cmd-$S5CMD_VERSION.src"
  rm -rf "$src" "$dest.tmp"
  cp -r "$dir" "$src" || fail s5cmd "copy module source"
  chmod -R u+w "$src" || fail s5cmd "make source writable"
  mkdir -p "$dest.tmp/bin"
  (
    cd "$src" &&
      CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=mod" go build -trimpath -ldflags "-s -w" -o "$dest.tmp/bin/s5cmd" .
  ) || fail s5cmd "go build"
  rm -rf "$src"
  [[ -x "$dest.tmp/bin/s5cmd" ]] || fail s5cmd "find installed binary"
  "$dest.tmp/bin/s5cmd" version >/dev/null || fail s5cmd "smoke test (s5cmd version)"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
  log "s5cmd $S5CMD_VERSION: built in $((SECONDS - t0))s"
}

# Serialise concurrent runs on one cache.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/.build-bench.lock"
  flock 9
fi

build_s5cmd
ln -sfn "$CACHE/s5cmd-$S5CMD_VERSION/bin/s5cmd" "$BIN/s5cmd"
[[ -x "$BIN/s5cmd" ]] || fail s5cmd "symlink $BIN/s5cmd"
log "done: $BIN/s5cmd"
