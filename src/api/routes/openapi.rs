//! The API document: generated from the handlers' `#[utoipa::path]` annotations and the
//! wire types' `ToSchema` as the router is built (see `build_router`), so it cannot drift
//! from the code. Served at `GET /openapi.json`.

use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{Number, OpenApi};

use crate::data::dataset::SPLITS;
use crate::domain::JobKind;
use crate::jobs::spec::LIMITS;
use crate::model::layers::convs;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vggserve",
        description = "Transfer learning on small image datasets (VGG16), served over HTTP. \
            With --api-token, every route but /healthz, /readyz, /metrics, /openapi.json and the \
            dashboard needs `Authorization: Bearer <token>`."
    ),
    tags(
        (name = "jobs", description = "Queue, watch and cancel training jobs"),
        (name = "models", description = "Trained models"),
        (name = "predict", description = "Classify photos"),
        (name = "datasets", description = "Datasets on the server"),
        (name = "cache", description = "The feature cache"),
        (name = "health", description = "Probes"),
    )
)]
pub struct ApiDoc;

/// What the annotations cannot say, applied to the whole merged document: the bearer
/// scheme; the job request as one flat object per kind (utoipa would combine a tag with a
/// struct that refuses unknown fields, which nothing satisfies); and the values and ranges
/// of parameters, which are declared once in the code and written into the schemas here.
pub fn complete(openapi: &mut utoipa::openapi::OpenApi) {
    // `/predict` (the design card's name) is `/v1/predict` under another path.
    if let Some(mut item) = openapi.paths.paths.get("/v1/predict").cloned() {
        if let Some(operation) = item.post.as_mut() {
            operation.operation_id = Some("predict_unversioned".into());
        }
        openapi.paths.paths.insert("/predict".into(), item);
    }
    let components = openapi.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    let kinds = [
        (JobKind::ExtractFeatures, "ExtractRequest"),
        (JobKind::Train, "TrainRequest"),
        (JobKind::FineTune, "FineTuneRequest"),
        (JobKind::Evaluate, "EvaluateRequest"),
    ];
    let splits: Vec<&str> = SPLITS.to_vec();
    let layers: Vec<&str> = convs().map(|c| c.name).collect();
    let mut branches = OneOfBuilder::new();
    for (kind, name) in kinds {
        let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) else {
            continue;
        };
        for (field, limit) in &LIMITS {
            if let Some(RefOr::T(Schema::Object(property))) = object.properties.get_mut(*field) {
                property.maximum = Some(number(limit.maximum));
                property.minimum = limit.minimum.map(number);
                property.exclusive_minimum = limit.exclusive_minimum.map(number);
            }
        }
        for (field, values) in [("split", &splits), ("unfreeze_from", &layers)] {
            if let Some(RefOr::T(Schema::Object(property))) = object.properties.get_mut(field) {
                // Optional: null (the default) is accepted too.
                let mut allowed: Vec<Value> = values.iter().map(|v| Value::from(*v)).collect();
                allowed.push(Value::Null);
                property.enum_values = Some(allowed);
            }
        }
        let mut branch = object.clone();
        let tag = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some([kind.as_str()]))
            .build();
        branch.properties.insert("kind".into(), tag.into());
        branch.required.insert(0, "kind".into());
        branches = branches.item(branch);
    }
    components.schemas.insert(
        "JobRequest".into(),
        RefOr::T(Schema::OneOf(branches.build())),
    );
}

/// Whole limits as integers (the fields they bound are integers), others as floats.
fn number(value: f64) -> Number {
    if value.fract() == 0.0 {
        Number::Int(value as isize)
    } else {
        Number::Float(value)
    }
}
