//! Layouts, the split arithmetic and the publish, on real folders.

use super::*;

fn files(names: &[&str]) -> Vec<Vec<String>> {
    names
        .iter()
        .map(|n| n.split('/').map(str::to_owned).collect())
        .collect()
}

fn rule(validation: f64, test: f64, seed: u64) -> Option<SplitRule> {
    SplitRule::new(Some(validation), Some(test), Some(seed)).unwrap()
}

fn class_files(class: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{class}/{i:03}.jpg")).collect()
}

#[test]
fn split_counts_are_floors_and_train_keeps_the_rest() {
    let r = rule(0.2, 0.1, 0).unwrap();
    assert_eq!(r.counts(10), (2, 1));
    assert_eq!(r.counts(7), (1, 0));
    // 0.29 × 100 is 28.999… in floating point: still 29.
    assert_eq!(rule(0.29, 0.0, 0).unwrap().counts(100), (29, 0));
    assert_eq!(rule(0.5, 0.49, 0).unwrap().counts(1), (0, 0));
    for (v, t, field) in [
        (1.0, 0.0, "validation_fraction"),
        (-0.1, 0.0, "validation_fraction"),
        (0.0, f64::NAN, "test_fraction"),
        (0.6, 0.4, "test_fraction"),
    ] {
        match SplitRule::new(Some(v), Some(t), None) {
            Err(ImportError::Fraction { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{v} {t}: {other:?}"),
        }
    }
    assert_eq!(SplitRule::new(None, None, Some(3)).unwrap(), None);
}

#[test]
fn class_folders_are_split_per_class_exactly_and_deterministically() {
    let mut names = class_files("cats", 10);
    names.extend(class_files("dogs", 7));
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let staged = files(&names);
    let count = |p: &[Placement], split: &str, class: &str| {
        p.iter()
            .filter(|p| p.split == split && p.class == class)
            .count()
    };
    let a = plan(&staged, rule(0.2, 0.15, 7)).unwrap();
    assert_eq!(a.len(), 17);
    for (class, want) in [("cats", [7, 2, 1]), ("dogs", [5, 1, 1])] {
        let got = ["train", "validation", "test"].map(|s| count(&a, s, class));
        assert_eq!(got, want, "{class}");
    }
    // The same files in another order and the same seed: the same split.
    let mut reversed = staged.clone();
    reversed.reverse();
    let mut b = plan(&reversed, rule(0.2, 0.15, 7)).unwrap();
    let mut a_sorted = a.clone();
    a_sorted.sort_by(|x, y| x.from.cmp(&y.from));
    b.sort_by(|x, y| x.from.cmp(&y.from));
    assert_eq!(a_sorted, b);
    let c = plan(&staged, rule(0.2, 0.15, 8)).unwrap();
    assert_ne!(a, c, "another seed picks other files");
    // Too few to give every class a validation image.
    assert!(matches!(
        plan(&files(&["cats/a.jpg", "cats/b.jpg"]), rule(0.2, 0.0, 0)),
        Err(ImportError::TooFew {
            split: "validation",
            ..
        })
    ));
    assert!(matches!(plan(&staged, None), Err(ImportError::NoFractions)));
}

#[test]
fn split_folders_and_one_wrapping_folder_are_recognised() {
    let staged = files(&["pets/train/cats/a.jpg", "pets/validation/dogs/b.jpg"]);
    let placed = plan(&staged, None).unwrap();
    assert_eq!(
        placed
            .iter()
            .map(|p| (p.split, p.class.as_str(), p.file.as_str()))
            .collect::<Vec<_>>(),
        [("train", "cats", "a.jpg"), ("validation", "dogs", "b.jpg")]
    );
    assert!(matches!(
        plan(&staged, rule(0.1, 0.0, 0)),
        Err(ImportError::FractionsWithSplits)
    ));
    let wrapped = plan(&files(&["w/cats/a.jpg", "w/dogs/b.jpg"]), rule(0.0, 0.0, 0)).unwrap();
    assert!(wrapped.iter().all(|p| p.split == "train"));
    for bad in [
        &["train/cats/a.jpg", "dogs/b.jpg"][..],
        &["a.jpg"][..],
        &["cats/a.jpg", "x/dogs/b.jpg"][..],
    ] {
        assert!(
            matches!(
                plan(&files(bad), rule(0.0, 0.0, 0)),
                Err(ImportError::Layout(_))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        plan(&files(&["c\u{1}/a.jpg"]), rule(0.0, 0.0, 0)),
        Err(ImportError::Dataset(DatasetError::InvalidClass(_)))
    ));
    assert!(matches!(plan(&[], None), Err(ImportError::NoImages)));
}

#[test]
fn publish_renames_into_place_and_the_guard_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let datasets = tmp.path();
    let incoming = Incoming::new(datasets).unwrap();
    let raw = incoming.raw();
    for name in [
        "w/train/cats/a.jpg",
        "w/train/dogs/b.jpg",
        "w/test/cats/c.jpg",
        "w/test/dogs/d.jpg",
    ] {
        let path = raw.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }
    std::fs::write(incoming.body(), b"archive").unwrap();
    let staged = Staged {
        files: files(&[
            "w/train/cats/a.jpg",
            "w/train/dogs/b.jpg",
            "w/test/cats/c.jpg",
            "w/test/dogs/d.jpg",
        ]),
        skipped: Vec::new(),
    };
    let imported = publish(datasets, &incoming, staged, "pets", None).unwrap();
    assert_eq!(imported.dataset.split("test").unwrap().samples.len(), 2);
    drop(incoming);
    let mut left: Vec<String> = std::fs::read_dir(datasets)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["pets"]);
    assert!(matches!(
        check_available(datasets, "pets"),
        Err(ImportError::Exists(_))
    ));
    // A second publish of the same name is refused at the rename.
    let again = Incoming::new(datasets).unwrap();
    std::fs::create_dir_all(again.raw().join("cats")).unwrap();
    std::fs::write(again.raw().join("cats/a.jpg"), b"x").unwrap();
    let staged = Staged {
        files: files(&["cats/a.jpg"]),
        skipped: Vec::new(),
    };
    assert!(matches!(
        publish(datasets, &again, staged, "pets", rule(0.0, 0.0, 0)),
        Err(ImportError::Exists(_))
    ));
    drop(again);
    remove(datasets, "pets").unwrap();
    assert_eq!(std::fs::read_dir(datasets).unwrap().count(), 0);
    assert!(matches!(
        remove(datasets, "pets"),
        Err(ImportError::Dataset(DatasetError::NotFound(_)))
    ));
}

#[test]
fn sweeping_removes_what_interrupted_uploads_left() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(sweep_incoming(dir.path()).unwrap(), 0);
    let incoming = dir.path().join(INCOMING);
    std::fs::create_dir_all(incoming.join("abc.d/raw/cats")).unwrap();
    std::fs::write(incoming.join("abc"), b"half a body").unwrap();
    std::fs::write(incoming.join("abc.d/raw/cats/1.jpg"), b"x").unwrap();
    std::fs::create_dir_all(dir.path().join("kept/train/cats")).unwrap();
    assert_eq!(sweep_incoming(dir.path()).unwrap(), 2);
    assert!(!incoming.exists());
    assert!(dir.path().join("kept/train/cats").is_dir());
}
