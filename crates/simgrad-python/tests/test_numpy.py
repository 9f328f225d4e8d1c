"""Kernels called on NumPy arrays: results against reference implementations, JVP/VJP against
central finite differences, what is (never) copied or modified, handles and threads."""

from __future__ import annotations

import gc
import hashlib
import threading
import time

import numpy as np
import pytest
from _support import EXAMPLE_KERNELS, example_inputs

import simgrad

# ---------------------------------------------------------------------- reference implementations


def ref_seed(x):
    out = np.empty_like(x)
    prev = 0
    for i in range(len(x)):
        out[i] = x[i] - prev / x[i]
        prev = int(x[i])
    return out


def ref_axpy(a, x, y):
    return a * x + y


def ref_softmax_energy(x, w):
    z = w * x
    m = z.max()
    return np.array([m + np.log(np.exp(z - m).sum()) + 0.5 * (x * x).sum()])


def ref_heat(steps, kappa, u0):
    u = u0.copy()
    for _ in range(steps):
        lap = u[:-2] - 2 * u[1:-1] + u[2:]
        u[1:-1] = u[1:-1] + 0.2 * kappa[1:-1] * lap
    return u


REFERENCE = {"seed": ref_seed, "axpy": ref_axpy, "softmax_energy": ref_softmax_energy, "heat": ref_heat}


def checksum(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        if isinstance(a, np.ndarray):
            h.update(a.tobytes())
            h.update(str((a.shape, a.strides, a.dtype)).encode())
    return h.hexdigest()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ---------------------------------------------------------------------- values


@pytest.mark.parametrize("name", EXAMPLE_KERNELS)
def test_primal_matches_reference(examples, rng, name):
    inputs = example_inputs(name, rng)
    out = examples[name](*inputs)
    np.testing.assert_allclose(out, REFERENCE[name](*inputs), rtol=1e-12, atol=1e-12)


def _perturbed(k, inputs, direction, h):
    """Inputs moved by h * direction along the differentiable inputs (a dict by name)."""
    values = k.bind(inputs)
    moved = dict(values)
    for name, d in direction.items():
        moved[name] = values[name] + h * d
    return moved


def _directions(k, inputs, rng):
    values = k.bind(inputs)
    d = {}
    for a in k.differentiable_inputs:
        if a.kind == "scalar":
            d[a.name] = np.array(rng.standard_normal())
        else:
            d[a.name] = rng.standard_normal(np.shape(values[a.name]))
    return d


def _as_list(x):
    return list(x) if isinstance(x, tuple) else [x]


@pytest.mark.parametrize("name", EXAMPLE_KERNELS)
def test_jvp_matches_central_differences(examples, rng, name):
    k = examples[name]
    inputs = example_inputs(name, rng)
    d = _directions(k, inputs, rng)
    out, tout = k.jvp(inputs, d)
    np.testing.assert_allclose(out, REFERENCE[name](*inputs), rtol=1e-12, atol=1e-12)
    h = 1e-6
    plus = _as_list(k.call(_perturbed(k, inputs, d, h)))
    minus = _as_list(k.call(_perturbed(k, inputs, d, -h)))
    for t, p, m in zip(_as_list(tout), plus, minus):
        np.testing.assert_allclose(t, (p - m) / (2 * h), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", EXAMPLE_KERNELS)
def test_vjp_matches_central_differences(examples, rng, name):
    """<w, J v> from finite differences equals <J^T w, v> from the VJP (and the JVP)."""
    k = examples[name]
    inputs = example_inputs(name, rng)
    d = _directions(k, inputs, rng)
    outs = _as_list(k(*inputs))
    w = [rng.standard_normal(o.shape) for o in outs]
    cots = _as_list(k.vjp(inputs, w if len(w) > 1 else w[0]))
    assert len(cots) == len(k.differentiable_inputs)
    lhs = sum(float(np.vdot(c, d[a.name])) for c, a in zip(cots, k.differentiable_inputs))
    h = 1e-6
    plus = _as_list(k.call(_perturbed(k, inputs, d, h)))
    minus = _as_list(k.call(_perturbed(k, inputs, d, -h)))
    fd = sum(float(np.vdot(wi, (p - m) / (2 * h))) for wi, p, m in zip(w, plus, minus))
    assert lhs == pytest.approx(fd, rel=1e-6, abs=1e-7)
    _, tout = k.jvp(inputs, d)
    jv = sum(float(np.vdot(wi, t)) for wi, t in zip(w, _as_list(tout)))
    assert lhs == pytest.approx(jv, rel=1e-10, abs=1e-12)


def test_seed_forward_mode_is_the_known_diagonal(examples):
    """The classic example: d out[i] / d x[i] = 1 + prev / x[i]^2 (prev = int(x[i-1]))."""
    x = np.arange(1, 101, dtype=np.float64) ** 2
    out, dout = examples["seed"].jvp([x], [np.ones(100)])
    prev = np.concatenate([[0.0], np.trunc(x[:-1])])
    np.testing.assert_allclose(dout, 1 + prev / x**2, rtol=1e-14)
    np.testing.assert_allclose(out, ref_seed(x), rtol=1e-14)


# ---------------------------------------------------------------------- copies and modification


@pytest.mark.parametrize("name", EXAMPLE_KERNELS)
def test_inputs_are_never_modified(examples, rng, name):
    k = examples[name]
    inputs = example_inputs(name, rng)
    d = _directions(k, inputs, rng)
    outs = _as_list(k(*inputs))
    w = [rng.standard_normal(o.shape) for o in outs]
    before = checksum(*inputs, *d.values(), *w)
    k(*inputs)
    k.jvp(inputs, d)
    k.vjp(inputs, w if len(w) > 1 else w[0])
    assert checksum(*inputs, *d.values(), *w) == before


def test_inout_is_returned_as_a_new_array(examples, rng):
    axpy = examples["axpy"]
    x, y0 = rng.standard_normal(5), rng.standard_normal(5)
    keep = y0.copy()
    y = axpy(2.0, x, y0)
    assert y is not y0 and not np.shares_memory(y, y0)
    np.testing.assert_array_equal(y0, keep)
    np.testing.assert_allclose(y, 2.0 * x + keep)
    # Any layout and read-only arrays are fine for inout: they are copied.
    ro = np.ascontiguousarray(y0[::-1])
    ro.setflags(write=False)
    np.testing.assert_allclose(axpy(2.0, x, ro), 2.0 * x + keep[::-1])
    np.testing.assert_allclose(axpy(2.0, x, np.concatenate([y0, y0])[::2]), 2.0 * x + np.concatenate([keep, keep])[::2])


def test_contiguous_inputs_cross_without_copies(examples, rng, monkeypatch):
    """The arrays handed to the C call are the caller's own (same object, same memory)."""
    k = examples["softmax_energy"]
    seen = {}
    real = type(k).call_raw

    def spy(self, args):
        seen["args"] = list(args)
        return real(self, args)

    monkeypatch.setattr(type(k), "call_raw", spy)
    x = rng.standard_normal(6)
    e = k(x, 0.3)
    args = seen["args"]
    assert args[1] is x
    assert args[3] is e  # the output buffer handed to C is the array returned
    # Read-only inputs are fine too (they are only read).
    x.setflags(write=False)
    k(x, 0.3)
    assert seen["args"][1] is x


def test_fortran_kernel_takes_column_major_arrays_without_copies(matvec, rng, monkeypatch):
    a = np.asfortranarray(rng.standard_normal((4, 3)))
    x = rng.standard_normal(3)
    seen = {}
    real = type(matvec).call_raw
    monkeypatch.setattr(type(matvec), "call_raw", lambda self, args: (seen.setdefault("a", args), real(self, args))[1])
    y = matvec(a, x)
    assert seen["a"][2] is a
    np.testing.assert_allclose(y, a @ x, rtol=1e-13)
    assert matvec.order == "F"
    # A C-ordered matrix is refused (it would be read transposed), unless convert=True.
    with pytest.raises(simgrad.LayoutError, match="`a`.*Fortran"):
        matvec(np.ascontiguousarray(a), x)
    np.testing.assert_allclose(matvec.call((np.ascontiguousarray(a), x), convert=True), a @ x, rtol=1e-13)
    # Derivatives on a 2-D column-major argument.
    da, dx = rng.standard_normal((4, 3)), rng.standard_normal(3)
    _, ty = matvec.jvp((a, x), (np.asfortranarray(da), dx))
    np.testing.assert_allclose(ty, da @ x + a @ dx, rtol=1e-12)
    w = rng.standard_normal(4)
    ga, gx = matvec.vjp((a, x), w)
    np.testing.assert_allclose(ga, np.outer(w, x), rtol=1e-12)
    np.testing.assert_allclose(gx, a.T @ w, rtol=1e-12)
    assert ga.flags.f_contiguous


def test_row_major_2d_kernel_with_shapes_from_the_prototype(rowsum, rng):
    a, w = rng.standard_normal((3, 5)), rng.standard_normal(5)
    s = rowsum(a, w)
    np.testing.assert_allclose(s, (a * a * w).sum(1), rtol=1e-13)
    assert [str(d) for d in rowsum.arg("a").shape] == ["m", "n"]
    ga, gw = rowsum.vjp((a, w), np.ones(3))
    np.testing.assert_allclose(ga, 2 * a * w, rtol=1e-12)
    np.testing.assert_allclose(gw, (a * a).sum(0), rtol=1e-12)


def test_two_outputs_and_float32(scale_shift, rng):
    x = rng.standard_normal(8).astype(np.float32)
    y, z = scale_shift(np.float32(1.5), x)
    assert y.dtype == z.dtype == np.float32
    np.testing.assert_allclose(y, 1.5 * x, rtol=1e-6)
    np.testing.assert_allclose(z, x + 1.5 * x * x, rtol=1e-6)
    (y2, z2), (ty, tz) = scale_shift.jvp((1.5, x), {"s": 1.0})
    np.testing.assert_allclose(ty, x, rtol=1e-6)
    np.testing.assert_allclose(tz, x * x, rtol=1e-6)
    gs, gx = scale_shift.vjp((1.5, x), (np.ones(8, np.float32), None))
    assert gs.dtype == np.float32 and gs.shape == ()
    np.testing.assert_allclose(gs, x.sum(), rtol=1e-5)
    np.testing.assert_allclose(gx, np.full(8, 1.5, np.float32), rtol=1e-6)


def test_integer_arrays_are_not_differentiable(counts, rng):
    idx = np.arange(5, dtype=np.int64)
    x = rng.standard_normal(5)
    assert [a.name for a in counts.differentiable_inputs] == ["x"]
    np.testing.assert_allclose(counts(idx, x), x * idx)
    _, t = counts.jvp((idx, x), np.ones(5))
    np.testing.assert_allclose(t, idx.astype(float))
    np.testing.assert_allclose(counts.vjp((idx, x), np.ones(5)), idx.astype(float))
    with pytest.raises(simgrad.InvalidArgumentError, match="`idx`"):
        counts.jvp((idx, x), {"idx": np.ones(5)})


# ---------------------------------------------------------------------- calling conventions


def test_sizes_inferred_given_or_named(examples, rng):
    axpy = examples["axpy"]
    x, y = rng.standard_normal(4), rng.standard_normal(4)
    want = 3.0 * x + y
    for got in (
        axpy(3.0, x, y),
        axpy(4, 3.0, x, y),
        axpy(a=3.0, x=x, y=y),
        axpy(3.0, x, y=y),
        axpy.call({"a": 3.0, "x": x, "y": y}),
        axpy.call((3.0, x, y), {"n": 4}),
        axpy(np.float64(3.0), x, y),
    ):
        np.testing.assert_allclose(got, want)
    heat = examples["heat"]
    k, u0 = rng.random(6), rng.random(6)
    np.testing.assert_allclose(heat(3, k, u0), heat(6, 3, k, u0))
    np.testing.assert_allclose(heat(steps=3, kappa=k, u0=u0), ref_heat(3, k, u0))
    assert "steps" in heat.signature() and "n: size i64 = kappa.shape" in heat.signature()


def test_raw_calls_mirror_the_c_api(examples, rng):
    axpy = examples["axpy"]
    x, y = rng.standard_normal(3), rng.standard_normal(3)
    yy = y.copy()
    axpy.call_raw([3, 2.0, x, yy])  # inout updated in place: the raw layer is the C API
    np.testing.assert_allclose(yy, 2.0 * x + y)
    w = rng.standard_normal(3)
    ga, gx, gy = np.array(5.0), np.full(3, 1.0), np.full(3, 1.0)
    axpy.vjp_raw([3, 2.0, x, y], [None, None, None, w], [None, ga, gx, gy], accumulate=True)
    np.testing.assert_allclose(gx, 1.0 + 2.0 * w)
    np.testing.assert_allclose(gy, 1.0 + w)
    assert float(ga) == pytest.approx(5.0 + float(w @ x))
    axpy.vjp_raw([3, 2.0, x, y], [None, None, None, w], [None, ga, gx, gy])
    np.testing.assert_allclose(gx, 2.0 * w)
    assert float(ga) == pytest.approx(float(w @ x))
    t_out = np.zeros(3)
    yy = y.copy()
    axpy.jvp_raw([3, 2.0, x, yy], [None, np.array(1.0), None, None], [None, None, None, t_out])
    np.testing.assert_allclose(t_out, x)


def test_kernel_describes_its_manifest(examples):
    axpy = examples["axpy"]
    r = repr(axpy)
    assert "axpy(" in r and "y: inout f64[n]" in r and "modes=primal,jvp,vjp" in r
    assert [a.name for a in axpy.args] == ["n", "a", "x", "y"]
    assert [a.kind for a in axpy.args] == ["size", "scalar", "array", "array"]
    assert [a.intent for a in axpy.args] == ["in", "in", "in", "inout"]
    assert axpy.modes == ("primal", "jvp", "vjp") and axpy.order == "C"
    assert [a.name for a in axpy.inputs] == ["n", "a", "x", "y"]
    assert [a.name for a in axpy.outputs] == ["y"]
    assert [a.name for a in axpy.differentiable_inputs] == ["a", "x", "y"]
    assert axpy.manifest["name"] == "axpy" and axpy.manifest["args"][2]["shape"] == ["n"]
    assert examples["heat"].order == "F"
    assert "axpy" in axpy.describe()


def test_library_describes_itself(examples):
    assert examples.names == ("seed", "axpy", "softmax_energy", "heat")
    assert len(examples) == 4 and "heat" in examples and "nope" not in examples
    assert [k.name for k in examples] == list(examples.names)
    assert examples.axpy is examples["axpy"] is examples.kernel("axpy")
    r = repr(examples)
    assert "simgrad.Library" in r and "heat(" in r and "LLVM" in r
    assert examples.manifest["manifest_version"] == 1
    assert '"kernels"' in examples.manifest_json
    assert examples.path.endswith(".so")
    with pytest.raises(AttributeError):
        examples.not_a_kernel  # noqa: B018


# ---------------------------------------------------------------------- handles


def test_close_and_context_manager(examples):
    lib = simgrad.load(examples.path)
    k = lib["axpy"]
    with lib as same:
        assert same is lib
    assert lib.closed and "closed" in repr(lib)
    with pytest.raises(simgrad.ClosedError, match="closed"):
        lib["axpy"]
    lib.close()  # idempotent
    # A kernel keeps its own handle (and the code) alive after its library is closed.
    np.testing.assert_allclose(k(2.0, np.ones(2), np.ones(2)), [3.0, 3.0])
    k.close()
    with pytest.raises(simgrad.ClosedError, match="axpy"):
        k(2.0, np.ones(2), np.ones(2))
    assert isinstance(simgrad.ClosedError(None, "x"), simgrad.NullArgumentError)


def test_handles_are_freed_by_the_garbage_collector(examples):
    freed = []
    clib = simgrad._loader.lib()
    real = clib.simgrad_kernel_free

    class Spy:
        def __call__(self, ptr):
            freed.append(True)
            return real(ptr)

    lib = simgrad.load(examples.path)
    k = lib["seed"]
    k._lib = type("L", (), {"simgrad_kernel_free": Spy()})()
    del k
    lib._kernels.clear()
    gc.collect()
    assert freed == [True]
    lib.close()


def test_load_errors_carry_the_library_message(clib, tmp_path):
    missing = tmp_path / "nope.so"
    with pytest.raises(simgrad.LibraryError) as e:
        simgrad.load(missing)
    assert e.value.status == simgrad._bindings.SIMGRAD_ERR_LIBRARY
    assert "nope.so" in e.value.message and "simgrad_library_open" in str(e.value)
    bogus = tmp_path / "manifest.json"
    bogus.write_text("{not json")
    with pytest.raises((simgrad.ManifestError, simgrad.LibraryError)):
        simgrad.load(missing, manifest=bogus)


# ---------------------------------------------------------------------- threads


def test_calls_release_the_gil(examples):
    """While one thread is inside a kernel, the main thread keeps running Python code: the
    longest pause between two of its loop iterations is far shorter than the call."""
    heat = examples["heat"]
    kappa, u0 = np.full(200, 0.5), np.linspace(0, 1, 200)
    steps = 10_000
    t0 = time.perf_counter()
    heat(steps, kappa, u0)
    per_step = (time.perf_counter() - t0) / steps
    steps = max(steps, int(0.3 / max(per_step, 1e-9)))
    started, done = threading.Event(), threading.Event()
    span = {}

    def work():
        started.set()
        t = time.perf_counter()
        heat(steps, kappa, u0)
        span["call"] = time.perf_counter() - t
        done.set()

    th = threading.Thread(target=work)
    th.start()
    started.wait()
    last = time.perf_counter()
    max_gap = 0.0
    while not done.is_set():
        now = time.perf_counter()
        max_gap = max(max_gap, now - last)
        last = now
    th.join()
    assert span["call"] > 0.1
    assert max_gap < span["call"] / 2, f"main thread paused {max_gap:.3f} s during a {span['call']:.3f} s call"


def test_concurrent_calls_on_one_kernel(examples, rng):
    axpy = examples["axpy"]
    xs = [rng.standard_normal(1000) for _ in range(8)]
    results = [None] * 8

    def work(i):
        for _ in range(50):
            results[i] = axpy(float(i), xs[i], xs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(8):
        np.testing.assert_allclose(results[i], (i + 1.0) * xs[i])
