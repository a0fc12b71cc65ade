"""Shared helpers for the export checkers (onnx_probabilities.py, torch_gradcam.py).

Owns the three things both checkers must do identically to the service: reading the raw
pixels file the Rust test writes (N x S x S x 3 uint8, HWC, RGB, no header), the
preprocessing named by an export's `preprocessing` metadata (float32 throughout, the table
in docs/EXPORT.md), and the exit-on-failure convention (message on stderr, exit status 1).
"""

import argparse
import json
import os
import sys

import numpy as np

CAFFE_BGR_MEAN = np.array([103.939, 116.779, 123.68], dtype=np.float32)
TORCH_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
TORCH_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def fail(message):
    """Stop the checker: the message on stderr, exit status 1."""
    sys.exit(f"{os.path.basename(sys.argv[0])}: {message}")


def arguments(description, extra=None):
    """MODEL PIXELS --count N --size S, plus whatever `extra(parser)` adds."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("model")
    parser.add_argument("pixels")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--size", type=int, required=True)
    if extra:
        extra(parser)
    return parser.parse_args()


def read_pixels(path, count, size):
    """The pixels file as uint8 [count, size, size, 3]; its length must match exactly."""
    raw = np.fromfile(path, dtype=np.uint8)
    if count < 1 or size < 32 or raw.size != count * size * size * 3:
        fail(f"{path}: {raw.size} bytes, expected {count} x {size} x {size} x 3")
    return raw.reshape(count, size, size, 3)


def preprocess(pixels, mode):
    """uint8 [N, S, S, 3] RGB -> float32 [N, 3, S, S], as named by `preprocessing`."""
    x = pixels.astype(np.float32)
    if mode == "rgb01":
        x = x / np.float32(255)
    elif mode == "torch":
        x = (x / np.float32(255) - TORCH_MEAN) / TORCH_STD
    elif mode == "caffe":
        x = x[..., ::-1] - CAFFE_BGR_MEAN
    else:
        fail(f"unknown preprocessing {mode!r}")
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)


def check_metadata(meta, size):
    """The vggserve.model metadata checks both checkers make; returns (classes, head)."""
    for key in ("format", "format_version", "classes", "output", "image_size", "preprocessing", "head"):
        if key not in meta:
            fail(f"metadata lacks {key!r}")
    if meta["format"] != "vggserve.model" or meta["format_version"] != "1":
        fail(f"not a vggserve.model version 1 export: {meta['format']!r} {meta['format_version']!r}")
    if meta["image_size"] != str(size):
        fail(f"image_size {meta['image_size']} but --size {size}")
    classes, head = json.loads(meta["classes"]), json.loads(meta["head"])
    units = 1 if meta["output"] == "sigmoid" else len(classes)
    if meta["output"] not in ("sigmoid", "softmax") or len(classes) < 2 or (
        meta["output"] == "sigmoid" and len(classes) != 2) or (
        meta["output"] == "softmax" and len(classes) < 3):
        fail(f"output {meta['output']!r} does not fit {len(classes)} classes")
    if head.get("outputs") != units or head.get("input") != 512 * (size // 32) ** 2:
        fail(f"head {head} does not fit {len(classes)} classes and image_size {size}")
    return classes, head
