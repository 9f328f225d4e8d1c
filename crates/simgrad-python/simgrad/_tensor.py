"""Turning NumPy arrays, PyTorch tensors and Python numbers into ``simgrad_tensor`` descriptors.

A descriptor points at the caller's memory; nothing is copied. Shape and strides arrays are
allocated per descriptor and must stay alive for the duration of the C call: every function
here returns the descriptor together with the objects to keep (``Described.keep``).

PyTorch is never imported here: a tensor is recognised by its type's module, so NumPy-only users
do not pay for importing torch.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from . import _bindings as B
from ._errors import DTypeError, LayoutError

#: manifest dtype -> (DLPack code, bits, NumPy dtype)
DTYPES = {
    "f32": (B.SIMGRAD_DTYPE_CODE_FLOAT, 32, np.dtype(np.float32)),
    "f64": (B.SIMGRAD_DTYPE_CODE_FLOAT, 64, np.dtype(np.float64)),
    "i32": (B.SIMGRAD_DTYPE_CODE_INT, 32, np.dtype(np.int32)),
    "i64": (B.SIMGRAD_DTYPE_CODE_INT, 64, np.dtype(np.int64)),
}
#: (DLPack code, bits) -> manifest dtype
DLPACK_NAMES = {(c, b): name for name, (c, b, _) in DTYPES.items()}
#: NumPy dtype -> manifest dtype
NUMPY_NAMES = {np_dt: name for name, (_, _, np_dt) in DTYPES.items()}

_EMPTY = B.simgrad_tensor()  # all zero: data NULL marks an absent tangent / cotangent


def numpy_dtype(name: str) -> np.dtype:
    return DTYPES[name][2]


def is_torch_tensor(x) -> bool:
    t = type(x)
    return t.__module__.startswith("torch") and hasattr(x, "data_ptr") and hasattr(x, "stride")


@dataclass
class Described:
    tensor: B.simgrad_tensor
    keep: tuple


#: ctypes array types of int64 dims, by rank (created once: ``c_int64 * n`` is not free).
_DIM_TYPES = [ctypes.c_int64 * n for n in range(33)]
_CPU = B.simgrad_device(B.SIMGRAD_DEVICE_CPU, 0)
#: manifest dtype -> its simgrad_dtype struct
DTYPE_STRUCTS = {name: B.simgrad_dtype(code, bits, 1) for name, (code, bits, _) in DTYPES.items()}


def _dims(values) -> ctypes.Array | None:
    n = len(values)
    if not n:
        return None
    t = _DIM_TYPES[n] if n < len(_DIM_TYPES) else ctypes.c_int64 * n
    return t(*values)


def _make(ptr: int, dtype: str, shape, strides) -> Described:
    """A CPU descriptor; ``shape`` and ``strides`` (None: compact row-major) in elements."""
    shp = _dims(shape)
    st = _dims(strides) if strides is not None else None
    t = B.simgrad_tensor(ptr or None, _CPU, len(shape), DTYPE_STRUCTS[dtype], shp, st, 0)
    return Described(t, (shp, st))


#: manifest dtype -> ctypes scalar type, for sizes and scalars passed by value
SCALAR_CTYPES = {"f32": ctypes.c_float, "f64": ctypes.c_double, "i32": ctypes.c_int32, "i64": ctypes.c_int64}


def describe_value(holder) -> Described:
    """A rank-0 descriptor pointing at a ctypes scalar (a size or scalar passed by value)."""
    name = _CTYPE_NAMES[type(holder)]
    t = B.simgrad_tensor(ctypes.addressof(holder), _CPU, 0, DTYPE_STRUCTS[name], None, None, 0)
    return Described(t, (holder,))


_CTYPE_NAMES = {v: k for k, v in SCALAR_CTYPES.items()}


def describe_numpy(a: np.ndarray, label: str) -> Described:
    """A descriptor of a NumPy array's memory (no copy). ``label`` names it in errors."""
    dt = a.dtype
    name = NUMPY_NAMES.get(dt.newbyteorder("=")) if dt.isnative else None
    if name is None:
        raise DTypeError(
            None,
            f"{label} has NumPy dtype {dt}{'' if dt.isnative else ' (non-native byte order)'}; "
            "simgrad supports native float32, float64, int32 and int64",
        )
    item = dt.itemsize
    if a.flags.c_contiguous:
        strides = None  # NULL: compact row-major
    else:
        if any(s % item for s in a.strides):
            raise LayoutError(None, f"{label} has strides {a.strides} bytes, not a multiple of its itemsize {item}")
        strides = [s // item for s in a.strides]
    return _make(a.__array_interface__["data"][0], name, a.shape, strides)


_TORCH_DTYPES: dict | None = None


def _torch_dtypes():
    global _TORCH_DTYPES
    if _TORCH_DTYPES is None:
        import torch

        _TORCH_DTYPES = {torch.float32: "f32", torch.float64: "f64", torch.int32: "i32", torch.int64: "i64"}
    return _TORCH_DTYPES


def torch_dtype_name(t) -> str | None:
    return _torch_dtypes().get(t.dtype)


def check_torch_device(t, label: str) -> None:
    """Only CPU memory can be handed to a kernel: CUDA, MPS, meta, ... tensors are refused."""
    dev = t.device
    if dev.type != "cpu":
        hint = " (move it with .cpu(); simgrad kernels run on the host)" if dev.type != "meta" else ""
        raise LayoutError(None, f"{label} is on device `{dev}`, simgrad kernels take CPU memory only{hint}")


def describe_torch(t, label: str) -> Described:
    """A descriptor of a CPU tensor's memory (``data_ptr()``, no copy)."""
    check_torch_device(t, label)
    name = torch_dtype_name(t)
    if name is None:
        raise DTypeError(None, f"{label} has dtype {t.dtype}; simgrad supports float32, float64, int32 and int64")
    if t.is_conj() or t.is_neg():
        raise LayoutError(None, f"{label} has a lazy conjugate/negative bit; call .resolve_conj()/.resolve_neg()")
    strides = None if t.is_contiguous() else list(t.stride())
    return _make(t.data_ptr(), name, tuple(t.shape), strides)


def describe(value, label: str) -> Described:
    """A descriptor of an array (NumPy or PyTorch), without copying."""
    if isinstance(value, np.ndarray):
        return describe_numpy(value, label)
    if is_torch_tensor(value):
        return describe_torch(value, label)
    raise DTypeError(None, f"{label} is a {type(value).__name__}, expected a NumPy array or a PyTorch tensor")


def tensor_array(items: list[Described | None]):
    """A C array of descriptors (absent entries have data NULL), or None when all are absent."""
    if all(d is None for d in items):
        return None
    arr = (B.simgrad_tensor * len(items))()
    for i, d in enumerate(items):
        arr[i] = d.tensor if d is not None else _EMPTY
    return arr
