// The LLTM cell as a PyTorch C++ extension whose backward pass comes from Enzyme.
//
// The kernel is plain C++ (../lltm.cpp), compiled by simgrad through clang + Enzyme into a shared
// library with primal, JVP and VJP entry points. This extension only moves torch tensors across
// libsimgrad's C ABI (include/simgrad.h): every tensor becomes a `simgrad_tensor` descriptor that
// points at the tensor's own memory (no copy), the sizes B, F and S travel as rank-0 int64
// descriptors, and libsimgrad checks every dtype, shape and layout against the library's manifest
// before anything runs. Nothing here knows a derivative.
//
// Python API (module name: TORCH_EXTENSION_NAME, set by setup.py or torch.utils.cpp_extension.load):
//   init(lib_path, variant="auto")  open the kernel library (again: replaces the previous one);
//                                   variant "auto" | "portable" | "avx2" picks the kernels
//                                   (auto: AVX2 + FMA when the CPU has it)
//   kernel_names() -> [str, str]    the kernels in use for float64 and float32
//   build(spec_path) -> lib_path    build (or find in simgrad's cache) the library of a spec
//   forward(input, weights, bias, old_h, old_cell) -> [new_h, new_cell]
//   backward(grad_h, grad_cell, input, weights, bias, old_h, old_cell, needs=None)
//       -> [d_input, d_weights, d_bias, d_old_h, d_old_cell]   (None where needs[i] is False)
//   jvp(input, weights, bias, old_h, old_cell, t_input, t_weights, t_bias, t_old_h, t_old_cell)
//       -> [new_h, new_cell, t_new_h, t_new_cell]               (tangent None = zero)
//   library_path() -> str, manifest() -> str
//
// Tensors must be CPU, float32 or float64 (all of one dtype). Contiguous tensors are passed with
// zero copies; others are made contiguous first (`Tensor::contiguous`, a copy only then). The GIL is
// released while a kernel runs, so Python threads (and DataLoader workers) keep going.
#include <torch/extension.h>

#include <simgrad.h>

#include <array>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace {

constexpr std::size_t kNargs = 10;  // B, F, S, input, weights, bias, old_h, old_cell, new_h, new_cell
constexpr std::size_t kFirstArray = 3;
constexpr std::size_t kNewH = 8, kNewCell = 9;

[[noreturn]] void fail(const char *what, simgrad_status status) {
    throw std::runtime_error(std::string(what) + " failed (" +
                             simgrad_status_name(static_cast<std::uint32_t>(status)) +
                             "): " + simgrad_last_error_message());
}

void check(simgrad_status status, const char *what) {
    if (status != SIMGRAD_OK) fail(what, status);
}

// Whether this CPU can run the kernels of a variant: "portable" (any) or "avx2" (AVX2 + FMA).
bool cpu_supports(const std::string &variant) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (variant == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return variant == "portable";
}

// The kernel suffix of a variant ("" for portable). "auto": the widest variant that both the CPU
// and the library have.
std::string pick_variant(simgrad_library *lib, const std::string &variant) {
    if (variant != "auto" && variant != "portable" && variant != "avx2")
        throw std::invalid_argument("LLTM init: variant must be 'auto', 'portable' or 'avx2', not '" +
                                    variant + "'");
    if (variant != "auto") {
        if (!cpu_supports(variant))
            throw std::invalid_argument("LLTM init: this CPU cannot run the '" + variant + "' kernels");
        return variant;
    }
    for (const char *v : {"avx2"}) {
        if (!cpu_supports(v)) continue;
        simgrad_kernel *probe = nullptr;
        const std::string name = std::string("lltm_f32_") + v;
        const bool has = simgrad_library_kernel(lib, name.c_str(), &probe) == SIMGRAD_OK;
        simgrad_kernel_free(probe);
        if (has) return v;
    }
    return "portable";
}

// An open library and the kernels used for float64 and float32. The library has portable kernels
// (lltm_f64, lltm_f32) and, on x86-64, kernels compiled for AVX2 + FMA (lltm_f64_avx2, ...).
// `variant` picks: "auto" (AVX2 when the CPU and the library have it), "portable" or "avx2".
// Handles are
// thread-safe (see simgrad.h); replacing the library while a call runs is prevented by the
// shared_ptr each call holds.
struct Library {
    simgrad_library *lib = nullptr;
    simgrad_kernel *f64 = nullptr;
    simgrad_kernel *f32 = nullptr;
    std::string path, f64_name, f32_name;

    Library(const std::string &p, const std::string &variant) : path(p) {
        check(simgrad_library_open(p.c_str(), &lib), "simgrad_library_open");
        try {
            const std::string v = pick_variant(lib, variant);
            const std::string suffix = v == "portable" ? "" : "_" + v;
            f64_name = "lltm_f64" + suffix;
            f32_name = "lltm_f32" + suffix;
            check(simgrad_library_kernel(lib, f64_name.c_str(), &f64), "simgrad_library_kernel");
            check(simgrad_library_kernel(lib, f32_name.c_str(), &f32), "simgrad_library_kernel");
        } catch (...) {
            release();
            throw;
        }
    }
    ~Library() { release(); }
    Library(const Library &) = delete;
    Library &operator=(const Library &) = delete;

    void release() {
        simgrad_kernel_free(f64);
        simgrad_kernel_free(f32);
        simgrad_library_free(lib);
        f64 = f32 = nullptr;
        lib = nullptr;
    }

    const simgrad_kernel *kernel(at::ScalarType t) const {
        return t == at::kDouble ? f64 : f32;
    }
};

std::mutex g_mutex;
std::shared_ptr<Library> g_library;

std::shared_ptr<Library> library() {
    std::lock_guard<std::mutex> lock(g_mutex);
    TORCH_CHECK(g_library, "the LLTM kernel library is not loaded; call init(lib_path) first");
    return g_library;
}

void init(const std::string &lib_path, const std::string &variant) {
    auto lib = std::make_shared<Library>(lib_path, variant);
    std::lock_guard<std::mutex> lock(g_mutex);
    g_library = std::move(lib);
}

std::string build(const std::string &spec_path) {
    // One call with a generous buffer; a second (served from simgrad's cache) only if too small.
    std::string path(4096, '\0');
    std::size_t needed = 0;
    simgrad_status s;
    {
        pybind11::gil_scoped_release nogil;  // a first build takes a while
        s = simgrad_build_path(spec_path.c_str(), nullptr, path.data(), path.size(), &needed);
        if (s == SIMGRAD_ERR_BUFFER_TOO_SMALL) {
            path.assign(needed, '\0');
            s = simgrad_build_path(spec_path.c_str(), nullptr, path.data(), path.size(), &needed);
        }
    }
    check(s, "simgrad_build_path");
    path.resize(needed > 0 ? needed - 1 : 0);  // drop the NUL
    return path;
}

// A descriptor of a tensor's memory: data, dtype and shape point into the tensor itself; strides
// are NULL (compact row-major), which `prepare` guarantees.
simgrad_tensor describe(const at::Tensor &t) {
    simgrad_tensor d{};
    d.data = t.data_ptr();
    d.device.device_type = SIMGRAD_DEVICE_CPU;
    d.device.device_id = 0;
    d.ndim = static_cast<std::int32_t>(t.dim());
    d.dtype.code = SIMGRAD_DTYPE_CODE_FLOAT;
    d.dtype.bits = static_cast<std::uint8_t>(t.element_size() * 8);
    d.dtype.lanes = 1;
    // simgrad only reads the shape during the call; the tensor owns it.
    d.shape = const_cast<std::int64_t *>(t.sizes().data());
    d.strides = nullptr;
    d.byte_offset = 0;
    return d;
}

// A rank-0 int64 descriptor of a size.
simgrad_tensor describe_size(std::int64_t *value) {
    simgrad_tensor d{};
    d.data = value;
    d.device.device_type = SIMGRAD_DEVICE_CPU;
    d.ndim = 0;
    d.dtype.code = SIMGRAD_DTYPE_CODE_INT;
    d.dtype.bits = 64;
    d.dtype.lanes = 1;
    return d;
}

at::Tensor prepare(const at::Tensor &t, const char *name, at::ScalarType dtype) {
    TORCH_CHECK(t.defined(), "LLTM: `", name, "` is undefined");
    TORCH_CHECK(t.device().is_cpu(), "LLTM: `", name, "` must be a CPU tensor, got ", t.device());
    TORCH_CHECK(t.scalar_type() == dtype, "LLTM: `", name, "` has dtype ", t.scalar_type(),
                " but `input` has ", dtype, "; all tensors must share one dtype");
    return t.contiguous();  // the same tensor (no copy) when it already is contiguous
}

// The ten call arguments (sizes first) for the given tensors. Shapes are checked by libsimgrad
// against the manifest (input[B,F], weights[3S,S+F], bias[3S], old_h/old_cell/new_*[B,S]); its
// message names the argument and the expected versus actual shape.
struct Call {
    std::array<std::int64_t, 3> sizes{};  // B, F, S
    std::array<at::Tensor, kNargs> tensors;
    std::array<simgrad_tensor, kNargs> args{};
    at::ScalarType dtype;

    Call(const at::Tensor &input, const at::Tensor &weights, const at::Tensor &bias,
         const at::Tensor &old_h, const at::Tensor &old_cell) {
        TORCH_CHECK(input.defined() && input.dim() == 2, "LLTM: `input` must be a 2-D [B, F] tensor");
        TORCH_CHECK(old_h.defined() && old_h.dim() == 2, "LLTM: `old_h` must be a 2-D [B, S] tensor");
        dtype = input.scalar_type();
        TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble,
                    "LLTM: tensors must be float32 or float64, got ", dtype);
        sizes = {input.size(0), input.size(1), old_h.size(1)};
        tensors[3] = prepare(input, "input", dtype);
        tensors[4] = prepare(weights, "weights", dtype);
        tensors[5] = prepare(bias, "bias", dtype);
        tensors[6] = prepare(old_h, "old_h", dtype);
        tensors[7] = prepare(old_cell, "old_cell", dtype);
        const auto opts = input.options().memory_format(at::MemoryFormat::Contiguous);
        tensors[kNewH] = at::empty({sizes[0], sizes[2]}, opts);
        tensors[kNewCell] = at::empty({sizes[0], sizes[2]}, opts);
        for (std::size_t i = 0; i < 3; i++) args[i] = describe_size(&sizes[i]);
        for (std::size_t i = kFirstArray; i < kNargs; i++) args[i] = describe(tensors[i]);
    }
};

// An all-absent list of tangents or cotangents (data NULL = absent).
std::array<simgrad_tensor, kNargs> absent() {
    std::array<simgrad_tensor, kNargs> list{};
    return list;
}

std::vector<at::Tensor> forward(const at::Tensor &input, const at::Tensor &weights,
                                const at::Tensor &bias, const at::Tensor &old_h,
                                const at::Tensor &old_cell) {
    auto lib = library();
    Call c(input, weights, bias, old_h, old_cell);
    simgrad_status s;
    {
        pybind11::gil_scoped_release nogil;
        s = simgrad_kernel_call(lib->kernel(c.dtype), c.args.data(), kNargs);
    }
    check(s, "simgrad_kernel_call");
    return {c.tensors[kNewH], c.tensors[kNewCell]};
}

// Reverse mode: the cotangents of new_h and new_cell in, the cotangents of the five inputs out.
// `needs` (optional, five booleans like ctx.needs_input_grad) skips the ones nobody wants: they
// are passed to libsimgrad as absent and come back as None.
std::vector<std::optional<at::Tensor>> backward(
    const at::Tensor &grad_h, const at::Tensor &grad_cell, const at::Tensor &input,
    const at::Tensor &weights, const at::Tensor &bias, const at::Tensor &old_h,
    const at::Tensor &old_cell, std::optional<std::vector<bool>> needs) {
    auto lib = library();
    // new_h and new_cell are arguments of the call, but a VJP neither reads nor writes them (it
    // recomputes the outputs in scratch memory); libsimgrad still checks them, so they are
    // allocated (uninitialised, B*S elements each).
    Call c(input, weights, bias, old_h, old_cell);
    std::array<at::Tensor, kNargs> seeds;
    seeds[kNewH] = prepare(grad_h, "grad_h", c.dtype);
    seeds[kNewCell] = prepare(grad_cell, "grad_cell", c.dtype);
    auto cot_in = absent();
    cot_in[kNewH] = describe(seeds[kNewH]);
    cot_in[kNewCell] = describe(seeds[kNewCell]);

    std::vector<bool> want = needs.value_or(std::vector<bool>(5, true));
    TORCH_CHECK(want.size() == 5, "LLTM backward: `needs` must have 5 entries, got ", want.size());
    std::array<at::Tensor, kNargs> grads;
    auto cot_out = absent();
    for (std::size_t i = 0; i < 5; i++) {
        if (!want[i]) continue;
        const std::size_t a = kFirstArray + i;
        grads[a] = at::empty_like(c.tensors[a], at::MemoryFormat::Contiguous);  // overwritten
        cot_out[a] = describe(grads[a]);
    }
    simgrad_status s;
    {
        pybind11::gil_scoped_release nogil;
        s = simgrad_kernel_vjp(lib->kernel(c.dtype), c.args.data(), kNargs, cot_in.data(),
                               cot_out.data(), 0);
    }
    check(s, "simgrad_kernel_vjp");
    std::vector<std::optional<at::Tensor>> out;
    for (std::size_t i = 0; i < 5; i++) {
        const std::size_t a = kFirstArray + i;
        if (grads[a].defined()) out.emplace_back(grads[a]); else out.emplace_back(std::nullopt);
    }
    return out;
}

// Forward mode: outputs and their tangents given the tangents of the inputs (None = zero).
std::vector<at::Tensor> jvp(const at::Tensor &input, const at::Tensor &weights,
                            const at::Tensor &bias, const at::Tensor &old_h,
                            const at::Tensor &old_cell, const std::optional<at::Tensor> &t_input,
                            const std::optional<at::Tensor> &t_weights,
                            const std::optional<at::Tensor> &t_bias,
                            const std::optional<at::Tensor> &t_old_h,
                            const std::optional<at::Tensor> &t_old_cell) {
    auto lib = library();
    Call c(input, weights, bias, old_h, old_cell);
    const std::array<const std::optional<at::Tensor> *, 5> tin{&t_input, &t_weights, &t_bias,
                                                              &t_old_h, &t_old_cell};
    static const char *names[5] = {"t_input", "t_weights", "t_bias", "t_old_h", "t_old_cell"};
    std::array<at::Tensor, kNargs> tangents;
    auto t_in = absent();
    for (std::size_t i = 0; i < 5; i++) {
        if (!tin[i]->has_value() || !(*tin[i])->defined()) continue;
        const std::size_t a = kFirstArray + i;
        tangents[a] = prepare(**tin[i], names[i], c.dtype);
        t_in[a] = describe(tangents[a]);
    }
    auto t_out = absent();
    at::Tensor th = at::empty_like(c.tensors[kNewH]), tc = at::empty_like(c.tensors[kNewCell]);
    t_out[kNewH] = describe(th);
    t_out[kNewCell] = describe(tc);
    simgrad_status s;
    {
        pybind11::gil_scoped_release nogil;
        s = simgrad_kernel_jvp(lib->kernel(c.dtype), c.args.data(), kNargs, t_in.data(), t_out.data());
    }
    check(s, "simgrad_kernel_jvp");
    return {c.tensors[kNewH], c.tensors[kNewCell], th, tc};
}

std::string library_path() { return library()->path; }

std::vector<std::string> kernel_names() {
    auto lib = library();
    return {lib->f64_name, lib->f32_name};
}

std::string manifest() {
    auto lib = library();
    const char *json = nullptr;
    check(simgrad_library_manifest(lib->lib, &json), "simgrad_library_manifest");
    return json;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "LLTM cell: plain C++ kernel differentiated by Enzyme, called through libsimgrad";
    m.def("init", &init, "Open the LLTM kernel library (built from examples-cpp/lltm/simgrad.toml)",
          pybind11::arg("lib_path"), pybind11::arg("variant") = "auto");
    m.def("build", &build, "Build (or find in the cache) the library of a spec; returns its path",
          pybind11::arg("spec_path"));
    m.def("forward", &forward, "LLTM forward (primal kernel)", pybind11::arg("input"),
          pybind11::arg("weights"), pybind11::arg("bias"), pybind11::arg("old_h"),
          pybind11::arg("old_cell"));
    m.def("backward", &backward, "LLTM backward (Enzyme VJP)", pybind11::arg("grad_h"),
          pybind11::arg("grad_cell"), pybind11::arg("input"), pybind11::arg("weights"),
          pybind11::arg("bias"), pybind11::arg("old_h"), pybind11::arg("old_cell"),
          pybind11::arg("needs") = pybind11::none());
    m.def("jvp", &jvp, "LLTM forward mode (Enzyme JVP)", pybind11::arg("input"),
          pybind11::arg("weights"), pybind11::arg("bias"), pybind11::arg("old_h"),
          pybind11::arg("old_cell"), pybind11::arg("t_input") = pybind11::none(),
          pybind11::arg("t_weights") = pybind11::none(), pybind11::arg("t_bias") = pybind11::none(),
          pybind11::arg("t_old_h") = pybind11::none(), pybind11::arg("t_old_cell") = pybind11::none());
    m.def("library_path", &library_path, "Path of the loaded kernel library");
    m.def("kernel_names", &kernel_names, "The kernels in use: [float64 kernel, float32 kernel]");
    m.def("manifest", &manifest, "The loaded library's manifest (JSON)");
}
