//! Hardening: the bearer token (401s, open routes, `?access_token=` for SSE only,
//! `--open-predict`), the refusal to serve unauthenticated beyond loopback, /metrics and
//! the per-job SSE subscriber limit.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp};

const TOKEN: &str = "s3cret/token+with=odd&chars";

/// A training job that runs far longer than a test needs (the test ends it).
fn long_job() -> Value {
    json!({"kind": "train", "dataset": "tiny", "augment": true, "epochs": 200, "steps_per_epoch": 3,
           "validation_steps": 1, "batch_size": 2})
}

/// A request with `Authorization: <authorization>` when given.
async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    authorization: Option<&str>,
) -> reqwest::Response {
    let mut request = app.client.request(method, format!("{}{path}", app.url));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.unwrap()
}

async fn expect_401(response: reqwest::Response, challenge: &str) {
    assert_eq!(response.status(), 401);
    let header = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(header.starts_with("Bearer"), "{header}");
    assert!(header.contains(challenge), "{header}");
    let body: Value = response.json().await.expect("401 bodies are JSON");
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert!(body.get("field").is_some(), "{body}");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn api_routes_need_the_bearer_token() {
    let app = spawn_app_with(&["--api-token", TOKEN]).await;
    let good = format!("Bearer {TOKEN}");
    use reqwest::Method;

    // No token, a wrong one, another scheme: 401 with a Bearer challenge and a JSON body.
    for (method, path) in [
        (Method::GET, "/v1/datasets"),
        (Method::GET, "/v1/jobs"),
        (Method::POST, "/v1/jobs"),
        (Method::GET, "/v1/models"),
        (Method::GET, "/v1/cache"),
        (Method::DELETE, "/v1/cache"),
        (Method::POST, "/v1/predict"),
        (Method::POST, "/predict"),
    ] {
        expect_401(send(&app, method.clone(), path, None).await, "realm").await;
        expect_401(
            send(&app, method.clone(), path, Some("Bearer wrong")).await,
            "invalid_token",
        )
        .await;
        // A prefix of the token is not the token.
        let prefix = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);
        expect_401(
            send(&app, method.clone(), path, Some(&prefix)).await,
            "invalid_token",
        )
        .await;
        expect_401(
            send(&app, method, path, Some("Basic dXNlcjpwYXNz")).await,
            "realm",
        )
        .await;
    }
    // The query-string token is for the SSE route only.
    let path = format!("/v1/jobs?access_token={}", urlencode(TOKEN));
    expect_401(send(&app, Method::GET, &path, None).await, "realm").await;

    // With the token (the scheme is case-insensitive).
    let response = send(&app, Method::GET, "/v1/datasets", Some(&good)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body[0]["name"], "tiny");
    let lower = format!("bearer {TOKEN}");
    assert_eq!(
        send(&app, Method::GET, "/v1/models", Some(&lower))
            .await
            .status(),
        200
    );
    // Authenticated but no model yet: the request reached the handler.
    let response = app
        .client
        .post(format!("{}/v1/predict", app.url))
        .header("authorization", &good)
        .header("content-type", "image/jpeg")
        .body(std::fs::read(app.photo("test", "cats", 0)).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    // Open routes: probes, the API document, the dashboard's static files.
    for path in [
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/",
        "/index.html",
        "/js/main.js",
        "/style.css",
    ] {
        let response = send(&app, Method::GET, path, None).await;
        assert_eq!(response.status(), 200, "{path}");
    }
    // An unknown path is still a 404, not a 401.
    assert_eq!(send(&app, Method::GET, "/nope", None).await.status(), 404);
}

#[tokio::test]
async fn events_take_the_token_in_the_query_string() {
    let app = spawn_app_with(&["--api-token", TOKEN]).await;
    let response = app
        .client
        .post(format!("{}/v1/jobs", app.url))
        .bearer_auth(TOKEN)
        .json(&long_job())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let events = format!("/v1/jobs/{id}/events");

    expect_401(
        send(&app, reqwest::Method::GET, &events, None).await,
        "realm",
    )
    .await;
    let wrong = format!("{events}?access_token=wrong");
    expect_401(
        send(&app, reqwest::Method::GET, &wrong, None).await,
        "invalid_token",
    )
    .await;
    for path in [
        format!("{events}?access_token={}", urlencode(TOKEN)),
        format!("{events}?x=1&access_token={}", urlencode(TOKEN)),
    ] {
        let response = send(&app, reqwest::Method::GET, &path, None).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
    }
    // The header works there too.
    let response = send(
        &app,
        reqwest::Method::GET,
        &events,
        Some(&format!("Bearer {TOKEN}")),
    )
    .await;
    assert_eq!(response.status(), 200);
    drop(response);

    // The token sent in the query string never reaches the log.
    let response = app
        .client
        .post(format!("{}/v1/jobs/{id}/cancel", app.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    // The requests above reached the log, with the query parameter but not its value, as
    // sent (percent-encoded) or decoded.
    let log = std::fs::read_to_string(app.root.path().join("server.log")).expect("server log");
    assert!(log.contains("access_token=REDACTED"), "{log}");
    assert!(
        !log.contains(&urlencode(TOKEN)),
        "the encoded token was logged"
    );
    assert!(!log.contains(TOKEN), "the token was logged");
}

#[tokio::test]
async fn open_predict_leaves_only_prediction_open() {
    let app = spawn_app_with(&["--api-token", TOKEN, "--open-predict"]).await;
    for path in ["/predict", "/v1/predict"] {
        let response = app
            .predict_jpeg(path, std::fs::read(app.photo("test", "dogs", 0)).unwrap())
            .await;
        // Past authentication: the handler answers that no model is trained yet.
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["field"], "model", "{body}");
    }
    expect_401(
        send(&app, reqwest::Method::GET, "/v1/models", None).await,
        "realm",
    )
    .await;
}

#[test]
fn refuses_to_serve_a_public_address_without_a_token() {
    let root = tempfile::tempdir().unwrap();
    let output = crate::helpers::serve_command(root.path(), "0.0.0.0:0", &[] as &[&str])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
        .wait_with_output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("--api-token") && errors[0].contains("--insecure-no-auth"),
        "{stderr}"
    );
    // Nothing was created: it stopped before opening the database.
    assert!(!root.path().join("data").exists());

    // Allowed when asked for explicitly.
    let mut child =
        crate::helpers::serve_command(root.path(), "0.0.0.0:0", &["--insecure-no-auth"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
    let stdout = child.stdout.take().unwrap();
    let listening = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("listening on http://0.0.0.0:"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(listening, "did not start with --insecure-no-auth");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let app = spawn_app_with(&["--api-token", TOKEN]).await;
    let id = uuid::Uuid::new_v4();
    for _ in 0..3 {
        let response = app
            .client
            .get(format!("{}/v1/jobs/{id}", app.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
    }
    assert_eq!(
        send(&app, reqwest::Method::GET, "/v1/jobs", None)
            .await
            .status(),
        401
    );
    assert_eq!(
        send(&app, reqwest::Method::GET, "/healthz", None)
            .await
            .status(),
        200
    );

    // Open even with a token: scrapers carry no credentials.
    let response = send(&app, reqwest::Method::GET, "/metrics", None).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    let series = |name: &str, labels: &[&str]| {
        text.lines()
            .any(|line| line.starts_with(name) && labels.iter().all(|label| line.contains(label)))
    };
    assert!(
        series(
            "http_requests_total",
            &[
                r#"route="/v1/jobs/{id}""#,
                r#"method="GET""#,
                r#"status="404""#,
                "} 3"
            ]
        ),
        "{text}"
    );
    assert!(
        series(
            "http_requests_total",
            &[r#"route="/v1/jobs""#, r#"status="401""#]
        ),
        "{text}"
    );
    assert!(
        series(
            "http_requests_total",
            &[r#"route="/healthz""#, r#"status="200""#]
        ),
        "{text}"
    );
    assert!(
        series(
            "http_request_duration_seconds_bucket",
            &[r#"route="/healthz""#, r#"le="+Inf""#]
        ),
        "{text}"
    );
    // Labels carry templates, never the ids in the URI.
    assert!(!text.contains(&id.to_string()), "{text}");
    assert!(text.lines().any(|line| line == "jobs_queued 0"), "{text}");

    // A queued job shows up at the next scrape.
    for _ in 0..2 {
        let response = app
            .client
            .post(format!("{}/v1/jobs", app.url))
            .bearer_auth(TOKEN)
            .json(&long_job())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    let text = send(&app, reqwest::Method::GET, "/metrics", None)
        .await
        .text()
        .await
        .unwrap();
    // One is running (or about to), at least one is waiting.
    let queued: f64 = text
        .lines()
        .find_map(|line| line.strip_prefix("jobs_queued "))
        .expect("jobs_queued in /metrics")
        .parse()
        .unwrap();
    assert!((1.0..=2.0).contains(&queued), "{text}");
}

#[tokio::test]
async fn sse_subscribers_per_job_are_limited() {
    let app = spawn_app_with(&["--max-sse-subscribers-per-job", "1"]).await;
    // One running for the whole test, one queued behind it: both streams stay open.
    let running = app.queue(long_job()).await;
    let queued = app
        .queue(json!({"kind": "extract_features", "dataset": "tiny"}))
        .await;
    let url = |id: &str| format!("{}/v1/jobs/{id}/events", app.url);

    let first = app.client.get(url(&running)).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let refused = app.client.get(url(&running)).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.expect("429 bodies are JSON");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("1 live")),
        "{body}"
    );
    // The limit is per job.
    let other = app.client.get(url(&queued)).send().await.unwrap();
    assert_eq!(other.status(), 200);

    // A client that disconnects gives its slot back (once the server notices).
    drop(first);
    let started = std::time::Instant::now();
    loop {
        let again = app.client.get(url(&running)).send().await.unwrap();
        if again.status() == 200 {
            break;
        }
        assert_eq!(again.status(), 429);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the slot was never given back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(other);
    for id in [&queued, &running] {
        app.client
            .post(format!("{}/v1/jobs/{id}/cancel", app.url))
            .send()
            .await
            .unwrap();
    }
}
