#!/usr/bin/env python3
"""JAX: a batch of simulations with jax.vmap, and their parameter gradients with vmap(grad).

The Fortran `heat` kernel becomes a JAX function (simgrad.jax); a diffusion amplitude k scales a
diffusivity profile, and the "energy" of the final state, E(k) = sum(u(k)^2), is evaluated for a
batch of 32 amplitudes in one vmapped, jitted call. dE/dk for the whole batch comes from
jax.vmap(jax.grad(E)), i.e. from Enzyme's reverse mode through simgrad's JAX primitives. The
script checks the batch against a Python loop and the gradients against central finite
differences, and exits 1 on a mismatch.
"""

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _common import SPEC, fail  # noqa: E402

import simgrad  # noqa: E402
import simgrad.jax as sj  # noqa: E402

heat = sj.function(simgrad.build(SPEC)["heat"])

N, STEPS = 64, 150
xs = jnp.linspace(0.0, 1.0, N)
u0 = jnp.sin(jnp.pi * xs) + 0.5 * jnp.sin(3 * jnp.pi * xs)
profile = 0.5 + 0.5 * xs


def energy(k):
    u = heat(STEPS, k * profile, u0)
    return jnp.sum(u**2)


ks = jnp.linspace(0.1, 1.5, 32)
energies = jax.jit(jax.vmap(energy))(ks)
grads = jax.jit(jax.vmap(jax.grad(energy)))(ks)

loop = jnp.stack([energy(k) for k in ks])
h = 1e-6
fd = np.array([(energy(k + h) - energy(k - h)) / (2 * h) for k in ks])

print(f"{'k':>6} {'E(k)':>12} {'dE/dk (Enzyme)':>16} {'dE/dk (FD)':>14}")
for i in range(0, 32, 6):
    print(f"{ks[i]:>6.3f} {energies[i]:>12.6f} {grads[i]:>16.8f} {fd[i]:>14.8f}")

if not np.allclose(energies, loop, rtol=1e-13):
    fail("vmap differs from the Python loop")
if not np.allclose(grads, fd, rtol=1e-6, atol=1e-8):
    fail(f"gradients differ from finite differences by {np.max(np.abs(grads - fd)):.2e}")
print("\nvmap == loop, vmap(grad) == finite differences")
print("OK")
