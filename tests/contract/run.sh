#!/usr/bin/env bash
# Contract test: schemathesis (pinned in tests/requirements.txt, installed into .venv by
# `make venv`) generates requests from the server's own GET /openapi.json and fails on any 5xx
# and on any response the document does not allow (status code, content type, body schema).
# This script owns one throw-away server: it builds a temp dir (outside the tree) with a `tiny`
# dataset of symlinked photos, starts the release binary on a free loopback port with the
# stand-in weights, seeds it with one features job and one model (so id routes answer 200 too),
# runs schemathesis against it with a fixed seed and bounded examples under a hard wall-clock
# limit, then stops the server and removes the temp dir, also on failure. Checks and exceptions:
# tests/contract/schemathesis.toml.
# Needs target/release/vggserve (make build) or another binary named by VGGSERVE_BIN, and
# VGGSERVE_SHARED (the Makefile sets it). Knobs: CONTRACT_EXAMPLES, CONTRACT_SEED,
# CONTRACT_TIMEOUT (seconds for the whole schemathesis run).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD

BIN=${VGGSERVE_BIN:-target/release/vggserve}
SHARED=${VGGSERVE_SHARED:?set VGGSERVE_SHARED to the shared test data (make test-contract does)}
EXAMPLES=${CONTRACT_EXAMPLES:-50}
SEED=${CONTRACT_SEED:-20240601}
LIMIT=${CONTRACT_TIMEOUT:-240}
SCHEMATHESIS=.venv/bin/schemathesis

fail() { echo "tests/contract/run.sh: $*" >&2; exit 1; }
[ -x "$BIN" ] || fail "no server binary at $BIN (make build, or set VGGSERVE_BIN)"
[ -x "$SCHEMATHESIS" ] || fail "$SCHEMATHESIS is missing (make venv)"
WEIGHTS=$SHARED/weights/vgg16-standin.safetensors
PHOTOS=$SHARED/datasets/cats_and_dogs_small
[ -f "$WEIGHTS" ] || fail "missing $WEIGHTS"
[ -d "$PHOTOS" ] || fail "missing $PHOTOS"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/vggserve-contract.XXXXXX")
LOG=$TMP/server.log
SERVER_PID=
STARTED=$SECONDS

cleanup() {
  local status=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    # It stops its worker after the current batch; a job the fuzzer queued may not wait for that.
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -f "$LOG" ]; then
    echo "--- server log (last 40 lines) ---" >&2
    tail -n 40 "$LOG" >&2
  fi
  rm -rf "$TMP"
  echo "contract test: $([ "$status" -eq 0 ] && echo PASSED || echo "FAILED (exit $status)")" \
    "in $((SECONDS - STARTED))s" >&2
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The `tiny` dataset, as tests/api/helpers.rs makes it: per class, the first photos (by name)
# of each split of the shared dataset, symlinked.
for split_count in train:10 validation:5 test:5; do
  split=${split_count%%:*} count=${split_count##*:}
  for class in cats dogs; do
    dir=$TMP/datasets/tiny/$split/$class
    mkdir -p "$dir"
    # awk, not head: head would close the pipe early and, with pipefail, fail on sort's SIGPIPE.
    find "$PHOTOS/$split/$class" -maxdepth 1 -type f -printf '%f\n' | LC_ALL=C sort |
      awk -v n="$count" 'NR <= n' |
      while read -r name; do ln -s "$PHOTOS/$split/$class/$name" "$dir/$name"; done
  done
done

# No auth settings inherited from the environment: the document's routes are tested open.
env -u VGGSERVE_API_TOKEN -u VGGSERVE_INSECURE_NO_AUTH -u VGGSERVE_OPEN_PREDICT \
  VGGSERVE_STATIC_DIR=static NO_COLOR=1 \
  "$BIN" serve --addr 127.0.0.1:0 --device cpu --data-dir "$TMP/data" \
  --datasets-dir "$TMP/datasets" --weights "$WEIGHTS" >"$LOG" 2>&1 &
SERVER_PID=$!

URL=
for _ in $(seq 600); do
  URL=$(grep -o -m 1 'listening on http://[0-9.]*:[0-9]*' "$LOG" | sed 's/^listening on //') || true
  [ -n "$URL" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || fail "vggserve exited before listening"
  sleep 0.1
done
[ -n "$URL" ] || fail "vggserve did not log 'listening on http://...' within 60s"

for _ in $(seq 600); do
  curl -fsS -o /dev/null "$URL/readyz" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || fail "vggserve exited before it was ready"
  sleep 0.1
done
curl -fsS -o /dev/null "$URL/readyz" || fail "$URL/readyz did not answer 200 within 60s"

# Seed one finished job of each producing kind, so that the routes taking a job or model id
# also answer 200 (schemathesis picks the ids up from GET /v1/jobs and GET /v1/models) and their
# real bodies are checked against the document, not only their 400s and 404s. Small on purpose.
seed_job() { # $1: request body; prints the finished job's JSON
  local job id
  job=$(curl -fsS -H 'content-type: application/json' -d "$1" "$URL/v1/jobs") ||
    fail "seeding: POST /v1/jobs $1 was refused"
  id=$(printf '%s' "$job" | grep -o -m 1 '"id":"[^"]*"' | cut -d '"' -f 4)
  for _ in $(seq 1200); do
    job=$(curl -fsS "$URL/v1/jobs/$id") || fail "seeding: GET /v1/jobs/$id failed"
    case $job in
      *'"status":"succeeded"'*) printf '%s' "$job"; return ;;
      *'"status":"failed"'* | *'"status":"cancelled"'*) fail "seeding: job $id ended: $job" ;;
    esac
    sleep 0.1
  done
  fail "seeding: job $id did not finish within 120s"
}
features=$(seed_job '{"kind":"extract_features","dataset":"tiny","image_size":32}' |
  grep -o -m 1 '"id":"[^"]*"' | cut -d '"' -f 4)
seed_job "{\"kind\":\"train\",\"dataset\":\"tiny\",\"features\":\"$features\",\"epochs\":1}" \
  >/dev/null

echo "contract test: vggserve ready at $URL, seeded with a features job and a model" \
  "($((SECONDS - STARTED))s); schemathesis: seed $SEED," \
  "$EXAMPLES examples per operation, at most ${LIMIT}s" >&2

# The checks (no 5xx; status code, content type and body as documented) and the narrow
# exceptions for the tester's own quirks are in tests/contract/schemathesis.toml. Phases: examples
# (the document's own), coverage (boundary and invalid values for every parameter and body: these
# must get a documented 4xx, never a 5xx) and fuzzing (positive and negative data); the stateful
# phase is left out to keep the run bounded. It runs inside $TMP, since schemathesis and hypothesis
# write caches (.schemathesis/, .hypothesis/) into the working directory; no example database, so
# a run never depends on an earlier one. One worker: the server shares the two cores with us.
status=0
(cd "$TMP" && timeout --kill-after=10 "$LIMIT" "$REPO/$SCHEMATHESIS" \
  --config-file "$REPO/tests/contract/schemathesis.toml" \
  run "$URL/openapi.json" \
  --phases examples,coverage,fuzzing \
  --max-examples "$EXAMPLES" \
  --seed "$SEED" \
  --generation-database none \
  --workers 1 \
  --request-timeout 60 \
  --no-color) || status=$?

if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  fail "schemathesis did not finish within ${LIMIT}s"
fi
kill -0 "$SERVER_PID" 2>/dev/null || fail "vggserve died during the run"
[ "$status" -eq 0 ] || fail "schemathesis reported failures or errors (exit $status): see above"
