#!/usr/bin/env bash
# Makes docs/dashboard.png, the README's picture, and docs/img/gradcam-overlay.png, its picture
# of "why?", on purpose and from a real run (the browser test only writes bench-out/). It starts
# `vggserve serve` on a free port with the stand-in weights over the full shared
# cats_and_dogs_small (benches/lib.sh), runs recipe 1 through the API with the server's own
# defaults (extract features, then train the dense head on them: 30 epochs), and classifies
# test photos with the new model until it has labelled one cat and one dog right (the label is
# the folder's name). Then Chromium (benches/dashboard_screenshot.mjs, with the playwright-core
# of tests/dashboard/) shows the training job's curves and the first right prediction in the
# dashboard and screenshots the page, then ticks "why?", classifies the right cat and dog
# together and screenshots the Predict panel with their Grad-CAM overlays.
# Recipe 1 on the full dataset takes ~6-8 minutes on 2 CPU cores. Needs target/release/vggserve
# (make build), node, and Debian's /usr/bin/chromium (tests/dashboard/run.sh installs it).
#
#   benches/dashboard_screenshot.sh                               # writes both pictures
#   OUT=bench-out/dashboard.png GRADCAM_OUT=bench-out/gradcam-overlay.png \
#     benches/dashboard_screenshot.sh                             # somewhere else
#   VGGSERVE_BIN=/path/to/vggserve benches/dashboard_screenshot.sh
set -euo pipefail
shopt -s inherit_errexit # a failing request inside $(...) stops the script too
cd "$(dirname "$0")/.."
OUT=${OUT:-docs/dashboard.png}
GRADCAM_OUT=${GRADCAM_OUT:-docs/img/gradcam-overlay.png}
BIN=${VGGSERVE_BIN:-target/release/vggserve}
DATASET=cats_and_dogs_small
source benches/lib.sh

say() { printf '[dashboard_screenshot %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() {
  say "error: $*" >&2
  if [ -f "${DATA:-}/server.log" ]; then
    echo "--- last lines of the server's log ---" >&2
    tail -n 20 "$DATA/server.log" >&2
  fi
  exit 1
}

# Everything that can be missing is checked before minutes of CPU are spent.
[ -x "$BIN" ] || fail "$BIN not found: build it first (make build), or name one with VGGSERVE_BIN"
[ -f "$SHARED/weights/vgg16-standin.safetensors" ] || fail "no stand-in weights under $SHARED/weights (set VGGSERVE_SHARED)"
[ -d "${DATASETS:-$SHARED/datasets}/$DATASET/test" ] || fail "no $DATASET under ${DATASETS:-$SHARED/datasets}"
command -v node >/dev/null || fail "node (>= 20) is needed"
[ -x /usr/bin/chromium ] || fail "/usr/bin/chromium not found: tests/dashboard/run.sh installs it"
if [ ! -d tests/dashboard/node_modules/playwright-core ]; then
  say "installing playwright-core into tests/dashboard/node_modules (npm ci)"
  (cd tests/dashboard && npm ci --no-audit --no-fund)
fi

say "starting $BIN serve (weights $SHARED/weights/vgg16-standin.safetensors, datasets ${DATASETS:-$SHARED/datasets})"
start_server
say "server ready at $URL; its log: $DATA/server.log"
say "the server's job defaults (GET /v1/jobs/defaults), used as they are:"
curl -sf "$URL/v1/jobs/defaults" | python3 -c '
import json, sys
d = json.load(sys.stdin)["defaults"]
for k in ("extract_features", "train_on_features"):
    print("    %s: %s" % (k, json.dumps(d[k])))'

# POST a job, wait for it, stop with its error unless it succeeded; prints the job's JSON.
run_job() {
  local id job status
  id=$(post "$1") || fail "the server refused the job $1"
  say "job $id queued: $1" >&2
  job=$(wait_job "$id" 5)
  status=$(echo "$job" | field '["status"]')
  [ "$status" = succeeded ] || fail "job $id $status: $(echo "$job" | field '.get("error")')"
  echo "$job"
}

t0=$SECONDS
say "recipe 1, step 1: extract features of $DATASET with the frozen VGG16 base (the long part)"
extract_job=$(run_job "{\"kind\":\"extract_features\",\"dataset\":\"$DATASET\"}")
extract=$(echo "$extract_job" | field '["id"]')
say "features extracted in $((SECONDS - t0)) s: job $extract"

t1=$SECONDS
say "recipe 1, step 2: train the dense classifier on those features (the server's default epochs)"
train_job=$(run_job "{\"kind\":\"train\",\"dataset\":\"$DATASET\",\"features\":\"$extract\"}")
train=$(echo "$train_job" | field '["id"]')
model=$(echo "$train_job" | field '["model_id"]')
epochs=$(echo "$train_job" | field '["epochs"].__len__()')
say "trained in $((SECONDS - t1)) s: job $train, $epochs epochs, model $model"
echo "$train_job" | python3 -c '
import json, sys
j = json.load(sys.stdin)
last = j["epochs"][-1]
print("    last epoch: acc %.3f, val_acc %.3f, loss %.3f, val_loss %.3f" % (last["acc"], last["val_acc"], last["loss"], last["val_loss"]))
test = (j.get("result") or {}).get("test")
if test: print("    test split: %s" % json.dumps(test))'

# Test photos, cats and dogs in turn, until the model has labelled one of each as its folder
# says. The first right one is the dashboard's (as before); the cat and the dog are "why?"'s.
say "classifying test photos with model $model until one cat and one dog are right"
photo=
label=
declare -A right=()
for i in $(seq 0 9); do
  for cls in cats dogs; do
    [ -z "${right[$cls]:-}" ] || continue
    candidate=$(ls "${DATASETS:-$SHARED/datasets}/$DATASET/test/$cls" | grep -iE '\.jpe?g$' | sort | sed -n "$((i + 1))p" || true)
    [ -n "$candidate" ] || continue
    candidate=${DATASETS:-$SHARED/datasets}/$DATASET/test/$cls/$candidate
    answer=$(curl -sf -XPOST "$URL/v1/predict?model=$model" -F "image=@$candidate;type=image/jpeg") ||
      fail "POST /v1/predict failed for $candidate"
    got=$(echo "$answer" | field '["predictions"][0]["label"]')
    p=$(echo "$answer" | field '["predictions"][0]["probability"]')
    if [ "$got" = "$cls" ]; then
      say "  $candidate: $got (p=$p), right"
      right[$cls]=$candidate
      [ -n "$photo" ] || { photo=$candidate; label=$cls; }
      if [ -n "${right[cats]:-}" ] && [ -n "${right[dogs]:-}" ]; then break 2; fi
    else
      say "  $candidate: $got (p=$p), wrong: trying the next photo"
    fi
  done
done
for cls in cats dogs; do
  [ -n "${right[$cls]:-}" ] || fail "the model labelled none of 10 $cls test photos right"
done

say "driving Chromium: select job $train, classify $(basename "$photo") with model $model, screenshot;"
say "  then \"why?\" on $(basename "${right[cats]}") and $(basename "${right[dogs]}"), screenshot of the Predict panel"
node benches/dashboard_screenshot.mjs "$URL" "$train" "$epochs" "$model" "$photo" "$label" "$OUT" \
  "${right[cats]}" "${right[dogs]}" "$GRADCAM_OUT"
say "done in $((SECONDS - t0)) s: $OUT, $GRADCAM_OUT"
