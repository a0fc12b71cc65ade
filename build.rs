//! Build script: bake LibTorch's library directory into the binary's rpath.
//!
//! torch-sys (links = "tch") exports the directory it linked against as
//! `DEP_TCH_LIBTORCH_LIB`. Passing it to the linker as an rpath means `vggserve`, its
//! tests and benches run without `LD_LIBRARY_PATH`.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        // libtorch_cuda.so needs the nvidia-* wheels' libraries; torch's own rpath finds
        // them relative to itself, so only LibTorch's directory is needed here.
    }
}
