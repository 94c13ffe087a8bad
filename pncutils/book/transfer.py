"""Transfer learning with a projection head: a toy version of the paper's figure F8.

The paper pre-trains a feature extractor with a projection head of ``m = 1..5`` layers,
discards the head, and transfers the extractor to another task with a linear probe; it
reports that the transfer accuracy rises and that the extractor's features are less
collapsed (larger ``C``) as ``m`` grows. The paper gives no code or exact setup for this
experiment. The design here is the book's reconstruction, small enough for a CPU:

- **Data.** FashionMNIST. The network is pre-trained on the *source* classes 0-4
  (T-shirt, trouser, pullover, dress, coat) and transferred to the held-out *target*
  classes 5-9 (sandal, shirt, sneaker, bag, ankle boot). Labels are renumbered
  ``0..4`` within each task (:func:`select_classes`).
- **Network.** A :class:`pncutils.models.HybridNetwork`: a backbone of ``backbone_depth``
  blocks ``Linear -> BatchNorm1d -> ReLU`` (the extractor), then a linear head of ``m``
  bias-free linear layers, the last of which is the classifier (``m = 1``: the classifier
  sits directly on the extractor). Its depth is ``backbone_depth + m``
  (:func:`build_network`).
- **Training.** :func:`pncutils.training.train`: the paper's MSE loss with output scale
  ``alpha``, mini-batch SGD with momentum, weight decay and a cosine schedule.
- **Transfer.** The head is discarded; a closed-form ridge linear probe
  (:func:`pncutils.probes.linear_probe_accuracy`) is fitted on the extractor's features
  of target-class *training* images and evaluated on target-class *test* images. Its ridge
  is chosen by k-fold cross-validation on those training images alone
  (:func:`pncutils.probes.cv_ridge`), for every probe, the raw-pixel reference included: a fixed
  small ridge leaves the raw-pixel probe near its interpolation peak (``N`` close to the
  784 pixels), which would flatter the extractor.
- **Geometry.** ``C``, ``D`` and NC1 of the extractor's features on source and on target
  images, and ``C`` through the head, layer by layer (:func:`transfer_metrics`).

Every seed draws its own initialisation and mini-batch order (the images are the first
``num_per_class`` of each class in file order, the same for every seed; :func:`task_data`).

:func:`run` returns a typed :class:`TransferResult` (one :class:`TransferRun` per head size
and seed, one :class:`HeadSummary` of :class:`~pncutils.book.config.MeanStd` per head size),
the ``results`` of the result file of experiment ``transfer``; the tables and figures below
take it.

References
----------
Wang et al., "Understanding deep representation learning via layerwise feature compression
and discrimination", arXiv:2311.02960 (the projection-head figure of the authors' project page).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from pncutils import _forward, fits
from pncutils._checks import as_tensor, check_float, check_int
from pncutils.book.config import Config, MeanStd, Result, mean_std
from pncutils.metrics import LayerTable
from pncutils.probes import check_ridge, probe_accuracy

__all__ = [
    "SCALES",
    "PAPER_F8",
    "METRICS",
    "select_classes",
    "TaskData",
    "task_data",
    "build_network",
    "extract_features",
    "FeatureGeometry",
    "feature_geometry",
    "TransferMetrics",
    "transfer_metrics",
    "TransferRun",
    "HeadSummary",
    "WallTime",
    "TransferResult",
    "run",
    "summary_table",
    "head_compression_table",
    "plot_transfer",
    "plot_head_compression",
    "geometric_head_rate",
]

#: The paper's projection-head figure (F8), read off the authors' figure (about +-3% of the
#: axis range): transfer accuracy (%) and C of the extractor's features for heads of 1..5 layers.
PAPER_F8: dict[str, list[float]] = {
    "head_layers": [1, 2, 3, 4, 5],
    "transfer_acc": [60.05, 64.65, 65.6, 66.3, 67.15],
    "compression": [0.0085, 0.028, 0.047, 0.08, 0.12],
}

_COMMON = dict(
    dataset="fashion_mnist",
    source_classes=[0, 1, 2, 3, 4],  # pre-training task
    target_classes=[5, 6, 7, 8, 9],  # held-out transfer task
    backbone_depth=2,  # Linear-BN-ReLU blocks of the extractor
    head_layers=[1, 2, 3, 4, 5],  # m: linear layers of the head, classifier included
    init="default",  # PyTorch's nn.Linear initialisation (see the chapter for why)
    init_scale=1.0,  # unused by the default initialisation
    alpha=1.0,  # output scale of the MSE loss
    loss="mse",
    lr=0.05,
    momentum=0.9,
    weight_decay=1e-4,
    batch_size=128,
    min_lr_ratio=0.01,  # cosine floor lr/100
    # ridge of every linear probe, relative to the feature scale: "cv" = chosen per probe by
    # 5-fold cross-validation on its training set over PROBE_RIDGE_GRID; a number = fixed
    probe_ridge="cv",
    eval_batch_size=4096,
    seed=0,  # seeds seed, seed + 1, ...: initialisation and mini-batch order
)

#: The three scales of the experiment (``python -m pncutils.reproduce transfer --scale S``).
SCALES: dict[str, Config] = {
    "quick": Config(num_per_class=100, target_train_per_class=100, target_test_per_class=200,
                    source_test_per_class=200, width=64, epochs=15, num_seeds=2, **_COMMON),
    "book": Config(num_per_class=200, target_train_per_class=100, target_test_per_class=500,
                   source_test_per_class=500, width=128, epochs=25, num_seeds=3, **_COMMON),
    # the full split: 30 000 source and 30 000 target training images, all test images
    "paper": Config(num_per_class=None, target_train_per_class=None,
                    target_test_per_class=None, source_test_per_class=None, width=1024,
                    epochs=100, num_seeds=3, **_COMMON),
}


# ----------------------------------------------------------------------------------------
# building blocks
# ----------------------------------------------------------------------------------------


def select_classes(
    X: Any, y: Any, classes: Sequence[int], num_per_class: int | None = None
) -> tuple[Tensor, Tensor]:
    """The samples of some classes, relabelled ``0..len(classes)-1`` in the order given.

    Parameters
    ----------
    X : Tensor, shape (N, D)
        Inputs, one row per sample.
    y : Tensor, shape (N,)
        Integer labels.
    classes : sequence of int
        The original labels to keep (distinct, at least two); ``classes[k]`` becomes ``k``.
    num_per_class : int, optional
        Keep the first `num_per_class` samples of each class (in the order of `X`); all
        when omitted.

    Returns
    -------
    X_sel : Tensor, shape (M, D)
        The kept rows, in their original order (on the device of `X`).
    y_sel : Tensor, shape (M,)
        int64 labels in ``[0, len(classes))``.

    Examples
    --------
    >>> X = torch.arange(6.).view(6, 1); y = torch.tensor([0, 1, 2, 1, 2, 0])
    >>> Xs, ys = select_classes(X, y, [2, 1])
    >>> Xs.flatten().tolist(), ys.tolist()
    ([1.0, 2.0, 3.0, 4.0], [1, 0, 1, 0])

    Used in: ch08.
    """
    X = as_tensor(X, "X")
    y = as_tensor(y, "y")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D with shape (N, D), got shape {tuple(X.shape)}")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has shape {tuple(y.shape)}")
    classes = [check_int(c, "class label") for c in classes]
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(f"classes must hold at least two distinct labels, got {classes}")
    if num_per_class is not None:
        num_per_class = check_int(num_per_class, "num_per_class", minimum=1)
    y = y.to(torch.int64)
    keep = torch.zeros_like(y, dtype=torch.bool)
    new = torch.full_like(y, -1)
    for k, c in enumerate(classes):
        idx = torch.nonzero(y == c).flatten()
        if idx.numel() == 0:
            raise ValueError(f"class {c} has no samples")
        if num_per_class is not None:
            if idx.numel() < num_per_class:
                raise ValueError(
                    f"class {c} has {idx.numel()} samples, fewer than num_per_class={num_per_class}"
                )
            idx = idx[:num_per_class]
        keep[idx] = True
        new[idx] = k
    return X[keep], new[keep]


def build_network(
    in_dim: int,
    width: int,
    num_classes: int,
    backbone_depth: int,
    head_layers: int,
    init: str = "default",
    init_scale: float = 1.0,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """A nonlinear extractor followed by a linear head of `head_layers` layers.

    The network is :class:`pncutils.models.HybridNetwork` with ``depth = backbone_depth +
    head_layers`` and ``num_nonlinear = backbone_depth``: ``model.features(x)[backbone_depth]``
    is the extractor's output, ``features[backbone_depth + j]`` the output of the ``j``-th
    hidden head layer, and the last head layer is the classifier.

    Parameters
    ----------
    in_dim, width, num_classes : int
        Input dimension D_in, hidden width and number of source classes K.
    backbone_depth : int
        Number of ``Linear -> BatchNorm1d -> ReLU`` blocks of the extractor (>= 1).
    head_layers : int
        ``m >= 1``, bias-free linear layers of the head, the classifier included.
    init, init_scale : see :class:`pncutils.models.HybridNetwork`
    generator : torch.Generator, optional
        Source of the initialisation.

    Returns
    -------
    HybridNetwork

    Examples
    --------
    >>> net = build_network(8, 16, 3, backbone_depth=2, head_layers=3,
    ...                     generator=torch.Generator().manual_seed(0))
    >>> net.depth, net.num_nonlinear, len(net.features(torch.zeros(4, 8)))
    (5, 2, 5)

    Used in: ch08 (through :func:`run`).
    """
    from pncutils.models import HybridNetwork

    backbone_depth = check_int(backbone_depth, "backbone_depth", minimum=1)
    head_layers = check_int(head_layers, "head_layers", minimum=1)
    return HybridNetwork(in_dim, width, num_classes, depth=backbone_depth + head_layers,
                         num_nonlinear=backbone_depth, init=init, init_scale=init_scale,
                         generator=generator)


def extract_features(
    model: nn.Module, X: Any, layers: Sequence[int], batch_size: int = 4096
) -> list[Tensor]:
    """Features of some layers of ``model.features`` in eval mode, without gradients.

    Parameters
    ----------
    model : nn.Module
        A network with a ``features(x)`` method (e.g. :func:`build_network`).
    X : Tensor, shape (N, D_in)
        Inputs; moved to the model's device batch by batch.
    layers : sequence of int
        Indices into ``model.features(x)`` (0 = the input).
    batch_size : int, default 4096

    Returns
    -------
    list of Tensor
        One (N, d_l) tensor per requested layer, on the model's device, in the model's dtype.

    Examples
    --------
    >>> net = build_network(8, 16, 3, 2, 1, generator=torch.Generator().manual_seed(0))
    >>> [tuple(H.shape) for H in extract_features(net, torch.randn(5, 8), [0, 2])]
    [(5, 8), (5, 16)]

    Used in: ch08 (through :func:`transfer_metrics`).
    """
    X = as_tensor(X, "X")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    layers = [check_int(i, "layer", minimum=0) for i in layers]
    return _forward.features(model, X, batch_size, layers)


@dataclass(frozen=True)
class FeatureGeometry(Result):
    """How far features are from orthogonal rows (:func:`feature_geometry`).

    Attributes
    ----------
    norm_sq : float
        ``r^2``, the mean squared row norm.
    mean_cosine : float
        Mean pairwise cosine of the rows (0 for orthogonal rows).
    num_per_class : float
        ``n = N / K``.
    norm_ratio : float
        ``alpha^2 r^2 / n``.
    signal_gain : float
        ``s_bar``, the geometric mean singular value of the least-squares map.
    """

    norm_sq: float
    mean_cosine: float
    num_per_class: float
    norm_ratio: float
    signal_gain: float


def feature_geometry(H: Any, y: Any, alpha: float = 1.0) -> FeatureGeometry:
    """How far features are from the theory's orthogonal inputs, and which regime they are in.

    The idealised rate of chapter 3 is ``rho = eps^2 / s_bar^{2/L}``, with ``s_bar`` the geometric
    mean of the nonzero singular values of the minimum-norm least-squares map
    ``W* = alpha^{-1} Y^T (H^+)^T`` (:func:`pncutils.theory.least_squares_map`). For orthogonal
    rows of common norm ``r`` with ``n`` samples per class, ``s_bar = sqrt(n) / (alpha r)``. A
    deeper network shares the signal among more layers, which de-compresses its first layers
    exactly when the per-layer gain ``s_bar^{1/L}`` exceeds one: ``alpha^2 r^2 < n`` for
    orthogonal rows, ``s_bar > 1`` in general.

    Parameters
    ----------
    H : Tensor or ndarray, shape (N, D)
        Features (or inputs), one row per sample; zero rows are left out of ``mean_cosine``.
    y : Tensor or ndarray, shape (N,)
        Integer labels in ``[0, K)``.
    alpha : float, default 1.0
        Output scale of the loss.

    Returns
    -------
    FeatureGeometry
        ``norm_sq``: ``r^2``, the mean of ``||h_i||^2``; ``mean_cosine``: the mean over pairs
        ``i != j`` of ``<h_i, h_j> / (||h_i|| ||h_j||)`` (0 for orthogonal rows; signed);
        ``num_per_class``: ``n = N / K``; ``norm_ratio``: ``alpha^2 r^2 / n`` (below one: the
        de-compressing regime *if* the rows were orthogonal); ``signal_gain``: ``s_bar``
        measured (singular values below ``max(K, D) * 2.2e-16 * s_max`` are left out).

    Examples
    --------
    Orthogonal rows of norm 3, two classes of two: ``s_bar = sqrt(2) / 3``.

    >>> H = 3.0 * torch.eye(4, 6); y = torch.tensor([0, 0, 1, 1])
    >>> g = feature_geometry(H, y)
    >>> g.norm_sq, g.mean_cosine, g.norm_ratio, round(g.signal_gain, 6)
    (9.0, 0.0, 4.5, 0.471405)

    Used in: ch08.
    """
    from pncutils._checks import check_features, check_labels
    from pncutils.theory import least_squares_map

    H = check_features(H)
    y, K = check_labels(y, H.shape[0], None, device=H.device)
    alpha = check_float(alpha, "alpha", minimum=0.0, strict=True)
    N, D = H.shape
    norms = H.norm(dim=1)
    unit = H[norms > 0] / norms[norms > 0, None]
    M = unit.shape[0]
    # sum over i != j of cos(h_i, h_j) = ||sum_i u_i||^2 - M, without the (M, M) Gram matrix
    mean_cos = ((unit.sum(0).square().sum() - M) / (M * (M - 1))).item() if M > 1 else 0.0
    s = torch.linalg.svdvals(least_squares_map(H, y, alpha))
    s = s[s > s.max() * max(K, D) * torch.finfo(torch.float64).eps]
    norm_sq = float(norms.square().mean())
    return FeatureGeometry(norm_sq, float(mean_cos), N / K, alpha**2 * norm_sq / (N / K),
                           float(s.log().mean().exp()))


@dataclass(frozen=True)
class TransferMetrics(Result):
    """Transfer accuracy and geometry of one pre-trained extractor (:func:`transfer_metrics`).

    Attributes
    ----------
    transfer_acc, probe_ridge : float
        The probe on the extractor's target features: test accuracy and ridge.
    compression_source, compression_target : float
        ``C`` of the extractor's features on the source and target training images.
    discrimination_source, discrimination_target, nc1_source, nc1_target : float
    feature_norm_sq, feature_cosine, feature_norm_ratio, signal_gain : float
        :func:`feature_geometry` of the extractor's source features.
    head_compression : list of float
        ``[C_b, ..., C_{L-1}]`` on the source images (``m`` values).
    head_transfer_acc, head_probe_ridge : list of float
        The probe on each of these layers (``m`` values; the first is ``transfer_acc``).
    """

    transfer_acc: float
    probe_ridge: float
    compression_source: float
    compression_target: float
    discrimination_source: float
    discrimination_target: float
    nc1_source: float
    nc1_target: float
    feature_norm_sq: float
    feature_cosine: float
    feature_norm_ratio: float
    signal_gain: float
    head_compression: list[float]
    head_transfer_acc: list[float]
    head_probe_ridge: list[float]


def transfer_metrics(
    model: nn.Module,
    backbone_depth: int,
    source: tuple[Any, Any],
    target_train: tuple[Any, Any],
    target_test: tuple[Any, Any],
    probe_ridge: float | str = "cv",
    batch_size: int = 4096,
    alpha: float = 1.0,
) -> TransferMetrics:
    """Transfer accuracy and geometry of a pre-trained extractor (the head discarded).

    With ``H = model.features(x)[backbone_depth]`` the extractor's features:

    - ``transfer_acc``: a closed-form ridge probe with bias, fitted on ``H`` of the target
      training images and evaluated on the target test images
      (:func:`pncutils.probes.probe_accuracy`);
      ``probe_ridge``: its ridge (cross-validated on the target training images alone
      with ``probe_ridge="cv"``);
    - ``compression_source`` / ``_target`` (``C = tr Σ_W / tr Σ_B``),
      ``discrimination_*`` (``D``) and ``nc1_*`` of ``H`` on the source training images and
      on the target training images (float64, :mod:`pncutils.metrics`);
    - ``head_compression``: ``C`` on the source images of the extractor's output and of
      every hidden head layer, ``[C_b, C_{b+1}, ..., C_{L-1}]`` (``m`` values; logits
      excluded);
    - ``head_transfer_acc``: the same probe fitted on each of these layers instead of the
      extractor's output (``m`` values; the first is ``transfer_acc``): what keeping the
      head would give; ``head_probe_ridge``: their ridges;
    - ``feature_norm_sq``, ``feature_cosine``, ``feature_norm_ratio`` and ``signal_gain``:
      :func:`feature_geometry` of ``H`` on the source training images (``r^2``, the mean
      pairwise cosine, ``alpha^2 r^2 / n`` and ``s_bar``), the inputs of the linear head.

    Parameters
    ----------
    model : nn.Module
        A trained :func:`build_network` (or any model with ``features`` and ``depth``).
    backbone_depth : int
        Index of the extractor's output in ``model.features``.
    source, target_train, target_test : pairs ``(X (N, D_in), y (N,))``
        Source training data, and target-class training and test data (labels ``0..K'-1``).
    probe_ridge : float or "cv", default "cv"
        Ridge of every probe, relative to the mean squared feature scale, or ``"cv"``:
        chosen per probe by :func:`pncutils.probes.cv_ridge` on the target training features.
    batch_size : int, default 4096
    alpha : float, default 1.0
        Output scale of the pre-training loss (for ``signal_gain`` and ``feature_norm_ratio``).

    Returns
    -------
    TransferMetrics
        ``transfer_acc``, ``probe_ridge``, ``compression_source``, ``compression_target``,
        ``discrimination_source``, ``discrimination_target``, ``nc1_source``,
        ``nc1_target``, ``feature_norm_sq``, ``feature_cosine``, ``feature_norm_ratio``,
        ``signal_gain`` (floats), ``head_compression``, ``head_transfer_acc`` and
        ``head_probe_ridge`` (lists of ``m`` floats).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> net = build_network(6, 8, 2, 1, 2, generator=g)
    >>> X = torch.randn(40, 6, generator=g); y = torch.arange(40) % 2
    >>> out = transfer_metrics(net, 1, (X, y), (X, y), (X, y))
    >>> len(out.head_compression), out.head_compression[0] == out.compression_source
    (2, True)
    >>> 0 <= out.transfer_acc <= 1
    True

    Used in: ch08 (through :func:`run`).
    """
    from pncutils import metrics

    b = check_int(backbone_depth, "backbone_depth", minimum=1)
    probe_ridge = check_ridge(probe_ridge)
    depth = getattr(model, "depth", None)
    if depth is None or b >= depth:
        raise ValueError(f"backbone_depth must be < the model's depth {depth}, got {b}")
    for name, pair in (("source", source), ("target_train", target_train),
                       ("target_test", target_test)):
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValueError(f"{name} must be a pair (X, y)")
    (Xs, ys), (Xt, yt), (Xe, ye) = source, target_train, target_test
    layers = list(range(b, depth))
    head = extract_features(model, Xs, layers, batch_size)  # m x (N, width)
    head_t, head_e = (extract_features(model, X, layers, batch_size) for X in (Xt, Xe))
    Hs, Ht = head[0], head_t[0]
    ys, yt, ye = (as_tensor(v, "y").to(H.device)
                  for v, H in ((ys, Hs), (yt, Ht), (ye, head_e[0])))
    probes = [probe_accuracy(A, yt, B, ye, probe_ridge)
              for A, B in zip(head_t, head_e, strict=True)]
    accs, ridges = [p[0] for p in probes], [p[1] for p in probes]
    geo = feature_geometry(Hs, ys, alpha)
    return TransferMetrics(
        transfer_acc=accs[0],
        probe_ridge=ridges[0],
        compression_source=metrics.compression(Hs, ys),
        compression_target=metrics.compression(Ht, yt),
        discrimination_source=metrics.discrimination(Hs, ys),
        discrimination_target=metrics.discrimination(Ht, yt),
        nc1_source=metrics.nc1(Hs, ys),
        nc1_target=metrics.nc1(Ht, yt),
        feature_norm_sq=geo.norm_sq,
        feature_cosine=geo.mean_cosine,
        feature_norm_ratio=geo.norm_ratio,
        signal_gain=geo.signal_gain,
        head_compression=[metrics.compression(H, ys) for H in head],
        head_transfer_acc=accs,
        head_probe_ridge=ridges,
    )


# ----------------------------------------------------------------------------------------
# the experiment
# ----------------------------------------------------------------------------------------


class TaskData(NamedTuple):
    """The four data sets of the experiment, each a pair ``(X (M, D_in), y (M,))``, labels
    renumbered ``0..4`` within each task (:func:`select_classes`)."""

    source: tuple[Tensor, Tensor]
    target_train: tuple[Tensor, Tensor]
    target_test: tuple[Tensor, Tensor]
    source_test: tuple[Tensor, Tensor]


def task_data(config: Config, device: torch.device | str = "cpu") -> TaskData:
    """The source and target images of the experiment: the first ``n`` of each class.

    Parameters
    ----------
    config : Config
        One of :data:`SCALES`: ``dataset``, ``source_classes``, ``target_classes``,
        ``num_per_class`` (source training), ``target_train_per_class``,
        ``target_test_per_class``, ``source_test_per_class`` (None: all images).
    device : torch.device or str, default "cpu"
        Where the images are put.

    Returns
    -------
    TaskData
        ``source`` and ``target_train`` from the training split, ``target_test`` and
        ``source_test`` from the test split.

    Examples
    --------
    >>> d = task_data(SCALES["quick"])  # needs FashionMNIST (dataset-fashion-mnist)
    >>> tuple(d.source[0].shape), d.target_test[1].unique().tolist()
    ((500, 784), [0, 1, 2, 3, 4])

    Used in: ch08.
    """
    from pncutils.data import load_dataset

    dev = torch.device(device)
    c = config

    def most(a: int | None, b: int | None) -> int | None:
        return None if a is None or b is None else max(a, b)

    X, y = load_dataset(c.dataset, "train", device=dev,
                        num_per_class=most(c.num_per_class, c.target_train_per_class))
    X_test, y_test = load_dataset(c.dataset, "test", device=dev,
                                  num_per_class=most(c.source_test_per_class,
                                                     c.target_test_per_class))
    return TaskData(select_classes(X, y, c.source_classes, c.num_per_class),
                    select_classes(X, y, c.target_classes, c.target_train_per_class),
                    select_classes(X_test, y_test, c.target_classes, c.target_test_per_class),
                    select_classes(X_test, y_test, c.source_classes, c.source_test_per_class))


@dataclass(frozen=True)
class TransferRun(TransferMetrics):
    """One pre-trained network of :func:`run`: its :class:`TransferMetrics` and its training.

    Attributes
    ----------
    head_layers, seed : int
        ``m`` and the seed of the initialisation and the mini-batch order.
    final_loss : float
        Pre-training loss of the last epoch.
    source_test_acc : float
        Accuracy of the whole network on the source test images.
    train_wall_time_s : float
    """

    head_layers: int
    seed: int
    final_loss: float
    source_test_acc: float
    train_wall_time_s: float


#: The per-run numbers that :class:`HeadSummary` averages over the seeds.
METRICS: tuple[str, ...] = (
    "transfer_acc", "compression_source", "compression_target", "discrimination_source",
    "discrimination_target", "nc1_source", "nc1_target", "feature_norm_sq", "feature_cosine",
    "feature_norm_ratio", "signal_gain", "source_test_acc", "final_loss")


@dataclass(frozen=True)
class HeadSummary(Result):
    """The seed statistics of one head depth ``m``: one :class:`MeanStd` per :data:`METRICS`.

    ``head_compression_mean`` is the geometric mean over the seeds of ``C`` at each layer
    from the extractor's output on (``C`` spans decades), ``head_compression_std`` its sample
    standard deviation, ``head_transfer_acc_mean`` the mean probe accuracy of each layer.
    """

    head_layers: int
    transfer_acc: MeanStd
    compression_source: MeanStd
    compression_target: MeanStd
    discrimination_source: MeanStd
    discrimination_target: MeanStd
    nc1_source: MeanStd
    nc1_target: MeanStd
    feature_norm_sq: MeanStd
    feature_cosine: MeanStd
    feature_norm_ratio: MeanStd
    signal_gain: MeanStd
    source_test_acc: MeanStd
    final_loss: MeanStd
    head_compression_mean: list[float]
    head_compression_std: list[float]
    head_transfer_acc_mean: list[float]


@dataclass(frozen=True)
class WallTime(Result):
    """Seconds spent loading the data (and the raw-pixel reference), training, on the rest
    (building the networks, the probes and the metrics), and in all."""

    data: float
    train: float
    analysis: float
    total: float


@dataclass(frozen=True)
class TransferResult(Result):
    """What :func:`run` returns (the ``results`` of a ``transfer`` result file).

    Attributes
    ----------
    seeds : list of int
    num_source_train, num_target_train, num_target_test, num_source_test : int
        Sizes of the four data sets (:func:`task_data`).
    raw_pixel_transfer_acc, raw_pixel_probe_ridge : float
        The same probe on the raw target pixels (the reference) and its ridge.
    raw_pixel_geometry : FeatureGeometry
        :func:`feature_geometry` of the source training pixels (the network's inputs).
    per_seed : list of TransferRun
        One per ``(m, seed)``, ``m`` outer.
    summary : list of HeadSummary
        One per ``m`` of ``config.head_layers``.
    wall_time_s : WallTime
    """

    seeds: list[int]
    num_source_train: int
    num_target_train: int
    num_target_test: int
    num_source_test: int
    raw_pixel_transfer_acc: float
    raw_pixel_probe_ridge: float
    raw_pixel_geometry: FeatureGeometry
    per_seed: list[TransferRun]
    summary: list[HeadSummary]
    wall_time_s: WallTime

    @property
    def head_layers(self) -> list[int]:
        """The head depths ``m``, in order."""
        return [h.head_layers for h in self.summary]


def _train_one(config: Config, data: TaskData, m: int, seed: int, dev: torch.device
               ) -> TransferRun:
    """Pre-train the network with an ``m``-layer head from `seed`, then measure it."""
    from pncutils.training import TrainConfig, train

    src = data.source
    net = build_network(src[0].shape[1], config.width, len(config.source_classes),
                        config.backbone_depth, m, init=config.init, init_scale=config.init_scale,
                        generator=torch.Generator().manual_seed(seed))
    tcfg = TrainConfig(lr=config.lr, epochs=config.epochs, alpha=config.alpha,
                       batch_size=config.batch_size, momentum=config.momentum,
                       weight_decay=config.weight_decay, schedule="cosine",
                       min_lr_ratio=config.min_lr_ratio, loss=config.loss, seed=seed,
                       progress=False)
    hist = train(net, src[0], src[1], tcfg, device=dev)
    rec = transfer_metrics(net, config.backbone_depth, src, data.target_train, data.target_test,
                           config.probe_ridge, config.eval_batch_size, alpha=config.alpha)
    fields = {f.name: getattr(rec, f.name) for f in dataclasses.fields(rec)}
    return TransferRun(**fields, head_layers=m, seed=seed, final_loss=hist.final_loss,
                       source_test_acc=_forward.accuracy(net, *data.source_test,
                                                         config.eval_batch_size),
                       train_wall_time_s=hist.wall_time)


def run(config: Config, device: torch.device | str) -> TransferResult:
    """Pre-train with heads of every size, discard the head, transfer; all seeds.

    For every ``m`` in ``config.head_layers`` and every seed ``config.seed + s``
    (``s < config.num_seeds``): build :func:`build_network` from a CPU generator seeded with
    the seed, train it on the source classes with :func:`pncutils.training.train` (the
    same seed orders the mini-batches), then measure :func:`transfer_metrics` and the
    source test accuracy of the full network.

    Parameters
    ----------
    config : Config
        One of :data:`SCALES` (or a variant with the same parameters).
    device : torch.device or str
        Where the data live and the networks train.

    Returns
    -------
    TransferResult
        ``to_dict()`` is the ``results`` field of a ``transfer`` result file.

    Examples
    --------
    >>> cfg = SCALES["quick"].replace(head_layers=[1, 2], num_seeds=1, epochs=1,
    ...                               num_per_class=20, target_train_per_class=20,
    ...                               target_test_per_class=20, source_test_per_class=20)
    >>> res = run(cfg, "cpu")
    >>> res.head_layers, [len(h.head_compression_mean) for h in res.summary]
    ([1, 2], [1, 2])

    Used in: ch08.
    """
    if not isinstance(config, Config):
        raise ValueError(f"cfg must be a pncutils.book.config.Config, got {type(config).__name__}")
    dev = torch.device(device)
    seeds = list(range(config.seed,
                       config.seed + check_int(config.num_seeds, "num_seeds", minimum=1)))
    head_layers = [check_int(m, "head_layers", minimum=1) for m in config.head_layers]
    t_start = time.perf_counter()
    data = task_data(config, dev)  # the first n images per class (file order), on the device
    tgt, tgt_test = data.target_train, data.target_test
    # the reference: the same probe on the raw target pixels, its ridge chosen the same way
    raw, raw_ridge = probe_accuracy(*tgt, *tgt_test, config.probe_ridge)
    raw_geometry = feature_geometry(*data.source, config.alpha)  # the network's own inputs
    data_s = time.perf_counter() - t_start
    per_seed = [_train_one(config, data, m, s, dev) for m in head_layers for s in seeds]
    train_s = sum(r.train_wall_time_s for r in per_seed)
    total = time.perf_counter() - t_start
    return TransferResult(
        seeds, *(int(d[0].shape[0]) for d in (data.source, tgt, tgt_test, data.source_test)),
        raw, raw_ridge, raw_geometry, per_seed, _summary(per_seed, head_layers),
        WallTime(data_s, train_s, total - data_s - train_s, total))


def _summary(per_seed: list[TransferRun], head_layers: list[int]) -> list[HeadSummary]:
    """Seed statistics per head depth: mean and std of every metric, geometric mean of the
    head's C (it spans decades) and the mean transfer accuracy of each head layer."""
    out = []
    for m in head_layers:
        runs = [r for r in per_seed if r.head_layers == m]
        stats = {k: mean_std([getattr(r, k) for r in runs]) for k in METRICS}
        C = torch.tensor([r.head_compression for r in runs], dtype=torch.float64)  # (S, m)
        acc = torch.tensor([r.head_transfer_acc for r in runs], dtype=torch.float64)
        out.append(HeadSummary(
            m, **stats, head_compression_mean=C.log().mean(0).exp().tolist(),
            head_compression_std=[mean_std(c).std for c in C.T],
            head_transfer_acc_mean=acc.mean(0).tolist()))
    return out


# ----------------------------------------------------------------------------------------
# tables and figures (the same for a live run and a result file)
# ----------------------------------------------------------------------------------------


def _check(results: Any) -> TransferResult:
    if not isinstance(results, TransferResult):
        raise ValueError("results must be the TransferResult of run (or the .result of a "
                         f"transfer Record), got {type(results).__name__}")
    return results


def _toy_doc() -> TransferResult:
    """A two-head toy result for the docstrings below (C of the head halves per layer)."""
    def stats(v: float) -> dict[str, MeanStd]:
        return {k: MeanStd(v, 0.0) for k in METRICS}

    summary = [HeadSummary(m, **stats(m / 10), head_compression_mean=[0.5**j for j in range(m)],
                           head_compression_std=[0.0] * m, head_transfer_acc_mean=[0.8] * m)
               for m in (1, 3)]
    return TransferResult([0], 1, 1, 1, 1, 0.7, 1e-3, FeatureGeometry(1.0, 0.0, 1.0, 1.0, 1.0),
                          [], summary, WallTime(0.0, 0.0, 0.0, 0.0))


#: The columns :func:`summary_table` shows by default.
_TABLE_METRICS = ("transfer_acc", "compression_source", "compression_target",
                  "discrimination_source", "nc1_source", "source_test_acc")


def summary_table(results: TransferResult, metrics: Sequence[str] = _TABLE_METRICS
                  ) -> LayerTable:
    """Per-``m`` table: transfer accuracy and extractor geometry, mean and std over seeds.

    Parameters
    ----------
    results : TransferResult
        What :func:`run` returns (or the ``.result`` of a ``transfer`` Record).
    metrics : sequence of str, optional
        Names from :data:`METRICS` (default: transfer accuracy, ``C`` on source and target,
        ``D`` and NC1 on the source, source test accuracy).

    Returns
    -------
    LayerTable
        Columns ``head_layers``, then ``<metric>_mean`` and ``<metric>_std`` per metric.

    Examples
    --------
    >>> t = summary_table(_toy_doc(), ["transfer_acc"])
    >>> t.columns, t.transfer_acc_mean.tolist()
    (('head_layers', 'transfer_acc_mean', 'transfer_acc_std'), [0.1, 0.3])

    Used in: ch08.
    """
    res = _check(results)
    unknown = [k for k in metrics if k not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; metrics are {METRICS}")
    cols: dict[str, list[float]] = {"head_layers": res.head_layers}
    for k in metrics:
        cols[f"{k}_mean"] = [getattr(h, k).mean for h in res.summary]
        cols[f"{k}_std"] = [getattr(h, k).std for h in res.summary]
    return LayerTable(cols)


def head_compression_table(results: TransferResult) -> LayerTable:
    """``C`` through the head in long form: one row per ``(m, layer)``, for CSVs.

    Parameters
    ----------
    results : TransferResult

    Returns
    -------
    LayerTable
        Columns ``head_layers`` (``m``), ``layer_after_extractor`` (0 = the extractor's
        output) and ``compression`` (geometric mean over the seeds).

    Examples
    --------
    >>> head_compression_table(_toy_doc()).compression.tolist()
    [1.0, 1.0, 0.5, 0.25]

    Used in: ch08.
    """
    rows = [(h.head_layers, j, c) for h in _check(results).summary
            for j, c in enumerate(h.head_compression_mean)]
    return LayerTable(dict(zip(("head_layers", "layer_after_extractor", "compression"),
                               zip(*rows, strict=True), strict=True)))


def plot_transfer(
    results: TransferResult,
    axes: Sequence[Any] | None = None,
    label: str | None = None,
    color: str | None = None,
    marker: str = "o",
) -> tuple[Any, Any]:
    """Transfer accuracy and the extractor's ``C`` against the number of head layers.

    Left: transfer accuracy (%) of the linear probe on the target classes, mean and
    standard deviation over seeds, with the raw-pixel probe as a dotted line. Right: ``C`` of
    the extractor's features (log scale) on the source classes (solid) and on the target
    classes (dashed), mean and standard deviation over seeds.

    Parameters
    ----------
    results : TransferResult
        What :func:`run` returns (or the ``.result`` of a ``transfer`` Record).
    axes : pair of Axes, optional
        Where to draw (to overlay several runs); a new ``1 x 2`` figure when omitted.
    label : str, optional
        Legend prefix of this run.
    color : str, optional
    marker : str, default "o"

    Returns
    -------
    fig, (ax_acc, ax_c)

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> fig, (a, b) = plot_transfer(_toy_doc())
    >>> a.get_xlabel(), b.get_yscale()
    ('head layers $m$', 'log')

    Used in: ch08.
    """
    import matplotlib.pyplot as plt

    r = _check(results)
    t = summary_table(r, ["transfer_acc", "compression_source", "compression_target"])
    m = r.head_layers
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6), layout="constrained")
    ax_acc, ax_c = axes
    fig = ax_acc.figure
    prefix = f"{label}: " if label else ""
    line = ax_acc.errorbar(m, 100 * t.transfer_acc_mean.numpy(),
                           yerr=100 * t.transfer_acc_std.numpy(), marker=marker, color=color,
                           capsize=3, label=f"{prefix}pre-trained extractor")
    color = line[0].get_color()
    ax_acc.axhline(100 * r.raw_pixel_transfer_acc, color=color, ls=":", lw=1.2,
                   label=f"{prefix}raw pixels (same probe)")
    ax_acc.margins(y=0.3)  # room for the legend below the points, the line off the frame
    ax_acc.set_xlabel("head layers $m$")
    ax_acc.set_ylabel("transfer accuracy (%), target test set")
    ax_acc.set_xticks(m)
    ax_acc.legend(fontsize=8, loc="lower center")
    for kind, ls in (("source", "-"), ("target", "--")):
        ax_c.errorbar(m, t[f"compression_{kind}_mean"].numpy(),
                      yerr=t[f"compression_{kind}_std"].numpy(), marker=marker, ls=ls,
                      color=color, capsize=3, label=f"{prefix}{kind} classes")
    ax_c.set_yscale("log")
    ax_c.set_xlabel("head layers $m$")
    ax_c.set_ylabel(r"$C$ of the extractor's features (log scale)")
    ax_c.set_xticks(m)
    ax_c.legend(fontsize=8)
    return fig, (ax_acc, ax_c)


def plot_head_compression(results: TransferResult, ax: Any | None = None) -> tuple[Any, Any]:
    """``C`` on the source classes through the head, one line per head size ``m``.

    The x axis is the layer counted from the extractor's output (0) to the last hidden
    head layer (``m - 1``); the values are geometric means over the seeds. Colours follow
    ``m`` on one sequential map.

    Parameters
    ----------
    results : TransferResult
        What :func:`run` returns (or the ``.result`` of a ``transfer`` Record).
    ax : Axes, optional

    Returns
    -------
    fig, ax

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> fig, ax = plot_head_compression(_toy_doc())
    >>> [len(line.get_xdata()) for line in ax.get_lines()]
    [1, 3]

    Used in: ch08.
    """
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    summary = _check(results).summary
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.0, 3.6), layout="constrained")
    fig = ax.figure
    cmap = mpl.colormaps["viridis"]
    for i, h in enumerate(summary):
        C = h.head_compression_mean
        ax.semilogy(range(len(C)), C, "o-", color=cmap(i / max(len(summary) - 1, 1) * 0.9),
                    label=f"$m = {h.head_layers}$")
    ax.set_xlabel("layer after the extractor ($0$ = extractor output)")
    ax.set_ylabel(r"$C_l$ on source classes (log scale)")
    ax.set_xticks(range(max(len(h.head_compression_mean) for h in summary)))
    ax.legend(fontsize=8, ncol=2)
    return fig, ax


def geometric_head_rate(results: TransferResult) -> list[float | None]:
    """Per ``m``: the mean ratio ``C_{l+1}/C_l`` through the head (None for ``m = 1``).

    :func:`pncutils.fits.mean_ratio` of the geometric means over the seeds,
    ``(C_{L-1} / C_b)^{1/(m-1)}``.

    Parameters
    ----------
    results : TransferResult

    Returns
    -------
    list of float or None
        One per ``m``, in order.

    Examples
    --------
    >>> geometric_head_rate(_toy_doc())  # C = [1] and [1, 0.5, 0.25]
    [None, 0.5]

    Used in: ch08.
    """
    return [None if len(h.head_compression_mean) < 2 else fits.mean_ratio(h.head_compression_mean)
            for h in _check(results).summary]
