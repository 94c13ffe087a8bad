"""One command per experiment of the paper, each writing one small, verifiable JSON result file.

Usage::

    python -m pncutils.reproduce hybrid --scale book            # -> book/results/hybrid-book.json
    python -m pncutils.reproduce fig4 --scale quick --out /tmp  # -> /tmp/fig4-quick.json
    python -m pncutils.reproduce all --scale quick              # every experiment
    python -m pncutils.reproduce --list                         # experiments and scales

Every experiment has three **scales**, each a :class:`pncutils.book.config.Config`:

* ``quick``: seconds on a 2-core CPU (the tests and CI run it; trends may be weak);
* ``book``: what a chapter runs live on a 2-core CPU, about 2 minutes at most;
* ``paper``: the paper's sizes (a GPU is needed for ``hybrid``).

A result file holds the ``experiment``, the ``scale``, the full ``config`` (the seed
included), its ``config_hash`` (:func:`config_hash`), the provenance (``pncutils_version``,
``git_commit``, ``git_dirty``, ``torch_version``, ``device``, ``created``, ``command``), the
``wall_time_s`` of the run and the ``results``: per-layer tables as
:meth:`pncutils.metrics.LayerTable.to_dict`, loss curves subsampled to at most
:data:`MAX_CURVE_POINTS` points, and scalars. Files are written atomically (a temporary
file in the same folder, then :func:`os.replace`), so a crashed run never leaves a partial
file. Non-finite numbers are written as ``null`` (standard JSON has no NaN).

**Adding an experiment** takes a function ``fn(cfg, device) -> dict`` (the ``results``;
JSON-serialisable, tables as ``to_dict()``) and one :class:`Experiment` entry in
:data:`EXPERIMENTS` with a Config per scale; every Config has a ``seed`` parameter, which
``run(..., seed=S)`` replaces.

See Also
--------
pncutils.analysis.layer_report : the per-layer table of the trained networks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from pncutils._checks import check_choice, check_device, check_int
from pncutils.book import beyond as _beyond
from pncutils.book import transfer as _transfer
from pncutils.book.config import MAX_CURVE_POINTS, Config, Result, loss_curve
from pncutils.utils import to_plain

__all__ = [
    "SCALES",
    "REQUIRED_FIELDS",
    "MAX_CURVE_POINTS",
    "Experiment",
    "EXPERIMENTS",
    "Record",
    "config_hash",
    "default_out_dir",
    "result_path",
    "run",
    "load_result",
    "verify_result",
    "load_or_run",
    "compute",
    "hybrid_setup",
    "linear_part_floor",
    "results_overview",
    "overview_markdown",
    "PaperUse",
    "PAPER_SCALE_USES",
    "paper_scale_checks",
    "main",
]

#: The scales every experiment defines, smallest first.
SCALES: tuple[str, ...] = ("quick", "book", "paper")

#: Top-level fields of every result file.
REQUIRED_FIELDS: tuple[str, ...] = (
    "experiment",
    "scale",
    "config",
    "config_hash",
    "pncutils_version",
    "git_commit",
    "git_dirty",
    "torch_version",
    "device",
    "wall_time_s",
    "created",
    "results",
)

#: The checkout: ``pncutils/book/reproduce.py`` -> its grandparent's parent.
_REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Experiment:
    """One reproducible experiment: a function and a Config per scale.

    Parameters
    ----------
    fn : callable ``(cfg: Config, device: torch.device) -> dict``
        Runs the experiment and returns its JSON-serialisable results.
    scales : mapping of str to Config
        One Config for each of :data:`SCALES`, each with a ``seed`` parameter.
    description : str
        One line: what the experiment reproduces.
    default_device : {"auto", "cpu"}
        The device when none is requested: ``"auto"`` is
        :func:`pncutils.utils.get_device`; ``"cpu"`` suits tiny, launch-bound problems.
    result_type : subclass of :class:`pncutils.book.config.Result`, optional
        The type `fn` returns; :class:`Record` reads result files back as it.

    Examples
    --------
    >>> exp = Experiment(lambda cfg, device: {"x": cfg.x},
    ...                  {s: Config(x=1, seed=0) for s in SCALES}, "a toy")
    >>> exp.fn(exp.scales["book"], torch.device("cpu"))
    {'x': 1}
    """

    fn: Callable[[Config, torch.device], Any]
    scales: Mapping[str, Config]
    description: str
    default_device: str = "auto"
    result_type: type | None = None

    def __post_init__(self) -> None:
        if set(self.scales) != set(SCALES):
            raise ValueError(
                f"an experiment needs exactly the scales {SCALES}, got {tuple(self.scales)}"
            )
        for name, cfg in self.scales.items():
            if not isinstance(cfg, Config) or "seed" not in cfg:
                raise ValueError(f"scale {name!r} must be a Config with a 'seed' parameter")
        check_choice(self.default_device, "default_device", ("auto", "cpu"))


# ----------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------


def _canonical(obj: Any) -> str:
    """Canonical JSON text: sorted keys, no spaces, ASCII, tuples as lists, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def config_hash(experiment: str, scale: str, config: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``{"experiment", "scale", "config"}`` (64 hex digits).

    The canonical form sorts the keys, uses ``","``/``":"`` separators and ASCII, and writes
    tuples as lists and floats by their shortest round-trip ``repr``, so a config read back
    from a result file hashes to the same value as the one that was written.

    Parameters
    ----------
    experiment : str
        Experiment name, e.g. ``"hybrid"``.
    scale : str
        One of :data:`SCALES`.
    config : mapping
        The parameters (a :class:`pncutils.book.config.Config` or a plain dict).

    Returns
    -------
    str

    Examples
    --------
    >>> h = config_hash("fig4", "quick", {"depth": 6, "eps": 0.3})
    >>> len(h), h == config_hash("fig4", "quick", Config(eps=0.3, depth=6))
    (64, True)
    >>> h == config_hash("fig4", "book", {"depth": 6, "eps": 0.3})
    False
    """
    if not isinstance(experiment, str) or not isinstance(scale, str):
        raise ValueError("experiment and scale must be strings")
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be a mapping, got {type(config).__name__}")
    try:
        text = _canonical({"experiment": experiment, "scale": scale, "config": dict(config)})
    except (TypeError, ValueError) as err:
        raise ValueError(f"config is not JSON-serialisable (or holds NaN/Inf): {err}") from err
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _jsonable(obj: Any) -> Any:
    """Plain JSON types for a result file: NaN/Inf as None, anything else non-JSON refused."""
    return to_plain(obj, nan_as_none=True, strict=True)


def _dumps(obj: Any, indent: int = 0) -> str:
    """Indented JSON whose lists of numbers stay on one line (compact and diff-friendly)."""
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(k)}: {_dumps(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if all(not isinstance(v, dict | list) for v in obj):
            return "[" + ",".join(json.dumps(v, allow_nan=False) for v in obj) + "]"
        items = [f"{inner}{_dumps(v, indent + 1)}" for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(obj, allow_nan=False)


def _write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder and os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private (0600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _git(*args: str) -> str | None:
    try:
        res = subprocess.run(["git", "-C", str(_REPO_ROOT), *args], capture_output=True,
                             text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout if res.returncode == 0 else None


def _git_info() -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the checkout holding this package, or ``(None, None)``.

    ``dirty`` is True when a tracked file differs from the commit or an untracked file lies
    under ``pncutils/`` (code the commit does not contain). The result files themselves
    (``book/results/``) do not count: writing one must not make the next run "dirty". An
    installed (non-checkout) package gives ``(None, None)``.
    """
    top = _git("rev-parse", "--show-toplevel")
    if top is None or Path(top.strip()).resolve() != _REPO_ROOT:
        return None, None
    commit = _git("rev-parse", "HEAD")
    tracked = _git("status", "--porcelain", "--untracked-files=no", "--", ".",
                   ":(exclude)book/results")
    untracked = _git("status", "--porcelain", "--untracked-files=all", "--", "pncutils")
    if commit is None or tracked is None or untracked is None:
        return None, None
    dirty = bool(tracked.strip()) or any(ln.startswith("??") for ln in untracked.splitlines())
    return commit.strip(), dirty


def _round_sig(values: Any, digits: int = 4) -> list[float]:
    return [float(f"{float(v):.{digits}g}") for v in values]


def _mean_std(values: Sequence[float]) -> dict[str, float]:
    t = torch.tensor(values, dtype=torch.float64)
    std = float(t.std()) if t.numel() > 1 else 0.0
    return {"mean": float(t.mean()), "std": std}


# ----------------------------------------------------------------------------------------
# experiment "hybrid": Figures 1, 5 and F2 (8-layer hybrid and MLP on FashionMNIST)
# ----------------------------------------------------------------------------------------


def _accuracy(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int,
              device: torch.device) -> float:
    """Top-1 accuracy of the network's own logits (eval mode)."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for a in range(0, X.shape[0], batch_size):
            out = model(X[a : a + batch_size].to(device))
            correct += int((out.argmax(1).cpu() == y[a : a + batch_size].cpu()).sum())
    return correct / X.shape[0]


def _deep_summary(table: Any, first: int, last: int) -> dict[str, Any]:
    """The qualitative claims of Figures 1 and 5 on the layers ``first..last`` of a table."""
    from pncutils.metrics import linear_fit

    C = table["compression"].tolist()
    D = table["discrimination"].tolist()
    rank = [int(r) for r in table["rank"].tolist()]
    probe = table["probe_train_acc"].tolist()
    layers = list(range(first, last + 1))
    fit = linear_fit(layers, [math.log(C[i]) for i in layers])
    best = max(probe[1:])
    saturation = next(i for i in range(1, len(probe)) if probe[i] >= best - 0.01)
    diffs = [D[i + 1] - D[i] for i in range(first, last)]
    return {
        "fit_layers": layers,
        "compression_ratio_layer1_to_last": C[1] / C[last],
        "compression_ratio_first_linear_to_last": C[first + 1] / C[last],
        "compression_ratio_fit_start_to_last": C[first] / C[last],
        "log_compression_fit": {"slope": fit.slope, "intercept": fit.intercept, "r2": fit.r2,
                                "rate": math.exp(fit.slope)},
        "discrimination_change_over_fit_layers": D[last] - D[first],
        "discrimination_increasing_steps": sum(d > 0 for d in diffs),
        "discrimination_max_layer": max(range(1, len(D)), key=lambda i: D[i]),
        "rank_layer1": rank[1],
        "rank_last": rank[last],
        "probe_train_acc_max": best,
        "probe_saturation_layer": saturation,
    }


def linear_part_floor(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, alpha: float,
                      batch_size: int = 4096) -> dict[str, Any]:
    """The analytic floor of ``C_l`` over the linear layers of a trained hybrid network.

    The linear layers ``W_{m+1}, ..., W_L`` of a :class:`pncutils.models.HybridNetwork` with
    ``m`` nonlinear blocks form a deep linear network of depth ``L - m`` whose input is
    ``H_m``, the features after the last nonlinear block (eval mode: BatchNorm with its
    running statistics, as every metric of the book). On that input,
    :func:`pncutils.theory.compression_floor` gives the floor ``F_l`` (``l = m..L``) of the
    minimum-norm least-squares map ``W* = alpha^{-1} Y^T (H_m^+)^T``: at the hidden layers
    ``m < l < L`` the ``C_l`` of a balanced network that realises ``W*``, in the limit of
    vanishing bulk singular values; at ``l = L`` the compression of the least-squares fit
    itself; at ``l = m`` that of ``H_m`` projected on the row space of ``W*``. It is nonzero when
    ``H_m`` cannot be fitted exactly (``N > width`` here); it is what training the linear
    part to its optimum on the final ``H_m`` would reach. The trained network realises its
    own end-to-end map ``A = W_L ... W_{m+1}`` instead; its distance to ``W*`` and the two
    losses say how far it is from that optimum (weight decay, finite training, and the
    nonlinear blocks that moved while the linear layers trained).

    Parameters
    ----------
    model : pncutils.models.HybridNetwork
        The trained network (``num_nonlinear = m``, ``depth = L``); restored to its mode.
    X : Tensor, shape (N, D_in)
        Training inputs.
    y : Tensor, shape (N,)
        Labels in ``[0, K)``.
    alpha : float
        The output scale of the loss ``||alpha f(x) - y||^2`` (the floor does not depend on
        it; the losses do).
    batch_size : int, default 4096

    Returns
    -------
    dict
        ``layers`` (``m..L``), ``least_squares_floor`` (``F_l`` at those layers, the last the
        compression of the least-squares fit), ``end_to_end_compression`` (``C`` of
        ``H_m A^T``: the network's outputs, measured without BatchNorm in the way),
        ``least_squares_loss`` and ``network_loss`` (``(1/N) sum ||alpha h A^T - y||^2`` over
        the training set, eval mode) and ``map_distance`` (``||A - W*||_F / ||W*||_F``).

    Examples
    --------
    >>> from pncutils.models import HybridNetwork
    >>> g = torch.Generator().manual_seed(0)
    >>> net = HybridNetwork(6, 8, 2, depth=4, num_nonlinear=1, generator=g)
    >>> X = torch.randn(40, 6, generator=g); y = torch.arange(40) % 2
    >>> f = linear_part_floor(net, X, y, alpha=1.0)
    >>> f["layers"], len(f["least_squares_floor"])
    ([1, 2, 3, 4], 4)
    >>> f["least_squares_loss"] <= f["network_loss"]  # W* is the best linear map of H_1
    True

    Raises
    ------
    ValueError
        A model without ``features``, ``weights``, ``num_nonlinear`` and ``depth`` (a
        :class:`pncutils.models.HybridNetwork`), or ``X`` and ``y`` of mismatched shapes.

    Used in: ch05.
    """
    from pncutils.metrics import compression
    from pncutils.theory import compression_floor, least_squares_map

    if not all(hasattr(model, a) for a in ("features", "weights", "num_nonlinear", "depth")):
        raise ValueError("model must be a pncutils.models.HybridNetwork (features, weights, "
                         f"num_nonlinear, depth), got {type(model).__name__}")
    if not (isinstance(X, torch.Tensor) and isinstance(y, torch.Tensor) and X.ndim == 2
            and y.ndim == 1 and X.shape[0] == y.shape[0]):
        shapes = [tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
                  for v in (X, y)]
        raise ValueError(f"X must be an (N, D_in) tensor and y an (N,) tensor, got {shapes}")
    m, L = int(model.num_nonlinear), int(model.depth)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    p = next(model.parameters())
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            H = torch.cat([model.features(X[a : a + batch_size].to(p.device, p.dtype))[m]
                           .to("cpu", torch.float64) for a in range(0, X.shape[0], batch_size)])
    finally:
        model.train(was_training)
    y = y.to("cpu")
    Ws = [W.to("cpu", torch.float64) for W in model.weights()[m:]]
    A = Ws[0]
    for W in Ws[1:]:
        A = W @ A  # (K, width)
    W_star = least_squares_map(H, y, alpha)
    Y = torch.nn.functional.one_hot(y, A.shape[0]).to(torch.float64)
    floor = compression_floor(H, y, depth=L - m, alpha=alpha)
    return {
        "layers": list(range(m, L + 1)),
        "least_squares_floor": floor.compression.tolist(),
        "end_to_end_compression": float(compression(H @ A.T, y)),
        "least_squares_loss": float((alpha * H @ W_star.T - Y).square().sum(1).mean()),
        "network_loss": float((alpha * H @ A.T - Y).square().sum(1).mean()),
        "map_distance": float(torch.linalg.norm(A - W_star) / torch.linalg.norm(W_star)),
    }


def hybrid_setup(cfg: Config, network: str, in_dim: int, num_classes: int) -> tuple[Any, Any]:
    """The untrained network and the training configuration of one network of ``hybrid``.

    Parameters
    ----------
    cfg : Config
        A Config of the ``hybrid`` experiment (e.g. ``EXPERIMENTS["hybrid"].scales["quick"]``,
        possibly ``.replace(hybrid_nonlinear=5)``).
    network : {"hybrid", "mlp"}
        Which of the two: selects ``<network>_nonlinear``, ``<network>_lr`` and
        ``<network>_alpha``.
    in_dim, num_classes : int
        Input dimension and number of classes of the data.

    Returns
    -------
    net : pncutils.models.HybridNetwork
        Orthogonally initialised (scale ``cfg.init_scale``) from ``cfg.seed``.
    tcfg : pncutils.training.TrainConfig
        Mini-batch SGD with momentum, weight decay and a cosine schedule.

    Examples
    --------
    >>> cfg = EXPERIMENTS["hybrid"].scales["quick"]
    >>> net, tcfg = hybrid_setup(cfg.replace(hybrid_nonlinear=5), "hybrid", 784, 10)
    >>> net.num_nonlinear, tcfg.alpha, tcfg.epochs == cfg.epochs
    (5, 100.0, True)
    """
    from pncutils.models import HybridNetwork
    from pncutils.training import TrainConfig

    check_choice(network, "network", ("hybrid", "mlp"))
    gen = torch.Generator().manual_seed(cfg.seed)
    net = HybridNetwork(in_dim, cfg.width, num_classes, cfg.depth, cfg[f"{network}_nonlinear"],
                        init="orthogonal", init_scale=cfg.init_scale, generator=gen)
    tcfg = TrainConfig(
        lr=cfg[f"{network}_lr"], epochs=cfg.epochs, alpha=cfg[f"{network}_alpha"],
        batch_size=cfg.batch_size, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
        schedule="cosine", min_lr_ratio=cfg.min_lr_ratio, seed=cfg.seed,
        progress=None,  # one long run per network: a bar when someone watches
    )
    return net, tcfg


def _hybrid(cfg: Config, device: torch.device) -> dict[str, Any]:
    """Train the hybrid and the MLP on FashionMNIST; report every layer (Figures 1, 5, F2)."""
    from pncutils.analysis import layer_report, pca_projection
    from pncutils.book.beyond import layer_metrics
    from pncutils.data import load_dataset
    from pncutils.training import train

    X, y = load_dataset(cfg.dataset, "train", num_per_class=cfg.num_per_class)
    X_test, y_test = load_dataset(cfg.dataset, "test", num_per_class=cfg.test_per_class)
    K = int(y.max()) + 1
    # the first samples of each class (file order) for the 2-D projections
    m = cfg.pca_samples // K
    pca_idx = torch.cat([torch.nonzero(y == k).flatten()[:m] for k in range(K)]).sort().values
    out: dict[str, Any] = {
        "num_train": X.shape[0],
        "num_test": X_test.shape[0],
        "input_dim": X.shape[1],
        "num_classes": K,
        "networks": {},
    }
    for name in ("hybrid", "mlp"):
        num_nonlinear = cfg[f"{name}_nonlinear"]
        net, tcfg = hybrid_setup(cfg, name, X.shape[1], K)
        hist = train(net, X, y, tcfg, device=device)
        t0 = time.perf_counter()
        table = layer_report(net, X, y, X_test, y_test, batch_size=cfg.eval_batch_size,
                             energy=cfg.energy, probe_ridge=cfg.probe_ridge, device=device)
        # C_L and D_L of the outputs: the level the hidden layers' C_l settles on (chapter 5)
        logits = layer_metrics(net, X, y, cfg.eval_batch_size)[1].to_dict()
        # ... and the analytic floor of the linear layers on the final H_m (chapter 5)
        floor = linear_part_floor(net, X, y, tcfg.alpha, cfg.eval_batch_size)
        with torch.no_grad():
            feats = net.features(X[pca_idx].to(device))
        pca: dict[str, Any] = {"layers": list(cfg.pca_layers),
                               "labels": y[pca_idx].tolist(), "x": [], "y": [],
                               "explained_variance_ratio": []}
        for layer in cfg.pca_layers:
            H = feats[layer].detach().to("cpu", torch.float64)
            P = pca_projection(H, 2)
            total = float((H - H.mean(0)).square().sum())
            pca["x"].append(_round_sig(P[:, 0]))
            pca["y"].append(_round_sig(P[:, 1]))
            pca["explained_variance_ratio"].append(_round_sig(P.square().sum(0) / total))
        analysis_s = time.perf_counter() - t0
        out["networks"][name] = {
            "num_nonlinear": num_nonlinear,
            "alpha": tcfg.alpha,
            "lr": tcfg.lr,
            "train_wall_time_s": hist.wall_time,
            "analysis_wall_time_s": analysis_s,
            "epochs_run": hist.epochs_run,
            "final_loss": hist.final_loss,
            "loss_curve": loss_curve(hist.loss),
            "train_acc": _accuracy(net, X, y, cfg.eval_batch_size, device),
            "test_acc": _accuracy(net, X_test, y_test, cfg.eval_batch_size, device),
            "layers": table.to_dict(),
            "logits": {k: v[0] for k, v in logits.items()},
            "linear_floor": floor,
            "summary": _deep_summary(table, cfg.hybrid_nonlinear, cfg.depth - 1),
            "pca": pca,
        }
    return out


_HYBRID_COMMON = dict(
    dataset="fashion_mnist",  # the offline stand-in for CIFAR-10
    depth=8,  # L weight matrices, classifier included
    hybrid_nonlinear=3,  # 3 Linear-BN-ReLU blocks + 4 linear layers + classifier
    mlp_nonlinear=7,  # 7 Linear-BN-ReLU blocks + classifier
    hybrid_alpha=100.0,  # output scale of the hybrid's loss (reference: 100)
    mlp_alpha=1.0,  # output scale of the MLP's loss (reference: 1)
    init_scale=0.1,  # orthogonal initialisation scale xi
    batch_size=128,
    momentum=0.9,
    weight_decay=1e-4,
    min_lr_ratio=0.01,  # cosine floor lr/100, as train_cifar.py
    pca_layers=[1, 2, 4, 6],  # the layers of F2
    eval_batch_size=4096,
    energy=0.95,  # numerical rank: 95% of the nuclear norm
    probe_ridge=1e-6,
    seed=0,
)

# Quick: N = 500 images in d = 784; book and paper: N > d. The linear layers see H_3, N rows
# in the width (128, 256, 1024), so N > width at every scale: no linear map of H_3 fits every
# label, and C_l levels off at a floor near the least-squares floor (linear_part_floor, ch05).
# Learning rates: the paper scale uses the paper's settings, lr 1e-4 for 400 epochs of
# 469 mini-batches (the paper's CIFAR-10 run has 391 per epoch). The quick and book scales
# train for 600 and 1 880 steps only, so they use 1e-2 for both networks (about the paper's
# lr x steps); 5e-2 made the MLP diverge in its first epoch.
_HYBRID_SCALES = {
    "quick": Config(num_per_class=50, test_per_class=200, width=128, epochs=150,
                    hybrid_lr=1e-2, mlp_lr=1e-2, pca_samples=300, **_HYBRID_COMMON),
    "book": Config(num_per_class=600, test_per_class=600, width=256, epochs=40,
                   hybrid_lr=1e-2, mlp_lr=1e-2, pca_samples=1000, **_HYBRID_COMMON),
    "paper": Config(num_per_class=None, test_per_class=None, width=1024, epochs=400,
                    hybrid_lr=1e-4, mlp_lr=1e-4, pca_samples=1000, **_HYBRID_COMMON),
}


# ----------------------------------------------------------------------------------------
# experiment "fig4": the theorem check on synthetic nearly orthogonal data
# ----------------------------------------------------------------------------------------


def _fig4(cfg: Config, device: torch.device) -> dict[str, Any]:
    """Figure 4: chapter 3's experiment (:func:`experiments.synthetic_runs`, the same seeding:
    independent data and weight streams per seed) and its comparison with the theory."""
    from pncutils import theory
    from pncutils.book.experiments import synthetic_runs

    runs = synthetic_runs(
        cfg.num_classes, cfg.num_per_class, cfg.dim, cfg.depth, cfg.init_scale, cfg.alpha,
        num_seeds=cfg.num_seeds, width=cfg.width, lr=cfg.lr, max_epochs=cfg.epochs,
        loss_threshold=cfg.loss_threshold, schedule_epochs=cfg.epochs,
        min_lr_ratio=cfg.min_lr_ratio, perturbation=cfg.perturbation, seed=cfg.seed,
        device=device)
    ideal = theory.ideal_compression_rate(cfg.init_scale, cfg.alpha, cfg.num_per_class,
                                          cfg.depth)
    per_seed = [_fig4_seed(cfg, runs, s) for s in range(cfg.num_seeds)]
    measured_rates = [p["measured_rate"] for p in per_seed]
    mean_rate = sum(measured_rates) / len(measured_rates)
    predicted_mean = sum(p["predicted_rate"] for p in per_seed) / len(per_seed)
    return {
        "base_seed": cfg.seed,
        "seeds": list(range(cfg.num_seeds)),  # the streams s of base seed `base_seed`
        "ideal_rate": ideal,
        "per_seed": per_seed,
        "summary": {
            "all_converged": all(p["converged"] for p in per_seed),
            "epochs_run": _mean_std([p["epochs_run"] for p in per_seed]),
            "measured_rate": _mean_std(measured_rates),
            "predicted_rate": _mean_std([p["predicted_rate"] for p in per_seed]),
            "ideal_rate": ideal,
            "relative_error_measured_vs_ideal": mean_rate / ideal - 1.0,
            "relative_error_measured_vs_predicted": mean_rate / predicted_mean - 1.0,
            "compression_layer0": _mean_std([p["measured"]["compression"][0] for p in per_seed]),
            "log_compression_fit_r2_min": min(p["log_compression_fit"]["r2"] for p in per_seed),
            "discrimination_slope": _mean_std([p["discrimination_fit"]["slope"]
                                               for p in per_seed]),
            "predicted_discrimination_slope": _mean_std(
                [p["predicted_discrimination_slope"] for p in per_seed]),
            "discrimination_fit_r2_min": min(p["discrimination_fit"]["r2"] for p in per_seed),
            "discrimination_max_abs_error": max(p["discrimination_max_abs_error"]
                                                for p in per_seed),
        },
    }


def _fig4_seed(cfg: Config, runs: Any, s: int) -> dict[str, Any]:
    """The per-seed record of Figure 4: measured, predicted, fits and assumption checks."""
    from pncutils import theory
    from pncutils.metrics import geometric_rate, linear_fit

    X, y, net, hist = runs.X[s], runs.y, runs.models[s], runs.histories[s]
    measured, predicted = runs.measured[s], runs.predicted[s]
    layers = list(range(cfg.depth))
    C, D = measured.compression.tolist(), measured.discrimination.tolist()
    D_pred = predicted.discrimination.tolist()
    c_fit = linear_fit(layers, [math.log(c) for c in C])
    d_fit = linear_fit(layers[1:], D[1:])
    return {
        "seed": s,
        "epochs_run": hist.epochs_run,
        "converged": hist.converged,
        "final_loss": hist.final_loss,
        "loss_curve": loss_curve(hist.loss),
        "orthogonality_gap": theory.orthogonality_gap(X, "max"),
        "measured": measured.to_dict(),
        "predicted": predicted.to_dict(),
        "first_order_discrimination": runs.first_order[s].to_dict(),
        "measured_rate": geometric_rate(C[1:]),
        "predicted_rate": geometric_rate(predicted.compression.tolist()[1:]),
        "log_compression_fit": {"slope": c_fit.slope, "intercept": c_fit.intercept,
                                "r2": c_fit.r2},
        "discrimination_fit": {"slope": d_fit.slope, "intercept": d_fit.intercept,
                               "r2": d_fit.r2},
        "predicted_discrimination_slope": linear_fit(layers[1:], D_pred[1:]).slope,
        "discrimination_max_abs_error": max(abs(a - b) for a, b in zip(D[1:], D_pred[1:],
                                                                        strict=True)),
        "min_norm_residual": theory.min_norm_residual(net, X, y, cfg.alpha),
        "balancedness": theory.balancedness(net),
        "bulk_singular_values": _mean_std(
            theory.bulk_singular_values(net, cfg.num_classes).flatten().tolist()),
    }


_FIG4_COMMON = dict(
    num_classes=3,  # K
    num_per_class=10,  # n, so N = 30
    dim=50,  # input dimension d
    width=50,  # hidden width
    depth=6,  # L weight matrices (5 hidden layers + classifier), as theory.ipynb
    init_scale=0.3,  # orthogonal initialisation scale xi
    alpha=100.0,  # output scale of the loss
    perturbation=1.0,  # Frobenius norm of the perturbation of the orthonormal data
    lr=0.1,  # full-batch gradient descent
    epochs=5000,  # cosine period T = epochs, down to lr/10
    min_lr_ratio=0.1,
    loss_threshold=1e-11,  # stop below this loss
    seed=0,  # base seed: streams (seed, s), s < num_seeds, as in chapter 3 (seed_stream)
)

_FIG4_SCALES = {
    "quick": Config(num_seeds=3, **_FIG4_COMMON),
    "book": Config(num_seeds=10, **_FIG4_COMMON),
    "paper": Config(num_seeds=10, **_FIG4_COMMON),  # the book scale is the paper's
}

# ----------------------------------------------------------------------------------------
# experiment "fig6": the assumption grid (min-norm residual, balance, flat bulk)
# ----------------------------------------------------------------------------------------


def _fig6(cfg: Config, device: torch.device) -> dict[str, Any]:
    """Train the (depth, width) grid of Figure 6 and measure the weight assumptions."""
    from pncutils.book.experiments import assumption_grid, grid_points, grid_summary

    grid = grid_points(cfg.depths, cfg.width_for_depths, cfg.widths, cfg.depth_for_widths)
    runs = assumption_grid(
        grid, cfg.num_seeds, cfg.init_scale, cfg.alpha, cfg.lr, cfg.max_epochs,
        cfg.loss_threshold, cfg.max_epochs, cfg.min_lr_ratio, num_classes=cfg.num_classes,
        num_per_class=cfg.num_per_class, dim=cfg.dim, seed=cfg.seed, device=device,
    )
    summary = grid_summary(runs)
    return {
        "grid": [list(p) for p in grid],
        "runs": runs.to_dict(),
        "summary": summary.to_dict(),
        "all_converged": bool(runs.converged.all()),
        "residual_max": float(runs.residual.max()),
        "balance_max": float(runs.balance.max()),
        "bulk_variance_max": float(runs.bulk_variance.max()),
    }


_FIG6_COMMON = dict(
    num_classes=3, num_per_class=10, dim=50,  # the paper's N = 30, d = 50, K = 3
    init_scale=0.1,  # orthogonal xi of assumption/train.py
    alpha=1.0,
    lr=0.1,  # full-batch GD, cosine decay to 1e-4 over 1e5 epochs (also the budget)
    min_lr_ratio=1e-3,
    max_epochs=100_000,
    loss_threshold=1e-10,
    seed=0,
)

_FIG6_SCALES = {
    "quick": Config(depths=[2, 3, 4], width_for_depths=100, widths=[100, 150, 200],
                    depth_for_widths=3, num_seeds=2, **_FIG6_COMMON),
    "book": Config(depths=[2, 3, 4, 5], width_for_depths=400, widths=[200, 400, 700],
                   depth_for_widths=5, num_seeds=2, **_FIG6_COMMON),
    "paper": Config(depths=[2, 3, 4, 5], width_for_depths=400,
                    widths=[200, 300, 400, 500, 600, 700], depth_for_widths=5, num_seeds=10,
                    **_FIG6_COMMON),
}


# ----------------------------------------------------------------------------------------
# experiment "fig3b": a deep nonlinear (Linear-BN-ReLU) network on the synthetic data
# ----------------------------------------------------------------------------------------


def _fig3b(cfg: Config, device: torch.device) -> dict[str, Any]:
    """Train `num_seeds` nonlinear MLPs on nearly orthogonal data; C and D per layer."""
    from pncutils.data import orthogonal_dataset
    from pncutils.metrics import layerwise, linear_fit
    from pncutils.models import HybridNetwork
    from pncutils.training import TrainConfig, train

    per_seed = []
    for s in range(cfg.seed, cfg.seed + cfg.num_seeds):
        gen = torch.Generator().manual_seed(s)  # data first, then the weights
        X, y = orthogonal_dataset(cfg.num_classes, cfg.num_per_class, cfg.dim,
                                  cfg.perturbation, generator=gen)
        net = HybridNetwork(cfg.dim, cfg.width, cfg.num_classes, cfg.depth, cfg.depth - 1,
                            init="orthogonal", init_scale=cfg.init_scale, generator=gen)
        tcfg = TrainConfig(lr=cfg.lr, epochs=cfg.epochs, alpha=cfg.alpha, schedule="cosine",
                           min_lr_ratio=cfg.min_lr_ratio, loss_threshold=cfg.loss_threshold,
                           seed=s, progress=False)
        hist = train(net, X, y, tcfg, device=device)
        net.eval()
        with torch.no_grad():
            table = layerwise(net.features(X.to(device)), y, num_classes=cfg.num_classes)
        C, D = table.compression.tolist(), table.discrimination.tolist()
        layers = list(range(len(C)))
        c_fit = linear_fit(layers, [math.log(c) for c in C])
        d_fit = linear_fit(layers[1:], D[1:])
        per_seed.append({
            "seed": s, "epochs_run": hist.epochs_run, "final_loss": hist.final_loss,
            "loss_curve": loss_curve(hist.loss), "layers": table.to_dict(),
            "log_compression_fit": {"slope": c_fit.slope, "intercept": c_fit.intercept,
                                    "r2": c_fit.r2, "rate": math.exp(c_fit.slope)},
            "discrimination_fit": {"slope": d_fit.slope, "intercept": d_fit.intercept,
                                   "r2": d_fit.r2},
        })
    n = len(per_seed)
    L = len(per_seed[0]["layers"]["compression"])
    mean_C = [math.exp(sum(math.log(p["layers"]["compression"][i]) for p in per_seed) / n)
              for i in range(L)]
    mean_D = [sum(p["layers"]["discrimination"][i] for p in per_seed) / n for i in range(L)]
    return {
        "per_seed": per_seed,
        "summary": {
            "compression_geometric_mean": mean_C,
            "discrimination_mean": mean_D,
            "compression_ratio_first_to_last": mean_C[0] / mean_C[-1],
            "rate": _mean_std([p["log_compression_fit"]["rate"] for p in per_seed]),
            "log_compression_fit_r2": _mean_std([p["log_compression_fit"]["r2"]
                                                 for p in per_seed]),
            "discrimination_slope": _mean_std([p["discrimination_fit"]["slope"]
                                               for p in per_seed]),
            "discrimination_fit_r2": _mean_std([p["discrimination_fit"]["r2"]
                                                for p in per_seed]),
            "final_loss_max": max(p["final_loss"] for p in per_seed),
        },
    }


_FIG3B_COMMON = dict(
    num_classes=3, num_per_class=10, dim=50, perturbation=1.0,  # the paper's synthetic data
    width=50,
    depth=10,  # 9 Linear-BN-ReLU blocks + the classifier, as the figure's 10-layer network
    init_scale=0.3,  # [R]: the figure's xi is not given
    alpha=1.0,  # [R]: the figure's alpha is not given
    lr=0.1,  # full-batch GD, cosine down to lr/10, as theory.ipynb
    min_lr_ratio=0.1,
    loss_threshold=1e-11,  # stop below this loss, as theory.ipynb (about 100-350 epochs)
    seed=0,
)

_FIG3B_SCALES = {
    "quick": Config(epochs=1000, num_seeds=2, **_FIG3B_COMMON),
    "book": Config(epochs=5000, num_seeds=5, **_FIG3B_COMMON),
    "paper": Config(epochs=5000, num_seeds=10, **_FIG3B_COMMON),
}


#: The registry: experiment name -> :class:`Experiment`.
EXPERIMENTS: dict[str, Experiment] = {
    "hybrid": Experiment(
        _hybrid, _HYBRID_SCALES,
        "Figures 1, 5 and F2: the 8-layer hybrid (alpha=100) and MLP (alpha=1) on FashionMNIST: "
        "per-layer C, D, NC1, rank, probes, PCA",
    ),
    "fig4": Experiment(
        _fig4, _FIG4_SCALES,
        "Figure 4: 6-layer DLNs trained by GD on nearly orthogonal data vs the closed-form "
        "predictions (rate of C, slope of D)",
        default_device="cpu",
    ),
    "fig6": Experiment(
        _fig6, _FIG6_SCALES,
        "Figure 6: the assumption grid (depths 2-5 at width 400, widths 200-700 at depth 5): "
        "min-norm residual, balance, bulk variance over seeds",
        default_device="cpu",
    ),
    "fig3b": Experiment(
        _fig3b, _FIG3B_SCALES,
        "F3b: a 10-layer Linear-BN-ReLU network on the synthetic data: C and D per layer",
        default_device="cpu",
    ),
    "fig7": Experiment(
        _beyond.run, _beyond.SCALES,
        "F7: deep linear networks (L = 5, 7, 9) from PyTorch's default init on "
        "FashionMNIST; cross-entropy, weight decay, small init, N > d; fit of log C_l",
        result_type=_beyond.Fig7Result,
    ),
    "transfer": Experiment(
        _transfer.run, _transfer.SCALES,
        "F8 (toy, design [R]): FashionMNIST extractor pre-trained on classes 0-4 with "
        "an m-layer linear head (m = 1..5), head discarded, ridge probe on classes 5-9",
        result_type=_transfer.TransferResult,
    ),
}


@dataclass(frozen=True)
class PaperUse:
    """One use of an experiment's paper-scale result file by a chapter.

    Parameters
    ----------
    chapter : str
        e.g. ``"ch05"``.
    claim : str
        What the chapter asserts on the file, or shows from it.
    asserted : bool, default True
        False where the chapter only prints or draws the result.
    recomputed : bool, default False
        True where the chapter reruns the paper scale when the file is missing (cheap CPU
        experiments), so that the claim is checked either way.
    """

    chapter: str
    claim: str
    asserted: bool = True
    recomputed: bool = False


#: What the chapters do with each experiment's paper-scale result file. An asserted claim is
#: checked only where the file exists (or is recomputed): until then it waits. Keep it in
#: step with the chapters' ``if paper is not None`` blocks; :func:`paper_scale_checks`
#: reports which uses are live in a checkout.
PAPER_SCALE_USES: dict[str, tuple[PaperUse, ...]] = {
    "hybrid": (
        PaperUse("ch05", "C_1/C_7 > 10 and C_l - C_L geometric over the linear layers "
                         "(R^2 of log(C_l - C_L) > 0.95)"),
        PaperUse("ch08", "the same two claims as chapter 5"),
    ),
    "fig4": (
        PaperUse("ch08", "all networks converge; the measured rate within 3% of the idealised "
                         "rate; C_0 within 1.0 of 13.5", recomputed=True),
    ),
    "fig6": (
        PaperUse("ch08", "all 90 networks converge; a flat bulk; min-norm residuals within 11% "
                         "and balance errors within 1% of the authors' notebook"),
    ),
    "fig3b": (PaperUse("ch05", "drawn beside the live run", asserted=False),),
    "fig7": (PaperUse("ch06", "fits printed and drawn", asserted=False),),
    "transfer": (PaperUse("ch07", "table printed and drawn", asserted=False),),
}


def paper_scale_checks(results_dir: str | os.PathLike[str] | None = None
                       ) -> list[dict[str, Any]]:
    """Which uses of the paper-scale results are live in this checkout, and which wait.

    Parameters
    ----------
    results_dir : path, optional
        Where the committed files are; :func:`default_out_dir` when omitted.

    Returns
    -------
    list of dict
        One row per :class:`PaperUse` of :data:`PAPER_SCALE_USES`: ``experiment, chapter,
        claim, asserted, committed`` (a current paper-scale file is there) and ``status``:
        "checked" (asserted on the file, or on a rerun when it is missing), "waiting for the
        file" (asserted, but no file: not checked), "shown" or "not shown" (never asserted).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     rows = paper_scale_checks(d)
    >>> sorted({r["status"] for r in rows})
    ['checked', 'not shown', 'waiting for the file']
    >>> [r["experiment"] for r in rows if r["status"] == "checked"]  # rerun when missing
    ['fig4']

    Used in: ch08.
    """
    folder = Path(results_dir) if results_dir is not None else default_out_dir()
    rows = []
    for name, uses in PAPER_SCALE_USES.items():
        _experiment(name)
        path = result_path(name, "paper", folder)
        committed = False
        if path.is_file():
            try:
                verify_result(load_result(path), against_registry=True)
                committed = True
            except ValueError:
                committed = False
        for use in uses:
            if use.asserted:
                status = "checked" if committed or use.recomputed else "waiting for the file"
            else:
                status = "shown" if committed else "not shown"
            rows.append({"experiment": name, "chapter": use.chapter, "claim": use.claim,
                         "asserted": use.asserted, "committed": committed, "status": status})
    return rows


@dataclass(frozen=True)
class Record:
    """A verified result file, typed: its provenance and the experiment's :class:`Result`.

    Attributes
    ----------
    experiment, scale : str
    config : Config
        The parameters of the run (the seed included).
    result : Result or dict
        ``results`` read back as the experiment's ``result_type`` (a dict for an experiment
        without one).
    meta : dict
        The other fields of the file: ``config_hash``, ``git_commit``, ``git_dirty``,
        ``device``, ``wall_time_s``, ``created``, ``pncutils_version``, ``torch_version``...

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     rec = Record.from_dict(load_result(run("fig4", "quick", out_dir=d)))
    >>> rec.experiment, rec.config.depth, rec.meta["device"]
    ('fig4', 6, 'cpu')
    """

    experiment: str
    scale: str
    config: Config
    result: Any
    meta: Mapping[str, Any]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        """From the parsed content of a result file (see :func:`load_result`)."""
        exp = _experiment(data["experiment"])
        results = data["results"]
        result = exp.result_type.from_dict(results) if exp.result_type else results
        meta = {k: v for k, v in data.items()
                if k not in ("experiment", "scale", "config", "results")}
        return cls(data["experiment"], data["scale"], Config(**data["config"]), result, meta)


# ----------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------


def _experiment(name: Any) -> Experiment:
    if name not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {tuple(EXPERIMENTS)}, got {name!r}")
    return EXPERIMENTS[name]


def _scale(scale: Any) -> str:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    return scale


def default_out_dir() -> Path:
    """Where result files go by default: ``book/results`` of the checkout, else of the cwd.

    Returns
    -------
    Path

    Examples
    --------
    >>> default_out_dir().parts[-2:]
    ('book', 'results')
    >>> default_out_dir() == _REPO_ROOT / "book" / "results"  # in a checkout: from any cwd
    True
    """
    if (_REPO_ROOT / "book").is_dir() and (_REPO_ROOT / "pyproject.toml").is_file():
        return _REPO_ROOT / "book" / "results"
    return Path.cwd() / "book" / "results"


def result_path(experiment: str, scale: str, out_dir: str | os.PathLike[str] | None = None,
                seed: int = 0) -> Path:
    """The file a run writes: ``<out_dir>/<experiment>-<scale>.json`` (``-seed<S>`` if S > 0).

    Parameters
    ----------
    experiment : str
        A key of :data:`EXPERIMENTS`.
    scale : str
        One of :data:`SCALES`.
    out_dir : path, optional
        Folder; :func:`default_out_dir` when omitted.
    seed : int, default 0

    Returns
    -------
    Path

    Examples
    --------
    >>> result_path("fig4", "book", "/tmp").as_posix(), result_path("fig4", "book", "/tmp", 3).name
    ('/tmp/fig4-book.json', 'fig4-book-seed3.json')
    """
    _experiment(experiment)
    _scale(scale)
    seed = check_int(seed, "seed", minimum=0)
    folder = Path(out_dir) if out_dir is not None else default_out_dir()
    suffix = f"-seed{seed}" if seed else ""
    return folder / f"{experiment}-{scale}{suffix}.json"


def _resolve_device(exp: Experiment, device: torch.device | str | None) -> torch.device:
    from pncutils.utils import get_device

    if device is None:
        return get_device() if exp.default_device == "auto" else torch.device("cpu")
    dev = check_device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(dev)!r} requested but CUDA is not available")
    return dev


def run(
    experiment: str,
    scale: str = "quick",
    device: torch.device | str | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> Path:
    """Run one experiment at one scale and write its result file; return the file's path.

    Parameters
    ----------
    experiment : str
        A key of :data:`EXPERIMENTS` (``"hybrid"``, ``"fig4"``).
    scale : {"quick", "book", "paper"}, default "quick"
    device : torch.device or str, optional
        Where to train; the experiment's default (:func:`pncutils.utils.get_device`, or the
        CPU for tiny synthetic problems) when omitted.
    out_dir : path, optional
        Folder of the result file (created if needed); :func:`default_out_dir` when omitted.
    seed : int, default 0
        Replaces the Config's ``seed`` (and so enters the config hash and the file name).

    Returns
    -------
    Path
        :func:`result_path` ``(experiment, scale, out_dir, seed)``, written atomically.

    Raises
    ------
    ValueError
        Unknown experiment or scale (the message lists the allowed ones), a bad seed or
        device, or missing data (:class:`pncutils.data.DatasetNotFoundError`).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = run("fig4", "quick", out_dir=d)
    ...     verify_result(path); path.name
    'fig4-quick.json'
    """
    exp = _experiment(experiment)
    scale = _scale(scale)
    seed = check_int(seed, "seed", minimum=0)
    path = result_path(experiment, scale, out_dir, seed)
    dev = _resolve_device(exp, device)
    cfg = exp.scales[scale].replace(seed=seed)

    import pncutils
    from pncutils.utils import device_name, seed_everything

    seed_everything(seed)  # the experiments draw from explicit generators; this is a guard
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    results = exp.fn(cfg, dev)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    wall = time.perf_counter() - t0
    commit, dirty = _git_info()
    config = _jsonable(cfg.to_dict())
    record = {
        "experiment": experiment,
        "scale": scale,
        "config": config,
        "config_hash": config_hash(experiment, scale, config),
        "pncutils_version": pncutils.__version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "torch_version": torch.__version__,
        "device": device_name(dev),
        "wall_time_s": wall,
        "created": created,
        "command": f"python -m pncutils.reproduce {experiment} --scale {scale} --seed {seed}",
        "description": exp.description,
        "results": _jsonable(results),
    }
    _write_atomic(path, _dumps(record) + "\n")
    return path


def load_result(path: str | os.PathLike[str], verify: bool = True) -> dict[str, Any]:
    """Read a result file (and, by default, check it with :func:`verify_result`).

    Parameters
    ----------
    path : path
        A file written by :func:`run`.
    verify : bool, default True
        Raise a ValueError if a field is missing or the hash does not match the config.

    Returns
    -------
    dict

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     res = load_result(run("fig4", "quick", out_dir=d))
    >>> res["experiment"], res["results"]["summary"]["all_converged"]
    ('fig4', True)
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    if verify:
        verify_result(data)
    return data


def verify_result(result: str | os.PathLike[str] | Mapping[str, Any],
                  against_registry: bool = False) -> None:
    """Check a result file or dict: every field present and the hash matching the config.

    Parameters
    ----------
    result : path or mapping
        A result file written by :func:`run`, or its parsed content.
    against_registry : bool, default False
        Also require that the experiment is registered and that its config equals the
        registered Config of that scale (with the file's seed): the file is up to date.

    Raises
    ------
    ValueError
        Naming the problem: a missing field, a field of the wrong type, an unknown scale,
        a ``config_hash`` that does not match the config, or (with `against_registry`) a
        config that differs from the registered one.

    Examples
    --------
    >>> cfg = {"depth": 6}
    >>> rec = {"experiment": "fig4", "scale": "quick", "config": cfg,
    ...        "config_hash": config_hash("fig4", "quick", cfg), "pncutils_version": "0.1.0",
    ...        "git_commit": None, "git_dirty": None, "torch_version": "2.13.0",
    ...        "device": "cpu", "wall_time_s": 1.0, "created": "2026-01-01T00:00:00+00:00",
    ...        "results": {}}
    >>> verify_result(rec)
    >>> verify_result({**rec, "config": {"depth": 7}})
    Traceback (most recent call last):
    ...
    ValueError: config_hash does not match the config of fig4/quick: the file says ...
    """
    if not isinstance(result, Mapping):
        result = load_result(result, verify=False)
    missing = [f for f in REQUIRED_FIELDS if f not in result]
    if missing:
        raise ValueError(f"result is missing field(s) {missing}")
    types: dict[str, Any] = {
        "experiment": str, "scale": str, "config": Mapping, "config_hash": str,
        "pncutils_version": str, "torch_version": str, "device": str, "created": str,
        "results": Mapping,
    }
    for name, kind in types.items():
        if not isinstance(result[name], kind):
            raise ValueError(
                f"field {name!r} must be a {getattr(kind, '__name__', kind)}, "
                f"got {type(result[name]).__name__}"
            )
    if result["git_commit"] is not None and not isinstance(result["git_commit"], str):
        raise ValueError("field 'git_commit' must be a string or null")
    if result["git_dirty"] is not None and not isinstance(result["git_dirty"], bool):
        raise ValueError("field 'git_dirty' must be true, false or null")
    wall = result["wall_time_s"]
    if isinstance(wall, bool) or not isinstance(wall, int | float) or not wall >= 0:
        raise ValueError(f"field 'wall_time_s' must be a number >= 0, got {wall!r}")
    try:
        datetime.fromisoformat(result["created"])
    except ValueError as err:
        raise ValueError(f"field 'created' is not an ISO date-time: {result['created']!r}") from err
    experiment, scale, config = result["experiment"], result["scale"], result["config"]
    if scale not in SCALES:
        raise ValueError(f"field 'scale' must be one of {SCALES}, got {scale!r}")
    expected = config_hash(experiment, scale, config)
    if result["config_hash"] != expected:
        raise ValueError(
            f"config_hash does not match the config of {experiment}/{scale}: the file says "
            f"{result['config_hash']!r}, the config hashes to {expected!r} (the config or the "
            "hash was changed after the run)"
        )
    if against_registry:
        exp = _experiment(experiment)
        seed = config.get("seed", 0)
        registered = _jsonable(exp.scales[scale].replace(seed=seed).to_dict())
        if _canonical(registered) != _canonical(dict(config)):
            changed = sorted(k for k in set(registered) | set(config)
                             if registered.get(k) != config.get(k))
            raise ValueError(
                f"the config of {experiment}/{scale} differs from the registered one in "
                f"{changed}: rerun `python -m pncutils.reproduce {experiment} --scale {scale}`"
            )


def compute(experiment: str, cfg: Config, device: torch.device | str | None = None
            ) -> dict[str, Any]:
    """Run an experiment with any Config and return its results (nothing is written).

    This is what a chapter calls for its live run; the dictionary has the format of the
    ``"results"`` field of a result file, so the same plotting code draws both.

    Parameters
    ----------
    experiment : str
        A key of :data:`EXPERIMENTS`.
    cfg : Config
        Usually ``EXPERIMENTS[experiment].scales[scale]``, possibly ``.replace(...)``-d; it
        must have the same parameters as the registered Configs.
    device : torch.device or str, optional
        The experiment's default when omitted.

    Returns
    -------
    dict

    Examples
    --------
    >>> cfg = EXPERIMENTS["fig3b"].scales["quick"].replace(num_seeds=1, epochs=20)
    >>> res = compute("fig3b", cfg, "cpu")
    >>> len(res["per_seed"]), len(res["summary"]["compression_geometric_mean"])
    (1, 10)
    """
    exp = _experiment(experiment)
    if not isinstance(cfg, Config):
        raise ValueError(f"cfg must be a pncutils.book.config.Config, got {type(cfg).__name__}")
    expected = set(exp.scales["quick"].to_dict())
    if set(cfg.to_dict()) != expected:
        missing = sorted(expected - set(cfg.to_dict()))
        extra = sorted(set(cfg.to_dict()) - expected)
        raise ValueError(
            f"cfg does not have the parameters of experiment {experiment!r}: missing {missing}, "
            f"unknown {extra}"
        )
    out = exp.fn(cfg, _resolve_device(exp, device))
    return out if isinstance(out, Result) else _jsonable(out)


def load_or_run(
    experiment: str,
    scale: str,
    recompute: bool | str = "auto",
    device: torch.device | str | None = None,
    results_dir: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
) -> Record | None:
    """A chapter's access to a result: the committed file, or a fresh run when asked.

    Parameters
    ----------
    experiment : str
        A key of :data:`EXPERIMENTS`.
    scale : {"quick", "book", "paper"}
    recompute : bool or "auto", default "auto"
        ``True``: run the experiment now (on `device`) and return the fresh result.
        ``False``: only read the committed file. ``"auto"``: run it when a CUDA GPU is
        present, the experiment trains on the GPU by default (``default_device="auto"``)
        and quick mode is off (:func:`pncutils.utils.quick_mode`); else read.
    device : torch.device or str, optional
        Device of a fresh run (the experiment's default when omitted).
    results_dir : path, optional
        Where committed files are read from; :func:`default_out_dir` when omitted.
    out_dir : path, optional
        Where a fresh run writes its file; a ``pncutils-results`` folder in the temporary
        directory when omitted, so that a chapter never overwrites the committed files.

    Returns
    -------
    Record or None
        The result (hash verified), typed, or None when it is not committed here. A
        committed file whose config no longer matches the registry is not returned: a
        :class:`UserWarning` names the command that refreshes it, and None is returned.

    Raises
    ------
    ValueError
        Unknown experiment, scale or `recompute` value.

    Examples
    --------
    >>> rec = load_or_run("fig4", "quick", recompute=False)
    >>> rec is None or rec.meta["config_hash"] == config_hash("fig4", "quick", rec.config)
    True
    """
    import warnings

    from pncutils.utils import quick_mode

    exp = _experiment(experiment)
    _scale(scale)
    if recompute not in (True, False, "auto"):
        raise ValueError(f"recompute must be True, False or 'auto', got {recompute!r}")
    if recompute == "auto":
        recompute = (exp.default_device == "auto" and torch.cuda.is_available()
                     and not quick_mode())
    if recompute:
        folder = Path(out_dir) if out_dir is not None else (
            Path(tempfile.gettempdir()) / "pncutils-results")
        return Record.from_dict(load_result(run(experiment, scale, device=device,
                                                out_dir=folder)))
    path = result_path(experiment, scale, results_dir)
    if not path.is_file():
        return None
    res = load_result(path)
    try:
        verify_result(res, against_registry=True)
    except ValueError as err:
        warnings.warn(f"{path} is out of date and was not used: {err}", stacklevel=2)
        return None
    return Record.from_dict(res)


def results_overview(folder: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """One row per result file of a folder: what ran, where, how long, from which code.

    Parameters
    ----------
    folder : path, optional
        :func:`default_out_dir` when omitted.

    Returns
    -------
    list of dict
        Sorted by experiment, then scale (quick, book, paper), then seed; keys
        ``experiment, scale, seed, device, wall_time_s, created, git_commit, git_dirty,
        config_hash, current, file``. ``current`` is False when the file's config differs
        from the registered one (or the experiment is no longer registered).

    Raises
    ------
    ValueError
        If a file in the folder is not a valid result file (see :func:`verify_result`).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = run("fig4", "quick", out_dir=d)
    ...     rows = results_overview(d)
    >>> [(r["experiment"], r["scale"], r["device"], r["current"]) for r in rows]
    [('fig4', 'quick', 'cpu', True)]
    """
    folder = Path(folder) if folder is not None else default_out_dir()
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    rows = []
    for path in sorted(folder.glob("*.json")):
        res = load_result(path)
        try:
            verify_result(res, against_registry=True)
            current = True
        except ValueError:
            current = False
        rows.append({
            "experiment": res["experiment"], "scale": res["scale"],
            "seed": res["config"].get("seed", 0), "device": res["device"],
            "wall_time_s": res["wall_time_s"], "created": res["created"],
            "git_commit": res["git_commit"], "git_dirty": res["git_dirty"],
            "config_hash": res["config_hash"], "current": current, "file": path.name,
        })
    order = {s: i for i, s in enumerate(SCALES)}
    rows.sort(key=lambda r: (r["experiment"], order[r["scale"]], r["seed"]))
    return rows


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def overview_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of :func:`results_overview` rows (for a chapter or the README).

    Parameters
    ----------
    rows : sequence of dict
        The output of :func:`results_overview`.

    Returns
    -------
    str

    Examples
    --------
    >>> row = {"experiment": "fig4", "scale": "book", "seed": 0, "device": "cpu",
    ...        "wall_time_s": 75.0, "created": "2026-11-26T10:00:00+00:00",
    ...        "git_commit": "0123456789abcdef", "git_dirty": False,
    ...        "config_hash": "ab" * 32, "current": True, "file": "fig4-book.json"}
    >>> print(overview_markdown([row]))  # doctest: +NORMALIZE_WHITESPACE
    | experiment | scale | device | wall time | commit | config | up to date |
    |---|---|---|---|---|---|---|
    | fig4 | book | cpu | 1.2 min | 0123456789 | ababababab | yes |
    """
    lines = ["| experiment | scale | device | wall time | commit | config | up to date |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        commit = (r["git_commit"] or "unknown")[:10] + (" (modified)" if r["git_dirty"] else "")
        scale = r["scale"] + (f" (seed {r['seed']})" if r["seed"] else "")
        lines.append(f"| {r['experiment']} | {scale} | {r['device']} | "
                     f"{_duration(r['wall_time_s'])} | {commit} | {r['config_hash'][:10]} | "
                     f"{'yes' if r['current'] else 'no'} |")
    return "\n".join(lines)


def _summary_line(path: Path) -> str:
    res = load_result(path)
    r = res["results"]
    if res["experiment"] == "hybrid":
        parts = []
        for name, net in r["networks"].items():
            C = net["layers"]["compression"]
            parts.append(f"{name}: C_1/C_{len(C) - 1}={C[1] / C[-1]:.3g} "
                         f"test_acc={net['test_acc']:.3f}")
        extra = "; ".join(parts)
    elif res["experiment"] == "fig4":
        s = r["summary"]
        extra = (f"rate {s['measured_rate']['mean']:.4f}+-{s['measured_rate']['std']:.4f} "
                 f"(ideal {s['ideal_rate']:.4f})")
    elif res["experiment"] == "fig6":
        extra = (f"all converged: {r['all_converged']}, residual max {r['residual_max']:.4f}, "
                 f"balance max {r['balance_max']:.4f}")
    elif res["experiment"] == "fig3b":
        s = r["summary"]
        extra = (f"C_0/C_last={s['compression_ratio_first_to_last']:.3g} "
                 f"rate {s['rate']['mean']:.3f}")
    else:
        extra = ""
    return (f"{res['experiment']}/{res['scale']}: {path} in {res['wall_time_s']:.1f} s on "
            f"{res['device']} [config {res['config_hash'][:12]}] {extra}").rstrip()


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m pncutils.reproduce <experiment|all> --scale S ...``.

    Prints one summary line per run (path, wall time, device, config hash, key numbers).

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (``sys.argv[1:]`` when omitted).

    Returns
    -------
    int
        0 on success; a usage error exits with status 2.

    Examples
    --------
    >>> main(["--list"])  # doctest: +ELLIPSIS
    hybrid: Figures 1, 5 and F2: ...
    0
    """
    parser = argparse.ArgumentParser(
        prog="python -m pncutils.reproduce",
        description="Run an experiment of the paper and write its JSON result file.",
    )
    parser.add_argument("experiment", nargs="?",
                        help=f"one of {', '.join(EXPERIMENTS)}, or 'all'")
    parser.add_argument("--scale", default="quick", help=f"one of {', '.join(SCALES)}")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: auto)")
    parser.add_argument("--out", default=None,
                        help=f"output folder (default: {default_out_dir()})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, exp in EXPERIMENTS.items():
            print(f"{name}: {exp.description} (scales: {', '.join(SCALES)})")
        return 0
    if args.experiment is None:
        parser.error("give an experiment: " + ", ".join([*EXPERIMENTS, "all"]))
    names = list(EXPERIMENTS) if args.experiment == "all" else [args.experiment]
    try:
        for name in names:
            _experiment(name)
        _scale(args.scale)
        if args.seed < 0:
            raise ValueError(f"seed must be >= 0, got {args.seed}")
    except ValueError as err:
        parser.error(str(err))
    for name in names:
        path = run(name, args.scale, device=args.device, out_dir=args.out, seed=args.seed)
        print(_summary_line(path), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
