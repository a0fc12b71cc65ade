#!/usr/bin/env bash
# Recipe 1 (or any job sequence) through the HTTP API, as a curl user runs it: starts
# `vggserve serve` on a free port over ../shared/datasets with the stand-in weights, extracts
# features, trains the dense head (30 epochs, the seed's defaults), and writes every job's
# JSON (per-epoch metrics, test accuracy, wall times) to $OUT (default bench-out/recipe1.json).
#
#   benches/recipe_api.sh            # recipe 1 in full
#   EPOCHS=5 benches/recipe_api.sh   # shorter
#   CONV_PRECISION=bf16 OUT=bench-out/recipe1-bf16.json benches/recipe_api.sh
#   DATASET=flowers_small OUT=bench-out/recipe1-flowers.json benches/recipe_api.sh   # 5 classes
#
# DATASET (default cats_and_dogs_small) names a folder under the datasets dir; VGGSERVE_BIN
# (default target/release/vggserve) picks the server binary (see benches/lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench-out/recipe1.json}
DATASET=${DATASET:-cats_and_dogs_small}
mkdir -p "$(dirname "$OUT")"
source benches/lib.sh
start_server
t0=$(date +%s.%N)
extract=$(post "{\"kind\":\"extract_features\",\"dataset\":\"$DATASET\"}")
extract_job=$(wait_job $extract)
t1=$(date +%s.%N)
train=$(post "{\"kind\":\"train\",\"dataset\":\"$DATASET\",\"features\":\"$extract\",\"epochs\":${EPOCHS:-30}}")
train_job=$(wait_job $train)
t2=$(date +%s.%N)
# The job JSON goes through the environment, not pasted into Python source, so that escapes
# in it (quotes or \n in messages, photo names) reach json.loads unchanged.
EXTRACT_JOB=$extract_job TRAIN_JOB=$train_job DATASET=$DATASET python3 - "$OUT" "$t0" "$t1" "$t2" <<'PY'
import json, os, sys, platform, subprocess
out, t0, t1, t2 = sys.argv[1], *map(float, sys.argv[2:])
extract, train = json.loads(os.environ["EXTRACT_JOB"]), json.loads(os.environ["TRAIN_JOB"])
cpu = subprocess.run(["sh", "-c", "lscpu | grep 'Model name' | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
result = {"machine": {"cpu": cpu, "cores": os.cpu_count()}, "dataset": os.environ["DATASET"], "extract_seconds": t1 - t0, "train_seconds": t2 - t1,
          "extract": extract, "train": train,
          "final": train["epochs"][-1] if train["epochs"] else None, "test": (train.get("result") or {}).get("test")}
json.dump(result, open(out, "w"), indent=2)
print(json.dumps({k: result[k] for k in ("extract_seconds", "train_seconds", "final", "test")}, indent=2))
PY
