"""References for the Enzyme-backed LLTM (`lltm_simgrad.LLTM`).

* `LLTMPython`: the pure-PyTorch LLTM module of PyTorch's C++-extension tutorial (F.linear, chunk,
  sigmoid, elu, tanh); autograd differentiates it. The ground truth of the tests.
* `LLTMATen` / `LLTMFunctionATen`: the tutorial's ATen C++ extension with a hand-written backward
  (`ref/lltm_aten.cpp`), built just in time. The classic baseline of the benchmark.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lltm_simgrad import EXT_CFLAGS, HERE, build_root


def lltm_python(input, weights, bias, old_h, old_cell):
    """The LLTM cell as PyTorch operations (the body of `LLTMPython.forward`)."""
    X = torch.cat([old_h, input], dim=1)
    # Compute the input, output and candidate cell gates with one MM.
    gate_weights = F.linear(X, weights, bias)
    # Split the combined gate weight matrix into its components.
    gates = gate_weights.chunk(3, dim=1)
    input_gate = torch.sigmoid(gates[0])
    output_gate = torch.sigmoid(gates[1])
    # Here we use an ELU instead of the usual tanh.
    candidate_cell = F.elu(gates[2])
    # Compute the new cell state.
    new_cell = old_cell + candidate_cell * input_gate
    # Compute the new hidden state and output.
    new_h = torch.tanh(new_cell) * output_gate
    return new_h, new_cell


class LLTMPython(torch.nn.Module):
    def __init__(self, input_features: int, state_size: int, dtype=torch.float32):
        super().__init__()
        self.input_features = input_features
        self.state_size = state_size
        # 3 * state_size for input gate, output gate and candidate cell gate.
        # input_features + state_size because we will multiply with [h, input].
        self.weights = torch.nn.Parameter(
            torch.empty(3 * state_size, input_features + state_size, dtype=dtype)
        )
        self.bias = torch.nn.Parameter(torch.empty(3 * state_size, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.state_size)
        for weight in self.parameters():
            weight.data.uniform_(-stdv, +stdv)

    def forward(self, input, state):
        old_h, old_cell = state
        return lltm_python(input, self.weights, self.bias, old_h, old_cell)


_aten = None


def aten_extension(verbose: bool = False):
    """The hand-written ATen extension, compiled just in time (cached by torch)."""
    global _aten
    if _aten is None:
        from torch.utils.cpp_extension import load

        build_dir = build_root() / "aten"
        build_dir.mkdir(parents=True, exist_ok=True)
        _aten = load(
            name="lltm_aten_ref",
            sources=[str(HERE / "ref" / "lltm_aten.cpp")],
            extra_cflags=EXT_CFLAGS,
            build_directory=str(build_dir),
            verbose=verbose,
        )
    return _aten


class LLTMFunctionATen(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, weights, bias, old_h, old_cell):
        outputs = aten_extension().forward(input, weights, bias, old_h, old_cell)
        new_h, new_cell = outputs[:2]
        ctx.save_for_backward(*(outputs[1:] + [weights]))
        return new_h, new_cell

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_h, grad_cell):
        d_old_h, d_input, d_weights, d_bias, d_old_cell = aten_extension().backward(
            grad_h.contiguous(), grad_cell.contiguous(), *ctx.saved_tensors
        )
        return d_input, d_weights, d_bias, d_old_h, d_old_cell


class LLTMATen(LLTMPython):
    """Same parameters as `LLTMPython`; forward/backward from the hand-written ATen extension."""

    def forward(self, input, state):
        old_h, old_cell = state
        return LLTMFunctionATen.apply(input, self.weights, self.bias, old_h, old_cell)
