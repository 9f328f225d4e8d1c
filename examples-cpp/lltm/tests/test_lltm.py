"""The Enzyme-backed LLTM against the pure-PyTorch LLTM (the ground truth), in float64 and
float32, through the AOT and JIT PyTorch extensions and the nanobind module, with both kernel
variants (portable, and AVX2 + FMA where the CPU has them).

Tolerances compare each tensor with its reference: |a - b| <= tol * (max|b| + |b|) elementwise,
tol = 1e-12 (float64) and 1e-5 (float32).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import lltm_simgrad
import reference
from conftest import variants

SHAPES = [
    (16, 32, 128),  # the benchmark's shape
    (1, 1, 1),
    (3, 5, 7),  # a partial batch block, vector tails everywhere
    (7, 13, 33),
    (8, 64, 64),
    (5, 40, 17),
]
DTYPES = [torch.float64, torch.float32]
TOL = {torch.float64: 1e-12, torch.float32: 1e-5}


def assert_close(actual, expected, dtype, what="", tol=None):
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, what
    tol = tol or TOL[dtype]
    scale = expected.abs().max().item()
    torch.testing.assert_close(
        actual, expected, rtol=tol, atol=tol * max(scale, 1e-300), msg=lambda m: f"{what}: {m}"
    )


def make_inputs(B, F, S, dtype, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    stdv = 1.0 / S**0.5
    return dict(
        input=torch.randn(B, F, dtype=dtype, generator=g) * scale,
        weights=(torch.rand(3 * S, S + F, dtype=dtype, generator=g) * 2 - 1) * stdv * scale,
        bias=(torch.rand(3 * S, dtype=dtype, generator=g) * 2 - 1) * stdv * scale,
        old_h=torch.randn(B, S, dtype=dtype, generator=g) * scale,
        old_cell=torch.randn(B, S, dtype=dtype, generator=g) * scale,
    )


NAMES = ["input", "weights", "bias", "old_h", "old_cell"]


def run(fn, inputs, seeds):
    """Outputs and the gradients of <seeds, outputs> with respect to every input."""
    leaves = {k: v.clone().requires_grad_() for k, v in inputs.items()}
    outs = fn(*(leaves[n] for n in NAMES))
    torch.autograd.backward(outs, seeds)
    return [o.detach() for o in outs], [leaves[n].grad for n in NAMES]


@pytest.fixture(params=variants())
def variant(request):
    return request.param


@pytest.mark.parametrize("mode", ["aot", "jit"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matches_pure_pytorch(exts, kernel_lib, mode, variant, dtype, shape):
    ext = exts[mode]
    ext.init(kernel_lib, variant)
    lltm_simgrad.use_extension(ext)
    inputs = make_inputs(*shape, dtype, seed=sum(shape))
    g = torch.Generator().manual_seed(1)
    seeds = [torch.randn(shape[0], shape[2], dtype=dtype, generator=g) for _ in range(2)]
    outs_ref, grads_ref = run(reference.lltm_python, inputs, seeds)
    outs, grads = run(lltm_simgrad.LLTMFunction.apply, inputs, seeds)
    for name, a, b in zip(["new_h", "new_cell"], outs, outs_ref):
        assert_close(a, b, dtype, name)
    for name, a, b in zip(NAMES, grads, grads_ref):
        assert_close(a, b, dtype, f"d_{name}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_module_matches_pure_pytorch_module(aot, dtype):
    """LLTM and LLTMPython: same parameters after the same seed, same outputs, same parameter
    gradients, and the same parameters after an SGD step."""
    aot.init(aot.library_path(), "auto")
    lltm_simgrad.use_extension(aot)
    torch.manual_seed(3)
    ref = reference.LLTMPython(32, 128, dtype=dtype)
    torch.manual_seed(3)
    mod = lltm_simgrad.LLTM(32, 128, dtype=dtype)
    assert torch.equal(ref.weights, mod.weights) and torch.equal(ref.bias, mod.bias)
    x = torch.randn(16, 32, dtype=dtype)
    state = (torch.randn(16, 128, dtype=dtype), torch.randn(16, 128, dtype=dtype))
    for m in (ref, mod):
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        h, c = m(x, state)
        (h.pow(2).sum() + c.sum()).backward()
        opt.step()
    assert_close(mod.weights.detach(), ref.weights.detach(), dtype, "weights after a step")
    assert_close(mod.bias.detach(), ref.bias.detach(), dtype, "bias after a step")


def test_gradcheck_float64(aot):
    """torch.autograd.gradcheck: backward (Enzyme VJP) and forward-mode AD (Enzyme JVP) against
    finite differences."""
    lltm_simgrad.use_extension(aot)
    for variant in variants():
        aot.init(aot.library_path(), variant)
        for shape in [(2, 3, 4), (5, 7, 9)]:
            inputs = make_inputs(*shape, torch.float64, seed=7)
            args = tuple(inputs[n].requires_grad_() for n in NAMES)
            assert torch.autograd.gradcheck(
                lltm_simgrad.LLTMFunction.apply, args, check_forward_ad=True, check_undefined_grad=True
            )


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_forward_ad_matches_pure_pytorch(aot, dtype):
    """The Enzyme JVP (LLTMFunction.jvp, through torch.autograd.forward_ad) against PyTorch's
    forward AD of the pure-PyTorch cell."""
    import torch.autograd.forward_ad as fwAD

    aot.init(aot.library_path(), "auto")
    lltm_simgrad.use_extension(aot)
    inputs = make_inputs(16, 32, 128, dtype, seed=11)
    tangents = make_inputs(16, 32, 128, dtype, seed=12)
    results = []
    for fn in (lltm_simgrad.LLTMFunction.apply, reference.lltm_python):
        with fwAD.dual_level():
            duals = [fwAD.make_dual(inputs[n], tangents[n]) for n in NAMES]
            outs = fn(*duals)
            results.append([t for o in outs for t in fwAD.unpack_dual(o)])
    for a, b in zip(*results):
        assert_close(a, b, dtype, "jvp")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_aot_jit_nanobind_agree(aot, jit, nbm, dtype):
    """One kernel library, three bindings: bit-for-bit the same numbers."""
    variant = variants()[-1]
    aot.init(aot.library_path(), variant)
    jit.init(aot.library_path(), variant)
    nbm.init(aot.library_path(), variant)
    assert aot.kernel_names() == jit.kernel_names() == list(nbm.kernel_names())
    inputs = make_inputs(16, 32, 128, dtype, seed=5)
    args = [inputs[n] for n in NAMES]
    g = torch.Generator().manual_seed(6)
    gh, gc = torch.randn(16, 128, dtype=dtype, generator=g), torch.randn(16, 128, dtype=dtype, generator=g)
    results = {}
    for name, ext in (("aot", aot), ("jit", jit)):
        fwd = ext.forward(*args)
        bwd = ext.backward(gh, gc, *args)
        results[name] = [t.numpy() for t in fwd + bwd]
    nargs = [a.numpy() for a in args]
    fwd = nbm.forward(*nargs)
    bwd = nbm.backward(gh.numpy(), gc.numpy(), *nargs)
    results["nanobind"] = list(fwd) + list(bwd)
    for name in ("jit", "nanobind"):
        for a, b in zip(results[name], results["aot"]):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b, err_msg=name)
    # ... and the same as the pure-PyTorch reference.
    outs_ref, grads_ref = run(reference.lltm_python, inputs, [gh, gc])
    for a, b in zip(results["nanobind"], outs_ref + grads_ref):
        assert_close(torch.from_numpy(a), b, dtype, "nanobind")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_aten_reference_matches_pure_pytorch(aten, dtype):
    """The hand-written ATen backward of the benchmark is right too."""
    inputs = make_inputs(16, 32, 128, dtype, seed=9)
    g = torch.Generator().manual_seed(10)
    seeds = [torch.randn(16, 128, dtype=dtype, generator=g) for _ in range(2)]
    outs_ref, grads_ref = run(reference.lltm_python, inputs, seeds)
    outs, grads = run(reference.LLTMFunctionATen.apply, inputs, seeds)
    for a, b in zip(outs + grads, outs_ref + grads_ref):
        assert_close(a, b, dtype, "aten")


def test_only_requested_gradients(aot):
    """ctx.needs_input_grad reaches the VJP: absent cotangents are neither computed nor returned."""
    aot.init(aot.library_path(), "auto")
    lltm_simgrad.use_extension(aot)
    inputs = make_inputs(4, 6, 8, torch.float64, seed=13)
    w = inputs["weights"].clone().requires_grad_()
    h, c = lltm_simgrad.LLTMFunction.apply(inputs["input"], w, inputs["bias"], inputs["old_h"], inputs["old_cell"])
    (h.sum() + c.sum()).backward()
    w_ref = inputs["weights"].clone().requires_grad_()
    h, c = reference.lltm_python(inputs["input"], w_ref, inputs["bias"], inputs["old_h"], inputs["old_cell"])
    (h.sum() + c.sum()).backward()
    assert_close(w.grad, w_ref.grad, torch.float64, "d_weights")
    out = aot.backward(torch.ones(4, 8, dtype=torch.float64), torch.ones(4, 8, dtype=torch.float64),
                       *(inputs[n] for n in NAMES), needs=[False, True, False, False, False])
    assert out[0] is None and out[2] is None and out[3] is None and out[4] is None
    assert_close(out[1], w_ref.grad, torch.float64, "d_weights via needs")


def test_non_contiguous_and_expanded_inputs(aot):
    """Views that are not contiguous (a transpose, an expanded gradient) give the same numbers."""
    aot.init(aot.library_path(), "auto")
    lltm_simgrad.use_extension(aot)
    inputs = make_inputs(6, 5, 7, torch.float64, seed=14)
    x_t = inputs["input"].t().contiguous().t()  # same values, column-major
    assert not x_t.is_contiguous()
    args = [x_t] + [inputs[n] for n in NAMES[1:]]
    h, c = lltm_simgrad.LLTMFunction.apply(*args)
    h_ref, c_ref = reference.lltm_python(*(inputs[n] for n in NAMES))
    assert_close(h, h_ref, torch.float64, "new_h")
    leaves = [a.clone().requires_grad_() for a in args]
    h, c = lltm_simgrad.LLTMFunction.apply(*leaves)
    (h.sum() + c.sum()).backward()  # .sum() hands backward expanded (stride-0) gradients
    ref = [inputs[n].clone().requires_grad_() for n in NAMES]
    h, c = reference.lltm_python(*ref)
    (h.sum() + c.sum()).backward()
    for a, b in zip(leaves, ref):
        assert_close(a.grad, b.grad, torch.float64, "grad")


def test_errors_name_the_argument(aot):
    aot.init(aot.library_path(), "auto")
    inputs = make_inputs(4, 6, 8, torch.float64, seed=15)
    args = [inputs[n] for n in NAMES]
    bad = list(args)
    bad[1] = torch.zeros(3 * 8, 6 + 8 + 1, dtype=torch.float64)  # weights one column too wide
    with pytest.raises(RuntimeError, match="weights"):
        aot.forward(*bad)
    bad = list(args)
    bad[2] = bad[2].float()
    with pytest.raises(RuntimeError, match="dtype"):
        aot.forward(*bad)
    with pytest.raises(RuntimeError, match="float32 or float64"):
        aot.forward(*[a.to(torch.int64) for a in args])
    with pytest.raises(ValueError, match="variant"):
        aot.init(aot.library_path(), "sse9")
    aot.init(aot.library_path(), "auto")
    with pytest.raises(RuntimeError, match="simgrad_library_open"):
        aot.init("/nonexistent/liblltm.so")
    aot.init(aot.library_path(), "auto")  # the previous library is still in use after a failure


def test_large_values_stay_finite(aot):
    """Saturated gates (|z| in the hundreds) must not turn gradients into NaN: the kernel's
    activations keep every exponential's argument non-positive (see lltm.cpp). Gates of several
    hundred lose digits in float32 (sums of 48 products of size ~1e3), hence the looser float32
    tolerance here."""
    aot.init(aot.library_path(), "auto")
    lltm_simgrad.use_extension(aot)
    for dtype in DTYPES:
        inputs = make_inputs(8, 16, 32, dtype, seed=16, scale=30.0)
        g = torch.Generator().manual_seed(17)
        seeds = [torch.randn(8, 32, dtype=dtype, generator=g) for _ in range(2)]
        outs, grads = run(lltm_simgrad.LLTMFunction.apply, inputs, seeds)
        outs_ref, grads_ref = run(reference.lltm_python, inputs, seeds)
        for a, b in zip(outs + grads, outs_ref + grads_ref):
            assert torch.isfinite(a).all()
            assert_close(a, b, dtype, "large values", tol=1e-12 if dtype == torch.float64 else 1e-4)


def test_threads(aot):
    """The GIL is released during kernel calls; concurrent calls give the same results."""
    aot.init(aot.library_path(), "auto")
    inputs = make_inputs(16, 32, 128, torch.float32, seed=18)
    args = [inputs[n] for n in NAMES]
    expected = aot.forward(*args)
    errors = []

    def work():
        try:
            for _ in range(20):
                h, c = aot.forward(*args)
                assert torch.equal(h, expected[0]) and torch.equal(c, expected[1])
                aot.backward(h, c, *args)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
