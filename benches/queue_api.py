"""The queue's overhead and failover (run by benches/queue_api.sh, beside PostgreSQL).

Modes: `sqlite` (one `vggserve serve`), `postgres` (`serve --no-worker` + 1 worker) and
`postgres-2` (+ 2 workers). Jobs are `extract_features` on a small dataset linked from
../shared (8 photos; after the first job the features come from the cache, so a job is
mostly queue and bookkeeping). Per mode: JOBS sequential jobs (claim latency = the job's
started_at - created_at, both stamped by the store; POST → running and POST → succeeded
as the client sees them), then JOBS queued at once (throughput). On postgres-2, a training
job's worker is killed mid-epoch: kill → claimed again, and how much work was redone.
"""
import json, os, signal, statistics, subprocess, sys, tempfile, time
import urllib.request
from datetime import datetime
from pathlib import Path

from cluster import call, database, port, wait_ready

BIN = os.environ.get("VGGSERVE_BIN", "target/release/vggserve")
SHARED = Path(os.environ["VGGSERVE_SHARED"]).resolve()
JOBS = int(os.environ.get("JOBS", "20"))
LEASE = os.environ.get("LEASE", "5")


class Cluster:
    def __init__(self, root, database_url, workers, all_in_one):
        self.root, self.procs, self.workers = root, [], []
        common = ["--device", "cpu", "--weights", str(SHARED / "weights/vgg16-standin.safetensors"),
                  "--data-dir", str(root / "data"), "--datasets-dir", str(root / "datasets")]
        if database_url:
            common += ["--database-url", database_url]
        env = dict(os.environ, VGGSERVE_LEASE_SECONDS=LEASE)
        p = port()
        self.url = f"http://127.0.0.1:{p}"
        args = ["serve", "--addr", f"127.0.0.1:{p}"] + ([] if all_in_one else ["--no-worker"])
        self.api = self.spawn(args + common, env, "api")
        wait_ready(self.url, self.api, root / "api.log")
        for n in range(workers):
            hp = port()
            w = self.spawn(["worker", "--health-addr", f"127.0.0.1:{hp}", "--worker-name", f"w{n+1}"] + common, env, f"w{n+1}")
            wait_ready(f"http://127.0.0.1:{hp}", w, root / f"w{n+1}.log")
            self.workers.append(w)

    def spawn(self, args, env, name):
        log = open(self.root / f"{name}.log", "w")
        proc = subprocess.Popen([BIN] + args, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs.append(proc)
        return proc

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()

    def post(self, body):
        return call("POST", self.url + "/v1/jobs", body)["id"]

    def job(self, id):
        return call("GET", f"{self.url}/v1/jobs/{id}")


def ts(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def dataset(root):
    for split, n in [("train", 2), ("validation", 1), ("test", 1)]:
        for cls in ["cats", "dogs"]:
            src = SHARED / "datasets/cats_and_dogs_small" / split / cls
            dst = root / "datasets/mini" / split / cls
            dst.mkdir(parents=True)
            for f in sorted(src.iterdir())[:n]:
                (dst / f.name).symlink_to(f)


def quantiles(xs):
    xs = sorted(xs)
    return {"median_ms": round(1000 * statistics.median(xs), 1), "p90_ms": round(1000 * xs[int(0.9 * (len(xs) - 1))], 1),
            "max_ms": round(1000 * xs[-1], 1)}


def latency_and_throughput(c):
    job = {"kind": "extract_features", "dataset": "mini"}
    first = c.post(job)
    while c.job(first)["status"] not in ("succeeded", "failed"):
        time.sleep(0.05)  # the first job computes features; the rest hit the cache
    claim, to_running, to_done = [], [], []
    for _ in range(JOBS):
        t0 = time.time()
        id = c.post(job)
        seen_running = None
        while True:
            j = c.job(id)
            if seen_running is None and j["status"] != "queued":
                seen_running = time.time()
            if j["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.005)
        assert j["status"] == "succeeded", j
        claim.append(ts(j["started_at"]) - ts(j["created_at"]))
        to_running.append(seen_running - t0)
        to_done.append(time.time() - t0)
    t0 = time.time()
    ids = [c.post(job) for _ in range(JOBS)]
    for id in ids:
        while c.job(id)["status"] not in ("succeeded", "failed"):
            time.sleep(0.02)
    burst = time.time() - t0
    return {"claim_latency": quantiles(claim), "post_to_running": quantiles(to_running),
            "post_to_succeeded": quantiles(to_done),
            "burst": {"jobs": JOBS, "seconds": round(burst, 2), "jobs_per_s": round(JOBS / burst, 2)}}


def failover(c):
    id = c.post({"kind": "train", "dataset": "mini", "augment": True, "epochs": 3, "steps_per_epoch": 6,
                 "validation_steps": 1, "batch_size": 2})
    while not c.job(id)["epochs"]:
        time.sleep(0.05)
    events = urllib.request.urlopen(f"{c.url}/v1/jobs/{id}/events", timeout=5)
    owner = None
    while owner is None:
        line = events.readline().decode()
        if line.startswith("data:") and '"running"' in line:
            owner = json.loads(line[5:])["worker"]
    events.close()
    victim = c.workers[int(owner.split("/")[0][1:]) - 1]
    epochs_before = len(c.job(id)["epochs"])
    t_kill = time.time()
    victim.kill()
    while c.job(id)["attempts"] < 2:
        time.sleep(0.05)
    t_again = time.time()
    while c.job(id)["status"] not in ("succeeded", "failed"):
        time.sleep(0.1)
    j = c.job(id)
    return {"lease_seconds": int(LEASE), "heartbeat_seconds": round(int(LEASE) / 3, 2),
            "kill_to_claimed_again_s": round(t_again - t_kill, 2), "epochs_recorded_at_kill": epochs_before,
            "epochs_in_the_end": [e["epoch"] for e in j["epochs"]], "status": j["status"], "attempts": j["attempts"]}


def main(out):
    results = {"date": time.strftime("%Y-%m-%d"), "jobs": JOBS, "cpu": next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
               "cores": os.cpu_count()}
    for mode, url, workers, all_in_one in [("sqlite", None, 0, True), ("postgres", "pg", 1, False), ("postgres-2", "pg", 2, False)]:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            dataset(root)
            c = Cluster(root, database() if url else None, workers, all_in_one)
            try:
                results[mode] = latency_and_throughput(c)
                if workers == 2:
                    results[mode]["failover"] = failover(c)
            finally:
                c.stop()
            print(mode, json.dumps(results[mode]), flush=True)
    Path(out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main(sys.argv[1])
