//! Build script: bake LibTorch's library directory into the binary's rpath.
//!
//! torch-sys (links = "tch") exports the directory it linked against as
//! `DEP_TCH_LIBTORCH_LIB`. Passing it to the linker as an rpath means `vggserve`, its
//! tests and benches run without `LD_LIBRARY_PATH`.
//!
//! It also records LibTorch's version (`VGGSERVE_LIBTORCH_VERSION`), part of the key under
//! which `--conv-precision auto` keeps its measurement: the file a LibTorch download ships
//! (`build-version`), else the PyTorch wheel's `version.py`.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").ok();
    let version = lib
        .as_deref()
        .map(std::path::Path::new)
        .and_then(std::path::Path::parent)
        .and_then(|root| {
            let download = std::fs::read_to_string(root.join("build-version")).ok();
            let wheel = || {
                let text = std::fs::read_to_string(root.join("version.py")).ok()?;
                let line = text.lines().find(|l| l.starts_with("__version__"))?;
                Some(line.split(['\'', '"']).nth(1)?.to_owned())
            };
            download.map(|v| v.trim().to_owned()).or_else(wheel)
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=VGGSERVE_LIBTORCH_VERSION={version}");
    if let Some(dir) = lib {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        // libtorch_cuda.so needs the nvidia-* wheels' libraries; torch's own rpath finds
        // them relative to itself, so only LibTorch's directory is needed here.
    }
}
