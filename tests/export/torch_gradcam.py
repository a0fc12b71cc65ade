#!/usr/bin/env python3
"""Load a vggserve safetensors export in PyTorch; print probabilities and Grad-CAM.

Usage: torch_gradcam.py MODEL.safetensors PIXELS --count N --size S [--targets 0,1,...]

Owns the PyTorch side of the export tests: the export must load the way docs/EXPORT.md
shows (torchvision's VGG16 `features` + the `head` Sequential, strict load_state_dict),
and the service's probabilities and `explain=gradcam` heatmaps must match what PyTorch
computes here from the service's own decoded pixels (the Rust test compares to 1e-3).

Grad-CAM as docs/EXPORT.md defines it: target c (default argmax of the probabilities);
score s = z if c == 1 else -z for one sigmoid logit z, s = logits[c] for softmax; A = the
output of features[29] (the ReLU after block5_conv3), [512, h, w]; alpha_k = mean over
(h, w) of ds/dA_k; cam = ReLU(sum_k alpha_k A_k) / max (all zeros when the max is 0).
`--targets` gives one class per image (index or name), or one for all.

Prints JSON: {"classes": [...], "probabilities": [[...]], "targets": [...],
"heatmaps": [[[...]]]} (heatmaps N x h x w).
"""

import json
from collections import OrderedDict

import torch
import torchvision
from safetensors import safe_open
from safetensors.torch import load_file

from common import arguments, check_metadata, fail, preprocess, read_pixels


def load(path, size):
    """The export as docs/EXPORT.md loads it, in eval mode, with its metadata."""
    with safe_open(path, "pt") as f:
        meta = f.metadata() or {}
    classes, head = check_metadata(meta, size)
    model = torch.nn.Sequential(OrderedDict(
        features=torchvision.models.vgg16(weights=None).features,
        head=torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(head["input"], head["hidden"]), torch.nn.ReLU(),
            torch.nn.Dropout(head["dropout"]), torch.nn.Linear(head["hidden"], head["outputs"]))))
    tensors = load_file(path)
    if any(t.dtype != torch.float32 for t in tensors.values()):
        fail("not every tensor is float32")
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        fail(f"strict load_state_dict: {error}")
    return model.eval(), meta, classes


def targets_for(spec, classes, count, default):
    if spec is None:
        return default
    wanted = [int(t) if t.strip().lstrip("-").isdigit() else t.strip() for t in spec.split(",")]
    if any(isinstance(t, str) and t not in classes for t in wanted):
        fail(f"--targets {spec}: classes are {classes}")
    wanted = [classes.index(t) if isinstance(t, str) else t for t in wanted]
    if len(wanted) not in (1, count) or not all(0 <= t < len(classes) for t in wanted):
        fail(f"--targets {spec}: need 1 or {count} class indices below {len(classes)}")
    return wanted * count if len(wanted) == 1 else wanted


def main():
    args = arguments(__doc__.splitlines()[0], lambda p: p.add_argument("--targets"))
    model, meta, classes = load(args.model, args.size)
    x = torch.from_numpy(preprocess(read_pixels(args.pixels, args.count, args.size),
                                    meta["preprocessing"]))

    # Split at features[29]: A is a leaf of the graph above it, so autograd gives ds/dA
    # directly (no hooks on the in-place ReLU). Gradients stay on: the backward pass needs them.
    with torch.no_grad():
        a = model.features[:30](x)
    a.requires_grad_(True)
    logits = model.head(model.features[30:](a))
    if meta["output"] == "sigmoid":
        p1 = torch.sigmoid(logits[:, 0])
        probabilities = torch.stack([1 - p1, p1], dim=1).detach()
    else:
        probabilities = torch.softmax(logits, dim=1).detach()
    targets = targets_for(args.targets, classes, args.count,
                          probabilities.argmax(dim=1).tolist())
    t = torch.tensor(targets)
    if meta["output"] == "sigmoid":
        scores = torch.where(t == 1, logits[:, 0], -logits[:, 0])
    else:
        scores = logits.gather(1, t[:, None])[:, 0]
    # Images are independent in eval mode, so d(sum of scores)/dA_i = ds_i/dA_i.
    (grad,) = torch.autograd.grad(scores.sum(), a)
    with torch.no_grad():
        alpha = grad.mean(dim=(2, 3), keepdim=True)
        cam = torch.relu((alpha * a).sum(dim=1))
        peak = cam.amax(dim=(1, 2), keepdim=True)
        heatmaps = torch.where(peak > 0, cam / torch.where(peak > 0, peak, 1), 0)
    print(json.dumps({"classes": classes, "probabilities": probabilities.tolist(),
                      "targets": targets, "heatmaps": heatmaps.tolist()}))


if __name__ == "__main__":
    main()
