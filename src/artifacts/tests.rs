//! Publishing from one data dir and fetching into another, as two machines do, through a
//! shared folder (`file://`) and through a real S3-compatible server when the test
//! environment has one (`make test` starts SeaweedFS with tests/services/with_s3.sh; without
//! it, and without `VGGSERVE_REQUIRE_S3`, the S3 half is skipped with a note).

use super::*;

/// The artifact URLs to test: a shared folder, and the test S3 bucket when there is one.
fn stores(shared: &Path) -> Vec<String> {
    let mut urls = vec![format!("file://{}", shared.display())];
    match std::env::var("VGGSERVE_TEST_S3_BUCKET") {
        Ok(bucket) => urls.push(format!("s3://{bucket}/t{}", uuid::Uuid::new_v4().simple())),
        Err(_) => {
            assert!(
                std::env::var_os("VGGSERVE_REQUIRE_S3").is_none(),
                "VGGSERVE_REQUIRE_S3 is set but VGGSERVE_TEST_S3_BUCKET is not"
            );
            eprintln!("no VGGSERVE_TEST_S3_BUCKET: skipping the S3 store");
        }
    }
    urls
}

#[tokio::test]
async fn an_artifact_published_on_one_machine_is_fetched_whole_on_another() {
    let shared = tempfile::tempdir().unwrap();
    for url in stores(shared.path()) {
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let writer = Artifacts::open(Some(&url), one.path()).unwrap();
        let reader = Artifacts::open(Some(&url), two.path()).unwrap();
        writer.ping().await.unwrap();
        let model = one.path().join("models/m1");
        std::fs::create_dir_all(model.join("inner")).unwrap();
        // Larger than a part: it goes up as a multipart upload, in order.
        let weights: Vec<u8> = (0..2 * folders::PART + 123)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        std::fs::write(model.join("model.safetensors"), &weights).unwrap();
        std::fs::write(model.join("inner/config.json"), b"{}").unwrap();

        assert!(!reader.exists("models/m1").await.unwrap());
        assert!(!reader.fetch("models/m1").await.unwrap());
        writer.publish("models/m1").await.unwrap();
        assert!(reader.exists("models/m1").await.unwrap());
        // A name that only starts like it is another artifact.
        assert!(!reader.exists("models/m").await.unwrap());
        assert!(reader.fetch("models/m1").await.unwrap());
        let fetched = two.path().join("models/m1");
        assert!(std::fs::read(fetched.join("model.safetensors")).unwrap() == weights);
        assert_eq!(
            std::fs::read(fetched.join("inner/config.json")).unwrap(),
            b"{}"
        );
        // Nothing half-fetched is left beside it.
        let beside: Vec<_> = std::fs::read_dir(two.path().join("models"))
            .unwrap()
            .collect();
        assert_eq!(beside.len(), 1, "{url}");

        let folders = reader.folders("models").await.unwrap();
        assert_eq!(
            folders.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["m1"]
        );
        writer.remove("models/m1").await.unwrap();
        assert!(reader.folders("models").await.unwrap().is_empty());
        let third = tempfile::tempdir().unwrap();
        let late = Artifacts::open(Some(&url), third.path()).unwrap();
        assert!(!late.exists("models/m1").await.unwrap(), "{url}");
        assert!(!late.fetch("models/m1").await.unwrap());
        // Publishing what is not there is an error, not an empty artifact.
        assert!(writer.publish("models/none").await.is_err());
    }
}

#[tokio::test]
async fn without_a_url_the_data_dir_is_the_store() {
    let data = tempfile::tempdir().unwrap();
    let artifacts = Artifacts::open(None, data.path()).unwrap();
    std::fs::create_dir_all(data.path().join("features/j")).unwrap();
    artifacts.publish("features/j").await.unwrap();
    assert!(artifacts.fetch("features/j").await.unwrap());
    assert!(!artifacts.fetch("features/k").await.unwrap());
    assert!(Artifacts::open(Some("ftp://x"), data.path()).is_err());
}

#[tokio::test]
async fn single_files_are_shared_and_those_the_store_lacks_are_skipped() {
    let shared = tempfile::tempdir().unwrap();
    for url in stores(shared.path()) {
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let writer = Artifacts::open(Some(&url), one.path()).unwrap();
        let reader = Artifacts::open(Some(&url), two.path()).unwrap();
        let names: Vec<String> = (0..40)
            .map(|n| format!("cache/c/{:02}/{n}.f32", n % 7))
            .collect();
        for (n, name) in names.iter().enumerate() {
            let path = one.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, vec![n as u8; 100 + n]).unwrap();
        }
        writer.publish_files(&names[..30]).await.unwrap();
        // The reader has one of them already: it is not fetched again.
        let own = two.path().join(&names[0]);
        std::fs::create_dir_all(own.parent().unwrap()).unwrap();
        std::fs::write(&own, b"mine").unwrap();
        assert_eq!(reader.fetch_files(&names).await.unwrap(), 29, "{url}");
        assert_eq!(std::fs::read(&own).unwrap(), b"mine");
        for (n, name) in names.iter().enumerate().skip(1) {
            let fetched = std::fs::read(two.path().join(name)).ok();
            let expected = (n < 30).then(|| vec![n as u8; 100 + n]);
            assert_eq!(fetched, expected, "{name} from {url}");
        }
        // A file that is not there is an error to publish.
        assert!(writer
            .publish_files(&["cache/none.f32".into()])
            .await
            .is_err());
    }
    let data = tempfile::tempdir().unwrap();
    let local = Artifacts::open(None, data.path()).unwrap();
    assert_eq!(local.fetch_files(&["a".into()]).await.unwrap(), 0);
}

async fn fetch(artifacts: &Artifacts, n: usize) -> Option<model_copies::Pin> {
    let folder = format!("models/m{n}");
    artifacts.fetch_model(&folder).await.unwrap()
}

/// The model folders present under `data`, sorted.
fn models_in(data: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data.join("models"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| !name.starts_with('.')) // on its way out
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_machine_keeps_its_most_recently_used_model_copies_and_never_one_in_use() {
    let (shared, one, two) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let url = format!("file://{}", shared.path().display());
    let trainer = Artifacts::open(Some(&url), one.path()).unwrap();
    let replica = Artifacts::open(Some(&url), two.path())
        .unwrap()
        .keeping_models(3);
    let write = |data: &Path, name: &str| {
        let dir = data.join("models").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("model.safetensors"), name).unwrap();
    };
    for n in 0..5 {
        write(one.path(), &format!("m{n}"));
        trainer.publish(&format!("models/m{n}")).await.unwrap();
    }
    // A model of this machine's own that is not in the store: never removed.
    write(two.path(), "mine");
    for n in 0..4 {
        assert!(fetch(&replica, n).await.is_some());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(models_in(two.path()), ["m1", "m2", "m3", "mine"]);
    // m1 in use while m4 arrives: it stays, beyond the bound.
    let held = fetch(&replica, 1).await.unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(fetch(&replica, 4).await.is_some());
    assert_eq!(models_in(two.path()), ["m1", "m2", "m3", "m4", "mine"]);
    drop(held);
    assert!(fetch(&replica, 4).await.is_some());
    assert_eq!(models_in(two.path()), ["m2", "m3", "m4", "mine"]);
    assert_eq!(
        std::fs::read(two.path().join("models/m2/model.safetensors")).unwrap(),
        b"m2"
    );
    assert!(replica.fetch_model("models/none").await.unwrap().is_none());

    // Without a store the data dir is the only copy: nothing goes.
    let alone = Artifacts::open(None, one.path()).unwrap().keeping_models(1);
    assert!(alone.fetch_model("models/m0").await.unwrap().is_some());
    alone.published_model("models/m0");
    assert_eq!(models_in(one.path()).len(), 5);
}

#[tokio::test]
async fn names_object_storage_encodes_come_back_as_they_were() {
    let shared = tempfile::tempdir().unwrap();
    for url in stores(shared.path()) {
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let writer = Artifacts::open(Some(&url), one.path()).unwrap();
        let reader = Artifacts::open(Some(&url), two.path()).unwrap();
        let names = ["C# [x]/a~1.jpg", "100% {b}/^q|\"<>.png", "plain/é ü.jpg"];
        for name in names {
            let path = one.path().join("d/v1").join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, name).unwrap();
        }
        writer.publish("d/v1").await.unwrap();
        assert!(reader.fetch("d/v1").await.unwrap(), "{url}");
        for name in names {
            let fetched = std::fs::read(two.path().join("d/v1").join(name));
            assert_eq!(
                fetched.ok().as_deref(),
                Some(name.as_bytes()),
                "{name} via {url}"
            );
        }
        let folders = reader.folders("d").await.unwrap();
        assert_eq!(folders.len(), 1);
        assert_eq!(folders[0].0, "v1");
    }
    assert!(folders::decoded("a%2Fb").is_err());
    assert!(folders::decoded("%2E%2E").is_err());
    assert_eq!(folders::decoded("C%23%20x").unwrap(), "C# x");
}

#[tokio::test]
async fn a_refused_upload_is_an_error_and_concurrent_fetches_all_get_the_whole_folder() {
    let (shared, one, two) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let url = format!("file://{}", shared.path().display());
    let writer = Artifacts::open(Some(&url), one.path()).unwrap();
    // The store cannot make a `models` folder: a file is in its place.
    std::fs::write(shared.path().join("models"), b"in the way").unwrap();
    for (name, size) in [("small", 10), ("large", folders::PART + 1)] {
        let dir = one.path().join("models").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("model.safetensors"), vec![1u8; size]).unwrap();
        let refused = writer.publish(&format!("models/{name}")).await;
        assert!(refused.is_err(), "{name}");
    }

    let features = one.path().join("features/j1");
    std::fs::create_dir_all(&features).unwrap();
    for n in 0..40 {
        std::fs::write(features.join(format!("{n}.bin")), vec![n as u8; 1000 + n]).unwrap();
    }
    writer.publish("features/j1").await.unwrap();
    let reader = Arc::new(Artifacts::open(Some(&url), two.path()).unwrap());
    let fetches: Vec<_> = (0..8)
        .map(|_| {
            let reader = reader.clone();
            tokio::spawn(async move { reader.fetch("features/j1").await.unwrap() })
        })
        .collect();
    for fetch in fetches {
        assert!(fetch.await.unwrap());
    }
    for n in 0..40 {
        let bytes = std::fs::read(two.path().join(format!("features/j1/{n}.bin"))).unwrap();
        assert_eq!(bytes, vec![n as u8; 1000 + n]);
    }
    let beside: Vec<String> = std::fs::read_dir(two.path().join("features"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(beside, ["j1"]);
    assert!(reader.fetching.lock().unwrap().is_empty());
}
