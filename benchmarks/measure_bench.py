"""Benchmark of pncutils.measure: what measuring every block costs beyond the forward pass.

Measures, on the small ResNet of ``pncutils.models`` (widths 16/32/64, two residual blocks per
stage) over N FashionMNIST images (default 10 000; random images of the same shape when the
data set is not installed, which does not change the cost):

* the baseline: a plain ``torch.no_grad`` forward pass over the same batches (the lower bound
  of any measurement that needs the features);
* ``pnc.measure`` of every block (stem, the six residual blocks, the logits) without NC1 and
  with NC1, as ratios to the baseline (targets: at most 1.5x and 3x);
* the reference code's way, for scale: forward hooks that copy every block's output to the
  host, then per-sample numpy loops with one outer product each (the paper's
  ``compute_Sigma_W``), timed on a subset and extrapolated linearly in N.

Every time is the best of ``--repeat`` interleaved runs after a warm-up, measured in one
process, so the ratios are comparable even when the machine's load drifts.
``python benchmarks/measure_bench.py [--n 10000] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pncutils as pnc  # noqa: E402
from pncutils.models import ResidualBlock, SmallResNet  # noqa: E402

LAYERS = ["stem", ResidualBlock, "output"]


def best_times(fns: dict, repeat: int) -> dict[str, float]:
    """Best wall time of each function, the runs interleaved (a drift in the machine's load
    then affects every candidate alike), after one warm-up run of each."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def load(n: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    try:
        X, y = pnc.data.load_dataset("fashion_mnist", split="train", download=False)
        return X[:n], y[:n], "FashionMNIST"
    except pnc.data.DatasetNotFoundError:
        g = torch.Generator().manual_seed(0)
        return torch.randn(n, 784, generator=g), torch.arange(n) % 10, "random images"


def reference_way(net, X, y, batch, subset):
    """Hooks with a host copy per batch and layer, then per-sample numpy outer products."""
    captured: dict[str, list[np.ndarray]] = {}
    modules = [("stem", net.stem)] + [(n, m) for n, m in net.named_modules()
                                      if isinstance(m, ResidualBlock)]
    handles = [m.register_forward_hook(
        lambda mod, inp, out, name=name: captured.setdefault(name, []).append(
            out.mean((2, 3)).cpu().numpy().astype(np.float64))) for name, m in modules]
    net.eval()
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(X), batch):
            net(X[i:i + batch])
    forward = time.perf_counter() - start
    for h in handles:
        h.remove()
    labels = y.numpy()
    start = time.perf_counter()
    for chunks in captured.values():
        H = np.concatenate(chunks)
        means = np.stack([H[labels == k].mean(0) for k in range(10)])
        S = np.zeros((H.shape[1], H.shape[1]))
        for i in range(subset):  # the per-sample loop, on a subset
            d = H[i] - means[labels[i]]
            S += np.outer(d, d)
    loops = (time.perf_counter() - start) * len(X) / subset
    return forward + loops


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    X, y, source = load(args.n)
    net = SmallResNet(generator=torch.Generator().manual_seed(0)).eval()
    data = (X, y)

    def forward():
        with torch.no_grad():
            for i in range(0, len(X), args.batch):
                net(X[i:i + args.batch])

    def forward_inference():  # what measure runs under: no autograd bookkeeping at all
        with torch.inference_mode():
            for i in range(0, len(X), args.batch):
                net(X[i:i + args.batch])

    times = best_times({
        "forward": forward,
        "forward_inference": forward_inference,
        "plain": lambda: pnc.measure(net, data, LAYERS, nc1=False, batch_size=args.batch,
                                     progress=False),
        "nc1": lambda: pnc.measure(net, data, LAYERS, nc1=True, batch_size=args.batch,
                                   progress=False),
    }, args.repeat)
    t_fwd, t_plain, t_nc1 = times["forward"], times["plain"], times["nc1"]
    t_inf = times["forward_inference"]
    t_ref = reference_way(net, X, y, args.batch, subset=min(2000, len(X)))
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                   f"{torch.get_num_threads()} threads",
        "data": source, "N": len(X), "batch": args.batch,
        "forward_s": t_fwd, "forward_inference_s": t_inf, "measure_s": t_plain,
        "measure_nc1_s": t_nc1,
        "reference_way_s": t_ref,
        "ratio_measure": t_plain / t_fwd, "ratio_measure_nc1": t_nc1 / t_fwd,
        "ratio_reference_way": t_ref / t_fwd,
        "ratio_measure_vs_inference": t_plain / t_inf,
        "ratio_measure_nc1_vs_inference": t_nc1 / t_inf,
    }
    for key, value in result.items():
        print(f"{key:>22}: {value:.3f}" if isinstance(value, float) else f"{key:>22}: {value}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "measure_bench-cpu.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
