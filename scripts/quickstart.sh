#!/usr/bin/env bash
# Quick start on a fresh machine: fetch Node 24, install, build the local
# servers (cached), start a local control plane + S3 + KMS, run the operator,
# apply a job and watch it complete. Ctrl-C stops everything. QUICKSTART_EXIT=1
# exits once the job is Complete (for scripted use).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Everything below runs on the project's Node 24 (fetched into the cache), whatever Node the machine has.
bash test/env/build-node.sh
CACHE="${S3EO_CACHE_DIR:-$HOME/.cache/s3-encryption-operator}"
PATH="$(dirname "$(readlink -f "$CACHE/bin/node")"):$PATH"
export PATH
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build --silent
bash test/env/build-all.sh
exec npx tsx scripts/quickstart.ts "$@"
