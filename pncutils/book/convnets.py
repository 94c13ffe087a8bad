"""Convolutional and residual networks, measured block by block (chapter 6).

The paper shows that the deep layers of nonlinear networks compress like those of linear ones
on MLPs and hybrids (chapter 5). This experiment asks the same of the networks people train:
it trains a plain :class:`~pncutils.models.SmallCNN` and a
:class:`~pncutils.models.SmallResNet` (residual blocks with BatchNorm), each once with the
paper's MSE loss and once with cross-entropy, on FashionMNIST, and measures every block with
:func:`pncutils.measure`:

- **Rows**: the input (the flattened pixels), the ``stem``, every block ``stages.S.B``, the
  global ``pool`` and the outputs (logits): :func:`row_names`.
- **Two reductions of the feature maps.** ``table``: measure's default, ``pool="auto"``,
  which flattens the input and average-pools every ``(C, H, W)`` map over space to its ``C``
  channels (so the ``pool`` row repeats the last block's row exactly); ``flat``:
  ``pool="flatten"``, every coordinate of every map (``C H W`` features, no NC1).
- **Deep blocks**: the blocks of every stage after the first (:func:`deep_rows`). Their
  ``C`` is fitted by :func:`pncutils.fits.geometric` (``measure``'s own fit, over these
  rows) and, towards the floor set by the outputs' ``C_L`` (chapter 5), by
  :func:`pncutils.fits.floor`.
- **Centred discrimination.** The paper's ``D`` uses *uncentred* class means; after a ReLU
  every feature is nonnegative, the class means share a large common part and their cosines
  are close to 1, so ``D`` is close to 0 whatever the separation.
  :func:`class_mean_geometry` gives ``D`` of the centred means beside it, and the
  distance ``r`` and angle ``theta`` of the class means from their mean, which bound
  ``D <= 1 - cos(2 theta) <= 2 r^2``.
- **Nonlinearity of each block** (:func:`midpoint_nonlinearity`): how far a block is from
  an affine map on the data. Part I's rate ``rho ~ eps^2 / s_bar^(2/L)``
  (:func:`pncutils.theory.approximate_compression_rate`) is a statement about products of
  linear maps; it applies to a block only when this is close to 0.

Every seed draws its own initialisation (the same for the two losses of an architecture) and
mini-batch order; the images are the first ``num_per_class`` of each class in file order.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from pncutils import fits
from pncutils._checks import as_tensor, check_choice, check_device, check_float, check_int
from pncutils._forward import accuracy, eval_mode
from pncutils.book.config import (
    Config,
    LossCurve,
    MeanStd,
    Result,
    loss_curve,
    mean_std,
)
from pncutils.fits import Fit
from pncutils.measurement import INPUT, OUTPUT, measure
from pncutils.metrics import LayerTable, class_means, discrimination
from pncutils.models import SmallCNN, SmallResNet

__all__ = [
    "ARCHITECTURES",
    "LOSSES",
    "SCALES",
    "NetworkRun",
    "NetworkSummary",
    "ConvResult",
    "HybridReference",
    "check_config",
    "build_network",
    "row_names",
    "deep_rows",
    "midpoint_nonlinearity",
    "block_nonlinearity",
    "class_mean_geometry",
    "compression_fits",
    "measure_network",
    "train_config",
    "train_network",
    "run",
    "hybrid_reference",
    "format_summary",
    "figure_columns",
    "plot_compression",
    "plot_pooling",
    "plot_discrimination",
    "plot_rates",
]

#: The networks: name -> class of :mod:`pncutils.models`.
ARCHITECTURES: dict[str, type[nn.Module]] = {"cnn": SmallCNN, "resnet": SmallResNet}

#: The losses of :class:`pncutils.training.TrainConfig` trained here.
LOSSES: tuple[str, ...] = ("mse", "cross_entropy")

_NAMES = {"cnn": "CNN", "resnet": "ResNet", "mse": "MSE", "cross_entropy": "CE"}

_COMMON = dict(
    dataset="fashion_mnist",
    architectures=["cnn", "resnet"],
    losses=["mse", "cross_entropy"],
    blocks=2,  # blocks per stage; the first block of every stage after the first has stride 2
    lr=0.05,  # peak learning rate of SGD, cosine decay to lr * min_lr_ratio
    min_lr_ratio=0.01,
    momentum=0.9,
    weight_decay=5e-4,
    midpoint_samples=512,  # training images whose block inputs are paired for the midpoint test
    eval_batch_size=1000,
    seed=0,  # seeds seed, seed + 1, ...: initialisation, mini-batch order, midpoint pairs
)

#: The three scales (``quick``: the tests, ``book``: the chapter on a 2-core CPU, ``paper``:
#: the whole training set, a GPU).
SCALES: dict[str, Config] = {
    "quick": Config(num_per_class=30, test_per_class=100, widths=[8, 16, 32], epochs=20,
                    batch_size=32, num_seeds=1, **_COMMON),
    "book": Config(num_per_class=100, test_per_class=200, widths=[8, 16, 32], epochs=40,
                   batch_size=128, num_seeds=1, **_COMMON),
    "paper": Config(num_per_class=None, test_per_class=None, widths=[16, 32, 64], epochs=30,
                    batch_size=128, num_seeds=3, **_COMMON),
}

_REQUIRED = ("dataset", "architectures", "losses", "widths", "blocks", "epochs", "lr",
             "min_lr_ratio", "momentum", "weight_decay", "batch_size", "num_per_class",
             "test_per_class", "num_seeds", "midpoint_samples", "eval_batch_size", "seed")


# ----------------------------------------------------------------------------------------
# typed results
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkRun(Result):
    """One trained network (one architecture, one loss, one seed), measured block by block.

    Attributes
    ----------
    architecture : {"cnn", "resnet"}
    loss : {"mse", "cross_entropy"}
    seed : int
    names : list of str
        The module name of each row (:func:`row_names`).
    pooling : list of str
        How ``table`` reduced each row (``pnc.measure``'s record, e.g. ``"avg (8x28x28 -> 8)"``).
    table : LayerTable
        ``pnc.measure`` with ``pool="auto"``: ``layer`` (the row), ``dim``, ``compression``,
        ``discrimination``, ``nc1``, ``trace_within``, ``trace_between``, and
        ``discrimination_centred``, ``mean_spread``, ``mean_angle`` (:func:`class_mean_geometry`).
    flat : LayerTable
        ``pnc.measure`` with ``pool="flatten"``: ``layer``, ``dim``, ``compression``,
        ``discrimination``, ``trace_within``, ``trace_between``.
    nonlinearity : list of float
        :func:`midpoint_nonlinearity` of the module that produces each row (NaN for the input;
        the head for the outputs).
    deep : list of int
        The rows of the deep blocks (:func:`deep_rows`).
    deep_fit : Fit
        :func:`pncutils.fits.geometric` of ``C`` over the deep rows.
    floor_fit : Fit or None
        :func:`pncutils.fits.floor` of ``C`` over the deep rows towards ``C_L`` (None when
        fewer than three deep rows lie above it).
    final_loss, train_acc, test_acc, train_wall_time_s : float
    loss_curve : LossCurve
    """

    architecture: str
    loss: str
    seed: int
    names: list[str]
    pooling: list[str]
    table: LayerTable
    flat: LayerTable
    nonlinearity: list[float]
    deep: list[int]
    deep_fit: Fit
    floor_fit: Fit | None
    final_loss: float
    train_acc: float
    test_acc: float
    train_wall_time_s: float
    loss_curve: LossCurve

    @property
    def label(self) -> str:
        """``"CNN, MSE"`` and so on."""
        return f"{_NAMES[self.architecture]}, {_NAMES[self.loss]}"

    def row(self, name: str) -> int:
        """The row of a module name (``"stem"``, ``"stages.1.0"``, ``"output"``)."""
        if name not in self.names:
            raise ValueError(f"no row {name!r}; rows are {self.names}")
        return self.names.index(name)

    @property
    def early_rows(self) -> list[int]:
        """The rows of the stem and of the blocks of every stage but the last."""
        last = max(int(n.split(".")[1]) for n in self.names if n.startswith("stages."))
        return [i for i, n in enumerate(self.names) if n == "stem"
                or (n.startswith("stages.") and int(n.split(".")[1]) < last)]

    @property
    def last_block(self) -> int:
        """The row of the last block (the one before ``pool``)."""
        return self.row("pool") - 1

    @property
    def C_out(self) -> float:  # noqa: N802 - the book's symbol C_L
        """``C_L``: the compression of the outputs (logits), the floor of chapter 5."""
        return float(self.table.compression[-1])

    @property
    def total_compression(self) -> float:
        """``C`` of the stem over ``C_L``: the whole network's compression after the stem."""
        return float(self.table.compression[self.row("stem")]) / self.C_out

    @property
    def last_over_out(self) -> float:
        """``C`` of the last block over ``C_L`` (1: the last block sits on the floor)."""
        return float(self.table.compression[self.last_block]) / self.C_out

    @property
    def pool_factor(self) -> float:
        """``C`` of the last block's full map (``flat``) over ``C`` after the global pool."""
        return float(self.flat.compression[self.last_block] / self.table.compression[
            self.row("pool")])

    @property
    def deep_nonlinearity(self) -> float:
        """The smallest midpoint nonlinearity of the deep blocks."""
        return min(self.nonlinearity[r] for r in self.deep)

    def report(self) -> str:
        """The per-row table as text: name, reduction, ``C`` averaged and flattened, ``D``
        uncentred and centred, the distance ``r`` and angle ``theta`` (degrees) of the class
        means from their mean, the nonlinearity ``nu``.

        Examples
        --------
        >>> print(_example().runs[0].report().splitlines()[1])
        input       none (784)               1.500   1.500   0.050   0.200   0.900  40.000       -
        """
        t, f = self.table, self.flat
        def column(name: str) -> list[float]:
            return t[name].tolist() if name in t.columns else [math.nan] * len(t)

        spread, angle = column("mean_spread"), column("mean_angle")
        lines = [f"{'row':10}  {'reduction':22}  {'C avg':>6}  {'C flat':>6}  {'D':>6}  "
                 f"{'D cent':>6}  {'r':>6}  {'theta':>6}  {'nu':>6}"]
        for i, name in enumerate(self.names):
            how = self.pooling[i] if self.pooling[i] != "none" else f"none ({int(t.dim[i])})"
            nu = self.nonlinearity[i]
            values = [float(t.compression[i]), float(f.compression[i]),
                      float(t.discrimination[i]), float(t.discrimination_centred[i]), spread[i],
                      angle[i]]
            lines.append(f"{name:10}  {how:22}  " + "  ".join(f"{v:6.3f}" for v in values)
                         + "  " + (f"{'-':>6}" if math.isnan(nu) else f"{nu:6.3f}"))
        return "\n".join(lines)


@dataclass(frozen=True)
class NetworkSummary(Result):
    """One architecture and loss over the seeds: :class:`MeanStd` of the chapter's numbers."""

    rate: MeanStd  # deep_fit.rate: C per deep block
    r2: MeanStd  # deep_fit.r2
    floor_rate: MeanStd  # floor_fit.rate (NaN where there is no floor fit)
    floor_r2: MeanStd
    total_compression: MeanStd  # C_stem / C_L
    last_over_out: MeanStd  # C of the last block / C_L
    pool_factor: MeanStd  # C of the last full map / C after the pool
    deep_nonlinearity: MeanStd  # smallest midpoint nonlinearity of the deep blocks
    train_acc: MeanStd
    test_acc: MeanStd


@dataclass(frozen=True)
class ConvResult(Result):
    """The experiment: every run, and a summary per ``"architecture/loss"``.

    Attributes
    ----------
    dataset : str
    num_train, num_test : int
    runs : list of NetworkRun
        In the order seed, architecture, loss.
    summary : dict of str to NetworkSummary
        Keyed ``"cnn/mse"``, ``"cnn/cross_entropy"``, ``"resnet/mse"``...
    wall_time_s : float
    """

    dataset: str
    num_train: int
    num_test: int
    runs: list[NetworkRun]
    summary: dict[str, NetworkSummary]
    wall_time_s: float

    def networks(self, seed: int | None = None) -> list[NetworkRun]:
        """The runs of one seed (the first seed when omitted), in architecture, loss order."""
        if not self.runs:
            raise ValueError("the result holds no run")
        seed = self.runs[0].seed if seed is None else seed
        out = [r for r in self.runs if r.seed == seed]
        if not out:
            raise ValueError(f"no run with seed {seed}; seeds are "
                             f"{sorted({r.seed for r in self.runs})}")
        return out

    def network(self, architecture: str, loss: str, seed: int | None = None) -> NetworkRun:
        """The run of one architecture and loss (first seed when `seed` is omitted)."""
        for r in self.networks(seed):
            if r.architecture == architecture and r.loss == loss:
                return r
        raise ValueError(f"no run {architecture!r} with loss {loss!r}")


@dataclass(frozen=True)
class HybridReference(Result):
    """The linear layers of chapter 5's hybrid, read from its committed result file.

    Attributes
    ----------
    scale : str
    layers : list of int
        The hybrid's linear part, ``l = m .. L-1`` (``m`` nonlinear blocks).
    compression : list of float
        ``C_l`` over these layers.
    C_out : float
        ``C_L`` of the hybrid's outputs.
    fit : Fit
        :func:`pncutils.fits.geometric` over the linear layers.
    floor_fit : Fit or None
        :func:`pncutils.fits.floor` towards ``C_out``.
    """

    scale: str
    layers: list[int]
    compression: list[float]
    C_out: float  # noqa: N815 - the book's symbol C_L
    fit: Fit
    floor_fit: Fit | None


# ----------------------------------------------------------------------------------------
# configuration and networks
# ----------------------------------------------------------------------------------------


def check_config(cfg: Mapping[str, Any]) -> Config:
    """Validate a Config of this experiment; a ValueError names the first problem.

    Parameters
    ----------
    cfg : Config
        E.g. ``SCALES["quick"]``, possibly ``.replace(...)``-d.

    Returns
    -------
    Config
        `cfg` itself.

    Examples
    --------
    >>> check_config(SCALES["quick"]) is SCALES["quick"]
    True
    >>> check_config(SCALES["quick"].replace(architectures=["vgg"]))
    Traceback (most recent call last):
    ...
    ValueError: architectures: each must be one of ('cnn', 'resnet'), got 'vgg'
    >>> check_config(SCALES["quick"].replace(widths=[8]))
    Traceback (most recent call last):
    ...
    ValueError: widths must name at least two stages (the deep blocks), got [8]

    Used in: ch06.
    """
    from pncutils.data import DATASETS

    if not isinstance(cfg, Config):
        raise ValueError(f"cfg must be a Config (e.g. SCALES['book']), got {type(cfg).__name__}")
    missing = [k for k in _REQUIRED if k not in cfg]
    if missing:
        raise ValueError(f"the config lacks {missing}; start from SCALES['book']")
    check_choice(cfg.dataset, "dataset", tuple(DATASETS))
    for key, allowed in (("architectures", tuple(ARCHITECTURES)), ("losses", LOSSES)):
        values = cfg[key]
        if not isinstance(values, list | tuple) or not values:
            raise ValueError(f"{key} must be a non-empty list, got {values!r}")
        for v in values:
            if v not in allowed:
                raise ValueError(f"{key}: each must be one of {allowed}, got {v!r}")
        if len(set(values)) != len(values):
            raise ValueError(f"{key} has duplicates: {values}")
    widths = cfg.widths
    if not isinstance(widths, list | tuple) or len(widths) < 2:
        raise ValueError(f"widths must name at least two stages (the deep blocks), got {widths!r}")
    for w in widths:
        check_int(w, "widths entry", minimum=1)
    check_int(cfg.blocks, "blocks", minimum=1)
    if (len(widths) - 1) * cfg.blocks < 2:
        raise ValueError(f"the stages after the first hold {(len(widths) - 1) * cfg.blocks} "
                         "block(s): the fits need two deep blocks (more widths or blocks)")
    for key, low in (("blocks", 1), ("epochs", 1), ("num_seeds", 1), ("batch_size", 2),
                     ("midpoint_samples", 2), ("eval_batch_size", 1), ("seed", 0)):
        check_int(cfg[key], key, minimum=low)
    for key in ("num_per_class", "test_per_class"):
        if cfg[key] is not None:
            check_int(cfg[key], key, minimum=2)
    check_float(cfg.lr, "lr", minimum=0.0, strict=True)
    check_float(cfg.min_lr_ratio, "min_lr_ratio", minimum=0.0, maximum=1.0)
    check_float(cfg.momentum, "momentum", minimum=0.0, maximum=1.0)
    check_float(cfg.weight_decay, "weight_decay", minimum=0.0)
    return cfg


def build_network(architecture: str, cfg: Config, generator: torch.Generator | None = None
                  ) -> nn.Module:
    """The network `architecture` at the sizes of `cfg`, initialised from `generator`.

    Parameters
    ----------
    architecture : {"cnn", "resnet"}
    cfg : Config
        Reads ``dataset`` (image shape and K), ``widths`` and ``blocks``.
    generator : torch.Generator, optional

    Returns
    -------
    SmallCNN or SmallResNet

    Examples
    --------
    >>> net = build_network("resnet", SCALES["quick"], torch.Generator().manual_seed(0))
    >>> type(net).__name__, net.widths
    ('SmallResNet', (8, 16, 32))

    Used in: ch06.
    """
    from pncutils.data import DATASETS

    check_choice(architecture, "architecture", tuple(ARCHITECTURES))
    info = DATASETS[check_choice(cfg.dataset, "dataset", tuple(DATASETS))]
    return ARCHITECTURES[architecture](image_shape=tuple(info.shape),
                                       num_classes=info.num_classes,
                                       widths=tuple(cfg.widths), blocks=cfg.blocks,
                                       generator=generator)


def row_names(model: nn.Module) -> list[str]:
    """The rows measured: ``input``, ``stem``, every ``stages.S.B``, ``pool``, ``output``.

    Parameters
    ----------
    model : SmallCNN or SmallResNet
        Any module with children ``stem``, ``stages`` (a Sequential of Sequentials) and
        ``pool``.

    Returns
    -------
    list of str
        Names as :func:`pncutils.measure` selects them (``"input"`` and ``"output"`` are its
        pseudo-layers).

    Examples
    --------
    >>> row_names(SmallCNN(widths=(2, 4), blocks=1))
    ['input', 'stem', 'stages.0.0', 'stages.1.0', 'pool', 'output']

    Used in: ch06.
    """
    for child in ("stem", "stages", "pool"):
        if not hasattr(model, child):
            raise ValueError(f"{type(model).__name__} has no {child!r}: row_names expects a "
                             "SmallCNN or SmallResNet")
    blocks = [f"stages.{s}.{b}" for s, stage in enumerate(model.stages)
              for b in range(len(stage))]
    return [INPUT, "stem", *blocks, "pool", OUTPUT]


def deep_rows(names: Sequence[str]) -> list[int]:
    """The rows of the deep blocks: every block of the stages after the first.

    Examples
    --------
    >>> deep_rows(["input", "stem", "stages.0.0", "stages.1.0", "stages.1.1", "pool", "output"])
    [3, 4]

    Used in: ch06.
    """
    rows = [i for i, n in enumerate(names)
            if n.startswith("stages.") and int(n.split(".")[1]) >= 1]
    if len(rows) < 2:
        raise ValueError(f"a fit needs at least two deep blocks, got rows {rows} of {list(names)}")
    return rows


# ----------------------------------------------------------------------------------------
# measurements beyond pnc.measure
# ----------------------------------------------------------------------------------------


def midpoint_nonlinearity(module: nn.Module, inputs: Tensor,
                          generator: torch.Generator | None = None) -> float:
    """How far `module` is from an affine map on `inputs`: the midpoint test.

    An affine map ``f`` sends the midpoint of two inputs to the midpoint of their outputs.
    With ``b`` the inputs in a random order (pairs of different samples) and
    ``m = (a + b) / 2``::

        nu = sum ||f(m) - (f(a) + f(b)) / 2||^2 / sum ||(f(a) - f(b)) / 2||^2

    ``nu = 0`` for every affine map (to rounding); a ReLU on independent standard Gaussian
    inputs gives about 0.27. The module is run in eval mode (BatchNorm is then affine) and put
    back in the mode it was in.

    Parameters
    ----------
    module : nn.Module
    inputs : Tensor, shape (B, ...)
        At least two samples, as the module receives them (e.g. ``(B, C, H, W)`` maps).
    generator : torch.Generator, optional
        Source of the pairing.

    Returns
    -------
    float
        ``nu >= 0``.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(256, 3, 5, 5, generator=g)
    >>> conv = nn.Conv2d(3, 4, 3)
    >>> midpoint_nonlinearity(conv, x, g) < 1e-10
    True
    >>> round(midpoint_nonlinearity(nn.ReLU(), torch.randn(100_000, generator=g)[:, None], g), 2)
    0.27

    Used in: ch06.
    """
    if not isinstance(module, nn.Module):
        raise ValueError(f"module must be an nn.Module, got {type(module).__name__}")
    a = as_tensor(inputs, "inputs")
    if a.ndim < 1 or a.shape[0] < 2:
        raise ValueError(f"inputs must hold at least two samples, got shape {tuple(a.shape)}")
    n = a.shape[0]
    # a random pairing without fixed points: sample i with sample perm[i] != i
    shift = torch.randint(1, n, (1,), generator=generator).item()
    order = torch.randperm(n, generator=generator)
    partner = torch.empty_like(order)
    partner[order] = order[(torch.arange(n) + shift) % n]
    b = a[partner.to(a.device)]
    with eval_mode(module), torch.no_grad():
        fa, fb, fm = module(a), module(b), module((a + b) / 2)
    fa, fb, fm = (t.to(torch.float64) for t in (fa, fb, fm))
    den = ((fa - fb) / 2).square().sum()
    if float(den) == 0.0:
        raise ValueError("the module gives every pair the same output: nu is undefined")
    return float((fm - (fa + fb) / 2).square().sum() / den)


def _module_for_row(model: nn.Module, name: str) -> nn.Module | None:
    if name == INPUT:
        return None
    if name == OUTPUT:
        return getattr(model, "head", None)
    return dict(model.named_modules())[name]


def block_nonlinearity(model: nn.Module, X: Tensor, names: Sequence[str],
                       generator: torch.Generator | None = None) -> list[float]:
    """:func:`midpoint_nonlinearity` of the module behind every row, on the data `X`.

    Each module is tested on the inputs it receives when the model runs on `X` (captured
    with forward pre-hooks, eval mode). The ``output`` row is the model's ``head``.

    Parameters
    ----------
    model : nn.Module
    X : Tensor, shape (B, ...)
        Model inputs (a few hundred samples suffice).
    names : sequence of str
        Rows as :func:`row_names` gives them.
    generator : torch.Generator, optional

    Returns
    -------
    list of float
        One value per row; NaN for ``input`` (and for ``output`` without a ``head``).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> net = SmallCNN(widths=(2, 4), blocks=1, generator=g)
    >>> nu = block_nonlinearity(net, torch.randn(64, 784, generator=g), row_names(net), g)
    >>> [round(v, 6) for v in nu[-2:]]  # the global pool and the linear head: affine
    [0.0, 0.0]

    Used in: ch06.
    """
    X = as_tensor(X, "X")
    modules = {n: _module_for_row(model, n) for n in names}
    captured: dict[str, Tensor] = {}
    handles = [m.register_forward_pre_hook(
        lambda mod, args, n=n: captured.__setitem__(n, args[0].detach()))
        for n, m in modules.items() if m is not None]
    try:
        with eval_mode(model), torch.no_grad():
            model(X.to(_device(model)))
    finally:
        for h in handles:
            h.remove()
    return [math.nan if modules[n] is None else
            midpoint_nonlinearity(modules[n], captured[n], generator) for n in names]


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def class_mean_geometry(model: nn.Module, X: Tensor, y: Tensor, names: Sequence[str],
                        batch_size: int = 1000) -> LayerTable:
    """Where the class means of every row lie: centred ``D``, and their distance and angle
    from their mean ``mu_G``.

    The paper's ``D = 1 - max cos(mu_k, mu_k')`` takes uncentred means. If every class mean
    lies within the angle ``theta`` of ``mu_G``, any two lie within ``2 theta`` of each other,
    so ``D <= 1 - cos(2 theta)`` however well the classes are separated; and a mean at the
    distance ``r ||mu_G||`` from ``mu_G`` (``r < 1``) is within ``arcsin r`` of it, so
    ``D <= 2 r^2``. After a ReLU every feature is nonnegative and ``mu_G`` is large. This
    gives, for the same features ``pnc.measure`` averages (``(B, C, H, W) -> (B, C)``; the
    input flattened):

    - ``discrimination_centred``: ``pnc.metrics.discrimination(H, y, centered=True)``, in
      ``[0, 1 + 1/(K-1)]`` (``1 + 1/(K-1)`` for a simplex);
    - ``mean_spread``: ``r = max_k ||mu_k - mu_G|| / ||mu_G||`` (``mu_G`` the mean of the
      class means);
    - ``mean_angle``: ``theta = max_k angle(mu_k, mu_G)``, in degrees.

    Parameters
    ----------
    model : nn.Module
    X : Tensor, shape (N, ...)
    y : Tensor, shape (N,)
        Labels in ``[0, K)``, every class present.
    names : sequence of str
        Rows (:func:`row_names`).
    batch_size : int, default 1000

    Returns
    -------
    LayerTable
        Columns ``discrimination_centred``, ``mean_spread`` and ``mean_angle``, one row per
        name.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> net = SmallCNN(widths=(2, 4), blocks=1, generator=g)
    >>> X, y = torch.randn(40, 784, generator=g), torch.arange(40) % 2
    >>> t = class_mean_geometry(net, X, y, ["stem", "output"])
    >>> t.discrimination_centred.tolist()[1]  # K = 2: centred means are opposite
    2.0
    >>> bool(t.mean_spread[0] < 0.1 and t.mean_angle[0] < 1.0)  # untrained, on noise
    True

    Used in: ch06.
    """
    X, y = as_tensor(X, "X"), as_tensor(y, "y")
    check_int(batch_size, "batch_size", minimum=1)
    modules = {n: _module_for_row(model, n) for n in names if n not in (INPUT, OUTPUT)}
    feats: dict[str, list[Tensor]] = {n: [] for n in names}

    def pooled(t: Tensor) -> Tensor:
        return t.flatten(2).mean(2) if t.ndim > 2 else t

    handles = [m.register_forward_hook(
        lambda mod, args, out, n=n: feats[n].append(pooled(out).to("cpu", torch.float64)))
        for n, m in modules.items()]
    dev = _device(model)
    try:
        with eval_mode(model), torch.no_grad():
            for a in range(0, X.shape[0], batch_size):
                xb = X[a:a + batch_size]
                out = model(xb.to(dev))
                if INPUT in feats:
                    feats[INPUT].append(xb.reshape(xb.shape[0], -1).to(torch.float64))
                if OUTPUT in feats:
                    feats[OUTPUT].append(out.to("cpu", torch.float64))
    finally:
        for h in handles:
            h.remove()
    centred, spread, angle = [], [], []
    for n in names:
        H = torch.cat(feats[n])
        centred.append(discrimination(H, y, centered=True))
        M = class_means(H, y)  # (K, D)
        g = M.mean(0)
        spread.append(float((M - g).norm(dim=1).max() / g.norm()))
        cos = (M @ g / (M.norm(dim=1) * g.norm())).clamp(-1.0, 1.0)
        angle.append(math.degrees(float(torch.arccos(cos).max())))
    return LayerTable({"discrimination_centred": centred, "mean_spread": spread,
                       "mean_angle": angle})


def compression_fits(compression: Any, deep: Sequence[int], C_out: float  # noqa: N803
                     ) -> tuple[Fit, Fit | None]:
    """The two fits of the deep blocks: geometric, and geometric towards the floor ``C_L``.

    Parameters
    ----------
    compression : sequence or Tensor, shape (R,)
        ``C`` of every row.
    deep : sequence of int
        The rows to fit (:func:`deep_rows`).
    C_out : float
        The floor ``C_L`` (the outputs' ``C``).

    Returns
    -------
    deep_fit : Fit
        :func:`pncutils.fits.geometric` over `deep` (abscissae: the rows).
    floor_fit : Fit or None
        :func:`pncutils.fits.floor` over `deep` towards `C_out`, or None when fewer than
        three deep rows lie above ``1.02 C_out``.

    Examples
    --------
    >>> C = [9.0, 5.0, 0.5 + 4.0, 0.5 + 2.0, 0.5 + 1.0, 0.5 + 0.5, 0.5]
    >>> g, f = compression_fits(C, [2, 3, 4, 5], 0.5)
    >>> round(f.rate, 12), round(f.r2, 12), g.r2 < f.r2
    (0.5, 1.0, True)

    Used in: ch06.
    """
    C = torch.as_tensor(as_tensor(compression, "compression"), dtype=torch.float64).reshape(-1)
    deep = [check_int(r, "deep row", minimum=0) for r in deep]
    if any(r >= C.numel() for r in deep):
        raise ValueError(f"deep rows {deep} outside the {C.numel()} rows")
    values = C[deep]
    geo = fits.geometric(values, layers=deep)
    try:
        floor = fits.floor(values, float(C_out), layers=deep)
    except ValueError:
        floor = None
    return geo, floor


def measure_network(model: nn.Module, X: Tensor, y: Tensor, batch_size: int = 1000,
                    device: Any = None) -> tuple[list[str], list[str], LayerTable, LayerTable,
                                                 Fit]:
    """Measure every block of a trained SmallCNN or SmallResNet with :func:`pncutils.measure`.

    Parameters
    ----------
    model : SmallCNN or SmallResNet
    X : Tensor, shape (N, C H W) or (N, C, H, W)
    y : Tensor, shape (N,)
    batch_size : int, default 1000
    device : torch.device or str, optional
        Where the inputs go (default: the model's device).

    Returns
    -------
    names : list of str
        :func:`row_names`.
    pooling : list of str
        How the default measurement reduced each row.
    table : LayerTable
        ``pool="auto"`` (maps average-pooled, the input flattened), with the columns of
        :func:`class_mean_geometry`.
    flat : LayerTable
        ``pool="flatten"`` without NC1.
    deep_fit : Fit
        ``measure``'s geometric fit over the deep rows (:func:`deep_rows`).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> net = SmallResNet(widths=(2, 4), blocks=2, generator=g)
    >>> X, y = torch.randn(60, 784, generator=g), torch.arange(60) % 3
    >>> names, pooling, table, flat, fit = measure_network(net, X, y)
    >>> pooling[:3], flat.dim.tolist()[:2], fit.layers
    (['none', 'avg (2x28x28 -> 2)', 'avg (2x28x28 -> 2)'], [784.0, 1568.0], (4, 5))

    Used in: ch06.
    """
    names = row_names(model)
    deep = deep_rows(names)
    common = dict(layers=names, fit_rows=deep, batch_size=batch_size, device=device,
                  progress=False)
    m = measure(model, (X, y), **common)
    mf = measure(model, (X, y), pool="flatten", nc1=False, **common)
    cols = {**m.table.to_dict(),
            **class_mean_geometry(model, X, y, names, batch_size).to_dict()}
    flat = {k: v for k, v in mf.table.to_dict().items() if k != "nc1"}
    return names, list(m.pooling), LayerTable(cols), LayerTable(flat), m.fit


# ----------------------------------------------------------------------------------------
# the experiment
# ----------------------------------------------------------------------------------------


def train_config(cfg: Config, loss: str, seed: int) -> Any:
    """The :class:`pncutils.training.TrainConfig` of one network of the experiment.

    Mini-batch SGD with momentum, weight decay and a cosine schedule, as `cfg` says; the
    mini-batch order is drawn from `seed`.

    Examples
    --------
    >>> tc = train_config(SCALES["quick"], "cross_entropy", seed=3)
    >>> tc.loss, tc.epochs, tc.batch_size, tc.seed
    ('cross_entropy', 20, 32, 3)

    Used in: ch06.
    """
    from pncutils.training import TrainConfig

    check_choice(loss, "loss", LOSSES)
    return TrainConfig(lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size,
                       momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                       min_lr_ratio=cfg.min_lr_ratio, loss=loss, progress=False,
                       seed=check_int(seed, "seed", minimum=0))


def train_network(architecture: str, loss: str, cfg: Config, X: Tensor, y: Tensor,
                  seed: int, device: torch.device | str = "cpu") -> tuple[nn.Module, Any]:
    """Build one network of the experiment from `seed` and train it on ``(X, y)``.

    Parameters
    ----------
    architecture : {"cnn", "resnet"}
    loss : {"mse", "cross_entropy"}
    cfg : Config
        Sizes and training parameters (:data:`SCALES`).
    X : Tensor, shape (N, C H W)
    y : Tensor, shape (N,)
    seed : int
        Seeds the initial weights (a ``torch.Generator``) and the mini-batch order.
    device : torch.device or str, default "cpu"

    Returns
    -------
    model : nn.Module
        Trained, on `device`, in eval mode.
    history : pncutils.training.History

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> X, y = torch.randn(20, 784, generator=g), torch.arange(20) % 10
    >>> cfg = SCALES["quick"].replace(widths=[2, 4], epochs=2, batch_size=10)
    >>> net, hist = train_network("cnn", "mse", cfg, X, y, seed=0)
    >>> hist.epochs_run, net.training
    (2, False)

    Used in: ch06.
    """
    from pncutils.training import train

    model = build_network(architecture, cfg, torch.Generator().manual_seed(seed))
    history = train(model, X, y, train_config(cfg, loss, seed), device=device)
    return model, history


def _one_run(cfg: Config, architecture: str, loss: str, seed: int, data: tuple[Tensor, ...],
             device: torch.device) -> NetworkRun:
    X, y, X_test, y_test = data
    model, hist = train_network(architecture, loss, cfg, X, y, seed, device)
    names, pooling, table, flat, deep_fit = measure_network(model, X, y, cfg.eval_batch_size,
                                                            device)
    deep = list(deep_fit.layers)
    nu = block_nonlinearity(model, X[:cfg.midpoint_samples], names,
                            torch.Generator().manual_seed(seed))
    C = table.compression
    _, floor_fit = compression_fits(C, deep, float(C[-1]))
    return NetworkRun(
        architecture=architecture, loss=loss, seed=seed, names=names, pooling=pooling,
        table=table, flat=flat, nonlinearity=nu, deep=deep, deep_fit=deep_fit,
        floor_fit=floor_fit, final_loss=hist.loss[-1],
        train_acc=accuracy(model, X, y, cfg.eval_batch_size, device),
        test_acc=accuracy(model, X_test, y_test, cfg.eval_batch_size, device),
        train_wall_time_s=hist.wall_time, loss_curve=loss_curve(hist.loss))


def _summary(runs: list[NetworkRun]) -> NetworkSummary:
    def ms(fn: Any) -> MeanStd:
        return mean_std([fn(r) for r in runs])

    return NetworkSummary(
        rate=ms(lambda r: r.deep_fit.rate), r2=ms(lambda r: r.deep_fit.r2),
        floor_rate=ms(lambda r: r.floor_fit.rate if r.floor_fit else math.nan),
        floor_r2=ms(lambda r: r.floor_fit.r2 if r.floor_fit else math.nan),
        total_compression=ms(lambda r: r.total_compression),
        last_over_out=ms(lambda r: r.last_over_out), pool_factor=ms(lambda r: r.pool_factor),
        deep_nonlinearity=ms(lambda r: r.deep_nonlinearity),
        train_acc=ms(lambda r: r.train_acc), test_acc=ms(lambda r: r.test_acc))


def run(config: Config, device: torch.device | str = "cpu") -> ConvResult:
    """Train and measure every architecture with every loss, for every seed.

    Parameters
    ----------
    config : Config
        ``SCALES[scale]``, possibly ``.replace(...)``-d (:func:`check_config`).
    device : torch.device or str, default "cpu"
        Where to train and measure.

    Returns
    -------
    ConvResult

    Examples
    --------
    >>> cfg = SCALES["quick"].replace(num_per_class=6, test_per_class=2, widths=[2, 4],
    ...                               blocks=2, epochs=1, losses=["mse"], batch_size=20)
    >>> res = run(cfg, "cpu")
    >>> [(r.architecture, r.loss, len(r.names)) for r in res.runs]
    [('cnn', 'mse', 8), ('resnet', 'mse', 8)]
    >>> ConvResult.from_dict(res.to_dict()).runs[0].table == res.runs[0].table
    True

    Used in: ch06.
    """
    from pncutils.data import load_dataset

    cfg = check_config(config)
    dev = check_device(device)
    t0 = time.perf_counter()
    X, y = load_dataset(cfg.dataset, "train", num_per_class=cfg.num_per_class)
    X_test, y_test = load_dataset(cfg.dataset, "test", num_per_class=cfg.test_per_class)
    data = (X, y, X_test, y_test)
    runs = [_one_run(cfg, arch, loss, seed, data, dev)
            for seed in range(cfg.seed, cfg.seed + cfg.num_seeds)
            for arch in cfg.architectures for loss in cfg.losses]
    summary = {f"{a}/{l}": _summary([r for r in runs if r.architecture == a and r.loss == l])
               for a in cfg.architectures for l in cfg.losses}
    return ConvResult(cfg.dataset, int(X.shape[0]), int(X_test.shape[0]), runs, summary,
                      time.perf_counter() - t0)


# ----------------------------------------------------------------------------------------
# chapter 5's hybrid, for comparison
# ----------------------------------------------------------------------------------------


def _hybrid_from_results(results: Mapping[str, Any], scale: str) -> HybridReference:
    from pncutils.utils import to_plain

    try:
        net = to_plain(results)["networks"]["hybrid"]
        m = int(net["num_nonlinear"])
        layers = [int(v) for v in net["layers"]["layer"]][m:]
        C = [float(v) for v in net["layers"]["compression"]][m:]
        C_out = float(net["logits"]["compression"])
    except (KeyError, TypeError) as err:
        raise ValueError(f"the hybrid result has no linear-layer compression ({err!r})") from err
    geo = fits.geometric(C, layers=layers)
    try:
        floor = fits.floor(C, C_out, layers=layers)
    except ValueError:
        floor = None
    return HybridReference(scale, layers, C, C_out, geo, floor)


def hybrid_reference(scale: str, results_dir: Any = None) -> HybridReference | None:
    """The hybrid of chapter 5 at `scale`: its linear layers' ``C_l``, ``C_L`` and fits.

    Read from the committed result file ``book/results/hybrid-<scale>.json`` (hash-checked by
    :func:`pncutils.book.reproduce.load_result`); nothing is trained.

    Parameters
    ----------
    scale : {"quick", "book", "paper"}
    results_dir : path, optional
        Where the result files are (default: the book's ``results`` folder).

    Returns
    -------
    HybridReference or None
        None when the file is not there.

    Examples
    --------
    >>> ref = hybrid_reference("quick")
    >>> ref is None or (ref.layers[0] == 3 and ref.fit.kind == "geometric")
    True

    Used in: ch06.
    """
    from pncutils.book import reproduce

    check_choice(scale, "scale", reproduce.SCALES)
    path = reproduce.result_path("hybrid", scale, results_dir)
    if not path.is_file():
        return None
    return _hybrid_from_results(reproduce.load_result(path)["results"], scale)


# ----------------------------------------------------------------------------------------
# the chapter's text and figures
# ----------------------------------------------------------------------------------------


def format_summary(result: ConvResult, hybrid: HybridReference | None = None) -> str:
    """One line per network of the first seed: accuracy, ``C`` stem -> ``C_L``, the fits.

    Examples
    --------
    >>> print(format_summary(_example()).splitlines()[0])  # doctest: +NORMALIZE_WHITESPACE
    network       test acc  C_stem  C_L     C_stem/C_L  rate  R^2   floor rate  R^2   C_last/C_L

    Used in: ch06.
    """
    _check(result)
    lines = ["network       test acc  C_stem  C_L     C_stem/C_L  rate  R^2   floor rate  "
             "R^2   C_last/C_L"]
    for r in result.networks():
        f, ff = r.deep_fit, r.floor_fit
        floor = f"{ff.rate:10.2f}  {ff.r2:.2f}" if ff else f"{'-':>10}  {'-':>4}"
        lines.append(f"{r.label:12}  {r.test_acc:8.3f}  {float(r.table.compression[1]):6.3f}  "
                     f"{r.C_out:6.3f}  {r.total_compression:10.1f}  {f.rate:4.2f}  "
                     f"{f.r2:4.2f}  {floor}  {r.last_over_out:10.2f}")
    if hybrid is not None:
        ff = hybrid.floor_fit
        floor = f"{ff.rate:10.2f}  {ff.r2:.2f}" if ff else f"{'-':>10}  {'-':>4}"
        lines.append(f"{'hybrid (ch5)':12}  {'':8}  {'':6}  {hybrid.C_out:6.4f} {'':10}  "
                     f"{hybrid.fit.rate:4.2f}  {hybrid.fit.r2:4.2f}  {floor}  "
                     f"{hybrid.compression[-1] / hybrid.C_out:10.2f}")
    return "\n".join(lines)


def figure_columns(result: ConvResult, columns: Sequence[str], seed: int | None = None
                   ) -> dict[str, list[float]]:
    """The numbers a figure draws, as equal-length columns (for a downloadable CSV).

    Parameters
    ----------
    result : ConvResult
    columns : sequence of str
        Columns of the runs' ``table`` (``"compression"``, ``"discrimination_centred"``...),
        ``"flat_compression"`` (``flat``'s C) or ``"nonlinearity"``.
    seed : int, optional
        Which seed's runs (the first when omitted).

    Returns
    -------
    dict of str to list of float
        ``"row"`` (0, 1, ...) and ``"<column>_<architecture>_<loss>"`` per run.

    Examples
    --------
    >>> cols = figure_columns(_example(), ["compression"])
    >>> list(cols)[:3], cols["compression_cnn_mse"][-1]
    (['row', 'compression_cnn_mse', 'compression_cnn_cross_entropy'], 0.2)

    Used in: ch06.
    """
    runs = _check(result).networks(seed)
    out: dict[str, list[float]] = {"row": [float(i) for i in range(len(runs[0].names))]}
    for col in columns:
        for r in runs:
            if col == "flat_compression":
                values = r.flat.compression.tolist()
            elif col == "nonlinearity":
                values = list(r.nonlinearity)
            else:
                values = r.table[col].tolist()
            out[f"{col}_{r.architecture}_{r.loss}"] = values
    return out


def _check(result: Any) -> ConvResult:
    if not isinstance(result, ConvResult):
        raise ValueError(f"result must be a ConvResult (convnets.run), got "
                         f"{type(result).__name__}")
    return result


def _short(name: str) -> str:
    return {INPUT: "input", OUTPUT: "logits"}.get(name, name.removeprefix("stages."))


def _ticks(ax: Any, names: Sequence[str]) -> None:
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([_short(n) for n in names], rotation=45, fontsize=7)


def _panels(result: ConvResult, axes: Any, height: float = 3.4) -> tuple[Any, list[Any]]:
    import matplotlib.pyplot as plt

    archs = list(dict.fromkeys(r.architecture for r in result.networks()))
    if axes is None:
        fig, ax = plt.subplots(1, len(archs), figsize=(4.6 * len(archs), height),
                               constrained_layout=True, squeeze=False)
        return fig, list(ax[0])
    axes = list(axes)
    if len(axes) != len(archs):
        raise ValueError(f"axes must hold {len(archs)} Matplotlib axes, got {len(axes)}")
    return axes[0].figure, axes


def _shade(ax: Any, rows: Sequence[int]) -> None:
    ax.axvspan(min(rows) - 0.3, max(rows) + 0.3, color="0.92", zorder=0, lw=0)


def plot_compression(result: ConvResult, axes: Sequence[Any] | None = None,
                     seed: int | None = None) -> tuple[Any, list[Any]]:
    """``C`` of every row (log scale), one panel per architecture, the two losses in each.

    Markers: ``pnc.measure``'s rows (maps average-pooled); open marker: the outputs' ``C_L``
    with a thin dashed line at its level (the floor of chapter 5); dotted: the fit over the
    deep blocks (shaded), towards the floor when it exists, else geometric.

    Parameters
    ----------
    result : ConvResult
    axes : Matplotlib axes, one per architecture, optional
    seed : int, optional
        Which seed's runs (the first when omitted).

    Returns
    -------
    fig, axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, axes = plot_compression(_example()); len(axes), len(axes[0].lines)
    (2, 8)
    >>> plt.close(fig)

    Used in: ch06.
    """
    from pncutils.plotting import COLORS

    _check(result)
    fig, axes = _panels(result, axes)
    archs = list(dict.fromkeys(r.architecture for r in result.networks(seed)))
    for ax, arch in zip(axes, archs, strict=True):
        runs = [r for r in result.networks(seed) if r.architecture == arch]
        _shade(ax, runs[0].deep)
        for i, r in enumerate(runs):
            color = COLORS[i]
            C = r.table.compression.numpy()
            x = list(range(len(C)))
            ax.semilogy(x[:-1], C[:-1], "o-", ms=3, color=color, label=r.label)
            ax.semilogy([x[-1]], [C[-1]], "o", mfc="none", color=color)
            ax.axhline(C[-1], color=color, lw=0.8, ls="--", alpha=0.6)
            f = r.floor_fit or r.deep_fit
            what = "floor fit" if r.floor_fit else "geometric fit"
            ax.semilogy(r.deep, f.predict(r.deep).numpy(), ":", color=color, lw=1.5,
                        label=f"{what}: rate {f.rate:.2f}, $R^2$ = {f.r2:.2f}")
        _ticks(ax, runs[0].names)
        ax.set(xlabel="row (stage.block); open marker: outputs $C_L$",
               ylabel="$C$ (log scale)")
        ax.legend(fontsize=7)
    return fig, axes


def plot_pooling(result: ConvResult, axes: Sequence[Any] | None = None,
                 seed: int | None = None) -> tuple[Any, list[Any]]:
    """``C`` of the full maps (``pool="flatten"``, dashed) beside the pooled ones (solid).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, axes = plot_pooling(_example()); len(axes[1].lines)
    4
    >>> plt.close(fig)

    Used in: ch06.
    """
    return _plot_pair(result, axes, seed, lambda r: r.table.compression, "maps averaged",
                      lambda r: r.flat.compression, "maps flattened", "$C$ (log scale)",
                      log=True)


def plot_discrimination(result: ConvResult, axes: Sequence[Any] | None = None,
                        seed: int | None = None) -> tuple[Any, list[Any]]:
    """The paper's ``D`` (uncentred class means, solid) and ``D`` of the centred means (dashed).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, axes = plot_discrimination(_example()); len(axes[0].lines)
    4
    >>> plt.close(fig)

    Used in: ch06.
    """
    return _plot_pair(result, axes, seed, lambda r: r.table.discrimination,
                      "uncentred (the paper's $D$)", lambda r: r.table.discrimination_centred,
                      "centred", "$D$")


def _plot_pair(result: ConvResult, axes: Any, seed: int | None, solid: Any, solid_label: str,
               dashed: Any, dashed_label: str, ylabel: str, log: bool = False
               ) -> tuple[Any, list[Any]]:
    """One panel per architecture: a column of every run solid, another dashed."""
    from pncutils.plotting import COLORS

    _check(result)
    fig, axes = _panels(result, axes)
    archs = list(dict.fromkeys(r.architecture for r in result.networks(seed)))
    for ax, arch in zip(axes, archs, strict=True):
        runs = [r for r in result.networks(seed) if r.architecture == arch]
        draw = ax.semilogy if log else ax.plot
        for i, r in enumerate(runs):
            x = list(range(len(r.names)))
            draw(x, solid(r).numpy(), "o-", ms=3, color=COLORS[i],
                 label=f"{r.label}, {solid_label}")
            draw(x, dashed(r).numpy(), "s--", ms=3, color=COLORS[i], alpha=0.7,
                 label=f"{r.label}, {dashed_label}")
        _ticks(ax, runs[0].names)
        ax.set(xlabel="row (stage.block)", ylabel=ylabel)
        ax.legend(fontsize=7)
    return fig, axes


def plot_rates(result: ConvResult, hybrid: HybridReference | None = None, ax: Any = None,
               seed: int | None = None) -> tuple[Any, Any]:
    """``C`` over the deep blocks relative to the first of them, beside the hybrid's linear part.

    The abscissa counts steps into the deep part (blocks for the convolutional networks,
    linear layers for the hybrid), so equal slopes mean equal rates per step.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plot_rates(_example()); len(ax.lines)
    4
    >>> plt.close(fig)

    Used in: ch06.
    """
    import matplotlib.pyplot as plt

    from pncutils.plotting import COLORS

    _check(result)
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.2, 3.4), constrained_layout=True)
    else:
        fig = ax.figure
    markers = {"cnn": "o-", "resnet": "s-"}
    for i, r in enumerate(result.networks(seed)):
        C = r.table.compression.numpy()[r.deep]
        ax.semilogy(range(len(C)), C / C[0], markers[r.architecture], ms=3,
                    color=COLORS[i], label=f"{r.label} (rate {r.deep_fit.rate:.2f})")
    if hybrid is not None:
        C = torch.tensor(hybrid.compression)
        ax.semilogy(range(len(C)), (C / C[0]).numpy(), "k^--", ms=4,
                    label=f"hybrid, linear layers {hybrid.layers[0]}-{hybrid.layers[-1]} "
                          f"(rate {hybrid.fit.rate:.2f})")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="steps into the deep part (blocks; layers for the hybrid)",
           ylabel="$C$ / $C$ at the first deep step (log)")
    ax.legend(fontsize=7)
    return fig, ax


def _example() -> ConvResult:
    """A small hand-made result for the examples (two architectures, two losses, 1 seed)."""
    names = ["input", "stem", "stages.0.0", "stages.1.0", "stages.1.1", "pool", "output"]
    runs = []
    for arch in ("cnn", "resnet"):
        for loss in LOSSES:
            C = [1.5, 1.8, 1.2, 0.6, 0.35, 0.35, 0.2]
            table = LayerTable({"layer": range(7), "dim": [784, 8, 8, 16, 16, 16, 10],
                                "compression": C, "discrimination": [0.05] * 6 + [0.4],
                                "discrimination_centred": [0.2, 0.3, 0.4, 0.6, 0.8, 0.8, 0.9],
                                "mean_spread": [0.9, 0.1, 0.12, 0.15, 0.2, 0.2, 0.8],
                                "mean_angle": [40.0, 2.0, 3.0, 4.0, 5.0, 5.0, 30.0]})
            flat = LayerTable({"layer": range(7), "compression": [1.5, 2.0, 2.2, 1.8, 1.2, 0.35,
                                                                  0.2]})
            geo, floor = compression_fits(C, [3, 4], 0.2)
            runs.append(NetworkRun(arch, loss, 0, names, ["none"] + ["avg"] * 5 + ["none"],
                                   table, flat, [math.nan, 0.2, 0.2, 0.2, 0.2, 0.0, 0.0],
                                   [3, 4], geo, floor, 0.1, 0.95, 0.8, 1.0,
                                   loss_curve([1.0, 0.1])))
    summary = {f"{r.architecture}/{r.loss}": _summary([r]) for r in runs}
    return ConvResult("fashion_mnist", 20, 10, runs, summary, 1.0)
