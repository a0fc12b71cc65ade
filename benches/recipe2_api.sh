#!/usr/bin/env bash
# The seed's recipe 2 whole through the HTTP API, as a curl user runs it: a `train` job with
# live augmentation through the frozen base, every default (30 epochs × 100 steps × 20
# photos, validation 50 × 20 each epoch, then the 1,000 test photos). The server starts with
# the default --conv-precision auto unless CONV_PRECISION says otherwise. Writes the job's
# JSON, the wall time, the per-epoch curve and what auto chose to $OUT. About 51-55 minutes
# on a 2-core AVX2 EPYC with int8 frozen layers, about twice that in f32: run it in the
# background, e.g.
#
#   setsid benches/recipe2_api.sh > bench-out/recipe2.log 2>&1 &
#   EPOCHS=2 STEPS=5 benches/recipe2_api.sh          # a short check
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench-out/recipe2.json}
mkdir -p "$(dirname "$OUT")"
source benches/lib.sh
start_server
ready=$(curl -sf "$URL/readyz")
t0=$(date +%s.%N)
job=$(post "{\"kind\":\"train\",\"dataset\":\"cats_and_dogs_small\",\"augment\":true${EPOCHS:+,\"epochs\":$EPOCHS}${STEPS:+,\"steps_per_epoch\":$STEPS}}")
done_job=$(wait_job "$job" 10)
t1=$(date +%s.%N)
JOB=$done_job READY=$ready python3 - "$OUT" "$t0" "$t1" <<'PY'
import json, os, sys, subprocess, datetime
out, t0, t1 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
job, ready = json.loads(os.environ["JOB"]), json.loads(os.environ["READY"])
cpu = subprocess.run(["sh", "-c", "lscpu | grep 'Model name' | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
result = {"machine": {"cpu": cpu, "cores": os.cpu_count()}, "date": datetime.datetime.now().isoformat(timespec="minutes"),
          "wall_seconds": t1 - t0, "conv_precision": ready["model"]["conv_precision"],
          "conv_precision_choice": ready["model"].get("conv_precision_choice"),
          "status": job["status"], "params": job["params"], "epochs": job["epochs"],
          "test": (job.get("result") or {}).get("test"), "error": job.get("error"), "job": job}
json.dump(result, open(out, "w"), indent=2)
print(f"{job['status']} in {t1 - t0:.0f} s ({(t1 - t0) / 60:.1f} min), conv precision {result['conv_precision']}")
for e in job["epochs"]:
    print(json.dumps({k: e.get(k) for k in ("epoch", "loss", "acc", "val_loss", "val_acc", "seconds")}))
print("test:", json.dumps(result["test"])[:400])
PY
