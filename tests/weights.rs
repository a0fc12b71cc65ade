//! Weight loading in every format we accept, from files these tests write in those formats
//! (a torchvision-style `.pth` via torch.save, a Keras-layout `.h5` via h5py), and the
//! errors for missing, truncated and mismatched files: each names the file and the tensor.

#![allow(deprecated)]

mod common {
    pub mod shared;
}

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::shared::standin_weights;
use vggserve::model::{Preprocessing, WeightSet, WeightsError};
use vggserve::tensor_io::{read_f32_safetensors, write_f32_safetensors};

/// The project venv's Python (made by `make venv`, which also installs h5py and numpy).
fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run `make venv` first",
        python.display()
    );
    python
}

fn run_python(script: &str, args: &[&Path]) {
    let status = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "python failed");
}

fn standin() -> WeightSet {
    WeightSet::load(&standin_weights(), None).unwrap()
}

fn assert_same_tensors(a: &WeightSet, b: &WeightSet) {
    let (a, b) = (a.tensors_sorted(), b.tensors_sorted());
    assert_eq!(a.len(), 26);
    assert_eq!(a.len(), b.len());
    for ((name_a, ta), (name_b, tb)) in a.iter().zip(&b) {
        assert_eq!(name_a, name_b);
        assert_eq!(ta.shape, tb.shape, "{name_a}");
        assert!(ta.data == tb.data, "{name_a} differs");
    }
}

#[test]
fn torchvision_pth_state_dict_loads_its_features_part() {
    let dir = tempfile::tempdir().unwrap();
    let pth = dir.path().join("vgg16-full.pth");
    // A full torchvision state dict: features.* plus the classifier we must ignore.
    run_python(
        "import sys, torch\n\
         from safetensors.torch import load_file\n\
         sd = load_file(sys.argv[1])\n\
         sd['classifier.0.weight'] = torch.zeros(4096, 8)\n\
         sd['classifier.0.bias'] = torch.zeros(4096)\n\
         torch.save(sd, sys.argv[2])",
        &[&standin_weights(), &pth],
    );
    let loaded = WeightSet::load(&pth, None).unwrap();
    assert_eq!(
        loaded.preprocessing,
        Preprocessing::Torch,
        "torchvision files expect mean/std"
    );
    assert_same_tensors(&loaded, &standin());

    // `weights convert` writes safetensors recording the preprocessing, which loads back.
    let out = dir.path().join("converted.safetensors");
    let status = Command::new(env!("CARGO_BIN_EXE_vggserve"))
        .args(["weights", "convert"])
        .args([&pth, &out])
        .status()
        .unwrap();
    assert!(status.success());
    let converted = WeightSet::load(&out, None).unwrap();
    assert_eq!(converted.preprocessing, Preprocessing::Torch);
    assert_same_tensors(&converted, &loaded);
}

#[test]
fn keras_notop_h5_loads_transposed_to_oihw_with_caffe_preprocessing() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir
        .path()
        .join("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5");
    let expected = dir.path().join("expected.safetensors");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures_gen/make_keras_h5.py");
    for style in ["keras2", "legacy"] {
        let status = Command::new(python())
            .arg(&script)
            .args([&h5, &expected])
            .args(["--style", style])
            .status()
            .unwrap();
        assert!(status.success(), "make_keras_h5.py --style {style}");
        let loaded = WeightSet::load(&h5, None).unwrap();
        assert_eq!(
            loaded.preprocessing,
            Preprocessing::Caffe,
            "Keras weights expect caffe BGR"
        );
        let (want, _) = read_f32_safetensors(&expected).unwrap();
        for (name, tensor) in loaded.tensors_sorted() {
            assert_eq!(tensor.shape, want[name].shape, "{style} {name}");
            assert!(tensor.data == want[name].data, "{style} {name} differs");
        }
    }
}

/// Write the stand-in's tensors with `edit` applied, as safetensors.
fn write_edited(path: &Path, edit: impl Fn(&mut HashMap<String, vggserve::tensor_io::RawTensor>)) {
    let (mut tensors, _) = read_f32_safetensors(&standin_weights()).unwrap();
    edit(&mut tensors);
    write_f32_safetensors(
        path,
        tensors
            .iter()
            .map(|(n, t)| (n.clone(), t.shape.clone(), t.data.as_slice())),
        HashMap::new(),
    )
    .unwrap();
}

#[test]
fn broken_files_fail_with_the_file_and_tensor_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.safetensors");
    let error = WeightSet::load(&missing, None).unwrap_err().to_string();
    assert!(
        error.contains("absent.safetensors") && error.contains("VGGSERVE_WEIGHTS"),
        "{error}"
    );

    let truncated = dir.path().join("truncated.safetensors");
    let bytes = std::fs::read(standin_weights()).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let error = WeightSet::load(&truncated, None).unwrap_err();
    assert!(matches!(error, WeightsError::Format { .. }), "{error}");

    let shape = dir.path().join("shape.safetensors");
    write_edited(&shape, |t| {
        let w = t.get_mut("features.5.weight").unwrap();
        w.shape = vec![128, 32, 3, 3];
        w.data.truncate(128 * 32 * 9);
    });
    let error = WeightSet::load(&shape, None).unwrap_err().to_string();
    assert!(
        error.contains("features.5.weight") && error.contains("[128, 64, 3, 3]"),
        "{error}"
    );

    let absent_tensor = dir.path().join("missing-tensor.safetensors");
    write_edited(&absent_tensor, |t| {
        t.remove("features.28.bias");
    });
    let error = WeightSet::load(&absent_tensor, None)
        .unwrap_err()
        .to_string();
    assert!(error.contains("features.28.bias"), "{error}");

    let renamed = dir.path().join("weights.bin");
    std::fs::copy(standin_weights(), &renamed).unwrap();
    assert!(matches!(
        WeightSet::load(&renamed, None),
        Err(WeightsError::UnknownFormat { .. })
    ));

    // The server refuses to start on such a file, saying which tensor, without a panic.
    let output = Command::new(env!("CARGO_BIN_EXE_vggserve"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--device",
            "cpu",
            "--weights",
        ])
        .arg(&shape)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("features.5.weight") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn preprocessing_comes_from_metadata_and_can_be_overridden() {
    assert_eq!(standin().preprocessing, Preprocessing::Rgb01);
    let forced = WeightSet::load(&standin_weights(), Some(Preprocessing::Caffe)).unwrap();
    assert_eq!(forced.preprocessing, Preprocessing::Caffe);
}

/// Serve `dir` over HTTP on a free loopback port with the venv's Python; returns the child and port.
fn serve_dir(dir: &Path) -> (std::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(python())
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (child, port)
}

#[test]
fn weights_fetch_verifies_the_pinned_hash_and_fails_in_one_line_offline() {
    let dir = tempfile::tempdir().unwrap();
    let pth = dir.path().join("vgg16.pth");
    run_python(
        "import sys, torch\nfrom safetensors.torch import load_file\ntorch.save(load_file(sys.argv[1]), sys.argv[2])",
        &[&standin_weights(), &pth],
    );
    let digest = vggserve::model::saved::file_sha256(&pth).unwrap();
    let (mut server, port) = serve_dir(dir.path());
    let fetch = |sha: &str, out: &Path| {
        Command::new(env!("CARGO_BIN_EXE_vggserve"))
            .args([
                "weights",
                "fetch",
                "--url",
                &format!("http://127.0.0.1:{port}/vgg16.pth"),
                "--sha256",
                sha,
                "--out",
            ])
            .arg(out)
            .output()
            .unwrap()
    };
    let out = dir.path().join("weights/vgg16.safetensors");
    let wrong = fetch("00000000", &out);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("refusing"));
    assert!(
        !out.exists(),
        "a download with the wrong hash must leave nothing behind"
    );
    let good = fetch(&digest[..8], &out);
    server.kill().unwrap();
    let _ = server.wait();
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let fetched = WeightSet::load(&out, None).unwrap();
    assert_eq!(fetched.preprocessing, Preprocessing::Torch);
    assert_same_tensors(&fetched, &standin());

    // Nothing listens there now: the same command fails with one line naming the way out.
    let offline = fetch(&digest[..8], &dir.path().join("other.safetensors"));
    assert!(!offline.status.success());
    let stderr = String::from_utf8_lossy(&offline.stderr);
    let error_lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(error_lines.len(), 1, "{stderr}");
    assert!(error_lines[0].contains("VGGSERVE_WEIGHTS"), "{stderr}");
}
