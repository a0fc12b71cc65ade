#!/usr/bin/env bash
# Feature cache through the API: extract_features twice over the full dataset on a fresh data
# dir; the second run reads every image's features from the cache. Prints both wall times,
# the ratio and the cache size (GET /v1/cache).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
start_server
extract() { # → "<status> <cache counts>" of a fresh extract_features job
  local id
  id=$(post '{"kind":"extract_features","dataset":"cats_and_dogs_small"}')
  wait_job "$id" 0.2 | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["status"], j["result"]["cache"] if j["result"] else "")'
}
t0=$(date +%s.%N); first=$(extract); t1=$(date +%s.%N); second=$(extract); t2=$(date +%s.%N)
python3 - "$t0" "$t1" "$t2" "$first" "$second" <<'PY'
import sys
t0, t1, t2 = map(float, sys.argv[1:4])
print(f"first:  {t1 - t0:.1f} s  ({sys.argv[4]})")
print(f"second: {t2 - t1:.2f} s  ({sys.argv[5]})")
print(f"ratio:  {(t1 - t0) / (t2 - t1):.0f}x")
PY
echo "cache: $(curl -sf $URL/v1/cache)"
