#!/usr/bin/env bash
# Upload memory and speed: a zip of about SIZE_MB (default 500) MB of photos — the shared
# cats_and_dogs_small photos repeated under new names, stored uncompressed as cameras'
# JPEGs are — is POSTed to /v1/datasets with curl (streamed from disk) while the server's
# resident memory is sampled every 0.2 s. Prints the RSS before the upload, its peak during
# it, the growth, the wall time and the throughput. The server streams the body to disk and
# extracts entry by entry, so the growth should stay far below the archive's size.
#
#   benches/upload_rss.sh                 # 500 MB
#   SIZE_MB=100 benches/upload_rss.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
SIZE_MB=${SIZE_MB:-500}
WORK=$(mktemp -d)
ZIP=$WORK/photos.zip
python3 - "$ZIP" "$SIZE_MB" "$SHARED/datasets/cats_and_dogs_small" <<'PY'
import os, sys, zipfile
out, size_mb, source = sys.argv[1], int(sys.argv[2]), sys.argv[3]
photos = []
for split in ("train", "validation", "test"):
    for cls in sorted(os.listdir(os.path.join(source, split))):
        folder = os.path.join(source, split, cls)
        photos += [(split, cls, os.path.join(folder, f)) for f in sorted(os.listdir(folder))]
written, copy = 0, 0
with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
    # Whole copies of the dataset, so that every split keeps every class.
    while written < size_mb * 1024 * 1024:
        for split, cls, path in photos:
            archive.write(path, f"{split}/{cls}/r{copy}_{os.path.basename(path)}")
            written += os.path.getsize(path)
        copy += 1
print(f"archive: {os.path.getsize(out) / 2**20:.0f} MiB, {len(archive.namelist())} photos", file=sys.stderr)
PY
start_server --max-dataset-mb $((SIZE_MB * 2)) --request-timeout-secs 3600
trap 'kill $SERVER_PID 2>/dev/null; rm -rf "$DATA" "$WORK"' EXIT
rss() { awk '/VmRSS/ {print $2}' /proc/$SERVER_PID/status; }
before=$(rss)
peak=$before
t0=$(date +%s.%N)
curl -s -o "$WORK/answer.json" -w '%{http_code}' -T "$ZIP" -X POST \
  -H 'content-type: application/zip' "$URL/v1/datasets?name=big" > "$WORK/status" &
CURL=$!
while kill -0 $CURL 2>/dev/null; do
  now=$(rss); [ "$now" -gt "$peak" ] && peak=$now
  sleep 0.2
done
wait $CURL
t1=$(date +%s.%N)
status=$(cat "$WORK/status")
[ "$status" = 201 ] || { echo "upload answered $status: $(cat "$WORK/answer.json")" >&2; exit 1; }
python3 - "$before" "$peak" "$t0" "$t1" "$ZIP" "$WORK/answer.json" <<'PY'
import json, os, sys
before, peak, t0, t1 = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
size = os.path.getsize(sys.argv[5]) / 2**20
answer = json.load(open(sys.argv[6]))
images = sum(s["images"] for s in answer["splits"].values())
print(json.dumps({"archive_mib": round(size), "images": images, "rss_before_mib": round(before / 1024, 1),
                  "rss_peak_mib": round(peak / 1024, 1), "rss_growth_mib": round((peak - before) / 1024, 1),
                  "seconds": round(t1 - t0, 1), "mib_per_second": round(size / (t1 - t0), 1)}, indent=2))
PY
