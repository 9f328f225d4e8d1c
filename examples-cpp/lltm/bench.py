"""Benchmark: the LLTM cell with an Enzyme backward (simgrad) against pure PyTorch and against the
hand-written ATen extension of PyTorch's tutorial.

    python examples-cpp/lltm/bench.py [--json OUT.json] [--reps 31] [--inner 50] [--threads N]
                                      [--batch 16 --features 32 --state 128] [--dtype float32]

Every implementation runs the same problem (same parameters and inputs), after a check that the
three agree. Timings are interleaved: each repetition times every implementation once, in a
rotating order, so that drifts of the machine (frequency, other processes) hit all of them alike.
Each timing is the mean over `--inner` calls; the report gives the median over repetitions, the
spread (25th-75th percentile and min-max) and the ratios of medians.

"forward" is the training-mode forward pass (parameters require grad, so autograd records it);
"forward+backward" adds `(new_h.sum() + new_cell.sum()).backward()`, as in the tutorial.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import lltm_simgrad  # noqa: E402
import reference  # noqa: E402


def quantile(xs, q):
    xs = sorted(xs)
    i = q * (len(xs) - 1)
    lo, hi = int(i), min(int(i) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (i - lo)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--reps", type=int, default=31)
    ap.add_argument("--inner", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--features", type=int, default=32)
    ap.add_argument("--state", type=int, default=128)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--mode", choices=["aot", "jit"], default="aot", help="how to build the extension")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    B, F, S = args.batch, args.features, args.state

    ext = lltm_simgrad.setup(args.mode)
    reference.aten_extension()
    load_before = os.getloadavg()

    torch.manual_seed(0)
    base = reference.LLTMPython(F, S, dtype=dtype)
    impls = {
        "enzyme": lltm_simgrad.LLTM(F, S, dtype=dtype),
        "python": reference.LLTMPython(F, S, dtype=dtype),
        "aten": reference.LLTMATen(F, S, dtype=dtype),
    }
    for m in impls.values():
        m.load_state_dict(base.state_dict())
    x = torch.randn(B, F, dtype=dtype)
    h = torch.randn(B, S, dtype=dtype)
    c = torch.randn(B, S, dtype=dtype)

    # They must agree before their speed means anything.
    results = {}
    for name, m in impls.items():
        m.zero_grad()
        nh, nc = m(x, (h, c))
        (nh.sum() + nc.sum()).backward()
        results[name] = (nh.detach(), nc.detach(), m.weights.grad.clone(), m.bias.grad.clone())
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    for name in ("enzyme", "aten"):
        for a, b in zip(results[name], results["python"]):
            err = ((a - b).abs().max() / b.abs().max()).item()
            if err > tol:
                print(f"bench: {name} disagrees with python (rel. error {err:.2e})", file=sys.stderr)
                return 1

    def fwd(m):
        return m(x, (h, c))

    def fwd_bwd(m):
        nh, nc = m(x, (h, c))
        (nh.sum() + nc.sum()).backward()

    cases = {"forward": fwd, "forward+backward": fwd_bwd}
    times = {case: {name: [] for name in impls} for case in cases}
    names = list(impls)
    for case, fn in cases.items():
        for name in names:
            for _ in range(args.warmup):
                fn(impls[name])
        for rep in range(args.reps):
            order = names[rep % len(names):] + names[: rep % len(names)]
            for name in order:
                m = impls[name]
                t0 = time.perf_counter()
                for _ in range(args.inner):
                    fn(m)
                times[case][name].append((time.perf_counter() - t0) / args.inner * 1e6)

    load_after = os.getloadavg()
    summary = {}
    print(
        f"LLTM {args.dtype}, batch {B}, {F} features, state {S}, CPU, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads; {args.reps} interleaved reps x {args.inner} calls"
    )
    print(f"kernel library: {ext.library_path()} (kernels {', '.join(ext.kernel_names())})")
    print(
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after, on {os.cpu_count()} CPUs"
        + ("  (a busy machine: these numbers are noisy)" if load_before[0] > 0.5 * (os.cpu_count() or 1) else "")
    )
    for case in cases:
        print(f"\n{case:18s} {'median us':>10s} {'p25-p75 us':>16s} {'min-max us':>16s}")
        summary[case] = {}
        for name in names:
            t = times[case][name]
            med = statistics.median(t)
            summary[case][name] = {
                "median_us": med,
                "p25_us": quantile(t, 0.25),
                "p75_us": quantile(t, 0.75),
                "min_us": min(t),
                "max_us": max(t),
                "samples_us": t,
            }
            print(
                f"  {name:16s} {med:10.1f} {quantile(t, .25):7.1f}-{quantile(t, .75):<8.1f} "
                f"{min(t):7.1f}-{max(t):<8.1f}"
            )
        e = summary[case]["enzyme"]["median_us"]
        for other in ("python", "aten"):
            r = e / summary[case][other]["median_us"]
            summary[case][f"ratio_enzyme_over_{other}"] = r
            print(f"  enzyme / {other:7s} = {r:.2f}  ({'slower' if r > 1 else 'faster'})")

    if args.json:
        out = {
            "benchmark": "lltm",
            "dtype": args.dtype,
            "batch": B,
            "features": F,
            "state": S,
            "reps": args.reps,
            "inner": args.inner,
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "kernel_library": ext.library_path(),
            "kernels": list(ext.kernel_names()),
            "load_average_before": load_before,
            "load_average_after": load_after,
            "results": summary,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
