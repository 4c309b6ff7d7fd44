// The temporal shift of CPU frames as single-call kernels (see tsmnet/shift/native.py).
//
// Frames [N * T, C, H, W], contiguous or channels-last. Channel group p (p < dirs.size()) is
// channels [p * fold, (p + 1) * fold). dirs[p] = +1: frame i takes frame i + 1 of its clip;
// -1: frame i takes i - 1; 0: unshifted. A frame outside the clip reads as zero bytes (0 in
// every dtype). Elements are only moved, never computed, so every dtype takes the same code
// and the numbers are exactly those of the other backends of tsmnet/shift/.
//
// Both layouts are rows of bytes: a frame is `rows` rows of `row` bytes, and in each row a
// group is `group` bytes at offset p * group, the unshifted channels following them.
// Contiguous frames are one row (a group is a block of fold * H * W elements); channels-last
// frames are one row per pixel (a group is fold elements).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace tsmnet {

// shift_copy through the dispatcher (autograd included), so that a gradient taken with
// create_graph=True records it again (double backward); binding.cpp calls it from Python.
at::Tensor call_shift_copy(const at::Tensor& x, int64_t t, int64_t fold, at::IntArrayRef dirs) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("tsmnet::shift_copy", "")
                             .typed<at::Tensor(const at::Tensor&, int64_t, int64_t,
                                               at::IntArrayRef)>();
  return op.call(x, t, fold, dirs);
}

}  // namespace tsmnet

namespace {

using tsmnet::call_shift_copy;

// Bytes moved by one task: large enough that a task costs more than handing it to a thread.
constexpr int64_t kChunk = 64 * 1024;

struct Frames {
  char* data;
  int64_t t, clips;
  int64_t frame, rows, row, group;  // bytes, except rows
  int64_t groups;

  // A task covers rows [r0, r1) and bytes [b0, b1) of each: several whole rows when rows are
  // short (channels-last), byte ranges of a row when it is long (contiguous).
  int64_t rows_per_task() const { return std::max<int64_t>(1, kChunk / row); }
  int64_t row_tasks() const { return (rows + rows_per_task() - 1) / rows_per_task(); }
};

Frames frames_of(const at::Tensor& x, int64_t t, int64_t fold, int64_t groups) {
  TORCH_CHECK(x.device().is_cpu() && x.layout() == at::kStrided && x.dim() == 4 &&
                  !x.is_conj() && !x.is_neg(),
              "tsmnet shift kernels: x must be dense 4-D frames on the CPU, got ", x.sizes(),
              " on ", x.device());
  const bool contiguous = x.is_contiguous();
  TORCH_CHECK(contiguous || x.is_contiguous(at::MemoryFormat::ChannelsLast),
              "tsmnet shift kernels: x must be contiguous or channels-last, got strides ",
              x.strides());
  TORCH_CHECK(t >= 1 && x.size(0) % t == 0, "tsmnet shift kernels: the ", x.size(0),
              " frames of x are not a multiple of num_segments=", t);
  TORCH_CHECK(fold >= 1 && fold * groups <= x.size(1), "tsmnet shift kernels: ", groups,
              " groups of ", fold, " channels do not fit in ", x.size(1), " channels");
  const int64_t es = static_cast<int64_t>(x.element_size()), pixels = x.size(2) * x.size(3);
  const int64_t frame = x.size(1) * pixels * es;
  Frames f{static_cast<char*>(x.data_ptr()), t, x.size(0) / t, frame, 1, frame,
           fold * pixels * es, groups};
  if (!contiguous) {
    f.rows = pixels;
    f.row = x.size(1) * es;
    f.group = fold * es;
  }
  return f;
}

void check_dirs(at::IntArrayRef dirs) {
  for (int64_t d : dirs)
    TORCH_CHECK(d >= -1 && d <= 1, "tsmnet shift kernels: a direction must be -1, 0 or 1, got ", d);
}

// Runs body(begin, end) over [0, items), on several threads only when there is enough to move.
template <typename F>
void run(int64_t items, int64_t bytes, const F& body) {
  if (items > 0) at::parallel_for(0, items, bytes < 2 * kChunk ? items : 1, body);
}

// out = shift(x), each output byte written once, copied from the frame its group reads or
// zeroed. Tasks: (frame, rows chunk, bytes chunk).
at::Tensor shift_copy(const at::Tensor& x, int64_t t, int64_t fold, at::IntArrayRef dirs) {
  check_dirs(dirs);
  const Frames in = frames_of(x, t, fold, static_cast<int64_t>(dirs.size()));
  at::Tensor out = at::empty_like(x);
  if (x.numel() == 0) return out;
  char* dst = static_cast<char*>(out.data_ptr());
  const int64_t n = x.size(0), row_tasks = in.row_tasks();
  const int64_t byte_tasks = (in.row + kChunk - 1) / kChunk;
  const int64_t per_frame = row_tasks * byte_tasks, shifted_end = in.groups * in.group;
  run(n * per_frame, n * in.frame, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t f = i / per_frame, ti = f % t, task = i % per_frame;
      const int64_t r0 = task / byte_tasks * in.rows_per_task();
      const int64_t r1 = std::min(in.rows, r0 + in.rows_per_task());
      const int64_t b0 = task % byte_tasks * kChunk, b1 = std::min(in.row, b0 + kChunk);
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t at_row = f * in.frame + r * in.row;
        for (int64_t lo = b0; lo < b1;) {
          const int64_t p = lo < shifted_end ? lo / in.group : in.groups;
          const int64_t hi = std::min(b1, p < in.groups ? (p + 1) * in.group : in.row);
          const int64_t from = p < in.groups ? ti + dirs[p] : ti;
          if (from < 0 || from >= t)
            std::memset(dst + at_row + lo, 0, hi - lo);
          else
            std::memcpy(dst + at_row + lo, in.data + at_row + (from - ti) * in.frame + lo,
                        hi - lo);
          lo = hi;
        }
      }
    }
  });
  return out;
}

// Moves every shifted group one frame along time inside x, or (undo) moves it back. Per clip
// and group the frames are walked in the order that reads each frame before it is written,
// so no copy of the group is needed: only the one frame the move drops is kept, in `edges`
// (per clip and group, the group's bytes of one frame), and the undo writes it back. Rows
// and byte ranges of a group are independent, which is what the threads share.
void move(const Frames& x, at::IntArrayRef dirs, char* edges, bool undo) {
  const int64_t per_group = x.rows * x.group;  // bytes of a group in one frame
  if (per_group == 0 || x.clips == 0) return;
  const int64_t row_tasks = x.row_tasks();
  const int64_t byte_tasks = (x.group + kChunk - 1) / kChunk;
  const int64_t per_clip_group = row_tasks * byte_tasks;
  run(x.clips * x.groups * per_clip_group, x.clips * x.groups * per_group,
      [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t c = i / (x.groups * per_clip_group), p = i / per_clip_group % x.groups;
      const int64_t task = i % per_clip_group;
      if (dirs[p] == 0) continue;
      const int64_t r0 = task / byte_tasks * x.rows_per_task();
      const int64_t r1 = std::min(x.rows, r0 + x.rows_per_task());
      const int64_t b0 = task % byte_tasks * kChunk, len = std::min(kChunk, x.group - b0);
      char* first = x.data + c * x.t * x.frame + p * x.group + b0;
      const auto at = [&](int64_t ti, int64_t r) { return first + ti * x.frame + r * x.row; };
      char* edge = edges ? edges + (c * x.groups + p) * per_group + b0 : nullptr;
      // up: frame i takes frame i + 1, walking i upward; otherwise frame i takes i - 1
      const bool up = (dirs[p] > 0) != undo;
      const int64_t dropped = up ? 0 : x.t - 1, filled = up ? x.t - 1 : 0;
      // Frame by frame, each a run of rows in memory order (prefetch-friendly when a row
      // holds a pixel's channels and a group is a few of them).
      if (!undo && edge)
        for (int64_t r = r0; r < r1; ++r) std::memcpy(edge + r * x.group, at(dropped, r), len);
      for (int64_t k = 0; k + 1 < x.t; ++k) {
        const int64_t to = up ? k : x.t - 1 - k, from = up ? k + 1 : x.t - 2 - k;
        for (int64_t r = r0; r < r1; ++r) std::memcpy(at(to, r), at(from, r), len);
      }
      for (int64_t r = r0; r < r1; ++r) {
        if (undo)
          std::memcpy(at(filled, r), edge + r * x.group, len);
        else
          std::memset(at(filled, r), 0, len);
      }
    }
  });
}

// Shifts x in place. With keep, returns the frames the shift dropped, which unshift_ needs;
// otherwise an empty tensor (for a tensor that stays shifted, like a gradient).
at::Tensor shift_(at::Tensor x, int64_t t, int64_t fold, at::IntArrayRef dirs, bool keep) {
  check_dirs(dirs);
  const Frames f = frames_of(x, t, fold, static_cast<int64_t>(dirs.size()));
  const int64_t per_group = f.rows * f.group / static_cast<int64_t>(x.element_size());
  at::Tensor edges = at::empty({keep ? f.clips * f.groups * per_group : 0}, x.options());
  move(f, dirs, keep ? static_cast<char*>(edges.data_ptr()) : nullptr, false);
  return edges;
}

// Undoes shift_(x, t, fold, dirs, keep=true), given the edges it returned: x comes back bit
// for bit.
void unshift_(at::Tensor x, int64_t t, int64_t fold, at::IntArrayRef dirs,
              const at::Tensor& edges) {
  check_dirs(dirs);
  const Frames f = frames_of(x, t, fold, static_cast<int64_t>(dirs.size()));
  TORCH_CHECK(edges.is_contiguous() && edges.dtype() == x.dtype() &&
                  edges.numel() * static_cast<int64_t>(edges.element_size()) ==
                      f.clips * f.groups * f.rows * f.group,
              "tsmnet shift kernels: edges do not come from shift_ of this x");
  move(f, dirs, static_cast<char*>(edges.data_ptr()), true);
}

// x if contiguous or channels-last, else a contiguous copy (a gradient may come expanded).
at::Tensor dense(const at::Tensor& x) {
  return x.is_contiguous() || x.is_contiguous(at::MemoryFormat::ChannelsLast) ? x
                                                                              : x.contiguous();
}

// The gradient of a shift is the opposite shift (directions negated), of the gradient made
// dense if it comes expanded or strided; nothing is saved. In C++ so that an eager shift
// under autograd costs one op call, not a Python autograd.Function (torch.func transforms,
// which need a vmap rule and a jvp, take the Python one: tsmnet/shift/autograd.py).
class ShiftCopyFunction : public torch::autograd::Function<ShiftCopyFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            int64_t t, int64_t fold, at::IntArrayRef dirs) {
    std::vector<int64_t> back(dirs.begin(), dirs.end());
    for (int64_t& d : back) d = -d;
    ctx->saved_data["t"] = t;
    ctx->saved_data["fold"] = fold;
    ctx->saved_data["back"] = back;
    at::AutoDispatchBelowADInplaceOrView below;
    return call_shift_copy(x, t, fold, dirs);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const at::Tensor grad = dense(grads[0]);
    const std::vector<int64_t> back = ctx->saved_data["back"].toIntVector();
    return {call_shift_copy(grad, ctx->saved_data["t"].toInt(), ctx->saved_data["fold"].toInt(),
                            back),
            at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor shift_copy_autograd(const at::Tensor& x, int64_t t, int64_t fold,
                               at::IntArrayRef dirs) {
  // Forward-mode AD (torch.autograd.forward_ad, whose one level is 0): the tangent is shifted
  // the same way. A C++ autograd::Function has no jvp: it gets the primal, a view of x
  // without the tangent that backward mode still differentiates through.
  const at::Tensor& tangent = x._fw_grad(/*level=*/0);
  const at::Tensor primal = tangent.defined() ? x._fw_primal(/*level=*/0) : x;
  at::Tensor out;
  if (at::GradMode::is_enabled() && x.requires_grad()) {
    out = ShiftCopyFunction::apply(primal, t, fold, dirs);
  } else {
    at::AutoDispatchBelowADInplaceOrView below;  // no graph to record: straight to the kernel
    out = call_shift_copy(primal, t, fold, dirs);
  }
  if (tangent.defined())
    out._set_fw_grad(call_shift_copy(dense(tangent), t, fold, dirs), /*level=*/0,
                     /*is_inplace_op=*/false);
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(tsmnet, m) {
  m.def("shift_copy(Tensor x, int t, int fold, int[] dirs) -> Tensor");
  m.def("shift_(Tensor(a!) x, int t, int fold, int[] dirs, bool keep) -> Tensor");
  m.def("unshift_(Tensor(a!) x, int t, int fold, int[] dirs, Tensor edges) -> ()");
}

TORCH_LIBRARY_IMPL(tsmnet, CPU, m) {
  m.impl("shift_copy", &shift_copy);
  m.impl("shift_", &shift_);
  m.impl("unshift_", &unshift_);
}

TORCH_LIBRARY_IMPL(tsmnet, Autograd, m) { m.impl("shift_copy", &shift_copy_autograd); }
