//! Every invalid request gets the right 4xx with a JSON body naming the problem, and the
//! service stays healthy.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with};

async fn expect(response: reqwest::Response, status: u16, field: Option<&str>) -> Value {
    let got = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(got, status, "{text}");
    let body: Value = serde_json::from_str(&text).expect("error bodies are JSON");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    if let Some(field) = field {
        assert_eq!(body["field"], field, "{body}");
    }
    body
}

#[tokio::test]
async fn invalid_jobs_are_refused_with_the_field_named() {
    let app = spawn_app().await;
    let unknown = uuid::Uuid::new_v4();
    for (body, status, field) in [
        (
            json!({"kind": "dance", "dataset": "tiny"}),
            400,
            Some("kind"),
        ),
        (json!({"dataset": "tiny"}), 400, Some("kind")),
        (
            json!({"kind": "extract_features", "dataset": "tiny", "colour": 1}),
            400,
            Some("colour"),
        ),
        (
            json!({"kind": "train", "dataset": "tiny", "augment": true, "epochs": 0}),
            422,
            Some("epochs"),
        ),
        (
            json!({"kind": "train", "dataset": "tiny", "augment": true, "epochs": 100000}),
            422,
            Some("epochs"),
        ),
        (
            json!({"kind": "train", "dataset": "tiny", "augment": true, "learning_rate": -0.1}),
            422,
            Some("learning_rate"),
        ),
        (
            json!({"kind": "train", "dataset": "tiny", "augment": true, "batch_size": -3}),
            400,
            // A value of the wrong type: serde names the value and the type it expected,
            // not the field, and the body says no more than it knows.
            None,
        ),
        (
            json!({"kind": "train", "dataset": "tiny"}),
            422,
            Some("features"),
        ),
        (
            json!({"kind": "train", "dataset": "tiny", "features": unknown}),
            404,
            Some("features"),
        ),
        (
            json!({"kind": "fine_tune", "dataset": "tiny", "from_model": unknown}),
            404,
            Some("from_model"),
        ),
        (
            json!({"kind": "fine_tune", "dataset": "tiny", "from_model": unknown, "unfreeze_from": "block9"}),
            422,
            Some("unfreeze_from"),
        ),
        (
            json!({"kind": "evaluate", "dataset": "tiny", "model": unknown, "split": "holdout"}),
            422,
            Some("split"),
        ),
        (
            json!({"kind": "extract_features", "dataset": "nope"}),
            404,
            Some("dataset"),
        ),
        (
            json!({"kind": "extract_features", "dataset": "../tiny"}),
            400,
            Some("dataset"),
        ),
        (
            json!({"kind": "extract_features", "dataset": "a/b"}),
            400,
            Some("dataset"),
        ),
        (
            json!({"kind": "extract_features", "dataset": "a\\b"}),
            400,
            Some("dataset"),
        ),
        (
            json!({"kind": "extract_features", "dataset": "a\u{0}b"}),
            400,
            Some("dataset"),
        ),
        (
            json!({"kind": "extract_features", "dataset": "tiny", "image_size": 4}),
            422,
            Some("image_size"),
        ),
    ] {
        eprintln!("case: {body}"); // shown when an assertion below fails
        let response = app.post_job(body).await;
        let answer = expect(response, status, None).await;
        assert_eq!(answer["field"], json!(field), "{answer}");
    }
    // Not JSON, malformed JSON.
    let response = app
        .client
        .post(format!("{}/v1/jobs", app.url))
        .body("kind=train")
        .send()
        .await
        .unwrap();
    expect(response, 415, None).await;
    let response = app
        .client
        .post(format!("{}/v1/jobs", app.url))
        .header("content-type", "application/json")
        .body("{\"kind\": ")
        .send()
        .await
        .unwrap();
    expect(response, 400, None).await;
    // Nothing was queued by any of that, and the service is healthy.
    let (_, jobs) = app.get_json("/v1/jobs").await;
    assert_eq!(jobs, json!([]));
    assert_eq!(app.get_json("/healthz").await.0, 200);
}

#[tokio::test]
async fn unknown_and_malformed_ids_and_bad_uploads() {
    let app = spawn_app().await;
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/v1/jobs/{unknown}"),
        format!("/v1/models/{unknown}"),
        format!("/v1/jobs/{unknown}/events"),
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .unwrap();
        expect(response, 404, None).await;
    }
    for path in [
        "/v1/jobs/not-a-uuid",
        "/v1/models/42",
        "/v1/jobs/xyz/events",
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .unwrap();
        expect(response, 400, Some("id")).await;
    }
    let response = app
        .client
        .get(format!("{}/v1/jobs?status=sleeping", app.url))
        .send()
        .await
        .unwrap();
    expect(response, 400, Some("status")).await;
    let response = app
        .client
        .get(format!("{}/v1/nothing-here", app.url))
        .send()
        .await
        .unwrap();
    expect(response, 404, None).await;

    // Predict before any model exists, then with a model but bad images.
    let jpeg = std::fs::read(app.photo("test", "cats", 0)).unwrap();
    let raw = |bytes: Vec<u8>, content_type: &str| {
        app.client
            .post(format!("{}/v1/predict", app.url))
            .header("content-type", content_type)
            .body(bytes)
            .send()
    };
    expect(
        raw(jpeg.clone(), "image/jpeg").await.unwrap(),
        404,
        Some("model"),
    )
    .await;
    let extract = app
        .queue(json!({"kind": "extract_features", "dataset": "tiny"}))
        .await;
    app.wait_for(&extract, std::time::Duration::from_secs(300))
        .await;
    let train = app
        .queue(json!({"kind": "train", "dataset": "tiny", "features": extract, "epochs": 1}))
        .await;
    app.wait_for(&train, std::time::Duration::from_secs(300))
        .await;

    expect(
        raw(b"definitely not an image".to_vec(), "image/jpeg")
            .await
            .unwrap(),
        415,
        Some("image"),
    )
    .await;
    expect(
        raw(Vec::new(), "image/png").await.unwrap(),
        415,
        Some("image"),
    )
    .await;
    expect(
        raw(jpeg[..jpeg.len() / 3].to_vec(), "image/jpeg")
            .await
            .unwrap(),
        422,
        Some("image"),
    )
    .await;
    expect(raw(jpeg.clone(), "text/plain").await.unwrap(), 415, None).await;
    let response = app
        .predict_jpeg("/v1/predict?model=nope", jpeg.clone())
        .await;
    expect(response, 400, Some("model")).await;
    let response = app
        .predict_jpeg(&format!("/v1/predict?model={unknown}"), jpeg.clone())
        .await;
    expect(response, 404, Some("model")).await;
    let form = reqwest::multipart::Form::new().text("note", "no image here");
    let response = app.predict_multipart("", form).await;
    expect(response, 400, Some("image")).await;
    // An image that declares 20000×20000 pixels is refused from its header alone.
    let header = png_header(20_000, 20_000);
    expect(raw(header, "image/png").await.unwrap(), 422, Some("image")).await;
    assert_eq!(app.get_json("/healthz").await.0, 200);
    // The good photo still works after all that.
    assert_eq!(raw(jpeg, "image/jpeg").await.unwrap().status(), 200);
}

/// A PNG signature and IHDR chunk declaring `width`×`height` RGB, with no pixel data.
pub(crate) fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut chunk = b"IHDR".to_vec();
    chunk.extend(&ihdr);
    let crc = crc32fast::hash(&chunk);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend((ihdr.len() as u32).to_be_bytes());
    out.extend(chunk);
    out.extend(crc.to_be_bytes());
    out
}

#[tokio::test]
async fn limits_answer_429_and_413() {
    let app = spawn_app_with(&["--max-queued-jobs", "1", "--max-body-mb", "1"]).await;
    // The worker claims the first job quickly; keep it busy so the next ones queue.
    let long = json!({"kind": "train", "dataset": "tiny", "augment": true, "epochs": 100, "steps_per_epoch": 3, "validation_steps": 1, "batch_size": 2});
    let first = app.queue(long).await;
    app.wait_until(&first, std::time::Duration::from_secs(120), |j| {
        j["status"] == "running"
    })
    .await;
    app.queue(json!({"kind": "extract_features", "dataset": "tiny"}))
        .await;
    let response = app
        .post_job(json!({"kind": "extract_features", "dataset": "tiny"}))
        .await;
    expect(response, 429, None).await;
    // 413 from the declared length alone: the server must answer without reading 2 MiB
    // (it closes the connection, so speak raw HTTP and send only the head).
    let answer = raw_post_head(&app.url, "/v1/predict", "image/jpeg", 2 * 1024 * 1024, b"").await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let response = app
        .client
        .post(format!("{}/v1/jobs/{first}/cancel", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

/// Send only the head of a POST declaring `length` body bytes (and `body_start` of them);
/// return what the server answers within 10 s, from its status line on.
pub(crate) async fn raw_post_head(
    url: &str,
    path: &str,
    content_type: &str,
    length: usize,
    body_start: &[u8],
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body_start).await.unwrap();
    // Read until the server closes or the JSON body is complete.
    let mut response = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !String::from_utf8_lossy(&response).trim_end().ends_with('}') {
        let mut buf = [0u8; 1024];
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => response.extend(&buf[..n]),
            Err(_) => panic!("the server must answer before the body arrives"),
        }
    }
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn a_stalled_upload_times_out_with_408_and_the_service_stays_up() {
    let app = spawn_app_with(&["--request-timeout-secs", "1"]).await;
    let started = std::time::Instant::now();
    // Declare 100 kB, send the first boundary, then stall.
    let answer = raw_post_head(
        &app.url,
        "/v1/predict",
        "multipart/form-data; boundary=stall",
        100_000,
        b"--stall\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/json"), "{answer}");
    assert!(answer.contains("not completed within 1 s"), "{answer}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    assert_eq!(app.get_json("/healthz").await.0, 200);
}

#[tokio::test]
async fn a_hundred_image_parts_are_refused_past_the_configured_maximum() {
    // Default maximum (32): 413 naming it. Raised to 100: the same upload passes the limit
    // and reaches the model lookup (no model is trained in these apps: 404, not 413).
    let cases: [(&[&str], u16, &str, &str); 2] = [
        (&[], 413, "image", "at most 32"),
        (
            &["--max-images-per-request", "100"],
            404,
            "model",
            "no trained model",
        ),
    ];
    for (args, status, field, message) in cases {
        let app = spawn_app_with(args).await;
        let photo = std::fs::read(app.photo("train", "cats", 0)).unwrap();
        let form = (0..100).fold(reqwest::multipart::Form::new(), |form, i| {
            let part = reqwest::multipart::Part::bytes(photo.clone()).file_name(format!("{i}.jpg"));
            form.part("image", part)
        });
        let response = app.predict_multipart("", form).await;
        let body = expect(response, status, Some(field)).await;
        assert!(body["error"].as_str().unwrap().contains(message), "{body}");
        // On a new connection: the server answers 413 before reading the whole upload and
        // closes that one, which the client's pool may not have noticed yet.
        let health = reqwest::get(format!("{}/healthz", app.url)).await.unwrap();
        assert_eq!(health.status(), 200);
    }
}

#[tokio::test]
async fn corrupt_files_in_a_class_folder_are_skipped_and_listed() {
    let app = spawn_app().await;
    let cats = app.root.path().join("datasets/tiny/train/cats");
    std::fs::write(
        cats.join("broken.jpg"),
        b"\xFF\xD8\xFF\xE0 not really a jpeg",
    )
    .unwrap();
    std::fs::write(cats.join("empty.png"), b"").unwrap();
    let job = app
        .queue(json!({"kind": "extract_features", "dataset": "tiny"}))
        .await;
    let job = app
        .wait_for(&job, std::time::Duration::from_secs(300))
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"]["splits"]["train"]["skipped"], 2);
    assert_eq!(job["result"]["splits"]["train"]["images"], 20);
    let listed = job["result"]["skipped_files"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed
        .iter()
        .any(|f| f.as_str().unwrap().contains("broken.jpg")));
    assert!(listed
        .iter()
        .any(|f| f.as_str().unwrap().contains("empty.png")));

    // A split whose every image is unreadable fails with the reason, before training.
    let datasets = app.root.path().join("datasets");
    for (split, class) in [
        ("train", "cats"),
        ("train", "dogs"),
        ("validation", "cats"),
        ("validation", "dogs"),
    ] {
        let dir = datasets.join("junk").join(split).join(class);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.jpg"), b"junk").unwrap();
    }
    let job = app
        .queue(json!({"kind": "extract_features", "dataset": "junk"}))
        .await;
    let job = app.wait_for(&job, std::time::Duration::from_secs(60)).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("no readable images"),
        "{job}"
    );
    assert_eq!(app.get_json("/healthz").await.0, 200);
}
