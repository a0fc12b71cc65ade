"""PyTorch reference: int8 (post-training static quantisation) vs float32 VGG16 conv base on CPU.

What it measures
    The torchvision-equivalent VGG16 ``features`` (plain torch, see vggref.py) with
    the stand-in weights, in these versions:

    * float32, eval mode, NCHW and ``channels_last`` (``--formats``);
    * int8 from PyTorch's own post-training static quantisation
      (``torch.ao.quantization``, deprecated in torch 2.9 and announced for removal
      in 2.10; the warnings are recorded in the JSON), per-channel symmetric int8
      weights, per-tensor affine uint8 activations (HistogramObserver), the input
      quantised once at the top, block5_pool dequantised at the end. Routes
      (``--routes``, default ``fx pt2e``; each is calibrated separately):

      - ``fx``: ``quantize_fx.prepare_fx`` / ``convert_fx`` with
        ``get_default_qconfig_mapping(--qconfig)`` (default ``x86``: activations
        reduce_range=True, i.e. 7-bit, as the fbgemm AVX2 kernels want), conv+ReLU
        fused into ``ConvReLU2d``, max-pools on quantised tensors; run in eager
        PyTorch with the quantised kernels of each ``--engines`` value
        (``torch.backends.quantized.engine``: default ``x86 fbgemm onednn``; the
        calibrated model is converted once per engine, since the engine is fixed when
        the weights are packed). If ``fx`` fails, ``eager`` is tried instead
        (``--no-fallback`` turns that off).
      - ``eager``: QuantStub / DeQuantStub, ``fuse_modules`` on every conv/ReLU
        pair, ``get_default_qconfig(--qconfig)``, ``prepare`` / ``convert``; same
        kernels as ``fx``.
      - ``pt2e``: ``torch.export.export(strict=True)`` (batch dimension dynamic),
        ``prepare_pt2e`` / ``convert_pt2e`` with ``X86InductorQuantizer``
        (``get_default_x86_inductor_quantization_config(reduce_range=...)``;
        ``--pt2e-reduce-range auto``, the default, makes activations 7-bit when
        /proc/cpuinfo shows no VNNI/AMX, as that function's docstring advises for
        such CPUs, and 8-bit otherwise), then ``torch.compile``
        (inductor, ``freezing=True``, ``dynamic=False``), which lowers the q/dq
        pattern to oneDNN int8 conv ops. strict=True is needed: torch 2.9's default
        non-strict export leaves no ``source_fn_stack`` in the node metadata and the
        quantizer then silently annotates nothing (the script checks that the
        converted graph has quantize ops). For a like-for-like comparison this route
        also times ``f32/compiled``: the float model under the same torch.compile.
        Compiled variants run with the ``--compiled-formats`` input (default
        ``nchw``; every shape x format is one compile, in the first warm-up call,
        reported as ``first_call_s``).

      Calibration: the first ``--calibration`` N (default 200, class-balanced,
      Keras order) images of the **train** split only, decoded as vggserve does (PIL,
      RGB, NEAREST resize to 150x150, /255), in batches of 20, through the observed
      model. Failures of a route or engine are recorded (exception text) in
      ``failures`` and the others go on.

    Speed: ``torch.set_num_threads(--threads)`` (default 2), under
    ``torch.inference_mode()``. For each batch (default 1, 8, 20) and each variant,
    interleaved per batch: ``--warmup`` untimed forwards (default 2), then
    ``--repeats`` timed ones (default 5); images/s = batch / median seconds (also
    best). The input is the first images of the validation split (the cost does not
    depend on the values). ``speedup`` rows: int8 images/s over f32 NCHW, over the
    best eager f32 format, and (pt2e) over f32/compiled, at the same batch.

    Accuracy: on the first ``--accuracy-images`` (default 64, class-balanced)
    validation images, in batches of ``--accuracy-batch`` (8), block5_pool
    features [N, 512, 4, 4] of each int8 model vs float32 NCHW: max and mean
    |int8 - f32| relative to max |f32|, relative L2 error, per-image cosine
    similarity (mean, min), NCHW vs channels_last input, and for pt2e also the
    uncompiled q/dq reference graph (quantisation scheme vs kernel error). Linear probe
    (``--no-probe`` skips it): an L2-regularised logistic regression (LBFGS) trained
    on the float32 block5_pool features of the calibration images (which the
    observed model yields for free), applied to the validation features from f32
    and from int8: accuracy of each and agreement of their predictions (64 images:
    a coarse check only).

How to run (from the repository root)
    .venv/bin/python benches/reference/int8_conv.py --out bench-out/int8-conv.json       # full (~7 min on 2 idle cores)
    .venv/bin/python benches/reference/int8_conv.py --calibration 4 --accuracy-images 8 --batches 1 --repeats 1 --routes fx  # smoke
    .venv/bin/python benches/reference/int8_conv.py --routes fx eager pt2e --engines x86 --compiled-formats nchw channels_last

Output: one JSON object (stdout, or ``--out``); progress lines go to stderr.
"""

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import copy  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

import vggref  # noqa: E402

ROUTES = ("fx", "eager", "pt2e")
ENGINES = ("x86", "fbgemm", "onednn", "qnnpack")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class QuantWrapped(nn.Module):
    """Eager-mode wrapper: QuantStub -> features (conv+ReLU fused) -> DeQuantStub."""

    def __init__(self, base):
        super().__init__()
        from torch.ao.quantization import DeQuantStub, QuantStub

        self.quant = QuantStub()
        self.features = base.features
        self.dequant = DeQuantStub()

    def forward(self, x):
        return self.dequant(self.features(self.quant(x)))


def prepare(route, float_model, qconfig_name, example, pt2e_reduce_range=False):
    """Observed (calibration-ready) copy of the float model for ``route``."""
    import torch.ao.quantization as tq

    model = copy.deepcopy(float_model).eval()
    if route == "fx":
        from torch.ao.quantization.quantize_fx import prepare_fx

        mapping = tq.get_default_qconfig_mapping(qconfig_name)
        return prepare_fx(model, mapping, (example,))
    if route == "eager":
        feats = model.features
        pairs = [[str(i), str(i + 1)] for i, m in enumerate(feats)
                 if isinstance(m, nn.Conv2d) and isinstance(feats[i + 1], nn.ReLU)]
        tq.fuse_modules(feats, pairs, inplace=True)
        wrapped = QuantWrapped(model).eval()
        wrapped.qconfig = tq.get_default_qconfig(qconfig_name)
        return tq.prepare(wrapped, inplace=False)
    if route == "pt2e":
        import torch.ao.quantization.quantizer.x86_inductor_quantizer as xiq
        from torch.ao.quantization.quantize_pt2e import prepare_pt2e
        from torch.export import Dim

        # strict=True: torch 2.9's default non-strict export leaves no
        # "source_fn_stack" in the node metadata, and X86InductorQuantizer then
        # silently annotates nothing (convert_pt2e returns the float graph).
        example2 = torch.cat([example, example])  # batch 1 would be specialised
        exported = torch.export.export(
            model, (example2,), dynamic_shapes={"x": {0: Dim("batch", min=1, max=4096)}},
            strict=True).module()
        quantizer = xiq.X86InductorQuantizer()
        quantizer.set_global(xiq.get_default_x86_inductor_quantization_config(
            reduce_range=pt2e_reduce_range))
        return prepare_pt2e(exported, quantizer)
    raise ValueError(route)


def convert(route, observed):
    """(int8 model to run, its uncompiled reference graph or None)."""
    import torch.ao.quantization as tq

    observed = copy.deepcopy(observed)
    if route == "fx":
        from torch.ao.quantization.quantize_fx import convert_fx

        return convert_fx(observed), None
    if route == "pt2e":
        from torch.ao.quantization.quantize_pt2e import convert_pt2e

        converted = convert_pt2e(observed)
        n_q = sum(1 for n in converted.graph.nodes if n.op == "call_function"
                  and "quantize_per_tensor" in str(n.target))
        if n_q == 0:
            raise RuntimeError("convert_pt2e left no quantize ops: nothing was annotated")
        return compile_model(converted), converted
    return tq.convert(observed, inplace=False), None


def compile_model(model):
    """torch.compile (inductor) with freezing, one static graph per input shape."""
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True  # fold weights, so int8 convs become onednn qconv ops
    return torch.compile(model, dynamic=False)


def caught(fn, *a):
    """Run fn(*a) recording warnings; returns (result, [warning texts])."""
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = fn(*a)
    seen = []
    for x in w:
        s = f"{x.category.__name__}: {str(x.message).strip()}"
        if s not in seen:
            seen.append(s)
    return out, seen


def calibrate(observed, items, batch=20):
    """Run the calibration images through the observed model; returns f32 features."""
    feats = []
    with torch.inference_mode():
        for i in range(0, len(items), batch):
            x = vggref.load_batch([p for p, _ in items[i:i + batch]])
            feats.append(observed(x).float())
    return torch.cat(feats)


def run_features(model, x, batch=20, channels_last=False):
    outs = []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            xb = x[i:i + batch]
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            y = model(xb)
            if y.is_quantized:
                y = y.dequantize()
            outs.append(y.float().contiguous())
    return torch.cat(outs)


def time_forward(model, x, warmup, repeats):
    """(timed seconds, seconds of the first warm-up call: includes any compile)."""
    times, first = [], None
    with torch.inference_mode():
        for i in range(warmup):
            t0 = time.perf_counter()
            model(x)
            if i == 0:
                first = time.perf_counter() - t0
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return times, first


def feature_errors(got, ref):
    err = (got - ref).abs()
    scale = ref.abs().max()
    g, r = got.reshape(len(got), -1), ref.reshape(len(ref), -1)
    cos = nn.functional.cosine_similarity(g, r, dim=1)
    return {
        "max_abs_f32": scale.item(),
        "max_abs_err": err.max().item(),
        "mean_abs_err": err.mean().item(),
        "max_rel_err": (err.max() / scale).item(),
        "mean_rel_err": (err.mean() / scale).item(),
        "rel_l2_err": ((g - r).norm() / r.norm()).item(),
        "cosine_mean": cos.mean().item(),
        "cosine_min": cos.min().item(),
        "frac_zero_f32": (ref == 0).float().mean().item(),
        "frac_zero_int8": (got == 0).float().mean().item(),
    }


def train_probe(x, y, l2=1e-2, iters=100):
    """L2-regularised logistic regression on standardised flattened features."""
    x = x.reshape(len(x), -1)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xs = (x - mu) / sd
    w = torch.zeros(xs.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        z = xs @ w + b
        loss = nn.functional.binary_cross_entropy_with_logits(z, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    w, b = w.detach(), b.detach()
    train_acc = (((xs @ w + b) > 0).float() == y).float().mean().item()
    return (lambda f: (((f.reshape(len(f), -1) - mu) / sd) @ w + b) > 0), train_acc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", default=vggref.WEIGHTS)
    ap.add_argument("--dataset", default=vggref.DATASET,
                    help="folder with train/ and validation/ class subfolders")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--calibration", type=int, default=200,
                    help="train images for calibration (class-balanced prefix)")
    ap.add_argument("--accuracy-images", type=int, default=64,
                    help="validation images for the feature-error check")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 20])
    ap.add_argument("--formats", nargs="+", default=["nchw", "channels_last"],
                    choices=["nchw", "channels_last"])
    ap.add_argument("--routes", nargs="+", default=["fx", "pt2e"], choices=ROUTES,
                    help="quantisation routes to run (each is calibrated separately)")
    ap.add_argument("--pt2e-reduce-range", choices=["auto", "on", "off"], default="auto",
                    help="pt2e activations 7-bit (on) or 8-bit (off); auto: on when the CPU "
                         "has no VNNI (X86InductorQuantizer's own advice)")
    ap.add_argument("--no-fallback", action="store_true",
                    help="do not try the eager route when the fx route fails")
    ap.add_argument("--qconfig", default="x86", help="get_default_qconfig(_mapping) name")
    ap.add_argument("--engines", nargs="+", default=["x86", "fbgemm", "onednn"], choices=ENGINES,
                    help="torch.backends.quantized.engine values to convert and time "
                         "(fx/eager routes; pt2e always lowers through inductor)")
    ap.add_argument("--compiled-formats", nargs="+", default=["nchw"],
                    choices=["nchw", "channels_last"],
                    help="input formats for the torch.compile'd variants (pt2e route): "
                         "each shape x format is one compile")
    ap.add_argument("--accuracy-batch", type=int, default=8,
                    help="batch for the accuracy forwards (one of --batches saves a compile)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed forwards per setting")
    ap.add_argument("--repeats", type=int, default=5, help="timed forwards per setting")
    ap.add_argument("--no-probe", action="store_true", help="skip the linear probe")
    ap.add_argument("--out", help="write JSON here instead of stdout")
    args = ap.parse_args()

    threads = vggref.set_threads(args.threads)
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    machine = vggref.machine_info() | {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "quantized_engines": list(torch.backends.quantized.supported_engines),
        "default_quantized_engine": torch.backends.quantized.engine,
        "isa_flags": sorted(f for f in flags if f.startswith(("avx", "amx", "fma"))
                            or "vnni" in f),
    }
    has_vnni = any("vnni" in f or f.startswith("amx") for f in flags)
    pt2e_rr = {"on": True, "off": False}.get(args.pt2e_reduce_range, not has_vnni)
    result = {
        "script": "int8_conv.py",
        "machine": machine,
        "settings": {k: v for k, v in vars(args).items() if k != "out"}
        | {"threads": threads, "pt2e_reduce_range_effective": pt2e_rr},
    }
    log(f"cpu {machine.get('cpu')}, capability {machine['cpu_capability']}, "
        f"ISA flags {machine['isa_flags']}, engines {machine['quantized_engines']}")

    t0 = time.perf_counter()
    fmodel = vggref.load_conv_base(args.weights)
    fmodel_cl = vggref.load_conv_base(args.weights, channels_last=True)
    cal_items, _ = vggref.list_images(os.path.join(args.dataset, "train"), args.calibration)
    val_items, _ = vggref.list_images(os.path.join(args.dataset, "validation"),
                                      max(args.accuracy_images, max(args.batches)))
    acc_items = val_items[:args.accuracy_images]
    x_val = vggref.load_batch([p for p, _ in val_items])
    y_val = torch.tensor([lab for _, lab in acc_items], dtype=torch.float32)
    times = {"setup_s": time.perf_counter() - t0}

    # --- quantise: prepare + calibrate per route, convert per engine -------------
    routes, failures, ref_cal = {}, [], None
    example = x_val[:1]
    todo = list(args.routes)
    while todo:
        route = todo.pop(0)
        rec = {"warnings_prepare": [], "warnings_convert": {}}
        try:
            tq = time.perf_counter()
            observed, rec["warnings_prepare"] = caught(
                prepare, route, fmodel, args.qconfig, example, pt2e_rr)
            if route == "pt2e":
                rec["activation_range"] = "uint8 0..127 (reduce_range)" if pt2e_rr else "uint8 0..255"
            rec["prepare_s"] = time.perf_counter() - tq
            log(f"[{route}] prepared ({rec['prepare_s']:.2f} s); calibrating on "
                f"{len(cal_items)} train images")
            tc = time.perf_counter()
            cal_feats = calibrate(observed, cal_items)
            rec["calibration_s"] = time.perf_counter() - tc
            rec["calibration_images"] = len(cal_items)
            if ref_cal is None:
                ref_cal = cal_feats
            log(f"[{route}] calibrated in {rec['calibration_s']:.1f} s")
            models = {}
            for eng in (["inductor"] if route == "pt2e" else args.engines):
                try:
                    if eng != "inductor":
                        torch.backends.quantized.engine = eng
                    tv = time.perf_counter()
                    (qm, qref), rec["warnings_convert"][eng] = caught(convert, route, observed)
                    if qref is not None:
                        rec.setdefault("reference_models", {})[eng] = qref
                    rec.setdefault("convert_s", {})[eng] = time.perf_counter() - tv
                    # smoke forward, so that engine errors surface here
                    with torch.inference_mode():
                        qm(example)
                    models[eng] = qm
                except Exception as e:  # noqa: BLE001
                    failures.append({"route": route, "engine": eng, "stage": "convert/forward",
                                     "error": f"{type(e).__name__}: {e}",
                                     "traceback": traceback.format_exc(limit=3)})
                    log(f"[{route}/{eng}] FAILED: {type(e).__name__}: {e}")
            if not models:
                raise RuntimeError("no engine converted")
            rec["models"] = models
            rec.setdefault("reference_models", {})
            if route == "fx":
                rec["graph_ops"] = sorted({type(m).__module__ + "." + type(m).__name__
                                           for m in next(iter(models.values())).modules()
                                           if not list(m.children())})
            routes[route] = rec
        except Exception as e:  # noqa: BLE001
            failures.append({"route": route, "stage": "prepare/calibrate",
                             "error": f"{type(e).__name__}: {e}",
                             "traceback": traceback.format_exc(limit=3)})
            log(f"[{route}] FAILED: {type(e).__name__}: {e}")
            if route == "fx" and not args.no_fallback and "eager" not in args.routes:
                log("[fx] failed: falling back to the eager route")
                todo.insert(0, "eager")
    result["failures"] = failures
    if not routes:
        result["error"] = "no quantisation route worked"
        vggref.emit(result, args.out)
        sys.exit(1)

    # --- accuracy ---------------------------------------------------------------
    x_acc = x_val[:args.accuracy_images]
    ta = time.perf_counter()
    ab = args.accuracy_batch
    f_ref = run_features(fmodel, x_acc, ab)
    f_ref_cl = run_features(fmodel_cl, x_acc, ab, channels_last=True)
    accuracy = {"images": len(x_acc), "layer": "block5_pool",
                "f32_channels_last_vs_nchw_max_abs_err": (f_ref_cl - f_ref).abs().max().item(),
                "int8": {}}
    int8_feats = {}
    for route, rec in routes.items():
        for eng, qm in rec["models"].items():
            name = f"{route}/{eng}"
            if eng != "inductor":
                torch.backends.quantized.engine = eng
            q = run_features(qm, x_acc, ab)
            int8_feats[name] = q
            e = feature_errors(q, f_ref)
            if route != "pt2e" or "channels_last" in args.compiled_formats:
                q_cl = run_features(qm, x_acc, ab, channels_last=True)
                e["channels_last_input_vs_nchw_max_abs_diff"] = (q_cl - q).abs().max().item()
            accuracy["int8"][name] = e
            if eng in rec["reference_models"]:
                # the same q/dq graph run uncompiled (float ops on rounded values):
                # separates the quantisation scheme's error from the kernels'
                qr = run_features(rec["reference_models"][eng], x_acc, ab)
                e["uncompiled_reference"] = feature_errors(qr, f_ref)
                e["compiled_vs_uncompiled_max_rel_diff"] = (
                    (q - qr).abs().max() / f_ref.abs().max()).item()
            log(f"[{name}] block5_pool vs f32: max rel err {e['max_rel_err']:.4f}, mean rel "
                f"{e['mean_rel_err']:.5f}, rel L2 {e['rel_l2_err']:.4f}, cos min "
                f"{e['cosine_min']:.5f}")
    if not args.no_probe and ref_cal is not None:
        y_cal = torch.tensor([lab for _, lab in cal_items], dtype=torch.float32)
        predict, train_acc = train_probe(ref_cal, y_cal)
        p_ref = predict(f_ref).float()
        probe = {"train_images": len(ref_cal), "train_split": "train (the calibration images)",
                 "trained_on": "f32 block5_pool features", "train_acc": train_acc,
                 "val_images": len(f_ref),
                 "val_acc_f32": (p_ref == y_val).float().mean().item(), "int8": {}}
        for name, q in int8_feats.items():
            p = predict(q).float()
            probe["int8"][name] = {"val_acc": (p == y_val).float().mean().item(),
                                   "agreement_with_f32": (p == p_ref).float().mean().item()}
        accuracy["linear_probe"] = probe
        log(f"probe: f32 val acc {probe['val_acc_f32']:.3f}; " + ", ".join(
            f"{k} acc {v['val_acc']:.3f} agree {v['agreement_with_f32']:.3f}"
            for k, v in probe["int8"].items()))
    times["accuracy_s"] = time.perf_counter() - ta
    result["accuracy"] = accuracy

    # --- speed ------------------------------------------------------------------
    variants = []
    for fmt in args.formats:
        variants.append(("f32", fmt, None, fmodel_cl if fmt == "channels_last" else fmodel))
    if "pt2e" in routes:
        fcomp = compile_model(copy.deepcopy(fmodel))
        for fmt in args.compiled_formats:
            variants.append(("f32/compiled", fmt, "inductor", fcomp))
    for route, rec in routes.items():
        for eng, qm in rec["models"].items():
            for fmt in (args.compiled_formats if route == "pt2e" else args.formats):
                variants.append((f"int8/{route}", fmt, eng, qm))
    runs = []
    ts = time.perf_counter()
    for b in args.batches:
        x = x_val[:b]
        for kind, fmt, eng, model in variants:
            if eng not in (None, "inductor"):
                torch.backends.quantized.engine = eng
            xb = x.contiguous(memory_format=torch.channels_last) if fmt == "channels_last" else x
            t, first = time_forward(model, xb, args.warmup, args.repeats)
            med = statistics.median(t)
            run = {"model": kind, "engine": eng, "format": fmt, "batch": b, "first_call_s": first,
                   "median_s": med, "min_s": min(t), "max_s": max(t),
                   "images_per_s": b / med, "images_per_s_best": b / min(t), "times_s": t}
            runs.append(run)
            log(f"batch {b:3d} {kind:10s} {eng or '-':7s} {fmt:13s}: "
                f"{run['images_per_s']:7.2f} img/s (median {med:.3f} s, min {min(t):.3f} s)")
    times["speed_s"] = time.perf_counter() - ts
    result["runs"] = runs

    summary = []
    for b in args.batches:
        f32 = {r["format"]: r["images_per_s"] for r in runs if r["batch"] == b and r["model"] == "f32"}
        fcomp = {r["format"]: r["images_per_s"] for r in runs
                 if r["batch"] == b and r["model"] == "f32/compiled"}
        best_f32 = max(f32.values())
        for r in runs:
            if r["batch"] != b or not r["model"].startswith("int8"):
                continue
            row = {
                "batch": b, "model": r["model"], "engine": r["engine"], "format": r["format"],
                "int8_images_per_s": r["images_per_s"],
                "f32_nchw_images_per_s": f32.get("nchw"),
                "f32_channels_last_images_per_s": f32.get("channels_last"),
                "int8_speedup_vs_f32_nchw": r["images_per_s"] / f32["nchw"] if "nchw" in f32 else None,
                "int8_speedup_vs_best_f32": r["images_per_s"] / best_f32,
            }
            if r["format"] in fcomp:
                row["f32_compiled_images_per_s"] = fcomp[r["format"]]
                row["int8_speedup_vs_f32_compiled"] = r["images_per_s"] / fcomp[r["format"]]
            summary.append(row)
    result["speedup"] = summary
    for s in summary:
        log(f"batch {s['batch']:3d} {s['model']}/{s['engine']} {s['format']}: "
            f"x{s['int8_speedup_vs_best_f32']:.2f} vs best f32")

    result["quantisation"] = {
        route: {k: v for k, v in rec.items() if k not in ("models", "reference_models")}
        for route, rec in routes.items()}
    result["times_s"] = times | {"wall": time.perf_counter() - T_START}
    result["peak_rss_mb"] = vggref.peak_rss_mb()
    try:
        result["loadavg_at_end"] = os.getloadavg()
    except OSError:
        pass
    vggref.emit(result, args.out)


if __name__ == "__main__":
    main()
