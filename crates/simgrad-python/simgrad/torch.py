"""simgrad kernels as PyTorch functions with autograd (reverse and forward mode) and vmap.

    >>> import simgrad.torch as st
    >>> heat = st.function(lib["heat"])           # or st.Enzyme("heat.f90", "heat")
    >>> u = heat(100, kappa, u0)                  # n from kappa.shape; kappa.requires_grad works
    >>> u.sum().backward()                        # kappa.grad from Enzyme's reverse mode

Each kernel becomes a ``torch.autograd.Function`` (``TorchKernel.function``) with

* ``forward``: the kernel's primal, ``setup_context`` saving the inputs;
* ``backward``: the Enzyme VJP, itself a Function (``VjpFn``) with a batch rule, so that
  ``jacrev`` (vmap over backward) works; differentiating it again raises a clear error (the
  kernels have first derivatives only) instead of returning silently wrong zeros;
* ``jvp``: the Enzyme JVP (``JvpFn``, also with a batch rule), for ``torch.func.jvp``,
  ``jacfwd`` and ``torch.autograd.forward_ad``;
* ``vmap``: a loop over the batch calling the kernel once per element (``generate_vmap_rule =
  False``), so ``torch.func.vmap`` works, also around ``grad`` / ``jvp``.

Tensors cross without copies: the kernel reads and writes ``data_ptr()`` memory directly. Input
tensors must be CPU tensors of the kernel's dtype (float32 or float64 as compiled, no implicit
cast) and contiguous in its memory order; anything else raises `DTypeError` / `LayoutError`
naming the argument (CUDA and meta tensors included), unless the function was made with
``convert=True``. ``inout`` arrays are cloned and the clone returned, as in NumPy calls: no input
is ever modified. Cotangents and tangents PyTorch hands to ``backward``/``jvp`` may be
non-contiguous (``expand`` of a ``sum``): those are made contiguous internally.

Per-call cost: ``Function.apply`` binds the arguments of a Function that defines
``setup_context`` (as vmap and the torch.func transforms require) with
``inspect.signature(forward).bind(...)`` on every call, which cost more than everything else of
a call on small inputs. So each Function has a twin in the form whose ``forward`` takes ``ctx``
(same forward, backward and jvp; no binding), used whenever no torch.func transform is active,
and the Functions themselves carry a ``__signature__`` that binds positional arguments directly
(`_PositionalSignature`). Inputs are bound and checked with the kernel's precomputed argument
plan, and a VJP passes its ``out`` arguments without data (the runtime recomputes them in
scratch memory; nothing is allocated for them).

The GIL is released while a kernel runs (``ctypes.CDLL`` releases it around every foreign call),
so kernels called from several Python threads run in parallel.

Not supported: second derivatives (a clear error), and the legacy batching of
``torch.autograd.gradcheck(check_batched_grad=True)`` / ``torch.autograd.functional.jacobian(
vectorize=True)``, which bypasses ``Function.vmap``; ``torch.func.vmap``/``jacrev``/``jacfwd``
are the supported batching.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch

from ._errors import DTypeError, InvalidArgumentError, LayoutError, ShapeError
from ._kernel import Kernel, _pack
from ._tensor import ShapeOnly, check_torch_device

_TORCH = {"f32": torch.float32, "f64": torch.float64, "i32": torch.int32, "i64": torch.int64}


def _empty(shape, dtype, order: str) -> torch.Tensor:
    """An uninitialised CPU tensor contiguous in ``order`` (``"F"``: column-major strides)."""
    if order == "F" and len(shape) > 1:
        rev = tuple(reversed(range(len(shape))))
        return torch.empty(tuple(reversed(shape)), dtype=dtype).permute(rev)
    return torch.empty(tuple(shape), dtype=dtype)


def _is_contiguous(t: torch.Tensor, order: str) -> bool:
    if order == "F" and t.dim() > 1:
        return t.permute(tuple(reversed(range(t.dim())))).is_contiguous()
    return t.is_contiguous()


def _contiguous(t: torch.Tensor, order: str) -> torch.Tensor:
    """``t`` itself if already contiguous in ``order``, else a contiguous copy (internal use:
    cotangents and batch slices, never a user's input)."""
    if order == "C" or t.dim() < 2:
        return t.contiguous()
    if _is_contiguous(t, order):
        return t
    out = _empty(tuple(t.shape), t.dtype, order)
    out.copy_(t)
    return out


class _PositionalSignature(inspect.Signature):
    """The signature of a ``forward(a, b, ..., *rest)``, binding positional values directly.

    ``torch.autograd.Function.apply`` binds the arguments of a Function that defines
    ``setup_context`` with ``inspect.signature(forward).bind(*args)`` then ``apply_defaults()``,
    on every call: inspect rebuilds the signature from the code object each time and binds with
    its general algorithm, which dominated the cost of a call on small inputs.
    ``inspect.signature`` returns a function's ``__signature__`` when it has one; this one
    returns the same `inspect.BoundArguments` as the general algorithm for positional values
    (keywords, too few values, or a function of another form take the general algorithm)."""

    __slots__ = ("_names", "_rest")

    def __init__(self, parameters=None, *, return_annotation=inspect.Signature.empty, __validate_parameters__=True):
        super().__init__(parameters, return_annotation=return_annotation, __validate_parameters__=__validate_parameters__)
        params = list(self.parameters.values())
        P = inspect.Parameter
        simple = (
            params
            and params[-1].kind is P.VAR_POSITIONAL
            and all(p.kind is P.POSITIONAL_OR_KEYWORD and p.default is P.empty for p in params[:-1])
        )
        self._names = tuple(p.name for p in params[:-1]) if simple else None
        self._rest = params[-1].name if simple else None

    def bind(self, *args, **kwargs):
        names = self._names
        if names is None or kwargs or len(args) < len(names):
            return super().bind(*args, **kwargs)
        arguments = dict(zip(names, args))
        if len(args) > len(names):
            arguments[self._rest] = args[len(names) :]
        return self._bound_arguments_cls(self, arguments)


def _bind_quickly(fn) -> None:
    """Gives ``fn`` a `_PositionalSignature` (see there)."""
    sig = inspect.signature(fn)
    fn.__signature__ = _PositionalSignature(list(sig.parameters.values()), return_annotation=sig.return_annotation)


#: whether a torch.func transform (vmap, grad, jvp, ...) is active: what ``Function.apply``
#: itself asks to decide how to run a Function (None: unknown, always use the full form)
_functorch_active = getattr(torch._C, "_are_functorch_transforms_active", None)
#: its ``_current_level`` is the innermost active dual level (-1: none; missing: assume one)
_forward_ad = torch.autograd.forward_ad


def _ctx_twin(fn: type, name: str) -> type:
    """``fn`` (a Function with ``setup_context``) in the form whose ``forward`` takes ``ctx``:
    the same forward, setup, backward and jvp, without the per-call argument binding, for calls
    outside torch.func transforms (which require the ``setup_context`` form)."""
    forward, setup = fn.forward, fn.setup_context

    def twin_forward(ctx, *args):
        output = forward(*args)
        setup(ctx, args, output)
        return output

    body = {"forward": staticmethod(twin_forward), "backward": staticmethod(fn.backward), "__qualname__": name}
    if "jvp" in fn.__dict__:
        body["jvp"] = staticmethod(fn.jvp)
    return type(name, (torch.autograd.Function,), body)


def _applier(fn: type, *, direct_without_grad: bool = False):
    """Applies ``fn``, or its `_ctx_twin` when no torch.func transform is active.

    ``direct_without_grad``: for a Function whose only use outside torch.func transforms is
    recording its backward (a node that refuses to differentiate again): without grad mode,
    functorch transforms and forward-mode AD, applying it records nothing and checks nothing,
    so its forward runs directly (a backward pass runs without grad mode unless
    ``create_graph``)."""
    _bind_quickly(fn.forward)
    full = fn.apply
    if _functorch_active is None:
        return full
    twin = _ctx_twin(fn, fn.__name__).apply
    forward = fn.forward
    is_grad_enabled = torch.is_grad_enabled

    def apply(*args):
        if _functorch_active():
            return full(*args)
        if direct_without_grad and not is_grad_enabled() and getattr(_forward_ad, "_current_level", 0) < 0:
            return forward(*args)
        return twin(*args)

    return apply


class TorchKernel:
    """A kernel as a differentiable PyTorch function. Call it like the NumPy kernel: inputs in
    argument order (sizes that input shapes determine may be left out), outputs returned (one
    bare, several as a tuple). ``apply`` is an alias of calling it; ``function`` is the
    ``torch.autograd.Function`` subclass; ``kernel`` the underlying `simgrad.Kernel`."""

    def __init__(self, kernel: Kernel, *, convert: bool = False):
        if "primal" not in kernel.modes:
            raise InvalidArgumentError(None, f"kernel `{kernel.name}` has no primal mode")
        self.kernel = kernel
        self.convert = convert
        self.function, self._apply = _make_function(kernel, convert)

    def __repr__(self) -> str:
        return f"<simgrad.torch function {self.kernel.signature()}>"

    def __call__(self, *inputs, **named):
        k = self.kernel
        if not named:
            # Positional inputs with sizes as Python ints: bound by the kernel's plan.
            b = k._bind_quick(inputs)
            if b is not None:
                return self._apply((), *b[0])
        values = k.bind(inputs, named)
        sizes = k._sizes(values)
        vals = []
        for a in k.inputs:
            label = f"kernel `{k.name}`: argument `{a.name}`"
            if a.kind == "size":
                v = values.get(a.name, sizes.get(a.name))
                if v is None:
                    raise InvalidArgumentError(None, f"{label} (size) is missing; signature: {k.signature()}")
                vals.append(int(v.item() if isinstance(v, torch.Tensor) else v))
            elif a.name not in values:
                raise InvalidArgumentError(None, f"{label} is missing; signature: {k.signature()}")
            else:
                vals.append(values[a.name])
        extra = tuple(sorted((n, int(v)) for n, v in values.items() if n not in k._by_name))
        return self._apply(extra, *vals)

    apply = __call__


def function(kernel: Kernel, *, convert: bool = False) -> TorchKernel:
    """The kernel as a differentiable PyTorch function. With ``convert=True`` input tensors of
    another dtype or layout are converted (copied) instead of refused."""
    return TorchKernel(kernel, convert=convert)


def Enzyme(source, function_name: str, *, convert: bool = False, **kwargs) -> TorchKernel:  # noqa: N802
    """``simgrad.Enzyme(source, function_name, **kwargs)`` as a PyTorch function:
    ``simgrad.torch.Enzyme("test.cpp", "f").apply(a)``."""
    from ._enzyme import Enzyme as _build

    return TorchKernel(_build(source, function_name, **kwargs), convert=convert)


# ---------------------------------------------------------------------- the autograd.Function


def _make_function(kernel: Kernel, convert: bool):
    k = kernel
    order = k.order
    inputs = k.inputs
    in_pos = {a.name: i for i, a in enumerate(inputs)}
    c_order = order == "C"
    # Precomputed once, read by every call:
    # per argument: (Arg, position among the inputs (None: an out array), label in messages,
    # torch dtype, rank, shape when it is fixed)
    arg_plan = tuple(
        (a, in_pos.get(a.name), label, _TORCH[a.dtype], len(a.shape), k._static_shapes[a.index])
        for a, label in zip(k.args, k._labels["arguments"])
    )
    diff_inputs = tuple((a, in_pos[a.name], _TORCH[a.dtype]) for a in k.differentiable_inputs)
    # per input: (its position in Fn.backward's arguments, whether it can have a gradient)
    grad_plan = tuple((1 + i, a.differentiable and a.kind != "size") for i, a in enumerate(inputs))

    def check_input(a, x, label):
        """A user's input tensor, as the kernel needs it (never copied unless ``convert``; an
        ``inout`` tensor is cloned anyway, so any layout is fine for it)."""
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x)  # shares memory
        if not isinstance(x, torch.Tensor):
            raise DTypeError(None, f"{label} is a {type(x).__name__}, expected a torch.Tensor ({a.type_text()})")
        if not x.is_cpu:
            check_torch_device(x, label)
        want = _TORCH[a.dtype]
        if convert:
            x = _contiguous(x.to(want), order)
        if x.dtype != want:
            raise DTypeError(
                None,
                f"{label} has dtype {x.dtype}, the kernel takes {a.dtype} ({want}); convert it with .to({want}) "
                "(simgrad never casts silently)",
            )
        if x.dim() != len(a.shape):
            raise ShapeError(None, f"{label} has shape {tuple(x.shape)}, expected {a.type_text()}")
        if not _is_contiguous(x, order) and a.intent != "inout":
            fix = ".contiguous()" if order == "C" else ".t().contiguous().t() (column-major)"
            raise LayoutError(
                None,
                f"{label} is not contiguous in {order} order (strides {tuple(x.stride())}); pass x{fix}",
            )
        return x

    def full_args(vals, extra, vjp: bool = False):
        """The kernel's argument list for ``vals`` (inputs in order): outputs allocated, inout
        inputs cloned. Returns (args, outputs). ``vjp``: the arguments of a VJP instead, which
        only reads them: ``out`` arguments without data (`ShapeOnly`), ``inout`` inputs as they
        are (a contiguous copy when they are not)."""
        sizes = None if extra else k._input_sizes(vals)
        if sizes is None:
            values = {a.name: v for a, v in zip(inputs, vals)}
            values.update(dict(extra))
            sizes = k._sizes(values)
        args, outs = [], []
        for a, p, label, want, nd, static in arg_plan:
            if p is None:  # an out array
                shape = static if static is not None else k._out_shape(a, sizes)
                if vjp:
                    args.append(ShapeOnly(a.dtype, shape))
                    continue
                t = torch.empty(shape, dtype=want) if c_order else _empty(shape, want, order)
                args.append(t)
                outs.append(t)
            elif a.kind == "array":
                x = vals[p]
                if not (
                    type(x) is torch.Tensor
                    and not convert
                    and x.is_cpu
                    and x.dtype is want
                    and x.dim() == nd
                    and (x.is_contiguous() if c_order else _is_contiguous(x, order))
                ):
                    x = check_input(a, x, label)  # what the line above accepts, with messages
                if a.intent == "inout":
                    if vjp:
                        x = _contiguous(x.detach(), order)
                    else:
                        c = _empty(tuple(x.shape), x.dtype, order)
                        c.copy_(x.detach())
                        x = c
                        outs.append(x)
                args.append(x.detach())
            elif a.kind == "scalar":
                v = vals[p]
                if isinstance(v, torch.Tensor):
                    check_torch_device(v, label)
                    v = v.detach()
                args.append(v)
            else:
                args.append(vals[p])
        return args, outs

    def out_shape_of(args, a):
        return tuple(args[a.index].shape)

    def prepare(x, a):
        """A tangent or cotangent as the kernel needs it (contiguous, the argument's dtype)."""
        if a.kind == "scalar":
            return x.detach().reshape(()).to(_TORCH[a.dtype]).contiguous()
        return x.detach().contiguous() if c_order else _contiguous(x.detach(), order)

    def loop_vmap(apply, info, in_dims, static, vals, *, bare_single: bool):
        """The batch rule of every Function below: one kernel call per batch element (slices
        made contiguous in the kernel's order), results stacked along dim 0."""
        n = info.batch_size
        results = []
        for b in range(n):
            sl = []
            for v, d in zip(vals, in_dims):
                if d is None:
                    sl.append(v)
                else:
                    e = v.select(d, b)
                    sl.append(_contiguous(e, order) if e.dim() else e)
            out = apply(*static, *sl)
            results.append(out if isinstance(out, tuple) else (out,))
        stacked = tuple(torch.stack([r[j] for r in results]) for j in range(len(results[0])))
        if bare_single and len(stacked) == 1:
            return stacked[0], 0
        return stacked, tuple(0 for _ in stacked)

    def no_second_order(what):
        raise InvalidArgumentError(
            None,
            f"kernel `{k.name}`: {what} of a simgrad kernel cannot be differentiated again "
            "(second derivatives are not generated)",
        )

    class VjpFn(torch.autograd.Function):
        """Input cotangents (of the inputs flagged in ``want``) from output cotangents: the
        Enzyme VJP. A Function of its own so that ``vmap`` over a backward pass (``jacrev``)
        has a batch rule."""

        generate_vmap_rule = False

        @staticmethod
        def forward(extra, want, nvals, *rest):
            vals, grads = rest[:nvals], rest[nvals:]
            args, _ = full_args(vals, extra, vjp=True)
            cin = [None] * len(k.args)
            for a, g in zip(k.outputs, grads):
                if g is not None and a.differentiable:
                    cin[a.index] = prepare(g, a)
            cout = [None] * len(k.args)
            result = []
            for a, i, dtype in diff_inputs:
                if not want[i]:
                    continue
                if a.kind == "scalar":
                    buf = torch.empty((), dtype=dtype)
                elif c_order:
                    buf = torch.empty_like(args[a.index])  # a C-contiguous input of this dtype
                else:
                    buf = _empty(out_shape_of(args, a), dtype, order)
                cout[a.index] = buf
                # A gradient has the dtype of its input: scalars given as tensors keep theirs.
                result.append((buf, vals[i].dtype if isinstance(vals[i], torch.Tensor) else None))
            k.vjp_raw(args, cin, cout)
            return tuple(b if dt is None or b.dtype == dt else b.to(dt) for b, dt in result)

        @staticmethod
        def setup_context(ctx, inputs_, output):
            pass

        @staticmethod
        def backward(ctx, *grads):
            no_second_order("the backward pass")

        @staticmethod
        def vmap(info, in_dims, extra, want, nvals, *rest):
            return loop_vmap(VjpFn.apply, info, in_dims[3:], (extra, want, nvals), rest, bare_single=False)

    class JvpFn(torch.autograd.Function):
        """Tangents of the differentiable outputs from input tangents: the Enzyme JVP (a Function
        of its own so that ``vmap`` over forward mode, ``jacfwd``, has a batch rule)."""

        generate_vmap_rule = False

        @staticmethod
        def forward(extra, nvals, *rest):
            vals, tangents = rest[:nvals], rest[nvals:]
            args, _ = full_args(vals, extra)
            tin = [None] * len(k.args)
            for a in k.differentiable_inputs:
                t = tangents[in_pos[a.name]]
                if t is not None:
                    tin[a.index] = prepare(t, a)
            tout = [None] * len(k.args)
            results = []
            for a in k.differentiable_outputs:
                buf = _empty(out_shape_of(args, a), _TORCH[a.dtype], order)
                tout[a.index] = buf
                results.append(buf)
            k.jvp_raw(args, tin, tout)
            return tuple(results)

        @staticmethod
        def setup_context(ctx, inputs_, output):
            pass

        @staticmethod
        def backward(ctx, *grads):
            no_second_order("forward-mode derivatives")

        @staticmethod
        def vmap(info, in_dims, extra, nvals, *rest):
            return loop_vmap(JvpFn.apply, info, in_dims[2:], (extra, nvals), rest, bare_single=False)

    class Fn(torch.autograd.Function):
        generate_vmap_rule = False

        @staticmethod
        def forward(extra, *vals):
            args, outs = full_args(vals, extra)
            k.call_raw(args)
            return _pack(outs)

        @staticmethod
        def setup_context(ctx, inputs_, output):
            extra = inputs_[0]
            tensors, tensor_pos, others = [], [], []
            for i, v in enumerate(inputs_[1:]):
                if isinstance(v, torch.Tensor):
                    tensors.append(v)
                    tensor_pos.append(i)
                    others.append(None)
                else:
                    others.append(v)
            ctx.tensor_pos = tensor_pos
            ctx.others = others
            ctx.extra = extra
            ctx.save_for_backward(*tensors)
            ctx.save_for_forward(*tensors)
            outs = output if isinstance(output, tuple) else (output,)
            nondiff = [o for o, a in zip(outs, k.outputs) if not a.differentiable]
            if nondiff:
                ctx.mark_non_differentiable(*nondiff)

        @staticmethod
        def _inputs(ctx):
            vals = list(ctx.others)
            for p, t in zip(ctx.tensor_pos, ctx.saved_tensors):
                vals[p] = t
            return vals

        @staticmethod
        def backward(ctx, *grads):
            if "vjp" not in k.modes:
                raise InvalidArgumentError(None, f"kernel `{k.name}` was built without the vjp mode; cannot backpropagate")
            vals = ctx.others.copy()
            for p, t in zip(ctx.tensor_pos, ctx.saved_tensors):
                vals[p] = t
            needs = ctx.needs_input_grad
            want = tuple(can and bool(needs[p]) for p, can in grad_plan)
            result = [None] * len(vals)
            if any(want):
                cots = apply_vjp(ctx.extra, want, len(vals), *vals, *grads)
                for i, c in zip([i for i, w in enumerate(want) if w], cots):
                    result[i] = c
            return (None, *result)

        @staticmethod
        def jvp(ctx, *tangents):
            if "jvp" not in k.modes:
                raise InvalidArgumentError(None, f"kernel `{k.name}` was built without the jvp mode; no forward-mode AD")
            vals = Fn._inputs(ctx)
            touts = iter(apply_jvp(ctx.extra, len(vals), *vals, *tangents[1:]))
            return _pack([next(touts) if a.differentiable else None for a in k.outputs])

        @staticmethod
        def vmap(info, in_dims, extra, *vals):
            return loop_vmap(Fn.apply, info, in_dims[1:], (extra,), vals, bare_single=True)

    Fn.__name__ = Fn.__qualname__ = f"simgrad_{k.name}"
    VjpFn.__name__ = VjpFn.__qualname__ = f"simgrad_{k.name}_vjp"
    JvpFn.__name__ = JvpFn.__qualname__ = f"simgrad_{k.name}_jvp"
    apply_vjp = _applier(VjpFn, direct_without_grad=True)
    apply_jvp = _applier(JvpFn)
    return Fn, _applier(Fn)


__all__ = ["Enzyme", "TorchKernel", "function"]
