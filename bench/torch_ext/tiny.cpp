// A minimal PyTorch C++ extension, the baseline of the warm-cache benchmark (row 8 of
// docs/benchmarks.md): `torch.utils.cpp_extension.load` of this unchanged file in a new process,
// after one build into target/bench/torch_ext, against `simgrad.build` of an unchanged spec.
#include <torch/extension.h>

torch::Tensor scale(const torch::Tensor &x, double a) { return x * a; }

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("scale", &scale, "x * a"); }
