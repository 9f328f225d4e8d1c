"""Shared by the example scripts: import simgrad from this checkout when it is not installed,
and locate the example kernels."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KERNELS = REPO / "examples-c" / "kernels"
SPEC = KERNELS / "simgrad.toml"

try:
    import simgrad  # noqa: F401 - only checking that it is importable
except ImportError:
    sys.path.insert(0, str(REPO / "crates" / "simgrad-python"))

# The Enzyme plugin `cargo xtask setup` builds, when it was not installed into the cache.
_cache = Path(os.environ.get("SIMGRAD_CACHE_DIR") or Path.home() / ".cache" / "simgrad")
_built = _cache / "enzyme" / "build-diffsl-0.12.5-llvm19" / "Enzyme" / "LLVMEnzyme-19.so"
if not os.environ.get("SIMGRAD_ENZYME_PLUGIN") and not (_cache / "enzyme" / "diffsl-0.12.5-llvm19").is_dir() and _built.is_file():
    os.environ["SIMGRAD_ENZYME_PLUGIN"] = str(_built)


def fail(message: str) -> None:
    print(f"FAILED: {message}", file=sys.stderr)
    raise SystemExit(1)
