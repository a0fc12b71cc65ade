# Shared by the benches/*_api.sh scripts (sourced, not run): start `vggserve serve` on a free
# port with the stand-in weights, the way a curl user would, and talk to it.
#
#   start_server [extra serve flags...]   sets URL, SERVER_PID, DATA (fresh data dir);
#                                         DATASETS (default ../shared/datasets), DEVICE,
#                                         CONV_PRECISION and VGGSERVE_BIN (default
#                                         target/release/vggserve) are read from the environment
#   post '<job JSON>'                     queue a job, print its id
#   wait_job ID [poll seconds]            wait until the job ends, print its JSON
#   field '["key"]'                       read a JSON value from stdin
SHARED=${VGGSERVE_SHARED:-../shared}

field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

start_server() {
  DATA=$(mktemp -d)
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  URL=http://127.0.0.1:$port
  "${VGGSERVE_BIN:-target/release/vggserve}" serve --addr 127.0.0.1:$port --data-dir "$DATA" \
    --datasets-dir "${DATASETS:-$SHARED/datasets}" --weights "$SHARED/weights/vgg16-standin.safetensors" \
    ${DEVICE:+--device $DEVICE} ${CONV_PRECISION:+--conv-precision $CONV_PRECISION} "$@" \
    > "$DATA/server.log" 2>&1 &
  SERVER_PID=$!
  trap 'kill $SERVER_PID 2>/dev/null; rm -rf "$DATA"' EXIT
  for _ in $(seq 150); do curl -sf "$URL/readyz" >/dev/null && return; sleep 0.2; done
  echo "server did not become ready; its log:" >&2
  cat "$DATA/server.log" >&2
  return 1
}

post() {
  curl -sf -XPOST "$URL/v1/jobs" -H 'content-type: application/json' -d "$1" | field '["id"]'
}

wait_job() {
  local job
  while :; do
    job=$(curl -sf "$URL/v1/jobs/$1")
    case $(echo "$job" | field '["status"]') in succeeded|failed|cancelled) echo "$job"; return;; esac
    sleep "${2:-2}"
  done
}
