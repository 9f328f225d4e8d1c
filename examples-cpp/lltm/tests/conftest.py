"""Fixtures of the LLTM tests: the kernel library, the AOT and JIT PyTorch extensions, the
nanobind module and the hand-written ATen reference, each built once per session.

Skips only when the Enzyme toolchain is missing (libsimgrad reports SIMGRAD_ERR_TOOLCHAIN while
building the kernel library) and SIMGRAD_REQUIRE_ENZYME is not "1". Anything else that fails to
build (the extension, libsimgrad, the header) is an error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lltm_simgrad  # noqa: E402


def _require_enzyme() -> bool:
    return os.environ.get("SIMGRAD_REQUIRE_ENZYME") == "1"


@pytest.fixture(scope="session")
def aot_ext():
    """The extension built ahead of time (ext/setup.py), not yet initialised."""
    return lltm_simgrad.load_extension("aot")


@pytest.fixture(scope="session")
def kernel_lib(aot_ext):
    """Path of the LLTM kernel library, built through libsimgrad's `simgrad_build` (C ABI)."""
    lib = os.environ.get("LLTM_KERNEL_LIB")
    if lib:
        return lib
    try:
        return aot_ext.build(str(lltm_simgrad.SPEC))
    except RuntimeError as e:
        if "SIMGRAD_ERR_TOOLCHAIN" in str(e) and not _require_enzyme():
            pytest.skip(f"Enzyme toolchain missing (set SIMGRAD_REQUIRE_ENZYME=1 to fail): {e}")
        raise


@pytest.fixture(scope="session")
def aot(aot_ext, kernel_lib):
    aot_ext.init(kernel_lib)
    return aot_ext


@pytest.fixture(scope="session")
def jit(kernel_lib):
    ext = lltm_simgrad.load_extension("jit")
    ext.init(kernel_lib)
    return ext


@pytest.fixture(scope="session")
def nbm(kernel_lib):
    m = lltm_simgrad.load_nanobind()
    m.init(kernel_lib)
    return m


@pytest.fixture(scope="session")
def aten():
    import reference

    return reference.aten_extension()


@pytest.fixture(scope="session")
def exts(aot, jit):
    return {"aot": aot, "jit": jit}


def variants():
    """Kernel variants this machine can run: always "portable"; "avx2" where the CPU has AVX2 +
    FMA."""
    out = ["portable"]
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        flags = []
    if "avx2" in flags and "fma" in flags:
        out.append("avx2")
    return out
