// The reference for the benchmark: the LLTM cell of PyTorch's C++-extension tutorial written with
// ATen, with a backward pass derived and written by hand from the math:
//
//   gates       = [h, x] W^T + b,        split into z_i, z_o, z_c
//   i = sigmoid(z_i), o = sigmoid(z_o), g = elu(z_c)
//   c' = c + g i,  h' = tanh(c') o
//
//   dL/dc' = grad_cell + grad_h o (1 - tanh(c')^2)        (tanh' = 1 - tanh^2)
//   dL/dc  = dL/dc'
//   dL/dz_i = dL/dc' g  i (1 - i)                           (sigmoid' = s (1 - s))
//   dL/dz_o = grad_h tanh(c') o (1 - o)
//   dL/dz_c = dL/dc' i  elu'(z_c)                           (elu' = 1 for z > 0, else exp(z))
//   d_gates = [dL/dz_i, dL/dz_o, dL/dz_c]
//   dW = d_gates^T [h, x],  db = sum_batch d_gates,  d[h, x] = d_gates W
//
// forward(input, weights, bias, old_h, old_cell)
//     -> [new_h, new_cell, input_gate, output_gate, candidate_cell, X, gate_weights]
// backward(grad_h, grad_cell, new_cell, input_gate, output_gate, candidate_cell, X, gate_weights,
//          weights) -> [d_old_h, d_input, d_weights, d_bias, d_old_cell]
#include <torch/extension.h>

#include <vector>

namespace {

torch::Tensor d_sigmoid_from_value(const torch::Tensor &s) { return s * (1 - s); }

torch::Tensor d_tanh(const torch::Tensor &z) { return 1 - z.tanh().pow(2); }

// elu'(z) with alpha = 1: 1 for z > 0, exp(z) otherwise.
torch::Tensor d_elu(const torch::Tensor &z) {
    return torch::where(z > 0, torch::ones_like(z), z.exp());
}

std::vector<torch::Tensor> lltm_forward(const torch::Tensor &input, const torch::Tensor &weights,
                                        const torch::Tensor &bias, const torch::Tensor &old_h,
                                        const torch::Tensor &old_cell) {
    auto X = torch::cat({old_h, input}, /*dim=*/1);
    auto gate_weights = torch::addmm(bias, X, weights.transpose(0, 1));
    auto gates = gate_weights.chunk(3, /*dim=*/1);

    auto input_gate = torch::sigmoid(gates[0]);
    auto output_gate = torch::sigmoid(gates[1]);
    auto candidate_cell = torch::elu(gates[2], /*alpha=*/1.0);

    auto new_cell = old_cell + candidate_cell * input_gate;
    auto new_h = torch::tanh(new_cell) * output_gate;
    return {new_h, new_cell, input_gate, output_gate, candidate_cell, X, gate_weights};
}

std::vector<torch::Tensor> lltm_backward(const torch::Tensor &grad_h, const torch::Tensor &grad_cell,
                                         const torch::Tensor &new_cell,
                                         const torch::Tensor &input_gate,
                                         const torch::Tensor &output_gate,
                                         const torch::Tensor &candidate_cell,
                                         const torch::Tensor &X, const torch::Tensor &gate_weights,
                                         const torch::Tensor &weights) {
    auto d_output_gate = torch::tanh(new_cell) * grad_h;
    auto d_tanh_new_cell = output_gate * grad_h;
    auto d_new_cell = d_tanh(new_cell) * d_tanh_new_cell + grad_cell;

    auto d_old_cell = d_new_cell;
    auto d_candidate_cell = input_gate * d_new_cell;
    auto d_input_gate = candidate_cell * d_new_cell;

    auto gates = gate_weights.chunk(3, /*dim=*/1);
    d_input_gate *= d_sigmoid_from_value(input_gate);
    d_output_gate *= d_sigmoid_from_value(output_gate);
    d_candidate_cell *= d_elu(gates[2]);

    auto d_gates = torch::cat({d_input_gate, d_output_gate, d_candidate_cell}, /*dim=*/1);

    auto d_weights = d_gates.t().mm(X);
    auto d_bias = d_gates.sum(/*dim=*/0, /*keepdim=*/false);

    auto d_X = d_gates.mm(weights);
    const auto state_size = grad_h.size(1);
    auto d_old_h = d_X.slice(/*dim=*/1, 0, state_size);
    auto d_input = d_X.slice(/*dim=*/1, state_size);

    return {d_old_h, d_input, d_weights, d_bias, d_old_cell};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "LLTM cell in ATen with a hand-written backward (PyTorch tutorial style)";
    m.def("forward", &lltm_forward, "LLTM forward (ATen)");
    m.def("backward", &lltm_backward, "LLTM backward (hand-written, ATen)");
}
