#!/usr/bin/env bash
# Runs a command on the project's Node (Node 24, test/env/build-node.sh fetches
# it into the cache on first use): that Node's directory goes first on PATH, so
# `node`, and every npm, npx, tsx or vitest started under it, run on Node 24.
#   bash test/env/node.sh npm ci
#   bash test/env/node.sh npx vitest run test/ship/docker.test.ts
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${S3EO_CACHE_DIR:-$HOME/.cache/s3-encryption-operator}"
bash "$HERE/build-node.sh" --quiet
PATH="$(dirname "$(readlink -f "$CACHE/bin/node")"):$PATH"
export PATH
exec "$@"
