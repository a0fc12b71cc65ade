//! Planning pipelines: the recipes' chains, overrides, step references and their order,
//! and the requests refused with the field they concern.

use super::*;

fn request(body: Value) -> PipelineRequest {
    serde_json::from_value(body).unwrap()
}

fn names(steps: &[PlannedStep]) -> Vec<&str> {
    steps.iter().map(|s| s.name.as_str()).collect()
}

#[test]
fn each_recipe_is_its_chain_with_overrides_laid_over() {
    let (_, steps) = plan(request(json!({"recipe": 1, "dataset": "pets"}))).unwrap();
    assert_eq!(names(&steps), ["extract", "train", "evaluate"]);
    let JobRequest::Train(train) = &steps[1].request else {
        panic!("train")
    };
    assert_eq!(train.features, Some(steps[0].id));

    let body = json!({"recipe": 3, "dataset": "pets",
                      "overrides": {"train": {"image_size": 160}, "fine_tune": {"epochs": 2}}});
    let (recipe, steps) = plan(request(body)).unwrap();
    assert_eq!(recipe, Some(3));
    assert_eq!(
        names(&steps),
        ["train", "evaluate", "fine_tune", "evaluate_fine_tuned"]
    );
    let JobRequest::FineTune(fine) = &steps[2].request else {
        panic!("fine_tune")
    };
    assert_eq!((fine.from_model, fine.epochs), (steps[0].id, Some(2)));
    assert_eq!(
        fine.image_size,
        Some(160),
        "the fine-tuned model keeps its input size"
    );
    let JobRequest::Evaluate(last) = &steps[3].request else {
        panic!("evaluate")
    };
    assert_eq!((last.model, last.dataset.as_str()), (steps[2].id, "pets"));
}

#[test]
fn bad_requests_are_refused_naming_the_field() {
    let field = |body: Value| plan(request(body)).unwrap_err().field;
    assert_eq!(field(json!({"recipe": 4, "dataset": "pets"})), "recipe");
    assert_eq!(field(json!({"recipe": 1})), "dataset");
    assert_eq!(field(json!({"dataset": "pets"})), "recipe");
    let body = json!({"recipe": 2, "dataset": "pets", "overrides": {"extract": {}}});
    assert_eq!(field(body), "overrides.extract");
    let body = json!({"recipe": 2, "dataset": "pets", "overrides": {"evaluate": {"model": "x"}}});
    assert_eq!(field(body), "overrides.evaluate.model");
    let body = json!({"recipe": 1, "dataset": "pets", "overrides": {"train": {"epoch": 3}}});
    assert_eq!(field(body), "overrides.train.epoch");
    let id = Uuid::new_v4().to_string();
    let body = json!({"steps": [{"name": id, "kind": "extract_features", "dataset": "d"}]});
    assert_eq!(field(body), "steps[0].name");
    let body = json!({"steps": [{"name": "a", "kind": "evaluate", "dataset": "d", "model": "b"}]});
    assert_eq!(field(body), "steps.a.model");
    let body = json!({"steps": [{"kind": "extract_features", "dataset": "d"}]});
    assert_eq!(field(body), "steps[0].name");
}

#[test]
fn steps_follow_the_steps_they_name_and_a_cycle_is_refused() {
    let body = json!({"steps": [
        {"name": "score", "kind": "evaluate", "dataset": "d", "model": "head"},
        {"name": "head", "kind": "train", "dataset": "d", "features": "feats"},
        {"name": "feats", "kind": "extract_features", "dataset": "d"},
    ]});
    let (recipe, steps) = plan(request(body)).unwrap();
    assert_eq!(
        (recipe, names(&steps)),
        (None, vec!["feats", "head", "score"])
    );

    let cycle = json!({"steps": [
        {"name": "a", "kind": "fine_tune", "dataset": "d", "from_model": "b"},
        {"name": "b", "kind": "fine_tune", "dataset": "d", "from_model": "a"},
        {"name": "c", "kind": "extract_features", "dataset": "d"},
    ]});
    let error = plan(request(cycle)).unwrap_err();
    assert_eq!(error.field, "steps");
    assert!(error.message.contains(r#"["a", "b"]"#), "{error}");
    let own = json!({"steps": [{"name": "a", "kind": "evaluate", "dataset": "d", "model": "a"}]});
    assert_eq!(plan(request(own)).unwrap_err().field, "steps");
}
