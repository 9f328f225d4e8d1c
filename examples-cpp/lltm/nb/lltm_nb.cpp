// The LLTM kernels bound with nanobind for NumPy: the same library, the same C ABI (simgrad.h),
// no PyTorch. Arrays arrive as `nb::ndarray` views (C-contiguous, CPU, float32 or float64, checked
// by nanobind before the call; a float64 array selects the float64 overload, float32 the float32
// one, and nothing is converted or copied) and go to libsimgrad as `simgrad_tensor` descriptors
// pointing at the arrays' own memory. Results are new NumPy arrays that own their buffers.
//
//   init(lib_path, variant="auto")  open the kernel library ("auto" | "portable" | "avx2")
//   forward(input, weights, bias, old_h, old_cell) -> (new_h, new_cell)
//   backward(grad_h, grad_cell, input, weights, bias, old_h, old_cell)
//       -> (d_input, d_weights, d_bias, d_old_h, d_old_cell)
//   kernel_names() -> (str, str)
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/pair.h>

#include <simgrad.h>

#include <array>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

namespace nb = nanobind;

namespace {

void check(simgrad_status status, const char *what) {
    if (status != SIMGRAD_OK)
        throw std::runtime_error(std::string(what) + " failed (" +
                                 simgrad_status_name(static_cast<std::uint32_t>(status)) +
                                 "): " + simgrad_last_error_message());
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

struct Library {
    simgrad_library *lib = nullptr;
    simgrad_kernel *f64 = nullptr, *f32 = nullptr;
    std::string f64_name, f32_name;

    Library(const std::string &path, const std::string &variant) {
        check(simgrad_library_open(path.c_str(), &lib), "simgrad_library_open");
        simgrad_status s = SIMGRAD_OK;
        try {
            const std::string v = pick_variant(lib, variant);
            const std::string suffix = v == "portable" ? "" : "_" + v;
            f64_name = "lltm_f64" + suffix;
            f32_name = "lltm_f32" + suffix;
            s = simgrad_library_kernel(lib, f64_name.c_str(), &f64);
            if (s == SIMGRAD_OK) s = simgrad_library_kernel(lib, f32_name.c_str(), &f32);
        } catch (...) {
            release();
            throw;
        }
        if (s != SIMGRAD_OK) {
            release();
            check(s, "simgrad_library_kernel");
        }
    }
    ~Library() { release(); }
    void release() {
        simgrad_kernel_free(f64);
        simgrad_kernel_free(f32);
        simgrad_library_free(lib);
        f64 = f32 = nullptr;
        lib = nullptr;
    }
};

std::shared_ptr<Library> g_library;  // guarded by the GIL

std::shared_ptr<Library> library() {
    if (!g_library) throw std::runtime_error("the LLTM kernel library is not loaded; call init() first");
    return g_library;
}

template <typename T>
using In = nb::ndarray<const T, nb::c_contig, nb::device::cpu>;
template <typename T>
using Out = nb::ndarray<nb::numpy, T>;

template <typename T>
simgrad_tensor describe(const T *data, std::size_t ndim, const std::int64_t *shape) {
    simgrad_tensor d{};
    d.data = const_cast<T *>(data);  // simgrad writes only out arrays and output cotangents
    d.device.device_type = SIMGRAD_DEVICE_CPU;
    d.ndim = static_cast<std::int32_t>(ndim);
    d.dtype.code = SIMGRAD_DTYPE_CODE_FLOAT;
    d.dtype.bits = sizeof(T) * 8;
    d.dtype.lanes = 1;
    d.shape = const_cast<std::int64_t *>(shape);
    return d;
}

template <typename T>
simgrad_tensor describe(const In<T> &a, std::array<std::int64_t, 2> &shape) {
    for (std::size_t i = 0; i < a.ndim() && i < 2; i++) shape[i] = static_cast<std::int64_t>(a.shape(i));
    return describe(a.data(), a.ndim(), shape.data());
}

simgrad_tensor describe_size(std::int64_t *value) {
    simgrad_tensor d{};
    d.data = value;
    d.device.device_type = SIMGRAD_DEVICE_CPU;
    d.dtype.code = SIMGRAD_DTYPE_CODE_INT;
    d.dtype.bits = 64;
    d.dtype.lanes = 1;
    return d;
}

// A new NumPy array of `shape`, owning its memory.
template <typename T>
Out<T> new_array(std::size_t rows, std::size_t cols, std::size_t ndim) {
    const std::size_t n = rows * (ndim == 2 ? cols : 1);
    T *data = new T[n > 0 ? n : 1];
    nb::capsule owner(data, [](void *p) noexcept { delete[] static_cast<T *>(p); });
    const std::size_t shape[2] = {rows, cols};
    return Out<T>(data, ndim, shape, owner);
}

// The argument list of one call: the sizes B, F, S and the five inputs; new_h and new_cell are
// written by the primal (and, for a VJP, must exist but are not touched).
template <typename T>
struct Call {
    std::array<std::int64_t, 3> sizes{};
    std::array<std::array<std::int64_t, 2>, 10> shapes{};
    std::array<simgrad_tensor, 10> args{};
    Out<T> new_h, new_cell;

    Call(const In<T> &input, const In<T> &weights, const In<T> &bias, const In<T> &old_h,
         const In<T> &old_cell) {
        if (input.ndim() != 2 || old_h.ndim() != 2)
            throw std::invalid_argument("input must be [B, F] and old_h [B, S]");
        sizes = {static_cast<std::int64_t>(input.shape(0)), static_cast<std::int64_t>(input.shape(1)),
                 static_cast<std::int64_t>(old_h.shape(1))};
        new_h = new_array<T>(input.shape(0), old_h.shape(1), 2);
        new_cell = new_array<T>(input.shape(0), old_h.shape(1), 2);
        for (int i = 0; i < 3; i++) args[i] = describe_size(&sizes[i]);
        args[3] = describe(input, shapes[3]);
        args[4] = describe(weights, shapes[4]);
        args[5] = describe(bias, shapes[5]);
        args[6] = describe(old_h, shapes[6]);
        args[7] = describe(old_cell, shapes[7]);
        shapes[8] = shapes[9] = {sizes[0], sizes[2]};
        args[8] = describe<T>(new_h.data(), 2, shapes[8].data());
        args[9] = describe<T>(new_cell.data(), 2, shapes[9].data());
    }
};

template <typename T>
simgrad_kernel *kernel(const Library &lib) {
    return sizeof(T) == 8 ? lib.f64 : lib.f32;
}

template <typename T>
std::pair<Out<T>, Out<T>> forward(In<T> input, In<T> weights, In<T> bias, In<T> old_h, In<T> old_cell) {
    auto lib = library();
    Call<T> c(input, weights, bias, old_h, old_cell);
    simgrad_status s;
    {
        nb::gil_scoped_release nogil;
        s = simgrad_kernel_call(kernel<T>(*lib), c.args.data(), c.args.size());
    }
    check(s, "simgrad_kernel_call");
    return {c.new_h, c.new_cell};
}

template <typename T>
nb::tuple backward(In<T> grad_h, In<T> grad_cell, In<T> input, In<T> weights, In<T> bias,
                   In<T> old_h, In<T> old_cell) {
    auto lib = library();
    Call<T> c(input, weights, bias, old_h, old_cell);
    std::array<simgrad_tensor, 10> cot_in{}, cot_out{};
    std::array<std::array<std::int64_t, 2>, 10> shapes{};
    cot_in[8] = describe(grad_h, shapes[8]);
    cot_in[9] = describe(grad_cell, shapes[9]);
    const In<T> *ins[5] = {&input, &weights, &bias, &old_h, &old_cell};
    Out<T> grads[5];
    for (int i = 0; i < 5; i++) {
        const In<T> &a = *ins[i];
        grads[i] = new_array<T>(a.shape(0), a.ndim() == 2 ? a.shape(1) : 1, a.ndim());
        cot_out[3 + i] = describe<T>(grads[i].data(), a.ndim(), c.shapes[3 + i].data());
    }
    simgrad_status s;
    {
        nb::gil_scoped_release nogil;
        s = simgrad_kernel_vjp(kernel<T>(*lib), c.args.data(), c.args.size(), cot_in.data(),
                               cot_out.data(), 0);
    }
    check(s, "simgrad_kernel_vjp");
    return nb::make_tuple(grads[0], grads[1], grads[2], grads[3], grads[4]);
}

}  // namespace

NB_MODULE(lltm_nb, m) {
    m.doc() = "LLTM kernels (Enzyme-differentiated, through libsimgrad) for NumPy arrays";
    m.def(
        "init",
        [](const std::string &path, const std::string &variant) {
            g_library = std::make_shared<Library>(path, variant);
        },
        nb::arg("lib_path"), nb::arg("variant") = "auto");
    m.def("kernel_names", []() {
        auto lib = library();
        return std::make_pair(lib->f64_name, lib->f32_name);
    });
    // float64 first, then float32; nanobind picks the overload whose dtype matches, without
    // converting (nb::arg().noconvert() would make a mismatch an error instead of a fallback).
    m.def("forward", &forward<double>, nb::arg("input"), nb::arg("weights"), nb::arg("bias"),
          nb::arg("old_h"), nb::arg("old_cell"));
    m.def("forward", &forward<float>, nb::arg("input"), nb::arg("weights"), nb::arg("bias"),
          nb::arg("old_h"), nb::arg("old_cell"));
    m.def("backward", &backward<double>, nb::arg("grad_h"), nb::arg("grad_cell"), nb::arg("input"),
          nb::arg("weights"), nb::arg("bias"), nb::arg("old_h"), nb::arg("old_cell"));
    m.def("backward", &backward<float>, nb::arg("grad_h"), nb::arg("grad_cell"), nb::arg("input"),
          nb::arg("weights"), nb::arg("bias"), nb::arg("old_h"), nb::arg("old_cell"));
}
