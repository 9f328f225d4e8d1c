"""Turning NumPy arrays, PyTorch tensors and Python numbers into ``simgrad_tensor`` descriptors.

A descriptor points at the caller's memory; nothing is copied. Two ways to build them:

* **Descriptor blocks** (`Layout`, the path of every call): all descriptors of one call, with their
  shape, strides and by-value scalar words, live in one ``array('Q')`` copied from a per-kernel
  template in which everything that does not depend on the call's data (device, dtype, rank) is
  already filled; a call writes only data pointers, shapes and strides. Each call owns its block
  (nothing mutable is shared between threads or re-entrant calls).
* **One ``simgrad_tensor`` per value** (`describe`, `tensor_array`): the general fallback, for an
  array whose rank differs from its argument's (the runtime then reports it) and for platforms
  whose ``simgrad_tensor`` is not the 48-byte 64-bit layout. Shape and strides arrays are
  allocated per descriptor and must stay alive for the duration of the C call: these functions
  return the descriptor together with the objects to keep (``Described.keep``).

PyTorch is never imported here: a tensor is recognised by its type's module, so NumPy-only users
do not pay for importing torch.
"""

from __future__ import annotations

import ctypes
import struct
import sys
from array import array
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


#: types already recognised as torch tensors (the test below only looks at the type)
_TORCH_TYPES: set = set()


def is_torch_tensor(x) -> bool:
    t = type(x)
    if t in _TORCH_TYPES:
        return True
    if t.__module__.startswith("torch") and hasattr(x, "data_ptr") and hasattr(x, "stride"):
        _torch_dtypes()  # torch is imported by now
        _TORCH_TYPES.add(t)
        return True
    return False


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
    """A descriptor of an array (NumPy or PyTorch, or a `ShapeOnly`), without copying."""
    if isinstance(value, np.ndarray):
        return describe_numpy(value, label)
    if is_torch_tensor(value):
        return describe_torch(value, label)
    if isinstance(value, ShapeOnly):
        return _make(0, value.dtype, value.shape, None)
    raise DTypeError(None, f"{label} is a {type(value).__name__}, expected a NumPy array or a PyTorch tensor")


def tensor_array(items: list[Described | None]):
    """A C array of descriptors (absent entries have data NULL), or None when all are absent."""
    if all(d is None for d in items):
        return None
    arr = (B.simgrad_tensor * len(items))()
    for i, d in enumerate(items):
        arr[i] = d.tensor if d is not None else _EMPTY
    return arr


class ShapeOnly:
    """An array argument given by dtype and shape only, its data pointer NULL: the ``out``
    arguments of a VJP, which the runtime recomputes in scratch memory without touching the
    caller's (docs/calling-convention.md). Internal: the calls of this package build them."""

    __slots__ = ("dtype", "shape")

    def __init__(self, dtype: str, shape: tuple):
        self.dtype = dtype
        self.shape = tuple(shape)

    def __repr__(self) -> str:
        return f"ShapeOnly({self.dtype}, {self.shape})"


# ---------------------------------------------------------------------- descriptor blocks


def _probe_data_offset() -> int | None:
    """Where an ndarray object keeps its data pointer: ``PyArrayObject.data``, the first field
    after the object header (what ``PyArray_DATA`` reads; part of NumPy's C ABI). Reading it is
    ~8x cheaper than ``__array_interface__`` or ``.ctypes.data``. Verified here on arrays of
    several kinds; None (use ``__array_interface__``) when it does not hold or ``id`` is not an
    address (not CPython)."""
    if sys.implementation.name != "cpython":
        return None
    off = object.__basicsize__
    try:
        base = np.arange(12.0).reshape(3, 4)
        probes = (base, base[:, 1:], base.T, np.asfortranarray(base), np.zeros((), np.int32), np.empty(0))
        for a in probes:
            if (ctypes.c_void_p.from_address(id(a) + off).value or 0) != a.__array_interface__["data"][0]:
                return None
    except Exception:  # noqa: BLE001 - any surprise: the slow, public way
        return None
    return off


_DATA_OFFSET = _probe_data_offset()
_void_at = ctypes.c_void_p.from_address

if _DATA_OFFSET is not None:

    def numpy_data_ptr(a: np.ndarray) -> int:
        """The address of an ndarray's data (0 for NULL)."""
        return _void_at(id(a) + _DATA_OFFSET).value or 0

else:  # pragma: no cover - other interpreters

    def numpy_data_ptr(a: np.ndarray) -> int:
        """The address of an ndarray's data (0 for NULL)."""
        return a.__array_interface__["data"][0] or 0


def _blocks_supported() -> bool:
    """Descriptor blocks assume the 64-bit ``simgrad_tensor``: six 8-byte words."""
    T = B.simgrad_tensor
    offsets = [getattr(T, f).offset for f in ("data", "device", "ndim", "dtype", "shape", "strides", "byte_offset")]
    return ctypes.sizeof(ctypes.c_void_p) == 8 and ctypes.sizeof(T) == 48 and offsets == [0, 8, 16, 20, 24, 32, 40]


#: whether `Layout` blocks can be used (else every call takes `describe` / `tensor_array`)
BLOCKS = _blocks_supported()
_WORD = struct.Struct("=Q")
#: words are unsigned (a pointer may have its top bits set, as tagged pointers do); a negative
#: stride is stored as its two's complement
_WORD_MASK = 2**64 - 1
#: the words 1 and 2 of a ``simgrad_tensor``: the device, then ndim with the dtype
DEVICE_WORD = _WORD.unpack(struct.pack("=ii", B.SIMGRAD_DEVICE_CPU, 0))[0]


def header_word(dtype: str, ndim: int) -> int:
    code, bits, _ = DTYPES[dtype]
    return _WORD.unpack(struct.pack("=iBBH", ndim, code, bits, 1))[0]


#: manifest dtype -> writes one value of that C type into a block (byte offset)
_PACK_VALUE = {
    "f32": struct.Struct("=f").pack_into,
    "f64": struct.Struct("=d").pack_into,
    "i32": struct.Struct("=i").pack_into,
    "i64": struct.Struct("=q").pack_into,
}


class RankMismatch(Exception):
    """An array whose rank differs from its argument's: its descriptor does not fit the block's
    layout, so the call is described by `describe` instead (and the runtime reports it)."""


class Layout:
    """Where the descriptors of one call live in its block (an ``array('Q')``).

    The block holds ``nlists`` lists (arguments, then shadows in and out for JVP/VJP) of one
    ``simgrad_tensor`` (6 words) per kernel argument, followed, for each descriptor slot, by its
    shape words, its strides words and (by-value arguments) one value word. ``template`` has
    every word that does not depend on the call: device, rank and dtype of every slot; data,
    shape and strides pointers are 0. A slot whose data stays 0 is an absent shadow.

    ``specs``: per argument ``(dtype, ndim, by_value)``. Immutable once made: calls on several
    threads share it, each copying the template into a block of its own (`new`)."""

    __slots__ = ("nargs", "nlists", "template", "slots")

    def __init__(self, specs, nlists: int):
        n = len(specs)
        self.nargs, self.nlists = n, nlists
        words = [0] * (6 * n * nlists)
        slots = []
        for lst in range(nlists):
            for i, (dtype, ndim, by_value) in enumerate(specs):
                w = 6 * (lst * n + i)
                words[w + 1] = DEVICE_WORD
                words[w + 2] = header_word(dtype, ndim)
                shape_at = len(words)
                words.extend([0] * (2 * ndim))
                value_at = -1
                if by_value and lst == 0:
                    value_at = len(words)
                    words.append(0)
                # word of the descriptor, rank, dtype, NumPy dtype, words of shape, strides, value
                slots.append((w, ndim, dtype, DTYPES[dtype][2], shape_at, shape_at + ndim, value_at))
        self.slots = tuple(slots)
        self.template = array("Q", words)

    def new(self):
        """A fresh block for one call, and its address."""
        blk = self.template.__copy__()
        return blk, blk.buffer_info()[0]

    def put_value(self, blk, base: int, j: int, dtype: str, value) -> None:
        """A size or scalar passed by value, converted to the C type of ``dtype`` as ctypes
        converts (floats round to f32, integers out of range wrap)."""
        w, _, _, _, _, _, k = self.slots[j]
        blk[w] = base + 8 * k
        try:
            _PACK_VALUE[dtype](blk, 8 * k, value)
        except (struct.error, OverflowError):
            _PACK_VALUE[dtype](blk, 8 * k, SCALAR_CTYPES[dtype](value).value)

    def put_array(self, blk, base: int, j: int, v, label: str) -> None:
        """Describes the array ``v`` (NumPy array, CPU torch tensor or `ShapeOnly`) in slot
        ``j``, checking what `describe` checks (with the same errors). Raises `RankMismatch` when
        its rank is not the slot's."""
        w, want_nd, want_dt, want_np, k, ks, _ = self.slots[j]
        t = type(v)
        if t in _TORCH_TYPES:
            if not v.is_cpu:
                check_torch_device(v, label)
            name = _TORCH_DTYPES.get(v.dtype)
            if name is None:
                raise DTypeError(None, f"{label} has dtype {v.dtype}; simgrad supports float32, float64, int32 and int64")
            if v.is_conj() or v.is_neg():
                raise LayoutError(None, f"{label} has a lazy conjugate/negative bit; call .resolve_conj()/.resolve_neg()")
            shape = v.shape
            nd = len(shape)
            if nd != want_nd:
                raise RankMismatch
            strides = None if v.is_contiguous() else v.stride()
            blk[w] = v.data_ptr()
        elif t is np.ndarray or isinstance(v, np.ndarray):
            dt = v.dtype
            if dt is want_np:
                name = want_dt
            else:
                name = NUMPY_NAMES.get(dt) if dt.isnative else None
                if name is None:
                    describe_numpy(v, label)  # raises the DTypeError
            nd = v.ndim
            if nd != want_nd:
                raise RankMismatch
            blk[w] = numpy_data_ptr(v) if _DATA_OFFSET is None else (_void_at(id(v) + _DATA_OFFSET).value or 0)
            shape = v.shape
            if v.flags.c_contiguous:
                strides = None
            else:
                item = dt.itemsize
                strides = v.strides
                if any(s % item for s in strides):
                    raise LayoutError(None, f"{label} has strides {strides} bytes, not a multiple of its itemsize {item}")
                strides = [s // item for s in strides]
        elif t is ShapeOnly:
            name, shape, strides = v.dtype, v.shape, None
            nd = len(shape)
            if nd != want_nd:
                raise RankMismatch
        elif is_torch_tensor(v):  # a tensor type seen for the first time: now known
            return self.put_array(blk, base, j, v, label)
        else:
            describe(v, label)  # raises the DTypeError
            raise AssertionError("unreachable")
        if name != want_dt:
            blk[w + 2] = header_word(name, nd)
        if nd == 1:
            blk[w + 3] = base + 8 * k
            blk[k] = shape[0]
            if strides is not None:
                blk[w + 4] = base + 8 * ks
                blk[ks] = strides[0] & _WORD_MASK
        elif nd:
            blk[w + 3] = base + 8 * k
            for d in shape:
                blk[k] = d
                k += 1
            if strides is not None:
                blk[w + 4] = base + 8 * ks
                for st in strides:
                    blk[ks] = st & _WORD_MASK
                    ks += 1
