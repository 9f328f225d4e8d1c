#!/usr/bin/env python3
"""The classic ctypes example, done with simgrad.

The seed material compiles a 100-element C function with Enzyme by hand, loads it with ctypes,
sets the shadow buffers up manually and calls `jvpf`. With simgrad the same function is built
from the kernel spec (or straight from the source file), and its forward-mode derivative is one
call, with the arguments checked by name:

    lib = simgrad.build("examples-c/kernels/simgrad.toml")
    out, dout = lib["seed"].jvp([x], [v])

    void seed(const double *x, double *out) {          // examples-c/kernels/seed.c
        int prev = 0;
        for (int i = 0; i < 100; i++) { out[i] = x[i] - prev / x[i]; prev = (int)x[i]; }
    }

Since prev is truncated to an int, d out[i] / d x[i-1] = 0 and the Jacobian is diagonal:
d out[i] / d x[i] = 1 + prev / x[i]^2. The script checks that, prints a few rows, and exits 1 on
any mismatch.
"""

import numpy as np
from _common import KERNELS, SPEC, fail

import simgrad

lib = simgrad.build(SPEC)
seed = lib["seed"]
print(f"library: {lib.path} ({'from the cache' if lib.cache_hit else 'compiled'})")
print(f"kernel:  {seed}\n")

# Initializing the values, as in the ctypes example.
x = np.arange(1, 101, dtype="float64") ** 2
v = np.ones(100)

# Forward mode: the tangent of `out` along v. No shadow buffers to set up: simgrad allocates them.
out, dout = seed.jvp([x], [v])

prev = np.concatenate([[0.0], np.trunc(x[:-1])])
expected = 1 + prev / x**2
print(f"{'i':>3} {'x[i]':>10} {'out[i]':>14} {'dout[i]':>12} {'1+prev/x^2':>12}")
for i in list(range(5)) + [98, 99]:
    print(f"{i:>3} {x[i]:>10.1f} {out[i]:>14.6f} {dout[i]:>12.8f} {expected[i]:>12.8f}")
err = np.max(np.abs(dout - expected))
print(f"\nmax |dout - (1 + prev/x^2)| = {err:.2e}")
if err > 1e-12:
    fail("the forward-mode derivative differs from the analytic one")

# Reverse mode gives the same diagonal (the Jacobian is diagonal, so J^T 1 = J 1).
xbar = seed.vjp([x], np.ones(100))
if np.max(np.abs(xbar - dout)) > 1e-12:
    fail("the reverse-mode derivative differs from the forward-mode one")
print("reverse mode (VJP with ones) agrees with forward mode")

# The same function straight from its source file: the shape is the one thing C cannot say.
seed2 = simgrad.Enzyme(KERNELS / "seed.c", "seed", shapes={"x": (100,), "out": (100,)})
_, dout2 = seed2.jvp([x], [v])
if not np.array_equal(dout2, dout):
    fail("simgrad.Enzyme('seed.c', 'seed') gives another derivative")
print(f"simgrad.Enzyme('seed.c', 'seed') agrees ({'cache hit' if seed2.build_info.cache_hit else 'compiled'})")
print("OK")
