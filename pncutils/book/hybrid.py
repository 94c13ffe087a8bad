"""Chapter 5's experiment (``hybrid``): the 8-layer hybrid and MLP on FashionMNIST.

Figures 1, 5 and F2 of the paper: a **hybrid** network (3 blocks ``Linear -> BatchNorm ->
ReLU``, then 4 linear layers and the classifier, ``alpha = 100``) and an **MLP** (7 blocks and
the classifier, ``alpha = 1``) are trained by mini-batch SGD and measured layer by layer
(eval mode): numerical rank, linear probes, ``C_l``, ``D_l``, the outputs' ``C_L`` and
``D_L``, the least-squares floor of the linear layers and 2-D projections.

* :data:`SCALES`: the registered configurations; chapter 5 runs the ``book`` one (``quick``
  in quick mode) live; ``paper`` needs a GPU;
* :func:`hybrid_setup`: one untrained network and its training configuration;
* :func:`run`: the typed :class:`HybridResult`, with :func:`deep_summary` (the fits and the
  probe saturation of each network) and :func:`linear_part_floor` (the floor of the linear
  layers);
* :data:`REFERENCE_VALUES`: the authors' CIFAR-10 numbers.

The figures of the experiment are in :mod:`pncutils.book.figures`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from pncutils import fits
from pncutils._checks import check_choice, check_int
from pncutils.book.config import Config, LossCurve, Result, loss_curve
from pncutils.fits import Fit
from pncutils.metrics import LayerTable

__all__ = [
    "SCALES",
    "REFERENCE_VALUES",
    "Outputs",
    "LinearFloor",
    "DeepSummary",
    "Projections",
    "Training",
    "NetworkResult",
    "HybridResult",
    "hybrid_setup",
    "linear_part_floor",
    "deep_summary",
    "run",
]

_COMMON = dict(
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
#: The configurations of ``hybrid`` per scale.
SCALES: dict[str, Config] = {
    "quick": Config(num_per_class=50, test_per_class=200, width=128, epochs=150,
                    hybrid_lr=1e-2, mlp_lr=1e-2, pca_samples=300, **_COMMON),
    "book": Config(num_per_class=600, test_per_class=600, width=256, epochs=40,
                   hybrid_lr=1e-2, mlp_lr=1e-2, pca_samples=1000, **_COMMON),
    "paper": Config(num_per_class=None, test_per_class=None, width=1024, epochs=400,
                    hybrid_lr=1e-4, mlp_lr=1e-4, pca_samples=1000, **_COMMON),
}

#: The authors' notebook on CIFAR-10 (``hybrid_mlp.ipynb``, its printed output, train-mode
#: BatchNorm) [code]: the hybrid's ``C_l`` and ``D_l`` at ``l = 1..7``; and the first layer of
#: the paper's "compression zone" (probe accuracy saturated) per network [fig].
REFERENCE_VALUES: dict[str, Any] = {
    "hybrid_compression_cifar10": (17.0, 9.5, 2.3, 0.85, 0.14, 0.026, 0.010),
    "hybrid_discrimination_cifar10": (0.013, 0.018, 0.09, 0.24, 0.45, 0.67, 0.86),
    "compression_zone_start": {"hybrid": 2, "mlp": 3},
}


@dataclass(frozen=True)
class Outputs(Result):
    """``C_L`` and ``D_L`` of a network's outputs (the logits, layer ``L``).

    Examples
    --------
    >>> Outputs(0.005, 0.99).to_dict()
    {'compression': 0.005, 'discrimination': 0.99}

    Used in: ch05.
    """

    compression: float
    discrimination: float


@dataclass(frozen=True)
class LinearFloor(Result):
    """The least-squares floor of the linear layers (:func:`linear_part_floor`).

    Examples
    --------
    >>> f = LinearFloor([3, 4], [0.2, 0.1], 0.11, 0.5, 0.6, 0.3)
    >>> LinearFloor.from_dict(f.to_dict()) == f
    True

    Used in: ch05.
    """

    layers: list[int]
    least_squares_floor: list[float]
    end_to_end_compression: float
    least_squares_loss: float
    network_loss: float
    map_distance: float


@dataclass(frozen=True)
class DeepSummary(Result):
    """The claims of Figures 1 and 5 on the layers ``fit_layers`` of a network
    (:func:`deep_summary`).

    Examples
    --------
    >>> t = LayerTable({"layer": [0, 1, 2, 3, 4], "compression": [9.0, 8.0, 4.0, 2.0, 1.0],
    ...                 "discrimination": [0.1, 0.2, 0.4, 0.5, 0.7], "rank": [9, 8, 6, 4, 3],
    ...                 "probe_train_acc": [0.5, 0.9, 0.995, 1.0, 1.0]})
    >>> s = deep_summary(t, 1, 4, outputs_compression=0.5)
    >>> s.fit_layers, round(s.floor_fit.rate, 4), DeepSummary.from_dict(s.to_dict()) == s
    ([1, 2, 3, 4], 0.4077, True)

    Used in: ch05.
    """

    fit_layers: list[int]
    compression_ratio_layer1_to_last: float
    compression_ratio_first_linear_to_last: float
    compression_ratio_fit_start_to_last: float
    log_compression_fit: Fit
    floor_fit: Fit | None
    discrimination_change_over_fit_layers: float
    discrimination_increasing_steps: int
    discrimination_max_layer: int
    rank_layer1: int
    rank_last: int
    probe_train_acc_max: float
    probe_saturation_layer: int


@dataclass(frozen=True)
class Projections(Result):
    """2-D PCA projections of the features at ``layers`` of ``len(labels)`` training images
    (coordinates rounded to 4 significant digits).

    Examples
    --------
    >>> p = Projections([1], [0, 1], [[0.5, -0.5]], [[0.1, 0.2]], [[0.9, 0.1]])
    >>> p.to_dict()["x"]
    [[0.5, -0.5]]

    Used in: ch05.
    """

    layers: list[int]
    labels: list[int]
    x: list[list[float]]
    y: list[list[float]]
    explained_variance_ratio: list[list[float]]


@dataclass(frozen=True)
class Training(Result):
    """How a network of ``hybrid`` was trained, and its accuracy.

    Examples
    --------
    >>> tr = Training(100.0, 0.01, 2, 0.5, loss_curve([1.0, 0.5]), 0.9, 0.8, 1.0, 0.5)
    >>> Training.from_dict(tr.to_dict()).loss_curve.loss
    [1.0, 0.5]

    Used in: ch05.
    """

    alpha: float
    lr: float
    epochs_run: int
    final_loss: float
    loss_curve: LossCurve
    train_acc: float
    test_acc: float
    train_wall_time_s: float
    analysis_wall_time_s: float


@dataclass(frozen=True)
class NetworkResult(Result):
    """One network of ``hybrid``: its per-layer table and what is derived from it.

    ``layers`` has the rows ``l = 0..L-1`` (``l = 0`` is the input) and the columns of
    :func:`pncutils.analysis.layer_report`. :func:`run` fills every field; the others may be
    None in a result built by hand (a reader's own network, the tests).

    Examples
    --------
    >>> t = LayerTable({"layer": [0, 1, 2, 3, 4], "compression": [9.0, 8.0, 4.0, 2.0, 1.0],
    ...                 "discrimination": [0.1, 0.2, 0.4, 0.5, 0.7], "rank": [9, 8, 6, 4, 3],
    ...                 "probe_train_acc": [0.5, 0.9, 0.995, 1.0, 1.0]})
    >>> net = NetworkResult(1, t, Outputs(0.5, 0.9))
    >>> net.layers.compression[1].item(), net.summary is None
    (8.0, True)

    Used in: ch05, ch09.
    """

    num_nonlinear: int
    layers: LayerTable
    logits: Outputs | None = None
    linear_floor: LinearFloor | None = None
    summary: DeepSummary | None = None
    pca: Projections | None = None
    training: Training | None = None


@dataclass(frozen=True)
class HybridResult(Result):
    """The result of ``hybrid``: the data's sizes and the two networks (``"hybrid"``,
    ``"mlp"``).

    Examples
    --------
    >>> t = LayerTable({"layer": [0, 1, 2, 3, 4], "compression": [9.0, 8.0, 4.0, 2.0, 1.0],
    ...                 "discrimination": [0.1, 0.2, 0.4, 0.5, 0.7], "rank": [9, 8, 6, 4, 3],
    ...                 "probe_train_acc": [0.5, 0.9, 0.995, 1.0, 1.0]})
    >>> res = HybridResult(40, 20, 784, 2, {"hybrid": NetworkResult(1, t)})
    >>> HybridResult.from_dict(res.to_dict()) == res
    True

    Used in: ch05, ch09.
    """

    num_train: int
    num_test: int
    input_dim: int
    num_classes: int
    networks: dict[str, NetworkResult]


def linear_part_floor(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, alpha: float,
                      batch_size: int = 4096) -> LinearFloor:
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
    LinearFloor
        ``layers`` (``m..L``), ``least_squares_floor`` (``F_l`` at those layers, the last the
        compression of the least-squares fit), ``end_to_end_compression`` (``C`` of
        ``H_m A^T``: the network's outputs, measured without BatchNorm in the way),
        ``least_squares_loss`` and ``network_loss`` (``(1/N) sum ||alpha h A^T - y||^2`` over
        the training set, eval mode) and ``map_distance`` (``||A - W*||_F / ||W*||_F``).

    Raises
    ------
    ValueError
        A model without ``features``, ``weights``, ``num_nonlinear`` and ``depth`` (a
        :class:`pncutils.models.HybridNetwork`), or ``X`` and ``y`` of mismatched shapes.

    Examples
    --------
    >>> from pncutils.models import HybridNetwork
    >>> g = torch.Generator().manual_seed(0)
    >>> net = HybridNetwork(6, 8, 2, depth=4, num_nonlinear=1, generator=g)
    >>> X = torch.randn(40, 6, generator=g); y = torch.arange(40) % 2
    >>> f = linear_part_floor(net, X, y, alpha=1.0)
    >>> f.layers, len(f.least_squares_floor)
    ([1, 2, 3, 4], 4)
    >>> f.least_squares_loss <= f.network_loss  # W* is the best linear map of H_1
    True

    Used in: ch05.
    """
    from pncutils._forward import features
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
    H = features(model, X, batch_size, [m])[0].to("cpu", torch.float64)  # (N, width), eval
    y = y.to("cpu")
    Ws = [W.detach().to("cpu", torch.float64) for W in model.weights()[m:]]
    A = Ws[0]
    for W in Ws[1:]:
        A = W @ A  # (K, width)
    W_star = least_squares_map(H, y, alpha)
    Y = torch.nn.functional.one_hot(y, A.shape[0]).to(torch.float64)
    floor = compression_floor(H, y, depth=L - m, alpha=alpha)
    return LinearFloor(
        layers=list(range(m, L + 1)),
        least_squares_floor=floor.compression.tolist(),
        end_to_end_compression=float(compression(H @ A.T, y)),
        least_squares_loss=float((alpha * H @ W_star.T - Y).square().sum(1).mean()),
        network_loss=float((alpha * H @ A.T - Y).square().sum(1).mean()),
        map_distance=float(torch.linalg.norm(A - W_star) / torch.linalg.norm(W_star)),
    )


def deep_summary(table: LayerTable, first: int, last: int,
                 outputs_compression: float | None = None) -> DeepSummary:
    """The qualitative claims of Figures 1 and 5 on the layers ``first..last`` of a table.

    Parameters
    ----------
    table : LayerTable
        Rows ``l = 0..L-1``, columns ``compression, discrimination, rank,
        probe_train_acc`` (:func:`pncutils.analysis.layer_report`).
    first, last : int
        The layers of the fits (``1 <= first``, ``first + 2 <= last <= L - 1``): the
        hybrid's linear part, ``m..L-1``.
    outputs_compression : float, optional
        ``C_L`` of the outputs: the floor of :attr:`DeepSummary.floor_fit`.

    Returns
    -------
    DeepSummary
        ``log_compression_fit`` (:func:`pncutils.fits.geometric` of ``C_l``, ``l =
        first..last``), ``floor_fit`` (:func:`pncutils.fits.floor` of ``C_l - C_L`` over
        the same layers; None without `outputs_compression` or with fewer than three layers
        above the floor), the ratios of ``C``, the change of ``D``, the ranks, and
        ``probe_saturation_layer``: the first layer ``l >= 1`` whose probe training accuracy
        is within 0.01 of the best over ``l >= 1``.

    Examples
    --------
    >>> t = LayerTable({"layer": [0, 1, 2, 3, 4], "compression": [9.0, 8.0, 4.0, 2.0, 1.0],
    ...                 "discrimination": [0.1, 0.2, 0.4, 0.5, 0.7], "rank": [9, 8, 6, 4, 3],
    ...                 "probe_train_acc": [0.5, 0.9, 0.995, 1.0, 1.0]})
    >>> s = deep_summary(t, 1, 4)
    >>> round(s.log_compression_fit.rate, 12), s.probe_saturation_layer, s.rank_last
    (0.5, 2, 3)

    Used in: ch05.
    """
    C, D = table.compression.tolist(), table.discrimination.tolist()
    rank = [int(r) for r in table["rank"].tolist()]
    probe = table.probe_train_acc.tolist()
    layers = list(range(first, last + 1))
    try:
        floor_fit = (fits.floor(C[first : last + 1], outputs_compression, layers)
                     if outputs_compression is not None else None)
    except ValueError:  # fewer than three layers above the floor
        floor_fit = None
    best = max(probe[1:])
    return DeepSummary(
        fit_layers=layers,
        compression_ratio_layer1_to_last=C[1] / C[last],
        compression_ratio_first_linear_to_last=C[first + 1] / C[last],
        compression_ratio_fit_start_to_last=C[first] / C[last],
        log_compression_fit=fits.geometric(C[first : last + 1], layers),
        floor_fit=floor_fit,
        discrimination_change_over_fit_layers=D[last] - D[first],
        discrimination_increasing_steps=sum(D[i + 1] > D[i] for i in range(first, last)),
        discrimination_max_layer=max(range(1, len(D)), key=lambda i: D[i]),
        rank_layer1=rank[1],
        rank_last=rank[last],
        probe_train_acc_max=best,
        probe_saturation_layer=next(i for i in range(1, len(probe)) if probe[i] >= best - 0.01),
    )


def hybrid_setup(cfg: Config, network: str, in_dim: int, num_classes: int) -> tuple[Any, Any]:
    """The untrained network and the training configuration of one network of ``hybrid``.

    Parameters
    ----------
    cfg : Config
        A Config of the ``hybrid`` experiment (e.g. ``SCALES["quick"]``, possibly
        ``.replace(hybrid_nonlinear=5)``).
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
    >>> cfg = SCALES["quick"]
    >>> net, tcfg = hybrid_setup(cfg.replace(hybrid_nonlinear=5), "hybrid", 784, 10)
    >>> net.num_nonlinear, tcfg.alpha, tcfg.epochs == cfg.epochs
    (5, 100.0, True)

    Used in: ch05.
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


def _round_sig(values: Any, digits: int = 4) -> list[float]:
    return [float(f"{float(v):.{digits}g}") for v in values]


def _projections(net: torch.nn.Module, X: torch.Tensor, labels: torch.Tensor,
                 layers: list[int], device: torch.device) -> Projections:
    """The 2-D PCA projections of the features of `X` at `layers` (eval mode)."""
    from pncutils._forward import features
    from pncutils.analysis import pca_projection

    xs, ys, evr = [], [], []
    for H in features(net, X, X.shape[0], layers, device):
        H = H.to("cpu", torch.float64)
        P = pca_projection(H, 2)
        total = float((H - H.mean(0)).square().sum())
        xs.append(_round_sig(P[:, 0]))
        ys.append(_round_sig(P[:, 1]))
        evr.append(_round_sig(P.square().sum(0) / total))
    return Projections(list(layers), labels.tolist(), xs, ys, evr)


def _network_result(cfg: Config, name: str, data: tuple[torch.Tensor, ...],
                    pca_idx: torch.Tensor, device: torch.device) -> NetworkResult:
    """Train network `name` of ``hybrid`` and measure it."""
    from pncutils._forward import accuracy
    from pncutils.analysis import layer_report
    from pncutils.book.beyond import layer_metrics
    from pncutils.training import train

    X, y, X_test, y_test = data
    net, tcfg = hybrid_setup(cfg, name, X.shape[1], int(y.max()) + 1)
    hist = train(net, X, y, tcfg, device=device)
    t0 = time.perf_counter()
    table = layer_report(net, X, y, X_test, y_test, batch_size=cfg.eval_batch_size,
                         energy=cfg.energy, probe_ridge=cfg.probe_ridge, device=device)
    # C_L and D_L of the outputs: the level the hidden layers' C_l settles on (chapter 5)
    out = layer_metrics(net, X, y, cfg.eval_batch_size)[1]
    logits = Outputs(float(out.compression[0]), float(out.discrimination[0]))
    # ... and the analytic floor of the linear layers on the final H_m (chapter 5)
    floor = linear_part_floor(net, X, y, tcfg.alpha, cfg.eval_batch_size)
    pca = _projections(net, X[pca_idx], y[pca_idx], list(cfg.pca_layers), device)
    train_acc = accuracy(net, X, y, cfg.eval_batch_size, device)
    test_acc = accuracy(net, X_test, y_test, cfg.eval_batch_size, device)
    training = Training(
        alpha=tcfg.alpha, lr=tcfg.lr, epochs_run=hist.epochs_run, final_loss=hist.final_loss,
        loss_curve=loss_curve(hist.loss), train_acc=train_acc, test_acc=test_acc,
        train_wall_time_s=hist.wall_time, analysis_wall_time_s=time.perf_counter() - t0)
    summary = deep_summary(table, cfg.hybrid_nonlinear, cfg.depth - 1, logits.compression)
    return NetworkResult(num_nonlinear=cfg[f"{name}_nonlinear"], layers=table, logits=logits,
                         linear_floor=floor, summary=summary, pca=pca, training=training)


def run(cfg: Config, device: Any = None) -> HybridResult:
    """The experiment ``hybrid``: train the hybrid and the MLP and report every layer.

    Parameters
    ----------
    cfg : Config
        One of :data:`SCALES`, possibly ``.replace``-d (e.g. ``dataset="cifar10"``).
    device : torch.device or str, optional
        Where to train and measure; :func:`pncutils.utils.get_device` when omitted.

    Returns
    -------
    HybridResult
        Both networks measured on the same data; the 2-D projections use the first
        ``pca_samples / K`` training images of each class (file order). The summaries fit
        the same layers, ``hybrid_nonlinear .. depth - 1``, for both networks.

    Raises
    ------
    pncutils.data.DatasetNotFoundError
        The data set is not installed (and downloads are off).

    Examples
    --------
    >>> cfg = SCALES["quick"].replace(num_per_class=10, test_per_class=10, width=16,
    ...                               epochs=1, pca_samples=20)
    >>> res = run(cfg, "cpu")
    >>> sorted(res.networks), res.networks["hybrid"].summary.fit_layers
    (['hybrid', 'mlp'], [3, 4, 5, 6, 7])

    Used in: ch05.
    """
    from pncutils.data import load_dataset
    from pncutils.utils import get_device

    dev = get_device() if device is None else torch.device(device)
    X, y = load_dataset(cfg.dataset, "train", num_per_class=cfg.num_per_class)
    X_test, y_test = load_dataset(cfg.dataset, "test", num_per_class=cfg.test_per_class)
    K = int(y.max()) + 1
    m = cfg.pca_samples // K  # the first samples of each class (file order), for F2
    pca_idx = torch.cat([torch.nonzero(y == k).flatten()[:m] for k in range(K)]).sort().values
    networks = {name: _network_result(cfg, name, (X, y, X_test, y_test), pca_idx, dev)
                for name in ("hybrid", "mlp")}
    return HybridResult(num_train=X.shape[0], num_test=X_test.shape[0], input_dim=X.shape[1],
                        num_classes=K, networks=networks)

