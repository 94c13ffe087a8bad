"""The book's figure style and layerwise plots with fitted lines and theory overlays.

Every function returns Matplotlib objects (``fig, ax``) and never calls ``plt.show``; the
chapters do. Captions belong to the book (``mystnb.figure.caption``), so no function sets a title.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
import torch
from matplotlib import ticker  # pyplot is imported on first use only

from pncutils.metrics import LayerTable, linear_fit

__all__ = [
    "COLORS",
    "use_book_style",
    "plot_layerwise",
    "plot_history",
    "plot_spectrum",
    "save_figure_data",
]

#: Okabe-Ito colour-blind-safe palette.
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")

_STYLE = {
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=list(COLORS)),
    "font.size": 10,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "lines.markersize": 5,
}


def use_book_style() -> None:
    """Apply the book's Matplotlib style (colour-blind-safe colours, light grid).

    Examples
    --------
    >>> use_book_style(); mpl.rcParams["axes.grid"]
    True

    Used in: ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09.
    """
    mpl.rcParams.update(_STYLE)


def _column(table: LayerTable | dict[str, Any], name: str) -> np.ndarray:
    values = table[name]
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


def _select(layers: np.ndarray, values: np.ndarray, fit_layers: Sequence[int] | None):
    if fit_layers is None:
        mask = np.ones_like(layers, dtype=bool)
    else:
        mask = np.isin(layers, np.asarray(list(fit_layers)))
    if mask.sum() < 2:
        raise ValueError("fit_layers must select at least two layers of the table")
    return layers[mask], values[mask]


def plot_layerwise(
    table: LayerTable,
    axes: Sequence[Any] | None = None,
    theory: LayerTable | None = None,
    fit: bool = True,
    fit_layers: Sequence[int] | None = None,
    label: str | None = None,
    color: str | None = None,
    theory_label: str = "theory",
) -> tuple[Any, Any]:
    """Plot C_l (log scale) and D_l against the layer, with fitted lines and a theory overlay.

    Left panel: ``C_l`` on a log axis and the least-squares line of ``log10 C_l`` (its slope
    is ``log10`` of the per-layer ratio; the legend gives the ratio and R^2). Right panel:
    ``D_l`` with its least-squares line (slope and R^2 in the legend).

    Parameters
    ----------
    table : LayerTable
        Needs columns ``layer``, ``compression`` and ``discrimination``.
    axes : pair of Axes, optional
        Where to draw; a new ``1 x 2`` figure when omitted.
    theory : LayerTable, optional
        Predicted curves (e.g. :func:`pncutils.theory.predicted_metrics`) drawn dashed.
    fit : bool, default True
        Draw the fitted lines.
    fit_layers : sequence of int, optional
        Layers used by the fits (default: all rows; the paper fits ``D_l`` from ``l = 1``).
    label, color : str, optional
        Legend label and colour of the measured curves.
    theory_label : str, default "theory"

    Returns
    -------
    fig, axes
        The figure and the two axes ``(ax_C, ax_D)``.

    Examples
    --------
    >>> t = LayerTable({"layer": [0, 1, 2], "compression": [10., 1., .1],
    ...                 "discrimination": [.9, .95, 1.]})
    >>> fig, (ax_c, ax_d) = plot_layerwise(t)
    >>> ax_c.get_yscale()
    'log'
    >>> import matplotlib.pyplot as plt; plt.close(fig)

    Used in: ch01, ch03.
    """
    if axes is None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.6), layout="constrained")
    else:
        if len(axes) != 2:
            raise ValueError("axes must be a pair (ax_C, ax_D)")
        fig = axes[0].figure
    ax_c, ax_d = axes
    color = color or COLORS[0]
    layers = _column(table, "layer")
    C, D = _column(table, "compression"), _column(table, "discrimination")
    prefix = f"{label}: " if label else ""
    ax_c.semilogy(layers, C, "o", color=color, label=f"{prefix}measured" if fit else label)
    ax_d.plot(layers, D, "o", color=color, label=f"{prefix}measured" if fit else label)
    if fit:
        lc, vc = _select(layers, C, fit_layers)
        if (vc > 0).all():
            f = linear_fit(lc, np.log10(vc))
            xs = np.linspace(lc.min(), lc.max(), 50)
            ax_c.semilogy(xs, 10 ** (f.slope * xs + f.intercept), "-", color=color, alpha=0.7,
                          label=f"{prefix}fit: ratio {10**f.slope:.3g}/layer, $R^2$={f.r2:.3f}")
        ld, vd = _select(layers, D, fit_layers)
        f = linear_fit(ld, vd)
        xs = np.linspace(ld.min(), ld.max(), 50)
        ax_d.plot(xs, f.slope * xs + f.intercept, "-", color=color, alpha=0.7,
                  label=f"{prefix}fit: slope {f.slope:.3g}/layer, $R^2$={f.r2:.3f}")
    if theory is not None:
        tl = _column(theory, "layer")
        if "compression" in theory.columns:
            ax_c.semilogy(tl, _column(theory, "compression"), "--", color="0.3",
                          label=theory_label)
        if "discrimination" in theory.columns:
            ax_d.plot(tl, _column(theory, "discrimination"), "--", color="0.3",
                      label=theory_label)
    ax_c.set_xlabel("layer $l$")
    ax_c.set_ylabel(r"$C_l = \mathrm{tr}\,\Sigma_W / \mathrm{tr}\,\Sigma_B$ (log scale)")
    ax_d.set_xlabel("layer $l$")
    ax_d.set_ylabel(r"$D_l = 1 - \max_{k\neq k'} \cos(\mu_k, \mu_{k'})$")
    for ax in axes:
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.legend(fontsize=8)
    return fig, axes


def plot_history(history: Any, ax: Any | None = None, label: str | None = None) -> tuple[Any, Any]:
    """Plot the training loss per epoch on a log scale.

    Parameters
    ----------
    history : History or sequence of float
        A :class:`pncutils.training.History` (its ``loss``) or the losses themselves.
    ax : Axes, optional
    label : str, optional

    Returns
    -------
    fig, ax

    Examples
    --------
    >>> fig, ax = plot_history([1.0, 0.1, 0.01]); ax.get_yscale()
    'log'
    >>> import matplotlib.pyplot as plt; plt.close(fig)

    Used in: ch03.
    """
    losses = np.asarray(getattr(history, "loss", history), dtype=np.float64)
    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(layout="constrained")
    else:
        fig = ax.figure
    ax.semilogy(np.arange(len(losses)), losses, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (log scale)")
    if label:
        ax.legend()
    return fig, ax


def plot_spectrum(
    weights: Sequence[Any], ax: Any | None = None, num_values: int | None = None
) -> tuple[Any, Any]:
    """Plot the singular values of each weight matrix (one line per layer, log scale).

    Parameters
    ----------
    weights : sequence of Tensor
        ``[W_1, ..., W_L]``, each ``(out, in)``.
    ax : Axes, optional
    num_values : int, optional
        Show only the largest ``num_values`` singular values of each layer.

    Returns
    -------
    fig, ax

    Examples
    --------
    >>> fig, ax = plot_spectrum([torch.eye(3), 2 * torch.eye(3)]); len(ax.lines)
    2
    >>> import matplotlib.pyplot as plt; plt.close(fig)

    Used in: ch02.
    """
    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(layout="constrained")
    else:
        fig = ax.figure
    cmap = mpl.colormaps["viridis"]
    n = len(weights)
    for l, W in enumerate(weights, start=1):
        s = torch.linalg.svdvals(torch.as_tensor(W).detach().to("cpu", torch.float64)).numpy()
        if num_values is not None:
            s = s[:num_values]
        ax.semilogy(np.arange(1, len(s) + 1), s, ".-", color=cmap(l / max(n, 1)),
                    label=f"$W_{{{l}}}$")
    ax.set_xlabel("index $i$")
    ax.set_ylabel(r"singular value $\sigma_i(W_l)$ (log scale)")
    ax.legend(fontsize=8, ncol=2)
    return fig, ax


def save_figure_data(
    data: LayerTable | Mapping[str, Any], name: str, folder: str | os.PathLike[str] = "figure-data"
) -> str:
    """Write the numbers a figure draws to ``<folder>/<name>.csv``, so readers can download them.

    The chapters call it in their figure cells and link the file with the ``{download}`` role;
    they run with the notebook's folder as working directory, so the default ``folder`` is
    ``book/figure-data``. The file is written atomically (:meth:`LayerTable.to_csv`).

    Parameters
    ----------
    data : LayerTable or mapping of str to 1-D sequence or tensor
        The columns (equal lengths); a mapping is converted to a :class:`LayerTable`.
    name : str
        File name without the ``.csv`` suffix (the book uses the figure's name).
    folder : str or path-like, default "figure-data"
        Created when missing.

    Returns
    -------
    str
        The path of the written file, ``os.path.join(folder, name + ".csv")``.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> path = save_figure_data({"layer": [0, 1], "compression": [2.0, 0.5]}, "fig", folder)
    >>> os.path.basename(path), LayerTable.from_csv(path).compression.tolist()
    ('fig.csv', [2.0, 0.5])

    Used in: ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09.
    """
    if not isinstance(data, LayerTable):
        data = LayerTable(data)
    if not name or os.sep in name or (os.altsep and os.altsep in name):
        raise ValueError(f"name must be a plain file name, got {name!r}")
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.csv")
    data.to_csv(path)
    return path
