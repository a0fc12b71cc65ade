//! The README's pasteable script (the block after its "runs this block exactly" marker),
//! run as written by bash against a test server on the tiny dataset: it posts a whole
//! recipe, follows the pipeline's events to the end, and predicts with the result.

use std::process::Command;

use serde_json::{json, Value};

use crate::helpers::spawn_app;

/// The README's script: the first `sh` block after the marker line.
fn readme_script() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let (_, after) = readme
        .split_once("runs this block exactly as written")
        .expect("README.md has the marked script");
    let (_, block) = after
        .split_once("```sh\n")
        .expect("a sh block after the marker");
    let (script, _) = block.split_once("```").unwrap();
    script.to_owned()
}

#[tokio::test]
async fn the_readme_script_runs_a_recipe_and_predicts_with_its_model() {
    let app = spawn_app().await;
    let photo = app.photo("test", "dogs", 0);
    let overrides = json!({"extract": {"image_size": 64}, "train": {"epochs": 3}});
    let output = Command::new("bash")
        .arg("-c")
        .arg(readme_script())
        .env("URL", &app.url)
        .env("DATASET", "tiny")
        .env("RECIPE", "1")
        .env("OVERRIDES", overrides.to_string())
        .env("PHOTO", &photo)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.is_empty(), "the script wrote errors: {stderr}");

    let (_, pipelines) = app.get_json("/v1/pipelines").await;
    let pipeline = &pipelines[0];
    assert_eq!(pipeline["status"], "succeeded", "{pipeline}");
    for step in ["extract", "train", "evaluate"] {
        let relayed = format!("\"step\":\"{step}\"");
        assert!(
            stdout.contains(&relayed),
            "the events lack step {step}: {stdout}"
        );
    }
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.is_empty()).collect();
    let status_line = lines[lines.len() - 2];
    assert_eq!(status_line, "succeeded", "{stdout}");
    let prediction: Value = serde_json::from_str(lines[lines.len() - 1]).unwrap();
    let model = pipeline["jobs"][2]["params"]["model"].as_str().unwrap();
    assert_eq!(prediction["model"], model, "{prediction}");
    let label = prediction["predictions"][0]["label"].as_str().unwrap();
    assert!(["cats", "dogs"].contains(&label), "{prediction}");
}
