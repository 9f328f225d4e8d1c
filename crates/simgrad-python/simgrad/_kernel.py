"""`Kernel`: one kernel of a library, its arguments, and calls from NumPy.

Two layers:

* **Calls on NumPy arrays** (``k(*inputs)``, ``k.call``, ``k.jvp``, ``k.vjp``) take the kernel's
  *inputs* (``in`` and ``inout`` arrays, scalars, sizes) and return its *outputs* (``out`` and
  ``inout`` arrays) as new arrays. The caller's arrays are never modified:

  - ``in`` arrays cross without a copy; they must already have the kernel's dtype and be
    contiguous in its memory order (C for C/C++, F for Fortran kernels), else the call fails
    with `DTypeError` / `LayoutError` naming the argument (``convert=True`` converts instead).
  - ``out`` arrays are allocated (``numpy.empty`` in the kernel's memory order) and returned.
  - ``inout`` arrays are copied, the copy is updated by the kernel and returned, the caller's
    array is left as it was. Any layout is accepted for them, since they are copied anyway.
  - Size arguments may be omitted when an input array's shape determines them (``n`` from
    ``x`` of shape ``("n",)``); scalars may be Python numbers.

* **Raw calls** (``call_raw``, ``jvp_raw``, ``vjp_raw``) mirror the C API exactly: one value per
  kernel argument, ``out``/``inout`` arrays written in place, tangent and cotangent buffers
  supplied by the caller. Nothing is copied or allocated; this is the zero-copy path the PyTorch
  and JAX adapters build on.

All calls release the GIL while the kernel runs (``ctypes.CDLL`` does that for every foreign
call), so kernels may run in parallel from several Python threads; a kernel handle is
thread-safe, each call brings its own buffers.

Per-call cost: everything about a kernel's arguments that does not depend on a call's data
(kinds, dtypes, ranks, shape rules, the descriptor layout, labels for messages) is computed once,
when the kernel is opened. A call then checks its values, writes data pointers, shapes and
strides into a descriptor block of its own (`_tensor.Layout`) and calls the C function through a
prototype taking plain addresses. Calls that the quick checks do not cover (keyword arguments,
``convert=True``, other types, anything wrong) take the general path, which gives the same
results and raises the same errors.
"""

from __future__ import annotations

import ctypes
import json
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from . import _bindings as B
from . import _tensor
from ._dims import Dim
from ._errors import (
    DTypeError,
    InvalidArgumentError,
    LayoutError,
    ShapeError,
    check,
)
from ._handle import Handle
from ._tensor import (
    _DATA_OFFSET,
    _TORCH_TYPES,
    BLOCKS,
    DLPACK_NAMES,
    SCALAR_CTYPES,
    Described,
    Layout,
    RankMismatch,
    ShapeOnly,
    describe,
    describe_value,
    numpy_dtype,
    tensor_array,
)

_ndarray = np.ndarray
_void_at = ctypes.c_void_p.from_address

_KINDS = {B.SIMGRAD_ARG_ARRAY: "array", B.SIMGRAD_ARG_SIZE: "size", B.SIMGRAD_ARG_SCALAR: "scalar"}
_INTENTS = {B.SIMGRAD_INTENT_IN: "in", B.SIMGRAD_INTENT_OUT: "out", B.SIMGRAD_INTENT_INOUT: "inout"}
_MODES = {"primal": B.SIMGRAD_MODE_PRIMAL, "jvp": B.SIMGRAD_MODE_JVP, "vjp": B.SIMGRAD_MODE_VJP}

_VP, _SIZE, _STATUS = ctypes.c_void_p, ctypes.c_size_t, B.simgrad_status
#: The three call functions with every pointer a plain address (a Python int): converting an int
#: costs ctypes much less than checking a ``POINTER(simgrad_tensor)`` argument. CFUNCTYPE
#: functions release the GIL like those of ``ctypes.CDLL``.
_ADDRESS_PROTOTYPES = {
    "simgrad_kernel_call": ctypes.CFUNCTYPE(_STATUS, _VP, _VP, _SIZE),
    "simgrad_kernel_jvp": ctypes.CFUNCTYPE(_STATUS, _VP, _VP, _SIZE, _VP, _VP),
    "simgrad_kernel_vjp": ctypes.CFUNCTYPE(_STATUS, _VP, _VP, _SIZE, _VP, _VP, ctypes.c_uint32),
}
_address_functions: dict = {}


def _address_fns(lib) -> tuple:
    """(call, jvp, vjp) of ``lib`` taking addresses (made once per loaded library)."""
    fns = _address_functions.get(id(lib))
    if fns is None or fns[0] is not lib:
        fns = (lib, *(proto((name, lib)) for name, proto in _ADDRESS_PROTOTYPES.items()))
        _address_functions[id(lib)] = fns
    return fns[1:]


# Input kinds of the quick checks (`Kernel._quick_args`).
_Q_SIZE, _Q_F64, _Q_F32, _Q_INT, _Q_IN, _Q_INOUT = range(6)
_F32_MAX = float(np.finfo(np.float32).max)
#: where a size was left out of positional inputs (None is a value: a wrong one)
_MISSING = object()


@dataclass(frozen=True)
class Arg:
    """One kernel argument, as the manifest describes it."""

    index: int
    name: str
    #: ``"array"``, ``"size"`` or ``"scalar"``
    kind: str
    #: ``"f32"``, ``"f64"``, ``"i32"`` or ``"i64"``
    dtype: str
    #: dims of an array (numbers, size names or expressions); ``()`` for sizes and scalars
    shape: tuple
    #: ``"in"``, ``"out"`` or ``"inout"`` (always ``"in"`` for sizes and scalars)
    intent: str
    differentiable: bool

    @property
    def is_input(self) -> bool:
        """Read by the kernel: ``in``/``inout`` arrays, scalars and sizes."""
        return self.intent in ("in", "inout")

    @property
    def is_output(self) -> bool:
        """Written by the kernel: ``out``/``inout`` arrays."""
        return self.kind == "array" and self.intent in ("out", "inout")

    @property
    def numpy_dtype(self) -> np.dtype:
        return numpy_dtype(self.dtype)

    def type_text(self) -> str:
        if self.kind == "size":
            return f"size {self.dtype}"
        if self.kind == "scalar":
            return self.dtype
        return f"{self.dtype}[{', '.join(d.text for d in self.shape)}]"

    def __str__(self) -> str:
        intent = f"{self.intent} " if self.kind == "array" else ""
        nd = "" if self.differentiable or self.kind == "size" else " (not differentiable)"
        return f"{self.name}: {intent}{self.type_text()}{nd}"


def _pack(items: list):
    """One result bare, several as a tuple, none as None."""
    if not items:
        return None
    return items[0] if len(items) == 1 else tuple(items)


def _scalar_array(value, arg: Arg, label: str) -> np.ndarray:
    """A 0-d array holding a scalar or size value in the argument's dtype."""
    dt = arg.numpy_dtype
    if arg.kind == "size" or arg.dtype.startswith("i"):
        if isinstance(value, (bool, np.bool_)) or isinstance(value, (float, np.floating)):
            raise DTypeError(None, f"{label} must be an integer, got {value!r}")
        try:
            v = operator.index(value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value)
        except TypeError:
            raise DTypeError(None, f"{label} must be an integer, got {type(value).__name__}") from None
        if arg.kind == "size" and v < 0:
            raise ShapeError(None, f"{label} is {v}; sizes must not be negative")
        return np.array(v, dtype=dt)
    if hasattr(value, "ndim") and getattr(value, "ndim") != 0:
        raise ShapeError(None, f"{label} must be a scalar, got an array of shape {tuple(value.shape)}")
    if hasattr(value, "detach"):  # a 0-d torch tensor
        value = value.detach().cpu().item()
    if isinstance(value, (complex, np.complexfloating)):
        raise DTypeError(None, f"{label} must be a real number, got {value!r}")
    try:
        return np.array(float(value), dtype=dt)
    except (TypeError, ValueError):
        raise DTypeError(None, f"{label} must be a number, got {type(value).__name__}") from None


class Kernel(Handle):
    """One kernel of a library; owns a ``simgrad_kernel`` handle (which keeps its library loaded).

    Obtain it with ``library["name"]`` (or ``library.name``). Attributes:

    * ``name``, ``args`` (tuple of `Arg`), ``modes`` (subset of ``("primal", "jvp", "vjp")``),
      ``order`` (``"C"`` or ``"F"``), ``manifest`` (this kernel's manifest entry as a dict)
    * ``inputs`` / ``outputs``: the arguments ``k(...)`` takes / returns, in argument order
    * ``differentiable_inputs`` / ``differentiable_outputs``: what ``jvp`` takes tangents of and
      ``vjp`` returns cotangents of / what ``jvp`` returns tangents of and ``vjp`` takes
      cotangents of
    """

    _free_name = "simgrad_kernel_free"
    _what = "kernel"
    #: the handle's address (0 once closed), for the calls
    _addr = 0

    def __init__(self, ptr, manifest_entry: dict | None = None, library_path: str | None = None):
        super().__init__(ptr)
        lib = self._lib
        name = ctypes.c_char_p()
        check(lib.simgrad_kernel_name(ptr, ctypes.byref(name)))
        self.name: str = name.value.decode()
        count = ctypes.c_size_t()
        check(lib.simgrad_kernel_arg_count(ptr, ctypes.byref(count)))
        entry = manifest_entry or {}
        shapes = {a["name"]: a.get("shape", []) for a in entry.get("args", [])}
        args = []
        for i in range(count.value):
            info = B.simgrad_arg_info()
            check(lib.simgrad_kernel_arg_info(ptr, i, ctypes.byref(info)))
            arg_name = info.name.decode()
            dims = tuple(Dim(d) for d in shapes.get(arg_name, []))
            if len(dims) != info.ndim:
                # Without the manifest's shape rules only ranks are known (should not happen for
                # libraries opened through libsimgrad, whose manifest always has them).
                dims = tuple(Dim(f"{arg_name}_{j}") for j in range(info.ndim))
            args.append(
                Arg(
                    index=i,
                    name=arg_name,
                    kind=_KINDS[info.kind],
                    dtype=DLPACK_NAMES[(info.dtype.code, info.dtype.bits)],
                    shape=dims,
                    intent=_INTENTS[info.intent],
                    differentiable=bool(info.differentiable),
                )
            )
        self.args: tuple[Arg, ...] = tuple(args)
        modes = []
        for mode, num in _MODES.items():
            has = ctypes.c_uint32()
            check(lib.simgrad_kernel_has_mode(ptr, num, ctypes.byref(has)))
            if has.value:
                modes.append(mode)
        self.modes: tuple[str, ...] = tuple(modes)
        order = ctypes.c_uint32()
        check(lib.simgrad_kernel_memory_order(ptr, ctypes.byref(order)))
        self.order: str = "F" if order.value == B.SIMGRAD_ORDER_F else "C"
        self.manifest: dict = entry
        self.library_path = library_path

        self.inputs = tuple(a for a in self.args if a.is_input)
        self.outputs = tuple(a for a in self.args if a.is_output)
        self.differentiable_inputs = tuple(a for a in self.inputs if a.differentiable and a.kind != "size")
        self.differentiable_outputs = tuple(a for a in self.outputs if a.differentiable)
        self._by_name = {a.name: a for a in self.args}
        self._inferable = {a.name for a in self.inputs if a.kind == "size" and self._size_source(a.name)}
        self._setup_calls()

    def _setup_calls(self) -> None:
        """Precomputes what calls need that does not depend on their data (see the module
        documentation): nothing here changes afterwards, so calls from several threads share it."""
        args, inputs = self.args, self.inputs
        self._nargs = len(args)
        self._addr = ctypes.cast(self._ptr, ctypes.c_void_p).value or 0
        self._c_call, self._c_jvp, self._c_vjp = _address_fns(self._lib)
        self._layout1 = self._layout3 = None
        if BLOCKS:
            specs = [(a.dtype, len(a.shape), a.kind != "array") for a in args]
            self._layout1, self._layout3 = Layout(specs, 1), Layout(specs, 3)
        whats = ("arguments", "tangents_in", "tangents_out", "cotangents_in", "cotangents_out")
        self._labels = {w: tuple(f"kernel `{self.name}`: {w[:-1]} `{a.name}`" for a in args) for w in whats}
        self._arg_is_array = tuple(a.kind == "array" for a in args)
        self._float_by_value = tuple(a.kind == "scalar" and not a.dtype.startswith("i") for a in args)
        self._int_by_value = tuple(a.kind == "size" or a.dtype.startswith("i") for a in args)
        # Shape rules.
        self._shape_names = frozenset(n for a in args for d in a.shape for n in d.names())
        self._extra_names = self._shape_names - set(self._by_name)
        self._dims = tuple(tuple(d.compiled() for d in a.shape) for a in args)
        self._static_shapes = tuple(dims if all(type(d) is int for d in dims) else None for dims in self._dims)
        # Binding positional inputs: the short form (inferable sizes left out), then the full one
        # (which wins when both have the same length, as in `bind`).
        self._full_inputs = inputs
        self._short_inputs = tuple(a for a in inputs if a.name not in self._inferable)
        pos = {a.name: p for p, a in enumerate(inputs)}
        self._forms = {}
        for form in (self._short_inputs, inputs):
            names = {a.name for a in form}
            missing = tuple((pos[a.name], a.name) for a in inputs if a.name not in names)
            self._forms[len(form)] = (tuple(pos[a.name] for a in form), missing)
        self._size_inputs = tuple(
            (p, a.name, 2**31 - 1 if a.dtype == "i32" else 2**63 - 1) for p, a in enumerate(inputs) if a.kind == "size"
        )
        self._array_inputs = tuple(
            (p, len(a.shape), tuple((k, d.name) for k, d in enumerate(a.shape) if d.name is not None))
            for p, a in enumerate(inputs)
            if a.kind == "array"
        )
        plan = []
        for a in inputs:
            if a.kind == "size":
                code = _Q_SIZE
            elif a.kind == "scalar":
                code = _Q_INT if a.dtype.startswith("i") else _Q_F32 if a.dtype == "f32" else _Q_F64
            else:
                code = _Q_INOUT if a.intent == "inout" else _Q_IN
            # the range of integer values the quick path takes (sizes are never negative)
            bits = 31 if a.dtype == "i32" else 63
            lo = 0 if a.kind == "size" else -(2**bits)
            plan.append((a.index, code, a.numpy_dtype, len(a.shape), lo, 2**bits - 1, a.name))
        self._input_plan = tuple(plan)
        self._bare_dims = tuple((inputs[p].index, bare) for p, _, bare in self._array_inputs if bare)
        self._out_plan = tuple((a, a.numpy_dtype, self._static_shapes[a.index]) for a in args if a.intent == "out")
        self._result_index = tuple(a.index for a in self.outputs)
        self._diff_input_index = frozenset(a.index for a in self.differentiable_inputs)

    def close(self) -> None:
        self._addr = 0
        super().close()

    # ------------------------------------------------------------------ description

    def _label(self) -> str:
        return f"`{self.name}`"

    def _size_source(self, size: str) -> Arg | None:
        """The first input array with ``size`` as a bare dim (its shape determines the size)."""
        for a in self.inputs:
            if a.kind == "array" and any(d.name == size for d in a.shape):
                return a
        return None

    def signature(self) -> str:
        """The Python call signature: ``axpy(a: f64, x: f64[n], y: f64[n], n: size = len) -> y: f64[n]``."""
        req = [str(a) for a in self.inputs if a.name not in self._inferable]
        opt = [f"{a.name}: size {a.dtype} = {self._size_source(a.name).name}.shape" for a in self.inputs if a.name in self._inferable]
        outs = ", ".join(f"{a.name}: {a.type_text()}" for a in self.outputs) or "None"
        return f"{self.name}({', '.join(req + opt)}) -> {outs}"

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        args = ", ".join(str(a) for a in self.args)
        return f"<simgrad.Kernel {self.name}({args}) modes={','.join(self.modes)} order={self.order}{state}>"

    def describe(self) -> str:
        """A multi-line description: signature, arguments, modes and memory order."""
        lines = [self.signature(), f"  modes: {', '.join(self.modes)}; memory order {self.order}"]
        for a in self.args:
            lines.append(f"  {a}")
        return "\n".join(lines)

    def arg(self, name: str) -> Arg:
        """The argument called ``name``."""
        try:
            return self._by_name[name]
        except KeyError:
            raise InvalidArgumentError(
                None, f"kernel `{self.name}` has no argument `{name}`; its arguments are: {', '.join(self._by_name)}"
            ) from None

    # ------------------------------------------------------------------ raw calls

    def _scalar_or_array(self, arg: Arg, value, label: str, *, buffer: bool = False) -> Described:
        """A descriptor for one value. Scalars and sizes are passed by value, so a number of
        another type is converted; a ``buffer`` (a tangent or cotangent, possibly written) must
        be a 0-d array or tensor, described in place."""
        if arg.kind == "array":
            return describe(value, label)
        if buffer:
            if getattr(value, "ndim", None) != 0:
                raise ShapeError(None, f"{label} must be a 0-d array or tensor, got {type(value).__name__}")
            return describe(value, label)
        # Passed by value: the value is copied into a ctypes scalar of the argument's type.
        ctype = SCALAR_CTYPES[arg.dtype]
        if type(value) is float and arg.kind == "scalar" and not arg.dtype.startswith("i"):
            return describe_value(ctype(value))
        if type(value) is int and (arg.kind == "size" or arg.dtype.startswith("i")) and value >= 0:
            return describe_value(ctype(value))
        return describe_value(ctype(_scalar_array(value, arg, label).item()))

    def _arg_list(self, values: Sequence, what: str) -> list[Described]:
        if len(values) != len(self.args):
            raise InvalidArgumentError(
                None, f"kernel `{self.name}`: expected {len(self.args)} {what}, got {len(values)}"
            )
        return [self._scalar_or_array(a, v, f"kernel `{self.name}`: {what[:-1]} `{a.name}`") for a, v in zip(self.args, values)]

    def _shadow_list(self, values: Sequence | None, what: str) -> list[Described | None]:
        if values is None:
            return [None] * len(self.args)
        if len(values) != len(self.args):
            raise InvalidArgumentError(
                None, f"kernel `{self.name}`: expected {len(self.args)} {what} (None where absent), got {len(values)}"
            )
        out: list[Described | None] = []
        for a, v in zip(self.args, values):
            if v is None:
                out.append(None)
            else:
                out.append(self._scalar_or_array(a, v, f"kernel `{self.name}`: {what[:-1]} `{a.name}`", buffer=True))
        return out

    def _by_value(self, j: int, a: Arg, value, label: str):
        """A size or scalar passed by value: the number to convert to the argument's C type."""
        t = type(value)
        if t is float and self._float_by_value[j]:
            return value
        if t is int and self._int_by_value[j] and value >= 0:
            return value
        return _scalar_array(value, a, label).item()

    def _put_args(self, lay: Layout, blk, base: int, values: Sequence) -> None:
        """Describes one value per argument in the first list of a block (`_arg_list`'s checks
        and errors)."""
        n = self._nargs
        if len(values) != n:
            raise InvalidArgumentError(None, f"kernel `{self.name}`: expected {n} arguments, got {len(values)}")
        labels = self._labels["arguments"]
        slots = lay.slots
        data_offset = _DATA_OFFSET
        j = 0
        for v in values:
            w, nd, dtype, np_dtype, k, _, value_at = slots[j]
            if value_at >= 0:
                a = self.args[j]
                lay.put_value(blk, base, j, dtype, self._by_value(j, a, v, labels[j]))
            elif (
                type(v) is _ndarray
                and data_offset is not None
                and v.dtype is np_dtype
                and v.ndim == nd
                and v.flags.c_contiguous
            ):
                # The common case, inline: an array of the argument's dtype and rank, compact.
                blk[w] = _void_at(id(v) + data_offset).value or 0
                if nd:
                    blk[w + 3] = base + 8 * k
                    for d in v.shape:
                        blk[k] = d
                        k += 1
            elif (
                type(v) in _TORCH_TYPES
                and v.is_cpu
                and v.dim() == nd
                and v.is_contiguous()
                and not v.is_conj()
                and not v.is_neg()
                and _tensor._TORCH_DTYPES.get(v.dtype) == dtype
            ):
                # The same for a CPU tensor.
                blk[w] = v.data_ptr()
                if nd:
                    blk[w + 3] = base + 8 * k
                    for d in v.shape:
                        blk[k] = d
                        k += 1
            elif type(v) is ShapeOnly and v.dtype == dtype and len(v.shape) == nd:
                # A VJP's out argument: no data.
                if nd:
                    blk[w + 3] = base + 8 * k
                    for d in v.shape:
                        blk[k] = d
                        k += 1
            else:
                lay.put_array(blk, base, j, v, labels[j])
            j += 1

    def _put_shadows(self, lay: Layout, blk, base: int, lists: tuple, whats: tuple) -> list[bool]:
        """Describes tangents or cotangents (None where absent) in the lists 1 and 2 of a block
        (`_shadow_list`'s checks and errors); whether each has any."""
        n = self._nargs
        present = [False, False]
        for lst, (values, what) in enumerate(zip(lists, whats)):
            if values is None:
                continue
            if len(values) != n:
                raise InvalidArgumentError(
                    None, f"kernel `{self.name}`: expected {n} {what} (None where absent), got {len(values)}"
                )
            labels = self._labels[what]
            off = (lst + 1) * n
            i = 0
            for v in values:
                if v is not None:
                    w, nd, dtype, _, k, _, _ = lay.slots[off + i]
                    if (
                        type(v) in _TORCH_TYPES
                        and self._arg_is_array[i]
                        and v.is_cpu
                        and v.dim() == nd
                        and v.is_contiguous()
                        and not v.is_conj()
                        and not v.is_neg()
                        and _tensor._TORCH_DTYPES.get(v.dtype) == dtype
                    ):
                        # The common case of the torch adapter, inline (as in `_put_args`).
                        blk[w] = v.data_ptr()
                        if nd:
                            blk[w + 3] = base + 8 * k
                            for d in v.shape:
                                blk[k] = d
                                k += 1
                    else:
                        if not self._arg_is_array[i] and getattr(v, "ndim", None) != 0:
                            raise ShapeError(None, f"{labels[i]} must be a 0-d array or tensor, got {type(v).__name__}")
                        lay.put_array(blk, base, off + i, v, labels[i])
                    present[lst] = True
                i += 1
        return present

    def call_raw(self, args: Sequence) -> None:
        """Runs the primal with one value per argument, in argument order, exactly as the C
        ``simgrad_kernel_call``: ``out``/``inout`` arrays are written in place. Arrays are NumPy
        arrays or CPU PyTorch tensors (never copied); sizes and scalars are numbers."""
        addr = self._addr or self._handle()
        lay = self._layout1
        if lay is not None:
            blk = lay.template.__copy__()
            base = blk.buffer_info()[0]
            try:
                self._put_args(lay, blk, base, args)
            except RankMismatch:
                pass
            else:
                status = self._c_call(addr, base, self._nargs)
                if status:
                    check(status)
                return
        descs = self._arg_list(args, "arguments")
        check(self._lib.simgrad_kernel_call(self._handle(), tensor_array(descs), len(descs)))

    def jvp_raw(self, args: Sequence, tangents_in: Sequence | None, tangents_out: Sequence | None) -> None:
        """Forward mode exactly as the C ``simgrad_kernel_jvp``: lists indexed like ``args``,
        ``None`` where absent; ``tangents_out`` buffers (and ``out``/``inout`` args) are written."""
        addr = self._addr or self._handle()
        lay = self._layout3
        if lay is not None:
            blk, base = lay.new()
            try:
                self._put_args(lay, blk, base, args)
                tin, tout = self._put_shadows(
                    lay, blk, base, (tangents_in, tangents_out), ("tangents_in", "tangents_out")
                )
            except RankMismatch:
                pass
            else:
                n = self._nargs
                status = self._c_jvp(addr, base, n, base + 48 * n if tin else None, base + 96 * n if tout else None)
                if status:
                    check(status)
                return
        descs = self._arg_list(args, "arguments")
        tin = self._shadow_list(tangents_in, "tangents_in")
        tout = self._shadow_list(tangents_out, "tangents_out")
        check(
            self._lib.simgrad_kernel_jvp(
                self._handle(), tensor_array(descs), len(descs), tensor_array(tin), tensor_array(tout)
            )
        )

    def vjp_raw(
        self, args: Sequence, cotangents_in: Sequence | None, cotangents_out: Sequence | None, *, accumulate: bool = False
    ) -> None:
        """Reverse mode exactly as the C ``simgrad_kernel_vjp``: ``cotangents_out`` buffers are
        overwritten (added to with ``accumulate=True``); no argument is modified. ``out``
        arguments must still be arrays of the right shape (their contents are ignored)."""
        addr = self._addr or self._handle()
        flags = B.SIMGRAD_VJP_ACCUMULATE if accumulate else 0
        lay = self._layout3
        if lay is not None:
            blk, base = lay.new()
            try:
                self._put_args(lay, blk, base, args)
                cin, cout = self._put_shadows(
                    lay, blk, base, (cotangents_in, cotangents_out), ("cotangents_in", "cotangents_out")
                )
            except RankMismatch:
                pass
            else:
                n = self._nargs
                status = self._c_vjp(
                    addr, base, n, base + 48 * n if cin else None, base + 96 * n if cout else None, flags
                )
                if status:
                    check(status)
                return
        descs = self._arg_list(args, "arguments")
        cin = self._shadow_list(cotangents_in, "cotangents_in")
        cout = self._shadow_list(cotangents_out, "cotangents_out")
        check(
            self._lib.simgrad_kernel_vjp(
                self._handle(), tensor_array(descs), len(descs), tensor_array(cin), tensor_array(cout), flags
            )
        )

    # ------------------------------------------------------------------ binding inputs

    def bind(self, inputs, named: Mapping | None = None) -> dict:
        """Maps a call's inputs to argument names: ``inputs`` is a sequence (the kernel's inputs
        in argument order, with or without the sizes that input shapes determine) or a mapping;
        ``named`` adds values by name. Returns ``{name: value}`` of the given inputs (and extra
        named dims), without inferring anything."""
        named = dict(named or {})
        if isinstance(inputs, Mapping):
            if set(inputs) & set(named):
                self._dup(set(inputs) & set(named))
            named = {**inputs, **named}
            positional: Sequence = ()
        else:
            positional = tuple(inputs)
        full = self._full_inputs
        short = self._short_inputs
        if len(positional) == len(full):
            order = full
        elif len(positional) == len(short):
            order = short
        elif len(positional) < len(full) and named:
            # A prefix, the rest by name: the short form unless a positional value would then
            # land on a name also given by keyword (`axpy(4, 2.0, x=x, y=y)` is the full form).
            order = short[: len(positional)]
            if any(a.name in named for a in order):
                order = full[: len(positional)]
        else:
            forms = f"the {len(short)} inputs ({', '.join(a.name for a in short)})"
            if len(full) != len(short):
                forms += f" or all {len(full)} ({', '.join(a.name for a in full)})"
            raise InvalidArgumentError(
                None, f"kernel `{self.name}` takes {forms}, got {len(positional)} positional values. Signature: {self.signature()}"
            )
        values = {a.name: v for a, v in zip(order, positional)}
        shape_names = self._shape_names
        for k, v in named.items():
            if k in values:
                self._dup({k})
            arg = self._by_name.get(k)
            if arg is None and k not in shape_names:
                raise InvalidArgumentError(
                    None,
                    f"kernel `{self.name}` has no argument `{k}`; its inputs are: {', '.join(a.name for a in full)}",
                )
            if arg is not None and not arg.is_input:
                raise InvalidArgumentError(
                    None, f"kernel `{self.name}`: `{k}` is an output; it is returned, not passed (use call_raw to pass buffers)"
                )
            values[k] = v
        return values

    def _dup(self, names):
        raise InvalidArgumentError(None, f"kernel `{self.name}`: argument(s) {', '.join(sorted(names))} given twice")

    def _sizes(self, values: dict) -> dict[str, int]:
        """Size bindings: given sizes, then bare dims of input arrays (checked for rank)."""
        sizes: dict[str, int] = {}
        for a in self.inputs:
            if a.kind == "size" and a.name in values:
                sizes[a.name] = int(_scalar_array(values[a.name], a, f"kernel `{self.name}`: size `{a.name}`"))
        for n in self._extra_names:
            if n in values:
                sizes[n] = operator.index(values[n])
        for a in self.inputs:
            if a.kind != "array" or a.name not in values:
                continue
            shape = getattr(values[a.name], "shape", None)
            if shape is None:
                continue
            if len(shape) != len(a.shape):
                raise ShapeError(
                    None,
                    f"kernel `{self.name}`: argument `{a.name}` has rank {len(shape)} (shape {tuple(shape)}), "
                    f"expected rank {len(a.shape)} ({a.type_text()})",
                )
            for d, n in zip(a.shape, shape):
                if d.name is not None and d.name not in sizes:
                    sizes[d.name] = int(n)
        return sizes

    def _input_sizes(self, vals) -> dict[str, int] | None:
        """`_sizes` of the values of every input in order (`_MISSING` where left out), without
        extra names; None when the general `_sizes` must decide (a size that is not a
        non-negative ``int`` in range, an array of the wrong rank: it raises the errors)."""
        sizes: dict[str, int] = {}
        for p, name, hi in self._size_inputs:
            v = vals[p]
            if v is _MISSING:
                continue
            if type(v) is not int or not 0 <= v <= hi:
                return None
            sizes[name] = v
        for p, nd, bare in self._array_inputs:
            shape = getattr(vals[p], "shape", None)
            if shape is None:
                continue
            if len(shape) != nd:
                return None
            for k, name in bare:
                if name not in sizes:
                    sizes[name] = int(shape[k])
        return sizes

    def _bind_quick(self, inputs: tuple | list):
        """`bind` and `_sizes` for positional inputs without keywords: (the values of every input
        in order, inferred sizes filled in; the sizes), or None when the general path must
        decide."""
        form = self._forms.get(len(inputs))
        if form is None:
            return None
        given, missing = form
        if missing:
            vals = [_MISSING] * len(self._full_inputs)
            for p, v in zip(given, inputs):
                vals[p] = v
        else:
            vals = list(inputs)
        sizes = self._input_sizes(vals)
        if sizes is None:
            return None
        for p, name in missing:
            v = sizes.get(name)
            if v is None:
                return None
            vals[p] = v
        return vals, sizes

    def _quick_shape(self, index: int, sizes: dict[str, int]) -> tuple[int, ...] | None:
        """The shape of argument ``index`` under ``sizes``; None when `_out_shape` must explain."""
        shape = self._static_shapes[index]
        if shape is not None:
            return shape
        dims = []
        for d in self._dims[index]:
            v = d if type(d) is int else sizes.get(d) if type(d) is str else d.eval(sizes)
            if v is None or v < 0:
                return None
            dims.append(v)
        return tuple(dims)

    def _quick_args(self, inputs: tuple | list, vjp: bool = False):
        """`_prepare` for the common call: positional inputs without keywords, NumPy arrays of
        the kernel's dtype, rank and memory order, Python numbers for scalars and sizes. Returns
        (args, sizes), or None when any of that does not hold (the general path then decides, and
        raises). ``vjp``: the arguments of a VJP instead (``inout`` arrays only read, ``out``
        arrays `ShapeOnly`)."""
        form = self._forms.get(len(inputs))
        if form is None:
            return None
        given, missing = form
        if missing:
            vals = [_MISSING] * len(self._full_inputs)
            for p, v in zip(given, inputs):
                vals[p] = v
        else:
            vals = inputs
        args = [None] * self._nargs
        sizes: dict[str, int] = {}
        c_order = self.order == "C"
        for (i, code, dt, nd, lo, hi, name), v in zip(self._input_plan, vals):
            if code >= _Q_IN:
                if type(v) is not _ndarray or v.dtype is not dt or v.ndim != nd:
                    return None
                contiguous = v.flags.c_contiguous if c_order else v.flags.f_contiguous
                if code == _Q_IN:
                    if not contiguous:
                        return None
                elif vjp:
                    if not contiguous:
                        v = np.array(v, order=self.order)
                else:
                    v = np.array(v, order=self.order, copy=True)
            elif code == _Q_F64:
                if type(v) is not float:
                    return None
            elif code == _Q_F32:
                if type(v) is not float or not -_F32_MAX <= v <= _F32_MAX:
                    return None
            elif v is _MISSING:  # a size left out
                continue
            elif type(v) is not int or not lo <= v <= hi:  # sizes and integer scalars
                return None
            elif code == _Q_SIZE:
                sizes[name] = v
            args[i] = v
        # Sizes from input shapes, after the given ones (as `_sizes`).
        for i, bare in self._bare_dims:
            shape = args[i].shape
            for k, name in bare:
                if name not in sizes:
                    sizes[name] = shape[k]
        for p, name in missing:
            args[self._full_inputs[p].index] = sizes[name]
        for a, dt, shape in self._out_plan:
            if shape is None:
                shape = self._quick_shape(a.index, sizes)
                if shape is None:
                    return None
            if vjp:
                args[a.index] = ShapeOnly(a.dtype, shape)
            elif c_order:
                args[a.index] = np.empty(shape, dt)
            else:
                args[a.index] = np.empty(shape, dt, order="F")
        return args, sizes

    def _out_shape(self, a: Arg, sizes: dict[str, int]) -> tuple[int, ...]:
        shape = self._quick_shape(a.index, sizes)
        if shape is not None:
            return shape
        dims = []
        for d in a.shape:
            v = d.eval(sizes)
            if v is None:
                missing = [n for n in d.names() if n not in sizes]
                raise InvalidArgumentError(
                    None,
                    f"kernel `{self.name}`: cannot tell the shape of output `{a.name}` ({a.type_text()}): "
                    f"no input determines {', '.join(f'`{m}`' for m in missing)}; pass it by name, e.g. {missing[0]}=...",
                )
            if v < 0:
                raise ShapeError(None, f"kernel `{self.name}`: output `{a.name}` would have extent {d.text} = {v}")
            dims.append(v)
        return tuple(dims)

    def _check_array(self, a: Arg, x, label: str, convert: bool):
        """An input array as the kernel needs it: right dtype, rank and layout; never copied
        unless ``convert`` (then converted with ``numpy.asarray``)."""
        dt = a.numpy_dtype
        if convert:
            x = np.asarray(x, dtype=dt, order=self.order)
            if self.order == "C" and not x.flags.c_contiguous:
                x = np.ascontiguousarray(x)
            if self.order == "F" and not x.flags.f_contiguous:
                x = np.asfortranarray(x)
        if not isinstance(x, np.ndarray):
            raise DTypeError(
                None,
                f"{label} is a {type(x).__name__}, expected a NumPy array of {dt} ({a.type_text()}); "
                "pass numpy.asarray(...) or convert=True",
            )
        if x.dtype != dt:
            raise DTypeError(
                None,
                f"{label} has dtype {x.dtype}, the kernel takes {a.dtype} ({dt}); "
                f"convert it with .astype(numpy.{dt}) or pass convert=True",
            )
        if x.ndim != len(a.shape):
            raise ShapeError(None, f"{label} has rank {x.ndim} (shape {x.shape}), expected {a.type_text()}")
        contiguous = x.flags.c_contiguous if self.order == "C" else x.flags.f_contiguous
        if not contiguous:
            which = "C (row-major)" if self.order == "C" else "Fortran (column-major)"
            fix = "numpy.ascontiguousarray" if self.order == "C" else "numpy.asfortranarray"
            raise LayoutError(
                None,
                f"{label} is not contiguous in {which} order (strides {x.strides} bytes); "
                f"pass {fix}(...) or convert=True",
            )
        return x

    def _prepare(self, inputs, named, convert: bool):
        """Full argument list for a call: inputs checked, outputs allocated, inout copied."""
        if not convert and not named and type(inputs) in (tuple, list):
            q = self._quick_args(inputs)
            if q is not None:
                args, sizes = q
                return args, [args[i] for i in self._result_index], sizes
        values = self.bind(inputs, named)
        sizes = self._sizes(values)
        args: list = []
        outs: list = []
        for a in self.args:
            label = f"kernel `{self.name}`: argument `{a.name}`"
            if a.kind == "size":
                v = values.get(a.name, sizes.get(a.name))
                if v is None:
                    raise InvalidArgumentError(None, f"{label} (size) is missing; signature: {self.signature()}")
                args.append(v)
            elif a.kind == "scalar":
                if a.name not in values:
                    raise InvalidArgumentError(None, f"{label} ({a.dtype} scalar) is missing; signature: {self.signature()}")
                args.append(_scalar_array(values[a.name], a, label))
            elif a.intent == "out":
                buf = np.empty(self._out_shape(a, sizes), dtype=a.numpy_dtype, order=self.order)
                args.append(buf)
                outs.append(buf)
            else:
                if a.name not in values:
                    raise InvalidArgumentError(None, f"{label} ({a.intent} {a.type_text()}) is missing; signature: {self.signature()}")
                x = values[a.name]
                if a.intent == "inout":
                    # Copied (any layout, same dtype): the kernel updates the copy, which is
                    # returned; the caller's array is left alone.
                    if convert or isinstance(x, np.ndarray):
                        x = np.array(x, dtype=a.numpy_dtype if convert else None, order=self.order, copy=True)
                    x = self._check_array(a, x, label, False)
                    outs.append(x)
                else:
                    x = self._check_array(a, x, label, convert)
                args.append(x)
        return args, outs, sizes

    # ------------------------------------------------------------------ NumPy calls

    def __call__(self, *inputs, **named):
        """Runs the kernel on NumPy inputs and returns its outputs (one array bare, several as a
        tuple in argument order). See the module documentation for what is copied."""
        if not named:
            q = self._quick_args(inputs)
            if q is not None:
                args = q[0]
                self.call_raw(args)
                results = self._result_index
                if len(results) == 1:
                    return args[results[0]]
                return _pack([args[i] for i in results])
        return self.call(inputs, named)

    def call(self, inputs=(), named: Mapping | None = None, *, convert: bool = False):
        """``k(*inputs, **named)`` with options: ``convert=True`` converts inputs of another
        dtype, layout or type (lists) instead of refusing them."""
        args, outs, _ = self._prepare(inputs, named, convert)
        self.call_raw(args)
        return _pack(outs)

    def _seeds(self, given, over: tuple, what: str, sizes: dict, convert: bool) -> dict:
        """Tangents (of differentiable inputs) or cotangents (of outputs) by argument name."""
        if given is None:
            return {}
        if isinstance(given, Mapping):
            named = dict(given)
        else:
            seq = (given,) if isinstance(given, np.ndarray) or np.isscalar(given) else tuple(given)
            if len(seq) != len(over):
                raise InvalidArgumentError(
                    None,
                    f"kernel `{self.name}`: expected {len(over)} {what} ({', '.join(a.name for a in over)}), got {len(seq)}",
                )
            named = {a.name: v for a, v in zip(over, seq)}
        allowed = {a.name: a for a in over}
        out = {}
        for k, v in named.items():
            if k not in allowed:
                raise InvalidArgumentError(
                    None,
                    f"kernel `{self.name}`: no {what[:-1]} for `{k}`; {what} are taken for: {', '.join(allowed) or 'nothing'}",
                )
            if v is None:
                continue
            a = allowed[k]
            label = f"kernel `{self.name}`: {what[:-1]} of `{k}`"
            if not a.differentiable:
                raise InvalidArgumentError(None, f"{label} given, but `{k}` is not differentiable; pass None")
            if a.kind == "scalar":
                out[k] = _scalar_array(v, a, label)
            else:
                x = self._check_array(a, v, label, convert)
                want = self._out_shape(a, sizes)
                if x.shape != want:
                    raise ShapeError(None, f"{label} has shape {x.shape}, expected {want} ({a.type_text()})")
                out[k] = x
        return out

    def jvp(self, inputs, tangents=None, *, convert: bool = False):
        """Forward mode: returns ``(outputs, output_tangents)``.

        ``tangents`` holds the tangents of ``differentiable_inputs`` (a sequence in that order, a
        single array when there is one, or a mapping by name; None or a missing entry is a zero
        tangent). Output tangents follow ``outputs`` (None for a non-differentiable output),
        packed like the outputs. Neither inputs nor tangents are modified."""
        if isinstance(inputs, Mapping):
            inputs = dict(inputs)
        args, outs, sizes = self._prepare(inputs, None, convert)
        seeds = self._seeds(tangents, self.differentiable_inputs, "tangents", sizes, convert)
        tin: list = [None] * len(self.args)
        tout: list = [None] * len(self.args)
        results = []
        for a in self.args:
            if a.name in seeds:
                tin[a.index] = seeds[a.name]
            if a.is_output:
                if a.differentiable:
                    buf = np.empty(args[a.index].shape, dtype=a.numpy_dtype, order=self.order)
                    tout[a.index] = buf
                    results.append(buf)
                else:
                    results.append(None)
        self.jvp_raw(args, tin, tout)
        return _pack(outs), _pack(results)

    def vjp(self, inputs, cotangents=None, *, convert: bool = False):
        """Reverse mode: returns the cotangents of ``differentiable_inputs`` (one bare, several as a
        tuple; 0-d arrays for scalars).

        ``cotangents`` holds the cotangents of ``outputs`` (a sequence in that order, a single
        array when there is one output, or a mapping; None or missing is zero; non-differentiable
        outputs take None). Nothing the caller passed is modified; ``out`` arguments are
        recomputed by the runtime in scratch memory (nothing is allocated for them here)."""
        q = self._quick_args(inputs, vjp=True) if not convert and type(inputs) in (tuple, list) else None
        if q is not None:
            args, sizes = q
        else:
            args, sizes = self._vjp_args(inputs, convert)
        seeds = self._seeds(cotangents, self.outputs, "cotangents", sizes, convert)
        cin: list = [None] * len(self.args)
        cout: list = [None] * len(self.args)
        results = []
        for a in self.args:
            if a.name in seeds:
                cin[a.index] = seeds[a.name]
            if a.index in self._diff_input_index:
                shape = () if a.kind == "scalar" else args[a.index].shape
                buf = np.empty(shape, dtype=a.numpy_dtype, order=self.order)
                cout[a.index] = buf
                results.append(buf)
        self.vjp_raw(args, cin, cout)
        return _pack(results)

    def _vjp_args(self, inputs, convert: bool):
        """The arguments of a VJP (the general path of `vjp`): inputs checked, ``inout`` arrays
        only read (copied when not laid out right), ``out`` arrays `ShapeOnly` (data NULL)."""
        values = self.bind(inputs, None)
        sizes = self._sizes(values)
        args: list = []
        for a in self.args:
            label = f"kernel `{self.name}`: argument `{a.name}`"
            if a.intent == "out":
                args.append(ShapeOnly(a.dtype, self._out_shape(a, sizes)))
            elif a.kind == "size":
                v = values.get(a.name, sizes.get(a.name))
                if v is None:
                    raise InvalidArgumentError(None, f"{label} (size) is missing; signature: {self.signature()}")
                args.append(v)
            elif a.name not in values:
                raise InvalidArgumentError(None, f"{label} is missing; signature: {self.signature()}")
            elif a.kind == "scalar":
                args.append(_scalar_array(values[a.name], a, label))
            elif a.intent == "inout":
                x = values[a.name]
                if isinstance(x, np.ndarray) and x.dtype == a.numpy_dtype:
                    # Only read by the VJP: passed as is when laid out right, copied otherwise.
                    ok = x.flags.c_contiguous if self.order == "C" else x.flags.f_contiguous
                    x = x if ok else np.array(x, order=self.order)
                args.append(self._check_array(a, x, label, convert))
            else:
                args.append(self._check_array(a, values[a.name], label, convert))
        return args, sizes


def manifest_entries(manifest_json: str) -> dict[str, dict]:
    try:
        doc = json.loads(manifest_json)
    except ValueError:
        return {}
    return {k.get("name"): k for k in doc.get("kernels", [])}
