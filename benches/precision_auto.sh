#!/usr/bin/env bash
# What --conv-precision auto sees and chooses on this machine, beside PyTorch in the same
# run: the conv base's rate in f32 and bf16 (`vggserve bench`, batch 1 and 8, median of 3),
# PyTorch's f32 forward (channels_last) and its bf16 end to end over the same 40 photos as
# vggserve's bf16 end to end; then a server started with auto on a fresh data dir (it
# measures) and again on the same dir (it reads the kept measurement): seconds until
# /readyz answers, and what it chose. Prints one line per figure.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
WEIGHTS=$SHARED/weights/vgg16-standin.safetensors
TRAIN=$SHARED/datasets/cats_and_dogs_small/train
for p in f32 bf16; do
  target/release/vggserve bench --device cpu --weights "$WEIGHTS" --conv-precision $p \
    --batch-sizes 1,8 --repeats 3 --dir "$TRAIN" --limit 40 --e2e-batch-size 20 2>/dev/null | python3 -c "
import json, sys
d = json.load(sys.stdin)
rates = ', '.join(f\"batch {f['batch_size']}: {f['images_per_second']:.2f}\" for f in d['forward'])
print(f\"vggserve $p conv base images/s: {rates}; end to end, 40 photos: {d['end_to_end']['images_per_second']:.2f}\")"
done
.venv/bin/python benches/reference/conv_throughput.py --skip-golden --batches 1 8 \
  --formats channels_last --repeats 3 --threads 2 2>&1 | grep -E "img/s" | sed 's/^/PyTorch f32 /'
for flags in "--channels-last" "--channels-last --bf16"; do
  .venv/bin/python benches/reference/features_e2e.py --dir "$TRAIN" --limit 40 --threads 2 \
    --progress-every 0 $flags 2>&1 | grep -E "img/s end to end" | sed "s/^/PyTorch $flags: /"
done
DATA_DIR=$(mktemp -d)
for run in measure reuse; do
  t0=$(date +%s.%N)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  target/release/vggserve serve --addr 127.0.0.1:$port --data-dir "$DATA_DIR" --datasets-dir "$DATA_DIR" \
    --weights "$WEIGHTS" --conv-precision auto > "$DATA_DIR/$run.log" 2>&1 &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/readyz" > "$DATA_DIR/$run.json"; do sleep 0.1; done
  t1=$(date +%s.%N)
  python3 - "$run" "$t0" "$t1" "$DATA_DIR/$run.json" <<'PY'
import json, sys
run, t0, t1, path = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
c = json.load(open(path))["model"]["conv_precision_choice"]
rates = ", ".join(f"{k} {v:.2f}" for k, v in c["rates"].items())
print(f"auto ({run}): ready after {t1 - t0:.1f} s, chose {c['chosen']} (images/s {rates}; "
      f"bf16 feature error {c['errors']['bf16']:.4f}; kept from before: {c['cached']})")
PY
  kill $pid; wait $pid 2>/dev/null || true
done
rm -rf "$DATA_DIR"
