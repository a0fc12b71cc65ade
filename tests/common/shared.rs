//! Where the read-only test data lives (`../shared` beside the checkout, or
//! `$VGGSERVE_SHARED`), and a loud failure naming the path when it is missing.

use std::path::PathBuf;

pub fn shared_dir() -> PathBuf {
    std::env::var_os("VGGSERVE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

/// A file under the shared dir that the test cannot run without.
pub fn require(relative: &str) -> PathBuf {
    let path = shared_dir().join(relative);
    assert!(
        path.exists(),
        "test data missing: expected {} (set VGGSERVE_SHARED to the folder holding weights/, fixtures/ and datasets/)",
        path.display()
    );
    path
}

pub fn standin_weights() -> PathBuf {
    require("weights/vgg16-standin.safetensors")
}
