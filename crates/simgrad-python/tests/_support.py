"""Helpers shared by the simgrad Python tests (imported by conftest.py and the test modules).

* The package is imported from this checkout (no install needed); libsimgrad is found by the
  package's own search (``$SIMGRAD_LIBRARY``, next to the package, ``target/{release,debug}``).
* Tests that compile kernels need clang/flang 19 and the Enzyme plugin. Without them they are
  skipped, unless ``SIMGRAD_REQUIRE_ENZYME`` is set (CI), which turns the skip into a failure.
  Likewise a missing libsimgrad fails instead of skipping when ``SIMGRAD_REQUIRE_ENZYME`` or
  ``SIMGRAD_REQUIRE_LIBRARY`` is set.
* ``SIMGRAD_ENZYME_PLUGIN`` defaults to the plugin ``cargo xtask setup`` left in its build tree when
  the installed location is absent (the toolchain discovery only looks at the installed one).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

PKG_DIR = Path(__file__).resolve().parent.parent
REPO = PKG_DIR.parent.parent
KERNELS = Path(__file__).resolve().parent / "kernels"
EXAMPLES_SPEC = REPO / "examples-c" / "kernels" / "simgrad.toml"

if str(PKG_DIR) not in sys.path:
    sys.path.insert(0, str(PKG_DIR))


def _default_plugin() -> None:
    if os.environ.get("SIMGRAD_ENZYME_PLUGIN"):
        return
    home = Path(os.environ.get("SIMGRAD_CACHE_DIR") or Path.home() / ".cache" / "simgrad")
    installed = home / "enzyme" / "diffsl-0.12.5-llvm19" / "LLVMEnzyme-19.so"
    built = home / "enzyme" / "build-diffsl-0.12.5-llvm19" / "Enzyme" / "LLVMEnzyme-19.so"
    if not installed.is_file() and built.is_file():
        os.environ["SIMGRAD_ENZYME_PLUGIN"] = str(built)


_default_plugin()


def require_enzyme() -> bool:
    return bool(os.environ.get("SIMGRAD_REQUIRE_ENZYME"))


def skip_or_fail(reason: str):
    if require_enzyme():
        pytest.fail(f"{reason} (SIMGRAD_REQUIRE_ENZYME is set, so this is a failure)")
    pytest.skip(reason)


def build_or_skip(spec, **kw):
    import simgrad

    try:
        return simgrad.build(spec, **kw)
    except simgrad.ToolchainError as e:
        skip_or_fail(f"no usable toolchain to build kernels: {e}")


def enzyme(source, function, **kw):
    """`simgrad.Enzyme` on a test kernel, skipping (or failing) without a toolchain."""
    import simgrad

    try:
        return simgrad.Enzyme(KERNELS / source, function, **kw)
    except simgrad.ToolchainError as e:
        skip_or_fail(f"no usable toolchain to build kernels: {e}")


# ---------------------------------------------------------------------- reference inputs


def example_inputs(name: str, rng):
    """Positional NumPy inputs for each example kernel (sizes inferred where possible)."""
    import numpy as np

    if name == "seed":
        # Away from integers, where the truncation `prev = (int)x` jumps.
        return (np.arange(1, 101, dtype=np.float64) ** 1.5 + 0.37,)
    if name == "axpy":
        return (1.7, rng.standard_normal(7), rng.standard_normal(7))
    if name == "softmax_energy":
        return (rng.standard_normal(6), 0.8)
    if name == "heat":
        return (4, rng.random(9) + 0.5, rng.random(9))
    raise KeyError(name)


EXAMPLE_KERNELS = ("seed", "axpy", "softmax_energy", "heat")
