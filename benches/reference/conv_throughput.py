"""PyTorch reference: VGG16 conv-base forward throughput (images/s) on CPU.

What it measures
    The torchvision-equivalent VGG16 ``features`` (plain torch, see vggref.py) with
    the stand-in weights, float32 (``--dtypes``: also bfloat16), under ``torch.inference_mode()``, with
    ``torch.set_num_threads(N)``. For each batch size (default 1, 8, 20, 32) and each
    memory format (``nchw`` = default contiguous; ``channels_last`` = model and input
    ``.to(memory_format=torch.channels_last)``, converted once, outside the timed
    region), it runs ``--warmup`` untimed forwards, then ``--repeats`` timed forwards
    of one batch each, and reports images/s = batch / median seconds (also min/max).
    The input is random uniform [0, 1) at ``--size`` (default 150x150); the conv
    cost does not depend on the values.

    Before timing it checks correctness on the golden fixture's input (4 images):
    max abs error of block4_pool and block5_pool against the fixture (computed by
    torchvision in float64, stored float32), in both memory formats, and, with
    ``--golden-f64``, also in float64.

How to run (from the repository root)
    .venv/bin/python benches/reference/conv_throughput.py                 # full
    .venv/bin/python benches/reference/conv_throughput.py --batches 1 8 --repeats 1
    .venv/bin/python benches/reference/conv_throughput.py --threads 2 --out bench-out/ref-conv.json

Output: one JSON object (stdout, or ``--out``); progress lines go to stderr.
"""

import argparse
import statistics
import sys
import time

import torch

import vggref


def golden_check(weights, golden, dtype=torch.float32):
    from safetensors.torch import load_file

    g = load_file(golden)
    out = {}
    for fmt in ("nchw", "channels_last"):
        cl = fmt == "channels_last"
        model = vggref.load_conv_base(weights, channels_last=cl, dtype=dtype)
        x = g["input"].to(dtype)
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            b4 = model.features[: vggref.BLOCK4_POOL + 1](x)
            b5 = model.features[vggref.BLOCK4_POOL + 1:](b4)
        res = {}
        for name, got in (("block4_pool", b4), ("block5_pool", b5)):
            ref = g[name]
            got = got.float()
            if tuple(got.shape) != tuple(ref.shape):
                raise SystemExit(f"{name}: shape {tuple(got.shape)} != fixture {tuple(ref.shape)}")
            err = (got - ref).abs()
            res[name] = {
                "max_abs_err": err.max().item(),
                "mean_abs_err": err.mean().item(),
                "max_abs_ref": ref.abs().max().item(),
                "max_rel_err": (err.max() / ref.abs().max()).item(),
            }
        out[fmt] = res
        print(f"golden {str(dtype):14s} {fmt:13s} block5_pool max abs err "
              f"{res['block5_pool']['max_abs_err']:.3e} (max |ref| "
              f"{res['block5_pool']['max_abs_ref']:.3g}), block4_pool "
              f"{res['block4_pool']['max_abs_err']:.3e}", file=sys.stderr)
    return out


def time_forward(model, x, warmup, repeats):
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", default=vggref.WEIGHTS)
    ap.add_argument("--golden", default=vggref.GOLDEN)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: cores available)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 20, 32])
    ap.add_argument("--formats", nargs="+", default=["nchw", "channels_last"],
                    choices=["nchw", "channels_last"])
    ap.add_argument("--dtypes", nargs="+", default=["float32"], choices=["float32", "bfloat16"],
                    help="weights and inputs in these formats (bfloat16: the whole forward in bf16)")
    ap.add_argument("--size", type=int, default=150, help="input height = width")
    ap.add_argument("--warmup", type=int, default=1, help="untimed forwards per setting")
    ap.add_argument("--repeats", type=int, default=5, help="timed forwards per setting")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-golden", action="store_true")
    ap.add_argument("--golden-f64", action="store_true",
                    help="also run the golden check in float64 (slow: ~4x the f32 time)")
    ap.add_argument("--out", help="write JSON here instead of stdout")
    args = ap.parse_args()

    threads = vggref.set_threads(args.threads)
    result = {
        "script": "conv_throughput.py",
        "machine": vggref.machine_info(),
        "settings": {k: v for k, v in vars(args).items() if k != "out"} | {"threads": threads},
    }

    if not args.skip_golden:
        result["golden"] = {"float32": golden_check(args.weights, args.golden)}
        if args.golden_f64:
            result["golden"]["float64"] = golden_check(args.weights, args.golden, torch.float64)

    gen = torch.Generator().manual_seed(args.seed)
    runs = []
    for dtype_name, fmt in [(d, f) for d in args.dtypes for f in args.formats]:
        dtype = getattr(torch, dtype_name)
        cl = fmt == "channels_last"
        model = vggref.load_conv_base(args.weights, channels_last=cl, dtype=dtype)
        for b in args.batches:
            x = torch.rand(b, 3, args.size, args.size, generator=gen).to(dtype)
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            times = time_forward(model, x, args.warmup, args.repeats)
            med = statistics.median(times)
            run = {
                "dtype": dtype_name,
                "format": fmt,
                "batch": b,
                "median_s": med,
                "min_s": min(times),
                "max_s": max(times),
                "images_per_s": b / med,
                "images_per_s_best": b / min(times),
                "times_s": times,
            }
            runs.append(run)
            print(f"{dtype_name:8s} {fmt:13s} batch {b:3d}: {run['images_per_s']:7.2f} img/s "
                  f"(median {med:.3f} s of {len(times)}, min {min(times):.3f} s)", file=sys.stderr)
    result["runs"] = runs
    result["peak_rss_mb"] = vggref.peak_rss_mb()
    vggref.emit(result, args.out)


if __name__ == "__main__":
    main()
