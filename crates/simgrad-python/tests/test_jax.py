"""simgrad.jax: check_grads in forward and reverse mode for every example kernel, jit, vmap
against loops (also around grad), the Enzyme primitives in the jaxprs, and errors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from _support import EXAMPLE_KERNELS, PKG_DIR, example_inputs

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

import simgrad  # noqa: E402
import simgrad.jax as sj  # noqa: E402


def split(name, rng):
    """(static sizes, differentiable JAX values, rebuild)."""
    args = list(example_inputs(name, rng))
    pos = [i for i, a in enumerate(args) if not isinstance(a, int)]

    def rebuild(*vals):
        full = list(args)
        for i, v in zip(pos, vals):
            full[i] = v
        return full

    return [jnp.asarray(args[i], dtype=jnp.float64) for i in pos], rebuild


@pytest.fixture
def rng():
    return np.random.default_rng(11)


@pytest.mark.parametrize("name", EXAMPLE_KERNELS)
def test_check_grads(examples, rng, name):
    f = sj.function(examples[name])
    vals, rebuild = split(name, rng)

    def g(*v):
        return f(*rebuild(*v))

    np.testing.assert_allclose(g(*vals), examples[name](*example_inputs(name, np.random.default_rng(11))), rtol=1e-12)
    check_grads(g, vals, order=1, modes=("fwd", "rev"))


@pytest.mark.parametrize("name", EXAMPLE_KERNELS)
def test_jit_vmap_and_friends(examples, rng, name):
    f = sj.function(examples[name])
    vals, rebuild = split(name, rng)
    argnums = tuple(range(len(vals)))

    def g(*v):
        return f(*rebuild(*v))

    def loss(*v):
        return jnp.sum(g(*v) ** 2)

    np.testing.assert_allclose(jax.jit(g)(*vals), g(*vals), rtol=1e-14)
    grad = jax.grad(loss, argnums=argnums)
    for a, b in zip(jax.jit(grad)(*vals), grad(*vals)):
        np.testing.assert_allclose(a, b, rtol=1e-14)
    jf = jax.jacfwd(g, argnums=argnums)(*vals)
    jr = jax.jacrev(g, argnums=argnums)(*vals)
    for a, b in zip(jf, jr):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)

    B = 4
    batch = [jnp.stack([v * (1 + 0.05 * i) for i in range(B)]) for v in vals]

    def loop(fn):
        outs = [fn(*[b[i] for b in batch]) for i in range(B)]
        return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *outs)

    np.testing.assert_allclose(jax.vmap(g)(*batch), loop(g), rtol=1e-14)
    np.testing.assert_allclose(jax.jit(jax.vmap(g))(*batch), loop(g), rtol=1e-14)
    for a, b in zip(jax.vmap(grad)(*batch), loop(grad)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    # grad of a vmapped function: the batch is reduced through JAX's broadcast transpose.
    gv = jax.grad(lambda *bs: jnp.sum(jax.vmap(g)(*bs) ** 2), argnums=argnums)(*batch)
    for a, b in zip(gv, loop(grad)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    # Only the first argument batched, the others shared.
    part = jax.vmap(g, in_axes=(0,) + (None,) * (len(vals) - 1))(batch[0], *vals[1:])
    np.testing.assert_allclose(part, jnp.stack([g(batch[0][i], *vals[1:]) for i in range(B)]), rtol=1e-14)
    # Nested vmap: two batch dims.
    nested = jax.vmap(jax.vmap(g))(*[jnp.stack([b, 2 * b]) for b in batch])
    np.testing.assert_allclose(nested[1], jax.vmap(g)(*[2 * b for b in batch]), rtol=1e-12)
    # Forward mode under vmap.
    tang = tuple(jnp.ones_like(v) for v in vals)
    _, jv = jax.vmap(lambda *v: jax.jvp(g, v, tang))(*batch)
    np.testing.assert_allclose(jv, loop(lambda *v: jax.jvp(g, v, tang)[1]), rtol=1e-12)


def test_derivatives_come_from_enzyme(examples):
    f = sj.function(examples["softmax_energy"])
    x = jnp.linspace(-1.0, 1.0, 5)
    grad_jaxpr = str(jax.make_jaxpr(jax.grad(lambda x: f(x, 0.3)[0]))(x))
    assert "simgrad_vjp" in grad_jaxpr and "simgrad_call" in grad_jaxpr
    jvp_jaxpr = str(jax.make_jaxpr(lambda x, t: jax.jvp(lambda x: f(x, 0.3), (x,), (t,)))(x, x))
    assert "simgrad_jvp" in jvp_jaxpr and "simgrad_vjp" not in jvp_jaxpr
    g = jax.grad(lambda x: f(x, 0.3)[0])(x)
    np.testing.assert_allclose(g, examples["softmax_energy"].vjp((np.asarray(x), 0.3), np.ones(1))[0], rtol=1e-14)


def test_scalar_derivatives_and_static_sizes(examples):
    f = sj.function(examples["axpy"])
    x, y = jnp.arange(3.0), jnp.ones(3)
    assert float(jax.grad(lambda a: jnp.sum(f(a, x, y)))(2.0)) == pytest.approx(3.0)
    np.testing.assert_allclose(f(3, 2.0, x, y), f(2.0, x, y))
    np.testing.assert_allclose(jax.jit(lambda a: f(a, x, y))(2.0), 2.0 * x + y)
    heat = sj.function(examples["heat"])
    np.testing.assert_allclose(heat(steps=3, kappa=jnp.ones(5), u0=jnp.arange(5.0)), examples["heat"](3, np.ones(5), np.arange(5.0)))


def test_fortran_2d_kernel(matvec):
    f = sj.function(matvec)
    a = jnp.arange(12.0).reshape(3, 4) / 7
    x = jnp.linspace(0, 1, 4)
    np.testing.assert_allclose(f(a, x), a @ x, rtol=1e-13)
    check_grads(f, (a, x), order=1, modes=("fwd", "rev"))
    ga = jax.grad(lambda a: jnp.sum(f(a, x)))(a)
    np.testing.assert_allclose(ga, jnp.outer(jnp.ones(3), x), rtol=1e-13)
    np.testing.assert_allclose(jax.vmap(f, in_axes=(0, None))(jnp.stack([a, 2 * a]), x), jnp.stack([a @ x, 2 * a @ x]), rtol=1e-13)


def test_float32_kernel_and_two_outputs(scale_shift):
    f = sj.function(scale_shift)
    x = jnp.linspace(-1, 1, 6, dtype=jnp.float32)
    y, z = f(jnp.float32(0.5), x)
    assert y.dtype == jnp.float32
    gs = jax.grad(lambda s: jnp.sum(f(s, x)[1]))(jnp.float32(0.5))
    np.testing.assert_allclose(gs, jnp.sum(x * x), rtol=1e-5)


def test_errors(examples):
    f = sj.function(examples["axpy"])
    with pytest.raises(simgrad.DTypeError, match="`x`.*float32"):
        f(2.0, jnp.ones(3, dtype=jnp.float32), jnp.ones(3))
    with pytest.raises(simgrad.ShapeError, match="`y`"):
        f(2.0, jnp.ones(3), jnp.ones(4))
    with pytest.raises(simgrad.InvalidArgumentError, match="`a`"):
        f(x=jnp.ones(3), y=jnp.ones(3))
    g = sj.function(examples["softmax_energy"])
    with pytest.raises(simgrad.InvalidArgumentError, match="second derivatives"):
        jax.hessian(lambda x: g(x, 0.5)[0])(jnp.ones(3))
    assert "axpy(" in repr(f)


def test_f64_without_x64_is_a_clear_error(examples):
    code = (
        "import jax, jax.numpy as jnp, simgrad, simgrad.jax as sj\n"
        f"lib = simgrad.load({examples.path!r})\n"
        "f = sj.function(lib['axpy'])\n"
        "try:\n"
        "    f(2.0, jnp.ones(3), jnp.ones(3))\n"
        "except simgrad.DTypeError as e:\n"
        "    assert 'jax_enable_x64' in str(e), e\n"
        "    print('ok')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(PKG_DIR) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("JAX_ENABLE_X64", None)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr
