"""Recover a diffusion coefficient field from noisy observations, with gradients from Enzyme.

The forward model is the Fortran kernel `advdiff` (examples-fortran/diffusion/advdiff.f90):
explicit finite differences for 1-D advection-diffusion, du/dt + a du/dx = d/dx(kappa(x) du/dx),
run for 500 steps on 200 points, compiled by simgrad through flang-19 + Enzyme. Six experiments
start from different smooth initial states; only their final states are observed, with Gaussian
noise. The unknown is kappa(x) at every grid point.

PyTorch does the optimisation (L-BFGS); the kernel's primal and its Enzyme VJP are wrapped in a
`torch.autograd.Function`, called through the C ABI of libsimgrad with ctypes (the same library
the Fortran program and the C program use). kappa is parametrised as
kappa = KMIN + (KMAX - KMIN) * sigmoid(theta), which keeps every iterate inside the explicit
scheme's stability bound, and a small smoothness penalty on theta removes the one direction the
data cannot see (a grid-scale checkerboard in kappa, which the face averages cancel).

    python examples-fortran/inverse_problem.py [LIB] [--out PNG]

LIB is the kernel library (`simgrad build examples-fortran/diffusion/simgrad.toml` prints it;
built here through cargo when omitted). libsimgrad is $SIMGRAD_LIBRARY, else target/debug or
target/release of this workspace. Deterministic (fixed seed, float64, one thread). Exits 1 unless
the loss falls at least 100-fold and kappa is recovered to the stated error; writes the figure
(loss curve, true vs recovered field, one experiment's fit) and a JSON summary next to it.
"""

from __future__ import annotations

import argparse
import ctypes as C
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples-fortran" / "diffusion" / "simgrad.toml"

# The problem.
N, NB, STEPS = 200, 6, 500
VEL = 0.5
KMIN, KMAX = 0.2, 2.0
NOISE = 1e-3
SEED = 20261126
# Acceptance: loss reduction and the recovery error of kappa (relative L2 over the interior,
# 0.05 <= x <= 0.95; near the fixed ends u is small and kappa barely affects the data).
MIN_LOSS_REDUCTION = 100.0
MAX_KAPPA_ERROR = 0.02


# --------------------------------------------------------------------------------------------
# libsimgrad through ctypes (include/simgrad.h)
# --------------------------------------------------------------------------------------------


class Dtype(C.Structure):
    _fields_ = [("code", C.c_uint8), ("bits", C.c_uint8), ("lanes", C.c_uint16)]


class Device(C.Structure):
    _fields_ = [("device_type", C.c_int32), ("device_id", C.c_int32)]


class Tensor(C.Structure):
    """simgrad_tensor (DLPack's DLTensor)."""

    _fields_ = [
        ("data", C.c_void_p),
        ("device", Device),
        ("ndim", C.c_int32),
        ("dtype", Dtype),
        ("shape", C.POINTER(C.c_int64)),
        ("strides", C.POINTER(C.c_int64)),
        ("byte_offset", C.c_uint64),
    ]


def find_libsimgrad() -> Path:
    env = os.environ.get("SIMGRAD_LIBRARY")
    if env:
        return Path(env)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    found = [p for p in (target / "debug" / "libsimgrad.so", target / "release" / "libsimgrad.so") if p.exists()]
    if not found:
        sys.exit("libsimgrad.so not found: run `cargo build -p simgrad-capi` or set SIMGRAD_LIBRARY")
    return max(found, key=lambda p: p.stat().st_mtime)


class SimgradError(RuntimeError):
    pass


class Kernel:
    """One kernel of a library, called with NumPy arrays (which must outlive each call)."""

    def __init__(self, libsimgrad: Path, library: Path, name: str):
        api = C.CDLL(str(libsimgrad))
        api.simgrad_last_error_message.restype = C.c_char_p
        api.simgrad_status_name.restype = C.c_char_p
        api.simgrad_status_name.argtypes = [C.c_uint32]
        api.simgrad_library_open.argtypes = [C.c_char_p, C.POINTER(C.c_void_p)]
        api.simgrad_library_kernel.argtypes = [C.c_void_p, C.c_char_p, C.POINTER(C.c_void_p)]
        api.simgrad_library_free.argtypes = [C.c_void_p]
        api.simgrad_kernel_arg_count.argtypes = [C.c_void_p, C.POINTER(C.c_size_t)]
        api.simgrad_kernel_memory_order.argtypes = [C.c_void_p, C.POINTER(C.c_uint32)]
        api.simgrad_kernel_call.argtypes = [C.c_void_p, C.POINTER(Tensor), C.c_size_t]
        api.simgrad_kernel_vjp.argtypes = [C.c_void_p, C.POINTER(Tensor), C.c_size_t, C.POINTER(Tensor), C.POINTER(Tensor), C.c_uint32]
        for f in ("simgrad_library_open", "simgrad_library_kernel", "simgrad_kernel_arg_count", "simgrad_kernel_memory_order", "simgrad_kernel_call", "simgrad_kernel_vjp"):
            getattr(api, f).restype = C.c_uint32
        self.api = api
        lib, k = C.c_void_p(), C.c_void_p()
        self._ok(api.simgrad_library_open(str(library).encode(), C.byref(lib)), "open")
        try:
            self._ok(api.simgrad_library_kernel(lib, name.encode(), C.byref(k)), "kernel")
        finally:
            api.simgrad_library_free(lib)  # the kernel handle keeps the library loaded
        self.k = k
        nargs, order = C.c_size_t(), C.c_uint32()
        self._ok(api.simgrad_kernel_arg_count(k, C.byref(nargs)), "arg_count")
        self._ok(api.simgrad_kernel_memory_order(k, C.byref(order)), "memory_order")
        self.nargs, self.fortran_order = nargs.value, order.value == 1

    def _ok(self, status: int, what: str) -> None:
        if status != 0:
            name = self.api.simgrad_status_name(status).decode()
            raise SimgradError(f"{what}: {name}: {self.api.simgrad_last_error_message().decode()}")

    def _list(self, values, keep):
        """simgrad_tensor[nargs] for values (None: absent; int: i64 size; float: f64 scalar;
        ndarray: an array, described with its own strides)."""
        out = (Tensor * self.nargs)()
        for i, v in enumerate(values):
            if v is None:
                continue
            if not isinstance(v, np.ndarray):
                v = np.array(v, dtype=np.int64 if isinstance(v, int) else np.float64)
            shape = (C.c_int64 * max(v.ndim, 1))(*v.shape)
            strides = (C.c_int64 * max(v.ndim, 1))(*(s // v.itemsize for s in v.strides))
            keep += [v, shape, strides]
            code = 2 if v.dtype.kind == "f" else 0
            out[i] = Tensor(v.ctypes.data, Device(1, 0), v.ndim, Dtype(code, v.itemsize * 8, 1), shape, strides, 0)
        return out

    def call(self, args) -> None:
        keep: list = []
        self._ok(self.api.simgrad_kernel_call(self.k, self._list(args, keep), self.nargs), "call")

    def vjp(self, args, cotangents_in, cotangents_out) -> None:
        keep: list = []
        a = self._list(args, keep)
        ci = self._list(cotangents_in, keep)
        co = self._list(cotangents_out, keep)
        self._ok(self.api.simgrad_kernel_vjp(self.k, a, self.nargs, ci, co, 0), "vjp")


# --------------------------------------------------------------------------------------------
# The forward model as a PyTorch function
# --------------------------------------------------------------------------------------------


class Model:
    """u_final(kappa) for fixed initial states u0 (n x nb, column-major), grid and time step."""

    def __init__(self, kernel: Kernel, u0: np.ndarray, dx: float, dt: float):
        assert kernel.fortran_order and kernel.nargs == 9
        self.kernel, self.u0, self.dx, self.dt = kernel, np.asfortranarray(u0), dx, dt
        self.calls = {"primal": 0, "vjp": 0}
        self.seconds = {"primal": 0.0, "vjp": 0.0}

    def _args(self, kappa: np.ndarray, u: np.ndarray):
        n, nb = self.u0.shape
        return [n, nb, STEPS, self.dt, self.dx, VEL, kappa, self.u0, u]

    def primal(self, kappa: np.ndarray) -> np.ndarray:
        u = np.zeros_like(self.u0, order="F")
        t = time.perf_counter()
        self.kernel.call(self._args(np.ascontiguousarray(kappa), u))
        self.seconds["primal"] += time.perf_counter() - t
        self.calls["primal"] += 1
        return u

    def vjp(self, kappa: np.ndarray, w: np.ndarray) -> np.ndarray:
        gk = np.zeros_like(kappa)
        u = np.zeros_like(self.u0, order="F")
        co = [None] * 9
        co[6] = gk
        ci = [None] * 8 + [np.asfortranarray(w)]
        t = time.perf_counter()
        self.kernel.vjp(self._args(np.ascontiguousarray(kappa), u), ci, co)
        self.seconds["vjp"] += time.perf_counter() - t
        self.calls["vjp"] += 1
        return gk

    def function(self):
        model = self

        class Forward(torch.autograd.Function):
            @staticmethod
            def forward(ctx, kappa):
                ctx.save_for_backward(kappa)
                return torch.from_numpy(model.primal(kappa.detach().numpy()))

            @staticmethod
            @torch.autograd.function.once_differentiable
            def backward(ctx, grad_u):
                (kappa,) = ctx.saved_tensors
                return torch.from_numpy(model.vjp(kappa.detach().numpy(), grad_u.numpy()))

        return Forward.apply


# --------------------------------------------------------------------------------------------
# The experiment
# --------------------------------------------------------------------------------------------


def kappa_true(x: np.ndarray) -> np.ndarray:
    bump = lambda c, w: np.exp(-(((x - c) / w) ** 2))  # noqa: E731
    return 1.0 + 0.6 * bump(0.3, 0.07) - 0.5 * bump(0.68, 0.1) + 0.15 * np.sin(2 * np.pi * x)


def initial_states(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """NB smooth random states, zero at both ends: sine series with decaying amplitudes."""
    k = np.arange(1, 31)
    amp = rng.normal(size=(NB, k.size)) / k**0.8
    u0 = np.sin(np.pi * np.outer(x, k)) @ amp.T
    return np.asfortranarray(u0 / np.abs(u0).max(axis=0))


def build_library() -> Path:
    exe = ROOT / "target" / "debug" / "simgrad"
    cmd = [str(exe)] if exe.exists() else ["cargo", "run", "-q", "-p", "simgrad-cli", "--"]
    out = subprocess.run(cmd + ["build", str(SPEC)], cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG file")
    return struct.unpack(">II", data[16:24])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("library", nargs="?", type=Path, help="the kernel library (built when omitted)")
    ap.add_argument("--out", type=Path, default=ROOT / "target" / "examples-fortran" / "inverse_problem.png")
    ap.add_argument("--iterations", type=int, default=60, help="L-BFGS iterations")
    opts = ap.parse_args()

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(SEED)

    library = opts.library or build_library()
    kernel = Kernel(find_libsimgrad(), library, "advdiff")
    x = np.linspace(0.0, 1.0, N)
    dx = x[1] - x[0]
    dt = 0.9 / (2 * KMAX / dx**2 + VEL / dx)  # stable for every kappa the parametrisation allows
    u0 = initial_states(x, rng)
    model = Model(kernel, u0, dx, dt)
    forward = model.function()

    k_true = kappa_true(x)
    u_clean = model.primal(k_true)
    u_obs = torch.from_numpy(u_clean + NOISE * rng.normal(size=u_clean.shape))

    # kappa = KMIN + (KMAX - KMIN) * sigmoid(theta); start from the constant kappa = 1.
    def to_kappa(theta):
        return KMIN + (KMAX - KMIN) * torch.sigmoid(theta)

    k0 = 1.0
    theta = torch.full((N,), float(np.log((k0 - KMIN) / (KMAX - k0))), dtype=torch.float64, requires_grad=True)
    # Smoothness weight, in units of the noise variance of the misfit: chosen so that the final
    # misfit sits just under the noise level (the discrepancy principle); 50x weaker leaves
    # grid-scale noise in kappa, 4x stronger flattens its peaks.
    beta = 0.5 * NOISE**2

    def losses(theta):
        u = forward(to_kappa(theta))
        misfit = torch.mean((u - u_obs) ** 2)
        reg = beta * torch.sum(torch.diff(theta) ** 2)
        return misfit, reg

    history = []  # (evaluation, total, misfit)

    def closure():
        opt.zero_grad()
        misfit, reg = losses(theta)
        total = misfit + reg
        total.backward()
        history.append((len(history), total.item(), misfit.item()))
        return total

    opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=opts.iterations, history_size=20, tolerance_grad=1e-14, tolerance_change=1e-16, line_search_fn="strong_wolfe")
    t0 = time.perf_counter()
    opt.step(closure)
    wall = time.perf_counter() - t0

    with torch.no_grad():
        k_fit = to_kappa(theta).numpy()
        u_fit = model.primal(k_fit)
    inner = (x >= 0.05) & (x <= 0.95)
    err_inner = float(np.linalg.norm((k_fit - k_true)[inner]) / np.linalg.norm(k_true[inner]))
    err_all = float(np.linalg.norm(k_fit - k_true) / np.linalg.norm(k_true))
    err_start = float(np.linalg.norm((k0 - k_true)[inner]) / np.linalg.norm(k_true[inner]))
    loss0, loss1 = history[0][1], history[-1][1]
    reduction = loss0 / loss1
    misfit1 = history[-1][2]

    # The figure.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(15, 4.5), dpi=100, constrained_layout=True)
    ev = np.array([h[0] for h in history])
    ax[0].semilogy(ev, [h[1] for h in history], label="loss (misfit + smoothness)")
    ax[0].semilogy(ev, [h[2] for h in history], "--", label="data misfit")
    ax[0].axhline(NOISE**2, color="gray", lw=0.8, ls=":", label=r"noise level $\sigma^2$")
    ax[0].set(xlabel="function evaluation (primal + Enzyme VJP)", ylabel="mean squared error", title=f"L-BFGS: loss reduced {reduction:.0f}x")
    ax[0].legend()
    ax[1].plot(x, k_true, "k", lw=2, label="true")
    ax[1].plot(x, k_fit, "C3", label=f"recovered (rel. error {100 * err_inner:.1f}%)")
    ax[1].axhline(k0, color="C0", ls="--", lw=1, label="initial guess")
    ax[1].axvspan(0, 0.05, color="0.9")
    ax[1].axvspan(0.95, 1, color="0.9")
    ax[1].set(xlabel="x", ylabel=r"$\kappa(x)$", title="diffusion coefficient")
    ax[1].legend()
    b = 0
    ax[2].plot(x, u0[:, b], color="0.6", label="initial state")
    ax[2].plot(x, u_obs.numpy()[:, b], ".", ms=2.5, color="k", label="observed final state")
    ax[2].plot(x, u_fit[:, b], "C3", label="fitted model")
    ax[2].set(xlabel="x", ylabel="u", title=f"experiment {b + 1} of {NB} ({STEPS} steps, {N} points)")
    ax[2].legend()
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(opts.out)
    plt.close(fig)
    width, height = png_size(opts.out)
    size = opts.out.stat().st_size

    summary = {
        "grid_points": N,
        "experiments": NB,
        "steps": STEPS,
        "noise_sigma": NOISE,
        "evaluations": len(history),
        "loss_initial": loss0,
        "loss_final": loss1,
        "loss_reduction": reduction,
        "misfit_final_over_noise_variance": misfit1 / NOISE**2,
        "kappa_rel_error_interior": err_inner,
        "kappa_rel_error_all": err_all,
        "kappa_rel_error_initial_guess": err_start,
        "wall_seconds": wall,
        "primal_calls": model.calls["primal"],
        "vjp_calls": model.calls["vjp"],
        "primal_ms_mean": 1e3 * model.seconds["primal"] / model.calls["primal"],
        "vjp_ms_mean": 1e3 * model.seconds["vjp"] / max(model.calls["vjp"], 1),
        "png": str(opts.out),
        "png_width": width,
        "png_height": height,
        "png_bytes": size,
    }
    opts.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    for k, v in summary.items():
        print(f"{k:34s} {v:.4g}" if isinstance(v, float) else f"{k:34s} {v}")

    problems = []
    if reduction < MIN_LOSS_REDUCTION:
        problems.append(f"loss reduced only {reduction:.1f}x (< {MIN_LOSS_REDUCTION:.0f}x)")
    if err_inner > MAX_KAPPA_ERROR:
        problems.append(f"kappa error {err_inner:.3f} > {MAX_KAPPA_ERROR}")
    if (width, height) != (1500, 450) or size < 20_000:
        problems.append(f"unexpected PNG: {width}x{height}, {size} bytes")
    for p in problems:
        print("FAILED:", p)
    print("inverse_problem:", "FAILED" if problems else "passed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
