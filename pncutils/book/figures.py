"""The figures of the experiment ``hybrid`` (chapter 5), drawn from its typed result.

Every function takes a :class:`pncutils.book.hybrid.HybridResult` (a live run of
:func:`pncutils.book.hybrid.run`, or ``record.result`` of a result file read by
:func:`pncutils.book.reproduce.load_or_run`), so a live run and a committed paper-scale file
are drawn by the same code; pass ``axes`` again to overlay a second result on the first.
Functions return ``(fig, axes)`` and never call ``plt.show``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from pncutils.book.hybrid import HybridResult, NetworkResult
from pncutils.metrics import LayerTable
from pncutils.plotting import COLORS

__all__ = [
    "network_table",
    "linear_part_summary",
    "plot_rank_probe",
    "plot_compression_discrimination",
    "plot_projections",
]

_NAMES = {"hybrid": "hybrid", "mlp": "MLP"}


def _example() -> HybridResult:
    """A small hand-made result for the examples: C_l = 0.5 + 8 * 0.5^l over the hybrid's
    linear layers l = 2..4, its outputs' C_L = 0.5."""
    from pncutils.book.hybrid import Outputs, Projections, deep_summary

    pca = Projections([1, 2], [0, 0, 1, 1], [[0, 1, 2, 3], [0, 0, 1, 1]],
                      [[1, 0, 1, 0], [0, 1, 0, 1]], [[0.4, 0.3], [0.9, 0.1]])
    nets = {}
    for name, m, C, out in (("hybrid", 2, [30.0, 100.0, 2.5, 1.5, 1.0], 0.5),
                            ("mlp", 4, [30.0, 9.0, 7.0, 5.0, 4.0], 3.0)):
        t = LayerTable({"layer": range(5), "compression": C,
                        "discrimination": [0.05, 0.2, 0.3, 0.45, 0.5],
                        "rank": [60, 50, 40, 30, 20], "probe_train_acc": [0.4, 0.6, 0.7, 0.8, 0.9],
                        "probe_test_acc": [0.3, 0.5, 0.55, 0.65, 0.75]})
        nets[name] = NetworkResult(m, t, Outputs(out, 0.9), summary=deep_summary(t, 2, 4, out),
                                   pca=pca)
    return HybridResult(20, 10, 4, 2, nets)


def _check(result: Any) -> HybridResult:
    if not isinstance(result, HybridResult):
        raise ValueError(
            "result must be a HybridResult (the 'hybrid' experiment: a live run, or "
            f"record.result of a result file), got {type(result).__name__}"
        )
    return result


def _network(result: HybridResult, network: str) -> NetworkResult:
    _check(result)
    if network not in result.networks:
        raise ValueError(f"network must be one of {sorted(result.networks)}, got {network!r}")
    return result.networks[network]


def network_table(result: HybridResult, network: str) -> LayerTable:
    """The per-layer table of one network of a ``hybrid`` result.

    Parameters
    ----------
    result : HybridResult
    network : {"hybrid", "mlp"}

    Returns
    -------
    LayerTable
        One row per layer ``l = 0..L-1`` (``l = 0`` is the input), the columns of
        :func:`pncutils.analysis.layer_report`.

    Examples
    --------
    >>> network_table(_example(), "mlp").compression.tolist()
    [30.0, 9.0, 7.0, 5.0, 4.0]
    >>> network_table(_example(), "cnn")
    Traceback (most recent call last):
    ...
    ValueError: network must be one of ['hybrid', 'mlp'], got 'cnn'

    Used in: ch05 (through the figures).
    """
    return _network(result, network).layers


def linear_part_summary(result: HybridResult, network: str = "hybrid") -> dict[str, Any]:
    """The numbers chapter 5 states about one network of a ``hybrid`` result, in one place.

    ``m`` is the network's number of nonlinear blocks and ``l = m..L-1`` its linear hidden
    layers (``L`` = the number of weight matrices; the outputs are layer ``L``).

    Parameters
    ----------
    result : HybridResult
        A live run or ``record.result`` of a result file.
    network : {"hybrid", "mlp"}, default "hybrid"

    Returns
    -------
    dict
        ``first`` (``m``), ``last`` (``L - 1``); ``C_ratio_1`` (``C_1 / C_{L-1}``) and
        ``C_ratio_first`` (``C_m / C_{L-1}``); ``log_fit`` and ``floor_fit``: the fits of
        ``log C_l`` and ``log(C_l - C_L)`` over ``l = m..L-1`` that the driver computed
        (:func:`pncutils.book.hybrid.deep_summary`; None when the summary fits other
        layers, or when fewer than three layers lie above the floor); ``C_out`` (``C_L`` of
        the outputs) and ``last_over_out`` (``C_{L-1} / C_L``); ``D_first``, ``D_last``,
        ``D_max``, ``D_peak_layer`` (over ``l = 1..L-1``); ``rank_last``; ``F_out`` (the
        least-squares floor at ``l = L``) and ``out_over_floor`` (``C_L / F_L``), None
        without the floor.

    Examples
    --------
    >>> s = linear_part_summary(_example())
    >>> s["C_ratio_first"], s["last_over_out"], s["D_peak_layer"], s["F_out"]
    (2.5, 2.0, 4, None)
    >>> round(s["floor_fit"].rate, 12)  # C_l - 0.5 = 2, 1, 0.5
    0.5

    Used in: ch05, ch09.
    """
    net = _network(result, network)
    t = net.layers
    C, D = t.compression.numpy(), t.discrimination.numpy()
    first, last = int(net.num_nonlinear), len(C) - 1
    ours = net.summary is not None and net.summary.fit_layers == list(range(first, last + 1))
    C_out = net.logits.compression if net.logits is not None else None
    F_out = net.linear_floor.least_squares_floor[-1] if net.linear_floor is not None else None
    return {
        "first": first,
        "last": last,
        "C_ratio_1": float(C[1] / C[last]),
        "C_ratio_first": float(C[first] / C[last]),
        "log_fit": net.summary.log_compression_fit if ours else None,
        "C_out": C_out,
        "last_over_out": None if C_out is None else float(C[last] / C_out),
        "floor_fit": net.summary.floor_fit if ours else None,
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


def _shade_linear(ax: Any, result: HybridResult) -> None:
    """Shade the hybrid's linear layers (features l >= num_nonlinear)."""
    if "hybrid" in result.networks:
        net = result.networks["hybrid"]
        ax.axvspan(net.num_nonlinear - 0.3, len(net.layers) - 1 + 0.3, color="0.92", zorder=0,
                   lw=0)


def plot_rank_probe(
    result: HybridResult,
    axes: Sequence[Any] | None = None,
    linestyle: str = "-",
    label: str = "",
) -> tuple[Any, list[Any]]:
    """Figure 1: numerical rank and linear-probe accuracy per layer, hybrid and MLP.

    Parameters
    ----------
    result : HybridResult
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
    >>> fig, (a, b) = plot_rank_probe(_example()); len(a.lines), len(b.lines)
    (2, 4)
    >>> plt.close(fig)

    Used in: ch05.
    """
    _check(result)
    fig, (ax_r, ax_p) = _axes(axes, 2, (9.0, 3.4))
    if axes is None:
        _shade_linear(ax_r, result)
        _shade_linear(ax_p, result)
    for i, name in enumerate(result.networks):
        t = network_table(result, name)
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


def _fit_line(ax: Any, net: NetworkResult, color: Any) -> None:
    """The driver's fit over the hybrid's linear layers: towards the floor ``C_L`` when it
    exists (:attr:`pncutils.book.hybrid.DeepSummary.floor_fit`), else of ``log C_l``."""
    s = net.summary
    if s is None:
        return
    ls = np.asarray(s.fit_layers)
    if s.floor_fit is not None:
        ax.semilogy(ls, s.floor_fit.predict(ls).numpy(), ":", color=color,
                    label=r"fit $C_L + A\rho^l$ over the linear layers, $R^2$ = "
                    f"{s.floor_fit.r2:.3f}")
    else:
        f = s.log_compression_fit
        ax.semilogy(ls, f.predict(ls).numpy(), ":", color=color,
                    label=f"fit over the linear layers, $R^2$ = {f.r2:.3f}")


def plot_compression_discrimination(
    result: HybridResult,
    axes: Sequence[Any] | None = None,
    linestyle: str = "-",
    label: str = "",
    fit: bool = True,
    floor: bool = True,
) -> tuple[Any, list[Any]]:
    """Figure 5: ``C_l`` (log scale) and ``D_l`` per layer ``l >= 1``, hybrid and MLP.

    With ``fit=True`` a dotted line shows the driver's fit over the hybrid's linear part
    (``summary.fit_layers``, :func:`pncutils.book.hybrid.deep_summary`) and the legend gives
    its R²: of ``log(C_l - C_L)`` (geometric decay towards the floor ``C_L``) when it exists,
    else of ``log C_l``. The outputs' ``C_L`` and ``D_L`` (``logits``) are drawn as open
    markers at ``l = L``. With ``floor=True`` and the analytic floor in the result
    (``linear_floor``, :func:`pncutils.book.hybrid.linear_part_floor`), a dash-dotted grey
    line shows the least-squares floor ``F_l`` of the hybrid's linear layers.

    Parameters
    ----------
    result : HybridResult
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
    >>> fig, (c, d) = plot_compression_discrimination(_example()); len(c.lines), len(d.lines)
    (5, 4)
    >>> c.lines[1].get_xdata().tolist()  # the hybrid's outputs, at l = L
    [5]
    >>> plt.close(fig)

    Used in: ch05.
    """
    _check(result)
    fig, (ax_c, ax_d) = _axes(axes, 2, (9.0, 3.4))
    if axes is None:
        _shade_linear(ax_c, result)
        _shade_linear(ax_d, result)
    for i, (name, net) in enumerate(result.networks.items()):
        t = net.layers
        layers = t.layer.numpy()[1:]
        color = COLORS[i]
        lab = f"{_NAMES.get(name, name)}{label}"
        ax_c.semilogy(layers, t.compression.numpy()[1:], linestyle, marker="o", ms=3,
                      color=color, label=lab)
        ax_d.plot(layers, t.discrimination.numpy()[1:], linestyle, marker="o", ms=3,
                  color=color, label=lab)
        if net.logits is not None:  # the outputs, one layer further: open markers
            x = int(layers[-1]) + 1
            ax_c.semilogy([x], [net.logits.compression], "o", mfc="none", color=color)
            ax_d.plot([x], [net.logits.discrimination], "o", mfc="none", color=color)
        if fit and name == "hybrid":
            _fit_line(ax_c, net, color)
        lf = net.linear_floor
        if floor and name == "hybrid" and lf is not None:
            ax_c.semilogy(lf.layers, lf.least_squares_floor, "-.", color="0.45", lw=1,
                          label=f"least-squares floor $F_l${label}")
    xlabel = "layer $l$ (open marker: outputs, $l = L$)" if any(
        n.logits is not None for n in result.networks.values()) else "layer $l$"
    ax_c.set(xlabel=xlabel, ylabel="$C_l$ (log scale)")
    ax_d.set(xlabel=xlabel, ylabel="$D_l$")
    for ax in (ax_c, ax_d):
        ax.legend(fontsize=7)
    return fig, [ax_c, ax_d]


def plot_projections(
    result: HybridResult, network: str = "hybrid", axes: Sequence[Any] | None = None
) -> tuple[Any, list[Any]]:
    """F2: the 2-D PCA projections of one network's features at several layers.

    Parameters
    ----------
    result : HybridResult
        Its ``pca`` entries (:class:`pncutils.book.hybrid.Projections`).
    network : {"hybrid", "mlp"}
    axes : Matplotlib axes, optional
        One per projected layer.

    Returns
    -------
    fig, list of axes

    Examples
    --------
    >>> fig, axes = plot_projections(_example(), "mlp"); len(axes), axes[0].get_title()
    (2, 'layer 1 (70% var.)')
    >>> plt.close(fig)

    Used in: ch05.
    """
    pca = _network(result, network).pca
    if pca is None:
        raise ValueError(f"the result holds no projections of {network!r}")
    n = len(pca.layers)
    fig, axs = _axes(axes, n, (2.4 * n, 2.5))
    labels = np.asarray(pca.labels)
    for ax, layer, x, y, evr in zip(axs, pca.layers, pca.x, pca.y, pca.explained_variance_ratio,
                                    strict=True):
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
