//! Two machines (data dirs of their own) on one database and one shared folder as the
//! artifact store: a dataset uploaded on one is listed, fetched and opened on the other; a
//! name is taken once; a delete on either is seen by both and leaves no file behind; the
//! sweep removes only what no record names. Without a store, the datasets dir as ever.

use super::*;
use crate::artifacts::Artifacts;
use crate::store::SqliteStore;

struct Machine {
    catalog: Catalog,
    data: tempfile::TempDir,
    datasets: tempfile::TempDir,
}

async fn machine(db: &Path, artifacts_url: Option<&str>) -> Machine {
    let (data, datasets) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store: SharedStore = Arc::new(SqliteStore::open(db).await.unwrap());
    let artifacts = Arc::new(Artifacts::open(artifacts_url, data.path()).unwrap());
    let catalog = Catalog::new(datasets.path(), data.path(), store, artifacts);
    Machine {
        catalog,
        data,
        datasets,
    }
}

/// What `import::publish` leaves: `<parent>/<name>/<split>/<class>/<file>`, opened.
fn write_dataset(parent: &Path, name: &str, per_class: usize) -> Dataset {
    for split in ["train", "validation"] {
        for class in ["cats", "dogs"] {
            let dir = parent.join(name).join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for n in 0..per_class {
                std::fs::write(dir.join(format!("{n}.jpg")), format!("{class}{n}")).unwrap();
            }
        }
    }
    Dataset::open(parent, name).unwrap()
}

fn images(summary: &DatasetSummary) -> Vec<(String, u64)> {
    summary
        .splits
        .iter()
        .map(|(split, s)| (split.clone(), s.images))
        .collect()
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                stack.push(entry.path());
            } else {
                let path = entry.path();
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn an_upload_on_one_machine_is_listed_opened_and_deleted_on_another() {
    let (db, shared) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = format!("file://{}", shared.path().display());
    let db = db.path().join("vggserve.db");
    let (a, b) = (
        machine(&db, Some(&url)).await,
        machine(&db, Some(&url)).await,
    );

    a.catalog.check_available("pets").await.unwrap();
    let mut placement = a.catalog.place().unwrap();
    assert!(placement.parent.starts_with(a.data.path()));
    let uploaded = write_dataset(&placement.parent, "pets", 3);
    a.catalog.register(&mut placement, &uploaded).await.unwrap();

    // B lists it from the record, then fetches it to open it.
    let listed = b.catalog.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "pets");
    let counts = [("train".to_owned(), 6), ("validation".to_owned(), 6)];
    assert_eq!(images(&listed[0]), counts);
    let folder = b.catalog.folder("pets").await.unwrap();
    assert!(folder.starts_with(b.data.path()), "{}", folder.display());
    let fetched = Dataset::open(&folder, "pets").unwrap();
    assert_eq!(fetched.classes(), ["cats", "dogs"]);
    assert_eq!(
        std::fs::read(folder.join("pets/train/dogs/2.jpg")).unwrap(),
        b"dogs2"
    );

    // The name is taken for B too, and a racing upload of it leaves nothing anywhere.
    assert!(matches!(
        b.catalog.check_available("pets").await,
        Err(ImportError::Exists(_))
    ));
    let stored_before = files(shared.path());
    let mut racing = b.catalog.place().unwrap();
    let second = write_dataset(&racing.parent, "pets", 1);
    let refused = b.catalog.register(&mut racing, &second).await;
    assert!(
        matches!(refused, Err(ImportError::Exists(_))),
        "{refused:?}"
    );
    let racing_folder = racing.parent.clone();
    drop(racing);
    assert!(!racing_folder.exists());
    assert_eq!(files(shared.path()), stored_before);

    // A local folder of another name is listed beside it; one of the same name is shadowed.
    write_dataset(a.datasets.path(), "local", 1);
    write_dataset(a.datasets.path(), "pets", 1);
    let names: Vec<(String, u64)> = a
        .catalog
        .list()
        .await
        .unwrap()
        .iter()
        .map(|d| (d.name.clone(), d.splits["train"].images))
        .collect();
    assert_eq!(names, [("local".to_owned(), 2), ("pets".to_owned(), 6)]);

    // Deleted through B: gone for A at once (A's own folder of that name shows again), and
    // from the store and B's disk.
    b.catalog.remove("pets").await.unwrap();
    let pets: Vec<u64> = a
        .catalog
        .list()
        .await
        .unwrap()
        .iter()
        .filter(|d| d.name == "pets")
        .map(|d| d.splits["train"].images)
        .collect();
    assert_eq!(pets, [2]);
    assert!(b.catalog.list().await.unwrap().is_empty());
    let found = b.catalog.folder("pets").await.unwrap();
    assert!(matches!(
        Dataset::open(&found, "pets"),
        Err(dataset::DatasetError::NotFound(_))
    ));
    assert!(
        files(shared.path()).is_empty(),
        "{:?}",
        files(shared.path())
    );
    assert!(!folder.exists());
    // A's copy of the deleted version goes with the sweep, once past the grace period.
    let a_copy = placement.parent.clone();
    assert_eq!(a.catalog.sweep(GRACE_FOR_TEST).await.unwrap(), 0);
    assert!(a_copy.exists());
    assert_eq!(a.catalog.sweep(Duration::ZERO).await.unwrap(), 1);
    assert!(!a_copy.exists());
}

const GRACE_FOR_TEST: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn the_sweep_removes_published_files_no_record_names() {
    let (db, shared) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = format!("file://{}", shared.path().display());
    let a = machine(&db.path().join("vggserve.db"), Some(&url)).await;
    let mut kept = a.catalog.place().unwrap();
    let dataset = write_dataset(&kept.parent, "kept", 1);
    a.catalog.register(&mut kept, &dataset).await.unwrap();
    // An upload whose process died between publishing and registering (so its placement
    // never dropped).
    let orphan = a.catalog.place().unwrap();
    write_dataset(&orphan.parent, "orphan", 1);
    a.catalog
        .artifacts
        .publish(&version_folder(orphan.version.unwrap()))
        .await
        .unwrap();
    std::mem::forget(orphan);

    assert_eq!(a.catalog.sweep(GRACE_FOR_TEST).await.unwrap(), 0);
    // The orphan's stored files and its local copy.
    assert_eq!(a.catalog.sweep(Duration::ZERO).await.unwrap(), 2);
    let left: Vec<String> = a
        .catalog
        .artifacts
        .folders(VERSIONS)
        .await
        .unwrap()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(left, [kept.parent.file_name().unwrap().to_str().unwrap()]);
    assert!(kept.parent.exists());
    assert!(Dataset::open(&a.catalog.folder("kept").await.unwrap(), "kept").is_ok());
}

#[tokio::test]
async fn without_a_store_datasets_are_folders_of_the_datasets_dir() {
    let db = tempfile::tempdir().unwrap();
    let a = machine(&db.path().join("vggserve.db"), None).await;
    let mut placement = a.catalog.place().unwrap();
    assert_eq!(placement.parent, a.datasets.path());
    assert_eq!(a.catalog.uploads_dir(), a.datasets.path());
    let dataset = write_dataset(&placement.parent, "pets", 2);
    a.catalog.register(&mut placement, &dataset).await.unwrap();
    assert!(a.catalog.store.datasets().await.unwrap().is_empty());
    assert!(matches!(
        a.catalog.check_available("pets").await,
        Err(ImportError::Exists(_))
    ));
    assert_eq!(a.catalog.folder("pets").await.unwrap(), a.datasets.path());
    assert_eq!(a.catalog.list().await.unwrap().len(), 1);
    a.catalog.remove("pets").await.unwrap();
    assert!(a.catalog.list().await.unwrap().is_empty());
    assert!(matches!(
        a.catalog.remove("pets").await,
        Err(ImportError::Dataset(dataset::DatasetError::NotFound(_)))
    ));
}
