#!/usr/bin/env python3
"""Write a stand-in for Keras's `vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`.

Usage: make_keras_h5.py OUT.h5 OUT_expected.safetensors [--style keras2|legacy] [--seed N]

OUT.h5 has the exact HDF5 layout that Keras 2's `Model.save_weights(..., save_format="h5")`
writes for the notop VGG16 (`save_weights_to_hdf5_group`), with the real VGG16 shapes
(14.7M float32 parameters, ~59 MB) and small deterministic random values:

* root attributes `layer_names` (input_1, block1_conv1, ..., block5_pool), `backend`,
  `keras_version`;
* one group per layer, created in sorted name order as Keras does, each with a
  `weight_names` attribute (an empty float64 array for the input and pooling layers, as
  `np.asarray([])` gives);
* contiguous float32 datasets, kernels HWIO [3, 3, in, out], biases [out].

`--style keras2` (default) names weights `block1_conv1/kernel:0`, so the datasets sit one
group deeper (`/block1_conv1/block1_conv1/kernel:0`), and stores the names as h5py 3 does
for `bytes` (variable-length ASCII strings). `--style legacy` mimics the 2016 file Keras
still downloads: names like `block1_conv1_W_1:0` directly under the layer group,
fixed-length (`S`) string attributes, and no `backend`/`keras_version` attributes.

OUT_expected.safetensors holds what a reader must return: the same values in torchvision's
names (`features.0.weight`, ...) with kernels transposed to OIHW [out, in, 3, 3] and the
input channels left in Keras's (BGR) order. It is written with numpy alone, so the script
needs only h5py and numpy.
"""

import argparse
import json
import struct
import sys

import h5py
import numpy as np

# (Keras layer name, torchvision index, in channels, out channels)
CONVS = [
    ("block1_conv1", 0, 3, 64),
    ("block1_conv2", 2, 64, 64),
    ("block2_conv1", 5, 64, 128),
    ("block2_conv2", 7, 128, 128),
    ("block3_conv1", 10, 128, 256),
    ("block3_conv2", 12, 256, 256),
    ("block3_conv3", 14, 256, 256),
    ("block4_conv1", 17, 256, 512),
    ("block4_conv2", 19, 512, 512),
    ("block4_conv3", 21, 512, 512),
    ("block5_conv1", 24, 512, 512),
    ("block5_conv2", 26, 512, 512),
    ("block5_conv3", 28, 512, 512),
]


def layer_names():
    names = ["input_1"]
    for block in range(1, 6):
        names += [c[0] for c in CONVS if c[0].startswith(f"block{block}_")]
        names.append(f"block{block}_pool")
    return names


def weight_names(layer, style):
    if style == "keras2":
        return [f"{layer}/kernel:0", f"{layer}/bias:0"]
    return [f"{layer}_W_1:0", f"{layer}_b_1:0"]


def make_weights(seed):
    """Deterministic small weights: {layer: (kernel HWIO, bias)}."""
    rng = np.random.default_rng(seed)
    out = {}
    for layer, _, cin, cout in CONVS:
        kernel = (rng.standard_normal((3, 3, cin, cout), dtype=np.float32) * 0.05).astype("<f4")
        bias = (rng.standard_normal(cout, dtype=np.float32) * 0.01).astype("<f4")
        out[layer] = (kernel, bias)
    return out


def name_attr(names, style):
    """The value Keras hands to `attrs[...] =` for a list of names, per style."""
    encoded = [n.encode("utf8") for n in names]
    if not encoded:
        # Keras: np.asarray([]) -> an empty float64 array.
        return np.asarray(encoded)
    if style == "legacy":
        # h5py 2 stored a list of bytes as a fixed-length string array.
        return np.asarray(encoded, dtype=f"S{max(len(n) for n in encoded)}")
    # h5py 3 stores a list of bytes as variable-length ASCII strings.
    return encoded


def write_h5(path, weights, style):
    with h5py.File(path, "w") as f:  # libver 'earliest': superblock v0, symbol-table groups
        names = layer_names()
        f.attrs["layer_names"] = name_attr(names, style)
        if style == "keras2":
            f.attrs["backend"] = b"tensorflow"
            f.attrs["keras_version"] = b"2.13.1"
        for layer in sorted(names):
            g = f.create_group(layer)
            if layer in weights:
                kernel, bias = weights[layer]
                wnames = weight_names(layer, style)
                g.attrs["weight_names"] = name_attr(wnames, style)
                for wname, value in zip(wnames, (kernel, bias)):
                    dset = g.create_dataset(wname, value.shape, dtype=value.dtype)
                    dset[:] = value
            else:
                g.attrs["weight_names"] = name_attr([], style)


def write_safetensors(path, tensors, metadata):
    """Minimal safetensors writer (F32 only): 8-byte LE header length, JSON header, data."""
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name], dtype="<f4")
        data = arr.tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        offset += len(data)
        blobs.append(data)
    raw = json.dumps(header, separators=(",", ":")).encode("utf8")
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(raw)))
        out.write(raw)
        for data in blobs:
            out.write(data)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_h5")
    parser.add_argument("out_expected")
    parser.add_argument("--style", choices=["keras2", "legacy"], default="keras2")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args(argv)

    weights = make_weights(args.seed)
    write_h5(args.out_h5, weights, args.style)

    expected = {}
    for layer, index, _, _ in CONVS:
        kernel, bias = weights[layer]
        # HWIO -> OIHW: out[o, i, h, w] = in[h, w, i, o]
        expected[f"features.{index}.weight"] = kernel.transpose(3, 2, 0, 1)
        expected[f"features.{index}.bias"] = bias
    write_safetensors(
        args.out_expected,
        expected,
        {"source": "make_keras_h5.py", "style": args.style, "seed": str(args.seed),
         "preprocessing": "caffe", "layout": "torchvision"},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
