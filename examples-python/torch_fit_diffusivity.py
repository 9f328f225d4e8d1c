#!/usr/bin/env python3
"""A PyTorch training loop with a compiled simulation inside the model.

The Fortran kernel `heat` (examples-c/kernels/heat.f90) runs explicit steps of 1-D heat diffusion
with a spatially varying diffusivity kappa. The model parametrises kappa(x) = c0 + c1 sin(pi x)
with two trainable coefficients, runs the simulation through simgrad (torch.autograd.Function,
gradients from Enzyme's reverse mode), and fits c0, c1 to observed final temperatures of a
batch of initial conditions (batched with torch.func.vmap). Exits 1 unless the fit recovers the
true coefficients.
"""

import math

import torch
from _common import SPEC, fail

import simgrad
import simgrad.torch as st

torch.manual_seed(0)
heat = st.function(simgrad.build(SPEC)["heat"])

N, STEPS = 48, 200
xs = torch.linspace(0.0, 1.0, N, dtype=torch.float64)
# A batch of initial conditions: bumps at different places.
centres = torch.tensor([0.25, 0.4, 0.6, 0.75], dtype=torch.float64)
U0 = torch.exp(-((xs[None, :] - centres[:, None]) ** 2) / 0.005)


class HeatModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.coef = torch.nn.Parameter(torch.tensor([0.3, 0.0], dtype=torch.float64))

    def kappa(self):
        return self.coef[0] + self.coef[1] * torch.sin(math.pi * xs)

    def forward(self, u0_batch):
        kappa = self.kappa()
        # The compiled simulation, vmapped over the batch of initial conditions.
        return torch.func.vmap(lambda u0: heat(STEPS, kappa, u0))(u0_batch)


true = torch.tensor([0.6, 0.3], dtype=torch.float64)
with torch.no_grad():
    observed = torch.stack([heat(STEPS, true[0] + true[1] * torch.sin(math.pi * xs), u0) for u0 in U0])

model = HeatModel()
opt = torch.optim.Adam(model.parameters(), lr=0.02)
first = None
for it in range(201):
    opt.zero_grad()
    loss = torch.mean((model(U0) - observed) ** 2)
    loss.backward()  # through the Enzyme VJP of the Fortran kernel
    opt.step()
    first = first if first is not None else loss.item()
    if it % 50 == 0:
        c = model.coef.detach()
        print(f"step {it:3d}  loss {loss.item():.3e}  c0 {c[0]:.4f}  c1 {c[1]:.4f}")

c = model.coef.detach()
print(f"\nfitted c0 = {c[0]:.4f} (true {true[0]:.4f}), c1 = {c[1]:.4f} (true {true[1]:.4f})")
if not loss.item() < 1e-3 * first:
    fail(f"the loss only went from {first:.3e} to {loss.item():.3e}")
if torch.max(torch.abs(c - true)) > 0.02:
    fail(f"the fitted coefficients {c.tolist()} are not the true ones {true.tolist()}")
print("OK")
