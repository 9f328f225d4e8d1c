"""The LLTM cell with an Enzyme-generated backward pass, as a PyTorch module.

The forward pass is plain C++ (`lltm.cpp`); simgrad compiles it with clang + Enzyme into a kernel
library with primal, JVP and VJP entry points (`simgrad.toml`). A PyTorch C++ extension
(`ext/lltm_ext.cpp`, pybind11) hands torch tensors to that library through libsimgrad's C ABI
(`include/simgrad.h`) without copying them. This file builds and loads the pieces and defines

* `LLTMFunction`: a `torch.autograd.Function` whose `backward` is the Enzyme VJP and whose `jvp`
  (forward-mode AD, `torch.autograd.forward_ad`, `torch.func.jvp`) is the Enzyme JVP;
* `LLTM`: the `torch.nn.Module` of PyTorch's C++-extension tutorial, with the same parameters and
  initialisation as the pure-PyTorch `reference.LLTMPython`.

Typical use::

    import lltm_simgrad
    lltm_simgrad.setup()                       # build/load the extension and the kernel library
    cell = lltm_simgrad.LLTM(input_features=32, state_size=128)
    h, c = cell(x, (h, c))

Environment (all optional):

* `SIMGRAD_INCLUDE_DIR`: the directory holding `simgrad.h` (default `include/` of the repository);
* `SIMGRAD_LIB_DIR`: the directory holding `libsimgrad.so` (default: the newer of
  `target/release` and `target/debug`; `cargo build -p simgrad-capi [--release]` makes it);
* `LLTM_KERNEL_LIB`: a kernel library already built from `simgrad.toml` (default: build it with
  libsimgrad's `simgrad_build`, which finds it in simgrad's cache after the first time);
* `LLTM_KERNEL_VARIANT`: "auto" (default: the AVX2 + FMA kernels when the CPU has them),
  "portable" (x86-64 baseline) or "avx2";
* `LLTM_BUILD_DIR`: where the extensions are built (default `target/examples-cpp/lltm`);
* the toolchain variables of simgrad (`SIMGRAD_ENZYME_PLUGIN`, `SIMGRAD_LLVM_DIR`, ...).
"""

from __future__ import annotations

import importlib
import math
import os
import subprocess
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SPEC = HERE / "simgrad.toml"
EXT_SOURCE = HERE / "ext" / "lltm_ext.cpp"
#: Compiler flags of the extensions (the kernels themselves are compiled by simgrad).
EXT_CFLAGS = ["-O2", "-Wall", "-Wextra"]  # torch picks the C++ standard (C++20 for torch 2.x)

AOT_NAME = "lltm_simgrad_ext"
JIT_NAME = "lltm_simgrad_jit"


def build_root() -> Path:
    return Path(os.environ.get("LLTM_BUILD_DIR", REPO / "target" / "examples-cpp" / "lltm"))


def simgrad_paths() -> tuple[str, str]:
    """(include dir with simgrad.h, lib dir with libsimgrad.so); raises with the fix if missing."""
    inc = os.environ.get("SIMGRAD_INCLUDE_DIR")
    candidates = [Path(inc)] if inc else [REPO / "include", REPO / "crates" / "simgrad-capi" / "include"]
    include_dir = next((d for d in candidates if (d / "simgrad.h").is_file()), None)
    if include_dir is None:
        raise FileNotFoundError(
            f"simgrad.h not found in {', '.join(map(str, candidates))}; run `cargo xtask codegen` "
            "or set SIMGRAD_INCLUDE_DIR"
        )
    lib = os.environ.get("SIMGRAD_LIB_DIR")
    if lib:
        lib_dirs = [Path(lib)]
    else:
        lib_dirs = [REPO / "target" / "release", REPO / "target" / "debug"]
        lib_dirs = sorted(
            (d for d in lib_dirs if (d / "libsimgrad.so").is_file()),
            key=lambda d: (d / "libsimgrad.so").stat().st_mtime,
            reverse=True,
        )
    lib_dir = next((d for d in lib_dirs if (d / "libsimgrad.so").is_file()), None)
    if lib_dir is None:
        raise FileNotFoundError(
            "libsimgrad.so not found; run `cargo build -p simgrad-capi` (or set SIMGRAD_LIB_DIR)"
        )
    return str(include_dir), str(lib_dir)


def build_aot(verbose: bool = False) -> Path:
    """Builds the extension ahead of time with `ext/setup.py` (setuptools + BuildExtension);
    skipped when the built module is newer than its source, setup.py and simgrad.h and was linked
    against the same libsimgrad directory. Returns the directory to import from."""
    out = build_root() / "aot"
    built = sorted(out.glob(f"{AOT_NAME}*.so"))
    include_dir, lib_dir = simgrad_paths()
    stamp = out / "libsimgrad.dir"
    inputs = [EXT_SOURCE, HERE / "ext" / "setup.py", Path(include_dir) / "simgrad.h"]
    fresh = (
        built
        and built[0].stat().st_mtime > max(p.stat().st_mtime for p in inputs)
        and stamp.is_file()
        and stamp.read_text() == lib_dir
    )
    if not fresh:
        out.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable, str(HERE / "ext" / "setup.py"), "build_ext",
            "--build-lib", str(out), "--build-temp", str(out / "tmp"), "--force",
        ]
        res = subprocess.run(cmd, cwd=HERE / "ext", capture_output=not verbose, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stdout}\n{res.stderr}")
        stamp.write_text(lib_dir)
    return out


def load_extension(mode: str = "aot", verbose: bool = False):
    """The pybind11 extension module, built ahead of time (`"aot"`, setup.py) or just in time
    (`"jit"`, `torch.utils.cpp_extension.load`)."""
    if mode == "aot":
        path = str(build_aot(verbose))
        if path not in sys.path:
            sys.path.insert(0, path)
        return importlib.import_module(AOT_NAME)
    if mode == "jit":
        from torch.utils.cpp_extension import load

        include_dir, lib_dir = simgrad_paths()
        build_dir = build_root() / "jit"
        build_dir.mkdir(parents=True, exist_ok=True)
        return load(
            name=JIT_NAME,
            sources=[str(EXT_SOURCE)],
            extra_include_paths=[include_dir],
            extra_cflags=EXT_CFLAGS,
            extra_ldflags=[f"-L{lib_dir}", "-lsimgrad", f"-Wl,-rpath,{lib_dir}"],
            build_directory=str(build_dir),
            verbose=verbose,
        )
    raise ValueError(f"mode must be 'aot' or 'jit', not {mode!r}")


def load_nanobind(verbose: bool = False):
    """The nanobind module `lltm_nb` (NumPy arrays), built with nanobind's CMake support into
    `target/examples-cpp/lltm/nanobind` (rebuilt only when a source or libsimgrad's directory
    changed: CMake/Ninja track that)."""
    import nanobind

    include_dir, lib_dir = simgrad_paths()
    out = build_root() / "nanobind"
    configure = [
        "cmake", "-S", str(HERE / "nb"), "-B", str(out), "-G", "Ninja",
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DPython_EXECUTABLE={sys.executable}",
        f"-Dnanobind_DIR={nanobind.cmake_dir()}",
        f"-DSIMGRAD_INCLUDE_DIR={include_dir}",
        f"-DSIMGRAD_LIB_DIR={lib_dir}",
    ]
    env = dict(os.environ)
    # The venv's ninja (pip) when there is no system one.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    for cmd in (configure, ["cmake", "--build", str(out)]):
        res = subprocess.run(cmd, capture_output=not verbose, text=True, env=env)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stdout}\n{res.stderr}")
    if str(out) not in sys.path:
        sys.path.insert(0, str(out))
    return importlib.import_module("lltm_nb")


def kernel_library(ext=None) -> str:
    """Path of the LLTM kernel library: `LLTM_KERNEL_LIB`, else built from `simgrad.toml` through
    libsimgrad's `simgrad_build` (cached by simgrad after the first build)."""
    lib = os.environ.get("LLTM_KERNEL_LIB")
    if lib:
        return lib
    ext = ext or load_extension()
    return ext.build(str(SPEC))


_ext = None


def setup(mode: str = "aot", lib_path: str | None = None, variant: str | None = None,
          verbose: bool = False):
    """Loads the extension (`mode`: "aot" or "jit") and opens the kernel library in it; makes it
    the one `LLTMFunction` uses. `variant`: "auto" (default; `LLTM_KERNEL_VARIANT` overrides),
    "portable" or "avx2" (see lltm.cpp). Returns the module."""
    global _ext
    ext = load_extension(mode, verbose)
    variant = variant or os.environ.get("LLTM_KERNEL_VARIANT", "auto")
    ext.init(lib_path or kernel_library(ext), variant)
    _ext = ext
    return ext


def use_extension(ext):
    """Makes `ext` (an initialised AOT or JIT extension module) the one `LLTMFunction` uses."""
    global _ext
    _ext = ext


def extension():
    """The extension `LLTMFunction` uses (`setup()` with the defaults on first use)."""
    if _ext is None:
        setup()
    return _ext


class LLTMFunction(torch.autograd.Function):
    """new_h, new_cell = LLTMFunction.apply(input, weights, bias, old_h, old_cell).

    backward: the Enzyme VJP (only the gradients autograd asks for are computed);
    jvp: the Enzyme JVP (forward-mode AD: `torch.autograd.forward_ad`, `torch.func.jvp`).
    Not twice differentiable: the VJP is not itself differentiated."""

    @staticmethod
    def forward(input, weights, bias, old_h, old_cell):
        new_h, new_cell = extension().forward(input, weights, bias, old_h, old_cell)
        return new_h, new_cell

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.ext = extension()
        ctx.save_for_backward(*inputs)
        ctx.save_for_forward(*inputs)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_h, grad_cell):
        needs = [bool(n) for n in ctx.needs_input_grad]
        if not any(needs):
            return (None,) * 5
        # grad_h / grad_cell may be expanded (stride 0) views, e.g. from .sum(); the extension
        # makes those contiguous and passes contiguous ones as they are.
        grads = ctx.ext.backward(grad_h, grad_cell, *ctx.saved_tensors, needs=needs)
        return tuple(grads)

    @staticmethod
    def jvp(ctx, t_input, t_weights, t_bias, t_old_h, t_old_cell):
        _, _, t_h, t_c = ctx.ext.jvp(
            *ctx.saved_tensors, t_input, t_weights, t_bias, t_old_h, t_old_cell
        )
        return t_h, t_c


class LLTM(torch.nn.Module):
    """The LLTM cell of PyTorch's C++-extension tutorial, computed by the simgrad kernel."""

    def __init__(self, input_features: int, state_size: int, dtype=torch.float32):
        super().__init__()
        self.input_features = input_features
        self.state_size = state_size
        # 3 * state_size rows: input gate, output gate, candidate cell; columns multiply [h, x].
        self.weights = torch.nn.Parameter(
            torch.empty(3 * state_size, input_features + state_size, dtype=dtype)
        )
        self.bias = torch.nn.Parameter(torch.empty(3 * state_size, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.state_size)
        for weight in self.parameters():
            weight.data.uniform_(-stdv, +stdv)

    def forward(self, input, state):
        old_h, old_cell = state
        return LLTMFunction.apply(input, self.weights, self.bias, old_h, old_cell)
