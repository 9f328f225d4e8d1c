"""Finding and loading ``libsimgrad.so``, the C ABI every other module calls through.

Search order (the first that exists wins):

1. ``$SIMGRAD_LIBRARY``: the path of the shared library itself.
2. ``libsimgrad.so`` next to this package (a wheel or an install that ships the library).
3. From a source checkout: ``target/release`` and ``target/debug`` of the Cargo workspace that
   holds this package (the more recently built one, so a fresh ``cargo build`` is never shadowed
   by a stale release build), also under ``$CARGO_TARGET_DIR`` when set.

The library is loaded once per process with ``ctypes.CDLL`` (which releases the GIL during every
foreign call), every function gets its ``argtypes``/``restype`` from the generated
``_bindings`` module, and its C ABI version is checked against the header the bindings were
generated from.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from pathlib import Path

from . import _bindings as B

_LIB_NAMES = {"darwin": "libsimgrad.dylib", "win32": "simgrad.dll"}
LIB_NAME = _LIB_NAMES.get(sys.platform, "libsimgrad.so")

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None


def _workspace_root(start: Path) -> Path | None:
    for d in [start, *start.parents]:
        cargo = d / "Cargo.toml"
        if cargo.is_file() and "[workspace]" in cargo.read_text(errors="replace"):
            return d
    return None


def candidates() -> list[Path]:
    """Where the library is looked for, in order (paths need not exist)."""
    env = os.environ.get("SIMGRAD_LIBRARY")
    if env:
        # An explicit choice is never second-guessed: if it is wrong, loading it fails loudly.
        return [Path(env)]
    here = Path(__file__).resolve().parent
    out = [here / LIB_NAME]
    targets = []
    if os.environ.get("CARGO_TARGET_DIR"):
        targets.append(Path(os.environ["CARGO_TARGET_DIR"]))
    root = _workspace_root(here)
    if root is not None:
        targets.append(root / "target")
    built = [t / profile / LIB_NAME for t in targets for profile in ("release", "debug")]
    built = [p for p in built if p.is_file()]
    built.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    return out + built


def library_path() -> Path:
    """The libsimgrad that `lib()` loads (or would load)."""
    for p in candidates():
        if p.is_file():
            return p
    tried = "\n  ".join(str(p) for p in candidates()) or "(nothing)"
    from ._errors import LibraryError

    raise LibraryError(
        B.SIMGRAD_ERR_LIBRARY,
        f"cannot find {LIB_NAME}. Looked at:\n  {tried}\n"
        "Build it with `cargo build -p simgrad-capi` in the simgrad checkout, or set "
        "SIMGRAD_LIBRARY to its path.",
    )


def lib() -> ctypes.CDLL:
    """The loaded, fully declared libsimgrad (loaded on first use, then shared)."""
    global _lib
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            from ._errors import AbiMismatchError, LibraryError

            path = library_path()
            try:
                cdll = ctypes.CDLL(str(path))
            except OSError as e:
                raise LibraryError(B.SIMGRAD_ERR_LIBRARY, f"cannot load {path}: {e}") from e
            try:
                B.bind(cdll)
            except AttributeError as e:
                raise AbiMismatchError(
                    B.SIMGRAD_ERR_ABI_MISMATCH,
                    f"{path} lacks a function of the C API these bindings were generated for ({e}); "
                    "it is older than this Python package: rebuild it",
                ) from e
            abi = cdll.simgrad_abi_version()
            if abi != B.SIMGRAD_ABI_VERSION:
                raise AbiMismatchError(
                    B.SIMGRAD_ERR_ABI_MISMATCH,
                    f"{path} has C ABI version {abi}, this Python package needs "
                    f"{B.SIMGRAD_ABI_VERSION}",
                )
            _lib = cdll
    return _lib
