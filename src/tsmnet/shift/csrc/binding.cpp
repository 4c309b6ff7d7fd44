// A Python function for tsmnet::shift_copy (shift.cpp) that calls it through the dispatcher
// like any op (autograd, dispatch modes, the profiler all see it) without torch.ops' boxed
// call from Python, which matches the arguments against the schema: about 1 us a call, as
// much again as x.clone() costs in all on a small tensor. Python-level __torch_function__
// (modes, tensor subclasses) is not seen from here: tsmnet/shift/native.py calls this only
// where there is none.
#include <torch/csrc/utils/pybind.h>

namespace tsmnet {
// defined in shift.cpp: the op called through the dispatcher
at::Tensor call_shift_copy(const at::Tensor& x, int64_t t, int64_t fold, at::IntArrayRef dirs);
}  // namespace tsmnet

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("shift_copy", &tsmnet::call_shift_copy,
        "tsmnet::shift_copy(x, t, fold, dirs), called directly");
}
