"""Figures of the experiments of part II, drawn from their result dictionaries.

Every function takes the ``results`` of an experiment of :mod:`pncutils.book.reproduce` (the
``"results"`` field of a result file, or the return value of
:func:`pncutils.book.reproduce.compute`), so a live run and a committed paper-scale file are drawn
by the same code; pass ``axes`` again to overlay a second result on the first. Functions
return ``(fig, axes)`` and never call ``plt.show``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from pncutils.fits import floor as floor_fit
from pncutils.metrics import LayerTable, linear_fit
from pncutils.plotting import COLORS

__all__ = [
    "network_table",
    "linear_part_summary",
    "plot_rank_probe",
    "plot_compression_discrimination",
    "plot_projections",
    "plot_synthetic_layers",
]

_NAMES = {"hybrid": "hybrid", "mlp": "MLP"}


def _networks(results: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(results, Mapping) or "networks" not in results:
        raise ValueError(
            "results must be the results of the 'hybrid' experiment (a dict with 'networks'); "
            "for a result file pass res['results']"
        )
    return results["networks"]


def network_table(results: Mapping[str, Any], network: str) -> LayerTable:
    """The per-layer table of one network of a ``hybrid`` result, as a LayerTable.

    Parameters
    ----------
    results : dict
        The results of the ``hybrid`` experiment.
    network : {"hybrid", "mlp"}

    Returns
    -------
    LayerTable
        One row per layer ``l = 0..L-1`` (``l = 0`` is the input), the columns of
        :func:`pncutils.analysis.layer_report`.

    Examples
    --------
    >>> res = {"networks": {"mlp": {"layers": {"layer": [0, 1], "compression": [2.0, 1.0]}}}}
    >>> network_table(res, "mlp").compression.tolist()
    [2.0, 1.0]
    >>> network_table(res, "cnn")
    Traceback (most recent call last):
    ...
    ValueError: network must be one of ['mlp'], got 'cnn'
    """
    nets = _networks(results)
    if network not in nets:
        raise ValueError(f"network must be one of {sorted(nets)}, got {network!r}")
    cols = {k: [np.nan if v is None else v for v in vals]
            for k, vals in nets[network]["layers"].items()}
    return LayerTable(cols)


def linear_part_summary(results: Mapping[str, Any], network: str = "hybrid") -> dict[str, Any]:
    """The numbers chapter 5 states about one network of a ``hybrid`` result, in one place.

    ``m`` is the network's number of nonlinear blocks and ``l = m..L-1`` its linear hidden
    layers (``L`` = the number of weight matrices; the outputs are layer ``L``).

    Parameters
    ----------
    results : dict
        The results of the ``hybrid`` experiment (a live run or ``res["results"]`` of a file).
    network : {"hybrid", "mlp"}, default "hybrid"

    Returns
    -------
    dict
        ``first`` (``m``), ``last`` (``L - 1``); ``C_ratio_1`` (``C_1 / C_{L-1}``) and
        ``C_ratio_first`` (``C_m / C_{L-1}``); ``log_fit`` (:func:`pncutils.metrics.linear_fit`
        of ``log C_l`` over ``l = m..L-1``); ``C_out`` (``C_L`` of the outputs) and
        ``last_over_out`` (``C_{L-1} / C_L``); ``floor_fit`` (:func:`pncutils.fits.floor`
        of ``C_l - C_L``, None when fewer than three layers lie above the floor);
        ``D_first``, ``D_last``, ``D_max``, ``D_peak_layer`` (over ``l = 1..L-1``); ``rank_last``;
        and, when the result holds the analytic floor (``linear_floor``, results written
        after it was added), ``F_out`` (the least-squares floor at ``l = L``) and
        ``out_over_floor`` (``C_L / F_L``), else None for both.

    Examples
    --------
    >>> lay = {"layer": [0, 1, 2, 3], "compression": [9.0, 3.75, 1.5, 0.75],
    ...        "discrimination": [0.1, 0.2, 0.6, 0.5], "rank": [9, 8, 4, 3]}
    >>> net = {"num_nonlinear": 1, "layers": lay, "logits": {"compression": 0.5},
    ...        "linear_floor": {"layers": [1, 2, 3, 4], "least_squares_floor": [.5, .4, .3, .25]}}
    >>> s = linear_part_summary({"networks": {"hybrid": net}})
    >>> s["C_ratio_first"], s["last_over_out"], s["out_over_floor"], s["D_peak_layer"]
    (5.0, 1.5, 2.0, 2)
    >>> round(s["floor_fit"].rate, 6)  # C_l - 0.5 = 3.25, 1.0, 0.25
    0.27735

    Used in: ch05, ch08.
    """
    nets = _networks(results)
    t = network_table(results, network)
    net = nets[network]
    C, D = t.compression.numpy(), t.discrimination.numpy()
    first, last = int(net["num_nonlinear"]), len(C) - 1
    layers = np.arange(first, last + 1)
    C_out = net["logits"]["compression"] if net.get("logits") else None
    try:
        ff = floor_fit(C[first:], C_out, layers) if C_out is not None else None
    except ValueError:  # fewer than three layers above the floor
        ff = None
    lf = net.get("linear_floor")
    F_out = lf["least_squares_floor"][-1] if lf else None
    return {
        "first": first,
        "last": last,
        "C_ratio_1": float(C[1] / C[last]),
        "C_ratio_first": float(C[first] / C[last]),
        "log_fit": linear_fit(layers, np.log(C[first:])) if last - first >= 2 else None,
        "C_out": C_out,
        "last_over_out": None if C_out is None else float(C[last] / C_out),
        "floor_fit": ff,
        "D_first": float(D[1]),
        "D_last": float(D[last]),
        "D_max": float(D[1:].max()),
        "D_peak_layer": int(np.argmax(D[1:])) + 1,
        "rank_last": float(t["rank"].numpy()[last]) if "rank" in t.columns else None,
        "F_out": F_out,
        "out_over_floor": None if F_out is None or C_out is None else float(C_out / F_out),
    }


def _axes(axes: Any, n: int, figsize: tuple[float, float]) -> tuple[Any, list[Any]]:
    if axes is None:
        fig, ax = plt.subplots(1, n, figsize=figsize, constrained_layout=True)
        return fig, list(np.atleast_1d(ax))
    axes = list(np.atleast_1d(axes))
    if len(axes) != n:
        raise ValueError(f"axes must hold {n} Matplotlib axes, got {len(axes)}")
    return axes[0].figure, axes


def _shade_linear(ax: Any, results: Mapping[str, Any]) -> None:
    """Shade the hybrid's linear layers (features l >= num_nonlinear)."""
    nets = _networks(results)
    if "hybrid" in nets:
        first = nets["hybrid"]["num_nonlinear"]
        last = len(nets["hybrid"]["layers"]["layer"]) - 1
        ax.axvspan(first - 0.3, last + 0.3, color="0.92", zorder=0, lw=0)


def plot_rank_probe(
    results: Mapping[str, Any],
    axes: Sequence[Any] | None = None,
    linestyle: str = "-",
    label: str = "",
) -> tuple[Any, list[Any]]:
    """Figure 1: numerical rank and linear-probe accuracy per layer, hybrid and MLP.

    Parameters
    ----------
    results : dict
        The results of the ``hybrid`` experiment.
    axes : two Matplotlib axes, optional
        Draw on these (to overlay a second result); new axes when omitted.
    linestyle : str, default "-"
    label : str, default ""
        Appended to the legend entries (e.g. ``" (paper scale)"``).

    Returns
    -------
    fig, [ax_rank, ax_probe]

    Examples
    --------
    >>> lay = {"layer": [0, 1, 2], "rank": [9, 8, 3], "probe_train_acc": [0.5, 0.9, 1.0],
    ...        "probe_test_acc": [0.5, 0.8, 0.8]}
    >>> res = {"networks": {"hybrid": {"num_nonlinear": 1, "layers": lay}}}
    >>> fig, (a, b) = plot_rank_probe(res); len(a.lines), len(b.lines)
    (1, 2)
    >>> plt.close(fig)
    """
    fig, (ax_r, ax_p) = _axes(axes, 2, (9.0, 3.4))
    if axes is None:
        _shade_linear(ax_r, results)
        _shade_linear(ax_p, results)
    for i, name in enumerate(_networks(results)):
        t = network_table(results, name)
        layers = t.layer.numpy()[1:]
        color = COLORS[i]
        lab = f"{_NAMES.get(name, name)}{label}"
        ax_r.plot(layers, t["rank"].numpy()[1:], linestyle, marker="o", ms=3, color=color,
                  label=lab)
        ax_p.plot(layers, 100 * t.probe_train_acc.numpy()[1:], linestyle, marker="o", ms=3,
                  color=color, label=f"{lab}, train")
        if "probe_test_acc" in t.columns:
            ax_p.plot(layers, 100 * t.probe_test_acc.numpy()[1:], linestyle, marker="x", ms=3,
                      color=color, alpha=0.6, label=f"{lab}, test")
    ax_r.set(xlabel="layer $l$", ylabel="numerical rank (95% energy)")
    ax_p.set(xlabel="layer $l$", ylabel="linear probe accuracy (%)")
    for ax in (ax_r, ax_p):
        ax.legend(fontsize=7)
    return fig, [ax_r, ax_p]


def plot_compression_discrimination(
    results: Mapping[str, Any],
    axes: Sequence[Any] | None = None,
    linestyle: str = "-",
    label: str = "",
    fit: bool = True,
    floor: bool = True,
) -> tuple[Any, list[Any]]:
    """Figure 5: ``C_l`` (log scale) and ``D_l`` per layer ``l >= 1``, hybrid and MLP.

    With ``fit=True`` a dotted line shows a least-squares fit over the hybrid's linear part
    (``l = num_nonlinear .. L-1``) and the legend gives its R²: of ``log(C_l - C_L)``
    (:func:`pncutils.fits.floor`, geometric decay towards the floor ``C_L``) when
    the results hold the outputs' ``C_L``, else of ``log C_l``. The outputs' ``C_L`` and
    ``D_L``, when present (``logits``), are drawn as open markers at ``l = L``. With
    ``floor=True`` and the analytic floor in the results (``linear_floor``, see
    :func:`pncutils.book.reproduce.linear_part_floor`), a dash-dotted grey line shows
    the least-squares floor ``F_l`` of the hybrid's linear layers, ``l = num_nonlinear .. L``.

    Parameters
    ----------
    results : dict
        The results of the ``hybrid`` experiment.
    axes : two Matplotlib axes, optional
    linestyle : str, default "-"
    label : str, default ""
    fit : bool, default True
    floor : bool, default True

    Returns
    -------
    fig, [ax_c, ax_d]

    Examples
    --------
    >>> lay = {"layer": [0, 1, 2, 3], "compression": [4.0, 2.0, 1.0, 0.5],
    ...        "discrimination": [0.1, 0.2, 0.3, 0.4]}
    >>> res = {"networks": {"hybrid": {"num_nonlinear": 1, "layers": lay}}}
    >>> fig, (c, d) = plot_compression_discrimination(res); len(c.lines), len(d.lines)
    (2, 1)
    >>> plt.close(fig)
    >>> res["networks"]["hybrid"]["logits"] = {"compression": 0.4, "discrimination": 0.5}
    >>> fig, (c, d) = plot_compression_discrimination(res); len(c.lines), c.lines[1].get_xdata()
    (3, array([4.]))
    >>> plt.close(fig)
    >>> res["networks"]["hybrid"]["linear_floor"] = {"layers": [1, 2, 3, 4],
    ...                                               "least_squares_floor": [.3, .3, .3, .3]}
    >>> fig, (c, d) = plot_compression_discrimination(res); c.lines[-1].get_xdata().tolist()
    [1, 2, 3, 4]
    >>> plt.close(fig)
    """
    fig, (ax_c, ax_d) = _axes(axes, 2, (9.0, 3.4))
    if axes is None:
        _shade_linear(ax_c, results)
        _shade_linear(ax_d, results)
    nets = _networks(results)
    for i, name in enumerate(nets):
        t = network_table(results, name)
        layers = t.layer.numpy()[1:]
        color = COLORS[i]
        lab = f"{_NAMES.get(name, name)}{label}"
        ax_c.semilogy(layers, t.compression.numpy()[1:], linestyle, marker="o", ms=3,
                      color=color, label=lab)
        ax_d.plot(layers, t.discrimination.numpy()[1:], linestyle, marker="o", ms=3,
                  color=color, label=lab)
        out = nets[name].get("logits")
        if out:  # the outputs, one layer further: open markers
            x = layers[-1] + 1
            ax_c.semilogy([x], [out["compression"]], "o", mfc="none", color=color)
            ax_d.plot([x], [out["discrimination"]], "o", mfc="none", color=color)
        if fit and name == "hybrid":
            first = nets[name]["num_nonlinear"]
            ls = t.layer.numpy()[first:]
            C_lin = t.compression.numpy()[first:]
            try:  # geometric decay towards the floor C_L (chapter 5), when it is known
                ff = floor_fit(C_lin, out["compression"], ls) if out else None
            except ValueError:  # fewer than three layers above the floor
                ff = None
            if ff is not None:
                ax_c.semilogy(ls, out["compression"] + np.exp(ff.intercept + ff.slope * ls),
                              ":", color=color, label=r"fit $C_L + A\rho^l$ over the linear "
                              f"layers, $R^2$ = {ff.r2:.3f}")
            else:
                f = linear_fit(ls, np.log(C_lin))
                ax_c.semilogy(ls, np.exp(f.intercept + f.slope * ls), ":", color=color,
                              label=f"fit over the linear layers, $R^2$ = {f.r2:.3f}")
        lf = nets[name].get("linear_floor")
        if floor and name == "hybrid" and lf:
            ax_c.semilogy(lf["layers"], lf["least_squares_floor"], "-.", color="0.45", lw=1,
                          label=f"least-squares floor $F_l${label}")
    xlabel = "layer $l$ (open marker: outputs, $l = L$)" if any(
        n.get("logits") for n in nets.values()) else "layer $l$"
    ax_c.set(xlabel=xlabel, ylabel="$C_l$ (log scale)")
    ax_d.set(xlabel=xlabel, ylabel="$D_l$")
    for ax in (ax_c, ax_d):
        ax.legend(fontsize=7)
    return fig, [ax_c, ax_d]


def plot_projections(
    results: Mapping[str, Any], network: str = "hybrid", axes: Sequence[Any] | None = None
) -> tuple[Any, list[Any]]:
    """F2: the 2-D PCA projections of one network's features at several layers.

    Parameters
    ----------
    results : dict
        The results of the ``hybrid`` experiment (its ``pca`` entries).
    network : {"hybrid", "mlp"}
    axes : Matplotlib axes, optional
        One per projected layer.

    Returns
    -------
    fig, list of axes

    Examples
    --------
    >>> pca = {"layers": [1, 2], "labels": [0, 1], "x": [[0, 1], [0, 2]], "y": [[1, 0], [2, 0]],
    ...        "explained_variance_ratio": [[0.5, 0.2], [0.9, 0.1]]}
    >>> res = {"networks": {"mlp": {"pca": pca, "layers": {"layer": [0, 1, 2]}}}}
    >>> fig, axes = plot_projections(res, "mlp"); len(axes)
    2
    >>> plt.close(fig)
    """
    nets = _networks(results)
    if network not in nets:
        raise ValueError(f"network must be one of {sorted(nets)}, got {network!r}")
    pca = nets[network]["pca"]
    n = len(pca["layers"])
    fig, axs = _axes(axes, n, (2.4 * n, 2.5))
    labels = np.asarray(pca["labels"])
    for ax, layer, x, y, evr in zip(axs, pca["layers"], pca["x"], pca["y"],
                                    pca["explained_variance_ratio"], strict=True):
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        for k in np.unique(labels):
            sel = labels == k
            ax.scatter(x[sel], y[sel], s=3, alpha=0.6, color=plt.cm.tab10(int(k) % 10),
                       label=str(int(k)), rasterized=True)
        ax.set_title(f"layer {layer} ({100 * sum(evr):.0f}% var.)", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axs[-1].legend(fontsize=6, markerscale=3, loc="center left", bbox_to_anchor=(1.0, 0.5),
                   title="class", title_fontsize=7)
    return fig, axs


def plot_synthetic_layers(
    results: Mapping[str, Any],
    axes: Sequence[Any] | None = None,
    label: str = "",
    color: str | None = None,
) -> tuple[Any, list[Any]]:
    """F3b: ``C_l`` and ``D_l`` of the ``fig3b`` runs, per seed (thin) and averaged.

    The bold lines are the geometric mean of ``C_l`` and the arithmetic mean of ``D_l`` over
    seeds, with a dotted least-squares fit (``log C_l`` over ``l = 0..L-1``, ``D_l`` over
    ``l = 1..L-1``).

    Parameters
    ----------
    results : dict
        The results of the ``fig3b`` experiment.
    axes : two Matplotlib axes, optional
    label : str, default ""
    color : str, optional

    Returns
    -------
    fig, [ax_c, ax_d]

    Examples
    --------
    >>> seed = {"layers": {"compression": [8.0, 4.0, 2.0], "discrimination": [1.0, 0.2, 0.4]}}
    >>> res = {"per_seed": [seed], "summary": {"compression_geometric_mean": [8.0, 4.0, 2.0],
    ...                                        "discrimination_mean": [1.0, 0.2, 0.4]}}
    >>> fig, (c, d) = plot_synthetic_layers(res); len(c.lines), len(d.lines)
    (3, 3)
    >>> plt.close(fig)
    """
    if not isinstance(results, Mapping) or "per_seed" not in results:
        raise ValueError("results must be the results of the 'fig3b' experiment")
    fig, (ax_c, ax_d) = _axes(axes, 2, (9.0, 3.4))
    color = color or COLORS[0]
    for p in results["per_seed"]:
        C = np.asarray(p["layers"]["compression"], dtype=float)
        D = np.asarray(p["layers"]["discrimination"], dtype=float)
        ax_c.semilogy(np.arange(len(C)), C, color=color, alpha=0.25, lw=0.8)
        ax_d.plot(np.arange(1, len(D)), D[1:], color=color, alpha=0.25, lw=0.8)
    C = np.asarray(results["summary"]["compression_geometric_mean"], dtype=float)
    D = np.asarray(results["summary"]["discrimination_mean"], dtype=float)
    lc, ld = np.arange(len(C)), np.arange(1, len(D))
    fc, fd = linear_fit(lc, np.log(C)), linear_fit(ld, D[1:])
    ax_c.semilogy(lc, C, "o-", ms=3, color=color, label=f"mean over seeds{label}")
    ax_c.semilogy(lc, np.exp(fc.intercept + fc.slope * lc), ":", color="0.3",
                  label=f"fit: rate {np.exp(fc.slope):.3f}, $R^2$ = {fc.r2:.3f}")
    ax_d.plot(ld, D[1:], "o-", ms=3, color=color, label=f"mean over seeds{label}")
    ax_d.plot(ld, fd.intercept + fd.slope * ld, ":", color="0.3",
              label=f"fit: slope {fd.slope:.3f}, $R^2$ = {fd.r2:.3f}")
    ax_c.set(xlabel="layer $l$", ylabel="$C_l$ (log scale)")
    ax_d.set(xlabel="layer $l$", ylabel="$D_l$")
    for ax in (ax_c, ax_d):
        ax.legend(fontsize=7)
    return fig, [ax_c, ax_d]
