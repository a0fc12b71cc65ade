#!/usr/bin/env bash
# The queue's overhead and failover, SQLite beside PostgreSQL, through the HTTP API with
# real processes (benches/queue_api.py): claim latency and POST → running, throughput of
# short jobs with 1 and 2 workers, and the time from a worker's kill -9 to its job running
# again. Starts a throwaway PostgreSQL (tests/services/with_postgres.sh); writes
# bench-out/queue.json (or $OUT).
#
#   benches/queue_api.sh
#   JOBS=40 LEASE=10 benches/queue_api.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export VGGSERVE_SHARED=${VGGSERVE_SHARED:-../shared}
mkdir -p bench-out
exec tests/services/with_postgres.sh python3 benches/queue_api.py "${OUT:-bench-out/queue.json}"
