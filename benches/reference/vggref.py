"""Shared helpers for the PyTorch reference scripts in benches/reference/.

Not a benchmark itself. It holds what every reference script needs, so that all of
them build the same model and read images the same way:

* ``vgg16_features()``: torchvision's ``vgg16().features`` rebuilt in plain torch
  (no torchvision dependency): 13 x [Conv2d 3x3, padding 1, + ReLU] with
  MaxPool2d(2, 2) after blocks 1-5. Module indices match torchvision, so the
  stand-in weights (``features.{0,2,5,...,28}.{weight,bias}``) load with strict=True.
* ``load_conv_base()``: that model with the stand-in weights loaded, in eval mode.
* ``list_images()``: Keras ``flow_from_directory`` file order (classes = sorted
  sub-folders, files sorted by name within each class, label = class index).
* ``load_image()``: Keras ``load_img(target_size=(150,150))`` + ``img_to_array`` +
  rescale: PIL decode, convert to RGB when the mode is not RGB, resize with
  NEAREST, float32, then ``/ 255`` (default; what the golden fixture and vggserve's
  ``Rgb01`` do) or, with ``rescale="keras"``, Keras's ``x *= 1./255`` (a float32
  multiply: differs from ``/255`` by 1 ulp in about half of the pixels); CHW.

Paths default to the read-only shared data; override with the scripts' flags or
the VGGSERVE_SHARED environment variable (the folder that holds weights/,
fixtures/, datasets/).
"""

import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn

SHARED = os.environ.get(
    "VGGSERVE_SHARED",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared"),
)
WEIGHTS = os.path.join(SHARED, "weights", "vgg16-standin.safetensors")
GOLDEN = os.path.join(SHARED, "fixtures", "vgg16-golden.safetensors")
DATASET = os.path.join(SHARED, "datasets", "cats_and_dogs_small")

# torchvision's cfg "D"; "M" = MaxPool2d(2, 2).
VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
             512, 512, 512, "M", 512, 512, 512, "M"]
# Index in features of the last layer of block 4 (its MaxPool) and of block 5.
BLOCK4_POOL = 23
BLOCK5_POOL = 30
# Conv layers of block 5 (Keras block5_conv1..3) in torchvision indices.
BLOCK5_CONVS = (24, 26, 28)

# keras_preprocessing white list for flow_from_directory.
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff")


def vgg16_features():
    layers = []
    in_ch = 3
    for v in VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.Conv2d(in_ch, v, kernel_size=3, padding=1))
            layers.append(nn.ReLU(inplace=True))
            in_ch = v
    return nn.Sequential(*layers)


class ConvBase(nn.Module):
    """Holds ``features`` under that name so the state-dict keys match torchvision."""

    def __init__(self):
        super().__init__()
        self.features = vgg16_features()

    def forward(self, x):
        return self.features(x)


def load_conv_base(weights=WEIGHTS, channels_last=False, dtype=torch.float32):
    from safetensors.torch import load_file

    model = ConvBase()
    state = load_file(weights)
    model.load_state_dict(state, strict=True)
    model = model.to(dtype=dtype).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def set_threads(n):
    """torch.set_num_threads(n); n=None/0 means the cores this process may use."""
    if not n:
        n = len(os.sched_getaffinity(0))
    torch.set_num_threads(n)
    return n


def list_images(directory, limit=None):
    """[(path, label)] in flow_from_directory(shuffle=False) order; classes sorted.

    ``limit`` keeps a class-balanced prefix: limit // n_classes files from each
    class (the remainder goes to the first classes), still in Keras order.
    Returns (items, class_names).
    """
    classes = sorted(d for d in os.listdir(directory)
                     if os.path.isdir(os.path.join(directory, d)))
    per_class = []
    for ci, c in enumerate(classes):
        files = []
        for root, _dirs, names in sorted(os.walk(os.path.join(directory, c)),
                                         key=lambda t: t[0]):
            for name in sorted(names):
                if name.lower().endswith(IMAGE_EXTS):
                    files.append((os.path.join(root, name), ci))
        per_class.append(files)
    if limit is not None:
        n = len(classes)
        quota = [limit // n + (1 if i < limit % n else 0) for i in range(n)]
        per_class = [f[:q] for f, q in zip(per_class, quota)]
    items = [it for files in per_class for it in files]
    return items, classes


RESCALE = np.float32(1.0 / 255.0)
RESCALE_CHOICES = ("div", "keras")


def load_image(path, size=(150, 150), rescale="div"):
    """Keras load_img(target_size, interpolation='nearest') + 1/255 rescale, as CHW f32.

    rescale="div": x / 255 (bit-identical to the golden fixture's input).
    rescale="keras": x * float32(1/255), as ImageDataGenerator(rescale=1./255).
    """
    from PIL import Image

    with open(path, "rb") as f:
        img = Image.open(f)
        img.load()
    if img.mode != "RGB":
        img = img.convert("RGB")
    w, h = size[1], size[0]
    if img.size != (w, h):
        img = img.resize((w, h), Image.NEAREST)
    x = np.asarray(img, dtype=np.float32)  # HWC
    if rescale == "keras":
        x = x * RESCALE  # ImageDataGenerator.standardize: x *= self.rescale
    elif rescale == "div":
        x = x / np.float32(255.0)
    else:
        raise ValueError(f"rescale must be one of {RESCALE_CHOICES}, not {rescale!r}")
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def load_batch(paths, size=(150, 150), rescale="div"):
    return torch.from_numpy(np.stack([load_image(p, size, rescale) for p in paths]))


def peak_rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine_info():
    info = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "threads": torch.get_num_threads(),
        "cpus_allowed": len(os.sched_getaffinity(0)),
        "mkldnn": torch.backends.mkldnn.is_available(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        info["loadavg_at_start"] = os.getloadavg()
    except OSError:
        pass
    info["time"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return info


def emit(result, out=None):
    """Print JSON to stdout, or write it to ``out`` (and say where on stderr)."""
    text = json.dumps(result, indent=2)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")
        print(f"wrote {out}", file=sys.stderr)
    else:
        print(text)
