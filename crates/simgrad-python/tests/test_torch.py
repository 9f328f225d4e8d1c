"""simgrad.torch: gradcheck in reverse and forward mode for every example kernel, torch.func
transforms (grad, jvp, jacfwd, jacrev, vmap) against loops, zero-copy, float32, threads."""

from __future__ import annotations

import threading
import time
import warnings

import numpy as np
import pytest
from _support import EXAMPLE_KERNELS, KERNELS, example_inputs, skip_or_fail

torch = pytest.importorskip("torch")
F = pytest.importorskip("torch.func")

import simgrad  # noqa: E402
import simgrad.torch as st  # noqa: E402

warnings.filterwarnings("ignore", message=".*torch.jit.script.*")


def torch_inputs(name, rng, requires_grad=True):
    """The NumPy inputs as float64 tensors (sizes stay ints; scalars become 0-d tensors)."""
    out = []
    for v in example_inputs(name, rng):
        if isinstance(v, int):
            out.append(v)
        else:
            t = torch.tensor(np.asarray(v, dtype=np.float64))
            out.append(t.requires_grad_(requires_grad))
    return out


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.mark.parametrize("name", EXAMPLE_KERNELS)
def test_gradcheck_reverse_and_forward(examples, rng, name):
    f = st.function(examples[name])
    args = torch_inputs(name, rng)
    # Batched (legacy vmap) gradient checks are off: torch.func.vmap is tested below instead.
    assert torch.autograd.gradcheck(
        f, args, check_forward_ad=True, check_backward_ad=True, check_batched_grad=False, check_batched_forward_grad=False
    )


@pytest.mark.parametrize("name", EXAMPLE_KERNELS)
def test_forward_ad_only(examples, rng, name):
    f = st.function(examples[name])
    args = torch_inputs(name, rng)
    assert torch.autograd.gradcheck(f, args, check_forward_ad=True, check_backward_ad=False, check_undefined_grad=False)


def _split(args):
    """(tensors, rebuild): the differentiable tensors and a function putting them back."""
    pos = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]

    def rebuild(*ts):
        full = list(args)
        for i, t in zip(pos, ts):
            full[i] = t
        return full

    return [args[i].detach() for i in pos], rebuild


@pytest.mark.parametrize("name", EXAMPLE_KERNELS)
def test_torch_func_transforms(examples, rng, name):
    f = st.function(examples[name])
    ts, rebuild = _split(torch_inputs(name, rng, requires_grad=False))
    argnums = tuple(range(len(ts)))

    def h(*t):
        return f(*rebuild(*t))

    def loss(*t):
        return h(*t).square().sum()

    jf = F.jacfwd(h, argnums=argnums)(*ts)
    jr = F.jacrev(h, argnums=argnums)(*ts)
    for a, b in zip(jf, jr):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    g = F.grad(loss, argnums=argnums)(*ts)
    # grad == vjp via autograd
    req = [t.clone().requires_grad_() for t in ts]
    loss(*req).backward()
    for a, b in zip(g, req):
        torch.testing.assert_close(a, b.grad)
    _, jv = F.jvp(loss, tuple(ts), tuple(torch.ones_like(t) for t in ts))
    assert float(jv) == pytest.approx(sum(float(x.sum()) for x in g), rel=1e-9)

    # vmap equals a Python loop, for the function and for its gradient, batched on dim 0 and 1.
    B = 3
    batch = [torch.stack([t * (1 + 0.05 * i) for i in range(B)]) for t in ts]
    torch.testing.assert_close(F.vmap(h)(*batch), torch.stack([h(*[b[i] for b in batch]) for i in range(B)]))
    G = F.grad(loss, argnums=argnums)
    vg = F.vmap(G)(*batch)
    loop = [G(*[b[i] for b in batch]) for i in range(B)]
    for j in argnums:
        torch.testing.assert_close(vg[j], torch.stack([l[j] for l in loop]))
    j = next(i for i, t in enumerate(ts) if t.dim() >= 1)
    in_dims = tuple(1 if i == j else None for i in range(len(ts)))
    moved = list(ts)
    moved[j] = torch.stack([ts[j] * (1 + 0.05 * i) for i in range(B)], dim=1)
    want = torch.stack([h(*(ts[:j] + [ts[j] * (1 + 0.05 * i)] + ts[j + 1 :])) for i in range(B)])
    torch.testing.assert_close(F.vmap(h, in_dims=in_dims)(*moved), want)


def test_forward_ad_api(examples, rng):
    import torch.autograd.forward_ad as fwAD

    f = st.function(examples["heat"])
    kappa = torch.tensor(rng.random(7) + 0.5)
    u0 = torch.tensor(rng.random(7))
    tk = torch.tensor(rng.standard_normal(7))
    with fwAD.dual_level():
        u = f(3, fwAD.make_dual(kappa, tk), u0)
        tangent = fwAD.unpack_dual(u).tangent
    _, want = examples["heat"].jvp((3, kappa.numpy(), u0.numpy()), (tk.numpy(), None))
    np.testing.assert_allclose(tangent.numpy(), want, rtol=1e-12)


def test_inputs_are_not_copied_or_modified(examples, rng, monkeypatch):
    k = examples["axpy"]
    f = st.function(k)
    a = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    x = torch.tensor(rng.standard_normal(6), requires_grad=True)
    y = torch.tensor(rng.standard_normal(6), requires_grad=True)
    seen = []
    real = type(k).call_raw
    monkeypatch.setattr(type(k), "call_raw", lambda self, args: (seen.append(list(args)), real(self, args))[1])
    before = (x.detach().clone(), y.detach().clone(), x.data_ptr())
    out = f(a, x, y)
    args = seen[-1]
    # x crosses as its own memory (a detached alias sharing storage, no copy); y (inout) is cloned.
    assert args[2].data_ptr() == x.data_ptr()
    assert args[3].data_ptr() == out.data_ptr() != y.data_ptr()
    out.sum().backward()
    torch.testing.assert_close(x.detach(), before[0])
    torch.testing.assert_close(y.detach(), before[1])
    assert x.data_ptr() == before[2]
    torch.testing.assert_close(x.grad, torch.full((6,), 1.5, dtype=torch.float64))
    torch.testing.assert_close(y.grad, torch.ones(6, dtype=torch.float64))
    torch.testing.assert_close(a.grad, x.detach().sum())


def test_noncontiguous_cotangents_are_handled(examples, rng):
    # sum() hands backward an expanded (stride 0) cotangent: made contiguous internally.
    f = st.function(examples["seed"])
    x = torch.tensor(np.arange(1, 101, dtype=np.float64) ** 1.5 + 0.37, requires_grad=True)
    f(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), examples["seed"].vjp([x.detach().numpy()], np.ones(100)), rtol=1e-14)


def test_float32_kernel(scale_shift, rng):
    f = st.function(scale_shift)
    x = torch.tensor(rng.standard_normal(8), dtype=torch.float32, requires_grad=True)
    s = torch.tensor(0.7, dtype=torch.float32, requires_grad=True)
    y, z = f(s, x)
    assert y.dtype == z.dtype == torch.float32
    (y.sum() + 2 * z.sum()).backward()
    xd = x.detach().double()
    torch.testing.assert_close(x.grad.double(), 0.7 + 2 * (1 + 2 * 0.7 * xd), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(s.grad.double(), xd.sum() + 2 * (xd * xd).sum(), rtol=1e-5, atol=1e-5)
    assert s.grad.dtype == torch.float32
    with pytest.raises(simgrad.DTypeError, match="`x`.*torch.float32"):
        f(s, x.detach().double())
    # convert=True casts instead of refusing.
    y2, _ = st.function(scale_shift, convert=True)(s, x.detach().double())
    torch.testing.assert_close(y2, y.detach())


def test_seed_material_enzyme_apply(clib):
    """The seed material's C++ JIT example: lltm.Enzyme("test.cpp", "f").apply(a).sum().backward()."""
    try:
        fn = st.Enzyme(KERNELS / "test.cpp", "f")
    except simgrad.ToolchainError as e:
        skip_or_fail(str(e))
    a = torch.from_numpy(np.array([[1, 2, 3, 4.0]], dtype=np.float32))
    a.requires_grad_(True)
    b = fn.apply(a).sum()
    b.backward()
    ad = a.detach().double()
    torch.testing.assert_close(b.detach().double(), (torch.sin(ad) * ad).sum(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(a.grad.double(), torch.cos(ad) * ad + torch.sin(ad), rtol=1e-5, atol=1e-6)


def test_fortran_2d_kernel(matvec, rng):
    f = st.function(matvec)
    a = torch.tensor(rng.standard_normal((3, 4)))
    a_f = a.t().contiguous().t()  # column-major
    x = torch.tensor(rng.standard_normal(4), requires_grad=True)
    a_f.requires_grad_(True)
    with pytest.raises(simgrad.LayoutError, match="`a`"):
        f(a, x)
    y = f(a_f, x)
    torch.testing.assert_close(y, a @ x.detach())
    assert torch.autograd.gradcheck(f, (a_f, x), check_forward_ad=True)
    g = F.grad(lambda a_, x_: f(a_, x_).sum(), argnums=(0, 1))(a_f.detach(), x.detach())
    torch.testing.assert_close(g[0], torch.ones(3, 1, dtype=torch.float64) * x.detach())
    batch = torch.stack([a_f.detach() * (i + 1) for i in range(2)])
    torch.testing.assert_close(F.vmap(f, in_dims=(0, None))(batch, x.detach()), torch.stack([f(a_f.detach() * (i + 1), x.detach()) for i in range(2)]))


def test_second_derivatives_are_refused(examples, rng):
    f = st.function(examples["softmax_energy"])
    x = torch.tensor(rng.standard_normal(5), requires_grad=True)
    (g,) = torch.autograd.grad(f(x, 0.5).sum(), x, create_graph=True)
    with pytest.raises(simgrad.InvalidArgumentError, match="cannot be differentiated again"):
        g.sum().backward()


def test_repr_and_non_tensor_scalars(examples, rng):
    f = st.function(examples["axpy"])
    assert "axpy(" in repr(f) and f.kernel is examples["axpy"]
    x = torch.tensor(rng.standard_normal(3), requires_grad=True)
    y = torch.zeros(3, dtype=torch.float64)
    out = f(2.0, x, y)  # a Python float scalar gets no gradient
    out.sum().backward()
    torch.testing.assert_close(x.grad, torch.full((3,), 2.0, dtype=torch.float64))
    torch.testing.assert_close(f.apply(3, 2.0, x, y), out)


def test_calls_from_threads_run_in_parallel_without_the_gil(examples):
    f = st.function(examples["heat"])
    kappa = torch.full((200,), 0.5, dtype=torch.float64)
    u0 = torch.linspace(0, 1, 200, dtype=torch.float64)
    t0 = time.perf_counter()
    f(10_000, kappa, u0)
    steps = max(10_000, int(0.3 / max((time.perf_counter() - t0) / 10_000, 1e-9)))
    done = threading.Event()
    result = {}

    def work():
        result["u"] = f(steps, kappa, u0)
        done.set()

    th = threading.Thread(target=work)
    th.start()
    last, max_gap, start = time.perf_counter(), 0.0, time.perf_counter()
    while not done.is_set():
        now = time.perf_counter()
        max_gap, last = max(max_gap, now - last), now
    th.join()
    total = time.perf_counter() - start
    assert total > 0.1
    assert max_gap < total / 2, f"the main thread was blocked {max_gap:.3f} s of {total:.3f} s"
    # Two threads on one kernel give the same result as one.
    outs = [None, None]
    ths = [threading.Thread(target=lambda i=i: outs.__setitem__(i, f(50, kappa, u0))) for i in range(2)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    torch.testing.assert_close(outs[0], outs[1])
