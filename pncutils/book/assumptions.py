"""Chapter 4's experiment (``fig6``): the assumptions of the theorem after training.

Networks of several depths and widths are trained on the paper's synthetic data
(:func:`pncutils.book.experiments.assumption_grid`, which trains them exactly in the
subspaces gradient descent never leaves) and measured: the minimum-norm residual, the balance
error and the variance of the bulk singular values.

* :data:`SCALES`: the registered configurations; chapter 4 runs the ``book`` one (``quick``
  in quick mode) live;
* :func:`run` (and :func:`run_with_models`, which also returns the trained networks): the
  typed :class:`Fig6Result` of a result file;
* :data:`PAPER_ASSUMPTION_VALUES`: the authors' notebook's numbers, and
  :func:`notebook_comparison` against them; :func:`predicted_balances`, the balance errors
  predicted from the initialisation;
* :func:`plot_assumption_grid`: the figure.

Examples
--------
>>> cfg = SCALES["quick"].replace(depths=[2], widths=[60], width_for_depths=60,
...                               depth_for_widths=2, num_seeds=1)
>>> res = run(cfg)
>>> res.grid, res.all_converged, len(res.runs)
([(2, 60)], True, 1)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pncutils.book.config import Config, Result
from pncutils.book.experiments import (
    assumption_grid,
    grid_points,
    grid_summary,
    predicted_balance,
)
from pncutils.metrics import LayerTable
from pncutils.models import DeepLinearNetwork

__all__ = [
    "SCALES",
    "PAPER_ASSUMPTION_VALUES",
    "Fig6Result",
    "run",
    "run_with_models",
    "predicted_balances",
    "notebook_comparison",
    "plot_assumption_grid",
]

_COMMON = dict(
    num_classes=3, num_per_class=10, dim=50,  # the paper's N = 30, d = 50, K = 3
    init_scale=0.1,  # orthogonal xi of the authors' assumption/train.py
    alpha=1.0,  # output scale (the authors' assumption runs use 1)
    lr=0.1,  # full-batch GD, cosine decay to 1e-4 over 1e5 epochs (also the budget)
    min_lr_ratio=1e-3,
    max_epochs=100_000,
    loss_threshold=1e-10,  # stop at loss < 1e-10
    seed=0,  # base seed of the random streams (data and weights drawn independently)
)

#: The configurations of ``fig6`` (and of chapter 4's grid) per scale. ``depths`` are the
#: top row of the figure, at width ``width_for_depths``; ``widths`` the bottom row, at depth
#: ``depth_for_widths``; ``num_seeds`` seeds per (depth, width) pair (the authors: 10).
SCALES: dict[str, Config] = {
    "quick": Config(depths=[2, 3, 4], width_for_depths=400, widths=[200, 400, 700],
                    depth_for_widths=3, num_seeds=2, **_COMMON),
    "book": Config(depths=[2, 3, 4, 5], width_for_depths=400, widths=[200, 400, 700],
                   depth_for_widths=5, num_seeds=2, **_COMMON),
    "paper": Config(depths=[2, 3, 4, 5], width_for_depths=400,
                    widths=[200, 300, 400, 500, 600, 700], depth_for_widths=5, num_seeds=10,
                    **_COMMON),
}

#: The assumption figure of the authors' notebook (Heimine/PNC_DLN,
#: ``assumption/assumption.ipynb``; the book quotes it as "the authors' notebook", not as the
#: paper), ``(depth, width) -> (min-norm residual, balance error)``: means over 10 seeds read
#: off the notebook's output, accurate to about +-0.004 (residual) and +-0.002 (balance). The
#: variance of the bulk singular values is about 0 everywhere.
PAPER_ASSUMPTION_VALUES: dict[tuple[int, int], tuple[float, float]] = {
    (2, 400): (0.049, 0.023),
    (3, 400): (0.047, 0.066),
    (4, 400): (0.044, 0.048),
    (5, 400): (0.040, 0.0375),
    (5, 200): (0.059, 0.027),
    (5, 300): (0.047, 0.033),
    (5, 500): (0.037, 0.041),
    (5, 600): (0.034, 0.044),
    (5, 700): (0.029, 0.047),
}


@dataclass(frozen=True)
class Fig6Result(Result):
    """The result of ``fig6``.

    Attributes
    ----------
    grid : list of (int, int)
        The (depth, width) pairs (:func:`pncutils.book.experiments.grid_points`).
    runs : LayerTable
        One row per (depth, width, seed): :func:`pncutils.book.experiments.assumption_grid`.
    summary : LayerTable
        One row per pair: :func:`pncutils.book.experiments.grid_summary` of ``runs``.
    all_converged : bool
    residual_max, balance_max, bulk_variance_max : float
        The largest values over the runs.

    Examples
    --------
    >>> cfg = SCALES["quick"].replace(depths=[2], widths=[60], width_for_depths=60,
    ...                               depth_for_widths=2, num_seeds=1)
    >>> res = run(cfg)
    >>> res.summary.num_seeds.tolist(), Fig6Result.from_dict(res.to_dict()) == res
    ([1.0], True)

    Used in: ch04, ch09.
    """

    grid: list[tuple[int, int]]
    runs: LayerTable
    summary: LayerTable
    all_converged: bool
    residual_max: float
    balance_max: float
    bulk_variance_max: float


def run_with_models(cfg: Config, device: torch.device | str = "cpu"
                    ) -> tuple[Fig6Result, list[DeepLinearNetwork]]:
    """Train the grid of a ``fig6`` configuration; the result and the trained networks.

    Parameters
    ----------
    cfg : Config
        One of :data:`SCALES`, possibly ``.replace``-d.
    device : torch.device or str, default "cpu"

    Returns
    -------
    result : Fig6Result
    networks : list of DeepLinearNetwork
        The trained (full-width) networks, in the order of the rows of ``result.runs``.

    Examples
    --------
    >>> cfg = SCALES["quick"].replace(depths=[2], widths=[60], width_for_depths=60,
    ...                               depth_for_widths=2, num_seeds=2, max_epochs=100)
    >>> res, nets = run_with_models(cfg)
    >>> len(nets) == len(res.runs) == 2, nets[0].weights()[0].shape
    (True, torch.Size([60, 50]))

    Used in: ch04.
    """
    grid = grid_points(cfg.depths, cfg.width_for_depths, cfg.widths, cfg.depth_for_widths)
    runs, nets = assumption_grid(
        grid, cfg.num_seeds, cfg.init_scale, cfg.alpha, cfg.lr, cfg.max_epochs,
        cfg.loss_threshold, cfg.max_epochs, cfg.min_lr_ratio, num_classes=cfg.num_classes,
        num_per_class=cfg.num_per_class, dim=cfg.dim, seed=cfg.seed, device=device,
        return_models=True,
    )
    result = Fig6Result(
        grid=grid, runs=runs, summary=grid_summary(runs),
        all_converged=bool(runs.converged.all()), residual_max=float(runs.residual.max()),
        balance_max=float(runs.balance.max()),
        bulk_variance_max=float(runs.bulk_variance.max()),
    )
    return result, nets


def run(cfg: Config, device: Any = "cpu") -> Fig6Result:
    """The experiment ``fig6``: :func:`run_with_models` without the networks.

    Parameters
    ----------
    cfg : Config
        One of :data:`SCALES`, possibly ``.replace``-d.
    device : torch.device or str, default "cpu"

    Returns
    -------
    Fig6Result

    Examples
    --------
    >>> cfg = SCALES["quick"].replace(depths=[2], widths=[60], width_for_depths=60,
    ...                               depth_for_widths=2, num_seeds=1)
    >>> run(cfg).residual_max < 0.2
    True

    Used in: ch04, ch09.
    """
    return run_with_models(cfg, device)[0]


def predicted_balances(cfg: Config, pairs: Iterable[tuple[Any, Any]]) -> list[float]:
    """:func:`pncutils.book.experiments.predicted_balance` of (depth, width) pairs.

    Parameters
    ----------
    cfg : Config
        A ``fig6`` configuration (its data, ``init_scale`` and ``alpha``).
    pairs : iterable of (depth, width)
        Numbers or 0-d tensors (e.g. ``zip(table.depth, table.width)``).

    Returns
    -------
    list of float
        The balance error predicted from the initialisation, one per pair.

    Examples
    --------
    >>> [round(b, 4) for b in predicted_balances(SCALES["book"], [(3, 400)])]
    [0.0664]

    Used in: ch04.
    """
    return [predicted_balance(int(L), int(h), dim=cfg.dim, num_classes=cfg.num_classes,
                              num_per_class=cfg.num_per_class, init_scale=cfg.init_scale,
                              alpha=cfg.alpha) for L, h in pairs]


def notebook_comparison(
    result: Fig6Result,
    cfg: Config,
    reference: Mapping[tuple[int, int], tuple[float, float]] = PAPER_ASSUMPTION_VALUES,
) -> LayerTable:
    """The seed means of a ``fig6`` result beside the authors' notebook's values.

    Parameters
    ----------
    result : Fig6Result
    cfg : Config
        Its configuration (for the predicted balance errors).
    reference : mapping, default :data:`PAPER_ASSUMPTION_VALUES`
        ``(depth, width) -> (residual, balance error)``.

    Returns
    -------
    LayerTable
        One row per pair of the result that `reference` has, in the result's order:
        ``depth, width, residual, residual_std`` (mean and population standard deviation
        over seeds), ``residual_notebook, balance, balance_notebook, balance_predicted``
        (:func:`predicted_balances`).

    Examples
    --------
    >>> cfg = SCALES["quick"].replace(depths=[2], widths=[60], num_seeds=1,
    ...                               depth_for_widths=2)
    >>> t = notebook_comparison(run(cfg), cfg)
    >>> t.width.tolist(), t.balance_notebook.tolist()
    ([400.0], [0.023])

    Used in: ch04, ch09.
    """
    s = result.summary
    pairs = [(int(L), int(h)) for L, h in zip(s.depth.tolist(), s.width.tolist(), strict=True)]
    keep = [i for i, p in enumerate(pairs) if p in reference]
    kept = [pairs[i] for i in keep]
    return LayerTable({
        "depth": [L for L, _ in kept], "width": [h for _, h in kept],
        "residual": s.residual_mean[keep], "residual_std": s.residual_std[keep],
        "residual_notebook": [reference[p][0] for p in kept],
        "balance": s.balance_mean[keep], "balance_notebook": [reference[p][1] for p in kept],
        "balance_predicted": predicted_balances(cfg, kept),
    })


def _grid_axes(axes: Any) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(2, 3, figsize=(10.5, 5.6), layout="constrained")
        return fig, axes
    axes = np.asarray(axes)
    if axes.shape != (2, 3):
        raise ValueError(f"axes must have shape (2, 3), got {axes.shape}")
    return axes[0, 0].figure, axes


def plot_assumption_grid(
    result: Fig6Result,
    cfg: Config,
    reference: Mapping[tuple[int, int], tuple[float, float]] | None = None,
    prediction: bool = False,
    axes: Any | None = None,
) -> tuple[Any, Any]:
    """Figure 6: the assumption checks against depth (top row) and width (bottom row).

    Columns: minimum-norm residual, balance error, variance of the bulk singular values (log
    scale), each as mean +- standard deviation over seeds (``result.summary``).

    Parameters
    ----------
    result : Fig6Result
    cfg : Config
        Its configuration: the top row is ``width_for_depths``, the bottom row
        ``depth_for_widths``.
    reference : mapping, optional
        ``(depth, width) -> (residual, balance)`` drawn as crosses labelled "authors'
        notebook" (e.g. :data:`PAPER_ASSUMPTION_VALUES`).
    prediction : bool, default False
        Draw the balance error predicted from the initialisation (:func:`predicted_balances`)
        dashed.
    axes : array of Axes, shape (2, 3), optional

    Returns
    -------
    fig, axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> cfg = SCALES["quick"].replace(depths=[2, 3], width_for_depths=60, widths=[60, 80],
    ...                               num_seeds=1, max_epochs=200)
    >>> fig, axes = plot_assumption_grid(run(cfg), cfg, prediction=True)
    >>> axes.shape, axes[0, 2].get_yscale(), axes[0, 1].lines[-1].get_label()
    ((2, 3), 'log', 'predicted from the init')
    >>> plt.close(fig)

    Used in: ch04, ch09.
    """
    fig, axes = _grid_axes(axes)
    summary = result.summary
    quantities = (("residual", r"min-norm residual $\|W^\star - W_{L:1}\|_F$"),
                  ("balance", "balance error (normalised, mean over $l$)"),
                  ("bulk_variance", "variance of bulk singular values"))
    w, d = cfg.width_for_depths, cfg.depth_for_widths
    lines = (("depth", "width", w, f"depth $L$ (width {w})"),
             ("width", "depth", d, f"width $h$ (depth $L = {d}$)"))
    for row, (x_name, fixed, value, xlabel) in enumerate(lines):
        sel = summary[fixed] == value
        if not bool(sel.any()):
            raise ValueError(f"the result has no rows with {fixed} = {value}")
        x = summary[x_name][sel].numpy()
        order = np.argsort(x)
        x = x[order]
        pairs = [(int(v), int(value)) if x_name == "depth" else (int(value), int(v)) for v in x]
        for col, (q, ylabel) in enumerate(quantities):
            ax = axes[row, col]
            mean = summary[f"{q}_mean"][sel].numpy()[order]
            std = summary[f"{q}_std"][sel].numpy()[order]
            ax.errorbar(x, mean, yerr=std, fmt="o-", capsize=3, label="this book")
            if q == "balance" and prediction:
                ax.plot(x, predicted_balances(cfg, pairs), "--", color="0.3",
                        label="predicted from the init")
            if reference is not None and q != "bulk_variance":
                ref = [(v, reference[p][col]) for v, p in zip(x, pairs, strict=True)
                       if p in reference]
                if ref:
                    ax.plot(*zip(*ref, strict=True), "x", color="#D55E00", markersize=8,
                            mew=2, label="authors' notebook")
            if q == "bulk_variance":
                ax.set_yscale("log")
            ax.set(xlabel=xlabel, xticks=x)
            ax.set_ylabel(ylabel, fontsize=8)
            if row == 0 and col < 2:
                ax.legend(fontsize=7)
    return fig, axes
