"""Bad inputs are refused with the exception of their C status and a message naming the argument
(and nothing is modified when a call is refused)."""

from __future__ import annotations

import types

import numpy as np
import pytest

import simgrad

X = np.arange(5.0)
Y = np.ones(5)

# (case id, kernel, call -> raises, exception class, text the message must contain)
NUMPY_CASES = [
    ("wrong dtype", "axpy", lambda k: k(2.0, X.astype(np.float32), Y), simgrad.DTypeError, "`x`"),
    ("wrong dtype inout", "axpy", lambda k: k(2.0, X, Y.astype(np.int64)), simgrad.DTypeError, "`y`"),
    ("unsupported dtype", "axpy", lambda k: k(2.0, X.astype(np.complex128), Y), simgrad.DTypeError, "`x`"),
    ("list instead of array", "axpy", lambda k: k(2.0, [0.0, 1, 2, 3, 4], Y), simgrad.DTypeError, "`x`"),
    ("wrong shape", "axpy", lambda k: k(2.0, X, np.ones(6)), simgrad.ShapeError, "`y`"),
    ("wrong rank", "axpy", lambda k: k(2.0, X.reshape(5, 1), Y), simgrad.ShapeError, "`x`"),
    ("fixed shape", "seed", lambda k: k(np.ones(99)), simgrad.ShapeError, "`x`"),
    ("size contradicts shape", "axpy", lambda k: k(6, 2.0, X, Y), simgrad.ShapeError, "`x`"),
    ("non-contiguous", "axpy", lambda k: k(2.0, np.arange(10.0)[::2], Y), simgrad.LayoutError, "`x`"),
    ("missing argument", "axpy", lambda k: k(x=X, y=Y), simgrad.InvalidArgumentError, "`a`"),
    ("missing size", "heat", lambda k: k(kappa=X, u0=X), simgrad.InvalidArgumentError, "`steps`"),
    ("too many arguments", "axpy", lambda k: k(5, 2.0, X, Y, Y), simgrad.InvalidArgumentError, "axpy"),
    ("unknown argument", "axpy", lambda k: k(2.0, X, Y, z=Y), simgrad.InvalidArgumentError, "`z`"),
    ("output passed", "softmax_energy", lambda k: k(X, 1.0, e=np.zeros(1)), simgrad.InvalidArgumentError, "`e`"),
    ("given twice", "axpy", lambda k: k(2.0, X, Y, x=X), simgrad.InvalidArgumentError, "x"),
    ("scalar not a number", "axpy", lambda k: k("two", X, Y), simgrad.DTypeError, "`a`"),
    ("scalar is an array", "axpy", lambda k: k(np.ones(2), X, Y), simgrad.ShapeError, "`a`"),
    ("size not an integer", "heat", lambda k: k(2.5, X, X), simgrad.DTypeError, "`steps`"),
    ("negative size", "heat", lambda k: k(-1, X, X), simgrad.ShapeError, "`steps`"),
    ("tangent wrong shape", "axpy", lambda k: k.jvp((2.0, X, Y), (None, np.ones(4), None)), simgrad.ShapeError, "`x`"),
    ("tangent wrong dtype", "axpy", lambda k: k.jvp((2.0, X, Y), (None, np.ones(5, np.float32), None)), simgrad.DTypeError, "`x`"),
    ("too many tangents", "axpy", lambda k: k.jvp((2.0, X, Y), (None, None, None, None)), simgrad.InvalidArgumentError, "tangents"),
    ("cotangent of an input", "axpy", lambda k: k.vjp((2.0, X, Y), {"x": Y}), simgrad.InvalidArgumentError, "`x`"),
    ("cotangent wrong shape", "axpy", lambda k: k.vjp((2.0, X, Y), np.ones(3)), simgrad.ShapeError, "`y`"),
]


@pytest.mark.parametrize("case", NUMPY_CASES, ids=[c[0] for c in NUMPY_CASES])
def test_numpy_bad_inputs(examples, case):
    _, kernel, call, exc, text = case
    k = examples[kernel]
    before = (X.copy(), Y.copy())
    with pytest.raises(exc) as e:
        call(k)
    assert text in str(e.value), str(e.value)
    assert isinstance(e.value, simgrad.SimgradError) and e.value.status == exc.default_status
    np.testing.assert_array_equal(X, before[0])
    np.testing.assert_array_equal(Y, before[1])


def test_unknown_kernel_lists_the_kernels(examples):
    with pytest.raises(simgrad.NotFoundError, match="unknown kernel `nope`.*axpy") as e:
        examples["nope"]
    assert isinstance(e.value, LookupError)


def test_closed_library_and_kernel(examples):
    lib = simgrad.load(examples.path)
    k = lib["axpy"]
    lib.close()
    with pytest.raises(simgrad.ClosedError, match="library"):
        lib["axpy"]
    k.close()
    with pytest.raises(simgrad.ClosedError, match="kernel `axpy` is closed"):
        k(2.0, X, Y)
    with pytest.raises(simgrad.ClosedError):
        k.vjp_raw([5, 2.0, X, Y], None, None)


def test_errors_from_c_carry_the_function_and_argument(examples):
    # The raw layer leaves every check to libsimgrad: its message names the C function.
    axpy = examples["axpy"]
    with pytest.raises(simgrad.ShapeError) as e:
        axpy.call_raw([5, 2.0, X, np.ones(4)])
    assert "simgrad_kernel_call" in str(e.value) and "`y`" in str(e.value)
    with pytest.raises(simgrad.LayoutError) as e:
        axpy.call_raw([5, 2.0, np.arange(10.0)[::2], Y.copy()])
    assert "`x`" in str(e.value) and "strides" in str(e.value)
    with pytest.raises(simgrad.AliasError) as e:
        y = Y.copy()
        axpy.jvp_raw([5, 2.0, X, y], None, [None, None, None, y])
    assert "`y`" in str(e.value)


# ---------------------------------------------------------------------- PyTorch


torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def taxpy(examples):
    import simgrad.torch as st

    return st.function(examples["axpy"])


TORCH_CASES = [
    ("wrong dtype", lambda f: f(2.0, torch.ones(5, dtype=torch.float32), torch.ones(5, dtype=torch.float64)), simgrad.DTypeError, "`x`"),
    ("integer tensor", lambda f: f(2.0, torch.ones(5, dtype=torch.int64), torch.ones(5, dtype=torch.float64)), simgrad.DTypeError, "`x`"),
    ("non-contiguous", lambda f: f(2.0, torch.arange(10.0, dtype=torch.float64)[::2], torch.ones(5, dtype=torch.float64)), simgrad.LayoutError, "`x`"),
    ("wrong shape", lambda f: f(2.0, torch.ones(5, dtype=torch.float64), torch.ones(6, dtype=torch.float64)), simgrad.ShapeError, "`y`"),
    ("meta device", lambda f: f(2.0, torch.ones(5, dtype=torch.float64, device="meta"), torch.ones(5, dtype=torch.float64)), simgrad.LayoutError, "device `meta`"),
    ("missing argument", lambda f: f(x=torch.ones(5, dtype=torch.float64), y=torch.ones(5, dtype=torch.float64)), simgrad.InvalidArgumentError, "`a`"),
    ("not a tensor", lambda f: f(2.0, "x", torch.ones(5, dtype=torch.float64)), simgrad.DTypeError, "`x`"),
]


@pytest.mark.parametrize("case", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_torch_bad_inputs(taxpy, case):
    _, call, exc, text = case
    with pytest.raises(exc) as e:
        call(taxpy)
    assert text in str(e.value), str(e.value)


def test_cuda_tensors_are_refused(taxpy):
    """A real CUDA tensor when there is a GPU; otherwise the device check itself, fed an object
    that claims to live on cuda:0 (the check only looks at ``.device``)."""
    from simgrad._tensor import check_torch_device

    if torch.cuda.is_available():
        with pytest.raises(simgrad.LayoutError, match=r"`x`.*cuda.*\.cpu\(\)"):
            taxpy(2.0, torch.ones(5, dtype=torch.float64, device="cuda"), torch.ones(5, dtype=torch.float64))
    fake = types.SimpleNamespace(device=torch.device("cuda", 0))
    with pytest.raises(simgrad.LayoutError, match=r"argument `x` is on device `cuda:0`.*\.cpu\(\)"):
        check_torch_device(fake, "kernel `axpy`: argument `x`")


def test_torch_raw_layer_refuses_non_cpu_tensors(examples):
    with pytest.raises(simgrad.LayoutError, match="`x`.*meta"):
        examples["axpy"].call_raw([5, 2.0, torch.ones(5, dtype=torch.float64, device="meta"), torch.ones(5, dtype=torch.float64)])
