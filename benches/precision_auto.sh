#!/usr/bin/env bash
# What --conv-precision auto sees and chooses on this machine, beside PyTorch in the same
# run: the conv base's images/s in f32, bf16 and int8 at batch 1, 8 and 20 (`vggserve
# bench`, median of 3) and end to end over 40 photos; PyTorch's f32 and bf16 forward
# (channels_last) and its own int8 (FX post-training quantisation, oneDNN engine, the
# faster layout per batch) at the same batches; then a server started with auto on a fresh
# data dir (it measures) and again on the same dir (it reads the kept measurement): seconds
# until /readyz answers, and what it chose. Prints one line per figure, writes
# bench-out/precision.json and draws it as docs/precision.png (benches/precision_chart.py).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
WEIGHTS=$SHARED/weights/vgg16-standin.safetensors
TRAIN=$SHARED/datasets/cats_and_dogs_small/train
OUT=${OUT:-bench-out/precision.json}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$(dirname "$OUT")"
for p in f32 bf16 int8; do
  target/release/vggserve bench --device cpu --weights "$WEIGHTS" --conv-precision $p \
    --batch-sizes 1,8,20 --repeats 3 --dir "$TRAIN" --limit 40 --e2e-batch-size 20 \
    2>/dev/null > "$WORK/vggserve-$p.json"
done
.venv/bin/python benches/reference/conv_throughput.py --skip-golden --batches 1 8 20 \
  --dtypes float32 bfloat16 --formats channels_last --repeats 3 --threads 2 \
  --out "$WORK/torch-float.json" 2>/dev/null
.venv/bin/python benches/reference/int8_conv.py --routes fx --engines onednn \
  --batches 1 8 20 --repeats 3 --calibration 32 --accuracy-images 16 --no-probe \
  --out "$WORK/torch-int8.json" 2>/dev/null
DATA_DIR=$WORK/data
for run in measure reuse; do
  t0=$(date +%s.%N)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  target/release/vggserve serve --addr 127.0.0.1:$port --data-dir "$DATA_DIR" --datasets-dir "$WORK" \
    --weights "$WEIGHTS" --conv-precision auto > "$WORK/$run.log" 2>&1 &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/readyz" > "$WORK/auto-$run.json"; do sleep 0.1; done
  t1=$(date +%s.%N)
  python3 -c "print($t1 - $t0)" > "$WORK/auto-$run.seconds"
  kill $pid; wait $pid 2>/dev/null || true
done
python3 - "$WORK" "$OUT" <<'PY'
import json, os, subprocess, sys, datetime
work, out = sys.argv[1], sys.argv[2]
load = lambda name: json.load(open(os.path.join(work, name)))
rows = []
for p in ("f32", "bf16", "int8"):
    d = load(f"vggserve-{p}.json")
    for f in d["forward"]:
        rows.append({"engine": "vggserve", "precision": p, "batch": f["batch_size"],
                     "images_per_second": f["images_per_second"]})
    print(f"vggserve {p}: " + ", ".join(f"batch {f['batch_size']} {f['images_per_second']:.2f}"
          for f in d["forward"]) + f"; end to end, 40 photos: {d['end_to_end']['images_per_second']:.2f} images/s")
names = {"float32": "f32", "bfloat16": "bf16"}
for r in load("torch-float.json")["runs"]:
    rows.append({"engine": "PyTorch", "precision": names[r["dtype"]], "batch": r["batch"],
                 "images_per_second": r["images_per_s"]})
int8 = load("torch-int8.json")
best = {}
for r in int8["runs"]:
    if r["model"].startswith("int8"):
        best[r["batch"]] = max(best.get(r["batch"], 0), r["images_per_s"])
rows += [{"engine": "PyTorch", "precision": "int8", "batch": b, "images_per_second": v} for b, v in best.items()]
for engine, p in [("PyTorch", "f32"), ("PyTorch", "bf16"), ("PyTorch", "int8")]:
    print(f"{engine} {p}: " + ", ".join(f"batch {r['batch']} {r['images_per_second']:.2f}"
          for r in rows if r["engine"] == engine and r["precision"] == p))
acc = int8.get("accuracy", {})
print("PyTorch int8 block5_pool vs f32:", json.dumps(acc)[:300])
choices = {}
for run in ("measure", "reuse"):
    c = load(f"auto-{run}.json")["model"]["conv_precision_choice"]
    seconds = float(open(os.path.join(work, f"auto-{run}.seconds")).read())
    choices[run] = {"ready_after_s": seconds, **c}
    rates = ", ".join(f"{k} {v:.2f}" for k, v in c["rates"].items())
    errors = ", ".join(f"{k} {v:.4f}" for k, v in c["errors"].items())
    print(f"auto ({run}): ready after {seconds:.1f} s, chose {c['chosen']} (images/s {rates}; "
          f"feature errors {errors}; kept from before: {c['cached']})")
cpu = subprocess.run(["sh", "-c", "lscpu | grep 'Model name' | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
flags = open("/proc/cpuinfo").read()
isa = "AVX-512" if "avx512f" in flags else "AVX2 (no AVX-512)" if "avx2" in flags else "no AVX2"
result = {"machine": f"{cpu}, {os.cpu_count()} cores, {isa}", "date": datetime.date.today().isoformat(),
          "command": "benches/precision_auto.sh", "batch_sizes": [1, 8, 20], "rows": rows,
          "auto_chose": choices["measure"]["chosen"], "auto": choices}
json.dump(result, open(out, "w"), indent=2)
PY
.venv/bin/python benches/precision_chart.py "$OUT" docs/precision.png
echo "wrote $OUT and docs/precision.png"
