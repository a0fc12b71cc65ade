#!/usr/bin/env python3
"""Check a vggserve ONNX export and print its probabilities for the given pixels.

Usage: onnx_probabilities.py MODEL.onnx PIXELS --count N --size S

Owns the ONNX side of the export tests: the Rust test exports a model, writes the
service's own decoded pixels, and compares what this prints with the service's /predict
scores. Checks made here, each a failure (exit 1, reason on stderr):

* `onnx.checker.check_model(full_check=True)`; default-domain opset >= 13;
* one input `input` float32 [batch, 3, S, S] with a symbolic batch dim, one output
  `probabilities` float32 [batch, classes];
* metadata_props carry the vggserve.model metadata (see common.check_metadata);
* onnxruntime (CPU) on the whole batch agrees with each image alone (batch 1) to 1e-5.

Prints JSON: {"probabilities": [[...], ...], "metadata": {...}, "opset": n}.
"""

import json

import numpy as np
import onnx
import onnxruntime as ort

from common import arguments, check_metadata, fail, preprocess, read_pixels


def dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def main():
    args = arguments(__doc__.splitlines()[0])
    try:  # by path, so that models with external data or over 2 GB are checked too
        onnx.checker.check_model(args.model, full_check=True)
    except Exception as error:  # checker and shape-inference errors alike
        fail(f"onnx.checker: {error}")
    model = onnx.load(args.model, load_external_data=False)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < 13:
        fail(f"default-domain opset {opset} < 13")
    meta = {p.key: p.value for p in model.metadata_props}
    classes, _ = check_metadata(meta, args.size)

    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if [i.name for i in inputs] != ["input"] or [o.name for o in graph.output] != ["probabilities"]:
        fail(f"inputs {[i.name for i in inputs]}, outputs {[o.name for o in graph.output]}")
    float32 = onnx.TensorProto.FLOAT
    shape_in, shape_out = dims(inputs[0]), dims(graph.output[0])
    if inputs[0].type.tensor_type.elem_type != float32 or len(shape_in) != 4 \
            or not isinstance(shape_in[0], str) or shape_in[1:] != [3, args.size, args.size]:
        fail(f"input is {shape_in}, expected float32 [batch, 3, {args.size}, {args.size}]")
    if graph.output[0].type.tensor_type.elem_type != float32 or len(shape_out) != 2 \
            or shape_out[1] != len(classes):
        fail(f"output is {shape_out}, expected float32 [batch, {len(classes)}]")

    x = preprocess(read_pixels(args.pixels, args.count, args.size), meta["preprocessing"])
    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    batch = session.run(["probabilities"], {"input": x})[0]
    if batch.dtype != np.float32 or batch.shape != (args.count, len(classes)):
        fail(f"probabilities came back {batch.dtype} {batch.shape}")
    alone = np.concatenate([session.run(["probabilities"], {"input": x[i:i + 1]})[0]
                            for i in range(args.count)])
    diff = float(np.abs(batch - alone).max())
    if not diff <= 1e-5:
        fail(f"batch of {args.count} and batch 1 differ by {diff:.3g} > 1e-5")
    print(json.dumps({"probabilities": batch.tolist(), "metadata": meta, "opset": opset}))


if __name__ == "__main__":
    main()
