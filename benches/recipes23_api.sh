#!/usr/bin/env bash
# Recipes 2 and 3 through the HTTP API with reduced epochs/steps (the full runs take hours on
# a 2-core CPU): end-to-end training with augmentation through the frozen base, then
# fine-tuning block5 from that model. Writes both jobs' JSON to $OUT.
#
#   benches/recipes23_api.sh                                   # 3 epochs × 10 steps, then 3 × 10
#   EPOCHS=30 STEPS=100 VAL_STEPS=50 DEVICE=cuda benches/recipes23_api.sh   # the seed's full run
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${VGGSERVE_SHARED:-../shared}
OUT=${OUT:-bench-out/recipes23.json}
EPOCHS=${EPOCHS:-3}; STEPS=${STEPS:-10}; VAL_STEPS=${VAL_STEPS:-10}
TUNE_EPOCHS=${TUNE_EPOCHS:-$EPOCHS}
DATA=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
mkdir -p "$(dirname "$OUT")"
target/release/vggserve serve --addr 127.0.0.1:$PORT --data-dir "$DATA" --datasets-dir "$SHARED/datasets" \
  --weights "$SHARED/weights/vgg16-standin.safetensors" ${DEVICE:+--device $DEVICE} > "$DATA/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do curl -sf $URL/readyz >/dev/null && break; sleep 0.2; done
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
wait_job() {
  while :; do
    job=$(curl -sf $URL/v1/jobs/$1)
    case $(echo "$job" | field '["status"]') in succeeded|failed|cancelled) echo "$job"; return;; esac
    sleep 5
  done
}
post() { curl -sf -XPOST $URL/v1/jobs -H 'content-type: application/json' -d "$1" | field '["id"]'; }
common="\"steps_per_epoch\":$STEPS,\"validation_steps\":$VAL_STEPS"
t0=$(date +%s.%N)
aug=$(post "{\"kind\":\"train\",\"dataset\":\"cats_and_dogs_small\",\"augment\":true,\"epochs\":$EPOCHS,$common}")
aug_job=$(wait_job $aug)
t1=$(date +%s.%N)
model=$(echo "$aug_job" | field '["model_id"]')
tune=$(post "{\"kind\":\"fine_tune\",\"dataset\":\"cats_and_dogs_small\",\"from_model\":\"$model\",\"epochs\":$TUNE_EPOCHS,$common}")
tune_job=$(wait_job $tune)
t2=$(date +%s.%N)
# The fast path: the same fine-tuning without augmentation (frozen layers run once).
fast=$(post "{\"kind\":\"fine_tune\",\"dataset\":\"cats_and_dogs_small\",\"from_model\":\"$model\",\"augment\":false,\"epochs\":$TUNE_EPOCHS,$common}")
fast_job=$(wait_job $fast)
t3=$(date +%s.%N)
python3 - "$OUT" "$t0" "$t1" "$t2" "$t3" <<PY
import json, sys
out, t0, t1, t2, t3 = sys.argv[1], *map(float, sys.argv[2:])
aug, tune, fast = json.loads('''$aug_job'''), json.loads('''$tune_job'''), json.loads('''$fast_job''')
summary = lambda job, seconds: {"status": job["status"], "seconds": seconds, "params": job["params"],
    "epochs": job["epochs"], "test": (job.get("result") or {}).get("test"), "error": job.get("error")}
result = {"augmented": summary(aug, t1 - t0), "fine_tuned": summary(tune, t2 - t1),
          "fine_tuned_no_augmentation": summary(fast, t3 - t2)}
json.dump(result, open(out, "w"), indent=2)
for name, r in result.items():
    print(name, r["status"], f'{r["seconds"]:.0f}s', "last epoch:", r["epochs"][-1] if r["epochs"] else None, "test:", r["test"])
PY
