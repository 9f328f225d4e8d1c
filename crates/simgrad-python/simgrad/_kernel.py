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
"""

from __future__ import annotations

import ctypes
import json
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from . import _bindings as B
from ._dims import Dim
from ._errors import (
    DTypeError,
    InvalidArgumentError,
    LayoutError,
    ShapeError,
    check,
)
from ._handle import Handle
from ._tensor import DLPACK_NAMES, SCALAR_CTYPES, Described, describe, describe_value, numpy_dtype, tensor_array

_KINDS = {B.SIMGRAD_ARG_ARRAY: "array", B.SIMGRAD_ARG_SIZE: "size", B.SIMGRAD_ARG_SCALAR: "scalar"}
_INTENTS = {B.SIMGRAD_INTENT_IN: "in", B.SIMGRAD_INTENT_OUT: "out", B.SIMGRAD_INTENT_INOUT: "inout"}
_MODES = {"primal": B.SIMGRAD_MODE_PRIMAL, "jvp": B.SIMGRAD_MODE_JVP, "vjp": B.SIMGRAD_MODE_VJP}


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

    def call_raw(self, args: Sequence) -> None:
        """Runs the primal with one value per argument, in argument order, exactly as the C
        ``simgrad_kernel_call``: ``out``/``inout`` arrays are written in place. Arrays are NumPy
        arrays or CPU PyTorch tensors (never copied); sizes and scalars are numbers."""
        ptr = self._handle()
        descs = self._arg_list(args, "arguments")
        arr = tensor_array(descs)
        check(self._lib.simgrad_kernel_call(ptr, arr, len(descs)))

    def jvp_raw(self, args: Sequence, tangents_in: Sequence | None, tangents_out: Sequence | None) -> None:
        """Forward mode exactly as the C ``simgrad_kernel_jvp``: lists indexed like ``args``,
        ``None`` where absent; ``tangents_out`` buffers (and ``out``/``inout`` args) are written."""
        ptr = self._handle()
        descs = self._arg_list(args, "arguments")
        tin = self._shadow_list(tangents_in, "tangents_in")
        tout = self._shadow_list(tangents_out, "tangents_out")
        check(self._lib.simgrad_kernel_jvp(ptr, tensor_array(descs), len(descs), tensor_array(tin), tensor_array(tout)))

    def vjp_raw(
        self, args: Sequence, cotangents_in: Sequence | None, cotangents_out: Sequence | None, *, accumulate: bool = False
    ) -> None:
        """Reverse mode exactly as the C ``simgrad_kernel_vjp``: ``cotangents_out`` buffers are
        overwritten (added to with ``accumulate=True``); no argument is modified. ``out``
        arguments must still be arrays of the right shape (their contents are ignored)."""
        ptr = self._handle()
        descs = self._arg_list(args, "arguments")
        cin = self._shadow_list(cotangents_in, "cotangents_in")
        cout = self._shadow_list(cotangents_out, "cotangents_out")
        flags = B.SIMGRAD_VJP_ACCUMULATE if accumulate else 0
        check(
            self._lib.simgrad_kernel_vjp(
                ptr, tensor_array(descs), len(descs), tensor_array(cin), tensor_array(cout), flags
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
        full = list(self.inputs)
        short = [a for a in full if a.name not in self._inferable]
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
        shape_names = {n for a in self.args for d in a.shape for n in d.names()}
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
        shape_names = {n for a in self.args for d in a.shape for n in d.names()} - set(self._by_name)
        for n in shape_names:
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

    def _out_shape(self, a: Arg, sizes: dict[str, int]) -> tuple[int, ...]:
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
        recomputed in scratch memory (this allocates them, unfilled)."""
        values = self.bind(inputs, None)
        sizes = self._sizes(values)
        args: list = []
        for a in self.args:
            label = f"kernel `{self.name}`: argument `{a.name}`"
            if a.intent == "out":
                args.append(np.empty(self._out_shape(a, sizes), dtype=a.numpy_dtype, order=self.order))
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
        seeds = self._seeds(cotangents, self.outputs, "cotangents", sizes, convert)
        cin: list = [None] * len(self.args)
        cout: list = [None] * len(self.args)
        results = []
        for a in self.args:
            if a.name in seeds:
                cin[a.index] = seeds[a.name]
            if a in self.differentiable_inputs:
                shape = () if a.kind == "scalar" else args[a.index].shape
                buf = np.empty(shape, dtype=a.numpy_dtype, order=self.order)
                cout[a.index] = buf
                results.append(buf)
        self.vjp_raw(args, cin, cout)
        return _pack(results)


def manifest_entries(manifest_json: str) -> dict[str, dict]:
    try:
        doc = json.loads(manifest_json)
    except ValueError:
        return {}
    return {k.get("name"): k for k in doc.get("kernels", [])}
