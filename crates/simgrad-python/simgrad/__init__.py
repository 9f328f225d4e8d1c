"""simgrad: C, C++ and Fortran simulation kernels differentiated by Enzyme, called from Python.

    >>> import simgrad, numpy as np
    >>> lib = simgrad.build("examples-c/kernels/simgrad.toml")     # cached after the first time
    >>> axpy = lib["axpy"]
    >>> axpy                                                       # the manifest: args, modes
    >>> y = axpy(2.0, x, y0)                 # n from x.shape; y0 is not modified, y is new
    >>> y, ty = axpy.jvp((2.0, x, y0), (1.0, None, None))          # forward mode (Enzyme)
    >>> ga, gx, gy = axpy.vjp((2.0, x, y0), np.ones(5))            # reverse mode (Enzyme)

Build from a single source file, inferring the signature from its prototype:

    >>> f = simgrad.Enzyme("seed.c", "seed")                       # a Kernel

Framework adapters live in `simgrad.torch` (``torch.autograd.Function`` with backward, forward-mode
AD and vmap) and `simgrad.jax` (JAX primitives: jit, grad, jvp, vmap).

Everything goes through the stable C ABI of ``libsimgrad`` (see ``_loader`` for where it is
found); errors raise a subclass of `SimgradError` per C status, carrying the library's message.
"""

from ._build import BuildInfo, build, cache_root
from ._enzyme import Enzyme, infer_signature
from ._errors import (
    AbiMismatchError,
    AliasError,
    BufferTooSmallError,
    BuildError,
    ClosedError,
    DTypeError,
    InvalidArgumentError,
    IoError,
    KernelError,
    LayoutError,
    LibraryError,
    ManifestError,
    NotFoundError,
    NullArgumentError,
    PanicError,
    ShapeError,
    SimgradError,
    SpecError,
    ToolchainError,
    VerifyError,
)
from ._kernel import Arg, Kernel
from ._library import Library, load

__version__ = "0.1.0"


def version() -> str:
    """The version of the loaded libsimgrad (``simgrad_version()``)."""
    from ._loader import lib

    return lib().simgrad_version().decode()


def abi_version() -> int:
    """The C ABI version of the loaded libsimgrad (``simgrad_abi_version()``)."""
    from ._loader import lib

    return int(lib().simgrad_abi_version())


def status_name(status: int) -> str:
    """The C name of a status code (``simgrad_status_name``)."""
    from ._loader import lib

    return lib().simgrad_status_name(status).decode()


def library_path() -> str:
    """Where the libsimgrad in use was found."""
    from ._loader import library_path as _p

    return str(_p())


__all__ = [
    "AbiMismatchError",
    "AliasError",
    "Arg",
    "BufferTooSmallError",
    "BuildError",
    "BuildInfo",
    "ClosedError",
    "DTypeError",
    "Enzyme",
    "InvalidArgumentError",
    "IoError",
    "Kernel",
    "KernelError",
    "LayoutError",
    "Library",
    "LibraryError",
    "ManifestError",
    "NotFoundError",
    "NullArgumentError",
    "PanicError",
    "ShapeError",
    "SimgradError",
    "SpecError",
    "ToolchainError",
    "VerifyError",
    "abi_version",
    "build",
    "cache_root",
    "infer_signature",
    "library_path",
    "load",
    "status_name",
    "version",
]
