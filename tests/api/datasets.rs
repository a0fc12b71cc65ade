//! Datasets over HTTP: uploads in each layout (zip, tar.gz, multipart), the split rule,
//! hostile archives refused with nothing left behind, deletion, and an uploaded dataset
//! running a job. Archives are built here from the shared photos.

use std::io::{Cursor, Write};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::errors::{png_header, raw_post_head};
use crate::helpers::{spawn_app_with, TestApp};
use crate::shared::require;

/// Small limits, so that the refusals are cheap to provoke.
const ARGS: [&str; 6] = [
    "--max-dataset-mb",
    "2",
    "--max-dataset-files",
    "60",
    "--max-pixels",
    "40000000",
];

/// The first `n` photos (name, bytes) of a split and class of cats_and_dogs_small.
fn photos(split: &str, class: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    let dir = require("datasets/cats_and_dogs_small")
        .join(split)
        .join(class);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .take(n)
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap().to_owned();
            (name, std::fs::read(p).unwrap())
        })
        .collect()
}

pub fn zip_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        zip.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// A tar of (name, type, data), names written raw (the builder would refuse `..`).
fn tar_of(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        if kind.is_symlink() || kind.is_hard_link() {
            header.set_link_name("target").unwrap();
        }
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        builder.append(&header, *bytes).unwrap();
    }
    builder.into_inner().unwrap()
}

/// A PNG whose header declares `width`×`height`, with an empty IDAT and IEND after it (so
/// the header reads whole) and no pixels.
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut out = png_header(width, height);
    for name in [b"IDAT", b"IEND"] {
        out.extend(0u32.to_be_bytes());
        out.extend(name);
        out.extend(crc32fast::hash(name).to_be_bytes());
    }
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

impl TestApp {
    async fn upload(&self, query: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/v1/datasets?{query}", self.url))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Everything directly under the datasets dir, dotfiles included, sorted.
    fn datasets_listing(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root.path().join("datasets"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// Files of `<dataset>/<split>/<class>`, sorted.
    fn files_of(&self, dataset: &str, split: &str, class: &str) -> Vec<String> {
        let dir = self
            .root
            .path()
            .join("datasets")
            .join(dataset)
            .join(split)
            .join(class);
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

fn images(created: &Value, split: &str) -> u64 {
    created["splits"][split]["images"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn uploads_in_each_layout_become_datasets_that_jobs_can_use() {
    let app = spawn_app_with(&ARGS).await;
    // Split folders in a zip, wrapped in one top folder, with litter to skip.
    let mut entries = Vec::new();
    for split in ["train", "validation", "test"] {
        for class in ["cats", "dogs"] {
            for (name, bytes) in photos(split, class, 6) {
                entries.push((format!("pets/{split}/{class}/{name}"), bytes));
            }
        }
    }
    entries.push(("pets/notes.txt".into(), b"hello".to_vec()));
    entries.push(("pets/train/cats/.DS_Store".into(), b"x".to_vec()));
    entries.push(("__MACOSX/pets/._notes.txt".into(), b"x".to_vec()));
    let (status, created) = app
        .upload("name=pets", "application/zip", zip_of(&entries))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], "pets");
    for split in ["train", "validation", "test"] {
        assert_eq!(images(&created, split), 12, "{created}");
        assert_eq!(
            created["splits"][split]["classes"],
            serde_json::json!(["cats", "dogs"])
        );
    }
    let skipped: Vec<(&str, &str)> = created["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["entry"].as_str().unwrap(), s["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        skipped,
        [
            ("pets/notes.txt", "not_an_image"),
            ("pets/train/cats/.DS_Store", "hidden"),
            ("__MACOSX/pets/._notes.txt", "hidden"),
        ]
    );
    let (_, listed) = app.get_json("/v1/datasets").await;
    let pets = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "pets");
    assert_eq!(pets.unwrap()["splits"], created["splits"]);
    assert_eq!(app.datasets_listing(), ["pets", "tiny"]);

    // Class folders in a tar.gz, split by fractions: exact counts, and the same files
    // chosen for the same seed.
    let mut tar_entries = Vec::new();
    for class in ["cats", "dogs"] {
        for (name, bytes) in photos("train", class, 10) {
            tar_entries.push((format!("{class}/{name}"), bytes));
        }
    }
    let refs: Vec<(&str, tar::EntryType, &[u8])> = tar_entries
        .iter()
        .map(|(n, b)| (n.as_str(), tar::EntryType::Regular, b.as_slice()))
        .collect();
    let archive = gzip(&tar_of(&refs));
    let query = "validation_fraction=0.2&test_fraction=0.1&seed=7";
    for name in ["split-a", "split-b"] {
        let (status, created) = app
            .upload(
                &format!("name={name}&{query}"),
                "application/gzip",
                archive.clone(),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(
            ["train", "validation", "test"].map(|s| images(&created, s)),
            [14, 4, 2],
            "{created}"
        );
    }
    for (split, per_class) in [("train", 7), ("validation", 2), ("test", 1)] {
        for class in ["cats", "dogs"] {
            let a = app.files_of("split-a", split, class);
            assert_eq!(a.len(), per_class, "{split}/{class}");
            assert_eq!(a, app.files_of("split-b", split, class), "{split}/{class}");
        }
    }
    // Another seed, another choice (same counts).
    let (status, other) = app
        .upload(
            "name=split-c&validation_fraction=0.2&test_fraction=0.1&seed=8",
            "application/octet-stream",
            archive,
        )
        .await;
    assert_eq!(status, 201, "{other}");
    assert_ne!(
        app.files_of("split-a", "validation", "cats"),
        app.files_of("split-c", "validation", "cats")
    );

    // Multipart: each part's filename is <class>/<file>.
    let mut form = reqwest::multipart::Form::new();
    for class in ["cats", "dogs"] {
        for (name, bytes) in photos("validation", class, 4) {
            let part = reqwest::multipart::Part::bytes(bytes).file_name(format!("{class}/{name}"));
            form = form.part("image", part);
        }
    }
    let response = app
        .client
        .post(format!(
            "{}/v1/datasets?name=parts&validation_fraction=0.5",
            app.url
        ))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        [images(&created, "train"), images(&created, "validation")],
        [4, 4]
    );

    // The uploaded dataset runs a job; while jobs are queued on it, it cannot be deleted.
    let job = serde_json::json!({"kind": "extract_features", "dataset": "pets", "image_size": 32});
    let first = app.queue(job.clone()).await;
    let second = app.queue(job).await;
    let delete = |name: &'static str| {
        app.client
            .delete(format!("{}/v1/datasets/{name}", app.url))
            .send()
    };
    let response = delete("pets").await.unwrap();
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains(&second), "{body}");
    for id in [&first, &second] {
        let done = app.wait_for(id, Duration::from_secs(120)).await;
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    assert_eq!(delete("pets").await.unwrap().status(), 204);
    assert_eq!(delete("pets").await.unwrap().status(), 404);
    assert_eq!(delete(".incoming").await.unwrap().status(), 400);
    // A folder dataset copied by hand (symlinked photos) can be deleted too; the photos stay.
    assert_eq!(delete("tiny").await.unwrap().status(), 204);
    assert!(require("datasets/cats_and_dogs_small/train/cats")
        .read_dir()
        .unwrap()
        .next()
        .is_some());
    assert_eq!(
        app.datasets_listing(),
        ["parts", "split-a", "split-b", "split-c"]
    );
}

#[tokio::test]
async fn hostile_and_invalid_uploads_are_refused_and_leave_nothing_behind() {
    use tar::EntryType as T;
    let app = spawn_app_with(&ARGS).await;
    let before = app.datasets_listing();
    let (_, photo) = photos("train", "cats", 1).remove(0);
    let ok = ("cats/a.jpg", T::Regular, photo.as_slice());
    let tar = |entry: (&str, T, &[u8])| tar_of(&[ok, entry]);
    let zeros = vec![0u8; 20 * 1024 * 1024];
    let many: Vec<(String, Vec<u8>)> = (0..61)
        .map(|i| (format!("cats/{i}.jpg"), vec![1u8; 10]))
        .collect();
    let big = png_declaring(20_000, 20_000);
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "name=x",
            "application/x-tar",
            tar(("../evil.jpg", T::Regular, &photo)),
            422,
            "..",
        ),
        (
            "name=x",
            "application/x-tar",
            tar(("/tmp/evil.jpg", T::Regular, &photo)),
            422,
            "absolute",
        ),
        (
            "name=x",
            "application/x-tar",
            tar(("cats/l.jpg", T::Symlink, &[])),
            422,
            "symbolic link",
        ),
        (
            "name=x",
            "application/x-tar",
            tar(("cats/h.jpg", T::Link, &[])),
            422,
            "hard link",
        ),
        (
            "name=x",
            "application/x-tar",
            tar(("cats/f.jpg", T::Fifo, &[])),
            422,
            "fifo",
        ),
        (
            "name=x",
            "application/x-tar",
            tar(ok),
            422,
            "more than once",
        ),
        (
            "name=x",
            "application/zip",
            zip_of(&[("cats/bomb.jpg".into(), zeros)]),
            413,
            "cats/bomb.jpg",
        ),
        (
            "name=x",
            "application/zip",
            zip_of(&many),
            413,
            "more than 60 entries",
        ),
        (
            "name=x",
            "application/zip",
            zip_of(&[("cats/big.png".into(), big)]),
            422,
            "cats/big.png",
        ),
        (
            "name=x",
            "application/octet-stream",
            b"just text".to_vec(),
            415,
            "zip",
        ),
        (
            "name=x",
            "application/zip",
            b"PK\x03\x04 broken".to_vec(),
            422,
            "corrupt",
        ),
        (
            "name=x&validation_fraction=0.5",
            "application/x-tar",
            tar_of(&[("train/cats/a.jpg", T::Regular, &photo)]),
            422,
            "apply only",
        ),
        (
            "name=x&validation_fraction=0",
            "application/x-tar",
            tar_of(&[(" cats/a.jpg", T::Regular, &photo)]),
            400,
            "class",
        ),
        (
            "name=x",
            "application/x-tar",
            tar_of(&[("a.jpg", T::Regular, &photo)]),
            422,
            "layout",
        ),
        (
            "name=../x",
            "application/x-tar",
            tar(ok),
            400,
            "invalid dataset name",
        ),
        ("name=tiny", "application/x-tar", tar(ok), 409, "exists"),
        (
            "name=x&validation_fraction=1.5",
            "application/x-tar",
            tar(ok),
            422,
            "validation_fraction",
        ),
    ];
    for (query, content_type, body, status, says) in cases {
        let (got, error) = app.upload(query, content_type, body).await;
        assert_eq!(got, status, "{query} {says}: {error}");
        let message = error["error"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{says:?} not in {error}");
        assert_eq!(app.datasets_listing(), before, "after {says}");
    }
    // Over the limit without a declared length (chunked): counted while streaming. The
    // server answers 413 and closes the connection on the unread rest, so the client may
    // see the reset instead of the answer; either way nothing is left (checked below).
    let chunks =
        futures::stream::iter((0..3).map(|_| Ok::<_, std::io::Error>(vec![1u8; 1024 * 1024])));
    let response = app
        .client
        .post(format!("{}/v1/datasets?name=x", app.url))
        .header("content-type", "application/zip")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    if let Ok(response) = response {
        assert_eq!(response.status(), 413);
    }
    // Over the limit by the declared length: answered before the body is sent.
    let answer = raw_post_head(
        &app.url,
        "/v1/datasets?name=x",
        "application/zip",
        3 << 20,
        b"",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // A client that goes away mid-upload leaves nothing either.
    {
        use tokio::io::AsyncWriteExt;
        let addr = app.url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /v1/datasets?name=gone HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/zip\r\nContent-Length: 1000000\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&[0u8; 100_000]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            app.datasets_listing().contains(&".incoming".to_owned()),
            "the upload was under way"
        );
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.datasets_listing() != before {
        assert!(
            std::time::Instant::now() < deadline,
            "left behind: {:?}",
            app.datasets_listing()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.get_json("/healthz").await.0, 200);
}
