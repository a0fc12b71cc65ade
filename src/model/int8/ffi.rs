//! Safe Rust over `shim.cpp`: a quantised network as an owned handle. Floats cross the
//! boundary as plain slices; C++ exceptions come back as [`Int8Error`]s with their text.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr::NonNull;
use std::sync::OnceLock;

extern "C" {
    fn vgg_int8_engine(code: c_int, err: *mut c_char, len: usize) -> c_int;
    fn vgg_int8_new() -> *mut c_void;
    fn vgg_int8_free(net: *mut c_void);
    fn vgg_int8_conv(
        net: *mut c_void,
        weight: *const f32,
        bias: *const f32,
        cout: i64,
        cin: i64,
        out_scale: f64,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
    fn vgg_int8_pool(net: *mut c_void, err: *mut c_char, len: usize) -> c_int;
    #[allow(clippy::too_many_arguments)]
    fn vgg_int8_forward(
        net: *mut c_void,
        input: *const f32,
        n: i64,
        c: i64,
        h: i64,
        w: i64,
        in_scale: f64,
        in_zero: i64,
        steps: i64,
        out: *mut f32,
        out_len: i64,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
}

/// Why the int8 conv base cannot be built or run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Int8Error {
    /// What LibTorch's quantised kernels said.
    #[error("int8 conv base: LibTorch: {0}")]
    Kernel(String),
    #[error("int8 conv base: no calibrated range for {layer}")]
    NoRange { layer: &'static str },
    #[error("int8 conv base: no photos to calibrate on")]
    NoPhotos,
    #[error(
        "--conv-precision int8 runs LibTorch's CPU kernels, not on {device}: use f32 or bf16 there"
    )]
    Device { device: String },
    #[error("int8 conv base: {0}")]
    Shape(String),
}

/// LibTorch's oneDNN engine (`c10::QEngine::ONEDNN`): the fastest of fbgemm, oneDNN and x86
/// for this network in PyTorch's own measurement (docs/BENCHMARKS.md, issue 15).
const ONEDNN: c_int = 3;

/// Select the quantised engine, once per process, before anything is packed.
fn engine() -> Result<(), Int8Error> {
    static ENGINE: OnceLock<Result<(), Int8Error>> = OnceLock::new();
    ENGINE
        .get_or_init(|| call(|err, len| unsafe { vgg_int8_engine(ONEDNN, err, len) }))
        .clone()
}

/// Run a shim call that returns 0 or fills an error buffer.
fn call(f: impl FnOnce(*mut c_char, usize) -> c_int) -> Result<(), Int8Error> {
    let mut err = [0 as c_char; 2048];
    if f(err.as_mut_ptr(), err.len()) == 0 {
        return Ok(());
    }
    // SAFETY: the shim always NUL-terminates what it writes into the buffer.
    let text = unsafe { CStr::from_ptr(err.as_ptr()) };
    Err(Int8Error::Kernel(text.to_string_lossy().into_owned()))
}

/// A sequence of int8 conv+ReLU and max-pool steps with packed weights, owned by C++.
#[derive(Debug)]
pub struct QuantizedNet {
    handle: NonNull<c_void>,
    steps: usize,
}

// SAFETY: nothing changes a network after it is built except LibTorch's first run of each
// conv, which reorders its weights and fills its kernel cache once, under `c10::call_once`;
// after that runs only read, so one network can run from several threads.
unsafe impl Send for QuantizedNet {}
unsafe impl Sync for QuantizedNet {}

impl QuantizedNet {
    pub fn new() -> Result<Self, Int8Error> {
        engine()?;
        // SAFETY: returns a fresh heap object, freed in Drop.
        let handle = NonNull::new(unsafe { vgg_int8_new() })
            .ok_or_else(|| Int8Error::Kernel("out of memory".into()))?;
        Ok(Self { handle, steps: 0 })
    }

    /// Append a 3×3 conv (padding 1) + ReLU: OIHW `weight` [cout, cin, 3, 3], `bias` [cout];
    /// its output is quantised with `out_scale` (zero point 0).
    pub fn push_conv(
        &mut self,
        weight: &[f32],
        bias: &[f32],
        cout: usize,
        cin: usize,
        out_scale: f64,
    ) -> Result<(), Int8Error> {
        if weight.len() != cout * cin * 9 || bias.len() != cout {
            return Err(Int8Error::Shape(format!(
                "conv {cin}→{cout}: {} weights and {} biases",
                weight.len(),
                bias.len()
            )));
        }
        let handle = self.handle.as_ptr();
        // SAFETY: the slices hold exactly the values the shim reads (checked above); it
        // copies them before returning.
        call(|err, len| unsafe {
            vgg_int8_conv(
                handle,
                weight.as_ptr(),
                bias.as_ptr(),
                cout as i64,
                cin as i64,
                out_scale,
                err,
                len,
            )
        })?;
        self.steps += 1;
        Ok(())
    }

    /// Append a 2×2 max-pool, stride 2.
    pub fn push_pool(&mut self) -> Result<(), Int8Error> {
        let handle = self.handle.as_ptr();
        // SAFETY: the handle is live.
        call(|err, len| unsafe { vgg_int8_pool(handle, err, len) })?;
        self.steps += 1;
        Ok(())
    }

    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Run the first `steps` steps on NCHW `input` of `shape`, quantised as uint8 with
    /// (`scale`, `zero`); the dequantised NCHW output fills `out`.
    pub fn forward(
        &self,
        input: &[f32],
        shape: [usize; 4],
        (scale, zero): (f64, i64),
        steps: usize,
        out: &mut [f32],
    ) -> Result<(), Int8Error> {
        if input.len() != shape.iter().product::<usize>() {
            return Err(Int8Error::Shape(format!(
                "input of {} values for shape {shape:?}",
                input.len()
            )));
        }
        let [n, c, h, w] = shape.map(|d| d as i64);
        let handle = self.handle.as_ptr();
        // SAFETY: `input` holds the shape's values (checked above) and the shim writes at
        // most `out.len()` floats, failing when the output's size differs.
        call(|err, len| unsafe {
            vgg_int8_forward(
                handle,
                input.as_ptr(),
                n,
                c,
                h,
                w,
                scale,
                zero,
                steps as i64,
                out.as_mut_ptr(),
                out.len() as i64,
                err,
                len,
            )
        })
    }
}

impl Drop for QuantizedNet {
    fn drop(&mut self) {
        // SAFETY: the handle came from vgg_int8_new and is freed once.
        unsafe { vgg_int8_free(self.handle.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_run_and_their_errors_come_back_as_text() {
        let mut net = QuantizedNet::new().unwrap();
        net.push_pool().unwrap();
        let input: Vec<f32> = (0..16).map(|i| i as f32 / 15.0).collect();
        let mut out = vec![0f32; 4];
        net.forward(&input, [1, 1, 4, 4], (1.0 / 127.0, 0), 1, &mut out)
            .unwrap();
        // 2×2 max-pool of 0..15 laid out 4×4, through uint8 and back.
        let expected = [5.0, 7.0, 13.0, 15.0].map(|v| v / 15.0);
        for (got, want) in out.iter().zip(expected) {
            assert!((got - want).abs() < 1.0 / 127.0, "{out:?}");
        }
        match net.forward(&input, [1, 1, 4, 4], (1.0 / 127.0, 0), 2, &mut out) {
            Err(Int8Error::Kernel(text)) => {
                assert!(text.contains("has 1 steps, not 2"), "{text}")
            }
            other => panic!("expected LibTorch's error, got {other:?}"),
        }
        let mut small = vec![0f32; 3];
        assert!(matches!(
            net.forward(&input, [1, 1, 4, 4], (1.0 / 127.0, 0), 1, &mut small),
            Err(Int8Error::Kernel(_))
        ));
    }
}
