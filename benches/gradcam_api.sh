#!/usr/bin/env bash
# Grad-CAM through the API, beside plain predictions in the same run: a model trained on a
# tiny cats/dogs set (first 10/5/5 photos per class), then with one photo per request,
# sequential curl, after warm-up:
#   predict      25 plain predictions (the reference)
#   explain      25 ?explain=gradcam, and 25 with &overlay=png
#   under load   25 plain predictions while 2 clients keep asking for explanations of
#                4 photos each (what a plain prediction waits behind an explanation)
# and PyTorch's Grad-CAM of the same model (its safetensors export) on the same cores.
# Prints one line per measurement: median, min and max milliseconds.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
TINY=$(mktemp -d)
for split in train:10 validation:5 test:5; do
  for class in cats dogs; do
    mkdir -p "$TINY/tiny/${split%:*}/$class"
    ls "$SHARED/datasets/cats_and_dogs_small/${split%:*}/$class" | sort | head -"${split#*:}" |
      while read -r f; do ln -s "$(realpath "$SHARED/datasets/cats_and_dogs_small/${split%:*}/$class/$f")" "$TINY/tiny/${split%:*}/$class/$f"; done
  done
done
DATASETS=$TINY/ start_server
extract=$(post '{"kind":"extract_features","dataset":"tiny"}'); wait_job "$extract" >/dev/null
train=$(post "{\"kind\":\"train\",\"dataset\":\"tiny\",\"features\":\"$extract\",\"epochs\":3}")
model=$(wait_job "$train" | field '["model_id"]')
IMG=$(realpath "$SHARED/datasets/cats_and_dogs_small/test/cats/cat.4508.jpg")
timed() { # QUERY → N sequential requests' milliseconds, one per line
  for _ in $(seq "${N:-25}"); do
    curl -sf -o /dev/null -w '%{time_total}\n' -XPOST "$URL/v1/predict?model=$model$1" \
      -H 'content-type: image/jpeg' --data-binary @"$IMG"
  done
}
summary() { python3 -c "
import statistics, sys
ms = [float(l) * 1e3 for l in sys.stdin if l.strip()]
print(f'$1: median {statistics.median(ms):.0f} ms, min {min(ms):.0f}, max {max(ms):.0f} ({len(ms)} requests)')"; }
N=5 timed "" >/dev/null; N=5 timed "&explain=gradcam" >/dev/null
timed "" | summary "predict (idle)"
timed "&explain=gradcam" | summary "explain=gradcam, 1 photo"
timed "&explain=gradcam&overlay=png" | summary "explain=gradcam&overlay=png, 1 photo"
load() { while :; do curl -sf -o /dev/null -XPOST "$URL/v1/predict?model=$model&explain=gradcam" \
  -F image=@"$IMG" -F image=@"$IMG" -F image=@"$IMG" -F image=@"$IMG"; done; }
load & L1=$!; load & L2=$!
sleep 2
timed "" | summary "predict while 2 clients explain 4 photos each"
kill $L1 $L2; wait $L1 $L2 2>/dev/null || true
curl -sf -o "$DATA/model.safetensors" "$URL/v1/models/$model/export?format=safetensors"
echo "PyTorch Grad-CAM, 1 photo: $(.venv/bin/python benches/reference/gradcam_torch.py "$DATA/model.safetensors" --threads "$(nproc)")"
rm -rf "$TINY"
