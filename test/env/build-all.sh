#!/usr/bin/env bash
# Builds (or finds in the cache) every real server the tests talk to:
# kube-apiserver + etcd + kubectl, SeaweedFS + local-kms, moto + the AWS CLI,
# and the release tooling (helm; promtool and lua5.1 come from apt).
# Cold: tens of minutes on 2 cores (kube-apiserver dominates). Warm: seconds.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
start=$SECONDS
bash "$HERE/build-s3.sh"
bash "$HERE/build-kube.sh"
bash "$HERE/build-tools.sh"
echo "build-all: test servers ready in $((SECONDS - start))s (cache: ${S3EO_CACHE_DIR:-$HOME/.cache/s3-encryption-operator})"
