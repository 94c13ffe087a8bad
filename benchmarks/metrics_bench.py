"""Benchmark of pncutils.metrics against a naive implementation and against lower bounds.

Measures, for one problem size (default on the CPU: N = 20 000, D = 512, K = 10, L = 4):

(a) the full per-layer table (C, D, NC1, tr Sigma_W, tr Sigma_B) from ``layerwise`` and from
    ``LayerwiseStats`` (batches of 1 000) against a naive per-sample implementation of the same
    table: the reference code's algorithm (a Python loop over samples with one outer product
    each, then a pseudo-inverse of Sigma_B), made correct; the naive loop is timed on a
    subset of samples and extrapolated linearly in N (its cost is exactly linear in N);
(b) C and D alone against their lower bound: one pass of ``H.T @ onehot(y)`` and
    ``(H * H).sum()`` per layer;
(c) NC1 against one ``H.T @ H`` per layer.

Run ``python benchmarks/metrics_bench.py`` (add ``--device cuda`` on a GPU, where the default
size becomes N = 50 000, D = 1 024, L = 8). Results are printed and, with ``--out DIR``,
written to ``DIR/metrics_bench-<device>.json``.
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

from pncutils import metrics as M  # noqa: E402
from pncutils.utils import device_name  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timeit(fn, device, repeat=3):
    """Best wall time of `repeat` runs (after one warm-up run)."""
    fn()
    _sync(device)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def naive_table(features, y, K):
    """The reference algorithm, per sample, in float64 numpy, without the aliasing bug.

    Returns the rows ``(C, D, NC1, tr Sigma_W, tr Sigma_B)`` and the seconds spent in the
    per-sample loops (linear in N) and in the rest (pseudo-inverse etc., independent of N).
    """
    rows, t_loops, t_rest = [], 0.0, 0.0
    for H in features:
        H = H.detach().cpu().numpy().astype(np.float64)
        yy = y.cpu().numpy()
        N, D = H.shape
        t0 = time.perf_counter()
        sums = [np.zeros(D) for _ in range(K)]
        counts = [0] * K
        for i in range(N):
            sums[yy[i]] = sums[yy[i]] + H[i]
            counts[yy[i]] += 1
        mu = np.stack([s / c for s, c in zip(sums, counts, strict=True)])
        Sigma_W = np.zeros((D, D))
        for i in range(N):
            d = H[i] - mu[yy[i]]
            Sigma_W += np.outer(d, d)
        Sigma_W /= N
        t1 = time.perf_counter()
        mu_G = mu.mean(0)
        Sigma_B = np.zeros((D, D))
        for k in range(K):
            d = mu[k] - mu_G
            Sigma_B += np.outer(d, d)
        Sigma_B /= K
        trW, trB = np.trace(Sigma_W), np.trace(Sigma_B)
        nc1 = np.trace(Sigma_W @ np.linalg.pinv(Sigma_B, rcond=1e-10, hermitian=True)) / K
        Mn = mu / np.linalg.norm(mu, axis=1, keepdims=True)
        cos = Mn @ Mn.T
        D_ = 1 - cos[~np.eye(K, dtype=bool)].max()
        rows.append((trW / trB, D_, nc1, trW, trB))
        t2 = time.perf_counter()
        t_loops += t1 - t0
        t_rest += t2 - t1
    return rows, t_loops, t_rest


def make_problem(N, D, K, L, device, seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    y = torch.arange(N) % K
    means = torch.randn(K, D, generator=g, dtype=torch.float64) * 2
    feats = []
    for _ in range(L):
        H = means[y] + torch.randn(N, D, generator=g, dtype=torch.float64)
        feats.append(H.to(device))
        means = means * 1.3
    return feats, y.to(device)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--num-samples", type=int, default=None)
    p.add_argument("--dim", type=int, default=None)
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--num-layers", type=int, default=None)
    p.add_argument("--naive-samples", type=int, default=1000,
                   help="samples timed for the naive loop (extrapolated linearly to N)")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default=None, help="folder for the JSON result")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    N = args.num_samples or (50_000 if gpu else 20_000)
    D = args.dim or (1024 if gpu else 512)
    L = args.num_layers or (8 if gpu else 4)
    K = args.num_classes
    feats, y = make_problem(N, D, K, L, device)
    onehot = torch.nn.functional.one_hot(y, K).to(torch.float64)

    res = {"device": device_name(device), "torch": torch.__version__,
           "machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
           "threads": torch.get_num_threads(), "N": N, "D": D, "K": K, "L": L}

    # (a) full tables
    t_layerwise = timeit(lambda: M.layerwise(feats, y), device, args.repeat)

    def streamed(nc1=True):
        stats = M.LayerwiseStats(L, K, nc1=nc1)
        for i in range(0, N, args.batch_size):
            stats.update([H[i:i + args.batch_size] for H in feats], y[i:i + args.batch_size])
        return stats.compute()

    t_stream = timeit(streamed, device, args.repeat)
    t_stream_nonc1 = timeit(lambda: streamed(nc1=False), device, args.repeat)
    n_naive = min(args.naive_samples, N)
    sub = [H[:n_naive] for H in feats]
    naive_rows, t_loops, t_rest = naive_table(sub, y[:n_naive], K)
    t_naive = t_loops * N / n_naive + t_rest  # the loops are linear in N, the rest is not
    # correctness of the compared implementations on the subset
    ref = M.layerwise(sub, y[:n_naive])
    for l, row in enumerate(naive_rows):
        assert abs(row[0] - float(ref.compression[l])) <= 1e-9 * row[0]
        assert abs(row[2] - float(ref.nc1[l])) <= 1e-8 * row[2]
    stream_tab, full_tab = streamed(), M.layerwise(feats, y)
    assert torch.allclose(stream_tab.compression, full_tab.compression, rtol=1e-9)

    # (b) C and D against one pass of H.T @ onehot and (H * H).sum() per layer
    def c_and_d():
        for H in feats:
            M.compression(H, y)
            M.discrimination(H, y)

    def bound_cd():
        for H in feats:
            _ = H.T @ onehot
            _ = (H * H).sum()

    t_cd, t_cd_bound = timeit(c_and_d, device, args.repeat), timeit(bound_cd, device, args.repeat)

    # (c) NC1 against one H.T @ H per layer
    def nc1_all():
        for H in feats:
            M.nc1(H, y)

    def bound_gram():
        for H in feats:
            _ = H.T @ H

    t_nc1, t_gram = timeit(nc1_all, device, args.repeat), timeit(bound_gram, device, args.repeat)

    res.update({
        "a_layerwise_s": t_layerwise, "a_stream_s": t_stream,
        "a_naive_s_extrapolated": t_naive, "a_naive_samples_timed": n_naive,
        "a_speedup_layerwise": t_naive / t_layerwise, "a_speedup_stream": t_naive / t_stream,
        "a_stream_no_nc1_s": t_stream_nonc1, "a_speedup_stream_no_nc1": t_naive / t_stream_nonc1,
        "b_cd_s": t_cd, "b_bound_s": t_cd_bound, "b_ratio": t_cd / t_cd_bound,
        "c_nc1_s": t_nc1, "c_gram_s": t_gram, "c_ratio": t_nc1 / t_gram,
    })
    lines = [
        f"metrics benchmark on {res['device']} ({res['machine']}, {res['threads']} thread(s)), "
        f"N={N} D={D} K={K} L={L}, float64",
        f"(a) full table: layerwise {t_layerwise:.3f} s, LayerwiseStats(batch {args.batch_size}) "
        f"{t_stream:.3f} s, naive {t_naive:.1f} s "
        f"(loops timed on {n_naive} samples, x{N / n_naive:g})",
        f"    speed-up vs naive: layerwise {t_naive / t_layerwise:.0f}x, "
        f"stream {t_naive / t_stream:.0f}x, stream without NC1 {t_naive / t_stream_nonc1:.0f}x"
        "   (target >= 100x)",
        "    (a streamed NC1 needs the D x D within-class scatter: O(N D^2), one Gram per layer)",
        f"(b) C and D: {t_cd:.3f} s vs bound (H.T@onehot, (H*H).sum()) {t_cd_bound:.3f} s: "
        f"ratio {t_cd / t_cd_bound:.2f}   (target <= 3)",
        f"(c) NC1: {t_nc1:.3f} s vs bound (H.T@H) {t_gram:.3f} s: ratio {t_nc1 / t_gram:.2f}"
        "   (target <= 3)",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"metrics_bench-{device.type}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(res, indent=2) + "\n")
        os.replace(tmp, path)
    return res


if __name__ == "__main__":
    main()
