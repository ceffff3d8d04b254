#!/usr/bin/env bash
# Fetches or builds (or finds in the cache) everything the tests run on, with
# nothing from apt: Node 24 (the project's runtime), kube-apiserver + etcd +
# kubectl, SeaweedFS + local-kms, moto + the AWS CLI, and the release tooling
# (helm, prometheus + promtool, the gopher-lua runner for the Argo CD check).
# Cold: tens of minutes on 2 cores (kube-apiserver dominates). Warm: seconds.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
start=$SECONDS
bash "$HERE/build-node.sh"
bash "$HERE/build-s3.sh"
bash "$HERE/build-kube.sh"
bash "$HERE/build-tools.sh"
echo "build-all: test servers ready in $((SECONDS - start))s (cache: ${S3EO_CACHE_DIR:-$HOME/.cache/s3-encryption-operator})"
