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
``num_per_class`` of each class in file order, the same for every seed).

References
----------
Wang et al., "Understanding deep representation learning via layerwise feature compression
and discrimination", arXiv:2311.02960 (the projection-head figure of the authors' project page).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from pncutils._checks import as_tensor, check_float, check_int
from pncutils.book.config import Config
from pncutils.probes import check_ridge, probe_accuracy

__all__ = [
    "SCALES",
    "PAPER_F8",
    "select_classes",
    "build_network",
    "extract_features",
    "feature_geometry",
    "transfer_metrics",
    "run_experiment",
    "summary_table",
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
    """
    X = as_tensor(X, "X")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    layers = [check_int(i, "layer", minimum=0) for i in layers]
    if not layers:
        raise ValueError("layers is empty: give at least one layer index")
    param = next(model.parameters())
    was_training = model.training
    model.eval()
    out: list[list[Tensor]] = [[] for _ in layers]
    try:
        with torch.no_grad():
            for a in range(0, X.shape[0], batch_size):
                feats = model.features(X[a : a + batch_size].to(param.device, param.dtype))
                if max(layers) >= len(feats):
                    raise ValueError(
                        f"layer {max(layers)} requested but the model has {len(feats)} "
                        "feature layers"
                    )
                for j, i in enumerate(layers):
                    out[j].append(feats[i])
    finally:
        model.train(was_training)
    return [torch.cat(parts) for parts in out]


#: The relative ridges :func:`pncutils.probes.cv_ridge` chooses from by default: one per decade.
def feature_geometry(H: Any, y: Any, alpha: float = 1.0) -> dict[str, float]:
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
    dict
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
    >>> g["norm_sq"], g["mean_cosine"], g["norm_ratio"], round(g["signal_gain"], 6)
    (9.0, 0.0, 4.5, 0.471405)

    Used in: ch07.
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
    return {
        "norm_sq": norm_sq,
        "mean_cosine": float(mean_cos),
        "num_per_class": N / K,
        "norm_ratio": alpha**2 * norm_sq / (N / K),
        "signal_gain": float(s.log().mean().exp()),
    }


def transfer_metrics(
    model: nn.Module,
    backbone_depth: int,
    source: tuple[Any, Any],
    target_train: tuple[Any, Any],
    target_test: tuple[Any, Any],
    probe_ridge: float | str = "cv",
    batch_size: int = 4096,
    alpha: float = 1.0,
) -> dict[str, Any]:
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
    dict
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
    >>> sorted(out)[:3], len(out["head_compression"]), 0 <= out["transfer_acc"] <= 1
    (['compression_source', 'compression_target', 'discrimination_source'], 2, True)
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
    return {
        "transfer_acc": accs[0],
        "probe_ridge": ridges[0],
        "compression_source": metrics.compression(Hs, ys),
        "compression_target": metrics.compression(Ht, yt),
        "discrimination_source": metrics.discrimination(Hs, ys),
        "discrimination_target": metrics.discrimination(Ht, yt),
        "nc1_source": metrics.nc1(Hs, ys),
        "nc1_target": metrics.nc1(Ht, yt),
        "feature_norm_sq": geo["norm_sq"],
        "feature_cosine": geo["mean_cosine"],
        "feature_norm_ratio": geo["norm_ratio"],
        "signal_gain": geo["signal_gain"],
        "head_compression": [metrics.compression(H, ys) for H in head],
        "head_transfer_acc": accs,
        "head_probe_ridge": ridges,
    }


# ----------------------------------------------------------------------------------------
# the experiment
# ----------------------------------------------------------------------------------------


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    t = torch.tensor(list(values), dtype=torch.float64)
    return float(t.mean()), (float(t.std()) if t.numel() > 1 else 0.0)


def _accuracy(model: nn.Module, X: Tensor, y: Tensor, batch_size: int) -> float:
    param = next(model.parameters())
    model.eval()
    correct = 0
    with torch.no_grad():
        for a in range(0, X.shape[0], batch_size):
            out = model(X[a : a + batch_size].to(param.device, param.dtype))
            correct += int((out.argmax(1) == y[a : a + batch_size].to(out.device)).sum())
    return correct / X.shape[0]


_METRICS = ("transfer_acc", "compression_source", "compression_target",
            "discrimination_source", "discrimination_target", "nc1_source", "nc1_target",
            "feature_norm_sq", "feature_cosine", "feature_norm_ratio", "signal_gain",
            "source_test_acc", "final_loss")


def run_experiment(cfg: Config, device: torch.device | str) -> dict[str, Any]:
    """Pre-train with heads of every size, discard the head, transfer; all seeds.

    For every ``m`` in ``cfg.head_layers`` and every seed ``cfg.seed + s``
    (``s < cfg.num_seeds``): build :func:`build_network` from a CPU generator seeded with
    the seed, train it on the source classes with :func:`pncutils.training.train` (the
    same seed orders the mini-batches), then measure :func:`transfer_metrics` and the
    source test accuracy of the full network.

    Parameters
    ----------
    cfg : Config
        One of :data:`SCALES` (or a variant with the same parameters).
    device : torch.device or str
        Where the data live and the networks train.

    Returns
    -------
    dict
        JSON-serialisable: ``seeds``, data sizes, ``raw_pixel_transfer_acc`` (the probe on
        the raw target pixels, for reference) and its ``raw_pixel_probe_ridge``,
        ``raw_pixel_geometry`` (:func:`feature_geometry` of the source training pixels),
        ``per_seed`` (one record per ``(m, seed)``), ``summary`` (per ``m``:
        ``<metric>_mean`` / ``<metric>_std`` lists over the seeds, and
        ``head_compression_mean`` / ``_std``: per ``m`` the list ``[C_b, ..., C_{L-1}]``),
        ``head_transfer_acc_mean``: per ``m`` the mean probe accuracy of every layer from
        the extractor's output on), and ``wall_time_s`` (data, training and analysis).

    Examples
    --------
    >>> cfg = SCALES["quick"].replace(head_layers=[1, 2], num_seeds=1, epochs=1,
    ...                               num_per_class=20, target_train_per_class=20,
    ...                               target_test_per_class=20, source_test_per_class=20)
    >>> res = run_experiment(cfg, "cpu")
    >>> res["summary"]["head_layers"], [len(c) for c in res["summary"]["head_compression_mean"]]
    ([1, 2], [1, 2])
    """
    from pncutils.data import load_dataset
    from pncutils.training import TrainConfig, train

    if not isinstance(cfg, Config):
        raise ValueError(f"cfg must be a pncutils.book.config.Config, got {type(cfg).__name__}")
    dev = torch.device(device)
    seeds = list(range(cfg.seed, cfg.seed + check_int(cfg.num_seeds, "num_seeds", minimum=1)))
    head_layers = [check_int(m, "head_layers", minimum=1) for m in cfg.head_layers]
    b = cfg.backbone_depth
    t_start = time.perf_counter()
    # the first n images per class (file order), resident on the device
    per_train = (None if cfg.num_per_class is None or cfg.target_train_per_class is None
                 else max(cfg.num_per_class, cfg.target_train_per_class))
    per_test = (None if cfg.source_test_per_class is None or cfg.target_test_per_class is None
                else max(cfg.source_test_per_class, cfg.target_test_per_class))
    X, y = load_dataset(cfg.dataset, "train", num_per_class=per_train, device=dev)
    X_test, y_test = load_dataset(cfg.dataset, "test", num_per_class=per_test, device=dev)
    src = select_classes(X, y, cfg.source_classes, cfg.num_per_class)
    tgt = select_classes(X, y, cfg.target_classes, cfg.target_train_per_class)
    tgt_test = select_classes(X_test, y_test, cfg.target_classes, cfg.target_test_per_class)
    src_test = select_classes(X_test, y_test, cfg.source_classes, cfg.source_test_per_class)
    del X, y, X_test, y_test
    K = len(cfg.source_classes)
    # the reference: the same probe on the raw target pixels, its ridge chosen the same way
    raw, raw_ridge = probe_accuracy(tgt[0], tgt[1], tgt_test[0], tgt_test[1], cfg.probe_ridge)
    raw_geometry = feature_geometry(src[0], src[1], cfg.alpha)  # the network's own inputs
    data_s = time.perf_counter() - t_start

    per_seed: list[dict[str, Any]] = []
    train_s = analysis_s = 0.0
    for m in head_layers:
        for s in seeds:
            gen = torch.Generator().manual_seed(s)
            net = build_network(src[0].shape[1], cfg.width, K, b, m, init=cfg.init,
                                init_scale=cfg.init_scale, generator=gen)
            tcfg = TrainConfig(lr=cfg.lr, epochs=cfg.epochs, alpha=cfg.alpha,
                               batch_size=cfg.batch_size, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay, schedule="cosine",
                               min_lr_ratio=cfg.min_lr_ratio, loss=cfg.loss, seed=s,
                               progress=False)
            hist = train(net, src[0], src[1], tcfg, device=dev)
            t0 = time.perf_counter()
            rec = transfer_metrics(net, b, src, tgt, tgt_test, cfg.probe_ridge,
                                   cfg.eval_batch_size, alpha=cfg.alpha)
            rec.update(head_layers=m, seed=s, final_loss=hist.final_loss,
                       source_test_acc=_accuracy(net, *src_test, cfg.eval_batch_size),
                       train_wall_time_s=hist.wall_time)
            analysis_s += time.perf_counter() - t0
            train_s += hist.wall_time
            per_seed.append(rec)

    summary = _summary(per_seed, head_layers)
    return {
        "seeds": seeds,
        "num_source_train": int(src[0].shape[0]),
        "num_target_train": int(tgt[0].shape[0]),
        "num_target_test": int(tgt_test[0].shape[0]),
        "num_source_test": int(src_test[0].shape[0]),
        "raw_pixel_transfer_acc": raw,
        "raw_pixel_probe_ridge": raw_ridge,
        "raw_pixel_geometry": raw_geometry,
        "per_seed": per_seed,
        "summary": summary,
        "wall_time_s": {"data": data_s, "train": train_s, "analysis": analysis_s,
                        "total": time.perf_counter() - t_start},
    }


def _summary(per_seed: list[dict[str, Any]], head_layers: list[int]) -> dict[str, Any]:
    """Seed statistics per head depth: mean and std of every metric, geometric mean of the
    head's C (it spans decades) and the mean transfer accuracy of each head layer."""
    summary: dict[str, Any] = {"head_layers": head_layers}
    for key in _METRICS:
        stats = [_mean_std([r[key] for r in per_seed if r["head_layers"] == m])
                 for m in head_layers]
        summary[f"{key}_mean"] = [v[0] for v in stats]
        summary[f"{key}_std"] = [v[1] for v in stats]
    summary["head_compression_mean"], summary["head_compression_std"] = [], []
    for m in head_layers:
        rows = torch.tensor([r["head_compression"] for r in per_seed if r["head_layers"] == m],
                            dtype=torch.float64)  # (S, m)
        # geometric mean over seeds: C spans decades
        summary["head_compression_mean"].append(rows.log().mean(0).exp().tolist())
        summary["head_compression_std"].append(
            (rows.std(0) if rows.shape[0] > 1 else torch.zeros(rows.shape[1])).tolist())
    summary["head_transfer_acc_mean"] = [
        torch.tensor([r["head_transfer_acc"] for r in per_seed if r["head_layers"] == m],
                     dtype=torch.float64).mean(0).tolist() for m in head_layers]
    return summary


# ----------------------------------------------------------------------------------------
# tables and figures (the same for a live run and a result file)
# ----------------------------------------------------------------------------------------


def _results(results: Mapping[str, Any]) -> Mapping[str, Any]:
    """Accept a :func:`run_experiment` dict or a whole result file (``{"results": ...}``)."""
    if not isinstance(results, Mapping):
        raise ValueError(f"results must be a mapping, got {type(results).__name__}")
    if "summary" not in results and isinstance(results.get("results"), Mapping):
        results = results["results"]
    if "summary" not in results:
        raise ValueError("results has no 'summary': pass what run_experiment returns")
    return results


def summary_table(results: Mapping[str, Any]) -> Any:
    """Per-``m`` table: transfer accuracy and extractor geometry, mean and std over seeds.

    Parameters
    ----------
    results : mapping
        What :func:`run_experiment` returns, or a result file of the ``transfer`` experiment.

    Returns
    -------
    LayerTable
        Columns ``head_layers``, ``transfer_acc_mean``, ``transfer_acc_std``,
        ``compression_source_mean``, ``compression_source_std``,
        ``compression_target_mean``, ``compression_target_std``,
        ``discrimination_source_mean``, ``nc1_source_mean``, ``source_test_acc_mean``.

    Examples
    --------
    >>> s = {k: [0.5, 0.6] for k in ("transfer_acc_mean", "transfer_acc_std",
    ...      "compression_source_mean", "compression_source_std", "compression_target_mean",
    ...      "compression_target_std", "discrimination_source_mean", "nc1_source_mean",
    ...      "source_test_acc_mean")}
    >>> summary_table({"summary": {"head_layers": [1, 2], **s}}).head_layers.tolist()
    [1.0, 2.0]
    """
    from pncutils.metrics import LayerTable

    s = _results(results)["summary"]
    cols = ("head_layers", "transfer_acc_mean", "transfer_acc_std", "compression_source_mean",
            "compression_source_std", "compression_target_mean", "compression_target_std",
            "discrimination_source_mean", "nc1_source_mean", "source_test_acc_mean")
    return LayerTable({c: s[c] for c in cols})


def plot_transfer(
    results: Mapping[str, Any],
    axes: Sequence[Any] | None = None,
    label: str | None = None,
    color: str | None = None,
    marker: str = "o",
) -> tuple[Any, Any]:
    """Transfer accuracy and the extractor's ``C`` against the number of head layers.

    Left: transfer accuracy (%) of the linear probe on the target classes, mean and
    standard deviation over seeds, with the raw-pixel probe as a grey line. Right: ``C`` of
    the extractor's features (log scale) on the source classes (solid) and on the target
    classes (dashed), mean and standard deviation over seeds.

    Parameters
    ----------
    results : mapping
        What :func:`run_experiment` returns, or a ``transfer`` result file.
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
    >>> s = {"head_layers": [1, 2], "transfer_acc_mean": [0.8, 0.9], "transfer_acc_std": [0, 0],
    ...      "compression_source_mean": [0.1, 0.2], "compression_source_std": [0, 0],
    ...      "compression_target_mean": [1.0, 2.0], "compression_target_std": [0, 0]}
    >>> fig, (a, b) = plot_transfer({"summary": s, "raw_pixel_transfer_acc": 0.7})
    >>> a.get_xlabel()
    'head layers $m$'
    """
    import matplotlib.pyplot as plt

    r = _results(results)
    s = r["summary"]
    m = list(s["head_layers"])
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6), layout="constrained")
    ax_acc, ax_c = axes
    fig = ax_acc.figure
    prefix = f"{label}: " if label else ""
    acc = [100 * v for v in s["transfer_acc_mean"]]
    err = [100 * v for v in s["transfer_acc_std"]]
    line = ax_acc.errorbar(m, acc, yerr=err, marker=marker, color=color, capsize=3,
                           label=f"{prefix}pre-trained extractor")
    color = line[0].get_color()
    if r.get("raw_pixel_transfer_acc") is not None:
        ax_acc.axhline(100 * r["raw_pixel_transfer_acc"], color=color, ls=":", lw=1.2,
                       label=f"{prefix}raw pixels (same probe)")
        ax_acc.margins(y=0.3)  # room for the legend below the points, the line off the frame
    ax_acc.set_xlabel("head layers $m$")
    ax_acc.set_ylabel("transfer accuracy (%), target test set")
    ax_acc.set_xticks(m)
    ax_acc.legend(fontsize=8, loc="lower center")
    for kind, ls in (("source", "-"), ("target", "--")):
        ax_c.errorbar(m, s[f"compression_{kind}_mean"], yerr=s[f"compression_{kind}_std"],
                      marker=marker, ls=ls, color=color, capsize=3,
                      label=f"{prefix}{kind} classes")
    ax_c.set_yscale("log")
    ax_c.set_xlabel("head layers $m$")
    ax_c.set_ylabel(r"$C$ of the extractor's features (log scale)")
    ax_c.set_xticks(m)
    ax_c.legend(fontsize=8)
    return fig, (ax_acc, ax_c)


def plot_head_compression(results: Mapping[str, Any], ax: Any | None = None) -> tuple[Any, Any]:
    """``C`` on the source classes through the head, one line per head size ``m``.

    The x axis is the layer counted from the extractor's output (0) to the last hidden
    head layer (``m - 1``); the values are geometric means over the seeds. Colours follow
    ``m`` on one sequential map.

    Parameters
    ----------
    results : mapping
        What :func:`run_experiment` returns, or a ``transfer`` result file.
    ax : Axes, optional

    Returns
    -------
    fig, ax

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> s = {"head_layers": [1, 2], "head_compression_mean": [[0.5], [0.6, 0.2]]}
    >>> fig, ax = plot_head_compression({"summary": s})
    >>> len(ax.get_lines())
    2
    """
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    s = _results(results)["summary"]
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.0, 3.6), layout="constrained")
    fig = ax.figure
    ms = list(s["head_layers"])
    cmap = mpl.colormaps["viridis"]
    for i, (m, C) in enumerate(zip(ms, s["head_compression_mean"], strict=True)):
        ax.semilogy(range(len(C)), C, "o-", color=cmap(i / max(len(ms) - 1, 1) * 0.9),
                    label=f"$m = {m}$")
    ax.set_xlabel("layer after the extractor ($0$ = extractor output)")
    ax.set_ylabel(r"$C_l$ on source classes (log scale)")
    ax.set_xticks(range(max(len(C) for C in s["head_compression_mean"])))
    ax.legend(fontsize=8, ncol=2)
    return fig, ax


def geometric_head_rate(results: Mapping[str, Any]) -> list[float | None]:
    """Per ``m``: the geometric mean of ``C_{l+1}/C_l`` through the head (None for ``m = 1``).

    Examples
    --------
    >>> geometric_head_rate({"summary": {"head_layers": [1, 3],
    ...                      "head_compression_mean": [[1.0], [1.0, 0.5, 0.25]]}})
    [None, 0.5]
    """
    s = _results(results)["summary"]
    out: list[float | None] = []
    for C in s["head_compression_mean"]:
        if len(C) < 2:
            out.append(None)
        else:
            out.append(math.exp((math.log(C[-1]) - math.log(C[0])) / (len(C) - 1)))
    return out
