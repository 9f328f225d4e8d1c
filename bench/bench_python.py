#!/usr/bin/env python3
"""The Python side of `cargo xtask bench`: simgrad measured against the alternatives.

    python bench/bench_python.py [--quick] [--json OUT.json] [BENCH...]

BENCH is any of `call` (row 2), `torch` (row 3), `solver` (rows 5, 6), `fd` (row 7), `cache`
(row 8), `cold` (row 9); default all. Rows 1 (Criterion, C) and 4 (LLTM, examples-cpp/lltm/
bench.py) are run by xtask/src/bench.rs, which also merges this script's JSON into
docs/benchmarks.md and target/bench/results.json.

Method: every measurement runs next to its baseline in the same process (or, for new-process
timings, the same parent), interleaved: each round times every side once, in an order that
rotates from round to round, so that drifts of the machine (frequency, other processes) hit all
sides alike. A timing is the mean over `inner` calls of one round; a side is summarised by the
median over rounds and its spread (25th-75th percentile, min-max); the ratio is the ratio of the
medians, and the per-round ratios (candidate / baseline of the same round) give its spread.
Nothing here fails on a slow machine: a benchmark only reports.

Use the release libsimgrad (`cargo build --release -p simgrad-capi`,
`SIMGRAD_LIBRARY=target/release/libsimgrad.so`); xtask sets both up.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "crates" / "simgrad-python"))

import numpy as np  # noqa: E402

import simgrad  # noqa: E402

SEED_SPEC = REPO / "bench" / "kernels" / "seed.toml"
SEED_SOURCE = REPO / "examples-c" / "kernels" / "seed.c"
DIFFUSION_SPEC = REPO / "examples-fortran" / "diffusion" / "simgrad.toml"
TORCH_EXT_SOURCE = REPO / "bench" / "torch_ext" / "tiny.cpp"
OUT_DIR = REPO / "target" / "bench"
TORCH_EXT_DIR = OUT_DIR / "torch_ext"
TORCH_EXT_NAME = "simgrad_bench_tiny"

P = ctypes.c_void_p
VOID_PP = ctypes.c_void_p * 2


def log(msg: str) -> None:
    print(msg, flush=True)


# ------------------------------------------------------------------------------------- statistics


def quantile(xs, q: float) -> float:
    xs = sorted(xs)
    i = q * (len(xs) - 1)
    lo, hi = int(i), min(int(i) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (i - lo)


def stats(xs) -> dict:
    """Median, quartiles and extremes of a sample (seconds, or a ratio)."""
    return {
        "median": quantile(xs, 0.5),
        "p25": quantile(xs, 0.25),
        "p75": quantile(xs, 0.75),
        "min": min(xs),
        "max": max(xs),
        "n": len(xs),
        "samples": list(xs),
    }


def interleaved(sides: dict, *, rounds: int, inner: int | dict = 1, warmup: int = 3) -> dict:
    """Times every side `rounds` times, one round at a time, in a rotating order; each timing is
    the mean over `inner` calls (per side when a dict). Returns {side: [seconds per call]}."""
    names = list(sides)
    inner_of = {n: (inner[n] if isinstance(inner, dict) else inner) for n in names}
    for n in names:
        for _ in range(warmup):
            sides[n]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for n in order:
            fn, k = sides[n], inner_of[n]
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            times[n].append((time.perf_counter() - t0) / k)
    return times


def row(
    rid: str,
    what: str,
    candidate: str,
    baseline: str,
    cand: list[float],
    base: list[float],
    *,
    target: dict | None,
    method: str,
    notes: str = "",
    extra: dict | None = None,
) -> dict:
    """One row of docs/benchmarks.md. `target`: {"kind": "ratio" | "candidate_seconds", "max": x}
    (xtask decides whether it is met)."""
    per_round = [c / b for c, b in zip(cand, base)]
    cs, bs = stats(cand), stats(base)
    return {
        "id": rid,
        "what": what,
        "candidate": candidate,
        "baseline": baseline,
        "unit": "s",
        "cand": cs,
        "base": bs,
        "ratio": cs["median"] / bs["median"],
        "ratio_rounds": stats(per_round),
        "target": target,
        "method": method,
        "notes": notes,
        "extra": extra or {},
        "interleaved": True,
    }


def fmt_s(s: float) -> str:
    if s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.2f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def show(r: dict) -> None:
    rr = r["ratio_rounds"]
    log(
        f"  [{r['id']}] {r['what']}: {fmt_s(r['cand']['median'])} vs {fmt_s(r['base']['median'])}"
        f" -> {r['ratio']:.3f}x (rounds {rr['p25']:.3f}-{rr['p75']:.3f})"
    )


# ------------------------------------------------------------------------------------- kernels


def seed_library():
    lib = simgrad.build(SEED_SPEC)
    return lib, lib["seed"]


def trampolines(path: str, kernel: str):
    """The raw trampolines `simgrad_k_<kernel>_<mode>` with preset argtypes
    (docs/calling-convention.md)."""
    dll = ctypes.CDLL(path)
    out = {}
    for mode in ("primal", "jvp", "vjp"):
        fn = getattr(dll, f"simgrad_k_{kernel}_{mode}")
        fn.argtypes = [P, P, P]
        fn.restype = ctypes.c_int32
        out[mode] = fn
    return dll, out


def seed_input(n: int = 100) -> np.ndarray:
    return 1.0 + (np.arange(n) % 97) * 0.31


# ------------------------------------------------------------------------------------- row 2


def bench_call(quick: bool) -> list[dict]:
    log("call: a 100-element kernel from NumPy through simgrad vs a raw ctypes trampoline call")
    lib, k = seed_library()
    _dll, tr = trampolines(lib.path, "seed")
    prim = tr["primal"]
    x = seed_input()
    out = np.empty(100)
    args = VOID_PP(x.ctypes.data, out.ctypes.data)
    sizes = (ctypes.c_int64 * 1)(0)

    def raw():
        prim(args, sizes, None)

    def through_simgrad():
        return k(x)

    out_raw = np.empty(100)

    def call_raw():
        k.call_raw((x, out_raw))

    raw()
    expect = out.copy()
    if not np.array_equal(through_simgrad(), expect):
        raise SystemExit("call: simgrad and the raw trampoline disagree")
    rounds, inner = (7, 2000) if quick else (31, 5000)
    t = interleaved({"simgrad": through_simgrad, "call_raw": call_raw, "raw": raw}, rounds=rounds, inner=inner, warmup=200)
    method = f"interleaved, {rounds} rounds x {inner} calls"
    rows = [
        row(
            "2",
            "Python call, 100-element kernel (NumPy in, NumPy out)",
            "`kernel(x)`",
            "raw ctypes call of `simgrad_k_seed_primal` (preset argtypes, prebuilt pointer arrays, preallocated output)",
            t["simgrad"],
            t["raw"],
            target={"kind": "ratio", "max": 2.0},
            method=method,
            notes=(
                "Python-side work per call: binding inputs, shape checks, allocating the output, filling a copy of "
                "the kernel's descriptor template; then the checked C call, which alone is ~1.2x the raw call "
                "(a 2x budget leaves ~0.5 us for Python, about three attribute reads and an np.empty)"
            ),
        ),
        row(
            "2b",
            "Python raw call, same kernel (caller's buffers)",
            "`kernel.call_raw((x, out))`",
            "raw ctypes trampoline call (as in 2)",
            t["call_raw"],
            t["raw"],
            target=None,
            method=method,
            notes="information: the C-like layer without allocation",
        ),
    ]
    for r in rows:
        show(r)
    return rows


# ------------------------------------------------------------------------------------- row 3


def bench_torch(quick: bool) -> list[dict]:
    import torch

    import simgrad.torch as sgt

    log("torch: forward+backward through simgrad.torch vs a minimal raw-ctypes autograd.Function")
    torch.set_num_threads(1)
    lib, k = seed_library()
    _dll, tr = trampolines(lib.path, "seed")
    prim, vjp = tr["primal"], tr["vjp"]
    sizes = (ctypes.c_int64 * 1)(0)

    class Raw(torch.autograd.Function):
        """The baseline: the same primal and VJP trampolines, Enzyme's conventions by hand."""

        @staticmethod
        def forward(ctx, x):
            out = torch.empty_like(x)
            prim(VOID_PP(x.data_ptr(), out.data_ptr()), sizes, None)
            ctx.save_for_backward(x)
            return out

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            dx = torch.zeros_like(x)  # Enzyme accumulates into the input shadow
            seed = g.clone(memory_format=torch.contiguous_format)  # and consumes its seed
            scratch = torch.empty_like(x)  # the primal output, recomputed
            vjp(VOID_PP(x.data_ptr(), scratch.data_ptr()), sizes, VOID_PP(dx.data_ptr(), seed.data_ptr()))
            return dx

    f = sgt.function(k)
    x = torch.tensor(seed_input(), dtype=torch.float64, requires_grad=True)

    def through_simgrad():
        x.grad = None
        f(x).sum().backward()

    def raw():
        x.grad = None
        Raw.apply(x).sum().backward()

    through_simgrad()
    g1 = x.grad.clone()
    raw()
    if not torch.equal(g1, x.grad):
        raise SystemExit("torch: simgrad.torch and the raw autograd.Function disagree")
    rounds, inner = (7, 300) if quick else (31, 1000)
    t = interleaved({"simgrad": through_simgrad, "raw": raw}, rounds=rounds, inner=inner, warmup=50)
    r = row(
        "3",
        "PyTorch forward+backward, 100-element kernel, `f(x).sum().backward()`",
        "`simgrad.torch.function(kernel)`",
        "minimal `torch.autograd.Function` calling the primal and VJP trampolines by raw ctypes",
        t["simgrad"],
        t["raw"],
        target={"kind": "ratio", "max": 1.5},
        method=f"interleaved, {rounds} rounds x {inner} steps; torch {torch.__version__}, 1 thread",
        notes=(
            "the rest of torch's Function machinery and the checked VJP (~1.7 us against ~0.7 us for the raw "
            "trampoline: validation, seed copy, zeroed scratch); a hand-fused backward that skipped the general "
            "layer saved only 6-12 us"
        ),
    )
    show(r)
    return [r]


# ------------------------------------------------------------------------------------- rows 5-7


class Diffusion:
    """One advdiff problem (n points, one state) with every buffer preallocated, column-major."""

    def __init__(self, kernel, n: int, steps: int):
        self.k, self.n, self.steps = kernel, n, steps
        xs = np.linspace(0.0, 1.0, n)
        self.dx = 1.0 / (n - 1)
        self.vel = 0.5
        self.kappa = 0.01 * (1.0 + 0.5 * np.sin(2 * math.pi * xs))
        # Stable: dt * (2 max(kappa) / dx^2 + vel / dx) = 0.9 <= 1.
        self.dt = 0.9 / (2 * self.kappa.max() / self.dx**2 + self.vel / self.dx)
        self.u0 = np.asfortranarray(np.exp(-100.0 * (xs - 0.3) ** 2).reshape(n, 1))
        self.u = np.zeros((n, 1), order="F")
        self.w = np.asfortranarray(np.cos(3.0 * xs).reshape(n, 1))  # loss L = sum(w * u)
        # tangents / cotangents
        self.t_vel = np.array(1.0)
        self.t_kappa = np.full(n, 1e-3)
        self.t_u0 = np.zeros((n, 1), order="F")
        self.t_u = np.zeros((n, 1), order="F")
        self.g_vel = np.zeros(())
        self.g_kappa = np.zeros(n)
        self.g_u0 = np.zeros((n, 1), order="F")

    def args(self, kappa=None):
        k = self.kappa if kappa is None else kappa
        return (self.n, 1, self.steps, self.dt, self.dx, self.vel, k, self.u0, self.u)

    def primal(self, kappa=None):
        self.k.call_raw(self.args(kappa))

    def jvp(self):
        n = None
        self.k.jvp_raw(self.args(), (n, n, n, n, n, self.t_vel, self.t_kappa, self.t_u0, n), (n,) * 8 + (self.t_u,))

    def vjp(self):
        n = None
        self.k.vjp_raw(self.args(), (n,) * 8 + (self.w,), (n, n, n, n, n, self.g_vel, self.g_kappa, self.g_u0, n))

    def loss(self, kappa=None) -> float:
        self.primal(kappa)
        return float(np.dot(self.w[:, 0], self.u[:, 0]))


def diffusion_kernel():
    return simgrad.build(DIFFUSION_SPEC)["advdiff"]


def _best_of(fn, k: int = 2) -> float:
    best = math.inf
    for _ in range(k):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def calibrated(kernel, n: int, target_s: float) -> Diffusion:
    """A problem whose primal run takes about `target_s` (best of two runs, so that a busy moment
    of the machine does not shrink the problem)."""
    steps = max(10, 200_000 // n)
    while True:
        p = Diffusion(kernel, n, steps)
        p.primal()
        t = _best_of(p.primal)
        if t >= target_s / 4 or steps >= 10**7:
            break
        steps = int(steps * min(20.0, target_s / max(t, 1e-6)))
    return Diffusion(kernel, n, max(10, int(round(steps * target_s / t))))


def minor_faults(fn) -> int:
    """Minor page faults of the process during one call of `fn`."""
    import resource

    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    fn()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0


def bench_solver(quick: bool) -> list[dict]:
    log("solver: Fortran advdiff, VJP / primal and JVP / primal")
    k = diffusion_kernel()
    rounds = 3 if quick else 11
    target_s = 0.015 if quick else 0.03
    rows = []
    for n in (1_000, 10_000, 100_000):
        p = calibrated(k, n, target_s)
        tape_mib = 8.0 * n * p.steps / 2**20
        t = interleaved({"primal": p.primal, "jvp": p.jvp, "vjp": p.vjp}, rounds=rounds, warmup=1)
        faults = {m: minor_faults(getattr(p, m)) for m in ("primal", "jvp", "vjp")}
        fault_mib = faults["vjp"] * (os.sysconf("SC_PAGE_SIZE") / 2**20)
        method = f"interleaved, {rounds} rounds x 1 call; {p.steps} steps (calibrated: primal ~{target_s * 1e3:.0f} ms)"
        extra = {"n": n, "steps": p.steps, "tape_mib_estimate": tape_mib, "minor_page_faults_per_call": faults}
        rows.append(
            row(
                f"5 (n={n:.0e})".replace("e+0", "e"),
                f"Reverse mode / primal, Fortran `advdiff`, grid {n}, {p.steps} steps",
                "VJP (`vjp_raw`, gradients of vel, kappa, u0)",
                "primal (`call_raw`)",
                t["vjp"],
                t["primal"],
                target={"kind": "ratio", "max": 3.0},
                method=method,
                notes=(
                    f"Enzyme's reverse mode stores the overwritten state on a tape, n x steps doubles = {tape_mib:.0f} MiB per call here, "
                    f"allocated afresh by each call: {faults['vjp']} minor page faults ({fault_mib:.0f} MiB) in one VJP call vs "
                    f"{faults['primal']} in a primal call; per step the primal reads and writes ~3n doubles, the VJP also writes n doubles of tape and reads them back"
                ),
                extra=extra,
            )
        )
        rows.append(
            row(
                f"6 (n={n:.0e})".replace("e+0", "e"),
                f"Forward mode / primal, Fortran `advdiff`, grid {n}, {p.steps} steps",
                "JVP (`jvp_raw`, tangents of vel, kappa, u0)",
                "primal (`call_raw`)",
                t["jvp"],
                t["primal"],
                target={"kind": "ratio", "max": 2.5},
                method=method,
                notes="the JVP computes the primal and its tangent together",
                extra=extra,
            )
        )
        show(rows[-2])
        show(rows[-1])
    return rows


def bench_fd(quick: bool) -> list[dict]:
    log("fd: one VJP vs central finite differences (2n primal runs), grid 1000")
    k = diffusion_kernel()
    n = 1_000
    p = calibrated(k, n, 0.001 if quick else 0.002)
    h = 1e-6
    kp = p.kappa.copy()
    state = {"next": 0}
    rounds = 3 if quick else 11
    # Full mode: blocks that cover every component over the rounds (the warm-up block included).
    block = 10 if quick else math.ceil(n / rounds)

    def fd_component(j: int) -> float:
        kp[j] = p.kappa[j] + h
        lp = p.loss(kp)
        kp[j] = p.kappa[j] - h
        lm = p.loss(kp)
        kp[j] = p.kappa[j]
        return (lp - lm) / (2 * h)

    fd_grad = {}

    def fd_block():
        for _ in range(block):
            j = state["next"] % n
            fd_grad[j] = fd_component(j)
            state["next"] += 1

    t = interleaved({"vjp": p.vjp, "fd": fd_block}, rounds=rounds, warmup=1)
    p.vjp()
    idx = sorted(fd_grad)
    fd = np.array([fd_grad[j] for j in idx])
    ad = p.g_kappa[idx]
    rel_err = float(np.max(np.abs(fd - ad)) / np.max(np.abs(ad)))
    measured = len(idx)
    fd_full = [b / block * n for b in t["fd"]]  # seconds for the 2n-run FD gradient
    extrapolated = measured < n
    r = row(
        "7",
        f"Gradient of a scalar loss w.r.t. kappa, grid {n}, {p.steps} steps",
        "one VJP (also gives d/d vel and d/d u0)",
        f"central finite differences, 2n = {2 * n} primal runs",
        t["vjp"],
        fd_full,
        target=None,
        method=(
            f"interleaved, {rounds} rounds: 1 VJP vs a block of {block} FD components ({2 * block} primal runs), "
            f"the block's time scaled to all {n} components; "
            + (
                f"FD time extrapolated from {measured} of {n} components to all {n}"
                if extrapolated
                else "every component measured once over the rounds"
            )
        ),
        extra={"n": n, "steps": p.steps, "fd_components_measured": measured, "fd_extrapolated": extrapolated,
               "fd_h": h, "max_rel_error_fd_vs_vjp": rel_err},
    )
    r["notes"] = (
        f"speed-up {1.0 / r['ratio']:.0f}x; FD " + ("extrapolated" if extrapolated else "measured in full")
        + f" ({measured}/{n} components); FD and VJP gradients agree to {rel_err:.1e} (max rel.)"
    )
    show(r)
    return [r]


# ------------------------------------------------------------------------------------- rows 8, 9

SIMGRAD_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import simgrad
t1 = time.perf_counter()
lib = simgrad.build(sys.argv[1])
t2 = time.perf_counter()
assert lib.cache_hit, "not a cache hit"
print(json.dumps({"import": t1 - t0, "call": t2 - t1}))
"""

TORCH_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import torch
from torch.utils.cpp_extension import load
t1 = time.perf_counter()
m = load(name=sys.argv[1], sources=[sys.argv[2]], build_directory=sys.argv[3], verbose=False)
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "call": t2 - t1}))
"""


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "crates" / "simgrad-python"), env.get("PYTHONPATH")]))
    return env


def run_child(code: str, *argv) -> tuple[float, dict]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code, *map(str, argv)], capture_output=True, text=True, env=child_env())
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"child process failed:\n{p.stdout}{p.stderr}")
    return wall, json.loads(p.stdout.strip().splitlines()[-1])


def prepare_torch_extension() -> None:
    TORCH_EXT_DIR.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    wall, _ = run_child(TORCH_CHILD, TORCH_EXT_NAME, TORCH_EXT_SOURCE, TORCH_EXT_DIR)
    log(f"  torch extension ready in {TORCH_EXT_DIR} ({time.perf_counter() - t0:.1f} s)")


def bench_cache(quick: bool) -> list[dict]:
    log("cache: warm build-cache hit in a new process, simgrad.build vs torch.utils.cpp_extension.load")
    simgrad.build(SEED_SPEC)  # warm
    prepare_torch_extension()  # built once, before timing
    rounds = 3 if quick else 9
    res = {"simgrad": [], "torch": []}

    def sg():
        res["simgrad"].append(run_child(SIMGRAD_CHILD, SEED_SPEC))

    def tc():
        res["torch"].append(run_child(TORCH_CHILD, TORCH_EXT_NAME, TORCH_EXT_SOURCE, TORCH_EXT_DIR))

    interleaved({"simgrad": sg, "torch": tc}, rounds=rounds, warmup=1)
    s, t = res["simgrad"][1:], res["torch"][1:]  # drop the warm-up runs
    method = f"interleaved, {rounds} rounds x 1 new process each (`{Path(sys.executable).name} -c ...`)"
    rows = [
        row(
            "8a",
            "Warm build-cache hit, the call in a new process",
            "`simgrad.build(spec)` (unchanged spec)",
            "`torch.utils.cpp_extension.load` (unchanged extension, built before)",
            [c["call"] for _, c in s],
            [c["call"] for _, c in t],
            target={"kind": "candidate_seconds", "max": 0.050},
            method=method,
            notes="the call only, after the imports; first call in the process",
            extra={
                "import_simgrad_s": stats([c["import"] for _, c in s]),
                "import_torch_s": stats([c["import"] for _, c in t]),
            },
        ),
        row(
            "8b",
            "Warm build-cache hit, whole new process",
            "`python -c \"import simgrad; simgrad.build(spec)\"`",
            "`python -c \"import torch...; load(...)\"`",
            [w for w, _ in s],
            [w for w, _ in t],
            target={"kind": "ratio", "max": 0.2},
            method=method,
            notes=(
                f"interpreter start and imports included (import simgrad ~{stats([c['import'] for _, c in s])['median'] * 1e3:.0f} ms, "
                f"import torch ~{stats([c['import'] for _, c in t])['median'] * 1e3:.0f} ms)"
            ),
        ),
    ]
    for r in rows:
        show(r)
    return rows


def bench_cold(quick: bool) -> list[dict]:
    log("cold: a cold build of the seed kernel vs plain clang-19 -O2 -shared -fPIC")
    clang = shutil.which("clang-19")
    if clang is None:
        raise SystemExit("cold: clang-19 not found")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    plain = OUT_DIR / "seed_plain.so"
    cmd = [clang, "-O2", "-shared", "-fPIC", str(SEED_SOURCE), "-o", str(plain)]

    # A cache of its own (under target/), so that forcing rebuilds never replaces an entry of the
    # shared cache that another process may be using.
    cache = OUT_DIR / "cold-cache"

    def cold():
        lib = simgrad.build(SEED_SPEC, force=True, cache_dir=cache)
        assert not lib.cache_hit
        lib.close()

    def cc():
        subprocess.run(cmd, check=True)

    rounds = 3 if quick else 7
    t = interleaved({"simgrad": cold, "clang": cc}, rounds=rounds, warmup=1)
    r = row(
        "9",
        "Cold build of the seed kernel (examples-c/kernels/seed.c, primal+JVP+VJP)",
        "`simgrad.build(bench/kernels/seed.toml, force=True)` (own cache dir)",
        "`clang-19 -O2 -shared -fPIC seed.c` (primal only)",
        t["simgrad"],
        t["clang"],
        target=None,
        method=f"interleaved, {rounds} rounds x 1 build",
        notes="simgrad: wrappers, clang -emit-llvm, llvm-link, opt with Enzyme, opt -O2, link, manifest, cache publish",
    )
    show(r)
    return [r]


BENCHES = {
    "call": bench_call,
    "torch": bench_torch,
    "solver": bench_solver,
    "fd": bench_fd,
    "cache": bench_cache,
    "cold": bench_cold,
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("benches", nargs="*", help=f"any of {', '.join(BENCHES)} (default: all)", metavar="BENCH")
    ap.add_argument("--quick", action="store_true", help="few repetitions (a smoke run, not a measurement)")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    names = args.benches or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        ap.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    rows, errors = [], {}
    for name in names:
        t0 = time.perf_counter()
        try:
            rows.extend(BENCHES[name](args.quick))
        except (Exception, SystemExit) as e:  # a benchmark reports; one failing does not stop the others
            errors[name] = f"{type(e).__name__}: {e}"
            log(f"  {name}: FAILED: {errors[name]}")
        log(f"  ({name}: {time.perf_counter() - t0:.1f} s)")
    doc = {
        "quick": args.quick,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "libsimgrad": simgrad.library_path(),
        "simgrad_version": simgrad.version(),
        "rows": rows,
        "errors": errors,
    }
    try:
        import torch

        doc["torch"] = torch.__version__
    except ImportError:
        pass
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
        log(f"wrote {args.json}")
    return 1 if errors and not rows else 0


if __name__ == "__main__":
    sys.exit(main())
