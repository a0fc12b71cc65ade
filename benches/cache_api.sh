#!/usr/bin/env bash
# Feature cache through the API: extract_features twice over the full dataset on a fresh data
# dir; the second run reads every image's features from the cache. Prints both wall times,
# the ratio and the cache size (GET /v1/cache).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${VGGSERVE_SHARED:-../shared}
DATA=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
target/release/vggserve serve --addr 127.0.0.1:$PORT --data-dir "$DATA" --datasets-dir "$SHARED/datasets" \
  --weights "$SHARED/weights/vgg16-standin.safetensors" ${DEVICE:+--device $DEVICE} > "$DATA/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do curl -sf $URL/readyz >/dev/null && break; sleep 0.2; done
extract() {
  local id status
  id=$(curl -sf -XPOST $URL/v1/jobs -H 'content-type: application/json' \
    -d '{"kind":"extract_features","dataset":"cats_and_dogs_small"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  while :; do
    status=$(curl -sf $URL/v1/jobs/$id | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["status"], j["result"]["cache"] if j["result"] else "")')
    case $status in succeeded*|failed*|cancelled*) echo "$status"; return;; esac
    sleep 0.5
  done
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
