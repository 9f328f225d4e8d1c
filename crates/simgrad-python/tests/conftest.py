"""Fixtures of the simgrad Python tests; see _support.py for the environment rules."""

from __future__ import annotations

import os

import pytest
from _support import EXAMPLES_SPEC, build_or_skip, enzyme, require_enzyme


@pytest.fixture(scope="session")
def clib():
    """The loaded libsimgrad (skips when it is not built)."""
    import simgrad
    from simgrad import _loader

    try:
        return _loader.lib()
    except simgrad.LibraryError as e:
        if require_enzyme() or os.environ.get("SIMGRAD_REQUIRE_LIBRARY"):
            pytest.fail(str(e))
        pytest.skip(f"libsimgrad not available: {e}")


@pytest.fixture(scope="session")
def examples(clib):
    """The example kernel library (examples-c/kernels/simgrad.toml), built once (cached)."""
    return build_or_skip(EXAMPLES_SPEC)


@pytest.fixture(scope="session")
def scale_shift(clib):
    """A float32 kernel with two outputs."""
    return enzyme("scale_shift.c", "scale_shift", shapes={"x": ("n",), "y": ("n",), "z": ("n",)})


@pytest.fixture(scope="session")
def matvec(clib):
    """A column-major (Fortran) 2-D kernel."""
    return enzyme("matvec.f90", "matvec")


@pytest.fixture(scope="session")
def rowsum(clib):
    """A row-major 2-D kernel whose shapes come from its C prototype."""
    return enzyme("rowsum.c", "rowsum")


@pytest.fixture(scope="session")
def counts(clib):
    """A kernel with a non-differentiable integer array."""
    return enzyme("counts.c", "counts", shapes={"idx": ("n",), "x": ("n",), "out": ("n",)})


