"""simgrad kernels as JAX functions: ``jax.jit``, ``jax.grad``/``jax.vjp``, ``jax.jvp`` and
``jax.vmap``, with every derivative computed by the kernel's Enzyme JVP and VJP.

    >>> import jax; jax.config.update("jax_enable_x64", True)     # for f64 kernels
    >>> import simgrad.jax as sj
    >>> heat = sj.function(lib["heat"])
    >>> u = heat(50, kappa, u0)                                    # n from kappa.shape
    >>> jax.grad(lambda k: heat(50, k, u0).sum())(kappa)           # Enzyme VJP
    >>> jax.vmap(lambda k: heat(50, k, u0))(kappas)                # a batch of simulations

How: each kernel is bound as three JAX primitives whose CPU implementation is a
``jax.pure_callback`` into the kernel through libsimgrad:

* ``simgrad_call``: the primal. Its JVP rule calls the primal and ``simgrad_jvp``.
* ``simgrad_jvp``: the Enzyme JVP, linear in the tangents. Its transpose rule is ``simgrad_vjp``,
  which is what makes ``jax.grad`` work: JAX linearises through the JVP rule and transposes
  ``simgrad_jvp`` into the Enzyme VJP (no finite differences, no re-implementation in JAX).
* ``simgrad_vjp``: the Enzyme VJP, linear in the cotangents; its transpose is ``simgrad_jvp``.

Every primitive has a batching rule: batched operands get the batch axis moved to the front,
unbatched ones are broadcast, and the primitive is re-bound with one more leading batch dim
(``nb``); the host callback then loops over the batch (one kernel call per element). So
``vmap`` composes with ``grad``, ``jvp`` and ``jit`` in any order. Derivatives of derivatives
(Hessians) are refused with a clear error: the kernels have first derivatives only.

Size arguments are static Python ints (or inferred from input shapes); scalars may be Python
numbers or JAX scalars (and are differentiable when the manifest says so). Input dtypes must be
the kernel's (no silent cast): f64 kernels need ``jax_enable_x64``.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from ._errors import DTypeError, InvalidArgumentError, ShapeError
from ._kernel import Kernel, _pack
from ._tensor import ShapeOnly

_JNP = {"f32": jnp.float32, "f64": jnp.float64, "i32": jnp.int32, "i64": jnp.int64}


class _Spec:
    """Static parameters of one bound call: the kernel and the values of its sizes. Hashable
    (by kernel identity and sizes), as JAX needs for jit caching."""

    __slots__ = ("kernel", "sizes", "ops", "diff_in", "diff_out", "_key")

    def __init__(self, kernel: Kernel, sizes: dict[str, int]):
        self.kernel = kernel
        self.sizes = dict(sizes)
        #: the operands: every input except sizes, in argument order
        self.ops = tuple(a for a in kernel.inputs if a.kind != "size")
        self.diff_in = tuple(a for a in self.ops if a.differentiable)
        self.diff_out = kernel.differentiable_outputs
        self._key = (id(kernel), tuple(sorted(self.sizes.items())))

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return isinstance(other, _Spec) and other._key == self._key

    def __repr__(self):
        return f"{self.kernel.name}[{', '.join(f'{k}={v}' for k, v in sorted(self.sizes.items()))}]"

    def shape(self, a) -> tuple[int, ...]:
        return self.kernel._out_shape(a, self.sizes)


# ---------------------------------------------------------------------- host side (NumPy)


def _flat(x: np.ndarray, nb: int, nbatch: int) -> np.ndarray:
    return np.ascontiguousarray(x).reshape((nbatch,) + x.shape[nb:])


def _elem_in(flat: np.ndarray, b: int, fortran: bool) -> np.ndarray:
    v = flat[b, ...]
    return np.asfortranarray(v) if fortran and v.ndim >= 2 else v


def _elem_out(flat: np.ndarray, b: int, fortran: bool, post: list) -> np.ndarray:
    """A writable element of an output batch: a view, or for column-major kernels a Fortran
    temporary copied back after the call."""
    v = flat[b, ...]
    if fortran and v.ndim >= 2:
        t = np.empty(v.shape, v.dtype, order="F")
        post.append((v, t))
        return t
    return v


def _host(mode: str, spec: _Spec, nb: int, *arrays):
    """Runs ``mode`` over the batch: arrays are the primitive's operands (NumPy), results are
    returned as a tuple of NumPy arrays."""
    k = spec.kernel
    fortran = k.order == "F"
    nops = len(spec.ops)
    ops, extra = arrays[:nops], arrays[nops:]
    batch = tuple(ops[0].shape[:nb]) if nb else ()
    nbatch = math.prod(batch)
    if mode == "call":
        res_args = k.outputs
    elif mode == "jvp":
        res_args = spec.diff_out
    else:
        res_args = spec.diff_in
    results = [
        np.empty(batch + (() if a.kind == "scalar" else spec.shape(a)), dtype=a.numpy_dtype) for a in res_args
    ]
    fops = {a.name: _flat(x, nb, nbatch) for a, x in zip(spec.ops, ops)}
    seeds_over = spec.diff_in if mode == "jvp" else spec.diff_out if mode == "vjp" else ()
    fseeds = {a.name: _flat(x, nb, nbatch) for a, x in zip(seeds_over, extra)}
    fres = {a.name: r.reshape((nbatch,) + r.shape[nb:]) for a, r in zip(res_args, results)}
    # A VJP never writes its primal arguments: out arrays are passed without data (the runtime
    # recomputes them in scratch memory of its own).
    scratch = {a.name: ShapeOnly(a.dtype, spec.shape(a)) for a in k.outputs if mode == "vjp" and a.intent == "out"}
    n = len(k.args)
    for b in range(nbatch):
        post: list = []
        args: list = []
        for a in k.args:
            if a.kind == "size":
                args.append(spec.sizes[a.name])
            elif a.kind == "scalar":
                args.append(fops[a.name][b, ...])
            elif a.intent == "in":
                args.append(_elem_in(fops[a.name], b, fortran))
            elif mode == "vjp":
                # The VJP never writes primal arguments: out arrays have no data, inout the input.
                args.append(scratch[a.name] if a.intent == "out" else _elem_in(fops[a.name], b, fortran))
            else:
                buf = fres[a.name] if mode == "call" else None
                if buf is None:
                    # JVP: primal outputs are not results; computed into scratch.
                    buf_e = np.empty(spec.shape(a), dtype=a.numpy_dtype, order=k.order)
                else:
                    buf_e = _elem_out(buf, b, fortran, post)
                if a.intent == "inout":
                    buf_e[...] = fops[a.name][b, ...]
                args.append(buf_e)
        if mode == "call":
            k.call_raw(args)
        elif mode == "jvp":
            tin = [None] * n
            tout = [None] * n
            for a in spec.diff_in:
                tin[a.index] = fseeds[a.name][b, ...] if a.kind == "scalar" else _elem_in(fseeds[a.name], b, fortran)
            for a in spec.diff_out:
                tout[a.index] = _elem_out(fres[a.name], b, fortran, post)
            k.jvp_raw(args, tin, tout)
        else:
            cin = [None] * n
            cout = [None] * n
            for a in spec.diff_out:
                cin[a.index] = _elem_in(fseeds[a.name], b, fortran)
            for a in spec.diff_in:
                cout[a.index] = fres[a.name][b, ...] if a.kind == "scalar" else _elem_out(fres[a.name], b, fortran, post)
            k.vjp_raw(args, cin, cout)
        for view, tmp in post:
            view[...] = tmp
    return tuple(results)


# ---------------------------------------------------------------------- the primitives


def _result_avals(mode: str, spec: _Spec, nb: int, operands) -> list:
    batch = tuple(operands[0].shape[:nb]) if nb else ()
    if mode == "call":
        over = spec.kernel.outputs
    elif mode == "jvp":
        over = spec.diff_out
    else:
        over = spec.diff_in
    return [
        jax.core.ShapedArray(batch + (() if a.kind == "scalar" else spec.shape(a)), _JNP[a.dtype]) for a in over
    ]


def _make_primitive(mode: str) -> Primitive:
    p = Primitive(f"simgrad_{mode}")
    p.multiple_results = True

    def abstract(*operands, spec, nb):
        return _result_avals(mode, spec, nb, operands)

    def impl(*operands, spec, nb):
        shapes = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in _result_avals(mode, spec, nb, operands)]
        # Batching is this primitive's own (nb leading dims), so the callback is never vmapped.
        return jax.pure_callback(partial(_host, mode, spec, nb), tuple(shapes), *operands, vmap_method="sequential")

    p.def_abstract_eval(abstract)
    p.def_impl(impl)
    mlir.register_lowering(p, mlir.lower_fun(impl, multiple_results=True))

    def batch_rule(args, dims, *, spec, nb):
        size = next(a.shape[d] for a, d in zip(args, dims) if d is not None)
        moved = []
        for a, d in zip(args, dims):
            if d is None:
                moved.append(jnp.broadcast_to(a, (size,) + a.shape))
            else:
                moved.append(jnp.moveaxis(a, d, 0))
        outs = p.bind(*moved, spec=spec, nb=nb + 1)
        return outs, [0] * len(outs)

    batching.primitive_batchers[p] = batch_rule
    return p


call_p = _make_primitive("call")
jvp_p = _make_primitive("jvp")
vjp_p = _make_primitive("vjp")


def _zero(x):
    return ad.Zero(jax.typeof(x).to_tangent_aval())


def _call_jvp(primals, tangents, *, spec, nb):
    outs = call_p.bind(*primals, spec=spec, nb=nb)
    k = spec.kernel
    if "jvp" not in k.modes:
        raise InvalidArgumentError(None, f"kernel `{k.name}` was built without the jvp mode; JAX cannot differentiate it")
    pos = {a.name: i for i, a in enumerate(spec.ops)}
    tans = [tangents[pos[a.name]] for a in spec.diff_in]
    if not spec.diff_out or all(type(t) is ad.Zero for t in tans):
        return outs, [_zero(o) for o in outs]
    tans = [ad.instantiate_zeros(t) for t in tans]
    touts = iter(jvp_p.bind(*primals, *tans, spec=spec, nb=nb))
    return outs, [next(touts) if a.differentiable else _zero(o) for a, o in zip(k.outputs, outs)]


def _linear_transpose(other: Primitive, what: str):
    """Transpose rule of a primitive linear in its trailing operands (the first ``len(spec.ops)``
    are residuals): the other primitive applied to the cotangents."""

    def rule(cts, *args, spec, nb):
        nops = len(spec.ops)
        ops, lin = args[:nops], args[nops:]
        if any(ad.is_undefined_primal(x) for x in ops):
            raise InvalidArgumentError(
                None, f"kernel `{spec.kernel.name}`: the {what} is linear only in its tangents; cannot transpose it in its inputs"
            )
        cts = [ad.instantiate_zeros(c) for c in cts]
        if other is vjp_p and "vjp" not in spec.kernel.modes:
            raise InvalidArgumentError(
                None, f"kernel `{spec.kernel.name}` was built without the vjp mode; JAX cannot reverse-differentiate it"
            )
        res = other.bind(*ops, *cts, spec=spec, nb=nb)
        return [None] * nops + [r if ad.is_undefined_primal(x) else None for r, x in zip(res, lin)]

    return rule


def _linear_jvp(p: Primitive, what: str):
    """JVP of a primitive linear in its trailing operands: fine for tangents of those only."""

    def rule(primals, tangents, *, spec, nb):
        nops = len(spec.ops)
        if any(type(t) is not ad.Zero for t in tangents[:nops]):
            raise InvalidArgumentError(
                None,
                f"kernel `{spec.kernel.name}`: cannot differentiate the {what} with respect to the kernel's inputs "
                "(second derivatives, e.g. Hessians, are not generated by simgrad)",
            )
        out = p.bind(*primals, spec=spec, nb=nb)
        lin = [ad.instantiate_zeros(t) for t in tangents[nops:]]
        return out, p.bind(*primals[:nops], *lin, spec=spec, nb=nb)

    return rule


ad.primitive_jvps[call_p] = _call_jvp
ad.primitive_jvps[jvp_p] = _linear_jvp(jvp_p, "JVP")
ad.primitive_jvps[vjp_p] = _linear_jvp(vjp_p, "VJP")
ad.primitive_transposes[jvp_p] = _linear_transpose(vjp_p, "JVP")
ad.primitive_transposes[vjp_p] = _linear_transpose(jvp_p, "VJP")


# ---------------------------------------------------------------------- the user-facing function


def _x64_enabled() -> bool:
    return bool(jax.config.read("jax_enable_x64"))


class JaxKernel:
    """A kernel as a JAX-transformable function. Call it like the NumPy kernel: inputs in
    argument order (sizes may be left out when input shapes determine them; they are static
    Python ints), outputs returned (one bare, several as a tuple). ``kernel`` is the underlying
    `simgrad.Kernel`."""

    def __init__(self, kernel: Kernel):
        if "primal" not in kernel.modes:
            raise InvalidArgumentError(None, f"kernel `{kernel.name}` has no primal mode")
        self.kernel = kernel

    def __repr__(self) -> str:
        return f"<simgrad.jax function {self.kernel.signature()}>"

    def __call__(self, *inputs, **named):
        k = self.kernel
        values = k.bind(inputs, named)
        sizes = k._sizes(values)
        for a in k.inputs:
            if a.kind == "size" and a.name not in sizes:
                raise InvalidArgumentError(
                    None, f"kernel `{k.name}`: argument `{a.name}` (size) is missing; signature: {k.signature()}"
                )
        spec = _Spec(k, sizes)
        ops = []
        for a in spec.ops:
            label = f"kernel `{k.name}`: argument `{a.name}`"
            if a.name not in values:
                raise InvalidArgumentError(None, f"{label} is missing; signature: {k.signature()}")
            want = _JNP[a.dtype]
            if a.dtype in ("f64", "i64") and not _x64_enabled():
                raise DTypeError(
                    None,
                    f"{label} is {a.dtype}, which JAX represents only with 64-bit mode on: "
                    "call jax.config.update('jax_enable_x64', True) first",
                )
            v = values[a.name]
            if a.kind == "scalar":
                if isinstance(v, (int, float, np.number)) and not isinstance(v, bool):
                    x = jnp.asarray(v, dtype=want)
                else:
                    x = jnp.asarray(v)
                    if x.ndim != 0:
                        raise ShapeError(None, f"{label} must be a scalar, got shape {x.shape}")
                    if x.dtype != want:
                        raise DTypeError(None, f"{label} has dtype {x.dtype}, the kernel takes {a.dtype}")
            else:
                if not hasattr(v, "shape") or not hasattr(v, "dtype"):
                    raise DTypeError(
                        None, f"{label} is a {type(v).__name__}, expected a JAX or NumPy array ({a.type_text()})"
                    )
                x = v if isinstance(v, jax.Array) else jnp.asarray(v)
                if x.dtype != want:
                    raise DTypeError(
                        None,
                        f"{label} has dtype {x.dtype}, the kernel takes {a.dtype}; convert it with .astype(jnp.{np.dtype(want).name})",
                    )
                expected = spec.shape(a)
                if tuple(x.shape) != expected:
                    raise ShapeError(None, f"{label} has shape {tuple(x.shape)}, expected {expected} ({a.type_text()})")
            ops.append(x)
        if not ops:
            raise InvalidArgumentError(None, f"kernel `{k.name}` has no array or scalar inputs; nothing to trace")
        return _pack(list(call_p.bind(*ops, spec=spec, nb=0)))


def function(kernel: Kernel) -> JaxKernel:
    """The kernel as a JAX function (jit, grad, jvp, vjp, vmap)."""
    return JaxKernel(kernel)


def Enzyme(source, function_name: str, **kwargs) -> JaxKernel:  # noqa: N802
    """``simgrad.Enzyme(source, function_name, **kwargs)`` as a JAX function."""
    from ._enzyme import Enzyme as _build

    return JaxKernel(_build(source, function_name, **kwargs))


__all__ = ["Enzyme", "JaxKernel", "function", "call_p", "jvp_p", "vjp_p"]
