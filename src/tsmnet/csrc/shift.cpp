// The temporal shift of contiguous CPU frames as single-call kernels (see tsmnet/native.py).
//
// Frames [N * T, C, H, W], contiguous: in every frame, channel group p (p < dirs.size()) is
// the block of channels [p * fold, (p + 1) * fold), one contiguous run of fold * H * W
// elements. dirs[p] = +1: frame i takes frame i + 1 of its clip; -1: frame i takes i - 1; 0:
// unshifted. A frame outside the clip reads as zero bytes (0 in every dtype). Elements are
// only moved, never computed, so every dtype takes the same code and the numbers are exactly
// those of the PyTorch ops in tsmnet/ops.py.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace {

// Bytes moved by one task: large enough that a task costs more than handing it to a thread.
constexpr int64_t kChunk = 64 * 1024;

struct Frames {
  char* data;
  int64_t t, clips, frame, block;  // frame and block in bytes
};

Frames frames_of(const at::Tensor& x, int64_t t, int64_t fold, int64_t groups) {
  TORCH_CHECK(x.device().is_cpu() && x.layout() == at::kStrided && x.dim() == 4 &&
                  x.is_contiguous() && !x.is_conj() && !x.is_neg(),
              "tsmnet shift kernels: x must be contiguous dense 4-D frames on the CPU, got ",
              x.sizes(), " on ", x.device());
  TORCH_CHECK(t >= 1 && x.size(0) % t == 0, "tsmnet shift kernels: the ", x.size(0),
              " frames of x are not a multiple of num_segments=", t);
  TORCH_CHECK(fold >= 1 && fold * groups <= x.size(1), "tsmnet shift kernels: ", groups,
              " groups of ", fold, " channels do not fit in ", x.size(1), " channels");
  const int64_t plane = x.size(2) * x.size(3) * static_cast<int64_t>(x.element_size());
  return {static_cast<char*>(x.data_ptr()), t, x.size(0) / t, x.size(1) * plane, fold * plane};
}

void check_dirs(const std::vector<int64_t>& dirs) {
  for (int64_t d : dirs)
    TORCH_CHECK(d >= -1 && d <= 1, "tsmnet shift kernels: a direction must be -1, 0 or 1, got ", d);
}

// Runs body(begin, end) over [0, items), on several threads only when there is enough to move.
template <typename F>
void run(int64_t items, int64_t bytes, const F& body) {
  at::parallel_for(0, items, bytes < 2 * kChunk ? items : 1, body);
}

// out = shift(x), each output byte written once: the frames cut into chunks of kChunk bytes,
// each chunk copied from the frame its channel group reads, or zeroed.
at::Tensor shift_copy(const at::Tensor& x, int64_t t, int64_t fold, std::vector<int64_t> dirs) {
  check_dirs(dirs);
  const int64_t groups = static_cast<int64_t>(dirs.size());
  const Frames in = frames_of(x, t, fold, groups);
  at::Tensor out = at::empty_like(x);
  if (x.numel() == 0) return out;
  char* dst = static_cast<char*>(out.data_ptr());
  const int64_t n = x.size(0), chunks = (in.frame + kChunk - 1) / kChunk;
  const int64_t shifted_end = groups * in.block;
  run(n * chunks, n * in.frame, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t f = i / chunks, ti = f % t;
      int64_t lo = (i % chunks) * kChunk;
      const int64_t hi = std::min(in.frame, lo + kChunk);
      while (lo < hi) {
        const int64_t p = lo < shifted_end ? lo / in.block : groups;
        const int64_t stop = std::min(hi, p < groups ? (p + 1) * in.block : in.frame);
        const int64_t from = p < groups ? ti + dirs[p] : ti;
        if (from < 0 || from >= t)
          std::memset(dst + f * in.frame + lo, 0, stop - lo);
        else
          std::memcpy(dst + f * in.frame + lo, in.data + (f - ti + from) * in.frame + lo, stop - lo);
        lo = stop;
      }
    }
  });
  return out;
}

// Moves every shifted group one frame along time inside x, or (undo) moves it back. Per clip
// and group the frames are walked in the order that reads each frame before it is written,
// so no copy of the group is needed: only the one frame the move drops is kept, in `edges`
// ([clips, groups, fold * H * W]), and the undo writes it back. Chunks of a group are
// independent, which is what the threads share.
void move(const Frames& x, const std::vector<int64_t>& dirs, char* edges, bool undo) {
  if (x.block == 0 || x.clips == 0) return;
  const int64_t groups = static_cast<int64_t>(dirs.size());
  const int64_t chunks = (x.block + kChunk - 1) / kChunk;
  run(x.clips * groups * chunks, x.clips * groups * x.block, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t c = i / (groups * chunks), p = i / chunks % groups, k = i % chunks;
      if (dirs[p] == 0) continue;
      const int64_t off = k * kChunk, len = std::min(kChunk, x.block - off);
      char* first = x.data + c * x.t * x.frame + p * x.block + off;
      const auto at = [&](int64_t ti) { return first + ti * x.frame; };
      char* edge = edges ? edges + (c * groups + p) * x.block + off : nullptr;
      // up: frame i takes frame i + 1, walking i upward; otherwise frame i takes i - 1
      const bool up = (dirs[p] > 0) != undo;
      const int64_t dropped = up ? 0 : x.t - 1, filled = up ? x.t - 1 : 0;
      if (!undo && edge) std::memcpy(edge, at(dropped), len);
      if (up)
        for (int64_t ti = 0; ti + 1 < x.t; ++ti) std::memcpy(at(ti), at(ti + 1), len);
      else
        for (int64_t ti = x.t - 1; ti > 0; --ti) std::memcpy(at(ti), at(ti - 1), len);
      if (undo)
        std::memcpy(at(filled), edge, len);
      else
        std::memset(at(filled), 0, len);
    }
  });
}

// Shifts x in place. With keep, returns the frames the shift dropped, which unshift_ needs;
// otherwise an empty tensor (for a tensor that stays shifted, like a gradient).
at::Tensor shift_(at::Tensor x, int64_t t, int64_t fold, std::vector<int64_t> dirs, bool keep) {
  check_dirs(dirs);
  const int64_t groups = static_cast<int64_t>(dirs.size());
  const Frames f = frames_of(x, t, fold, groups);
  at::Tensor edges = at::empty({keep ? f.clips * groups * fold * x.size(2) * x.size(3) : 0},
                               x.options());
  move(f, dirs, keep ? static_cast<char*>(edges.data_ptr()) : nullptr, false);
  return edges;
}

// Undoes shift_(x, t, fold, dirs, keep=true), given the edges it returned: x comes back bit
// for bit.
void unshift_(at::Tensor x, int64_t t, int64_t fold, std::vector<int64_t> dirs,
              const at::Tensor& edges) {
  check_dirs(dirs);
  const int64_t groups = static_cast<int64_t>(dirs.size());
  const Frames f = frames_of(x, t, fold, groups);
  TORCH_CHECK(edges.is_contiguous() && edges.dtype() == x.dtype() &&
                  edges.numel() * static_cast<int64_t>(edges.element_size()) ==
                      f.clips * groups * f.block,
              "tsmnet shift kernels: edges do not come from shift_ of this x");
  move(f, dirs, static_cast<char*>(edges.data_ptr()), true);
}

}  // namespace

TORCH_LIBRARY(tsmnet, m) {
  m.def("shift_copy(Tensor x, int t, int fold, int[] dirs) -> Tensor");
  m.def("shift_(Tensor(a!) x, int t, int fold, int[] dirs, bool keep) -> Tensor");
  m.def("unshift_(Tensor(a!) x, int t, int fold, int[] dirs, Tensor edges) -> ()");
}

TORCH_LIBRARY_IMPL(tsmnet, CPU, m) {
  m.impl("shift_copy", &shift_copy);
  m.impl("shift_", &shift_);
  m.impl("unshift_", &unshift_);
}
