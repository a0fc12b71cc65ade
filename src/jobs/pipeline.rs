//! What `POST /v1/pipelines` asks for, turned into named steps in the order they are
//! queued: one of the seed's recipes ([`RECIPES`]) on a dataset, with parameters laid over
//! its steps, or the user's own steps. A step's `features`, `from_model` or `model` may
//! name another step; those names become the ids the steps will have, and the steps are
//! ordered so that every one comes after the steps it names (a cycle is refused).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::request::{field_of, JobRequest};

/// The parameters that may name another job (or step).
pub const REFERENCES: [&str; 3] = ["features", "from_model", "model"];

/// The most steps one pipeline may have.
pub const MAX_STEPS: usize = 20;

/// The body of `POST /v1/pipelines`: `recipe` and `dataset` (and `overrides`), or `steps`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineRequest {
    /// 1: extract features → train the head on them → evaluate on test. 2: train end to end
    /// with augmentation → evaluate on test. 3: recipe 2, then fine-tune from block5_conv1 →
    /// evaluate on test.
    pub recipe: Option<u8>,
    /// The dataset every step of the recipe runs on.
    pub dataset: Option<String>,
    /// Parameters for the recipe's steps, by step name, over the recipe's own:
    /// `{"train": {"epochs": 5}, "fine_tune": {"epochs": 2}}`.
    #[schema(value_type = Option<Object>)]
    pub overrides: Option<Map<String, Value>>,
    /// Your own chain instead of a recipe: each step is a job as `POST /v1/jobs` takes it,
    /// with a `name`; its `features`, `from_model` or `model` may give another step's name.
    #[schema(value_type = Option<Vec<Object>>)]
    pub steps: Option<Vec<Value>>,
}

/// The seed's recipes: each step's name and its job, with `{dataset}` and step names to
/// fill in.
pub const RECIPES: [&[(&str, &str)]; 3] = [
    &[
        ("extract", r#"{"kind": "extract_features"}"#),
        ("train", r#"{"kind": "train", "features": "extract"}"#),
        (
            "evaluate",
            r#"{"kind": "evaluate", "model": "train", "split": "test"}"#,
        ),
    ],
    &[
        ("train", r#"{"kind": "train", "augment": true}"#),
        (
            "evaluate",
            r#"{"kind": "evaluate", "model": "train", "split": "test"}"#,
        ),
    ],
    &[
        ("train", r#"{"kind": "train", "augment": true}"#),
        (
            "evaluate",
            r#"{"kind": "evaluate", "model": "train", "split": "test"}"#,
        ),
        (
            "fine_tune",
            r#"{"kind": "fine_tune", "from_model": "train", "unfreeze_from": "block5_conv1"}"#,
        ),
        (
            "evaluate_fine_tuned",
            r#"{"kind": "evaluate", "model": "fine_tune", "split": "test"}"#,
        ),
    ],
];

/// A step before its references are resolved: its name and its job's fields.
type RawStep = (String, Map<String, Value>);

/// One step, ready to be checked and queued.
#[derive(Debug, Clone)]
pub struct PlannedStep {
    pub name: String,
    /// The id its job will have.
    pub id: Uuid,
    pub request: JobRequest,
}

/// Why a pipeline request cannot be planned (always a 400), with the field it concerns.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct PlanError {
    pub field: String,
    pub message: String,
}

fn refuse(field: impl Into<String>, message: impl Into<String>) -> PlanError {
    PlanError {
        field: field.into(),
        message: message.into(),
    }
}

/// The steps of `request` in the order they are to be queued, and its recipe.
pub fn plan(request: PipelineRequest) -> Result<(Option<u8>, Vec<PlannedStep>), PlanError> {
    let steps = match (&request.recipe, &request.steps) {
        (Some(recipe), None) => recipe_steps(*recipe, &request)?,
        (None, Some(steps)) => {
            if request.dataset.is_some() || request.overrides.is_some() {
                return Err(refuse(
                    "steps",
                    "dataset and overrides go with recipe; with steps, give each step its own",
                ));
            }
            named_steps(steps)?
        }
        _ => {
            return Err(refuse(
                "recipe",
                "give either recipe (with dataset) or steps",
            ))
        }
    };
    let ordered = order(steps).map_err(|mut error| {
        // A recipe's steps are given under `overrides`.
        if request.recipe.is_some() {
            if let Some(rest) = error.field.strip_prefix("steps.") {
                error.field = format!("overrides.{rest}");
            }
        }
        error
    })?;
    Ok((request.recipe, ordered))
}

fn recipe_steps(recipe: u8, request: &PipelineRequest) -> Result<Vec<RawStep>, PlanError> {
    let Some(template) = RECIPES.get(usize::from(recipe).wrapping_sub(1)) else {
        return Err(refuse(
            "recipe",
            format!("recipe must be 1, 2 or 3, got {recipe}"),
        ));
    };
    let dataset = request
        .dataset
        .clone()
        .ok_or_else(|| refuse("dataset", "a recipe needs the dataset it runs on"))?;
    let mut steps: Vec<RawStep> = template
        .iter()
        .map(|(name, job)| {
            let mut job: Map<String, Value> = serde_json::from_str(job).unwrap_or_default();
            job.insert("dataset".into(), json!(dataset));
            (name.to_string(), job)
        })
        .collect();
    // The fine-tuned model keeps its trained model's input size unless told otherwise.
    let overrides = request.overrides.clone().unwrap_or_default();
    let size_of = |step: &str| {
        overrides
            .get(step)
            .and_then(|o| o.get("image_size"))
            .cloned()
    };
    if let (Some(size), None) = (size_of("train"), size_of("fine_tune")) {
        if let Some((_, job)) = steps.iter_mut().find(|(step, _)| step == "fine_tune") {
            job.insert("image_size".into(), size);
        }
    }
    for (name, given) in &overrides {
        let field = format!("overrides.{name}");
        let Some((_, job)) = steps.iter_mut().find(|(step, _)| step == name) else {
            let names: Vec<&str> = template.iter().map(|(n, _)| *n).collect();
            return Err(refuse(
                field,
                format!("recipe {recipe} has no step {name:?}; its steps are {names:?}"),
            ));
        };
        let Value::Object(given) = given else {
            return Err(refuse(field, "give a step's parameters as an object"));
        };
        for (key, value) in given {
            if ["kind", "dataset", "name"].contains(&key.as_str())
                || REFERENCES.contains(&key.as_str())
            {
                return Err(refuse(
                    format!("{field}.{key}"),
                    format!("{key} is set by the recipe"),
                ));
            }
            job.insert(key.clone(), value.clone());
        }
    }
    Ok(steps)
}

fn named_steps(steps: &[Value]) -> Result<Vec<RawStep>, PlanError> {
    if steps.is_empty() || steps.len() > MAX_STEPS {
        return Err(refuse(
            "steps",
            format!("a pipeline has 1 to {MAX_STEPS} steps, got {}", steps.len()),
        ));
    }
    let mut named: Vec<RawStep> = Vec::with_capacity(steps.len());
    for (index, step) in steps.iter().enumerate() {
        let field = format!("steps[{index}]");
        let Value::Object(job) = step else {
            return Err(refuse(field, "each step is a job object with a name"));
        };
        let mut job = job.clone();
        let name = match job.remove("name") {
            Some(Value::String(name)) if is_step_name(&name) => name,
            _ => {
                return Err(refuse(
                    format!("{field}.name"),
                    "each step needs a name: 1 to 40 of a-z, 0-9, _ and -, not an id",
                ))
            }
        };
        if named.iter().any(|(other, _)| *other == name) {
            return Err(refuse(
                format!("{field}.name"),
                format!("two steps are named {name:?}"),
            ));
        }
        named.push((name, job));
    }
    Ok(named)
}

/// 1 to 40 of a-z, 0-9, `_` and `-`, and not an id (a reference that parses as one names
/// a job outside the pipeline).
fn is_step_name(name: &str) -> bool {
    Uuid::parse_str(name).is_err()
        && (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Give every step its id, turn step names in references into those ids, and order the
/// steps so that each follows the ones it names (the given order where that is free).
fn order(steps: Vec<RawStep>) -> Result<Vec<PlannedStep>, PlanError> {
    let ids: HashMap<String, Uuid> = steps
        .iter()
        .map(|(name, _)| (name.clone(), Uuid::new_v4()))
        .collect();
    let mut pending: Vec<(String, Map<String, Value>, Vec<String>)> = Vec::new();
    for (name, mut job) in steps {
        let mut names = Vec::new();
        for field in REFERENCES {
            let Some(Value::String(text)) = job.get(field) else {
                continue;
            };
            if Uuid::parse_str(text).is_ok() {
                continue;
            }
            let Some(id) = ids.get(text) else {
                return Err(refuse(
                    format!("steps.{name}.{field}"),
                    format!("{field} names neither a step of this pipeline nor an id: {text:?}"),
                ));
            };
            names.push(text.clone());
            job.insert(field.into(), json!(id));
        }
        pending.push((name, job, names));
    }
    let mut ordered: Vec<PlannedStep> = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|(_, _, names)| names.iter().all(|n| ordered.iter().any(|s| &s.name == n)));
        let Some(ready) = ready else {
            let mut names: Vec<&str> = pending.iter().map(|(n, _, _)| n.as_str()).collect();
            names.sort_unstable();
            return Err(refuse(
                "steps",
                format!("the steps {names:?} wait on each other in a cycle, so none could start"),
            ));
        };
        let (name, job, _) = pending.remove(ready);
        let request: JobRequest = serde_json::from_value(Value::Object(job)).map_err(|e| {
            let field =
                field_of(&e).map_or(format!("steps.{name}"), |f| format!("steps.{name}.{f}"));
            refuse(field, format!("step {name:?} is not a valid job: {e}"))
        })?;
        ordered.push(PlannedStep {
            id: ids[&name],
            name,
            request,
        });
    }
    Ok(ordered)
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
