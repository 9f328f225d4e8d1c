"""`Library`: an open kernel library, and `load` to open one.

A library owns a ``simgrad_library`` handle. Kernels obtained from it own handles of their own
that keep the code loaded, so closing the library does not invalidate them; using the library
itself after ``close()`` raises `ClosedError`.
"""

from __future__ import annotations

import ctypes
import json
import os
from pathlib import Path

from . import _bindings as B
from ._errors import check
from ._handle import Handle
from ._kernel import Kernel, manifest_entries
from ._loader import lib as _clib


def _path_bytes(p) -> bytes:
    return os.fsencode(Path(p))


class Library(Handle):
    """A kernel library opened through libsimgrad.

    * ``lib["axpy"]`` / ``lib.axpy`` / ``lib.kernel("axpy")``: a `Kernel` (created once, then
      cached; an unknown name raises `NotFoundError` listing the kernels)
    * ``lib.names``: kernel names in manifest order; ``len(lib)``, ``"axpy" in lib``, iteration
      yields the kernels
    * ``lib.path``, ``lib.manifest`` (dict), ``lib.manifest_json`` (the document as stored)
    * ``lib.build_info``: a `BuildInfo` for libraries made by `simgrad.build`, else None
    """

    _free_name = "simgrad_library_free"
    _what = "library"

    def __init__(self, ptr, build_info=None):
        super().__init__(ptr)
        c = self._lib
        s = ctypes.c_char_p()
        check(c.simgrad_library_path(ptr, ctypes.byref(s)))
        self.path = os.fsdecode(s.value)
        check(c.simgrad_library_manifest(ptr, ctypes.byref(s)))
        self.manifest_json: str = s.value.decode()
        self.manifest: dict = json.loads(self.manifest_json)
        n = ctypes.c_size_t()
        check(c.simgrad_library_kernel_count(ptr, ctypes.byref(n)))
        names = []
        for i in range(n.value):
            check(c.simgrad_library_kernel_name(ptr, i, ctypes.byref(s)))
            names.append(s.value.decode())
        self.names: tuple[str, ...] = tuple(names)
        self.build_info = build_info
        self._entries = manifest_entries(self.manifest_json)
        self._kernels: dict[str, Kernel] = {}

    def _label(self) -> str:
        return f"`{self.path}`"

    @property
    def cache_hit(self) -> bool | None:
        """For a library made by `simgrad.build`: whether it came from the build cache without
        compiling anything. None for libraries opened with `load`."""
        return None if self.build_info is None else self.build_info.cache_hit

    def kernel(self, name: str) -> Kernel:
        """The kernel called ``name``."""
        ptr = self._handle()
        k = self._kernels.get(name)
        if k is not None and not k.closed:
            return k
        out = ctypes.POINTER(B.simgrad_kernel)()
        check(self._lib.simgrad_library_kernel(ptr, name.encode(), ctypes.byref(out)))
        k = Kernel(out, self._entries.get(name), self.path)
        self._kernels[name] = k
        return k

    def kernels(self) -> list[Kernel]:
        return [self.kernel(n) for n in self.names]

    def __getitem__(self, name: str) -> Kernel:
        return self.kernel(name)

    def __getattr__(self, name: str) -> Kernel:
        if name.startswith("_") or name not in self.__dict__.get("names", ()):
            raise AttributeError(name)
        return self.kernel(name)

    def __contains__(self, name) -> bool:
        return name in self.names

    def __iter__(self):
        return iter(self.kernels())

    def __len__(self) -> int:
        return len(self.names)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self.names))

    def __repr__(self) -> str:
        if self.closed:
            return f"<simgrad.Library {self.path} closed>"
        lines = [f"<simgrad.Library {self.path}"]
        gen = self.manifest.get("generator", "?")
        tc = self.manifest.get("toolchain", {})
        lines.append(f"  generator {gen}, LLVM {tc.get('llvm', '?')}, Enzyme {tc.get('enzyme', '?')}")
        if self.build_info is not None:
            lines.append(f"  {self.build_info}")
        for k in self.kernels():
            lines.append(f"  {k.signature()}  [{','.join(k.modes)}]")
        return "\n".join(lines) + ">"

    def close(self) -> None:
        """Frees the library handle; kernels already obtained stay usable."""
        super().close()


def load(path, manifest=None) -> Library:
    """Opens a kernel library.

    ``path`` is a shared library built by simgrad (its manifest is embedded). ``manifest`` is the
    path of a JSON manifest file for a library built elsewhere (by hand with Enzyme, by another
    AD tool) whose entry points follow simgrad's calling convention.
    """
    c = _clib()
    out = ctypes.POINTER(B.simgrad_library)()
    if manifest is None:
        check(c.simgrad_library_open(_path_bytes(path), ctypes.byref(out)))
    else:
        check(c.simgrad_library_open_with_manifest(_path_bytes(path), _path_bytes(manifest), ctypes.byref(out)))
    return Library(out)

