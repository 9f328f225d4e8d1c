"""Train the Enzyme-backed LLTM for a few steps and watch the loss fall.

    python examples-cpp/lltm/train_demo.py [--steps 60] [--mode aot|jit] [--dtype float32]

A toy task with a fixed seed: an LLTM cell (32 input features, state 128) plus a linear read-out
runs over random sequences of length 8 and learns to predict, at every step, a fixed random
linear function of the current input and the previous one. Gradients flow through the cell's
Enzyme VJP at every time step (backpropagation through time). Prints the loss every few steps and
exits non-zero unless the final loss is below half the initial one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import lltm_simgrad  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--mode", choices=["aot", "jit"], default="aot")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    ext = lltm_simgrad.setup(args.mode)
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(args.seed)
    B, F, S, T, OUT = 16, 32, 128, 8, 4
    cell = lltm_simgrad.LLTM(F, S, dtype=dtype)
    readout = torch.nn.Linear(S, OUT, dtype=dtype)
    target_map = torch.randn(2 * F, OUT, dtype=dtype) / (2 * F) ** 0.5
    opt = torch.optim.Adam(list(cell.parameters()) + list(readout.parameters()), lr=3e-3)
    print(f"kernel library {ext.library_path()} ({', '.join(ext.kernel_names())})")

    def batch():
        xs = torch.randn(T, B, F, dtype=dtype)
        prev = torch.cat([torch.zeros(1, B, F, dtype=dtype), xs[:-1]])
        ys = torch.cat([xs, prev], dim=2) @ target_map
        return xs, ys

    losses = []
    for step in range(args.steps):
        xs, ys = batch()
        h = torch.zeros(B, S, dtype=dtype)
        c = torch.zeros(B, S, dtype=dtype)
        loss = torch.zeros((), dtype=dtype)
        for t in range(T):
            h, c = cell(xs[t], (h, c))
            loss = loss + torch.nn.functional.mse_loss(readout(h), ys[t])
        loss = loss / T
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % 10 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {loss.item():.5f}")
    first = sum(losses[:5]) / 5
    last = sum(losses[-5:]) / 5
    print(f"mean loss of the first 5 steps {first:.5f}, of the last 5 steps {last:.5f}")
    if not last < 0.5 * first:
        print("train_demo: the loss did not fall to below half its initial value", file=sys.stderr)
        return 1
    print("train_demo: the loss fell")
    return 0


if __name__ == "__main__":
    sys.exit(main())
