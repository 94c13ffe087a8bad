"""The experiment ``fig3b`` (F3b, shown in chapter 5): a deep nonlinear network on the
synthetic data.

``num_seeds`` networks of ``depth - 1`` blocks ``Linear -> BatchNorm -> ReLU`` and a linear
classifier (:class:`pncutils.models.HybridNetwork` without linear hidden layers) are trained
by full-batch gradient descent on the nearly orthogonal data of part I, one data set per seed,
and measured layer by layer: compression without any linear layer.

* :data:`SCALES`: the registered configurations; chapter 5 runs the ``book`` one (``quick``
  in quick mode) live;
* :func:`run`: the typed :class:`Fig3bResult`;
* :data:`PAPER_VALUES`: what the paper's figure shows;
* :func:`plot_synthetic_layers`: the figure.

Examples
--------
>>> res = run(SCALES["quick"].replace(num_seeds=1, epochs=20), "cpu")
>>> len(res.per_seed), len(res.summary.compression_geometric_mean)
(1, 10)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pncutils import fits
from pncutils.book.config import Config, LossCurve, MeanStd, Result, loss_curve, mean_std
from pncutils.fits import Fit
from pncutils.metrics import LayerTable

__all__ = [
    "SCALES",
    "PAPER_VALUES",
    "SeedLayers",
    "Fig3bSummary",
    "Fig3bResult",
    "run",
    "plot_synthetic_layers",
]

_COMMON = dict(
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

#: The configurations of ``fig3b`` per scale.
SCALES: dict[str, Config] = {
    "quick": Config(epochs=1000, num_seeds=2, **_COMMON),
    "book": Config(epochs=5000, num_seeds=5, **_COMMON),
    "paper": Config(epochs=5000, num_seeds=10, **_COMMON),
}

#: The paper's figure (F3b), read off it [fig]: ``C_l`` from about 12 (input) to 1.7 (last
#: hidden layer), ``D_l`` from about 0.22 (first hidden layer) to 0.63.
PAPER_VALUES: dict[str, float] = {
    "compression_first": 12.0,
    "compression_last": 1.7,
    "discrimination_first": 0.22,
    "discrimination_last": 0.63,
}


@dataclass(frozen=True)
class SeedLayers(Result):
    """One seed of ``fig3b``: its training, per-layer table and fits.

    ``layers`` has the rows ``l = 0..L-1`` (:func:`pncutils.metrics.layerwise`, eval mode);
    ``log_compression_fit`` is :func:`pncutils.fits.geometric` of ``C_l`` over every layer,
    ``discrimination_fit`` :func:`pncutils.fits.linear` of ``D_l`` over ``l = 1..L-1``.

    Examples
    --------
    >>> p = run(SCALES["quick"].replace(num_seeds=1, epochs=30)).per_seed[0]
    >>> len(p.layers), p.discrimination_fit.layers[:2]
    (10, (1, 2))

    Used in: ch05.
    """

    seed: int
    epochs_run: int
    final_loss: float
    loss_curve: LossCurve
    layers: LayerTable
    log_compression_fit: Fit
    discrimination_fit: Fit


@dataclass(frozen=True)
class Fig3bSummary(Result):
    """Seed averages of ``fig3b``: the geometric mean of ``C_l`` and the mean of ``D_l``
    (``l = 0..L-1``), and :class:`~pncutils.book.config.MeanStd` of the fits over seeds.

    Examples
    --------
    >>> s = run(SCALES["quick"].replace(num_seeds=2, epochs=30)).summary
    >>> len(s.discrimination_mean), s.rate.std >= 0
    (10, True)

    Used in: ch05.
    """

    compression_geometric_mean: list[float]
    discrimination_mean: list[float]
    compression_ratio_first_to_last: float
    rate: MeanStd
    log_compression_fit_r2: MeanStd
    discrimination_slope: MeanStd
    discrimination_fit_r2: MeanStd
    final_loss_max: float


@dataclass(frozen=True)
class Fig3bResult(Result):
    """The result of ``fig3b``: the seeds ``cfg.seed .. cfg.seed + num_seeds - 1``.

    Examples
    --------
    >>> res = run(SCALES["quick"].replace(num_seeds=1, epochs=30))
    >>> Fig3bResult.from_dict(res.to_dict()) == res
    True

    Used in: ch05.
    """

    per_seed: list[SeedLayers]
    summary: Fig3bSummary


def _train_seed(cfg: Config, s: int, device: torch.device | str) -> SeedLayers:
    """Train the network of seed `s` on its data set and measure it."""
    from pncutils.data import orthogonal_dataset
    from pncutils.metrics import layerwise
    from pncutils.models import HybridNetwork
    from pncutils.training import TrainConfig, train

    gen = torch.Generator().manual_seed(s)  # data first, then the weights
    X, y = orthogonal_dataset(cfg.num_classes, cfg.num_per_class, cfg.dim, cfg.perturbation,
                              generator=gen)
    net = HybridNetwork(cfg.dim, cfg.width, cfg.num_classes, cfg.depth, cfg.depth - 1,
                        init="orthogonal", init_scale=cfg.init_scale, generator=gen)
    tcfg = TrainConfig(lr=cfg.lr, epochs=cfg.epochs, alpha=cfg.alpha, schedule="cosine",
                       min_lr_ratio=cfg.min_lr_ratio, loss_threshold=cfg.loss_threshold,
                       seed=s, progress=False)
    hist = train(net, X, y, tcfg, device=device)
    net.eval()
    with torch.no_grad():
        table = layerwise(net.features(X.to(device)), y, num_classes=cfg.num_classes)
    return SeedLayers(
        seed=s, epochs_run=hist.epochs_run, final_loss=hist.final_loss,
        loss_curve=loss_curve(hist.loss), layers=table,
        log_compression_fit=fits.geometric(table.compression),
        discrimination_fit=fits.linear(table.discrimination, start=1),
    )


def _summary(per_seed: Sequence[SeedLayers]) -> Fig3bSummary:
    C = torch.stack([p.layers.compression for p in per_seed])  # (S, L)
    D = torch.stack([p.layers.discrimination for p in per_seed])  # (S, L)
    mean_C = C.log().mean(0).exp().tolist()
    return Fig3bSummary(
        compression_geometric_mean=mean_C,
        discrimination_mean=D.mean(0).tolist(),
        compression_ratio_first_to_last=mean_C[0] / mean_C[-1],
        rate=mean_std([p.log_compression_fit.rate for p in per_seed]),
        log_compression_fit_r2=mean_std([p.log_compression_fit.r2 for p in per_seed]),
        discrimination_slope=mean_std([p.discrimination_fit.slope for p in per_seed]),
        discrimination_fit_r2=mean_std([p.discrimination_fit.r2 for p in per_seed]),
        final_loss_max=max(p.final_loss for p in per_seed),
    )


def run(cfg: Config, device: Any = "cpu") -> Fig3bResult:
    """The experiment ``fig3b``: train and measure ``cfg.num_seeds`` nonlinear networks.

    Seed ``s`` (``cfg.seed <= s < cfg.seed + cfg.num_seeds``) draws its data set, then the
    network's weights, from ``torch.Generator().manual_seed(s)``.

    Parameters
    ----------
    cfg : Config
        One of :data:`SCALES`, possibly ``.replace``-d.
    device : torch.device or str, default "cpu"
        N = 30 samples: the CPU is the fast device.

    Returns
    -------
    Fig3bResult

    Examples
    --------
    >>> res = run(SCALES["quick"].replace(num_seeds=2, epochs=30))
    >>> [p.seed for p in res.per_seed], res.per_seed[0].discrimination_fit.layers[0]
    ([0, 1], 1)

    Used in: ch05.
    """
    per_seed = [_train_seed(cfg, s, device) for s in range(cfg.seed, cfg.seed + cfg.num_seeds)]
    return Fig3bResult(per_seed=per_seed, summary=_summary(per_seed))


def _two_axes(axes: Any) -> tuple[Any, list[Any]]:
    import matplotlib.pyplot as plt

    if axes is None:
        fig, ax = plt.subplots(1, 2, figsize=(9.0, 3.4), constrained_layout=True)
        return fig, list(ax)
    axes = list(np.atleast_1d(axes))
    if len(axes) != 2:
        raise ValueError(f"axes must hold 2 Matplotlib axes, got {len(axes)}")
    return axes[0].figure, axes


def plot_synthetic_layers(
    result: Fig3bResult,
    axes: Sequence[Any] | None = None,
    label: str = "",
    color: str | None = None,
) -> tuple[Any, list[Any]]:
    """F3b: ``C_l`` and ``D_l`` of the ``fig3b`` runs, per seed (thin) and averaged.

    The bold lines are the geometric mean of ``C_l`` and the arithmetic mean of ``D_l`` over
    seeds, with a dotted least-squares fit (:func:`pncutils.fits.geometric` of ``C_l`` over
    ``l = 0..L-1``, :func:`pncutils.fits.linear` of ``D_l`` over ``l = 1..L-1``).

    Parameters
    ----------
    result : Fig3bResult
    axes : two Matplotlib axes, optional
        Draw on these (to overlay a second result); new axes when omitted.
    label : str, default ""
        Appended to the legend entries.
    color : str, optional

    Returns
    -------
    fig, [ax_c, ax_d]

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> res = run(SCALES["quick"].replace(num_seeds=2, epochs=30))
    >>> fig, (c, d) = plot_synthetic_layers(res); len(c.lines), len(d.lines)
    (4, 4)
    >>> plt.close(fig)

    Used in: ch05.
    """
    from pncutils.plotting import COLORS

    if not isinstance(result, Fig3bResult):
        raise ValueError(f"result must be a Fig3bResult (the 'fig3b' experiment), got "
                         f"{type(result).__name__}")
    fig, (ax_c, ax_d) = _two_axes(axes)
    color = color or COLORS[0]
    for p in result.per_seed:
        C, D = p.layers.compression.numpy(), p.layers.discrimination.numpy()
        ax_c.semilogy(np.arange(len(C)), C, color=color, alpha=0.25, lw=0.8)
        ax_d.plot(np.arange(1, len(D)), D[1:], color=color, alpha=0.25, lw=0.8)
    C = np.asarray(result.summary.compression_geometric_mean, dtype=float)
    D = np.asarray(result.summary.discrimination_mean, dtype=float)
    lc, ld = np.arange(len(C)), np.arange(1, len(D))
    fc, fd = fits.geometric(C), fits.linear(D, start=1)
    ax_c.semilogy(lc, C, "o-", ms=3, color=color, label=f"mean over seeds{label}")
    ax_c.semilogy(lc, fc.predict(lc).numpy(), ":", color="0.3",
                  label=f"fit: rate {fc.rate:.3f}, $R^2$ = {fc.r2:.3f}")
    ax_d.plot(ld, D[1:], "o-", ms=3, color=color, label=f"mean over seeds{label}")
    ax_d.plot(ld, fd.predict(ld).numpy(), ":", color="0.3",
              label=f"fit: slope {fd.slope:.3f}, $R^2$ = {fd.r2:.3f}")
    ax_c.set(xlabel="layer $l$", ylabel="$C_l$ (log scale)")
    ax_d.set(xlabel="layer $l$", ylabel="$D_l$")
    for ax in (ax_c, ax_d):
        ax.legend(fontsize=7)
    return fig, [ax_c, ax_d]

