#!/usr/bin/env bash
# Datasets and conv features across machines (benches/shared_api.py): a dataset uploaded to
# an API replica, then extracted by a worker that computes every feature and by a fresh one
# that reads them from the bucket. Starts a throwaway PostgreSQL and SeaweedFS
# (tests/services/); writes bench-out/shared.json (or $OUT).
#
#   benches/shared_api.sh
#   DATASET=cats_and_dogs_small benches/shared_api.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export VGGSERVE_SHARED=${VGGSERVE_SHARED:-../shared}
mkdir -p bench-out
exec tests/services/with_postgres.sh tests/services/with_s3.sh \
  python3 benches/shared_api.py "${OUT:-bench-out/shared.json}"
