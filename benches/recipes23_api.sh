#!/usr/bin/env bash
# Recipes 2 and 3 through the HTTP API with reduced epochs/steps (the full runs take hours on
# a 2-core CPU): end-to-end training with augmentation through the frozen base, then
# fine-tuning block5 from that model. Writes both jobs' JSON to $OUT.
#
#   benches/recipes23_api.sh                                   # 3 epochs × 10 steps, then 3 × 10
#   EPOCHS=30 STEPS=100 VAL_STEPS=50 DEVICE=cuda benches/recipes23_api.sh   # the seed's full run
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench-out/recipes23.json}
EPOCHS=${EPOCHS:-3}; STEPS=${STEPS:-10}; VAL_STEPS=${VAL_STEPS:-10}
TUNE_EPOCHS=${TUNE_EPOCHS:-$EPOCHS}
mkdir -p "$(dirname "$OUT")"
source benches/lib.sh
start_server
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
