//! `POST /v1/models`: a safetensors export registers again and predicts bit for bit what
//! the original does (keeping only its head when the base is this server's, its own base
//! otherwise); files that do not fit (truncated, a wrong shape, classes the head does not
//! have, plain weights, nothing) are refused naming the problem, with nothing registered
//! and no files left behind; and the export route refuses unknown formats and models.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Value};
use vggserve::tensor_io::{parse_f32_safetensors, write_f32_safetensors, RawTensor};

use crate::export::{export, folder, photos, predict, trained};
use crate::helpers::{spawn_app, Api};

/// POST a file to `/v1/models`: status and JSON answer.
async fn import(api: &Api, bytes: Vec<u8>) -> (u16, Value) {
    let response = api
        .client
        .post(format!("{}/v1/models", api.url))
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

/// `path`'s tensors and metadata rewritten by `edit`, as file bytes.
fn edited(
    path: &Path,
    edit: impl FnOnce(&mut HashMap<String, RawTensor>, &mut HashMap<String, String>),
) -> Vec<u8> {
    let (mut tensors, mut metadata) =
        parse_f32_safetensors(&std::fs::read(path).unwrap(), |_| true).unwrap();
    edit(&mut tensors, &mut metadata);
    let out = path.with_extension("edited");
    write_f32_safetensors(
        &out,
        tensors
            .iter()
            .map(|(n, t)| (n.clone(), t.shape.clone(), t.data.as_slice())),
        metadata,
    )
    .unwrap();
    std::fs::read(out).unwrap()
}

#[tokio::test]
async fn an_export_imports_back_bit_for_bit_and_bad_files_register_nothing() {
    let app = spawn_app().await;
    let model = trained(&app, "tiny").await;
    let out = tempfile::tempdir().unwrap();
    let (file, _) = export(&app, &model, "safetensors", out.path()).await;
    let bytes = std::fs::read(&file).unwrap();

    // Bad requests first: each is refused, naming the problem, and registers nothing.
    let (status, body) = app
        .get_json(&format!("/v1/models/{model}/export?format=pt"))
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("format")),
        "{body}"
    );
    let missing = uuid::Uuid::new_v4();
    let (status, _) = app
        .get_json(&format!("/v1/models/{missing}/export?format=onnx"))
        .await;
    assert_eq!(status, 404);
    let truncated = bytes[..bytes.len() / 2].to_vec();
    let wrong_shape = edited(&file, |tensors, _| {
        let t = tensors.get_mut("head.4.weight").unwrap();
        t.shape = vec![2, t.data.len() / 2];
    });
    let wrong_classes = edited(&file, |_, metadata| {
        metadata.insert("classes".into(), json!(["a", "b", "c"]).to_string());
    });
    // A head no predict could build: dropout 1 would drop everything.
    let full_dropout = edited(&file, |_, metadata| {
        let mut head: Value = serde_json::from_str(&metadata["head"]).unwrap();
        head["dropout"] = json!(1.0);
        metadata.insert("head".into(), head.to_string());
    });
    let not_ours = std::fs::read(crate::shared::standin_weights()).unwrap();
    for (name, bad, expected) in [
        ("truncated", truncated, "not fully covered"),
        ("wrong shape", wrong_shape, "head.4.weight"),
        ("wrong classes", wrong_classes, "head"),
        ("full dropout", full_dropout, "dropout"),
        ("weights only", not_ours, "format"),
        ("empty", Vec::new(), "empty"),
    ] {
        let (status, body) = import(&app, bad).await;
        assert!(status == 422 || status == 400, "{name}: {status} {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(expected), "{name}: {error}");
    }
    let (_, models) = app.get_json("/v1/models").await;
    assert_eq!(
        models.as_array().unwrap().len(),
        1,
        "nothing was registered: {models}"
    );
    let folders = std::fs::read_dir(app.root.path().join("data/models"))
        .unwrap()
        .count();
    assert_eq!(folders, 1, "no files were left behind");

    // The export itself imports, keeps only its head (the base is this server's), and
    // predicts exactly what the original does.
    let (status, imported) = import(&app, bytes.clone()).await;
    assert_eq!(status, 201, "{imported}");
    let copy = imported["id"].as_str().unwrap();
    assert_ne!(copy, model);
    assert_eq!(imported["params"]["imported"]["model"], model);
    assert_eq!(imported["config"]["includes_base"], false);
    let photos = photos(&app, "tiny", 4);
    let original = predict(&app, &format!("?model={model}"), &photos).await;
    let again = predict(&app, &format!("?model={copy}"), &photos).await;
    assert_eq!(original, again, "bit for bit");

    // A conv base of its own (here one bias nudged) is kept with the model, and goes out
    // again with its export.
    let nudged = edited(&file, |tensors, _| {
        tensors.get_mut("features.28.bias").unwrap().data[0] += 0.5;
    });
    let (status, own) = import(&app, nudged).await;
    assert_eq!(status, 201, "{own}");
    assert_eq!(own["config"]["includes_base"], true);
    let own_id = own["id"].as_str().unwrap();
    let back = folder(out.path().join("back"));
    let (file_back, _) = export(&app, own_id, "safetensors", &back).await;
    let (tensors, _) = parse_f32_safetensors(&std::fs::read(file_back).unwrap(), |_| true).unwrap();
    let (first, _) = parse_f32_safetensors(&bytes, |_| true).unwrap();
    assert_eq!(
        tensors["features.28.bias"].data[0],
        first["features.28.bias"].data[0] + 0.5
    );
    assert_eq!(tensors["head.4.weight"].data, first["head.4.weight"].data);
    assert_eq!(
        predict(&app, &format!("?model={own_id}"), &photos)
            .await
            .len(),
        4
    );
}
