//! Build script: bake LibTorch's library directory into the binary's rpath.
//!
//! torch-sys (links = "tch") exports the directory it linked against as
//! `DEP_TCH_LIBTORCH_LIB`. Passing it to the linker as an rpath means `vggserve`, its
//! tests and benches run without `LD_LIBRARY_PATH`.
//!
//! It also records LibTorch's version (`VGGSERVE_LIBTORCH_VERSION`), part of the key under
//! which `--conv-precision auto` keeps its measurement: the file a LibTorch download ships
//! (`build-version`), else the PyTorch wheel's `version.py`.
//!
//! And it compiles the int8 conv base's C++ (`src/model/int8/shim.cpp`, LibTorch's quantised
//! convolutions, which tch does not wrap) against the same LibTorch's headers, with the
//! flags torch-sys uses for its own C++.
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
    match &lib {
        Some(dir) => compile_int8_shim(std::path::Path::new(dir)),
        None => panic!(
            "torch-sys did not say where LibTorch is (DEP_TCH_LIBTORCH_LIB): cannot compile \
             the int8 conv base's C++ against it"
        ),
    }
    if let Some(dir) = lib {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        // libtorch_cuda.so needs the nvidia-* wheels' libraries; torch's own rpath finds
        // them relative to itself, so only LibTorch's directory is needed here.
    }
}

/// `src/model/int8/shim.cpp` as a static library, against LibTorch's headers beside `lib`.
fn compile_int8_shim(lib: &std::path::Path) {
    const SHIM: &str = "src/model/int8/shim.cpp";
    println!("cargo:rerun-if-changed={SHIM}");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let root = lib.parent().unwrap_or(lib);
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .file(SHIM)
        .include(root.join("include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .warnings(false)
        .compile("vggserve_int8");
}
