//! A portable model as an ONNX graph (opset 17), written from Rust: the whole classifier,
//! conv base, head and the sigmoid or softmax, so that onnxruntime or any ONNX runtime
//! answers what `/predict` answers. Input `input` is float32 NCHW `[batch, 3, S, S]`,
//! already preprocessed (the metadata says how); output `probabilities` is
//! `[batch, classes]` (both columns for a two-class model, like `/predict`'s scores).
//! The metadata props are the portable file's metadata.

use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::tensor_shape_proto::{dimension, Dimension};
use onnx_protobuf::type_proto::{self, Value};
use onnx_protobuf::{
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

use super::layers::{LayerKind, LAYERS};
use super::portable::{Portable, HIDDEN, OUTPUT};

pub const OPSET: i64 = 17;
/// IR version 8 goes with opsets up to 17.
const IR_VERSION: i64 = 8;

/// The model's ONNX bytes.
pub fn to_onnx(model: &Portable) -> anyhow::Result<Vec<u8>> {
    let mut graph = GraphProto {
        name: format!("vggserve-{}", model.config.recipe),
        ..Default::default()
    };
    let size = i64::from(model.config.image_size);
    let classes = model.config.classes.len() as i64;
    graph.input.push(value_info(
        "input",
        [
            Dim::Batch,
            Dim::Fixed(3),
            Dim::Fixed(size),
            Dim::Fixed(size),
        ],
    ));
    graph.output.push(value_info(
        "probabilities",
        [Dim::Batch, Dim::Fixed(classes)],
    ));
    for (name, tensor) in &model.tensors {
        graph
            .initializer
            .push(initializer(name, &tensor.shape, &tensor.data));
    }
    let mut x = "input".to_owned();
    for layer in &LAYERS {
        x = match layer.kind {
            LayerKind::Conv { torch_index, .. } => {
                let w = format!("features.{torch_index}.weight");
                let b = format!("features.{torch_index}.bias");
                let pre = format!("{}_preact", layer.name);
                graph.node.push(node(
                    "Conv",
                    &[&x, &w, &b],
                    &pre,
                    vec![
                        ints("kernel_shape", &[3, 3]),
                        ints("pads", &[1, 1, 1, 1]),
                        ints("strides", &[1, 1]),
                    ],
                ));
                graph.node.push(node("Relu", &[&pre], layer.name, vec![]));
                layer.name.to_owned()
            }
            LayerKind::Pool => {
                graph.node.push(node(
                    "MaxPool",
                    &[&x],
                    layer.name,
                    vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
                ));
                layer.name.to_owned()
            }
        };
    }
    graph
        .node
        .push(node("Flatten", &[&x], "flatten", vec![int("axis", 1)]));
    let gemm = |input: &str, layer: &str, out: &str| {
        let (w, b) = (format!("{layer}.weight"), format!("{layer}.bias"));
        // PyTorch's layout: weight [out, in], so B is transposed.
        node("Gemm", &[input, &w, &b], out, vec![int("transB", 1)])
    };
    graph.node.push(gemm("flatten", HIDDEN, "hidden_preact"));
    graph
        .node
        .push(node("Relu", &["hidden_preact"], "hidden", vec![]));
    graph.node.push(gemm("hidden", OUTPUT, "logits"));
    if model.config.head.units() == 1 {
        // One sigmoid unit: p(classes[1]) = σ(z), p(classes[0]) = 1 − σ(z).
        graph.initializer.push(initializer("one", &[1], &[1.0]));
        graph
            .node
            .push(node("Sigmoid", &["logits"], "p_positive", vec![]));
        graph
            .node
            .push(node("Sub", &["one", "p_positive"], "p_negative", vec![]));
        graph.node.push(node(
            "Concat",
            &["p_negative", "p_positive"],
            "probabilities",
            vec![int("axis", 1)],
        ));
    } else {
        graph.node.push(node(
            "Softmax",
            &["logits"],
            "probabilities",
            vec![int("axis", 1)],
        ));
    }
    let proto = ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
            ..Default::default()
        }],
        producer_name: "vggserve".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph).into(),
        metadata_props: model
            .metadata
            .iter()
            .map(|(key, value)| StringStringEntryProto {
                key: key.clone(),
                value: value.clone(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    Ok(proto.write_to_bytes()?)
}

enum Dim {
    /// The symbolic batch dimension.
    Batch,
    Fixed(i64),
}

fn value_info<const N: usize>(name: &str, dims: [Dim; N]) -> ValueInfoProto {
    let dim = dims
        .into_iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Batch => dimension::Value::DimParam("batch".into()),
                Dim::Fixed(n) => dimension::Value::DimValue(n),
            }),
            ..Default::default()
        })
        .collect();
    let tensor = type_proto::Tensor {
        elem_type: DataType::FLOAT as i32,
        shape: Some(TensorShapeProto {
            dim,
            ..Default::default()
        })
        .into(),
        ..Default::default()
    };
    ValueInfoProto {
        name: name.into(),
        type_: Some(TypeProto {
            value: Some(Value::TensorType(tensor)),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    }
}

fn initializer(name: &str, shape: &[usize], data: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: shape.iter().map(|&d| d as i64).collect(),
        data_type: DataType::FLOAT as i32,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: output.into(),
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::INTS.into(),
        ints: values.to_vec(),
        ..Default::default()
    }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::INT.into(),
        i: value,
        ..Default::default()
    }
}
