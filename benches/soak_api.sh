#!/usr/bin/env bash
# Memory over a long /predict load: trains a small model on a tiny dataset (10/5/5 photos per
# class, symlinked from ../shared), then runs `wrk` with 32 clients for $DURATION seconds
# (default 600) while sampling the server's RSS every $EVERY seconds (default 10). Writes the
# samples and wrk's summary to $OUT (default bench-out/soak.json). Needs wrk (Debian: wrk).
#
#   benches/soak_api.sh
#   DURATION=1800 CONV_PRECISION=bf16 benches/soak_api.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench-out/soak.json}
DURATION=${DURATION:-600}; EVERY=${EVERY:-10}
mkdir -p "$(dirname "$OUT")"
source benches/lib.sh
DATASETS=$(mktemp -d)
for split in train:10 validation:5 test:5; do
  for class in cats dogs; do
    mkdir -p "$DATASETS/tiny/${split%:*}/$class"
    ls "$SHARED/datasets/cats_and_dogs_small/${split%:*}/$class" | sort | head -n "${split#*:}" | while read -r f; do
      ln -s "$(realpath "$SHARED/datasets/cats_and_dogs_small/${split%:*}/$class/$f")" "$DATASETS/tiny/${split%:*}/$class/$f"
    done
  done
done
start_server
trap 'kill $SERVER_PID 2>/dev/null; rm -rf "$DATA" "$DATASETS"' EXIT
features=$(post '{"kind":"extract_features","dataset":"tiny"}')
wait_job "$features" >/dev/null
wait_job "$(post "{\"kind\":\"train\",\"dataset\":\"tiny\",\"features\":\"$features\",\"epochs\":3}")" >/dev/null
export IMG=$(realpath "$SHARED/datasets/cats_and_dogs_small/test/cats/cat.4508.jpg")
for _ in $(seq 10); do
  curl -sf -XPOST "$URL/v1/predict" -H 'content-type: image/jpeg' --data-binary @"$IMG" >/dev/null
done
rss_mib() { echo $(( $(ps -o rss= -p "$SERVER_PID") / 1024 )); }
SAMPLES=$(mktemp)
echo "0 $(rss_mib)" > "$SAMPLES"
wrk -t2 -c32 -d"${DURATION}s" --timeout 10s -s benches/predict.lua "$URL/v1/predict" > "$DATA/wrk.txt" &
WRK=$!
start=$(date +%s)
while kill -0 $WRK 2>/dev/null; do
  sleep "$EVERY"
  echo "$(( $(date +%s) - start )) $(rss_mib)" >> "$SAMPLES"
done
sleep 5
echo "$(( $(date +%s) - start )) $(rss_mib)" >> "$SAMPLES"
python3 - "$OUT" "$SAMPLES" "$DATA/wrk.txt" "$DURATION" <<'PY'
import json, sys
out, samples, wrk, duration = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rows = [tuple(map(int, line.split())) for line in open(samples) if line.strip()]
summary = json.loads([l for l in open(wrk) if l.startswith("{")][-1])
quarter = [r[1] for r in rows if r[0] >= duration * 3 // 4 and r[0] <= duration]
result = {"duration_s": duration, "clients": 32, "wrk": summary,
          "rss_mib": {"before": rows[0][1], "max": max(r[1] for r in rows), "after": rows[-1][1],
                      "last_quarter_min": min(quarter) if quarter else None,
                      "last_quarter_max": max(quarter) if quarter else None},
          "samples": [{"t_s": t, "rss_mib": m} for t, m in rows]}
json.dump(result, open(out, "w"), indent=2)
print(json.dumps({k: result[k] for k in ("wrk", "rss_mib")}, indent=2))
PY
rm -f "$SAMPLES"
