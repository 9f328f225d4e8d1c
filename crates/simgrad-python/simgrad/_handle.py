"""`Handle`: the base class owning one C handle (``simgrad_library *`` or ``simgrad_kernel *``).

The handle is freed exactly once: by ``close()``, by leaving a ``with`` block, or by the garbage
collector (``__del__``), whichever comes first. After ``close()`` every use raises `ClosedError`.
Closing is not synchronised with calls running on other threads: do not close a handle another
thread is using (the C API has the same rule).
"""

from __future__ import annotations

from ._errors import ClosedError


class Handle:
    """Owns one C handle; subclasses set ``_free_name`` and ``_what``."""

    #: Name of the C function that frees the handle.
    _free_name: str = ""
    #: What the handle is, for messages (``"library"``).
    _what: str = "handle"

    _ptr = None

    def __init__(self, ptr):
        # Keep the C library object alive as long as any handle: __del__ may run during
        # interpreter shutdown, after module globals are gone.
        from ._loader import lib

        self._lib = lib()
        self._ptr = ptr

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called (or the handle was never opened)."""
        return not self._ptr

    def _handle(self):
        """The live C pointer; raises `ClosedError` after ``close()``."""
        if not self._ptr:
            raise ClosedError(None, f"{self._what} {self._label()} is closed")
        return self._ptr

    def _label(self) -> str:
        return ""

    def close(self) -> None:
        """Frees the C handle. Idempotent. Objects obtained from this one (kernels from a library)
        stay usable: they own handles of their own."""
        ptr, self._ptr = self._ptr, None
        if ptr:
            getattr(self._lib, self._free_name)(ptr)

    def __enter__(self):
        self._handle()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass

