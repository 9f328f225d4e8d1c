"""The quick call paths (precomputed argument plans, descriptor blocks) against the general ones:
same results, same errors, same descriptors; VJPs pass their ``out`` arguments without data."""

from __future__ import annotations

import ctypes
import inspect
import threading

import numpy as np
import pytest
from _support import EXAMPLE_KERNELS, example_inputs

import simgrad
from simgrad import _bindings as B
from simgrad import _tensor as T


@pytest.fixture
def rng():
    return np.random.default_rng(7)


# ---------------------------------------------------------------------- descriptors


def _arrays():
    base = np.arange(24.0).reshape(4, 6)
    ro = np.arange(5.0)
    ro.setflags(write=False)
    return [
        np.arange(5.0),
        base,
        base[:, 1:],
        base.T,
        np.asfortranarray(base),
        base[::2, ::-1],
        np.zeros((), np.int32),
        np.empty(0),
        np.empty((3, 0)),
        ro,
        np.ones(3, np.float32),
    ]


@pytest.mark.parametrize("i", range(len(_arrays())))
def test_data_pointer_is_the_arrays(i):
    a = _arrays()[i]
    assert T.numpy_data_ptr(a) == a.__array_interface__["data"][0] == a.ctypes.data


def _fields(t: B.simgrad_tensor) -> tuple:
    shape = tuple(t.shape[k] for k in range(t.ndim)) if t.shape else ()
    strides = tuple(t.strides[k] for k in range(t.ndim)) if t.strides else None
    return (t.data or 0, t.device.device_type, t.device.device_id, t.ndim, t.dtype.code, t.dtype.bits, t.dtype.lanes, shape, strides, t.byte_offset)


@pytest.mark.skipif(not T.BLOCKS, reason="descriptor blocks need the 64-bit simgrad_tensor")
@pytest.mark.parametrize("i", range(len(_arrays())))
def test_block_descriptor_matches_describe(i):
    """A descriptor written into a block has every field `describe` gives the same array."""
    a = _arrays()[i]
    name = T.NUMPY_NAMES[a.dtype]
    lay = T.Layout([("f64", a.ndim, False), (name, 0, True)], 3)
    blk, base = lay.new()
    lay.put_array(blk, base, 4, a, "a")  # list 2, argument 0
    lay.put_value(blk, base, 1, name, 3)
    arr = (B.simgrad_tensor * 6).from_address(base)
    want = T.describe(a, "a").tensor
    assert _fields(arr[4]) == _fields(want)
    assert arr[0].data is None and arr[2].data is None  # absent slots
    v = ctypes.cast(arr[1].data, ctypes.POINTER(T.SCALAR_CTYPES[name])).contents.value
    assert v == 3 and arr[1].ndim == 0


@pytest.mark.skipif(not T.BLOCKS, reason="descriptor blocks need the 64-bit simgrad_tensor")
@pytest.mark.parametrize(
    "dtype, value",
    [("f32", 1e300), ("f32", 0.1), ("f64", 0.1), ("i32", 2**32 + 5), ("i32", -7), ("i64", 2**64 + 3), ("i64", -(2**63))],
)
def test_values_convert_as_ctypes_does(dtype, value):
    """Sizes and scalars passed by value take ctypes' conversion (floats round, ints wrap)."""
    lay = T.Layout([(dtype, 0, True)], 1)
    blk, base = lay.new()
    lay.put_value(blk, base, 0, dtype, value)
    got = ctypes.cast(blk[0], ctypes.POINTER(T.SCALAR_CTYPES[dtype])).contents.value
    assert got == T.SCALAR_CTYPES[dtype](value).value


# ---------------------------------------------------------------------- NumPy calls


@pytest.mark.parametrize("name", EXAMPLE_KERNELS)
def test_quick_and_general_paths_agree(examples, rng, name):
    """``k(*inputs)`` (quick) and ``k.call({...})`` (general: a mapping) give the same outputs,
    JVPs and VJPs."""
    k = examples[name]
    inputs = example_inputs(name, rng)
    named = {a.name: v for a, v in zip([a for a in k.inputs if a.name not in k._inferable], inputs)}
    assert k._quick_args(tuple(inputs)) is not None
    quick, general = k(*inputs), k.call(named)
    for q, g in zip(quick if isinstance(quick, tuple) else (quick,), general if isinstance(general, tuple) else (general,)):
        np.testing.assert_array_equal(q, g)
    cot = [np.ones_like(o) for o in (quick if isinstance(quick, tuple) else (quick,))]
    vq = k.vjp(tuple(inputs), cot)
    vg = k.vjp(named, cot)
    for q, g in zip(vq if isinstance(vq, tuple) else (vq,), vg if isinstance(vg, tuple) else (vg,)):
        np.testing.assert_array_equal(q, g)


def test_vjp_passes_out_arguments_without_data(examples, monkeypatch):
    """A VJP allocates nothing for ``out`` arguments: they cross with data NULL (`ShapeOnly`)."""
    k = examples["seed"]
    seen = []
    real = type(k).vjp_raw
    monkeypatch.setattr(type(k), "vjp_raw", lambda self, args, cin, cout, **kw: (seen.append(list(args)), real(self, args, cin, cout, **kw))[1])
    x = np.arange(1.0, 101.0)
    g = k.vjp((x,), np.ones(100))
    out = seen[-1][1]
    assert isinstance(out, T.ShapeOnly) and out.shape == (100,) and out.dtype == "f64"
    np.testing.assert_allclose(g, k.vjp({"x": x}, np.ones(100)))
    # The general path too (keywords), and the raw layer accepts it only where the C API does.
    k.vjp({"x": x}, np.ones(100))
    assert isinstance(seen[-1][1], T.ShapeOnly)
    with pytest.raises(simgrad.NullArgumentError, match="`out`"):
        k.call_raw([x, T.ShapeOnly("f64", (100,))])


def test_raw_call_with_the_wrong_rank_is_reported_by_the_runtime(examples):
    """An array whose rank differs from its argument's does not fit the block layout: it is
    described on its own and libsimgrad reports it."""
    axpy = examples["axpy"]
    with pytest.raises(simgrad.ShapeError, match="simgrad_kernel_call.*`x`"):
        axpy.call_raw([5, 2.0, np.arange(5.0).reshape(5, 1), np.ones(5)])
    with pytest.raises(simgrad.ShapeError, match="`y`"):
        axpy.vjp_raw([5, 2.0, np.arange(5.0), np.ones(5)], [None, None, None, np.ones((5, 1))], None)


def test_quick_path_hands_back_to_the_general_one(examples, rng):
    """Whatever the quick checks do not cover still works (and converts or fails) as before."""
    axpy = examples["axpy"]
    x, y = rng.standard_normal(4), rng.standard_normal(4)
    want = 3.0 * x + y
    for inputs in ((np.float64(3.0), x, y), (3, x, y), (4, 3.0, x, y), (3.0, x, np.asfortranarray(y[::-1])[::-1])):
        np.testing.assert_allclose(axpy(*inputs), want)
    np.testing.assert_allclose(axpy.call((3.0, list(x), y), convert=True), want)
    with pytest.raises(simgrad.DTypeError, match="size `n`"):
        axpy(None, 3.0, x, y)
    with pytest.raises(simgrad.ShapeError, match="size `steps` is -1"):
        examples["heat"](-1, x, x)


def test_calls_from_many_threads_keep_their_own_descriptors(examples):
    """Every call writes a descriptor block of its own: concurrent calls with different sizes
    never see each other's shapes or pointers."""
    axpy = examples["axpy"]
    errors = []

    def work(n):
        try:
            x, y = np.arange(float(n)), np.ones(n)
            for _ in range(200):
                np.testing.assert_array_equal(axpy(2.0, x, y), 2.0 * x + y)
                ga, gx, gy = axpy.vjp((2.0, x, y), np.ones(n))
                np.testing.assert_array_equal(gx, np.full(n, 2.0))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in (1, 3, 17, 64, 300)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


# ---------------------------------------------------------------------- PyTorch


def test_positional_signature_binds_like_inspect():
    torch = pytest.importorskip("torch")  # noqa: F841
    from simgrad.torch import _bind_quickly

    def forward(extra, want, *rest):
        return None

    plain = inspect.signature(forward)
    _bind_quickly(forward)
    fast = inspect.signature(forward)
    assert type(fast).__name__ == "_PositionalSignature" and fast == plain
    for args in [((), 1), ((), 1, 2), ((), 1, 2, 3, "x")]:
        got, want = fast.bind(*args), plain.bind(*args)
        assert got.arguments == want.arguments and got.args == want.args and got.kwargs == want.kwargs
        got.apply_defaults()
        want.apply_defaults()
        assert got.arguments == want.arguments and got.args == want.args
    with pytest.raises(TypeError):
        fast.bind(())
    assert fast.bind((), want=1).arguments == plain.bind((), want=1).arguments


def test_torch_paths_inside_and_outside_transforms_agree(examples):
    """Outside torch.func transforms the ctx-form twins run; inside, the setup_context forms:
    same values either way."""
    torch = pytest.importorskip("torch")
    import simgrad.torch as st

    f = st.function(examples["seed"])
    x = torch.tensor(np.arange(1, 101, dtype=np.float64) ** 1.5 + 0.37, requires_grad=True)
    f(x).sum().backward()
    g_plain = x.grad.clone()
    g_func = torch.func.grad(lambda v: f(v).sum())(x.detach())
    torch.testing.assert_close(g_plain, g_func, rtol=0, atol=0)
    # The Function itself (setup_context form) applied directly.
    x.grad = None
    f.function.apply((), x).sum().backward()
    torch.testing.assert_close(x.grad, g_plain, rtol=0, atol=0)
