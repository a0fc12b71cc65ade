"""PyTorch reference: Chollet's recipe 2 run whole (feature extraction with data augmentation).

What it does / measures
    Deep Learning with Python, 5.3.1, "feature extraction with data augmentation", done
    the way vggserve's recipe 2 (``src/train/recipes/end_to_end.rs``) does it, with
    PyTorch's fastest CPU settings, so that the two can be timed side by side: the
    VGG16 conv base (stand-in weights, vggref.py) frozen, a new dense head trained on
    top of it through live augmentation, every training batch going through the
    frozen base again.

    1. Decode (timed on its own, ``decode`` phase): every training photo, the
       validation photos used (see 4) and the test photos, once, up front, as
       vggserve keeps its decoded training images (HWC uint8 RGB in memory) and
       augments per batch. Keras order and ``load_img``: class folders sorted, files
       sorted by name, PIL, RGB, NEAREST resize to 150x150 (``--resize keras``, the
       default; ``--resize vggserve`` takes the Pillow-decoded pixels at the `image`
       crate's nearest-neighbour indices instead, see docs/BENCHMARKS.md). Decoding
       runs on ``--decode-workers`` threads (default ``--threads``; PIL releases the
       GIL), as vggserve decodes on its rayon pool. Per batch: uint8 -> float32 / 255
       (bit-identical to vggserve's ``Rgb01``), laid out channels-last as vggserve's
       ``images_to_tensor`` does.
    2. ``--frozen int8`` only (``calibration`` phase): the conv base quantised with
       ``torch.ao`` FX post-training static quantisation, like vggserve's int8 base:
       per-channel symmetric int8 weights (scale max|w|/127), per-tensor uint8
       activations over the observed [min(0, min), max] (MinMaxObserver, as vggserve's
       ``Calibration`` takes min/max), 7-bit (reduce_range) unless the CPU has
       AVX512-VNNI, conv+ReLU fused into ``quantized::conv2d_relu``, max-pools on
       quantised tensors; calibrated on 32 training photos evenly spaced over the
       sorted training list (``i * N // 32``, vggserve's ``spread``), in batches of 8;
       packed for ``--engine`` (default onednn, vggserve's engine).
    3. Head: Flatten -> Dense(256, ReLU) -> Dense(1) (one sigmoid unit, BCE from the
       logits) for 2 classes, Dense(N) softmax / categorical CE for N > 2; no dropout
       (vggserve's recipe 2 head); Keras init (glorot_uniform, zero biases; seeded with
       ``--seed``). RMSprop(lr 2e-5, rho 0.9, eps 1e-7 outside the square root, no
       momentum), which is burn's RmsProp with vggserve's ``keras_rmsprop()``.
    4. Validation (``val_frozen`` phase, once per run): the validation photos shuffled
       with ``seed ^ 0x5eed`` and cut to ``--val-steps x --batch`` (1000 = all of them
       by default), through the frozen base (f32 or int8) once, in batches of
       ``--batch``: neither the photos nor the frozen layers change, so vggserve
       computes these outputs once per job and each epoch only runs the head on them.
    5. ``--epochs`` epochs of ``--steps`` steps of ``--batch``: Keras's endless
       iterator (the training set reshuffled each time it runs out, batches taken from
       it), each batch augmented as vggserve's ``Augmentation`` does (rotation 40
       degrees, shifts 0.2, shear 0.2 degrees, zoom 0.2 per axis, horizontal flip; one
       2x3 matrix per image; one batched ``affine_grid`` + ``grid_sample``, bilinear,
       border padding, align_corners=True), the frozen base under
       ``torch.inference_mode()``, head forward + loss + backward + RMSprop step with
       autograd. Then the head over the frozen validation outputs. An epoch's
       ``seconds`` = its steps + its validation (vggserve's epoch ``seconds``).
    6. Test (``test`` phase): the model vggserve registers, i.e. the weights of the
       best epoch by ``--monitor`` (default val_loss, strictly lower; Keras's
       ``restore_best_weights``), or the last epoch's with ``--no-restore-best`` (the
       seed's behaviour), on every test photo (``--limit-test N``: a class-balanced
       prefix) in batches of ``--batch``, through the f32 conv base (channels-last
       per ``--channels-last``), also with ``--frozen int8``: vggserve's test pass
       runs the trained classifier, whose base is the f32 network.

    ``--channels-last`` (default) puts the base in channels_last, PyTorch's fastest
    f32 layout on CPU (and vggserve's); ``--no-channels-last`` runs NCHW.
    ``torch.set_num_threads(--threads)`` (default 2).

    Output: one JSON line per epoch on stdout ({"epoch", "loss", "acc", "val_loss",
    "val_acc", "seconds", "best_epoch", ...}, loss/acc the means over the epoch's
    training batches as Keras logs them), then one summary line ({"final": true, ...}:
    test loss/accuracy/confusion, wall seconds of the whole run and of each phase,
    step-time statistics, settings, machine); ``--out FILE`` also writes the summary
    with the per-epoch list. Progress goes to stderr.

How to run (from the repository root)
    .venv/bin/python benches/reference/recipe2.py --out bench-out/recipe2-torch-f32.json       # full: ~1.8 h on 2 AVX2 cores (est.)
    .venv/bin/python benches/reference/recipe2.py --frozen int8 --out bench-out/recipe2-torch-int8.json  # full: 51 min there (0.96 s/step)
    .venv/bin/python benches/reference/recipe2.py --epochs 1 --steps 2 --val-steps 2 --limit-test 40  # smoke (~1-2 min)
"""

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import vggref  # noqa: E402
from int8_conv import caught  # noqa: E402
from recipe1 import binary, dataset_classes, per_class, resolve_dataset  # noqa: E402

T_IMPORTED = time.perf_counter()

# vggserve's Augmentation::default(): the seed's ImageDataGenerator settings.
AUGMENT = {"rotation_degrees": 40.0, "width_shift": 0.2, "height_shift": 0.2,
           "shear_degrees": 0.2, "zoom": 0.2, "horizontal_flip": True}
CALIBRATION_PHOTOS = 32  # vggserve's model::frozen::CALIBRATION_PHOTOS
CALIBRATION_BATCH = 8    # ... and CALIBRATION_BATCH
VAL_SHUFFLE_XOR = 0x5EED


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --- decoding ----------------------------------------------------------------------

def image_crate_nearest(src, dst):
    """Source indices of the `image` crate's Nearest resize (0.25): floor((i + 0.5) * r)
    computed in f32 with r = src / dst in f32, clamped to the image."""
    ratio = np.float32(src) / np.float32(dst)
    x = (np.arange(dst, dtype=np.float32) + np.float32(0.5)) * ratio
    return np.clip(np.floor(x).astype(np.int64), 0, src - 1)


def decode_u8(path, size=150, resize="keras"):
    """HWC uint8 RGB ``size x size``: vggref.load_image without the float conversion."""
    from PIL import Image

    with open(path, "rb") as f:
        img = Image.open(f)
        img.load()
    if img.mode != "RGB":
        img = img.convert("RGB")
    if img.size == (size, size):
        return np.asarray(img, dtype=np.uint8)
    if resize == "keras":
        return np.asarray(img.resize((size, size), Image.NEAREST), dtype=np.uint8)
    a = np.asarray(img, dtype=np.uint8)
    rows = image_crate_nearest(a.shape[0], size)
    cols = image_crate_nearest(a.shape[1], size)
    return np.ascontiguousarray(a[rows[:, None], cols[None, :]])


def decode_all(items, workers, resize):
    """[(path, label)] -> (uint8 [N, S, S, 3], labels [N]) in the items' order."""
    paths = [p for p, _ in items]
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            images = list(pool.map(lambda p: decode_u8(p, resize=resize), paths, chunksize=16))
    else:
        images = [decode_u8(p, resize=resize) for p in paths]
    x = torch.from_numpy(np.stack(images)) if images else torch.zeros(0, 150, 150, 3, dtype=torch.uint8)
    return x, torch.tensor([lab for _, lab in items], dtype=torch.long)


def to_input(u8, channels_last):
    """uint8 [N, H, W, 3] -> float32 [N, 3, H, W] / 255; channels-last strides (a permuted
    view of NHWC, as vggserve's images_to_tensor) or contiguous NCHW."""
    x = u8.float().div_(255.0).permute(0, 3, 1, 2)
    return x if channels_last else x.contiguous()


def spread(n_items, n):
    """vggserve's model::frozen::spread: at most n indices, evenly spaced."""
    if n_items <= n:
        return list(range(n_items))
    return [i * n_items // n for i in range(n)]


# --- augmentation ------------------------------------------------------------------

def random_thetas(n, gen, aug=AUGMENT):
    """[n, 2, 3] matrices as vggserve's Augmentation::random_theta builds them: in
    grid_sample's normalised (x, y), mapping an output location to the input one;
    rotation * shear * zoom, shifts (fractions x 2 normalised units), then the flip,
    which negates the output x (the column of x)."""
    u = torch.rand(n, 7, generator=gen, dtype=torch.float64) * 2 - 1  # U(-1, 1)
    angle = torch.deg2rad(u[:, 0] * aug["rotation_degrees"])
    shift_x = 2.0 * u[:, 1] * aug["width_shift"]
    shift_y = 2.0 * u[:, 2] * aug["height_shift"]
    shear = torch.deg2rad(u[:, 3] * aug["shear_degrees"])
    zoom_x = 1.0 + u[:, 4] * aug["zoom"]
    zoom_y = 1.0 + u[:, 5] * aug["zoom"]
    if aug["horizontal_flip"]:
        flip = torch.where(u[:, 6] < 0, -1.0, 1.0).to(torch.float64)
    else:
        flip = torch.ones(n, dtype=torch.float64)
    cos, sin = angle.cos(), angle.sin()
    sh_sin, sh_cos = shear.sin(), shear.cos()
    # [[cos, -sin], [sin, cos]] @ [[1, -sin(sh)], [0, cos(sh)]] @ diag(zoom_x, zoom_y)
    m00, m01 = cos * zoom_x, (-cos * sh_sin - sin * sh_cos) * zoom_y
    m10, m11 = sin * zoom_x, (-sin * sh_sin + cos * sh_cos) * zoom_y
    theta = torch.stack([m00 * flip, m01, shift_x, m10 * flip, m11, shift_y], dim=1)
    return theta.reshape(n, 2, 3).float()


def augment(x, gen, channels_last):
    """One batched warp: affine_grid + grid_sample (bilinear, border, align_corners=True),
    vggserve's Augmentation::apply."""
    theta = random_thetas(x.shape[0], gen)
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return y.contiguous(memory_format=fmt)


# --- int8 --------------------------------------------------------------------------

def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def quantise(fbase, calib_u8, engine, reduce_range):
    """FX post-training static quantisation of the conv base as vggserve quantises it.
    Returns (int8 model, record)."""
    import torch.ao.quantization as tq
    from torch.ao.quantization import backend_config as bc
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    backend = {"onednn": bc.get_onednn_backend_config, "fbgemm": bc.get_fbgemm_backend_config,
               "x86": bc.get_native_backend_config}[engine]()
    qconfig = tq.QConfig(
        activation=tq.MinMaxObserver.with_args(
            dtype=torch.quint8, qscheme=torch.per_tensor_affine, reduce_range=reduce_range),
        weight=tq.PerChannelMinMaxObserver.with_args(
            dtype=torch.qint8, qscheme=torch.per_channel_symmetric, quant_min=-127, quant_max=127))
    mapping = tq.QConfigMapping().set_global(qconfig)
    torch.backends.quantized.engine = engine  # before convert: weights are packed for it
    model = copy.deepcopy(fbase).to(memory_format=torch.contiguous_format).eval()
    rec = {"route": "fx", "engine": engine, "observer": "MinMaxObserver (activations), "
           "PerChannelMinMaxObserver symmetric -127..127 (weights)",
           "reduce_range": reduce_range, "activation_levels": 127 if reduce_range else 255,
           "calibration_images": len(calib_u8), "calibration_batch": CALIBRATION_BATCH}
    t0 = time.perf_counter()
    example = to_input(calib_u8[:1], False)
    observed, rec["warnings_prepare"] = caught(
        lambda: prepare_fx(model, mapping, (example,), backend_config=backend))
    t1 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(calib_u8), CALIBRATION_BATCH):
            observed(to_input(calib_u8[i:i + CALIBRATION_BATCH], False))
    t2 = time.perf_counter()
    qmodel, rec["warnings_convert"] = caught(lambda: convert_fx(observed, backend_config=backend))
    t3 = time.perf_counter()
    from torch.ao.nn.intrinsic.quantized import ConvReLU2d as QConvReLU2d

    qconvs = [m for m in qmodel.modules() if isinstance(m, QConvReLU2d)]
    if len(qconvs) != 13:
        kinds = sorted({type(m).__module__ + "." + type(m).__name__ for m in qmodel.modules()
                        if not list(m.children())})
        raise RuntimeError(f"expected 13 quantised conv+ReLU modules, found {len(qconvs)}: {kinds}")
    input_q = [n for n in qmodel.graph.nodes
               if n.op == "call_function" and "quantize_per_tensor" in str(n.target)]
    if input_q:
        scale, zero = (getattr(qmodel, a.target) for a in input_q[0].args[1:3])
        rec["input_qparams"] = [float(scale), int(zero)]
    rec.update(prepare_s=t1 - t0, calibrate_s=t2 - t1, convert_s=t3 - t2,
               quantised_convs=len(qconvs), conv_output_scales=[float(m.scale) for m in qconvs])
    return qmodel, rec


# --- model -------------------------------------------------------------------------

def make_head(in_features, units, seed):
    """vggserve's recipe-2 head: Dense(256, ReLU) -> (Dropout 0) -> Dense(units)."""
    torch.manual_seed(seed)
    head = nn.Sequential(nn.Flatten(), nn.Linear(in_features, 256), nn.ReLU(),
                         nn.Linear(256, units))
    for m in head:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)  # = Keras glorot_uniform, burn XavierUniform
            nn.init.zeros_(m.bias)
    return head


def batch_loss_fn(units):
    return nn.BCEWithLogitsLoss() if units == 1 else nn.CrossEntropyLoss()


def targets(labels, units):
    return labels.float() if units == 1 else labels


def predicted(z):
    return (z[:, 0] > 0).long() if z.shape[1] == 1 else z.argmax(1)


def summed_loss(z, labels):
    """Sum of per-sample losses in float64, as vggserve's Meter::add_logits."""
    z = z.double()
    if z.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(z[:, 0], labels.double(), reduction="sum").item()
    return F.cross_entropy(z, labels, reduction="sum").item()


def head_metrics(head, feats, labels, n_classes=None):
    """(loss, acc[, confusion]) of the head over precomputed frozen outputs."""
    head.eval()
    with torch.inference_mode():
        z = torch.cat([head(f) for f in feats]) if feats else torch.zeros(0, 1)
    y = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long)
    n = max(len(y), 1)
    loss, acc = summed_loss(z, y) / n, (predicted(z) == y).sum().item() / n
    if n_classes is None:
        return loss, acc
    cm = torch.zeros(n_classes, n_classes, dtype=torch.long)
    cm.index_put_((y, predicted(z)), torch.ones_like(y), accumulate=True)
    return loss, acc, cm


def frozen_outputs(frozen, x_u8, batch, channels_last):
    outs = []
    with torch.inference_mode():
        for i in range(0, len(x_u8), batch):
            outs.append(frozen(to_input(x_u8[i:i + batch], channels_last)))
    return outs


def save_checkpoint(directory, base, head, name):
    from safetensors.torch import save_file

    state = {f"base.{k}": v.contiguous() for k, v in base.state_dict().items()}
    state |= {f"head.{k}": v.contiguous() for k, v in head.state_dict().items()}
    path = os.path.join(directory, name)
    save_file(state, path + ".partial")
    os.replace(path + ".partial", path)


# --- main --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default=vggref.DATASET,
                    help="folder with train/ validation/ test/ class subfolders, or a name "
                         "under the shared datasets/ (default: cats_and_dogs_small in "
                         "../shared or $VGGSERVE_SHARED)")
    ap.add_argument("--weights", default=vggref.WEIGHTS)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--steps", type=int, default=100, help="augmented batches per epoch")
    ap.add_argument("--val-steps", type=int, default=50, help="validation batches")
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--rho", type=float, default=0.9)
    ap.add_argument("--eps", type=float, default=1e-7)
    ap.add_argument("--seed", type=int, default=0,
                    help="head init, shuffles and augmentation draws (vggserve's own "
                         "default is 1337; its ChaCha8 stream cannot be reproduced anyway)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--decode-workers", type=int, default=0,
                    help="decoding threads (default: --threads)")
    ap.add_argument("--frozen", choices=["f32", "int8"], default="f32",
                    help="precision of the frozen conv base in training and validation")
    ap.add_argument("--engine", choices=["onednn", "x86", "fbgemm"], default="onednn",
                    help="quantised engine for --frozen int8 (vggserve: onednn)")
    ap.add_argument("--reduce-range", choices=["auto", "on", "off"], default="auto",
                    help="int8 activations 7-bit (on) or 8-bit (off); auto: 7-bit unless "
                         "the CPU has avx512_vnni (vggserve's rule)")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                    help="channels_last base and inputs (default on)")
    ap.add_argument("--resize", choices=["keras", "vggserve"], default="keras",
                    help="nearest-neighbour rule: Pillow's NEAREST (Keras load_img) or the "
                         "image crate's indices (vggserve) on the Pillow-decoded pixels")
    ap.add_argument("--monitor", choices=["val_loss", "val_acc"], default="val_loss")
    ap.add_argument("--restore-best", action=argparse.BooleanOptionalAction, default=True,
                    help="test the best epoch's weights (vggserve's default) or the last's")
    ap.add_argument("--limit-test", type=int, help="class-balanced test photos (default all)")
    ap.add_argument("--checkpoint-dir",
                    help="write the whole classifier (base + head) there after every "
                         "epoch, and the best epoch's when it improves, as vggserve's "
                         "checkpoints do (timed as 'checkpoint'; off by default)")
    ap.add_argument("--progress-every", type=int, default=10, help="steps between progress lines")
    ap.add_argument("--out", help="also write the summary (with the per-epoch list) here")
    args = ap.parse_args()
    args.dataset = os.path.normpath(resolve_dataset(args.dataset))
    args.weights = os.path.normpath(args.weights)
    cl = args.channels_last
    threads = vggref.set_threads(args.threads)
    machine = vggref.machine_info()  # with the load average at the start
    workers = args.decode_workers or threads
    flags = cpu_flags()
    avx512_vnni = "avx512_vnni" in flags
    any_vnni = any("vnni" in f or f.startswith("amx") for f in flags)
    reduce_range = {"on": True, "off": False}.get(args.reduce_range, not avx512_vnni)
    times = {"import": T_IMPORTED - T_START}

    classes = dataset_classes(args.dataset)
    n_classes = len(classes)
    units = 1 if binary(n_classes) else n_classes
    log(f"{n_classes} classes {classes}; frozen {args.frozen}"
        f"{f' ({args.engine}, reduce_range={reduce_range})' if args.frozen == 'int8' else ''}; "
        f"{'channels_last' if cl else 'NCHW'}; {threads} threads")

    t = time.perf_counter()
    base = vggref.load_conv_base(args.weights, channels_last=cl)
    for p in base.parameters():
        p.requires_grad_(False)
    times["load_weights"] = time.perf_counter() - t

    # 1. decode -------------------------------------------------------------------
    train_items, _ = vggref.list_images(os.path.join(args.dataset, "train"))
    val_all, _ = vggref.list_images(os.path.join(args.dataset, "validation"))
    test_items, _ = vggref.list_images(os.path.join(args.dataset, "test"), args.limit_test)
    val_perm = torch.randperm(len(val_all), generator=torch.Generator().manual_seed(
        args.seed ^ VAL_SHUFFLE_XOR)).tolist()
    val_items = [val_all[i] for i in val_perm[:args.val_steps * args.batch]]
    data = {}
    t_dec = time.perf_counter()
    for split, items in (("train", train_items), ("validation", val_items), ("test", test_items)):
        t = time.perf_counter()
        data[split] = decode_all(items, workers, args.resize)
        times[f"decode_{split}"] = time.perf_counter() - t
        log(f"decoded {split}: {len(items)} photos in {times[f'decode_{split}']:.1f} s")
    times["decode"] = time.perf_counter() - t_dec
    x_train, y_train = data["train"]
    n_train = len(x_train)

    # 2. frozen base (int8: calibrate + convert) ---------------------------------
    quantisation = None
    if args.frozen == "int8":
        t = time.perf_counter()
        calib = x_train[spread(n_train, CALIBRATION_PHOTOS)]
        frozen, quantisation = quantise(base, calib, args.engine, reduce_range)
        times["calibration"] = time.perf_counter() - t
        log(f"int8 base: calibrated on {len(calib)} training photos, converted for "
            f"{args.engine} in {times['calibration']:.1f} s")
    else:
        frozen = base

    # 4. validation frozen outputs, once ---------------------------------------
    t = time.perf_counter()
    x_val, y_val = data["validation"]
    val_feats = frozen_outputs(frozen, x_val, args.batch, cl)
    val_labels = list(torch.split(y_val, args.batch))
    times["val_frozen"] = time.perf_counter() - t
    log(f"validation frozen outputs: {len(x_val)} photos in {times['val_frozen']:.1f} s")

    # 3./5. head, training loop --------------------------------------------------
    feat_dim = val_feats[0][0].numel() if val_feats else 512 * 4 * 4
    head = make_head(feat_dim, units, args.seed)
    opt = torch.optim.RMSprop(head.parameters(), lr=args.lr, alpha=args.rho, eps=args.eps,
                              momentum=0.0, centered=False, weight_decay=0.0)
    loss_fn = batch_loss_fn(units)
    gen = torch.Generator().manual_seed(args.seed)
    order = []
    history, step_records = [], []
    best = None  # (value, epoch, head state)
    better = (lambda v, b: v < b) if args.monitor == "val_loss" else (lambda v, b: v > b)
    ckpt_s = 0.0
    if args.checkpoint_dir:
        os.makedirs(args.checkpoint_dir, exist_ok=True)
    t_train = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        te = time.perf_counter()
        head.train()
        loss_sum, correct, count = 0.0, 0, 0
        phases = dict.fromkeys(("batch", "augment", "frozen", "head_forward_loss",
                                "backward_step"), 0.0)
        for step in range(args.steps):
            t0 = time.perf_counter()
            idx = []
            while len(idx) < min(args.batch, n_train):
                if not order:
                    order = torch.randperm(n_train, generator=gen).tolist()
                idx.append(order.pop())
            idx_t = torch.tensor(idx)
            yb = y_train[idx_t]
            with torch.inference_mode():
                x = to_input(x_train[idx_t], cl)
                t1 = time.perf_counter()
                x = augment(x, gen, cl)
                t2 = time.perf_counter()
                h = frozen(x)
            h = h.clone()  # a normal tensor, so autograd may save it
            t3 = time.perf_counter()
            z = head(h)
            loss = loss_fn(z if units > 1 else z[:, 0], targets(yb, units))
            loss_value = loss.item()
            loss_sum += loss_value * len(idx)
            correct += (predicted(z.detach()) == yb).sum().item()
            count += len(idx)
            t4 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            t5 = time.perf_counter()
            rec = {"batch": t1 - t0, "augment": t2 - t1, "frozen": t3 - t2,
                   "head_forward_loss": t4 - t3, "backward_step": t5 - t4}
            for k, v in rec.items():
                phases[k] += v
            step_records.append(t5 - t0)
            if args.progress_every and (step + 1) % args.progress_every == 0:
                log(f"epoch {epoch} step {step + 1}/{args.steps}: {t5 - t0:.2f} s "
                    f"(augment {t2 - t1:.3f}, frozen {t3 - t2:.2f}, head "
                    f"{t5 - t3:.3f}), loss {loss_value:.4f}")
        t_val = time.perf_counter()
        val_loss, val_acc = head_metrics(head, val_feats, val_labels)
        t_end = time.perf_counter()
        rec = {"epoch": epoch, "loss": loss_sum / max(count, 1), "acc": correct / max(count, 1),
               "val_loss": val_loss, "val_acc": val_acc, "seconds": t_end - te,
               "steps_s": t_val - te, "validation_s": t_end - t_val,
               "phases_s": phases}
        value = val_loss if args.monitor == "val_loss" else val_acc
        improved = best is None or better(value, best[0])
        if improved:
            state = ({k: v.detach().clone() for k, v in head.state_dict().items()}
                     if args.restore_best else None)
            best = (value, epoch, state)
        rec["best_epoch"] = best[1]
        history.append(rec)
        print(json.dumps(rec), flush=True)
        if args.checkpoint_dir:
            tc = time.perf_counter()
            save_checkpoint(args.checkpoint_dir, base, head, "model.safetensors")
            if improved and args.restore_best:
                save_checkpoint(args.checkpoint_dir, base, head, "best.safetensors")
            ckpt_s += time.perf_counter() - tc
    times["train_epochs"] = time.perf_counter() - t_train
    times["checkpoint"] = ckpt_s

    # 6. test ---------------------------------------------------------------------
    registered = history[-1]["epoch"] if history else None
    if args.restore_best and best is not None:
        head.load_state_dict(best[2])
        registered = best[1]
    if args.frozen == "int8":
        torch.backends.quantized.engine = args.engine
    t = time.perf_counter()
    x_test, y_test = data["test"]
    test_feats = frozen_outputs(base, x_test, args.batch, cl)  # the f32 base, as vggserve
    test_loss, test_acc, cm = head_metrics(head, test_feats, list(torch.split(y_test, args.batch)),
                                           n_classes)
    times["test"] = time.perf_counter() - t
    t_done = time.perf_counter()
    times["wall"] = t_done - T_START
    times["run"] = t_done - T_IMPORTED
    times["train_steps_total"] = sum(h["steps_s"] for h in history)
    times["validation_heads_total"] = sum(h["validation_s"] for h in history)

    steps = step_records
    step_stats = None
    if steps:
        step_stats = {"count": len(steps), "median_s": statistics.median(steps),
                      "mean_s": statistics.fmean(steps), "min_s": min(steps), "max_s": max(steps),
                      "images_per_s": args.batch * len(steps) / sum(steps),
                      "phases_mean_s": {k: sum(h["phases_s"][k] for h in history) / len(steps)
                                        for k in history[0]["phases_s"]}}
    machine |= {
        "cpu_count": os.cpu_count(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "isa_flags": sorted(f for f in flags if f.startswith(("avx", "amx", "fma")) or "vnni" in f),
        "avx512_vnni": avx512_vnni, "any_vnni_or_amx": any_vnni,
    }
    try:
        machine["loadavg_at_end"] = os.getloadavg()
    except OSError:
        pass
    summary = {
        "final": True,
        "script": "recipe2.py",
        "recipe": 2,
        "settings": {k: v for k, v in vars(args).items() if k != "out"}
        | {"threads": threads, "decode_workers": workers, "reduce_range_effective":
           reduce_range if args.frozen == "int8" else None,
           "augmentation": AUGMENT, "head": f"dense256-relu-dense{units} (no dropout)",
           "optimizer": "torch.optim.RMSprop (eps outside sqrt, as burn)",
           "test_base": "f32"},
        "torch": torch.__version__,
        "threads": threads,
        "classes": classes,
        "samples": {"train": n_train, "validation": len(x_val), "test": len(x_test)},
        "final_val_loss": history[-1]["val_loss"] if history else None,
        "final_val_acc": history[-1]["val_acc"] if history else None,
        "best_epoch": best[1] if best else None,
        "registered_epoch": registered,
        "test_loss": test_loss,
        "test_acc": test_acc,
        "test_confusion": cm.tolist(),
        "test_per_class": per_class(cm, classes),
        "times_s": times,
        "step": step_stats,
        "quantisation": quantisation,
        "peak_rss_mb": vggref.peak_rss_mb(),
        "machine": machine,
    }
    print(json.dumps(summary), flush=True)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(summary | {"history": history}, f, indent=2)
            f.write("\n")
        log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
