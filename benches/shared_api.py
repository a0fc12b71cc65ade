"""Datasets and features across machines (run by benches/shared_api.sh, beside PostgreSQL
and SeaweedFS): every process has a data dir of its own and shares only the database and
an S3 bucket. flowers_small is uploaded as a zip to the API replica; `extract_features`
on it then runs on worker w1 (fetches the dataset, computes every image: the reference),
on a fresh worker w2 (fetches the dataset, reads every feature w1 shared), and on w2
again (its own cache: no fetch at all). Times are POST → succeeded as a client polling
every 50 ms sees them, and the job's own `seconds`.
"""
import io, json, os, signal, subprocess, sys, tempfile, time, uuid, zipfile
import urllib.request
from pathlib import Path

from cluster import call, database, port, wait_ready

BIN = os.environ.get("VGGSERVE_BIN", "target/release/vggserve")
SHARED = Path(os.environ["VGGSERVE_SHARED"]).resolve()
DATASET = os.environ.get("DATASET", "flowers_small")


class Machines:
    def __init__(self, root):
        self.root, self.procs = root, {}
        self.common = ["--device", "cpu", "--weights", str(SHARED / "weights/vgg16-standin.safetensors"),
                       "--database-url", database(), "--datasets-dir", str(root / "no-datasets"),
                       "--artifacts-url", f"s3://{os.environ['VGGSERVE_TEST_S3_BUCKET']}/bench-{uuid.uuid4().hex}"]

    def start(self, name, role):
        p = port()
        addr = ["--addr", f"127.0.0.1:{p}", "--no-worker"] if role == "serve" else \
            ["--health-addr", f"127.0.0.1:{p}", "--worker-name", name, "--kinds", "extract_features"]
        log = open(self.root / f"{name}.log", "w")
        proc = subprocess.Popen([BIN, role] + addr + self.common + ["--data-dir", str(self.root / name)],
                                stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        wait_ready(f"http://127.0.0.1:{p}", proc, self.root / f"{name}.log")
        return f"http://127.0.0.1:{p}"

    def stop(self, name):
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)

    def stop_all(self):
        for name in list(self.procs):
            self.stop(name)


def zipped(folder):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                z.write(f, f.relative_to(folder).as_posix())
    return buffer.getvalue()


def extract(api):
    t0 = time.time()
    id = call("POST", api + "/v1/jobs", {"kind": "extract_features", "dataset": "uploaded"})["id"]
    while (job := call("GET", f"{api}/v1/jobs/{id}"))["status"] not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.05)
    assert job["status"] == "succeeded", job
    cache = job["result"]["cache"]
    return {"post_to_succeeded_s": round(time.time() - t0, 2), "job_seconds": round(job["result"]["seconds"], 2),
            "computed": cache["computed"], "hits": cache["hits"], "shared_hits": cache["shared_hits"]}


def main(out):
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "dataset": DATASET, "cores": os.cpu_count(),
               "cpu": next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))}
    with tempfile.TemporaryDirectory() as tmp:
        m = Machines(Path(tmp))
        try:
            api = m.start("api", "serve")
            body = zipped(SHARED / "datasets" / DATASET)
            t0 = time.time()
            req = urllib.request.Request(api + "/v1/datasets?name=uploaded", data=body, method="POST",
                                         headers={"content-type": "application/zip"})
            with urllib.request.urlopen(req, timeout=600) as r:
                created = json.loads(r.read())
            results["upload"] = {"megabytes": round(len(body) / 1e6, 1), "seconds": round(time.time() - t0, 2),
                                 "images": sum(s["images"] for s in created["splits"].values()),
                                 "skipped": len(created["skipped"])}
            m.start("w1", "worker")
            results["w1_computes"] = extract(api)
            m.stop("w1")
            m.start("w2", "worker")
            results["w2_reads_shared"] = extract(api)
            results["w2_own_cache"] = extract(api)
        finally:
            m.stop_all()
    for key, value in results.items():
        print(key, json.dumps(value), flush=True)
    Path(out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main(sys.argv[1])
