"""PyTorch reference: end-to-end feature extraction over a folder of JPEGs.

What it measures
    The whole job the seed does with ``flow_from_directory`` + ``conv_base.predict``:
    list the images as Keras would (class sub-folders sorted, files sorted, label =
    class index), then per batch of ``--batch`` (default 20, the seed's): decode with
    PIL, convert to RGB, resize to 150x150 with NEAREST (Keras ``load_img``), scale
    by 1/255, run the VGG16 conv base (float32, ``inference_mode``, optional
    ``--channels-last``), and finally write the features ([N, 512, 4, 4], NCHW,
    float32) with their labels and file names to ``--features-out`` (.safetensors
    or .npz). Decoding and the conv base run one after the other in one thread of
    Python (as Keras without workers); torch uses ``--threads`` threads.

    Reported: wall time from the top of the script (after the interpreter started;
    includes ``import torch``), the phases (import, model load, listing, decode +
    resize, conv base, write), images/s over the whole run and for the conv base
    alone, and peak RSS. For a number that includes the interpreter start as well,
    run it under ``/usr/bin/time -v``.

How to run (from the repository root)
    .venv/bin/python benches/reference/features_e2e.py --limit 40
    .venv/bin/python benches/reference/features_e2e.py --dir ../shared/datasets/cats_and_dogs_small/train \\
        --channels-last --features-out /tmp/train-features.safetensors --out bench-out/ref-e2e.json

Output: one JSON object (stdout, or ``--out``); progress lines go to stderr.
"""

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import vggref  # noqa: E402

T_IMPORTED = time.perf_counter()


def extract(model, items, batch, channels_last, rescale="div", progress_every=0, log=None,
            dtype=torch.float32):
    """Run the conv base over ``items`` ([(path, label)]); returns (features, timings).

    Features come back as a float32 numpy array [N, 512, 4, 4] in NCHW order
    (made contiguous in NCHW even when the model runs channels_last).
    """
    feats = []
    t_decode = 0.0
    t_conv = 0.0
    done = 0
    with torch.inference_mode():
        for i in range(0, len(items), batch):
            paths = [p for p, _ in items[i:i + batch]]
            t0 = time.perf_counter()
            x = vggref.load_batch(paths, rescale=rescale)
            t1 = time.perf_counter()
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = model(x.to(dtype))
            y = y.float().contiguous()  # f32 NCHW, also for a bf16 or channels_last model
            t2 = time.perf_counter()
            feats.append(y.numpy().copy())
            t_decode += t1 - t0
            t_conv += t2 - t1
            done += len(paths)
            if progress_every and (done // batch) % progress_every == 0:
                msg = (f"{done}/{len(items)} images, decode {t_decode:.1f} s, "
                       f"conv {t_conv:.1f} s ({done / max(t_conv, 1e-9):.2f} img/s conv)")
                print(msg, file=log or sys.stderr, flush=True)
    out = np.concatenate(feats) if feats else np.zeros((0, 512, 4, 4), np.float32)
    return out, {"decode_resize_s": t_decode, "conv_s": t_conv}


def write_features(path, feats, labels, names):
    if path.endswith(".npz"):
        np.savez(path, features=feats, labels=labels, filenames=np.array(names))
    elif path.endswith(".npy"):
        np.save(path, feats)
    else:
        from safetensors.numpy import save_file

        save_file({"features": feats, "labels": labels}, path,
                  metadata={"filenames": "\n".join(names), "layout": "NCHW [N,512,4,4]"})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=os.path.join(vggref.DATASET, "train"),
                    help="folder with one sub-folder per class (default: the train split)")
    ap.add_argument("--weights", default=vggref.WEIGHTS)
    ap.add_argument("--limit", type=int, help="class-balanced prefix of N images (Keras order)")
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: cores available)")
    ap.add_argument("--channels-last", action="store_true", help="model and input channels_last")
    ap.add_argument("--bf16", action="store_true", help="model weights and inputs in bfloat16")
    ap.add_argument("--rescale", choices=vggref.RESCALE_CHOICES, default="div",
                    help="div: x/255 (fixture, vggserve); keras: x*float32(1/255)")
    ap.add_argument("--features-out", default=os.path.join(tempfile.gettempdir(), "features_e2e.safetensors"),
                    help=".safetensors (features, labels; file names in metadata), .npz or .npy")
    ap.add_argument("--progress-every", type=int, default=10, help="batches between progress lines (0: none)")
    ap.add_argument("--out", help="write JSON here instead of stdout")
    args = ap.parse_args()

    threads = vggref.set_threads(args.threads)
    t0 = time.perf_counter()
    dtype = torch.bfloat16 if args.bf16 else torch.float32
    model = vggref.load_conv_base(args.weights, channels_last=args.channels_last, dtype=dtype)
    t1 = time.perf_counter()
    items, classes = vggref.list_images(args.dir, args.limit)
    t2 = time.perf_counter()
    feats, phases = extract(model, items, args.batch, args.channels_last, args.rescale,
                            args.progress_every, dtype=dtype)
    t3 = time.perf_counter()
    labels = np.array([lab for _, lab in items], dtype=np.float32)
    names = [os.path.relpath(p, args.dir) for p, _ in items]
    write_features(args.features_out, feats, labels, names)
    t4 = time.perf_counter()

    n = len(items)
    wall = t4 - T_START
    result = {
        "script": "features_e2e.py",
        "machine": vggref.machine_info(),
        "settings": {k: v for k, v in vars(args).items() if k != "out"} | {"threads": threads},
        "images": n,
        "classes": classes,
        "features_shape": list(feats.shape),
        "wall_s": wall,
        "images_per_s": n / wall if wall else None,
        "images_per_s_conv_only": n / phases["conv_s"] if phases["conv_s"] else None,
        "phases_s": {
            "import": T_IMPORTED - T_START,
            "model_load": t1 - t0,
            "list": t2 - t1,
            "decode_resize": phases["decode_resize_s"],
            "conv": phases["conv_s"],
            "extract_total": t3 - t2,
            "write": t4 - t3,
        },
        "peak_rss_mb": vggref.peak_rss_mb(),
    }
    print(f"{n} images in {wall:.2f} s: {result['images_per_s']:.2f} img/s end to end, "
          f"{result['images_per_s_conv_only']:.2f} img/s conv only "
          f"({'channels_last' if args.channels_last else 'nchw'}, {dtype}, {threads} threads)", file=sys.stderr)
    vggref.emit(result, args.out)


if __name__ == "__main__":
    main()
