"""PyTorch reference: Grad-CAM per photo on CPU, for a vggserve safetensors export.

What it measures
    The export loaded as docs/EXPORT.md shows (tests/export/torch_gradcam.py's loader),
    float32, eval mode, ``torch.set_num_threads(N)``. Each timed call explains one
    150x150 photo exactly as the service does: the base up to block5_conv3 without a
    graph, the rest with one, the gradient of the predicted class's score, the weighted
    sum and the normalisation. ``--warmup`` untimed calls, then ``--repeats`` timed
    ones; prints the median, min and max milliseconds as one JSON line. The input is
    random uniform pixels at ``--size``: the cost does not depend on the values.

How to run (from the repository root)
    .venv/bin/python benches/reference/gradcam_torch.py MODEL.safetensors --threads 2
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "export"))
from torch_gradcam import load  # noqa: E402


def explain(model, x, sigmoid):
    with torch.no_grad():
        a = model.features[:30](x)
    a.requires_grad_(True)
    logits = model.head(model.features[30:](a))
    if sigmoid:
        z = logits[:, 0]
        score = torch.where(z > 0, z, -z)
    else:
        score = logits.gather(1, logits.argmax(dim=1, keepdim=True))[:, 0]
    (grad,) = torch.autograd.grad(score.sum(), a)
    with torch.no_grad():
        cam = torch.relu((grad.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1))
        return cam / cam.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--size", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, meta, _ = load(args.model, args.size)
    sigmoid = meta["output"] == "sigmoid"
    x = torch.rand(1, 3, args.size, args.size)
    for _ in range(args.warmup):
        explain(model, x, sigmoid)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        explain(model, x, sigmoid)
        times.append((time.perf_counter() - start) * 1e3)
    print(json.dumps({"torch": torch.__version__, "threads": args.threads,
                      "median_ms": round(statistics.median(times), 1),
                      "min_ms": round(min(times), 1), "max_ms": round(max(times), 1)}))


if __name__ == "__main__":
    main()
