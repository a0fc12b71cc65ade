#!/usr/bin/env bash
# Side-by-side conv-base benchmark on this machine: vggserve vs PyTorch 2.9 (same weights,
# same photos), alternating A/B, REPEAT rounds (default 3); JSON per run into $OUT_DIR and a
# summary (medians) on stdout. Each round also runs both in bf16 (--conv-precision bf16 /
# --bf16). Run when the machine is otherwise idle.
#
#   benches/compare.sh                 # 3 rounds, 200 photos end to end
#   ROUNDS=1 LIMIT=40 benches/compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${VGGSERVE_SHARED:-../shared}
OUT_DIR=${OUT_DIR:-bench-out/compare}
ROUNDS=${ROUNDS:-3}
LIMIT=${LIMIT:-200}
PY=.venv/bin/python
mkdir -p "$OUT_DIR"
# The same 200 photos for both: a class-balanced prefix of train/ in Keras order.
PHOTOS=$(mktemp -d)
trap 'rm -rf "$PHOTOS"' EXIT
for class in cats dogs; do
  mkdir -p "$PHOTOS/$class"
  ls "$SHARED/datasets/cats_and_dogs_small/train/$class" | sort | sed -n "1,$((LIMIT / 2))p" |
    while read -r f; do ln -s "$(realpath "$SHARED/datasets/cats_and_dogs_small/train/$class/$f")" "$PHOTOS/$class/$f"; done
done
for round in $(seq "$ROUNDS"); do
  echo "round $round: vggserve" >&2
  target/release/vggserve bench --device cpu --weights "$SHARED/weights/vgg16-standin.safetensors" \
    --conv-precision f32 --repeats 5 --dir "$PHOTOS" --out "$OUT_DIR/ours-$round.json" > /dev/null
  echo "round $round: PyTorch forward" >&2
  $PY benches/reference/conv_throughput.py --repeats 5 --skip-golden --out "$OUT_DIR/ref-forward-$round.json"
  echo "round $round: PyTorch end to end" >&2
  $PY benches/reference/features_e2e.py --dir "$PHOTOS" --channels-last --progress-every 0 \
    --out "$OUT_DIR/ref-e2e-cl-$round.json"
  $PY benches/reference/features_e2e.py --dir "$PHOTOS" --progress-every 0 --out "$OUT_DIR/ref-e2e-$round.json"
  echo "round $round: bf16, vggserve then PyTorch (channels_last)" >&2
  target/release/vggserve bench --device cpu --weights "$SHARED/weights/vgg16-standin.safetensors" \
    --conv-precision bf16 --repeats 5 --dir "$PHOTOS" --out "$OUT_DIR/bf16-ours-$round.json" > /dev/null
  $PY benches/reference/features_e2e.py --dir "$PHOTOS" --channels-last --bf16 --progress-every 0 \
    --out "$OUT_DIR/bf16-ref-e2e-cl-$round.json"
done
$PY - "$OUT_DIR" "$ROUNDS" <<'PY'
import json, statistics, sys, glob, os
out, rounds = sys.argv[1], int(sys.argv[2])
def load(pattern):
    return [json.load(open(f)) for f in sorted(glob.glob(os.path.join(out, pattern)))]
ours, ref_fwd = load("ours-*.json"), load("ref-forward-*.json")
summary = {"rounds": rounds, "forward_images_per_second": {}, "end_to_end_images_per_second": {}}
for entry in ours[0]["forward"]:
    b = entry["batch_size"]
    row = {"vggserve": statistics.median(r["images_per_second"] for o in ours for r in o["forward"] if r["batch_size"] == b)}
    for fmt in ("nchw", "channels_last"):
        vals = [r["images_per_s"] for o in ref_fwd for r in o["runs"] if r["batch"] == b and r["format"] == fmt]
        if vals:
            row[f"pytorch_{fmt}"] = statistics.median(vals)
    summary["forward_images_per_second"][b] = row
summary["end_to_end_images_per_second"] = {
    "vggserve": statistics.median(o["end_to_end"]["images_per_second"] for o in ours),
    "pytorch_channels_last": statistics.median(r["images_per_s"] for r in load("ref-e2e-cl-*.json")),
    "pytorch_nchw": statistics.median(r["images_per_s"] for r in load("ref-e2e-[0-9]*.json")),
}
summary["end_to_end_images_per_second"]["ratio_vs_pytorch_channels_last"] = (
    summary["end_to_end_images_per_second"]["vggserve"]
    / summary["end_to_end_images_per_second"]["pytorch_channels_last"])
bf16 = {
    "vggserve": statistics.median(o["end_to_end"]["images_per_second"] for o in load("bf16-ours-*.json")),
    "pytorch_channels_last": statistics.median(r["images_per_s"] for r in load("bf16-ref-e2e-cl-*.json")),
    "vggserve_forward": {r["batch_size"]: statistics.median(
        x["images_per_second"] for o in load("bf16-ours-*.json") for x in o["forward"] if x["batch_size"] == r["batch_size"])
        for r in load("bf16-ours-*.json")[0]["forward"]},
}
bf16["ratio_vs_pytorch_bf16"] = bf16["vggserve"] / bf16["pytorch_channels_last"]
bf16["ratio_vs_pytorch_f32_channels_last"] = (
    bf16["vggserve"] / summary["end_to_end_images_per_second"]["pytorch_channels_last"])
summary["bf16_end_to_end_images_per_second"] = bf16
print(json.dumps(summary, indent=2))
PY
