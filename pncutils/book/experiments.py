"""Seed sweeps of trained deep linear networks for the theory chapters (book chapters 3 and 4).

The engine of the registered experiments ``fig4`` (:mod:`pncutils.book.main_result`, which
maps its Config onto :func:`synthetic_runs`) and ``fig6`` (:mod:`pncutils.book.assumptions`,
onto :func:`assumption_grid`), and of the chapters' further checks. Three sweeps, each
training S networks at once with :func:`pncutils.training.train_many`, and one survey
without training:

- :func:`synthetic_runs`: S seeds of the paper's synthetic setting (nearly orthogonal data,
  a deep linear network trained by full-batch gradient descent from a small orthogonal
  initialisation), with the measured per-layer tables, the exact predictions of
  :func:`pncutils.theory.predicted_metrics` (``eps`` = the initialisation scale ξ) on each
  seed's data, and the idealised rate of :func:`pncutils.theory.ideal_compression_rate`;
- :func:`sweep`: :func:`synthetic_runs` over a list of settings, summarised as one table
  (measured vs closed-form vs idealised compression rate, slope of ``D_l``);
- :func:`assumption_grid`: the assumption checks (minimum-norm residual, balance error,
  variance of the bulk singular values) after training, over (depth, width) pairs;
- :func:`discrimination_survey`: ``D_l`` of the closed-form network and its first-order law
  over thousands of data sets (how often ``D_l`` decreases; how far the law is from exact).

Seeds. Seed ``s`` of an experiment with base seed ``seed`` draws its data from one random
stream and each network from another, independent one (``numpy.random.SeedSequence`` with
the spawn keys ``(s, 0)`` and ``(s, 1, depth, width)``, see :func:`seed_stream`). Drawing data
and weights from one seeded generator, or from two generators with the same seed, would make
them statistically dependent. The data of seed ``s`` do not depend on the setting, so two
settings are compared on the same data sets (paired comparisons).

Width reduction. Gradient descent on a deep linear network started from a scaled orthogonal
initialisation never leaves fixed subspaces of dimension ``rank(X) + K`` (see
:func:`assumption_grid`); ``reduce=True`` trains the equivalent small network and maps the
result back, which is exact up to rounding and makes the cost independent of the width.

Conventions: ``X`` is ``(N, d)`` (rows are samples), ``y`` is ``(N,)``, weights are ``(out, in)``
and ``depth`` is the paper's ``L`` (classifier included). Tables are
:class:`pncutils.metrics.LayerTable` (named float64 columns; also used here for tables whose
rows are settings or runs rather than layers).

See Also
--------
pncutils.book.main_result, pncutils.book.assumptions : the experiments ``fig4`` and ``fig6``.
book chapter 3 (``ch03_main_result``) and chapter 4 (``ch04_implicit_bias``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pncutils import data as _data
from pncutils import fits as _fits
from pncutils import metrics as _metrics
from pncutils import theory as _theory
from pncutils._checks import as_tensor, check_choice, check_float, check_int
from pncutils.fits import Fit
from pncutils.metrics import LayerTable
from pncutils.models import DeepLinearNetwork
from pncutils.training import History, TrainConfig, train_many

__all__ = [
    "seed_stream",
    "weights_features",
    "compression_rate",
    "discrimination_fit",
    "SyntheticRuns",
    "synthetic_runs",
    "sweep",
    "DiscriminationSurvey",
    "discrimination_survey",
    "residual_split",
    "grid_points",
    "assumption_grid",
    "grid_summary",
    "predicted_balance",
]

#: Sources of per-layer tables held by :class:`SyntheticRuns`.
SOURCES: tuple[str, ...] = ("measured", "predicted", "first_order")

#: Keys that a setting of :func:`sweep` may change.
SWEEP_KEYS: tuple[str, ...] = (
    "num_classes",
    "num_per_class",
    "dim",
    "depth",
    "init_scale",
    "alpha",
    "width",
    "lr",
    "max_epochs",
    "loss_threshold",
    "schedule_epochs",
    "min_lr_ratio",
    "perturbation",
)

_DATA, _INIT = 0, 1  # first spawn-key entries of the two random streams

# ----------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------


def seed_stream(seed: int, *key: int) -> torch.Generator:
    """A CPU generator for the independent random stream ``key`` of base seed `seed`.

    The stream is ``numpy.random.SeedSequence(seed, spawn_key=key)``: different keys give
    statistically independent streams (unlike ``manual_seed(seed)`` and
    ``manual_seed(seed + 1)``, or one generator shared by the data and the weights).
    The experiments use ``(s, 0)`` for the data of seed ``s`` and ``(s, 1, depth, width)``
    for its networks.

    Parameters
    ----------
    seed : int
        Base seed >= 0.
    *key : int
        Non-negative integers naming the stream.

    Returns
    -------
    torch.Generator
        A CPU generator seeded with 64 bits of the stream.

    Examples
    --------
    >>> a = torch.rand(2, generator=seed_stream(0, 1, 0))
    >>> b = torch.rand(2, generator=seed_stream(0, 1, 0))
    >>> c = torch.rand(2, generator=seed_stream(0, 1, 1))
    >>> bool(torch.equal(a, b)), bool(torch.equal(a, c))
    (True, False)

    Used in: ch03, ch04.
    """
    seed = check_int(seed, "seed", minimum=0)
    key = tuple(check_int(k, "key", minimum=0) for k in key)
    state = np.random.SeedSequence(seed, spawn_key=key).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def weights_features(weights: Sequence[Any], X: Any) -> list[Tensor]:
    """Layer features ``[X, H_1, ..., H_{L-1}]`` of a deep linear network given by its weights.

    Parameters
    ----------
    weights : list of Tensor
        ``[W_1, ..., W_L]``, each ``(out, in)``.
    X : Tensor or ndarray, shape (N, d)

    Returns
    -------
    list of Tensor
        L float64 matrices: ``X`` and ``H_l = X W_1^T ... W_l^T`` of shape ``(N, d_l)`` for
        ``l = 1..L-1`` (the logits are excluded, as in ``DeepLinearNetwork.features``).

    Examples
    --------
    >>> Ws = [2 * torch.eye(3), torch.eye(2, 3)]
    >>> [H.tolist() for H in weights_features(Ws, torch.ones(1, 3))]
    [[[1.0, 1.0, 1.0]], [[2.0, 2.0, 2.0]]]

    Used in: ch03.
    """
    if isinstance(weights, Tensor) or not isinstance(weights, Sequence) or not weights:
        raise ValueError("weights must be a non-empty list [W_1, ..., W_L] of (out, in) matrices")
    H = as_tensor(X, "X").detach().to(torch.float64)
    if H.ndim != 2:
        raise ValueError(f"X must be 2-D with shape (N, d), got shape {tuple(H.shape)}")
    feats = [H]
    for i, W in enumerate(weights[:-1], start=1):
        W = as_tensor(W, f"W_{i}").detach().to(H.device, torch.float64)
        if W.ndim != 2 or W.shape[1] != H.shape[1]:
            raise ValueError(
                f"W_{i} has shape {tuple(W.shape)}, but its input has {H.shape[1]} columns"
            )
        H = H @ W.T
        feats.append(H)
    return feats


def compression_rate(compression: Any, start: int = 1) -> float:
    """Per-layer compression ratio: geometric mean of ``C_{l+1} / C_l`` over ``l >= start``.

    The book's convention for :func:`pncutils.fits.mean_ratio`: the paper's rate is taken from
    the first hidden layer on (``start = 1``), because the input layer's ``C_0`` does not follow
    the geometric law exactly (the data are only nearly orthogonal).

    Parameters
    ----------
    compression : sequence or Tensor, shape (L,)
        ``C_0, ..., C_{L-1}``.
    start : int, default 1
        First layer of the ratios; needs at least two values ``C_start, ..., C_{L-1}``.

    Returns
    -------
    float
        ``(C_{L-1} / C_start)^{1 / (L - 1 - start)}``.

    Examples
    --------
    >>> compression_rate([13.5, 4.0, 1.0, 0.25])
    0.25

    Used in: ch03.
    """
    start = check_int(start, "start", minimum=0)
    C = torch.as_tensor(compression, dtype=torch.float64).reshape(-1)
    if C.numel() - start < 2:
        raise ValueError(
            f"a rate from layer {start} on needs at least {start + 2} layers, got {C.numel()} "
            "(depth >= 3 for start = 1)"
        )
    return _fits.mean_ratio(C[start:])


def discrimination_fit(discrimination: Any, start: int = 1) -> Fit:
    """Least-squares line through ``D_l`` for ``l = start .. L-1`` (slope per layer, R^2).

    The book's convention for :func:`pncutils.fits.linear`: the paper fits ``D_l`` from the
    first hidden layer on (``start = 1``).

    Parameters
    ----------
    discrimination : sequence or Tensor, shape (L,)
        ``D_0, ..., D_{L-1}`` (row ``l`` is layer ``l``).
    start : int, default 1
        First layer of the fit.

    Returns
    -------
    Fit
        ``kind = "linear"``: ``slope``, ``intercept`` and ``r2`` of ``D_l`` against ``l``.

    Examples
    --------
    >>> round(discrimination_fit([0.5, 0.9, 0.92, 0.94]).slope, 12)  # D_0 is left out
    0.02

    Used in: ch03.
    """
    start = check_int(start, "start", minimum=0)
    D = torch.as_tensor(discrimination, dtype=torch.float64).reshape(-1)
    if D.numel() - start < 2:
        raise ValueError(f"a line from layer {start} on needs at least {start + 2} layers")
    return _fits.linear(D, start=start)


def _stack_tables(tables: Sequence[LayerTable], column: str) -> Tensor:
    return torch.stack([t[column] for t in tables])  # (S, L)


def _network(
    in_dim: int, width: int, num_classes: int, depth: int, init_scale: float,
    generator: torch.Generator, dtype: torch.dtype,
) -> DeepLinearNetwork:
    """An orthogonally initialised network created directly in `dtype`.

    Creating it in float32 and casting (``.double()``) would leave the weights orthogonal
    to float32 precision only (``W^T W = xi^2 I`` to about 1e-7 relative).
    """
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        return DeepLinearNetwork(in_dim, width, num_classes, depth=depth,
                                 init_scale=init_scale, generator=generator)
    finally:
        torch.set_default_dtype(old)


# ----------------------------------------------------------------------------------------
# chapter 3: seeds of the synthetic setting
# ----------------------------------------------------------------------------------------


@dataclass
class SyntheticRuns:
    """S trained deep linear networks on S data sets, with their predicted tables.

    Built by :func:`synthetic_runs`.

    Attributes
    ----------
    X : Tensor, shape (S, N, d)
        The data of every seed (float64).
    y : Tensor, shape (N,)
        The labels (class blocks, the same for every seed).
    models : list of DeepLinearNetwork
        The trained networks, one per seed.
    histories : list of History
        Their training histories.
    measured : list of LayerTable
        Per seed, ``pncutils.metrics.layerwise`` of the trained features (l = 0..L-1).
    predicted : list of LayerTable
        Per seed, ``pncutils.theory.predicted_metrics(X_s, y, depth, eps=init_scale, alpha)``.
    first_order : list of LayerTable
        Per seed, ``pncutils.theory.first_order_discrimination(X_s, y, depth, alpha)``.
    ideal_rate : float
        ``init_scale^2 (alpha^2 / n)^{1/L}``, the idealised rate for orthonormal input rows
        (:func:`pncutils.theory.ideal_compression_rate` with ``norm=1``; the synthetic rows
        have norm 1 up to the perturbation).
    settings : dict
        The arguments of :func:`synthetic_runs`.

    Examples
    --------
    >>> runs = synthetic_runs(depth=3, num_seeds=2, max_epochs=300)
    >>> runs.num_seeds, runs.rates().shape, len(runs.mean_table())
    (2, torch.Size([2]), 3)

    Used in: ch03.
    """

    X: Tensor
    y: Tensor
    models: list[DeepLinearNetwork]
    histories: list[History]
    measured: list[LayerTable]
    predicted: list[LayerTable]
    first_order: list[LayerTable]
    ideal_rate: float
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def num_seeds(self) -> int:
        """S, the number of seeds."""
        return len(self.models)

    @property
    def converged(self) -> bool:
        """Whether every run reached the loss threshold."""
        return all(h.converged for h in self.histories)

    @property
    def epochs(self) -> list[int]:
        """Epochs run by every seed."""
        return [h.epochs_run for h in self.histories]

    @property
    def final_losses(self) -> list[float]:
        """Final training loss of every seed."""
        return [h.final_loss for h in self.histories]

    def tables(self, source: str = "measured") -> list[LayerTable]:
        """The per-seed tables of `source` (``"measured"``, ``"predicted"``, ``"first_order"``)."""
        check_choice(source, "source", SOURCES)
        return getattr(self, source)

    def rates(self, source: str = "measured", start: int = 1) -> Tensor:
        """Per-seed compression rate (:func:`compression_rate`), shape (S,)."""
        if source == "first_order":
            raise ValueError("the first-order tables hold D_l only; use 'measured' or 'predicted'")
        tables = self.tables(source)
        return torch.tensor([compression_rate(t.compression, start) for t in tables],
                            dtype=torch.float64)

    def rate(self, source: str = "measured", start: int = 1) -> float:
        """Seed-averaged compression rate (arithmetic mean of :meth:`rates`)."""
        return float(self.rates(source, start).mean())

    def mean_table(self, source: str = "measured") -> LayerTable:
        """Seed average: geometric mean of ``C_l``, arithmetic mean of ``D_l``.

        Returns
        -------
        LayerTable
            Columns ``layer`` and ``discrimination`` (and ``compression`` unless `source`
            is ``"first_order"``), l = 0..L-1.
        """
        tables = self.tables(source)
        cols: dict[str, Any] = {"layer": tables[0].layer}
        if "compression" in tables[0].columns:
            cols["compression"] = _stack_tables(tables, "compression").log().mean(0).exp()
        cols["discrimination"] = _stack_tables(tables, "discrimination").mean(0)
        return LayerTable(cols)

    def discrimination_fit(self, source: str = "measured", start: int = 1) -> Fit:
        """Linear fit of the seed-averaged ``D_l`` over ``l = start..L-1``."""
        return discrimination_fit(self.mean_table(source).discrimination, start)

    def grouped_discrimination_fits(self, group_size: int = 5, source: str = "measured",
                                    start: int = 1) -> list[Fit]:
        """Linear fits of ``D_l`` averaged over consecutive groups of `group_size` seeds.

        Seeds ``0..g-1`` form the first group, ``g..2g-1`` the second, and so on; the number
        of seeds must be a multiple of `group_size`. Chapter 3 asks how often such an average
        rises in a straight line.

        Returns
        -------
        list of Fit
            One per group, of the group's mean ``D_l`` over ``l = start..L-1``.

        Examples
        --------
        >>> runs = synthetic_runs(depth=3, num_seeds=4, max_epochs=200)
        >>> [f.layers for f in runs.grouped_discrimination_fits(2)]
        [(1, 2), (1, 2)]
        """
        size = check_int(group_size, "group_size", minimum=1)
        if self.num_seeds % size:
            raise ValueError(f"{self.num_seeds} seeds do not split into groups of {size}")
        D = _stack_tables(self.tables(source), "discrimination")  # (S, L)
        means = D.view(-1, size, D.shape[1]).mean(1)  # (S / size, L)
        return [discrimination_fit(m, start) for m in means]

    def discrimination_slopes(self, source: str = "measured", start: int = 1) -> Tensor:
        """Per-seed slope of the linear fit of ``D_l`` over ``l = start..L-1``, shape (S,)."""
        tables = self.tables(source)
        return torch.tensor([discrimination_fit(t.discrimination, start).slope for t in tables],
                            dtype=torch.float64)


def _train_config(
    lr: float,
    max_epochs: int,
    alpha: float,
    loss_threshold: float | None,
    schedule_epochs: int | None,
    min_lr_ratio: float,
) -> TrainConfig:
    return TrainConfig(
        lr=lr,
        epochs=max_epochs,
        alpha=alpha,
        loss_threshold=loss_threshold,
        schedule_epochs=schedule_epochs,
        min_lr_ratio=min_lr_ratio,
        progress=False,
    )


def _seed_data(
    seed: int, s: int, num_classes: int, num_per_class: int, dim: int, perturbation: float
) -> tuple[Tensor, Tensor]:
    return _data.orthogonal_dataset(
        num_classes,
        num_per_class,
        dim,
        perturbation=perturbation,
        generator=seed_stream(seed, s, _DATA),
        dtype=torch.float64,
    )


def synthetic_runs(
    num_classes: int = 3,
    num_per_class: int = 10,
    dim: int = 50,
    depth: int = 6,
    init_scale: float = 0.3,
    alpha: float = 100.0,
    num_seeds: int = 5,
    width: int | None = None,
    lr: float = 0.1,
    max_epochs: int = 5000,
    loss_threshold: float | None = 1e-11,
    schedule_epochs: int | None = 5000,
    min_lr_ratio: float = 0.1,
    perturbation: float = 1.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> SyntheticRuns:
    """Train `num_seeds` deep linear networks on the paper's synthetic data, all at once.

    Seed ``s`` draws ``X_s, y = orthogonal_dataset(num_classes, num_per_class, dim,
    perturbation)`` from the stream ``seed_stream(seed, s, 0)`` and an orthogonally initialised
    ``DeepLinearNetwork(dim, width, num_classes, depth, init_scale=init_scale)`` from the
    independent stream ``seed_stream(seed, s, 1, depth, width)``. The S networks are trained
    by :func:`pncutils.training.train_many` with full-batch gradient descent on
    ``(1/N) sum_i ||alpha f(x_i) - y_i||^2``: learning rate `lr` with a cosine decay to
    ``lr * min_lr_ratio`` over `schedule_epochs`, stopping at ``loss < loss_threshold``
    or after `max_epochs`. The defaults are the setting of the reference notebook
    (``assumption/theory.ipynb`` of Heimine/PNC_DLN): N = 30, d = 50, K = 3, L = 6,
    ξ = 0.3, α = 100, lr 0.1, with two differences of detail. That notebook creates a
    cosine scheduler but never steps it (its learning rate stays 0.1), and it stops when its
    loss divided by N falls below 1e-11 (``loss < N * 1e-11``), checked every 10 epochs;
    ``min_lr_ratio=1.0, loss_threshold=N * 1e-11`` reproduces both, except the 10-epoch check.
    Its classifier starts as ``ξ [O_K, 0]`` rather than ξ times a Haar matrix with orthonormal
    rows: the same distribution once it follows a Haar-random hidden layer, so every metric
    here has the same distribution (see :mod:`pncutils.models`).

    Parameters
    ----------
    num_classes, num_per_class, dim : int
        K, n and d (``K n <= d``: the theory needs N <= d).
    depth : int
        L >= 2, number of weight matrices.
    init_scale : float
        ξ > 0, the initialisation scale (and the ``eps`` of the predictions).
    alpha : float
        Output scale α > 0.
    num_seeds : int
        S >= 1.
    width : int, optional
        Hidden width; ``dim`` when omitted.
    lr, max_epochs, loss_threshold, schedule_epochs, min_lr_ratio
        Gradient descent (see :class:`pncutils.training.TrainConfig`).
    perturbation : float, default 1.0
        Frobenius norm of the perturbation of the orthonormal data.
    seed : int, default 0
        Base seed of the random streams.
    dtype : torch.dtype, default torch.float64
        Training precision.
    device : torch.device or str, default "cpu"
        Where to train (tiny problems run fastest on the CPU).

    Returns
    -------
    SyntheticRuns

    Examples
    --------
    >>> runs = synthetic_runs(depth=3, init_scale=0.3, alpha=100.0, num_seeds=2)
    >>> runs.converged, runs.X.shape
    (True, torch.Size([2, 30, 50]))
    >>> abs(runs.rate() / runs.ideal_rate - 1) < 0.1
    True

    Used in: ch03 (through :func:`pncutils.book.main_result.synthetic`).
    """
    K = check_int(num_classes, "num_classes", minimum=2)
    n = check_int(num_per_class, "num_per_class", minimum=2)
    d = check_int(dim, "dim", minimum=1)
    if K * n > d:
        raise ValueError(
            f"N = K n = {K * n} samples in d = {d} dimensions: the theory needs N <= d"
        )
    L = check_int(depth, "depth", minimum=2)
    xi = check_float(init_scale, "init_scale", minimum=0.0, strict=True)
    alpha = check_float(alpha, "alpha", minimum=0.0, strict=True)
    S = check_int(num_seeds, "num_seeds", minimum=1)
    h = d if width is None else check_int(width, "width", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    cfg = _train_config(lr, max_epochs, alpha, loss_threshold, schedule_epochs, min_lr_ratio)
    settings = dict(
        num_classes=K, num_per_class=n, dim=d, depth=L, init_scale=xi, alpha=alpha,
        num_seeds=S, width=h, lr=cfg.lr, max_epochs=cfg.epochs,
        loss_threshold=cfg.loss_threshold, schedule_epochs=cfg.schedule_epochs,
        min_lr_ratio=cfg.min_lr_ratio, perturbation=perturbation, seed=seed,
    )

    data = [_seed_data(seed, s, K, n, d, perturbation) for s in range(S)]
    X = torch.stack([Xs for Xs, _ in data])  # (S, N, d)
    y = data[0][1]
    models = [
        _network(d, h, K, L, xi, seed_stream(seed, s, _INIT, L, h), dtype) for s in range(S)
    ]
    histories = train_many(models, X, y, cfg, device=device)
    diverged = [s for s, h in enumerate(histories) if not math.isfinite(h.final_loss)]
    if diverged:
        raise ValueError(
            f"training diverged (non-finite loss) for seed(s) {diverged}: lower lr (got {lr}) "
            f"or alpha (got {alpha})"
        )

    measured, predicted, first_order = [], [], []
    for s, model in enumerate(models):
        Xs = X[s].to(model.classifier.weight.device, dtype)
        with torch.no_grad():
            measured.append(_metrics.layerwise(model.features(Xs), y, num_classes=K))
        predicted.append(_theory.predicted_metrics(X[s], y, L, eps=xi, alpha=alpha))
        first_order.append(_theory.first_order_discrimination(X[s], y, L, alpha=alpha))
    return SyntheticRuns(
        X=X,
        y=y,
        models=models,
        histories=histories,
        measured=measured,
        predicted=predicted,
        first_order=first_order,
        ideal_rate=_theory.ideal_compression_rate(xi, alpha, n, L),
        settings=settings,
    )


_SYNTHETIC_DEFAULTS = {
    name: p.default for name, p in inspect.signature(synthetic_runs).parameters.items()
}


def _signal_root(st: Mapping[str, Any]) -> float:
    """Per-layer signal singular value ``(sqrt(n) / alpha)^{1/L}`` of the idealised network."""
    return (math.sqrt(st["num_per_class"]) / st["alpha"]) ** (1.0 / st["depth"])


def sweep(
    settings: Sequence[Mapping[str, Any]],
    num_seeds: int = 5,
    seed: int = 0,
    device: torch.device | str = "cpu",
    **base: Any,
) -> LayerTable:
    """Run :func:`synthetic_runs` for every setting and tabulate measured vs predicted rates.

    Parameters
    ----------
    settings : sequence of mapping
        Each maps some of :data:`SWEEP_KEYS` (e.g. ``init_scale``, ``alpha``, ``depth``,
        ``num_per_class``) to values; the others come from `base`, then from the defaults
        of :func:`synthetic_runs`. Depths must be >= 3 (a rate needs two ratios).
    num_seeds : int, default 5
        Seeds per setting (the same data sets for every setting).
    seed : int, default 0
        Base seed.
    device : torch.device or str, default "cpu"
    **base
        Common values of :data:`SWEEP_KEYS` for every setting.

    Returns
    -------
    LayerTable
        One row per setting, columns:

        - ``init_scale, alpha, depth, num_per_class``: the setting (ξ, α, L, n);
        - ``xi_ratio``: ``ξ / (sqrt(n)/α)^{1/L}``, the initialisation scale relative to the
          per-layer signal singular value of the idealised network (the theory needs it
          well below 1);
        - ``rate_mean, rate_std``: measured rate (:func:`compression_rate` from l = 1) over
          the seeds (population standard deviation);
        - ``rate_closed_form``: the same rate of the exact prediction, averaged over the seeds;
        - ``rate_ideal``: ``ξ² (α²/n)^{1/L}``;
        - ``err_closed_form, err_ideal``: ``rate_mean / rate_closed_form - 1`` and
          ``rate_mean / rate_ideal - 1``;
        - ``d_slope, d_slope_closed_form, d_r2``: slope per layer of the linear fit of the
          seed-averaged measured and predicted ``D_l`` (l = 1..L-1), and the R² of the
          measured fit;
        - ``epochs_mean, converged``: mean epochs run and the fraction of converged runs.

    Examples
    --------
    >>> t = sweep([{"init_scale": 0.2}, {"init_scale": 0.3}], num_seeds=2, depth=4)
    >>> len(t), bool((t.err_ideal.abs() < 0.1).all())
    (2, True)

    Used in: ch03.
    """
    if isinstance(settings, Mapping) or not isinstance(settings, Sequence) or not settings:
        raise ValueError("settings must be a non-empty list of dicts, e.g. [{'init_scale': 0.3}]")
    for key in base:
        check_choice(key, "base parameter", SWEEP_KEYS)
    cols: dict[str, list[float]] = {
        c: []
        for c in (
            "init_scale", "alpha", "depth", "num_per_class", "xi_ratio", "rate_mean", "rate_std",
            "rate_closed_form", "rate_ideal", "err_closed_form", "err_ideal", "d_slope",
            "d_slope_closed_form", "d_r2", "epochs_mean", "converged",
        )
    }
    for i, setting in enumerate(settings):
        if not isinstance(setting, Mapping):
            raise ValueError(f"settings[{i}] must be a dict, got {type(setting).__name__}")
        for key in setting:
            check_choice(key, f"settings[{i}] key", SWEEP_KEYS)
        kwargs = {**base, **setting}
        depth = kwargs.get("depth", _SYNTHETIC_DEFAULTS["depth"])
        if not isinstance(depth, int) or depth < 3:
            raise ValueError(f"settings[{i}] has depth {depth!r}: a rate needs depth >= 3")
        runs = synthetic_runs(**kwargs, num_seeds=num_seeds, seed=seed, device=device)
        st = runs.settings
        rates = runs.rates("measured")
        rate = float(rates.mean())
        closed = runs.rate("predicted")
        fit = runs.discrimination_fit("measured")
        for name, value in (
            ("init_scale", st["init_scale"]),
            ("alpha", st["alpha"]),
            ("depth", st["depth"]),
            ("num_per_class", st["num_per_class"]),
            ("xi_ratio", st["init_scale"] / _signal_root(st)),
            ("rate_mean", rate),
            ("rate_std", float(rates.std(correction=0))),
            ("rate_closed_form", closed),
            ("rate_ideal", runs.ideal_rate),
            ("err_closed_form", rate / closed - 1),
            ("err_ideal", rate / runs.ideal_rate - 1),
            ("d_slope", fit.slope),
            ("d_slope_closed_form", runs.discrimination_fit("predicted").slope),
            ("d_r2", fit.r2),
            ("epochs_mean", float(np.mean(runs.epochs))),
            ("converged", float(np.mean([h.converged for h in runs.histories]))),
        ):
            cols[name].append(float(value))
    return LayerTable(cols)


# ----------------------------------------------------------------------------------------
# chapter 3: the sign and the first-order law of D_l over many data sets
# ----------------------------------------------------------------------------------------


def _gram_discrimination(G: Tensor) -> Tensor:
    """``1 - max_{k != k'} cos`` of a batch of Gram matrices ``(S, K, K)``, shape (S,)."""
    d = torch.sqrt(torch.diagonal(G, dim1=-2, dim2=-1))  # (S, K)
    cos = G / d[:, :, None] / d[:, None, :]
    eye = torch.eye(G.shape[-1], dtype=torch.bool, device=G.device)
    return 1.0 - cos.masked_fill(eye, -math.inf).amax(dim=(-2, -1))


def _slopes(D: Tensor, start: int) -> Tensor:
    """Least-squares slope of every row of ``D`` ``(S, L)`` against ``l = start..L-1``."""
    Dl = D[:, start:]
    x = torch.arange(start, D.shape[1], dtype=torch.float64)
    x = x - x.mean()
    return ((Dl - Dl.mean(1, keepdim=True)) * x).sum(1) / x.square().sum()


@dataclass
class DiscriminationSurvey:
    """``D_l`` of the constructed network and of its first-order law over S data sets.

    Built by :func:`discrimination_survey`. No training: ``D_l`` is that of the closed-form
    minimum-norm balanced network (:func:`pncutils.theory.predicted_metrics`).

    Attributes
    ----------
    exact : Tensor, shape (S, L)
        ``D_l`` for ``l = 0..L-1`` on every data set (the ``discrimination`` column of
        :func:`pncutils.theory.predicted_metrics`).
    first_order : Tensor, shape (S, L)
        The first-order law ``1 - (1 - l/L)(1 - D~_0)``
        (:func:`pncutils.theory.first_order_discrimination`); column 0 holds ``D~_0``.
    settings : dict
        The arguments of :func:`discrimination_survey`.

    Examples
    --------
    >>> sv = discrimination_survey(num_draws=20)
    >>> sv.num_draws, sv.first_order_gap().shape
    (20, torch.Size([20, 5]))

    Used in: ch03.
    """

    exact: Tensor
    first_order: Tensor
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def num_draws(self) -> int:
        """S, the number of data sets."""
        return self.exact.shape[0]

    def slopes(self, source: str = "exact", start: int = 1) -> Tensor:
        """Per-data-set slope of the least-squares line of ``D_l``, ``l = start..L-1``, (S,)."""
        check_choice(source, "source", ("exact", "first_order"))
        start = check_int(start, "start", minimum=0)
        if self.exact.shape[1] - start < 2:
            raise ValueError(f"a line from layer {start} on needs at least {start + 2} layers")
        return _slopes(getattr(self, source), start)

    def decreasing(self) -> Tensor:
        """Whether ``D_l`` of the constructed network decreases (slope < 0 over l >= 1), (S,)."""
        return self.slopes("exact") < 0

    def decreasing_share(self) -> float:
        """Fraction of the data sets on which ``D_l`` of the constructed network decreases."""
        return float(self.decreasing().double().mean())

    def first_order_gap(self) -> Tensor:
        """``|D_l - first-order law|`` for ``l = 1..L-1``, shape (S, L-1)."""
        return (self.exact[:, 1:] - self.first_order[:, 1:]).abs()


def discrimination_survey(
    num_draws: int = 1000,
    num_classes: int = 3,
    num_per_class: int = 10,
    dim: int = 50,
    depth: int = 6,
    eps: float = 0.3,
    alpha: float = 100.0,
    perturbation: float = 1.0,
    seed: int = 0,
) -> DiscriminationSurvey:
    """``D_l`` of the constructed network, exact and first-order, on `num_draws` data sets.

    Data set ``s`` is the one that seed ``s`` of :func:`synthetic_runs` trains on
    (``orthogonal_dataset(num_classes, num_per_class, dim, perturbation)`` from the stream
    ``seed_stream(seed, s, 0)``). For each, with ``W* = alpha^{-1} Y^T (X X^T)^{-1} X = U S V^T``,
    the class means ``M`` (``K x d``) and ``M_perp = M - M V V^T``, the Gram matrix of the
    class means of layer ``l`` of the constructed network is
    ``G_l = M V S^{2l/L} V^T M^T + eps^{2l} M_perp M_perp^T`` and ``D_l = 1 - max_{k != k'}``
    of its cosines (book chapter 3; the same numbers as
    :func:`pncutils.theory.predicted_metrics`, computed for all data sets at once). The
    first-order law is ``1 - (1 - l/L)(1 - D~_0)`` with ``D~_0`` from ``U S^{-2} U^T``.

    Parameters
    ----------
    num_draws : int, default 1000
        S >= 1 data sets.
    num_classes, num_per_class, dim : int
        K, n and d, with ``K n <= d`` (the formula needs an interpolating ``W*``).
    depth : int, default 6
        L >= 3 (a slope over ``l = 1..L-1`` needs two layers).
    eps : float, default 0.3
        Bulk singular value (>= 0).
    alpha : float, default 100.0
        Output scale (> 0; ``D_l`` does not depend on it).
    perturbation : float, default 1.0
        Frobenius norm of the perturbation of the orthonormal data.
    seed : int, default 0
        Base seed of the data streams.

    Returns
    -------
    DiscriminationSurvey

    Examples
    --------
    >>> sv = discrimination_survey(num_draws=50)
    >>> sv.exact.shape, 0.0 <= sv.decreasing_share() <= 1.0
    (torch.Size([50, 6]), True)
    >>> bool((sv.exact[:, 1:] - 1).abs().max() < 0.1)  # 1 - D_l is small
    True

    Used in: ch03.
    """
    S = check_int(num_draws, "num_draws", minimum=1)
    K = check_int(num_classes, "num_classes", minimum=2)
    n = check_int(num_per_class, "num_per_class", minimum=1)
    d = check_int(dim, "dim", minimum=1)
    if K * n > d:
        raise ValueError(
            f"N = K n = {K * n} samples in d = {d} dimensions: the exact D_l needs N <= d "
            "(an interpolating minimum-norm map)"
        )
    L = check_int(depth, "depth", minimum=3)
    eps = check_float(eps, "eps", minimum=0.0)
    alpha = check_float(alpha, "alpha", minimum=0.0, strict=True)
    perturbation = check_float(perturbation, "perturbation", minimum=0.0)
    seed = check_int(seed, "seed", minimum=0)
    data = [_seed_data(seed, s, K, n, d, perturbation) for s in range(S)]
    X = torch.stack([Xs for Xs, _ in data])  # (S, N, d)
    Y = torch.nn.functional.one_hot(data[0][1], K).to(torch.float64)  # (N, K)
    W = torch.linalg.solve(X @ X.mT, Y.expand(S, -1, -1)).mT @ X / alpha  # (S, K, d): W*
    U, sv, Vh = torch.linalg.svd(W, full_matrices=False)  # (S, K, K), (S, K), (S, K, d)
    M = (Y.T @ X) / Y.sum(0)[:, None]  # (S, K, d) class means
    M_par = M @ Vh.mT  # (S, K, K): M V
    M_perp = M - M_par @ Vh  # (S, K, d): the part of the means outside the row space of W*
    G_perp = M_perp @ M_perp.mT
    exact = torch.stack([
        _gram_discrimination((M_par * sv[:, None, :] ** (2 * l / L)) @ M_par.mT
                             + eps ** (2 * l) * G_perp)
        for l in range(L)
    ], 1)  # (S, L)
    D0 = _gram_discrimination((U / sv[:, None, :] ** 2) @ U.mT)  # (S,) D~_0
    frac = torch.arange(L, dtype=torch.float64) / L
    first = 1 - (1 - frac)[None, :] * (1 - D0)[:, None]  # (S, L)
    settings = dict(num_draws=S, num_classes=K, num_per_class=n, dim=d, depth=L, eps=eps,
                    alpha=alpha, perturbation=perturbation, seed=seed)
    return DiscriminationSurvey(exact=exact, first_order=first, settings=settings)


# ----------------------------------------------------------------------------------------
# chapter 4: the assumptions after training
# ----------------------------------------------------------------------------------------


def residual_split(weights: Any, X: Any, Y: Any, alpha: float = 1.0) -> tuple[float, float]:
    """The minimum-norm residual split into its row-space and null-space parts.

    With ``P`` the orthogonal projector onto the row space of ``X`` (``(d, d)``) and
    ``W* = alpha^{-1} Y^T X^+`` (whose rows lie in that row space),
    ``||W* - W_{L:1}||_F^2 = ||(W* - W_{L:1}) P||_F^2 + ||W_{L:1} (I - P)||_F^2``. The first
    part vanishes when the network interpolates; the second is what the data cannot see.
    Gradient descent never changes ``W_1 (I - P)`` (the gradient of ``W_1`` is
    ``G^T X``), so the second part is ``||W_L ... W_2 W_1(0) (I - P)||_F``.

    Parameters
    ----------
    weights : list of Tensor, or a model with a ``weights()`` method
        ``[W_1, ..., W_L]``.
    X : Tensor or ndarray, shape (N, d)
        Inputs, ``N <= d`` and linearly independent rows.
    Y : Tensor or ndarray, shape (N, K) or (N,)
        One-hot targets or labels.
    alpha : float, default 1.0

    Returns
    -------
    (float, float)
        ``(row-space part, null-space part)``; their root-sum-square is
        :func:`pncutils.theory.min_norm_residual`.

    Examples
    --------
    >>> X = torch.eye(2, 3, dtype=torch.float64); y = torch.tensor([0, 1])
    >>> residual_split([torch.tensor([[1., 0., 0.5], [0., 1., 0.]])], X, y)
    (0.0, 0.5)

    Used in: ch04 (through :func:`assumption_grid`).
    """
    Ws = [W.detach().to("cpu", torch.float64) for W in (
        weights.weights() if hasattr(weights, "weights") and callable(weights.weights)
        else weights
    )]
    W_star = _theory.min_norm_map(X, Y, alpha)  # (K, d), validates X and Y
    P_end = Ws[0]
    for W in Ws[1:]:
        P_end = W @ P_end
    if P_end.shape != W_star.shape:
        raise ValueError(
            f"the network maps {P_end.shape[1]} -> {P_end.shape[0]} but X, Y need "
            f"{W_star.shape[1]} -> {W_star.shape[0]}"
        )
    Xd = as_tensor(X, "X").detach().to("cpu", torch.float64)
    B0 = _row_basis(Xd)  # (d, r)
    diff = W_star - P_end
    row = diff @ B0  # coordinates in the row space
    null = P_end - (P_end @ B0) @ B0.T
    return float(torch.linalg.matrix_norm(row)), float(torch.linalg.matrix_norm(null))


def _row_basis(X: Tensor, rtol: float = 1e-10) -> Tensor:
    """Orthonormal basis ``(d, r)`` of the row space of ``X`` (``(N, d)``)."""
    _, S, Vh = torch.linalg.svd(X, full_matrices=False)
    r = int((S > rtol * S[0]).sum())
    return Vh[:r].T.contiguous()


def _orthonormal_basis(A: Tensor, rtol: float = 1e-10) -> Tensor:
    U, S, _ = torch.linalg.svd(A, full_matrices=False)
    r = int((S > rtol * S[0]).sum())
    return U[:, :r]


def _invariant_bases(Ws: list[Tensor], B0: Tensor, rtol: float = 1e-9) -> list[Tensor]:
    """Bases ``[B_0, ..., B_{L-1}]`` of the subspaces ``A_l`` that gradient descent never leaves.

    ``A_0`` is the row space of X; ``A_1`` is spanned by ``W_1 A_0`` and
    ``W_2^T ... W_L^T`` (the directions through which the loss reaches layer 1);
    ``A_l = W_l A_{l-1}`` for ``2 <= l <= L-1``. The features and the back-propagated
    gradients stay in them (so every update of ``W_l`` lies in ``A_l x A_{l-1}``) if
    ``W_l A_{l-1} = A_l`` and ``W_l^T A_l ⊂ A_{l-1}`` (true for scaled orthogonal hidden
    weights) and the rows of ``W_L`` lie in ``A_{L-1}``; these conditions are checked.
    """
    L = len(Ws)
    bases = [B0]
    if L == 1:
        return bases
    back = Ws[-1].T  # (h, K)
    for W in reversed(Ws[1:-1]):
        back = W.T @ back  # W_2^T ... W_L^T, (h, K)
    bases.append(_orthonormal_basis(torch.cat([Ws[0] @ B0, back], 1)))
    for W in Ws[1:-1]:
        Q, R = torch.linalg.qr(W @ bases[-1])
        diag = torch.diagonal(R).abs()
        if float(diag.min()) <= rtol * float(diag.max()):
            raise ValueError("reduce=True needs full-rank hidden weights at initialisation")
        bases.append(Q)
    for i in range(2, L):  # backward invariance of the hidden layers
        W, Bl, Bp = Ws[i - 1], bases[i], bases[i - 1]
        V = W.T @ Bl
        if float(torch.linalg.matrix_norm(V - Bp @ (Bp.T @ V))) > rtol * max(
            float(torch.linalg.matrix_norm(W)), 1.0
        ):
            raise ValueError(
                "reduce=True needs scaled orthogonal hidden weights at initialisation "
                f"(W_{i}^T does not map the subspace of layer {i} into that of layer {i - 1})"
            )
    WL, B = Ws[-1], bases[-1]
    if float(torch.linalg.matrix_norm(WL - (WL @ B) @ B.T)) > rtol * max(
        float(torch.linalg.matrix_norm(WL)), 1.0
    ):
        raise ValueError("reduce=True: the rows of W_L leave the invariant subspace")
    return bases


def _reduce(Ws: list[Tensor], bases: list[Tensor]) -> list[Tensor]:
    """Coordinates ``B_l^T W_l B_{l-1}`` of the weights (``W_L B_{L-1}`` for the classifier)."""
    L = len(Ws)
    out = []
    for i, W in enumerate(Ws, start=1):
        left = bases[i].T @ W if i < L else W
        out.append(left @ bases[i - 1])
    return out


def _lift(
    Ws0: list[Tensor], w0: list[Tensor], w: list[Tensor], bases: list[Tensor]
) -> list[Tensor]:
    """Full weights ``W_l(0) + B_l (w_l - w_l(0)) B_{l-1}^T`` after reduced training."""
    L = len(Ws0)
    out = []
    for i in range(1, L + 1):
        delta = (w[i - 1] - w0[i - 1]) @ bases[i - 1].T
        if i < L:
            delta = bases[i] @ delta
        out.append(Ws0[i - 1] + delta)
    return out


def grid_points(
    depths: Sequence[int] = (2, 3, 4, 5),
    width_for_depths: int = 400,
    widths: Sequence[int] = (200, 300, 400, 500, 600, 700),
    depth_for_widths: int = 5,
) -> list[tuple[int, int]]:
    """The (depth, width) pairs of the paper's assumption figure: two lines of a grid.

    Parameters
    ----------
    depths : sequence of int
        Depths L of the first line, all at width `width_for_depths`.
    width_for_depths : int
    widths : sequence of int
        Widths of the second line, all at depth `depth_for_widths`.
    depth_for_widths : int

    Returns
    -------
    list of (int, int)
        The union of the two lines, without duplicates, depth-major order.

    Examples
    --------
    >>> grid_points((2, 3), 100, (100, 200), 3)
    [(2, 100), (3, 100), (3, 200)]

    Used in: ch04 (through :mod:`pncutils.book.assumptions`).
    """
    pts = {(check_int(L, "depth", minimum=2), check_int(width_for_depths, "width", minimum=1))
           for L in depths}
    pts |= {(check_int(depth_for_widths, "depth", minimum=2), check_int(w, "width", minimum=1))
            for w in widths}
    return sorted(pts)


def assumption_grid(
    grid: Sequence[tuple[int, int]],
    num_seeds: int = 3,
    init_scale: float = 0.1,
    alpha: float = 1.0,
    lr: float = 0.1,
    max_epochs: int = 100_000,
    loss_threshold: float | None = 1e-10,
    schedule_epochs: int | None = 100_000,
    min_lr_ratio: float = 1e-3,
    num_classes: int = 3,
    num_per_class: int = 10,
    dim: int = 50,
    perturbation: float = 1.0,
    reduce: bool = True,
    seed: int = 0,
    device: torch.device | str = "cpu",
    return_models: bool = False,
) -> LayerTable | tuple[LayerTable, list[DeepLinearNetwork]]:
    """Train networks at every (depth, width) and measure how well they meet the assumptions.

    The paper's assumption experiment (reference code ``assumption/train.py``): for each pair
    and seed, an orthogonally initialised ``DeepLinearNetwork(dim, width, K, depth,
    init_scale)`` is trained by full-batch gradient descent (lr 0.1, cosine decay to 1e-4 over
    1e5 epochs, stop at loss < 1e-10, α = 1) on the seed's nearly orthogonal data. All the
    networks of one depth are trained at once by :func:`pncutils.training.train_many`.

    With ``reduce=True`` (the default), each network is replaced by its coordinates in the
    subspaces that gradient descent provably never leaves: ``A_0`` = the row space of X
    (dimension r = N), ``A_1`` = span of ``W_1(0) A_0`` and of ``W_2(0)^T ... W_L(0)^T``,
    ``A_l = W_l(0) A_{l-1}``, all of dimension ``m = r + K`` (if the width allows). The
    features ``X W_{l:1}^T`` lie in ``A_l``, the back-propagated gradients too (the hidden
    weights start scaled orthogonal), so every update of ``W_l`` lies in ``A_l x A_{l-1}``.
    The reduced ``(m, m)`` networks follow exactly the trajectory of the full ones (up to
    rounding), are trained at a cost that does not depend on the width, and are mapped
    back: ``W_l = W_l(0) + B_l (w_l - w_l(0)) B_{l-1}^T``. ``reduce=False`` trains the full
    networks (one :func:`train_many` call per width).

    Parameters
    ----------
    grid : sequence of (int, int)
        ``(depth, width)`` pairs, depth >= 2 and width >= dim (e.g. :func:`grid_points`).
    num_seeds : int, default 3
        Seeds per pair (the paper uses 10); seed ``s`` uses the same data for every pair.
    init_scale, alpha, lr, max_epochs, loss_threshold, schedule_epochs, min_lr_ratio
        The run (defaults: the paper's).
    num_classes, num_per_class, dim, perturbation
        The data (defaults: the paper's N = 30, d = 50, K = 3).
    reduce : bool, default True
        Train in the invariant subspaces (exact, width-independent cost).
    seed : int, default 0
    device : torch.device or str, default "cpu"
    return_models : bool, default False
        Also return the trained (full-width) networks, in the order of the rows.

    Returns
    -------
    LayerTable, or (LayerTable, list of DeepLinearNetwork) with ``return_models=True``
        One row per (depth, width, seed), columns:

        - ``depth, width, seed``;
        - ``residual``: ``||alpha^{-1} Y^T X^+ - W_{L:1}||_F`` (min-norm residual);
        - ``residual_null``: its null-space part (:func:`residual_split`);
        - ``balance``: mean over l of ``||W_{l+1}^T W_{l+1} - W_l W_l^T||_F / ||W_l||_F``;
        - ``balance_conserved``: the same with the numerators taken at initialisation
          (gradient flow conserves ``W_{l+1}^T W_{l+1} - W_l W_l^T``);
        - ``bulk_variance``: population variance of the bulk singular values
          ``sigma_i(W_l)``, ``K < i <= d - K``, over the hidden layers;
        - ``epochs, converged, final_loss``.

    Examples
    --------
    >>> t = assumption_grid([(2, 60), (2, 80)], num_seeds=2, max_epochs=3000)
    >>> len(t), bool(t.converged.all()), bool((t.residual < 0.2).all())
    (4, True, True)

    Used in: ch04 (through :mod:`pncutils.book.assumptions`).
    """
    K = check_int(num_classes, "num_classes", minimum=2)
    n = check_int(num_per_class, "num_per_class", minimum=1)
    d = check_int(dim, "dim", minimum=1)
    if K * n > d:
        raise ValueError(
            f"N = K n = {K * n} samples in d = {d} dimensions: the theory needs N <= d"
        )
    pairs = _grid_pairs(grid, d)
    S = check_int(num_seeds, "num_seeds", minimum=1)
    xi = check_float(init_scale, "init_scale", minimum=0.0, strict=True)
    alpha = check_float(alpha, "alpha", minimum=0.0, strict=True)
    if not isinstance(reduce, bool):
        raise ValueError(f"reduce must be True or False, got {reduce!r}")
    if not isinstance(return_models, bool):
        raise ValueError(f"return_models must be True or False, got {return_models!r}")
    seed = check_int(seed, "seed", minimum=0)
    cfg = _train_config(lr, max_epochs, alpha, loss_threshold, schedule_epochs, min_lr_ratio)

    data = [_seed_data(seed, s, K, n, d, perturbation) for s in range(S)]
    Xs, y = [X for X, _ in data], data[0][1]
    rows: dict[str, list[float]] = {c: [] for c in _GRID_COLUMNS}
    trained: list[DeepLinearNetwork] = []
    for L in sorted({p[0] for p in pairs}):
        runs = [(h, s) for (L2, h) in pairs if L2 == L for s in range(S)]
        nets = [_network(d, h, K, L, xi, seed_stream(seed, s, _INIT, L, h), torch.float64)
                for h, s in runs]
        init = [[W.clone() for W in net.weights()] for net in nets]
        if reduce:
            hists = _train_reduced(nets, init, [Xs[s] for _, s in runs], y, cfg, device)
        else:
            hists = _train_full(nets, [Xs[s] for _, s in runs], [h for h, _ in runs], y, cfg,
                                device)
        for (h, s), net, W0, hist in zip(runs, nets, init, hists, strict=True):
            row = _grid_row(net, W0, hist, Xs[s], y, alpha)
            for name, value in (("depth", L), ("width", h), ("seed", s), *row.items()):
                rows[name].append(value)
        trained.extend(nets)
    table = LayerTable(rows)
    return (table, trained) if return_models else table


#: Columns of an :func:`assumption_grid` table, in order.
_GRID_COLUMNS: tuple[str, ...] = (
    "depth", "width", "seed", "residual", "residual_null", "balance", "balance_conserved",
    "bulk_variance", "epochs", "converged", "final_loss",
)


def _grid_pairs(grid: Any, dim: int) -> list[tuple[int, int]]:
    """The validated ``(depth, width)`` pairs of :func:`assumption_grid` (width >= `dim`)."""
    if isinstance(grid, Mapping) or not isinstance(grid, Sequence) or not grid:
        raise ValueError("grid must be a non-empty list of (depth, width) pairs")
    pairs = []
    for i, pair in enumerate(grid):
        if not isinstance(pair, Sequence) or len(pair) != 2:
            raise ValueError(f"grid[{i}] must be a (depth, width) pair, got {pair!r}")
        pairs.append((check_int(pair[0], "depth", minimum=2), check_int(pair[1], "width", 1)))
    if len(set(pairs)) != len(pairs):
        raise ValueError("grid has repeated (depth, width) pairs")
    for L, h in pairs:
        if h < dim:
            raise ValueError(f"width {h} (depth {L}) is below the input dimension d = {dim}")
    return pairs


def _train_full(nets: list[DeepLinearNetwork], Xs: list[Tensor], widths: list[int], y: Tensor,
                cfg: TrainConfig, device: torch.device | str) -> list[History]:
    """Train `nets` (one depth) at full width: one :func:`train_many` call per width."""
    hists: list[Any] = [None] * len(nets)
    for h in sorted(set(widths)):
        idx = [i for i, h2 in enumerate(widths) if h2 == h]
        X = torch.stack([Xs[i] for i in idx])  # (S', N, d)
        for i, hist in zip(idx, train_many([nets[i] for i in idx], X, y, cfg, device=device),
                           strict=True):
            hists[i] = hist
    return hists


def _grid_row(net: DeepLinearNetwork, W0: list[Tensor], hist: History, X: Tensor, y: Tensor,
              alpha: float) -> dict[str, float]:
    """The measured columns of one trained network of :func:`assumption_grid`."""
    Ws = [W.detach().to("cpu", torch.float64) for W in net.weights()]
    imbalance0 = _theory.balancedness(W0, normalize=False, reduce=False)
    norms = torch.stack([torch.linalg.matrix_norm(W) for W in Ws[:-1]])
    bulk = _theory.bulk_singular_values(Ws, net.num_classes)
    return {
        "residual": _theory.min_norm_residual(Ws, X, y, alpha),
        "residual_null": residual_split(Ws, X, y, alpha)[1],
        "balance": _theory.balancedness(Ws),
        "balance_conserved": float((imbalance0 / norms).mean()),
        "bulk_variance": float(bulk.var(correction=0)),
        "epochs": hist.epochs_run,
        "converged": float(hist.converged),
        "final_loss": hist.final_loss,
    }


def _train_reduced(
    nets: list[DeepLinearNetwork],
    init: list[list[Tensor]],
    Xs: list[Tensor],
    y: Tensor,
    cfg: TrainConfig,
    device: torch.device | str,
) -> list[History]:
    """Train `nets` (one depth) in their invariant subspaces, then write the lifted weights.

    Networks whose reduced shapes agree (all of them, when every width is at least
    ``rank(X) + K``) are trained by one :func:`train_many` call.
    """
    f64 = torch.float64
    K, L = nets[0].num_classes, nets[0].depth
    bases = [
        _invariant_bases(W0, _row_basis(X.to("cpu", f64)))
        for W0, X in zip(init, Xs, strict=True)
    ]
    w0s = [_reduce(W0, B) for W0, B in zip(init, bases, strict=True)]
    smalls = []
    for w0 in w0s:
        m, r = w0[0].shape  # (m, r): reduced width and input dimension
        small = DeepLinearNetwork(r, m, K, depth=L, init="gaussian", init_scale=1.0,
                                  generator=torch.Generator().manual_seed(0)).to(f64)
        with torch.no_grad():
            for p, w in zip(small.weights(), w0, strict=True):
                p.copy_(w)
        smalls.append(small)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, w0 in enumerate(w0s):
        groups.setdefault(tuple(w0[0].shape), []).append(i)
    hists: list[Any] = [None] * len(nets)
    for idx in groups.values():
        X = torch.stack([Xs[i].to("cpu", f64) @ bases[i][0] for i in idx])  # (S', N, r)
        for i, hist in zip(idx, train_many([smalls[i] for i in idx], X, y, cfg, device=device),
                           strict=True):
            hists[i] = hist
    for i, small in enumerate(smalls):
        w = [W.detach().to("cpu", f64) for W in small.weights()]
        full = _lift(init[i], w0s[i], w, bases[i])
        with torch.no_grad():
            for p, W in zip(nets[i].weights(), full, strict=True):
                p.copy_(W.to(p.device, p.dtype))
    return hists


def grid_summary(table: LayerTable) -> LayerTable:
    """Mean and standard deviation over seeds of an :func:`assumption_grid` table.

    Parameters
    ----------
    table : LayerTable
        The output of :func:`assumption_grid`.

    Returns
    -------
    LayerTable
        One row per (depth, width), in the order of first appearance, columns ``depth,
        width, num_seeds``, then ``<q>_mean`` and ``<q>_std`` (population standard deviation,
        as ``numpy.std``) for ``q`` in ``residual, residual_null, balance,
        balance_conserved, bulk_variance, epochs``, then ``bulk_variance_max`` and
        ``converged`` (fraction of converged runs).

    Examples
    --------
    >>> t = LayerTable({"depth": [2, 2], "width": [60, 60], "seed": [0, 1],
    ...                 "residual": [1.0, 3.0], "residual_null": [1.0, 3.0],
    ...                 "balance": [0.0, 0.0], "balance_conserved": [0.0, 0.0],
    ...                 "bulk_variance": [0.0, 1e-12], "epochs": [10, 20],
    ...                 "converged": [1, 1], "final_loss": [0.0, 0.0]})
    >>> s = grid_summary(t)
    >>> s.residual_mean.tolist(), s.residual_std.tolist(), s.bulk_variance_max.tolist()
    ([2.0], [1.0], [1e-12])

    Used in: ch04 (through :mod:`pncutils.book.assumptions`).
    """
    if not isinstance(table, LayerTable):
        raise ValueError(f"table must be a LayerTable from assumption_grid, got {type(table)}")
    needed = ("depth", "width", "residual", "residual_null", "balance", "balance_conserved",
              "bulk_variance", "epochs", "converged")
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks the column(s) {missing} of an assumption_grid table")
    keys: list[tuple[float, float]] = []
    for L, h in zip(table.depth.tolist(), table.width.tolist(), strict=True):
        if (L, h) not in keys:
            keys.append((L, h))
    quantities = ("residual", "residual_null", "balance", "balance_conserved", "bulk_variance",
                  "epochs")
    cols: dict[str, list[float]] = {"depth": [], "width": [], "num_seeds": []}
    for q in quantities:
        cols[f"{q}_mean"], cols[f"{q}_std"] = [], []
    cols["bulk_variance_max"], cols["converged"] = [], []
    for L, h in keys:
        sel = (table.depth == L) & (table.width == h)
        cols["depth"].append(L)
        cols["width"].append(h)
        cols["num_seeds"].append(float(sel.sum()))
        for q in quantities:
            v = table[q][sel]
            cols[f"{q}_mean"].append(float(v.mean()))
            cols[f"{q}_std"].append(float(v.std(correction=0)))
        cols["bulk_variance_max"].append(float(table.bulk_variance[sel].max()))
        cols["converged"].append(float(table.converged[sel].mean()))
    return LayerTable(cols)


def predicted_balance(
    depth: int,
    width: int,
    dim: int = 50,
    num_classes: int = 3,
    num_per_class: int = 10,
    init_scale: float = 0.1,
    alpha: float = 1.0,
) -> float:
    """Balance error after training, predicted from the imbalance of the initialisation.

    Gradient flow conserves ``W_{l+1}^T W_{l+1} - W_l W_l^T`` (book chapter 2), so the
    numerators of the balance error keep their values at the orthogonal initialisation of
    scale ``xi``: ``xi^2 sqrt(h - d)`` for the pair (W_1, W_2) (``W_1`` is ``h x d``),
    ``xi^2 sqrt(h - K)`` for the pair (W_{L-1}, W_L), and 0 for the hidden pairs; for
    ``L = 2`` the single pair has ``xi^2 sqrt(K + d - 2Kd/h)`` (the root of its expected
    square for random subspaces). The denominators ``||W_l||_F`` are those of the trained
    weights, taken from the idealised network: K signal singular values
    ``s^{1/L}`` with ``s = sqrt(n) / alpha`` and a bulk at ``xi`` (``d - K`` values for
    ``W_1``, ``h - K`` for a hidden weight).

    Parameters
    ----------
    depth : int
        L >= 2.
    width : int
        Hidden width h >= dim.
    dim, num_classes, num_per_class : int
        d, K and n of the data.
    init_scale : float
        xi > 0.
    alpha : float
        Output scale.

    Returns
    -------
    float
        The mean over l = 1..L-1 of ``||W_{l+1}^T W_{l+1} - W_l W_l^T||_F / ||W_l||_F``.

    Examples
    --------
    >>> round(predicted_balance(3, 400), 4)  # the authors' notebook shows about 0.066
    0.0664

    Used in: ch04.
    """
    L = check_int(depth, "depth", minimum=2)
    d = check_int(dim, "dim", minimum=1)
    h = check_int(width, "width", minimum=d)
    K = check_int(num_classes, "num_classes", minimum=2)
    if K >= d:
        raise ValueError(f"num_classes = {K} must be below dim = {d}")
    n = check_int(num_per_class, "num_per_class", minimum=1)
    xi2 = check_float(init_scale, "init_scale", minimum=0.0, strict=True) ** 2
    alpha = check_float(alpha, "alpha", minimum=0.0, strict=True)
    s2 = (n / alpha**2) ** (1.0 / L)  # s^{2/L}, squared signal singular value per layer
    norm_first = math.sqrt(K * s2 + xi2 * (d - K))
    if L == 2:
        return xi2 * math.sqrt(K + d - 2.0 * K * d / h) / norm_first
    norm_last = math.sqrt(K * s2 + xi2 * (h - K))
    return (xi2 * math.sqrt(h - d) / norm_first + xi2 * math.sqrt(h - K) / norm_last) / (L - 1)
