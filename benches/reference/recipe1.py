"""PyTorch reference: Chollet's recipe 1 (frozen VGG16 features + small dense head).

What it does / measures
    Deep Learning with Python, 5.3.1, "fast feature extraction without data
    augmentation", with the stand-in weights instead of ImageNet's, on any dataset
    folder with train/ validation/ test/ of class subfolders (``--dataset``: a name
    under the shared datasets/ folder, default cats_and_dogs_small, or a path).
    The classes are the train/ subfolders, sorted (Keras's class indices); the
    validation/ and test/ splits must have the same ones.

    1. Extract conv-base features [N, 512, 4, 4] for train / validation / test
       exactly as features_e2e.py does (Keras flow_from_directory order and
       load_img: PIL, RGB, NEAREST resize to 150x150, /255; batches of 20).
       Cached in ``--cache`` (.npz) so reruns skip this step; the cache records the
       settings it was made with and is rebuilt when they differ.
    2. Flatten to 8192 per image. Default ``--flatten nchw`` (PyTorch's order,
       c*16 + h*4 + w); ``--flatten nhwc`` gives Keras's Flatten order
       ((h*4 + w)*512 + c). The order does not change what the head can learn.
    3. Train Dense(256, ReLU) -> Dropout(0.5) -> Dense(1, sigmoid) with binary
       cross-entropy for 2 classes, or Dense(N, softmax) with categorical
       cross-entropy for N > 2 (what vggserve does), RMSprop(lr=2e-5, rho=0.9,
       eps=1e-7, no momentum), 30 epochs, batch 20, reshuffled each epoch
       (torch.randperm, seeded), Keras init (glorot_uniform kernels, zero biases).
       The sigmoid / softmax is folded into the loss (BCEWithLogitsLoss /
       CrossEntropyLoss; Keras/TF also evaluates the cross-entropy from the logits
       when the output comes from a sigmoid or softmax); accuracy = (p > 0.5) for
       one sigmoid unit, argmax for N softmax units. The 2-class path is exactly the
       one of before the N-class change (same random draws, same figures).
       RMSprop epsilon: ``--rmsprop-eps outside`` (default; torch.optim.RMSprop and
       the 2017 standalone Keras 2.0 of the book: w -= lr*g/(sqrt(v)+eps)) or
       ``inside`` (tf.keras 2.x and Keras 3: w -= lr*g/sqrt(v+eps)).
    4. Per epoch, like Keras's fit log: ``loss``/``acc`` = means over the epoch's
       training batches (dropout active), ``val_loss``/``val_acc`` on the whole
       validation set after the epoch (dropout off). After the last epoch: test
       loss/accuracy of that final model (no best-epoch selection), with its test
       confusion matrix (rows = true class, columns = predicted) and per-class
       precision / recall.

    Output: JSON lines on stdout, one per epoch ({"epoch", "loss", "acc",
    "val_loss", "val_acc", "time_s"}), then one summary line ({"final": true, ...}
    with val/test accuracy, classes, test confusion and the time of each step);
    ``--out`` also writes the
    summary as a JSON file. Progress goes to stderr.

How to run (from the repository root)
    .venv/bin/python benches/reference/recipe1.py --cache /tmp/recipe1-features.npz          # full (~10 min extraction on 2 cores)
    .venv/bin/python benches/reference/recipe1.py --limit 40 --epochs 3 --cache /tmp/r1-small.npz  # smoke test
    .venv/bin/python benches/reference/recipe1.py --dataset flowers_small --cache /tmp/recipe1-flowers.npz  # 5 classes
"""

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import vggref  # noqa: E402
from features_e2e import extract  # noqa: E402

SPLITS = ("train", "validation", "test")


class KerasRMSprop(torch.optim.Optimizer):
    """RMSprop with epsilon inside the square root (tf.keras 2.x / Keras 3)."""

    def __init__(self, params, lr, alpha=0.9, eps=1e-7):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if "v" not in st:
                    st["v"] = torch.zeros_like(p)
                v = st["v"]
                v.mul_(group["alpha"]).addcmul_(p.grad, p.grad, value=1 - group["alpha"])
                p.addcdiv_(p.grad, (v + group["eps"]).sqrt_(), value=-group["lr"])


def make_head(in_features, seed, n_classes=2):
    """One sigmoid unit for 2 classes (the seed's head), N softmax units for N > 2."""
    torch.manual_seed(seed)
    out = 1 if n_classes == 2 else n_classes
    head = nn.Sequential(
        nn.Linear(in_features, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, out))
    for m in head:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)  # = Keras glorot_uniform
            nn.init.zeros_(m.bias)
    return head


def flatten(feats, order):
    t = torch.from_numpy(feats)
    if order == "nhwc":
        t = t.permute(0, 2, 3, 1)
    return t.reshape(t.shape[0], -1).contiguous()


def binary(n_classes):
    return n_classes == 2


def logits(head, x, n_classes):
    z = head(x)
    return z.squeeze(1) if binary(n_classes) else z


def predict(z, n_classes):
    """Predicted class index per row: p > 0.5 (logit > 0) for one unit, else argmax."""
    return (z > 0).long() if binary(n_classes) else z.argmax(1)


def loss_function(n_classes, reduction="mean"):
    if binary(n_classes):
        return nn.BCEWithLogitsLoss(reduction=reduction)
    return nn.CrossEntropyLoss(reduction=reduction)


def evaluate(head, x, y, n_classes=2, batch=500, confusion=False):
    head.eval()
    loss_fn = loss_function(n_classes, reduction="sum")
    total, correct = 0.0, 0
    cm = torch.zeros(n_classes, n_classes, dtype=torch.long)
    with torch.no_grad():
        for i in range(0, len(x), batch):
            z = logits(head, x[i:i + batch], n_classes)
            yb = y[i:i + batch]
            total += loss_fn(z, yb).item()
            if binary(n_classes):
                correct += ((z > 0).float() == yb).sum().item()
            else:
                correct += (z.argmax(1) == yb).sum().item()
            if confusion:
                pred = predict(z, n_classes)
                cm.index_put_((yb.long(), pred), torch.ones_like(pred), accumulate=True)
    if confusion:
        return total / len(x), correct / len(x), cm
    return total / len(x), correct / len(x)


def per_class(cm, classes):
    """Precision / recall / F1 / support per class from a confusion matrix."""
    out = {}
    for i, c in enumerate(classes):
        tp = cm[i, i].item()
        predicted, support = cm[:, i].sum().item(), cm[i, :].sum().item()
        p = tp / predicted if predicted else 0.0
        r = tp / support if support else 0.0
        out[c] = {"precision": p, "recall": r,
                  "f1": 2 * p * r / (p + r) if p + r else 0.0, "support": support}
    return out


def resolve_dataset(value):
    """A bare name is a folder under the shared datasets/; anything else is a path."""
    if os.sep in value or value in (".", "..") or os.path.isabs(value):
        return value
    return os.path.join(vggref.SHARED, "datasets", value)


def dataset_classes(dataset):
    """Class folders of train/ (sorted, Keras order); the other splits must match."""
    classes = None
    for s in SPLITS:
        d = os.path.join(dataset, s)
        cs = sorted(c for c in os.listdir(d) if os.path.isdir(os.path.join(d, c)))
        if classes is None:
            classes = cs
        elif cs != classes:
            sys.exit(f"{d} has classes {cs}, train/ has {classes}")
    if len(classes) < 2:
        sys.exit(f"{dataset}: need at least 2 class folders, found {classes}")
    return classes


def cache_meta(args):
    return {
        "weights": os.path.abspath(args.weights),
        "dataset": os.path.abspath(args.dataset),
        "limit": args.limit,
        "rescale": args.rescale,
        "size": 150,
        "layout": "NCHW [N,512,4,4] float32",
    }


def load_or_extract(args, log):
    meta = cache_meta(args)
    if args.cache and os.path.exists(args.cache):
        z = np.load(args.cache)
        old = json.loads(str(z["meta"]))
        if old == meta:
            print(f"features from cache {args.cache}", file=log)
            data = {s: (z[f"{s}_features"], z[f"{s}_labels"]) for s in SPLITS}
            return data, {}, True
        print(f"cache {args.cache} was made with other settings ({old}); re-extracting",
              file=log)

    model = vggref.load_conv_base(args.weights, channels_last=args.channels_last)
    data, times = {}, {}
    for s in SPLITS:
        items, _ = vggref.list_images(os.path.join(args.dataset, s), args.limit)
        print(f"extracting {s}: {len(items)} images", file=log, flush=True)
        t0 = time.perf_counter()
        feats, ph = extract(model, items, 20, args.channels_last, args.rescale,
                            progress_every=args.progress_every, log=log)
        times[f"extract_{s}_s"] = time.perf_counter() - t0
        times[f"extract_{s}_decode_s"] = ph["decode_resize_s"]
        times[f"extract_{s}_conv_s"] = ph["conv_s"]
        labels = np.array([lab for _, lab in items], dtype=np.float32)
        data[s] = (feats, labels)
        print(f"  {s}: {len(items)} images in {times[f'extract_{s}_s']:.1f} s "
              f"({len(items) / times[f'extract_{s}_s']:.2f} img/s)", file=log, flush=True)
    if args.cache:
        t0 = time.perf_counter()
        arrays = {}
        for s in SPLITS:
            arrays[f"{s}_features"], arrays[f"{s}_labels"] = data[s]
        np.savez(args.cache, meta=np.array(json.dumps(meta)), **arrays)
        times["cache_write_s"] = time.perf_counter() - t0
        print(f"wrote cache {args.cache}", file=log)
    return data, times, False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="cats_and_dogs_small",
                    help="name under the shared datasets/ folder, or a path to a folder "
                         "with train/ validation/ test/ (default cats_and_dogs_small)")
    ap.add_argument("--weights", default=vggref.WEIGHTS)
    ap.add_argument("--cache", help=".npz for the extracted features (read if present and matching)")
    ap.add_argument("--limit", type=int, help="class-balanced images per split (default: all)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--rho", type=float, default=0.9)
    ap.add_argument("--eps", type=float, default=1e-7)
    ap.add_argument("--rmsprop-eps", choices=["outside", "inside"], default="outside",
                    help="outside: torch RMSprop / Keras 2.0; inside: tf.keras 2.x / Keras 3")
    ap.add_argument("--flatten", choices=["nchw", "nhwc"], default="nchw")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: cores available)")
    ap.add_argument("--channels-last", action="store_true", help="extract with channels_last")
    ap.add_argument("--rescale", choices=vggref.RESCALE_CHOICES, default="div")
    ap.add_argument("--progress-every", type=int, default=10, help="batches between progress lines")
    ap.add_argument("--out", help="also write the summary JSON here")
    args = ap.parse_args()
    args.dataset = resolve_dataset(args.dataset)
    log = sys.stderr
    classes = dataset_classes(args.dataset)
    n_classes = len(classes)
    print(f"{n_classes} classes: {classes} "
          f"({'1 sigmoid unit, BCE' if binary(n_classes) else 'softmax, categorical CE'})",
          file=log)

    threads = vggref.set_threads(args.threads)
    t_setup = time.perf_counter()
    data, times, cache_hit = load_or_extract(args, log)
    t_extracted = time.perf_counter()

    x = {s: flatten(data[s][0], args.flatten) for s in SPLITS}
    # Labels: float 0/1 for BCE (as before), class indices (int64) for CrossEntropyLoss.
    y = {s: torch.from_numpy(data[s][1]) for s in SPLITS}
    if not binary(n_classes):
        y = {s: v.long() for s, v in y.items()}
    head = make_head(x["train"].shape[1], args.seed, n_classes)
    if args.rmsprop_eps == "outside":
        opt = torch.optim.RMSprop(head.parameters(), lr=args.lr, alpha=args.rho, eps=args.eps,
                                  momentum=0.0, centered=False, weight_decay=0.0)
    else:
        opt = KerasRMSprop(head.parameters(), lr=args.lr, alpha=args.rho, eps=args.eps)
    loss_fn = loss_function(n_classes)
    gen = torch.Generator().manual_seed(args.seed)

    n = len(x["train"])
    history = []
    t_train0 = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        te = time.perf_counter()
        head.train()
        perm = torch.randperm(n, generator=gen)
        loss_sum, correct = 0.0, 0
        for i in range(0, n, args.batch):
            idx = perm[i:i + args.batch]
            xb, yb = x["train"][idx], y["train"][idx]
            z = logits(head, xb, n_classes)
            loss = loss_fn(z, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            if binary(n_classes):
                correct += ((z.detach() > 0).float() == yb).sum().item()
            else:
                correct += (z.detach().argmax(1) == yb).sum().item()
        val_loss, val_acc = evaluate(head, x["validation"], y["validation"], n_classes)
        rec = {"epoch": epoch, "loss": loss_sum / n, "acc": correct / n,
               "val_loss": val_loss, "val_acc": val_acc,
               "time_s": time.perf_counter() - te}
        history.append(rec)
        print(json.dumps(rec), flush=True)
    t_trained = time.perf_counter()
    test_loss, test_acc, test_cm = evaluate(head, x["test"], y["test"], n_classes,
                                            confusion=True)
    t_end = time.perf_counter()

    summary = {
        "final": True,
        "script": "recipe1.py",
        "settings": {k: v for k, v in vars(args).items() if k != "out"} | {"threads": threads},
        "classes": classes,
        "head": "dense1_sigmoid_bce" if binary(n_classes) else f"dense{n_classes}_softmax_ce",
        "samples": {s: len(x[s]) for s in SPLITS},
        "features_from_cache": cache_hit,
        "final_val_loss": history[-1]["val_loss"] if history else None,
        "final_val_acc": history[-1]["val_acc"] if history else None,
        "best_val_acc": max((h["val_acc"] for h in history), default=None),
        "best_val_epoch": max(history, key=lambda h: h["val_acc"])["epoch"] if history else None,
        "test_loss": test_loss,
        "test_acc": test_acc,
        "test_confusion": test_cm.tolist(),
        "test_per_class": per_class(test_cm, classes),
        "times_s": {
            "import": t_setup - T_START,
            **times,
            "extract_total": t_extracted - t_setup,
            "train_total": t_trained - t_train0,
            "train_per_epoch_mean": (t_trained - t_train0) / max(args.epochs, 1),
            "test_eval": t_end - t_trained,
            "wall": t_end - T_START,
        },
        "peak_rss_mb": vggref.peak_rss_mb(),
        "machine": vggref.machine_info(),
    }
    print(json.dumps(summary), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summary | {"history": history}, f, indent=2)
            f.write("\n")
        print(f"wrote {args.out}", file=log)


if __name__ == "__main__":
    main()
