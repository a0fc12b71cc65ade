"""What the scale-out benchmarks share: free ports, JSON calls, waiting for /readyz, a
fresh database on the throwaway PostgreSQL that tests/services/with_postgres.sh starts."""
import json, os, socket, subprocess, sys, time
import urllib.request
from pathlib import Path


def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def call(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")


def wait_ready(url, proc, log):
    for _ in range(300):
        try:
            call("GET", url + "/readyz"); return
        except Exception:
            if proc.poll() is not None:
                sys.exit(f"process exited; log: {Path(log).read_text()[-2000:]}")
            time.sleep(0.1)
    sys.exit("not ready")


def database():
    admin = os.environ["VGGSERVE_TEST_POSTGRES_URL"]
    name = f"bench_{int(time.time() * 1000)}"
    subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True)
    return admin.rsplit("/", 1)[0] + "/" + name


