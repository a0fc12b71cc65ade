"""PyTorch reference: cost of one training step of Chollet's recipes 2 and 3.

What it measures
    One optimiser step on a batch of 20 images of 150x150 (real images: the first
    10 cats and 10 dogs of the train split in Keras order, preprocessed as
    features_e2e.py does), float32, ``--threads`` torch threads, for

    * recipe 2 (5.3.1, "feature extraction with data augmentation"): conv base
      frozen and run under ``torch.no_grad()``; head Flatten -> Dense(256, ReLU) ->
      Dense(1, sigmoid) trained; RMSprop(lr=2e-5, rho=0.9, eps=1e-7).
    * recipe 3 (5.3.2, fine-tuning): blocks 1-4 frozen under ``no_grad``;
      block5_conv1..3 (torchvision features.24/26/28) and the head trained;
      RMSprop(lr=1e-5, rho=0.9, eps=1e-7).

    Each in both memory formats (``nchw``; ``channels_last`` = model and input
    ``.to(memory_format=torch.channels_last)``). A step = frozen forward + trainable
    forward + BCE loss (from logits) + backward + RMSprop step; ``--warmup`` untimed
    steps, then the median (and min/max) of ``--steps`` timed steps, with the
    step's phases (frozen forward / trainable forward+loss / backward / optimiser).
    Keras init for the head (glorot_uniform, zero biases).

    Not in the step time, reported separately per batch of 20: decoding + NEAREST
    resize from JPEG (``decode_resize``) and, unless ``--no-augment``, an
    approximation of the seed's ImageDataGenerator(rotation_range=40,
    width/height_shift_range=0.2, shear_range=0.2, zoom_range=0.2,
    horizontal_flip=True) done in torch with affine_grid + grid_sample (bilinear,
    border fill): Keras does this per image with scipy.ndimage (order 1, fill
    'nearest'), so this gives an order of magnitude, not Keras's exact cost.

How to run (from the repository root)
    .venv/bin/python benches/reference/train_step.py                         # both recipes, both formats
    .venv/bin/python benches/reference/train_step.py --steps 1 --warmup 1 --recipes 2 --formats nchw

Output: one JSON object (stdout, or ``--out``); progress lines go to stderr.
"""

import argparse
import math
import os
import statistics
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F

import vggref

LR = {2: 2e-5, 3: 1e-5}


class Recipe(nn.Module):
    """conv base split at ``split`` into a frozen part and a trainable part, + head."""

    def __init__(self, base, recipe):
        super().__init__()
        split = len(base.features) if recipe == 2 else vggref.BLOCK5_CONVS[0]
        self.frozen = base.features[:split]
        self.trainable = base.features[split:]  # empty Sequential for recipe 2
        for p in self.frozen.parameters():
            p.requires_grad_(False)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(512 * 4 * 4, 256), nn.ReLU(),
                                  nn.Linear(256, 1))
        for m in self.head:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)


def time_steps(model, x, y, opt, warmup, steps):
    loss_fn = nn.BCEWithLogitsLoss()
    model.frozen.eval()  # no dropout/BN in VGG; eval() only for form
    records = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        with torch.no_grad():
            h = model.frozen(x)
        t1 = time.perf_counter()
        z = model.head(model.trainable(h)).squeeze(1)
        loss = loss_fn(z, y)
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        if i >= warmup:
            records.append({"step_s": t4 - t0, "frozen_forward_s": t1 - t0,
                            "trainable_forward_loss_s": t2 - t1, "backward_s": t3 - t2,
                            "optimizer_s": t4 - t3, "loss": loss.item()})
    return records


def summarize(records):
    steps = [r["step_s"] for r in records]
    out = {"median_step_s": statistics.median(steps), "min_step_s": min(steps),
           "max_step_s": max(steps), "images_per_s": 20 / statistics.median(steps)}
    for k in ("frozen_forward_s", "trainable_forward_loss_s", "backward_s", "optimizer_s"):
        out[f"median_{k}"] = statistics.median(r[k] for r in records)
    out["steps"] = records
    return out


def random_affine(x, gen):
    """Torch stand-in for Keras's random_transform (see module docstring)."""
    n, _, h, w = x.shape
    mats = []
    for _ in range(n):
        u = torch.rand(6, generator=gen)
        theta = math.radians((u[0].item() * 2 - 1) * 40)
        tx = (u[1].item() * 2 - 1) * 0.2 * 2  # affine_grid coords span [-1, 1]
        ty = (u[2].item() * 2 - 1) * 0.2 * 2
        shear = math.radians((u[3].item() * 2 - 1) * 0.2)  # Keras: shear_range in degrees
        zx = 1 + (u[4].item() * 2 - 1) * 0.2
        zy = 1 + (u[5].item() * 2 - 1) * 0.2
        rot = torch.tensor([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
        sh = torch.tensor([[1.0, -math.sin(shear)], [0.0, math.cos(shear)]])
        zm = torch.tensor([[zx, 0.0], [0.0, zy]])
        a = rot @ sh @ zm
        if torch.rand(1, generator=gen).item() < 0.5:  # horizontal flip
            a = a @ torch.tensor([[-1.0, 0.0], [0.0, 1.0]])
        mats.append(torch.cat([a, torch.tensor([[tx], [ty]])], dim=1))
    grid = F.affine_grid(torch.stack(mats), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def time_data(paths, reps, augment, seed):
    dec, aug = [], []
    gen = torch.Generator().manual_seed(seed)
    for _ in range(reps):
        t0 = time.perf_counter()
        x = vggref.load_batch(paths)
        t1 = time.perf_counter()
        dec.append(t1 - t0)
        if augment:
            random_affine(x, gen)
            aug.append(time.perf_counter() - t1)
    out = {"decode_resize_median_s": statistics.median(dec)}
    if aug:
        out["augment_torch_approx_median_s"] = statistics.median(aug)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", default=vggref.WEIGHTS)
    ap.add_argument("--dir", default=os.path.join(vggref.DATASET, "train"),
                    help="class folders to take the batch from")
    ap.add_argument("--recipes", type=int, nargs="+", default=[2, 3], choices=[2, 3])
    ap.add_argument("--formats", nargs="+", default=["nchw", "channels_last"],
                    choices=["nchw", "channels_last"])
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: cores available)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-augment", action="store_true", help="skip the augmentation timing")
    ap.add_argument("--data-reps", type=int, default=3, help="repetitions of the data timings")
    ap.add_argument("--out", help="write JSON here instead of stdout")
    args = ap.parse_args()

    threads = vggref.set_threads(args.threads)
    items, _ = vggref.list_images(args.dir, args.batch)
    paths = [p for p, _ in items]
    x0 = vggref.load_batch(paths)
    y = torch.tensor([float(lab) for _, lab in items])

    result = {
        "script": "train_step.py",
        "machine": vggref.machine_info(),
        "settings": {k: v for k, v in vars(args).items() if k != "out"} | {"threads": threads},
        "data_per_batch": time_data(paths, args.data_reps, not args.no_augment, args.seed),
        "runs": [],
    }
    print(f"data per batch of {args.batch}: {result['data_per_batch']}", file=sys.stderr)
    for recipe in args.recipes:
        for fmt in args.formats:
            cl = fmt == "channels_last"
            torch.manual_seed(args.seed)
            base = vggref.load_conv_base(args.weights)
            model = Recipe(base, recipe)
            x = x0
            if cl:
                model = model.to(memory_format=torch.channels_last)
                x = x0.contiguous(memory_format=torch.channels_last)
            params = [p for p in model.parameters() if p.requires_grad]
            opt = torch.optim.RMSprop(params, lr=LR[recipe], alpha=0.9, eps=1e-7, momentum=0.0)
            recs = time_steps(model, x, y, opt, args.warmup, args.steps)
            run = {"recipe": recipe, "format": fmt,
                   "trainable_tensors": len(params),
                   "trainable_params": sum(p.numel() for p in params),
                   **summarize(recs)}
            result["runs"].append(run)
            print(f"recipe {recipe} {fmt:13s}: median step {run['median_step_s']:.3f} s "
                  f"(min {run['min_step_s']:.3f}, max {run['max_step_s']:.3f}; frozen fwd "
                  f"{run['median_frozen_forward_s']:.3f}, trainable fwd "
                  f"{run['median_trainable_forward_loss_s']:.3f}, bwd {run['median_backward_s']:.3f}, "
                  f"opt {run['median_optimizer_s']:.4f}) over {len(recs)} steps", file=sys.stderr)
    result["peak_rss_mb"] = vggref.peak_rss_mb()
    vggref.emit(result, args.out)


if __name__ == "__main__":
    main()
