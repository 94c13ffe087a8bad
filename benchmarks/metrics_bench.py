"""Benchmark of pncutils.metrics against a naive implementation and against lower bounds.

Measures, for one problem size (default on the CPU: N = 20 000, D = 512, K = 10, L = 4):

(a) the full per-layer table (C, D, NC1, tr Sigma_W, tr Sigma_B) from ``layerwise`` and from
    ``LayerwiseStats`` (batches of 1 000) against a naive per-sample implementation of the same
    table: the reference code's algorithm (a Python loop over samples with one outer product
    each, then a pseudo-inverse of Sigma_B), made correct; the naive loop is timed on a
    subset of samples and extrapolated linearly in N (its cost is exactly linear in N);
(b) C and D alone against their lower bound: one pass of ``H.T @ onehot(y)`` and
    ``(H * H).sum()`` per layer;
(c) NC1 against one ``H.T @ H`` per layer;
(d) on one thread, the full table (NC1 included) of one feature matrix from ``layerwise``, and
    ``LayerwiseStats(nc1=False)`` fed batches of 1 000 rows, against the physical limit of a
    float64-exact table: ONE pass over the features that converts 1 000 rows at a time into a
    reused float64 buffer and accumulates the class sums (``index_add_``) and the sum of
    squares. Float32 and float64 inputs, N = 4 000 and 20 000, D = 512, K = 10; the
    repetitions are interleaved (bound, layerwise, stream, bound, ...) and the medians
    compared (target: ratio <= 6).

Run ``python benchmarks/metrics_bench.py`` (add ``--device cuda`` on a GPU, where the default
size becomes N = 50 000, D = 1 024, L = 8). Results are printed and, with ``--out DIR``,
written to ``DIR/metrics_bench-<device>.json``; ``--only-bound`` runs (d) alone.
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


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def one_pass_bound(H, y, K, chunk=1000):
    """The limit of a float64-exact table: one pass, 1 000 rows at a time converted into a
    reused float64 buffer, class sums by ``index_add_`` and the total sum of squares."""
    N, D = H.shape
    buf = torch.empty(min(chunk, N), D, dtype=torch.float64, device=H.device)
    sums = torch.zeros(K, D, dtype=torch.float64, device=H.device)
    sq = torch.zeros((), dtype=torch.float64, device=H.device)
    for a in range(0, N, chunk):
        b = min(a + chunk, N)
        c = buf[: b - a]
        c.copy_(H[a:b])
        sums.index_add_(0, y[a:b], c)
        flat = c.view(-1)
        sq += flat @ flat
    return sums, sq


def bound_section(device, sizes=(4000, 20000), D=512, K=10, repeat=7, batch=1000):
    """(d): medians of interleaved repetitions on one thread, per dtype and size."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cases = []
    try:
        for N in sizes:
            for dtype in (torch.float32, torch.float64):
                g = torch.Generator(device="cpu").manual_seed(N)
                y = torch.arange(N) % K
                means = torch.randn(K, D, generator=g, dtype=torch.float64) * 2
                H = (means[y] + torch.randn(N, D, generator=g, dtype=torch.float64)).to(dtype)
                H, y = H.to(device), y.to(device)

                def stream(H=H, y=y, N=N):
                    stats = M.LayerwiseStats(1, K, nc1=False)
                    for a in range(0, N, batch):
                        stats.update([H[a : a + batch]], y[a : a + batch])
                    return stats.compute()

                fns = {"bound": lambda H=H, y=y: one_pass_bound(H, y, K, batch),
                       "layerwise": lambda H=H, y=y: M.layerwise([H], y), "stream": stream}
                times = {k: [] for k in fns}
                for fn in fns.values():  # warm-up
                    fn()
                for _ in range(repeat):
                    for name, fn in fns.items():
                        _sync(device)
                        t0 = time.perf_counter()
                        fn()
                        _sync(device)
                        times[name].append(time.perf_counter() - t0)
                med = {k: statistics.median(v) for k, v in times.items()}
                cases.append({
                    "N": N, "D": D, "K": K, "dtype": str(dtype).replace("torch.", ""),
                    "bound_s": med["bound"], "layerwise_s": med["layerwise"],
                    "stream_no_nc1_s": med["stream"],
                    "layerwise_ratio": med["layerwise"] / med["bound"],
                    "stream_no_nc1_ratio": med["stream"] / med["bound"],
                })
    finally:
        torch.set_num_threads(threads)
    return {"threads": 1, "repeat": repeat, "statistic": "median of interleaved repetitions",
            "batch_rows": batch, "target_ratio": 6.0, "cases": cases}


def bound_lines(sec):
    lines = [f"(d) one thread, vs the one-pass bound (chunks of {sec['batch_rows']} rows "
             f"converted to float64, index_add_, sum of squares), median of {sec['repeat']} "
             "interleaved runs   (target <= 6x)"]
    for c in sec["cases"]:
        lines.append(
            f"    N={c['N']:>6} {c['dtype']:>7}: bound {1e3 * c['bound_s']:6.2f} ms, "
            f"layerwise (full table) {c['layerwise_ratio']:4.2f}x, "
            f"LayerwiseStats(nc1=False, {sec['batch_rows']}-row batches) "
            f"{c['stream_no_nc1_ratio']:4.2f}x")
    return lines


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
    p.add_argument("--only-bound", action="store_true", help="run (d) alone")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    machine = {"device": device_name(device), "torch": torch.__version__,
               "machine": platform.processor() or platform.machine(), "cpu_model": cpu_model(),
               "cpu_count": os.cpu_count()}
    if args.only_bound:
        res = {**machine, "d_vs_one_pass_bound": bound_section(device)}
        sys.stdout.write("\n".join(bound_lines(res["d_vs_one_pass_bound"])) + "\n")
        _write(res, args.out, device)
        return res
    gpu = device.type == "cuda"
    N = args.num_samples or (50_000 if gpu else 20_000)
    D = args.dim or (1024 if gpu else 512)
    L = args.num_layers or (8 if gpu else 4)
    K = args.num_classes
    feats, y = make_problem(N, D, K, L, device)
    onehot = torch.nn.functional.one_hot(y, K).to(torch.float64)

    res = {**machine, "threads": torch.get_num_threads(), "N": N, "D": D, "K": K, "L": L}

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
    res["d_vs_one_pass_bound"] = bound_section(device)
    lines = [
        f"metrics benchmark on {res['device']} ({res['cpu_model']}, {res['threads']} thread(s)), "
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
        *bound_lines(res["d_vs_one_pass_bound"]),
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    _write(res, args.out, device)
    return res


def _write(res, out, device):
    """Write ``res`` to ``out/metrics_bench-<device>.json`` atomically (nothing without out)."""
    if not out:
        return
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"metrics_bench-{device.type}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(res, indent=2) + "\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
