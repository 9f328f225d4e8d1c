"""Exceptions: one class per C status code, all derived from `SimgradError`.

Every failed C call raises the class of its status with the library's own message (which names
the function, the argument and the expected versus the actual value). Checks done in Python
before a call (an argument that is not an array, a missing argument, a CUDA tensor) raise the
class of the status the C library would have returned for the same mistake, so ``except
simgrad.ShapeError`` catches a shape mistake wherever it is detected.

Classes that describe a bad value also derive from the matching built-in exception
(``DTypeError`` is a ``TypeError``; ``ShapeError``, ``LayoutError``, ``InvalidArgumentError`` are
``ValueError``; ``NotFoundError`` is a ``LookupError``), so generic handlers keep working.
"""

from __future__ import annotations

from . import _bindings as B


class SimgradError(Exception):
    """Base class of every simgrad error.

    Attributes: ``status`` (the C status number), ``status_name`` (``"SIMGRAD_ERR_SHAPE"``) and
    ``message`` (the library's message).
    """

    #: The status this class stands for (overridden by each subclass).
    default_status: int = -1

    def __init__(self, status: int | None = None, message: str = ""):
        if status is None:
            status = self.default_status
        self.status = int(status)
        self.status_name = B.SIMGRAD_STATUS_NAMES.get(self.status, "SIMGRAD_UNKNOWN_STATUS")
        self.message = message
        super().__init__(f"[{self.status_name}] {message}" if message else self.status_name)

    def __reduce__(self):
        return (type(self), (self.status, self.message))


class NullArgumentError(SimgradError, ValueError):
    """A required pointer was NULL (from Python: a closed handle, see `ClosedError`)."""

    default_status = B.SIMGRAD_ERR_NULL_ARGUMENT


class ClosedError(NullArgumentError):
    """A library or kernel was used after ``close()``."""


class InvalidArgumentError(SimgradError, ValueError):
    """A value that is never valid: unknown flags, a wrong or missing argument."""

    default_status = B.SIMGRAD_ERR_INVALID_ARGUMENT


class DTypeError(SimgradError, TypeError):
    """An argument's element type differs from the kernel's manifest."""

    default_status = B.SIMGRAD_ERR_DTYPE


class ShapeError(SimgradError, ValueError):
    """An argument's rank or shape contradicts the manifest or another argument."""

    default_status = B.SIMGRAD_ERR_SHAPE


class LayoutError(SimgradError, ValueError):
    """An argument is not contiguous in the kernel's memory order, or not in CPU memory."""

    default_status = B.SIMGRAD_ERR_LAYOUT


class AliasError(SimgradError, ValueError):
    """A buffer the call writes overlaps another buffer of the call."""

    default_status = B.SIMGRAD_ERR_ALIAS


class NotFoundError(SimgradError, LookupError):
    """No kernel of that name, no such mode, or an index out of range."""

    default_status = B.SIMGRAD_ERR_NOT_FOUND


class LibraryError(SimgradError):
    """A shared library (a kernel library or libsimgrad itself) cannot be found or opened."""

    default_status = B.SIMGRAD_ERR_LIBRARY


class ManifestError(SimgradError):
    """A kernel library's manifest is missing, unreadable or inconsistent."""

    default_status = B.SIMGRAD_ERR_MANIFEST


class AbiMismatchError(SimgradError):
    """A library was built for another manifest schema, calling convention or C ABI."""

    default_status = B.SIMGRAD_ERR_ABI_MISMATCH


class SpecError(SimgradError):
    """A kernel spec (``simgrad.toml``) is invalid, or a signature cannot be inferred."""

    default_status = B.SIMGRAD_ERR_SPEC


class BuildError(SimgradError):
    """A compiler, Enzyme or another tool of the build pipeline failed."""

    default_status = B.SIMGRAD_ERR_BUILD


class ToolchainError(SimgradError):
    """clang, flang, opt, llvm-link or the Enzyme plugin is missing or inconsistent."""

    default_status = B.SIMGRAD_ERR_TOOLCHAIN


class VerifyError(SimgradError):
    """The gradient check run after a build (``verify=True``) failed."""

    default_status = B.SIMGRAD_ERR_VERIFY


class KernelError(SimgradError):
    """A kernel's entry point reported a failure."""

    default_status = B.SIMGRAD_ERR_KERNEL


class IoError(SimgradError):
    """A file-system error, including the build cache."""

    default_status = B.SIMGRAD_ERR_IO


class PanicError(SimgradError):
    """libsimgrad panicked: a bug in simgrad. The message is the panic's."""

    default_status = B.SIMGRAD_ERR_PANIC


class BufferTooSmallError(SimgradError):
    """A caller's buffer was too small (handled inside the bindings; seen only on misuse)."""

    default_status = B.SIMGRAD_ERR_BUFFER_TOO_SMALL


#: status number -> exception class.
STATUS_CLASSES: dict[int, type[SimgradError]] = {
    cls.default_status: cls
    for cls in (
        NullArgumentError,
        InvalidArgumentError,
        DTypeError,
        ShapeError,
        LayoutError,
        AliasError,
        NotFoundError,
        LibraryError,
        ManifestError,
        AbiMismatchError,
        SpecError,
        BuildError,
        ToolchainError,
        VerifyError,
        KernelError,
        IoError,
        PanicError,
        BufferTooSmallError,
    )
}


def error_for(status: int, message: str) -> SimgradError:
    """The exception for a C status (an unknown number gives a plain `SimgradError`)."""
    return STATUS_CLASSES.get(int(status), SimgradError)(status, message)


def check(status: int) -> None:
    """Raises the exception of a non-OK status with this thread's last error message.

    The message must be read right after the failed call, on the same thread, before any other
    simgrad call: it lives in a thread-local slot of libsimgrad.
    """
    if status == B.SIMGRAD_OK:
        return
    from ._loader import lib

    raw = lib().simgrad_last_error_message()
    message = raw.decode("utf-8", "replace") if raw else ""
    raise error_for(status, message)
