"""Packaging hook: ship libsimgrad inside the package when one is at hand.

``pip install crates/simgrad-python`` (or ``python -m build``) copies ``$SIMGRAD_LIBRARY``, else
the workspace's ``target/release/libsimgrad.so``, else ``target/debug/libsimgrad.so``, next to
the package's modules, so the installed package works without environment variables. Build the
library first (``cargo build --release -p simgrad-capi``). With ``SIMGRAD_BUNDLE_LIBRARY=0``, or
when no library is found, the package is pure Python and looks for libsimgrad at run time
(``$SIMGRAD_LIBRARY``; see ``simgrad/_loader.py``). All metadata is in pyproject.toml.
"""

import os
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
NAME = {"darwin": "libsimgrad.dylib", "win32": "simgrad.dll"}.get(sys.platform, "libsimgrad.so")


def bundled_library():
    if os.environ.get("SIMGRAD_BUNDLE_LIBRARY", "1") == "0":
        return None
    env = os.environ.get("SIMGRAD_LIBRARY")
    candidates = [Path(env)] if env else [HERE.parent.parent / "target" / p / NAME for p in ("release", "debug")]
    return next((p for p in candidates if p.is_file()), None)


class BuildPy(build_py):
    def run(self):
        super().run()
        lib = bundled_library()
        if lib is not None:
            dest = Path(self.build_lib) / "simgrad" / NAME
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(lib, dest)
            print(f"simgrad: bundled {lib}")


class MaybeBinaryDistribution(Distribution):
    """A platform wheel when the native library is bundled, a pure one otherwise."""

    def has_ext_modules(self):
        return bundled_library() is not None


setup(cmdclass={"build_py": BuildPy}, distclass=MaybeBinaryDistribution)
