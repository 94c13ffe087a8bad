"""Throughput of training the paper's 8-layer hybrid network (F1/F5 scale) on one device.

The network is ``HybridNetwork(3072, 1024, 10, depth=8, num_nonlinear=3)``: three
Linear-BN-ReLU blocks, four linear layers and the classifier, no biases, orthogonal
initialisation ξ = 0.1, MSE with α = 100, SGD (lr 1e-4, momentum 0.9, weight decay 1e-4),
batch 128, as in the reference ``train_cifar.py``. The inputs are random (N, 3072) data made
on the device (CIFAR-10 is not available offline; throughput does not depend on the values).

By default the epochs run through :func:`pncutils.training.train`, i.e. what the book
uses (data resident on the device, one host read per epoch; ``--compile`` sets
``TrainConfig.compile``). ``--cuda-graphs`` instead replays a CUDA graph of the whole
training step (gather of the batch, forward, backward, SGD step).

FLOP count: a linear layer with P_l = out·in weights costs 2·P_l flops per sample forward
and 4·P_l backward (input and weight gradients), so an epoch over N samples costs
``6 · N · P`` flops with ``P = Σ_l out_l · in_l`` (BatchNorm, ReLU and the loss are ignored).

Usage::

    python benchmarks/train_bench.py --num-samples 2048 --width 128 --epochs 1   # CPU smoke test
    python benchmarks/train_bench.py --device cuda --epochs 3 --out               # full size
    python benchmarks/train_bench.py --device cuda --epochs 3 --cuda-graphs --out

Prints samples/s, ms per step, achieved TFLOP/s and the extrapolated time of the paper's
400 epochs on 50 000 samples; ``--out`` also writes
``benchmarks/results/train_bench-<device>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import re
import sys
import time
from datetime import datetime, timezone

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pncutils.models import HybridNetwork  # noqa: E402
from pncutils.training import TrainConfig, train  # noqa: E402
from pncutils.utils import device_name, get_device  # noqa: E402

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float64": torch.float64}
PAPER_EPOCHS, PAPER_SAMPLES = 400, 50_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--num-samples", type=int, default=50_000)
    p.add_argument("--in-dim", type=int, default=3072)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--depth", type=int, default=8)
    p.add_argument("--num-nonlinear", type=int, default=3)
    p.add_argument("--epochs", type=int, default=1, help="timed epochs (after a warm-up)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--alpha", type=float, default=100.0)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls on CUDA")
    p.add_argument("--compile", action="store_true", help="torch.compile the forward + loss")
    p.add_argument(
        "--cuda-graphs",
        action="store_true",
        help="replay a CUDA graph of the whole step (CUDA only)",
    )
    p.add_argument("--warmup-steps", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        nargs="?",
        const="",
        default=None,
        metavar="PATH",
        help="write a JSON result (default path benchmarks/results/train_bench-<device>.json)",
    )
    args = p.parse_args(argv)
    if args.cuda_graphs and args.compile:
        p.error("--cuda-graphs and --compile are exclusive")
    for name in ("num_samples", "in_dim", "width", "num_classes", "depth", "epochs", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def linear_params(model: HybridNetwork) -> int:
    """P = Σ_l out_l · in_l, the weights that enter the 6·N·P flop count."""
    return sum(W.numel() for W in model.weights())


def make_data(args, dev, dtype):
    g = torch.Generator(device=dev).manual_seed(args.seed)
    X = torch.randn(args.num_samples, args.in_dim, device=dev, dtype=dtype, generator=g)
    y = torch.randint(0, args.num_classes, (args.num_samples,), device=dev, generator=g)
    return X, y


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps":
        torch.mps.synchronize()


def run_library(args, model, X, y, dev) -> dict:
    """Time `pncutils.training.train` (eager or torch.compile)."""
    cfg = TrainConfig(
        lr=args.lr,
        epochs=args.epochs,
        alpha=args.alpha,
        batch_size=args.batch_size,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        schedule="constant",
        seed=args.seed,
        progress=False,
        compile=args.compile,
    )
    # warm-up: kernels, cuBLAS handles and (with --compile) compilation, on a few batches
    # of full size plus one partial batch, as the timed epochs will see
    n_warm = min(
        args.num_samples, args.warmup_steps * args.batch_size + args.num_samples % args.batch_size
    )
    warm = dataclasses.replace(cfg, epochs=1)
    train(model, X[:n_warm], y[:n_warm], warm, device=dev)
    sync(dev)
    t0 = time.perf_counter()
    hist = train(model, X, y, cfg, device=dev)
    sync(dev)
    wall = time.perf_counter() - t0
    steps = args.epochs * math.ceil(args.num_samples / args.batch_size)
    return {
        "wall_s": wall,
        "train_wall_s": hist.wall_time,
        "steps": steps,
        "samples": args.epochs * args.num_samples,
        "final_loss": hist.final_loss,
    }


def run_cuda_graphs(args, model, X, y, dev) -> dict:
    """Replay a CUDA graph of one training step (gather + forward + backward + SGD step).

    NOTE: written following the "whole-network capture" recipe of the PyTorch CUDA-graphs
    documentation, but NOT run on the machine where it was written (no GPU there).
    The learning rate is a constant (the graph bakes in the Python float), and the last
    partial batch of each epoch is dropped (a graph needs static shapes).
    """
    if dev.type != "cuda" or not torch.cuda.is_available():
        raise SystemExit(
            "--cuda-graphs needs a CUDA device: CUDA is not available here "
            f"(device {str(dev)!r}); run without --cuda-graphs"
        )
    B, N = args.batch_size, args.num_samples
    steps_per_epoch = N // B
    if steps_per_epoch == 0:
        raise SystemExit(f"--cuda-graphs needs --num-samples >= --batch-size ({B})")
    model.to(dev).train()
    Y = torch.nn.functional.one_hot(y, args.num_classes).to(X.dtype)  # (N, K), resident
    opt = torch.optim.SGD(
        model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay
    )
    static_idx = torch.arange(B, device=dev)  # the only input that changes between replays

    def step() -> torch.Tensor:
        xb, yb = X.index_select(0, static_idx), Y.index_select(0, static_idx)
        loss = (args.alpha * model(xb) - yb).square().sum(1).mean()
        loss.backward()
        opt.step()
        return loss.detach()

    # warm-up on a side stream (required before capture: it builds the optimizer state
    # and the autograd/cuBLAS workspaces outside the graph)
    side = torch.cuda.Stream(device=dev)
    side.wait_stream(torch.cuda.current_stream(dev))
    with torch.cuda.stream(side):
        for _ in range(max(3, args.warmup_steps)):
            opt.zero_grad(set_to_none=True)
            step()
    torch.cuda.current_stream(dev).wait_stream(side)

    graph = torch.cuda.CUDAGraph()
    # grads must be allocated by the graph's private pool: set them to None before capture;
    # the captured backward then writes (not accumulates) into the same tensors every replay
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        static_loss = step()

    gen = torch.Generator(device=dev).manual_seed(args.seed)
    total = torch.zeros((), device=dev, dtype=torch.float32)
    for _ in range(2):  # a couple of untimed replays
        graph.replay()
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        perm = torch.randperm(N, device=dev, generator=gen)
        total.zero_()
        for i in range(steps_per_epoch):
            static_idx.copy_(perm[i * B : (i + 1) * B])
            graph.replay()
            total += static_loss.float()
    sync(dev)
    wall = time.perf_counter() - t0
    steps = args.epochs * steps_per_epoch
    return {
        "wall_s": wall,
        "train_wall_s": wall,
        "steps": steps,
        "samples": steps * B,
        "final_loss": float(total.item()) / steps_per_epoch,
    }


def device_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "device"


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    dev = torch.device(args.device) if args.device else get_device()
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device} but CUDA is not available")
    if args.cuda_graphs and dev.type != "cuda":
        raise SystemExit(
            "--cuda-graphs needs a CUDA device, but the device is "
            f"{str(dev)!r} (CUDA available: {torch.cuda.is_available()})"
        )
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    dtype = DTYPES[args.dtype]

    model = HybridNetwork(
        args.in_dim,
        args.width,
        args.num_classes,
        args.depth,
        args.num_nonlinear,
        init="orthogonal",
        init_scale=0.1,
        generator=torch.Generator().manual_seed(args.seed),
    )
    model = model.to(device=dev, dtype=dtype)
    P = linear_params(model)
    X, y = make_data(args, dev, dtype)

    res = (
        run_cuda_graphs(args, model, X, y, dev)
        if args.cuda_graphs
        else run_library(args, model, X, y, dev)
    )
    wall, steps, samples = res["wall_s"], res["steps"], res["samples"]
    flops = 6.0 * samples * P
    out = {
        "benchmark": "train_bench",
        "mode": "cuda-graphs" if args.cuda_graphs else ("compile" if args.compile else "eager"),
        "device": device_name(dev),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "args": vars(args),
        "linear_params": P,
        "flop_formula": "6 * samples * P, P = sum_l out_l * in_l (BN/ReLU/loss ignored)",
        "wall_s": wall,
        "steps": steps,
        "samples": samples,
        "samples_per_s": samples / wall,
        "ms_per_step": 1e3 * wall / steps,
        "tflops": flops / wall / 1e12,
        "extrapolated_400_epochs_50k_s": wall / samples * PAPER_SAMPLES * PAPER_EPOCHS,
        "final_loss": res["final_loss"],
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    print(
        f"device {out['device']} | torch {out['torch']} | mode {out['mode']} | "
        f"dtype {args.dtype}{' +tf32' if args.tf32 else ''}"
    )
    print(
        f"model: HybridNetwork({args.in_dim}, {args.width}, {args.num_classes}, "
        f"depth={args.depth}, num_nonlinear={args.num_nonlinear}), P = {P:,} weights"
    )
    print(f"{steps} steps of batch {args.batch_size} ({samples:,} samples) in {wall:.3f} s")
    print(
        f"  {out['samples_per_s']:,.0f} samples/s | {out['ms_per_step']:.3f} ms/step | "
        f"{out['tflops']:.2f} TFLOP/s  (flops = 6·samples·P)"
    )
    print(
        f"  extrapolated: {PAPER_EPOCHS} epochs on {PAPER_SAMPLES:,} samples = "
        f"{out['extrapolated_400_epochs_50k_s'] / 60:.1f} min"
    )
    if args.out is not None:
        path = args.out or os.path.join(
            os.path.dirname(os.path.abspath(__file__)),
            "results",
            f"train_bench-{device_slug(out['device'])}.json",
        )
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump(out, f, indent=2)
        print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
