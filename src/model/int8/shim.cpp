// The int8 conv base's kernels: LibTorch's quantised convolutions, which tch does not wrap.
//
// LibTorch registers its int8 convolutions as operators of the `quantized::` namespace
// (`conv2d_prepack`, `conv2d_relu.new`); they are reachable through the dispatcher only.
// This file is the whole of vggserve's C++: a network is a list of steps (a conv + ReLU
// with int8 weights packed once, or a 2x2 max-pool), run on a uint8-quantised input and
// dequantised at the end. Floats go in and out through plain buffers, so the Rust side
// (`ffi.rs`) needs no tch internals. No C++ exception crosses into Rust: every entry point
// that can throw catches everything and returns the text in `err`.

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>

#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

namespace {

struct Step {
  bool pool;
  c10::IValue packed;  // Conv2dPackedParamsBase, for a conv
  double scale;        // its output's scale (zero point 0: ReLU outputs are >= 0)
};

struct Net {
  std::vector<Step> steps;
};

c10::OperatorHandle op(const char* name, const char* overload) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, overload);
}

void copy_error(const char* text, char* err, size_t len) {
  if (len == 0) return;
  std::strncpy(err, text, len - 1);
  err[len - 1] = '\0';
}

// Runs `body`; 0 when it returns, -1 with the error's text in `err` when it throws (LibTorch's
// errors without the C++ backtrace they carry). No exception leaves.
template <typename Body>
int guarded(char* err, size_t len, Body&& body) {
  try {
    body();
    return 0;
  } catch (const c10::Error& e) {
    copy_error(e.what_without_backtrace(), err, len);
  } catch (const std::exception& e) {
    copy_error(e.what(), err, len);
  } catch (...) {
    copy_error("unknown C++ exception", err, len);
  }
  return -1;
}

at::Tensor run(const Net& net, at::Tensor q, int64_t steps) {
  static const auto conv_relu = op("quantized::conv2d_relu", "new");
  const std::vector<int64_t> two{2, 2}, zero{0, 0}, one{1, 1};
  for (int64_t i = 0; i < steps; ++i) {
    const Step& step = net.steps[static_cast<size_t>(i)];
    if (step.pool) {
      q = at::max_pool2d(q, two, two, zero, one, false);
    } else {
      torch::jit::Stack stack{q, step.packed, step.scale, int64_t{0}};
      conv_relu.callBoxed(&stack);
      q = stack[0].toTensor();
    }
  }
  return q;
}

}  // namespace

extern "C" {

// Selects the quantised engine (1 fbgemm, 3 onednn, 4 x86, as c10::QEngine numbers them);
// must come before any conv is packed. Returns 0, or -1 when this LibTorch lacks the engine.
int vgg_int8_engine(int code, char* err, size_t len) {
  return guarded(err, len, [&] {
    auto engine = static_cast<c10::QEngine>(code);
    for (auto supported : at::globalContext().supportedQEngines()) {
      if (supported == engine) {
        at::globalContext().setQEngine(engine);
        return;
      }
    }
    throw std::runtime_error(std::string("this LibTorch has no quantised engine ") +
                             c10::toString(engine));
  });
}

// A new, empty network; null when out of memory.
void* vgg_int8_new() { return new (std::nothrow) Net(); }

void vgg_int8_free(void* net) { delete static_cast<Net*>(net); }

// Appends a 3x3 conv (padding 1) + ReLU: OIHW float weights quantised per output channel
// (symmetric int8, scale max|w|/127, at least PyTorch's floor of float32 epsilon), float
// bias, output quantised with `out_scale`.
int vgg_int8_conv(void* handle, const float* weight, const float* bias, int64_t cout,
                  int64_t cin, double out_scale, char* err, size_t len) {
  return guarded(err, len, [&] {
    auto f32 = at::TensorOptions().dtype(at::kFloat);
    auto w = at::from_blob(const_cast<float*>(weight), {cout, cin, 3, 3}, f32).clone();
    auto b = at::from_blob(const_cast<float*>(bias), {cout}, f32).clone();
    auto scales = w.abs().amax({1, 2, 3}).div(127.0).clamp_min(1.1920928955078125e-07);
    scales = scales.to(at::kDouble);
    auto zeros = at::zeros({cout}, at::TensorOptions().dtype(at::kLong));
    auto qw = at::quantize_per_channel(w, scales, zeros, 0, at::kQInt8);
    static const auto prepack = op("quantized::conv2d_prepack", "");
    torch::jit::Stack stack{qw,
                            c10::optional<at::Tensor>(b),
                            std::vector<int64_t>{1, 1},
                            std::vector<int64_t>{1, 1},
                            std::vector<int64_t>{1, 1},
                            int64_t{1}};
    prepack.callBoxed(&stack);
    static_cast<Net*>(handle)->steps.push_back(Step{false, stack[0], out_scale});
  });
}

// Appends a 2x2 max-pool, stride 2.
int vgg_int8_pool(void* handle, char* err, size_t len) {
  return guarded(err, len, [&] {
    static_cast<Net*>(handle)->steps.push_back(Step{true, c10::IValue(), 0.0});
  });
}

// Runs the first `steps` steps on NCHW floats [n, c, h, w], quantised as uint8 with
// (`in_scale`, `in_zero`), and writes the dequantised NCHW output into `out`, which must
// hold exactly its `out_len` floats.
int vgg_int8_forward(void* handle, const float* input, int64_t n, int64_t c, int64_t h,
                     int64_t w, double in_scale, int64_t in_zero, int64_t steps, float* out,
                     int64_t out_len, char* err, size_t len) {
  return guarded(err, len, [&] {
    const Net& net = *static_cast<Net*>(handle);
    if (steps < 0 || steps > static_cast<int64_t>(net.steps.size())) {
      throw std::runtime_error("the network has " + std::to_string(net.steps.size()) +
                               " steps, not " + std::to_string(steps));
    }
    at::InferenceMode guard;
    auto x = at::from_blob(const_cast<float*>(input), {n, c, h, w},
                           at::TensorOptions().dtype(at::kFloat))
                 .contiguous(at::MemoryFormat::ChannelsLast);
    auto q = at::quantize_per_tensor(x, in_scale, in_zero, at::kQUInt8);
    auto y = at::dequantize(run(net, q, steps)).contiguous();
    if (y.numel() != out_len) {
      throw std::runtime_error("output has " + std::to_string(y.numel()) +
                               " values, the buffer " + std::to_string(out_len));
    }
    std::memcpy(out, y.data_ptr<float>(), sizeof(float) * static_cast<size_t>(out_len));
  });
}

}  // extern "C"
