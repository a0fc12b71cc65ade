//! Resolving requests: the seed's defaults, every field reaching its config, refusals,
//! parameters stored by earlier versions, and the defaults table.

use super::*;

fn resolve(json: Value) -> Result<JobParams, InvalidParam> {
    serde_json::from_value::<JobRequest>(json)
        .expect("a well-formed request")
        .resolve()
}

#[test]
fn defaults_are_the_seeds() {
    let id = Uuid::new_v4();
    let on_features = resolve(serde_json::json!({"kind": "train", "dataset": "d", "features": id}));
    assert_eq!(
        on_features,
        Ok(JobParams::Train(TrainParams::OnFeatures(
            HeadTrainingConfig::new("d".into(), id)
        )))
    );
    let Ok(JobParams::Train(TrainParams::OnFeatures(p))) = on_features else {
        unreachable!()
    };
    assert_eq!((p.epochs, p.batch_size, p.learning_rate), (30, 20, 2e-5));
    assert!(
        !p.allow_leaks,
        "a leaky dataset is refused unless the request says otherwise"
    );
    let Ok(JobParams::FineTune(p)) =
        resolve(serde_json::json!({"kind": "fine_tune", "dataset": "d", "from_model": id}))
    else {
        panic!("fine_tune resolves")
    };
    assert_eq!((p.epochs, p.learning_rate), (100, 1e-5));
    assert_eq!(p.unfreeze_from, "block5_conv1");
    assert_eq!((p.steps_per_epoch, p.validation_steps), (100, 50));
    assert!(p.augment);
}

#[test]
fn every_request_field_is_a_field_of_its_config() {
    let id = Uuid::new_v4();
    // Every optional field set to a valid, non-default value: each must reach the config.
    let requests = [
        serde_json::json!({"kind": "extract_features", "dataset": "d", "image_size": 64, "batch_size": 3}),
        serde_json::json!({"kind": "train", "dataset": "d", "features": id,
            "epochs": 2, "batch_size": 3, "learning_rate": 0.5, "seed": 7, "allow_leaks": true}),
        serde_json::json!({"kind": "train", "dataset": "d", "augment": true, "epochs": 2,
            "batch_size": 3, "learning_rate": 0.5, "seed": 7, "steps_per_epoch": 4,
            "validation_steps": 5, "image_size": 64, "allow_leaks": true}),
        serde_json::json!({"kind": "fine_tune", "dataset": "d", "from_model": id,
            "unfreeze_from": "block4_conv1", "augment": false, "epochs": 2, "batch_size": 3,
            "learning_rate": 0.5, "seed": 7, "steps_per_epoch": 4, "validation_steps": 5,
            "image_size": 64, "allow_leaks": true}),
        serde_json::json!({"kind": "evaluate", "dataset": "d", "model": id, "split": "validation",
            "batch_size": 3}),
    ];
    for request in requests {
        let params = resolve(request.clone()).unwrap();
        let stored = serde_json::to_value(&params).unwrap();
        for (field, value) in request.as_object().unwrap() {
            assert_eq!(&stored[field], value, "{field} of {request}");
        }
        // What is stored reads back as the same parameters.
        assert_eq!(serde_json::from_value::<JobParams>(stored).unwrap(), params);
    }
    // On features, `augment: false` is accepted and says nothing more.
    let explicit =
        serde_json::json!({"kind": "train", "dataset": "d", "features": id, "augment": false});
    assert_eq!(
        resolve(explicit),
        Ok(JobParams::Train(TrainParams::OnFeatures(
            HeadTrainingConfig::new("d".into(), id)
        )))
    );
}

#[test]
fn refuses_unknown_fields_kinds_and_bad_ranges() {
    let parse = |json: Value| serde_json::from_value::<JobRequest>(json);
    assert!(parse(
        serde_json::json!({"kind": "train", "dataset": "d", "augment": true, "epochz": 3})
    )
    .is_err());
    assert!(parse(serde_json::json!({"kind": "dance", "dataset": "d"})).is_err());
    for (body, field) in [
        (
            serde_json::json!({"kind": "train", "dataset": "d", "augment": true, "epochs": 0}),
            "epochs",
        ),
        (
            serde_json::json!({"kind": "train", "dataset": "d", "augment": true, "learning_rate": -1}),
            "learning_rate",
        ),
        (
            serde_json::json!({"kind": "train", "dataset": "d", "augment": true, "image_size": 16}),
            "image_size",
        ),
        (
            serde_json::json!({"kind": "train", "dataset": "d"}),
            "features",
        ),
        (
            serde_json::json!({"kind": "train", "dataset": "d", "features": Uuid::nil(), "steps_per_epoch": 2}),
            "steps_per_epoch",
        ),
        (
            serde_json::json!({"kind": "fine_tune", "dataset": "d", "from_model": Uuid::nil(), "unfreeze_from": "block4_pool"}),
            "unfreeze_from",
        ),
        (
            serde_json::json!({"kind": "evaluate", "dataset": "d", "model": Uuid::nil(), "split": "dev"}),
            "split",
        ),
    ] {
        assert_eq!(resolve(body.clone()).unwrap_err().field, field, "{body}");
    }
}

#[test]
fn stored_parameters_of_earlier_versions_still_read() {
    // Before typed parameters, training on features also stored image_size and augment.
    let id = Uuid::new_v4();
    let old = serde_json::json!({"kind": "train", "dataset": "d", "image_size": 150, "batch_size": 20,
        "epochs": 30, "learning_rate": 2e-5, "seed": 1337, "augment": false, "features": id});
    let params: JobParams = serde_json::from_value(old).unwrap();
    assert_eq!(params.kind(), JobKind::Train);
    let JobParams::Train(TrainParams::OnFeatures(params)) = params else {
        panic!("on features: {params:?}")
    };
    // Stored before `allow_leaks` existed: read as not allowed, by every training recipe.
    assert!(!params.allow_leaks);
    let augmented = serde_json::json!({"kind": "train", "dataset": "d", "epochs": 30,
        "batch_size": 20, "learning_rate": 2e-5, "seed": 1337, "steps_per_epoch": 100,
        "validation_steps": 50, "image_size": 150, "augment": true});
    let fine_tune = serde_json::json!({"kind": "fine_tune", "dataset": "d", "from_model": id,
        "unfreeze_from": "block5_conv1", "augment": true, "epochs": 100, "batch_size": 20,
        "learning_rate": 1e-5, "seed": 1337, "steps_per_epoch": 100, "validation_steps": 50,
        "image_size": 150});
    for old in [augmented, fine_tune] {
        let params: JobParams = serde_json::from_value(old.clone()).unwrap();
        assert_eq!(params.allow_leaks(), Some(false), "{old}");
    }
    // A required field is never made up.
    assert!(serde_json::from_value::<JobParams>(
        serde_json::json!({"kind": "fine_tune", "dataset": "d"})
    )
    .is_err());
}

#[test]
fn defaults_table_names_every_recipe_and_no_required_field() {
    let table = JobDefaults::get();
    assert_eq!(table.defaults.len(), 5);
    assert_eq!(table.defaults["fine_tune"]["learning_rate"], 1e-5);
    assert_eq!(table.defaults["train_augmented"]["steps_per_epoch"], 100);
    assert!(table.defaults["train_on_features"]
        .get("features")
        .is_none());
    assert!(table.defaults["train_augmented"].get("augment").is_none());
    assert_eq!(table.limits["epochs"]["maximum"], 1000.0);
}
