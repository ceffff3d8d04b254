#!/usr/bin/env bash
# Builds / installs the S3-side test servers into a local cache:
#   - SeaweedFS `weed` (S3 gateway with real SSE-S3 / SSE-KMS), built from its Go module
#   - local-kms (AWS KMS emulator that SeaweedFS uses as its KMS provider), from its Go module
#   - moto server + AWS CLI v1, in a Python venv
# Everything is versioned in the cache; a second run only refreshes the symlinks in
# $CACHE/bin (weed, local-kms, moto_server, aws) and takes a few seconds.
set -euo pipefail

SEAWEEDFS_MODULE="github.com/seaweedfs/seaweedfs"
SEAWEEDFS_VERSION="v0.0.0-20261109003541-7506e5f91cd6"
LOCAL_KMS_MODULE="github.com/nsmithuk/local-kms"
LOCAL_KMS_VERSION="v0.0.0-20260228092603-2a5e92d09ab6"
MOTO_VERSION="5.2.5"
AWSCLI_VERSION="1.46.2"

CACHE="${S3EO_CACHE_DIR:-$HOME/.cache/s3-encryption-operator}"
BIN="$CACHE/bin"
mkdir -p "$CACHE" "$BIN"

log() { printf '[build-s3] %s\n' "$*" >&2; }

# fail TOOL STEP: print which tool/step failed and exit non-zero.
fail() {
  log "FAILED: tool=$1 step=$2"
  exit 1
}

# run TOOL STEP cmd...: run a command, attributing a failure to TOOL/STEP.
run() {
  local tool="$1" step="$2"
  shift 2
  "$@" || fail "$tool" "$step"
}

need() {
  command -v "$1" >/dev/null 2>&1 || fail "$2" "find '$1' on PATH"
}

elapsed() { echo $(($(date +%s) - $1)); }

# ---------------------------------------------------------------- SeaweedFS
build_weed() {
  local dest="$CACHE/seaweedfs-$SEAWEEDFS_VERSION"
  if [[ -x "$dest/bin/weed" ]]; then
    log "weed $SEAWEEDFS_VERSION: cached ($dest/bin/weed)"
    return
  fi
  need go weed
  local t0
  t0=$(date +%s)
  log "weed $SEAWEEDFS_VERSION: building (takes several minutes on 2 cores)"
  # The seaweedfs go.mod carries `replace` directives, so `go install mod@ver` refuses it:
  # download the module, copy it somewhere writable and build it as the main module.
  local json dir
  json=$(cd "$CACHE" && GOFLAGS=-mod=mod go mod download -json "$SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION") ||
    fail weed "go mod download $SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION"
  dir=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  [[ -n "$dir" && -d "$dir" ]] || fail weed "locate downloaded module dir"
  local src="$CACHE/seaweedfs-$SEAWEEDFS_VERSION.src"
  rm -rf "$src" "$dest.tmp"
  run weed "copy module source" cp -r "$dir" "$src"
  run weed "make source writable" chmod -R u+w "$src"
  mkdir -p "$dest.tmp/bin"
  (
    cd "$src" &&
      CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags "-s -w" -o "$dest.tmp/bin/weed" ./weed
  ) || fail weed "go build ./weed"
  run weed "smoke test (weed version)" "$dest.tmp/bin/weed" version
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
  rm -rf "$src"
  log "weed $SEAWEEDFS_VERSION: built in $(elapsed "$t0")s"
}

# ---------------------------------------------------------------- local-kms
build_local_kms() {
  local dest="$CACHE/local-kms-$LOCAL_KMS_VERSION"
  if [[ -x "$dest/bin/local-kms" ]]; then
    log "local-kms $LOCAL_KMS_VERSION: cached ($dest/bin/local-kms)"
    return
  fi
  need go local-kms
  local t0
  t0=$(date +%s)
  log "local-kms $LOCAL_KMS_VERSION: building"
  rm -rf "$dest.tmp"
  mkdir -p "$dest.tmp/bin"
  (
    cd "$CACHE" &&
      GOBIN="$dest.tmp/bin" CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
        go install -trimpath "$LOCAL_KMS_MODULE@$LOCAL_KMS_VERSION"
  ) || fail local-kms "go install $LOCAL_KMS_MODULE@$LOCAL_KMS_VERSION"
  [[ -x "$dest.tmp/bin/local-kms" ]] || fail local-kms "find installed binary"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
  log "local-kms $LOCAL_KMS_VERSION: built in $(elapsed "$t0")s"
}

# ---------------------------------------------------------------- moto + awscli
PY_HASH=$(printf 'moto[server]==%s awscli==%s %s' "$MOTO_VERSION" "$AWSCLI_VERSION" "$(python3 --version 2>&1)" |
  sha256sum | cut -c1-12)
VENV="$CACHE/python-venv-$PY_HASH"

build_python() {
  if [[ -x "$VENV/bin/moto_server" && -x "$VENV/bin/aws" && -f "$VENV/.complete" ]]; then
    log "python venv (moto $MOTO_VERSION, awscli $AWSCLI_VERSION): cached ($VENV)"
    return
  fi
  need python3 moto
  local t0
  t0=$(date +%s)
  log "python venv (moto $MOTO_VERSION, awscli $AWSCLI_VERSION): installing"
  rm -rf "$VENV"
  run moto "create venv" python3 -m venv "$VENV"
  run moto "pip install moto[server]==$MOTO_VERSION awscli==$AWSCLI_VERSION" \
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "moto[server]==$MOTO_VERSION" "awscli==$AWSCLI_VERSION"
  run moto "smoke test (import moto)" "$VENV/bin/python" -c 'import moto, boto3; print("moto", moto.__version__)'
  run awscli "smoke test (aws --version)" "$VENV/bin/aws" --version
  touch "$VENV/.complete"
  log "python venv: installed in $(elapsed "$t0")s"
}

T_ALL=$(date +%s)
# Sequential on purpose: the machine has 2 cores and other builds may be running.
build_local_kms
build_weed
build_python

ln -sfn "$CACHE/seaweedfs-$SEAWEEDFS_VERSION/bin/weed" "$BIN/weed"
ln -sfn "$CACHE/local-kms-$LOCAL_KMS_VERSION/bin/local-kms" "$BIN/local-kms"
ln -sfn "$VENV/bin/moto_server" "$BIN/moto_server"
ln -sfn "$VENV/bin/aws" "$BIN/aws"
for t in weed local-kms moto_server aws; do
  [[ -x "$BIN/$t" ]] || fail "$t" "symlink $BIN/$t"
done
log "done in $(elapsed "$T_ALL")s: $BIN/{weed,local-kms,moto_server,aws}"
