"""Interactive explorers (ipywidgets) for the metrics (chapter 1) and the theory (chapter 3).

Each explorer is a pure function that computes everything it shows (:func:`explorer_values`,
:func:`theory_values`, testable without a browser) and a widget that calls it whenever a slider
moves (:func:`metrics_explorer`, :func:`theory_explorer`). The widgets draw into an
``ipywidgets.Image`` (a PNG rendered off-screen), so they work in Jupyter, JupyterLab and Colab
and need no interactive Matplotlib backend. ipywidgets is imported inside the widget functions:
``pncutils`` itself imports without it.

A rendered web page cannot run the Python callbacks, so the book pairs every explorer with a
static figure (:func:`plot_explorer_grid`, or the chapters' own figures).

See Also
--------
book chapter 1 : the metrics explorer; book chapter 3 : the theory explorer.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from pncutils import metrics, theory
from pncutils._checks import check_float, check_int
from pncutils.data import orthogonal_dataset
from pncutils.plotting import COLORS

__all__ = [
    "explorer_values",
    "draw_explorer",
    "plot_explorer_grid",
    "metrics_explorer",
    "theory_values",
    "draw_theory",
    "theory_explorer",
]


def _ipywidgets():
    """Import ipywidgets, or say how to get it (it is not a dependency of pncutils itself)."""
    try:
        import ipywidgets
    except ImportError as err:  # pragma: no cover - ipywidgets is in every tested environment
        raise ImportError(
            "the explorers need ipywidgets: `pip install ipywidgets` (Colab and the book's "
            "environment have it), or `pip install pncutils[widgets]`"
        ) from err
    return ipywidgets


# ----------------------------------------------------------------------------------------
# the metrics explorer (chapter 1)
# ----------------------------------------------------------------------------------------


def _class_directions(num_classes: int, dim: int) -> Tensor:
    """Unit vectors at equal angles in the first two coordinates, ``(K, dim)``."""
    ang = math.pi / 2 + 2 * math.pi * torch.arange(num_classes, dtype=torch.float64) / num_classes
    U = torch.zeros(num_classes, dim, dtype=torch.float64)
    U[:, 0], U[:, 1] = ang.cos(), ang.sin()
    return U


@functools.lru_cache(maxsize=16)
def _base_noise(num_samples: int, dim: int, seed: int) -> Tensor:
    return torch.randn(num_samples, dim, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


def explorer_values(
    spread: float = 2.0,
    noise: float = 0.5,
    offset: float = 0.0,
    num_classes: int = 3,
    num_per_class: int = 40,
    dim: int = 2,
    seed: int = 0,
) -> dict[str, Any]:
    """The toy data set of the metrics explorer and its metrics.

    ``K`` Gaussian classes: class ``k`` is centred at ``spread * u_k + offset * o``, where the
    unit vectors ``u_k`` are equally spaced on a circle in the first two coordinates and
    ``o = (1, ..., 1) / sqrt(dim)`` is a common offset; every sample adds ``noise * z`` with a
    standard normal ``z`` drawn once per ``seed`` (so moving a slider moves the same points).

    Parameters
    ----------
    spread : float, default 2.0
        Distance of the class centres from their centroid (> 0).
    noise : float, default 0.5
        Within-class standard deviation per coordinate (>= 0).
    offset : float, default 0.0
        Length of the common offset added to every sample.
    num_classes : int, default 3
        K >= 2.
    num_per_class : int, default 40
        n >= 2.
    dim : int, default 2
        Feature dimension (>= 2).
    seed : int, default 0
        Seed of the noise draws.

    Returns
    -------
    dict
        ``X`` (N, dim) and ``y`` (N,) the data; ``means`` (K, dim) the class means;
        ``compression`` (C), ``discrimination`` (the paper's D: uncentred, signed),
        ``discrimination_centered``, ``nc1``, and the arguments.

    Examples
    --------
    >>> v = explorer_values(spread=2.0, noise=0.5)
    >>> shifted = explorer_values(spread=2.0, noise=0.5, offset=3.0)  # C ignores the offset
    >>> v["X"].shape, abs(v["compression"] - shifted["compression"]) < 1e-12
    (torch.Size([120, 2]), True)

    Used in: ch01.
    """
    spread = check_float(spread, "spread", minimum=0.0, strict=True)
    noise = check_float(noise, "noise", minimum=0.0)
    offset = check_float(offset, "offset")
    K = check_int(num_classes, "num_classes", minimum=2)
    n = check_int(num_per_class, "num_per_class", minimum=2)
    dim = check_int(dim, "dim", minimum=2)
    seed = check_int(seed, "seed", minimum=0)
    y = torch.arange(K).repeat_interleave(n)
    o = torch.full((dim,), 1.0 / math.sqrt(dim), dtype=torch.float64)
    X = spread * _class_directions(K, dim)[y] + noise * _base_noise(K * n, dim, seed) + offset * o
    return {
        "X": X,
        "y": y,
        "means": metrics.class_means(X, y),
        "compression": metrics.compression(X, y),
        "discrimination": metrics.discrimination(X, y),
        "discrimination_centered": metrics.discrimination(X, y, centered=True),
        "nc1": metrics.nc1(X, y),
        "spread": spread,
        "noise": noise,
        "offset": offset,
    }


def draw_explorer(
    values: Mapping[str, Any], ax: Any, limit: float | None = None, annotate: bool = True
) -> Any:
    """Draw one explorer state: the samples, the class means and the rays from the origin.

    The rays show what ``D`` measures: the angles between the class means as seen from the
    origin (uncentred means).

    Parameters
    ----------
    values : dict
        The output of :func:`explorer_values`.
    ax : Axes
    limit : float, optional
        Half-width of the square plotting window (default: fitted to the data).
    annotate : bool, default True
        Write ``C`` and ``D`` in the panel's corner.

    Returns
    -------
    Axes

    Examples
    --------
    >>> fig = Figure(); ax = fig.add_subplot()
    >>> _ = draw_explorer(explorer_values(), ax)
    >>> len(ax.collections) >= 3
    True

    Used in: ch01 (through :func:`metrics_explorer`).
    """
    X, y, means = values["X"].numpy(), values["y"].numpy(), values["means"].numpy()
    for k in range(means.shape[0]):
        c = COLORS[k % len(COLORS)]
        pts = X[y == k]
        ax.scatter(pts[:, 0], pts[:, 1], s=9, color=c, alpha=0.55, linewidths=0)
        ax.plot([0, means[k, 0]], [0, means[k, 1]], "-", color=c, lw=1.2)
        ax.scatter(means[k, 0], means[k, 1], s=70, color=c, marker="X", edgecolors="k",
                   linewidths=0.6, zorder=3)
    ax.plot(0, 0, "k+", ms=9, mew=1.5)
    if limit is None:
        limit = 1.1 * float(abs(X[:, :2]).max())
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.set_xlabel("$h_1$")
    ax.set_ylabel("$h_2$")
    if annotate:
        ax.text(0.03, 0.97, f"C = {values['compression']:.3g}\nD = {values['discrimination']:.3g}",
                transform=ax.transAxes, va="top", ha="left", fontsize=9,
                bbox={"boxstyle": "round", "fc": "white", "ec": "0.7", "alpha": 0.85})
    return ax


def plot_explorer_grid(
    settings: Sequence[Mapping[str, float]],
    ncols: int = 3,
    num_classes: int = 3,
    num_per_class: int = 40,
    seed: int = 0,
    panel_size: float = 2.6,
) -> tuple[Any, Any]:
    """A static grid of explorer states (for readers of the rendered book).

    Parameters
    ----------
    settings : sequence of dict
        One dict per panel with keys among ``spread``, ``noise``, ``offset``.
    ncols : int, default 3
    num_classes, num_per_class, seed
        As in :func:`explorer_values`.
    panel_size : float, default 2.6
        Width and height of one panel in inches.

    Returns
    -------
    fig, axes
        ``axes`` is a 2-D array of Axes; all panels share one square window.

    Examples
    --------
    >>> fig, axes = plot_explorer_grid([{"noise": 0.2}, {"noise": 1.0}], ncols=2)
    >>> axes.shape
    (1, 2)
    >>> plt.close(fig)

    Used in: ch01.
    """
    if not settings:
        raise ValueError("settings must hold at least one panel")
    ncols = check_int(ncols, "ncols", minimum=1)
    allowed = {"spread", "noise", "offset"}
    vals = []
    for s in settings:
        unknown = set(s) - allowed
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        vals.append(explorer_values(**s, num_classes=num_classes, num_per_class=num_per_class,
                                    seed=seed))
    nrows = -(-len(vals) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows),
                             squeeze=False, layout="constrained")
    limit = 1.05 * max(float(v["X"].abs().max()) for v in vals)
    for ax, v in zip(axes.flat, vals, strict=False):
        draw_explorer(v, ax, limit=limit)
    for ax in list(axes.flat)[len(vals):]:
        ax.set_visible(False)
    return fig, axes


def _png(fig: Figure, dpi: int = 90) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def metrics_explorer(
    spread: float = 2.0,
    noise: float = 0.5,
    offset: float = 0.0,
    num_classes: int = 3,
    num_per_class: int = 40,
    seed: int = 0,
) -> Any:
    """An interactive explorer of C and D on a two-dimensional toy data set (ipywidgets).

    Three sliders move the class spread, the within-class noise and a common offset of
    :func:`explorer_values`; the readout shows C, D (the paper's uncentred, signed version),
    the centred D and NC1, and the picture redraws.

    Parameters
    ----------
    spread, noise, offset : float
        Initial slider values.
    num_classes, num_per_class, seed
        As in :func:`explorer_values`.

    Returns
    -------
    ipywidgets.VBox
        With extra attributes: ``sliders`` (dict name -> slider), ``values`` (the latest
        :func:`explorer_values`), ``readout`` (HTML) and ``image`` (the PNG picture).

    Examples
    --------
    >>> box = metrics_explorer()
    >>> box.sliders["noise"].value = 1.0
    >>> box.values["noise"]
    1.0

    Used in: ch01.
    """
    widgets = _ipywidgets()

    style = {"description_width": "initial"}
    layout = widgets.Layout(width="32%")
    sliders = {
        "spread": widgets.FloatSlider(value=spread, min=0.2, max=6.0, step=0.1,
                                      description="class spread", style=style, layout=layout,
                                      continuous_update=False),
        "noise": widgets.FloatSlider(value=noise, min=0.0, max=3.0, step=0.05,
                                     description="within-class noise", style=style,
                                     layout=layout, continuous_update=False),
        "offset": widgets.FloatSlider(value=offset, min=0.0, max=8.0, step=0.1,
                                      description="common offset", style=style, layout=layout,
                                      continuous_update=False),
    }
    readout = widgets.HTML()
    image = widgets.Image(format="png")
    box = widgets.VBox([widgets.HBox(list(sliders.values())), readout, image])
    limit = 6.0 + 8.0 / math.sqrt(2) + 3.0 * 2.5

    def update(change: Any = None) -> None:
        v = explorer_values(**{k: s.value for k, s in sliders.items()}, num_classes=num_classes,
                            num_per_class=num_per_class, seed=seed)
        box.values = v
        readout.value = (
            f"<b>C</b> = tr&Sigma;<sub>W</sub>/tr&Sigma;<sub>B</sub> = {v['compression']:.4g}"
            f" &nbsp;|&nbsp; <b>D</b> (paper: uncentred means) = {v['discrimination']:.4g}"
            f" &nbsp;|&nbsp; D with centred means = {v['discrimination_centered']:.4g}"
            f" &nbsp;|&nbsp; NC1 = {v['nc1']:.4g}"
        )
        fig = Figure(figsize=(4.6, 4.2))
        fig.subplots_adjust(left=0.14, right=0.97, bottom=0.12, top=0.97)
        draw_explorer(v, fig.add_subplot(), limit=min(limit, 1.1 * float(v["X"].abs().max())
                                                     + 1.0), annotate=False)
        image.value = _png(fig)

    for s in sliders.values():
        s.observe(update, names="value")
    box.sliders, box.readout, box.image, box.update = sliders, readout, image, update
    update()
    return box


# ----------------------------------------------------------------------------------------
# the theory explorer (chapter 3)
# ----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _theory_data(num_classes: int, num_per_class: int, seed: int) -> tuple[Tensor, Tensor]:
    N = num_classes * num_per_class
    return orthogonal_dataset(num_classes, num_per_class, N + 20,
                              generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def theory_values(
    depth: int = 6,
    eps: float = 0.3,
    num_per_class: int = 10,
    num_classes: int = 3,
    alpha: float = 100.0,
    exact: bool = True,
    seed: int = 3,
    norm: float = 1.0,
) -> dict[str, Any]:
    """Per-layer C_l and D_l of the theory explorer: idealised, and optionally exact.

    The idealised curves are :func:`pncutils.theory.ideal_metrics` (orthogonal input rows of
    common norm ``r = norm``: ``C_l = C_0 rho^l`` with ``rho = eps^2 (alpha^2 r^2/n)^{1/L}``
    and ``C_0 = K(n-1)/(K-1)``; ``D_l = 1``). The exact ones are
    :func:`pncutils.theory.predicted_metrics` of the closed-form minimum-norm balanced network
    on one fixed synthetic data set (:func:`pncutils.data.orthogonal_dataset` with
    ``d = K n + 20``, nearly orthonormal rows), multiplied by ``r``.

    Parameters
    ----------
    depth : int, default 6
        L >= 2.
    eps : float, default 0.3
        Bulk singular value (> 0).
    num_per_class : int, default 10
        n >= 2.
    num_classes : int, default 3
        K >= 2.
    alpha : float, default 100.0
        Output scale (> 0).
    exact : bool, default True
        Also compute the exact prediction on the synthetic data.
    seed : int, default 3
        Seed of the synthetic data (3 is a typical draw: at K = 3, n = 10 its class means have
        small positive cosines, as most seeds do, so D_l rises towards 1).
    norm : float, default 1.0
        ``r > 0``, the norm of the input rows (1: orthonormal rows, the unit-norm formula).
        The rate grows as ``r^{2/L}`` and the signal singular value shrinks as ``r^{-1/L}``;
        ``C_0`` and ``D_l`` do not change.

    Returns
    -------
    dict
        ``ideal`` and ``exact`` (LayerTable, or None), ``rate`` (rho), ``exact_rate`` (the
        geometric mean of ``C_{l+1}/C_l`` over ``l >= 1``, or ``C_1/C_0`` when L = 2; None
        without ``exact``), ``signal`` (the per-layer signal singular value
        ``(sqrt(n)/(alpha r))^{1/L}``), and the arguments (``norm`` included).

    Examples
    --------
    >>> v = theory_values(depth=6, eps=0.3, num_per_class=10, num_classes=3, alpha=100.0)
    >>> round(v["rate"], 4), v["ideal"].compression.tolist()[0]
    (0.2846, 13.5)
    >>> abs(v["exact_rate"] / v["rate"] - 1) < 0.05
    True
    >>> round(theory_values(eps=0.3, alpha=1.0, norm=5.0, exact=False)["rate"], 4)  # r = 5
    0.1048

    Used in: ch03.
    """
    depth = check_int(depth, "depth", minimum=2)
    eps = check_float(eps, "eps", minimum=0.0, strict=True)
    n = check_int(num_per_class, "num_per_class", minimum=2)
    K = check_int(num_classes, "num_classes", minimum=2)
    alpha = check_float(alpha, "alpha", minimum=0.0, strict=True)
    if not isinstance(exact, bool):
        raise ValueError(f"exact must be True or False, got {exact!r}")
    seed = check_int(seed, "seed", minimum=0)
    r = check_float(norm, "norm", minimum=0.0, strict=True)
    ideal = theory.ideal_metrics(K, n, depth, eps, alpha, norm=r)
    out: dict[str, Any] = {
        "ideal": ideal,
        "exact": None,
        "rate": theory.ideal_compression_rate(eps, alpha, n, depth, norm=r),
        "exact_rate": None,
        "signal": (math.sqrt(n) / (alpha * r)) ** (1.0 / depth),
        "depth": depth, "eps": eps, "num_per_class": n, "num_classes": K, "alpha": alpha,
        "norm": r,
    }
    if exact:
        X, y = _theory_data(K, n, seed)
        table = theory.predicted_metrics(r * X, y, depth, eps, alpha)
        comp = table.compression
        out["exact"] = table
        out["exact_rate"] = (metrics.geometric_rate(comp[1:]) if depth >= 3
                             else float(comp[1] / comp[0]))
    return out


def draw_theory(values: Mapping[str, Any], axes: Sequence[Any]) -> Sequence[Any]:
    """Draw :func:`theory_values`: C_l on a log axis (left) and D_l (right).

    Parameters
    ----------
    values : dict
        The output of :func:`theory_values`.
    axes : pair of Axes

    Returns
    -------
    The axes.

    Examples
    --------
    >>> fig = Figure(); axes = fig.subplots(1, 2)
    >>> _ = draw_theory(theory_values(exact=False), axes)
    >>> axes[0].get_yscale()
    'log'

    Used in: ch03 (through :func:`theory_explorer`).
    """
    ax_c, ax_d = axes
    ideal, exact = values["ideal"], values["exact"]
    layers = ideal.layer.numpy()
    ax_c.semilogy(layers, ideal.compression.numpy(), "--", color="0.3",
                  label=rf"ideal: $\rho$ = {values['rate']:.3g}/layer")
    ax_d.plot(layers, ideal.discrimination.numpy(), "--", color="0.3", label="ideal")
    if exact is not None:
        ax_c.semilogy(layers, exact.compression.numpy(), "o", color=COLORS[0],
                      label=f"exact (synthetic data): {values['exact_rate']:.3g}/layer")
        ax_d.plot(layers[1:], exact.discrimination.numpy()[1:], "o", color=COLORS[1],
                  label="exact (synthetic data)")
    ax_c.set_xlabel("layer $l$")
    ax_c.set_ylabel(r"$C_l$ (log scale)")
    ax_d.set_xlabel("layer $l$")
    ax_d.set_ylabel(r"$D_l$")
    ax_d.ticklabel_format(axis="y", useOffset=False)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
        ax.grid(True, alpha=0.3)
    return axes


def theory_explorer(exact: bool = True, seed: int = 3, norm: float = 1.0) -> Any:
    """An interactive explorer of the predicted per-layer C_l and D_l (ipywidgets).

    Sliders for the depth L (2-12), the bulk singular value eps (0.01-0.6), the samples per
    class n (2-50), the number of classes K (2-10), the output scale alpha (1-1000, log
    slider) and the norm r of the input rows (0.1-10, log slider), and a checkbox for the
    exact prediction on synthetic data; every change redraws :func:`theory_values` and prints
    the per-layer rate.

    Parameters
    ----------
    exact : bool, default True
        Initial state of the "exact" checkbox.
    seed : int, default 3
        Seed of the synthetic data of the exact prediction (see :func:`theory_values`).
    norm : float, default 1.0
        Initial input norm r (1: orthonormal rows), between 0.1 and 10.

    Returns
    -------
    ipywidgets.VBox
        With extra attributes ``sliders`` (dict: ``depth``, ``eps``, ``num_per_class``,
        ``num_classes``, ``alpha``, ``norm``, ``exact``), ``values`` (the latest
        :func:`theory_values`), ``readout`` and ``image``.

    Examples
    --------
    >>> box = theory_explorer(exact=False)
    >>> box.sliders["eps"].value = 0.1
    >>> round(box.values["rate"], 4)  # 0.1^2 * (100^2 / 10)^(1/6)
    0.0316
    >>> box.sliders["norm"].value = 5.0
    >>> round(box.values["rate"], 4)  # 0.1^2 * (100^2 * 5^2 / 10)^(1/6)
    0.0541

    Used in: ch03.
    """
    widgets = _ipywidgets()
    r = check_float(norm, "norm", minimum=0.1, maximum=10.0)

    style = {"description_width": "initial"}
    layout = widgets.Layout(width="32%")
    sliders = {
        "depth": widgets.IntSlider(value=6, min=2, max=12, description="depth L", style=style,
                                   layout=layout, continuous_update=False),
        "eps": widgets.FloatSlider(value=0.3, min=0.01, max=0.6, step=0.01,
                                   description="bulk singular value ε", style=style,
                                   layout=layout, continuous_update=False),
        "num_per_class": widgets.IntSlider(value=10, min=2, max=50,
                                           description="samples per class n", style=style,
                                           layout=layout, continuous_update=False),
        "num_classes": widgets.IntSlider(value=3, min=2, max=10, description="classes K",
                                         style=style, layout=layout, continuous_update=False),
        "alpha": widgets.FloatLogSlider(value=100.0, base=10, min=0, max=3, step=0.05,
                                        description="output scale α", style=style,
                                        layout=layout, continuous_update=False),
        "norm": widgets.FloatLogSlider(value=r, base=10, min=-1, max=1, step=0.05,
                                       description="input norm r", style=style,
                                       layout=layout, continuous_update=False),
        "exact": widgets.Checkbox(value=exact, description="exact (synthetic data)",
                                  style=style),
    }
    readout = widgets.HTML()
    image = widgets.Image(format="png")
    rows = [widgets.HBox([sliders["depth"], sliders["eps"], sliders["alpha"]]),
            widgets.HBox([sliders["num_per_class"], sliders["num_classes"], sliders["norm"]]),
            widgets.HBox([sliders["exact"]])]
    box = widgets.VBox([*rows, readout, image])

    def update(change: Any = None) -> None:
        v = theory_values(**{k: s.value for k, s in sliders.items()}, seed=seed)
        box.values = v
        K, n = v["num_classes"], v["num_per_class"]
        text = (f"per-layer rate &rho; = &epsilon;<sup>2</sup>(&alpha;<sup>2</sup>r<sup>2</sup>/n)"
                f"<sup>1/L</sup> = <b>{v['rate']:.4g}</b> (orthogonal inputs of norm r = "
                f"{v['norm']:.3g}); C<sub>0</sub> = K(n&minus;1)/(K&minus;1)"
                f" = {K * (n - 1) / (K - 1):.4g}")
        if v["exact_rate"] is not None:
            text += f"; exact on synthetic data: <b>{v['exact_rate']:.4g}</b>"
        if v["eps"] >= 0.6 * v["signal"]:
            text += (f"<br><i>&epsilon; is not small against the signal singular value "
                     f"(&radic;n/(&alpha;r))<sup>1/L</sup> = {v['signal']:.3g}: the idealised rate "
                     "is no longer accurate.</i>")
        readout.value = text
        fig = Figure(figsize=(8.4, 3.2))  # a fixed layout: constrained layout doubles the time
        fig.subplots_adjust(left=0.08, right=0.98, bottom=0.15, top=0.97, wspace=0.25)
        draw_theory(v, fig.subplots(1, 2))
        image.value = _png(fig)

    for s in sliders.values():
        s.observe(update, names="value")
    box.sliders, box.readout, box.image, box.update = sliders, readout, image, update
    update()
    return box
