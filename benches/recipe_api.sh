#!/usr/bin/env bash
# Recipe 1 (or any job sequence) through the HTTP API, as a curl user runs it: starts
# `vggserve serve` on a free port over ../shared/datasets with the stand-in weights, extracts
# features, trains the dense head (30 epochs, the seed's defaults), and writes every job's
# JSON (per-epoch metrics, test accuracy, wall times) to $OUT (default bench-out/recipe1.json).
#
#   benches/recipe_api.sh            # recipe 1 in full
#   EPOCHS=5 benches/recipe_api.sh   # shorter
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${VGGSERVE_SHARED:-../shared}
OUT=${OUT:-bench-out/recipe1.json}
DATA=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
mkdir -p "$(dirname "$OUT")"
target/release/vggserve serve --addr 127.0.0.1:$PORT --data-dir "$DATA" --datasets-dir "$SHARED/datasets" \
  --weights "$SHARED/weights/vgg16-standin.safetensors" ${DEVICE:+--device $DEVICE} > "$DATA/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do curl -sf $URL/readyz >/dev/null && break; sleep 0.2; done

wait_job() { # id → prints the finished job JSON
  while :; do
    job=$(curl -sf $URL/v1/jobs/$1)
    case $(echo "$job" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])') in
      succeeded|failed|cancelled) echo "$job"; return;;
    esac
    sleep 2
  done
}
post() { curl -sf -XPOST $URL/v1/jobs -H 'content-type: application/json' -d "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }

t0=$(date +%s.%N)
extract=$(post '{"kind":"extract_features","dataset":"cats_and_dogs_small"}')
extract_job=$(wait_job $extract)
t1=$(date +%s.%N)
train=$(post "{\"kind\":\"train\",\"dataset\":\"cats_and_dogs_small\",\"features\":\"$extract\",\"epochs\":${EPOCHS:-30}}")
train_job=$(wait_job $train)
t2=$(date +%s.%N)
python3 - "$OUT" "$t0" "$t1" "$t2" <<PY
import json, sys, platform, subprocess
out, t0, t1, t2 = sys.argv[1], *map(float, sys.argv[2:])
extract, train = json.loads('''$extract_job'''), json.loads('''$train_job''')
cpu = subprocess.run(["sh", "-c", "lscpu | grep 'Model name' | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
result = {"machine": {"cpu": cpu, "cores": __import__("os").cpu_count()}, "extract_seconds": t1 - t0, "train_seconds": t2 - t1,
          "extract": extract, "train": train,
          "final": train["epochs"][-1] if train["epochs"] else None, "test": (train.get("result") or {}).get("test")}
json.dump(result, open(out, "w"), indent=2)
print(json.dumps({k: result[k] for k in ("extract_seconds", "train_seconds", "final", "test")}, indent=2))
PY
