"""Beyond the assumptions: deep linear networks on real data from PyTorch's default init.

The real-data figure of the authors' project page (the book's label F7;
``docs/assets/figures/real_data.png`` of ``Heimine/PNC_DLN``) shows networks of depths 5, 7 and
9, trained from **PyTorch's default initialisation** on FashionMNIST and CIFAR-10 (deep linear
networks, we assume [R]), whose ``C_l`` still decays roughly geometrically (FashionMNIST:
from about 2.5 to about 0.02). The width, sample count, optimiser and epochs of that figure
are not known; the design here is the book's reconstruction (chapter 7):

* data: the first ``num_per_class`` FashionMNIST training images of every class (file order),
  flattened and standardised (:func:`pncutils.data.load_dataset`), resident on the device;
* network: :class:`pncutils.models.DeepLinearNetwork` with ``init="default"`` (what
  ``nn.Linear`` does: entries uniform with variance ``1 / (3 fan_in)``);
* training: SGD with momentum, mini-batches, a cosine learning-rate decay, MSE with output
  scale α (the paper's loss) or cross-entropy, with or without weight decay.

Each **setting** changes a few of these (depth, loss, weight decay, initialisation, sample
count); :func:`run` trains one network per setting and measures every layer, the logits
included (:func:`layer_metrics`, through :func:`pncutils.measure`), and how well ``log C_l`` is
described by a straight line in ``l`` (:func:`pncutils.fits.geometric`). It returns a typed
:class:`Fig7Result` (one :class:`SettingResult` per setting), the ``results`` of the result
file of experiment ``fig7``. :func:`broken_assumptions` names every assumption of the theory
that a setting violates and :func:`weight_diagnostics` measures how far the trained weights
are from them. :func:`run_seed_study` repeats settings over seeds (:data:`SEED_STUDY`:
cross-entropy against MSE at two learning rates and two run lengths), and
:func:`weight_decay_exposure` says how strongly a weight decay acts over a whole run.

Conventions: ``X`` is (N, D_in) with samples as rows, ``y`` (N,) integer labels; ``depth`` is
the paper's ``L`` (classifier included); layer ``l = 0`` is the input.

See Also
--------
book chapter 7 (``ch07_beyond_assumptions``); pncutils.book.reproduce (experiment ``fig7``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pncutils import fits
from pncutils._checks import as_tensor, check_choice, check_float, check_int
from pncutils._forward import accuracy
from pncutils.book.config import Config, LossCurve, Result, loss_curve
from pncutils.fits import Fit
from pncutils.metrics import LayerTable

__all__ = [
    "Setting",
    "SETTING_KEYS",
    "PAPER_FIG7",
    "PAPER_CIFAR_TRAINING",
    "SCALES",
    "SEED_STUDY",
    "resolve_settings",
    "ASSUMPTIONS",
    "broken_assumptions",
    "layer_metrics",
    "WeightDiagnostics",
    "weight_diagnostics",
    "SettingResult",
    "Fig7Result",
    "run",
    "SeedStudyResult",
    "run_seed_study",
    "SeedSummary",
    "seed_study_summary",
    "format_seed_study",
    "weight_decay_exposure",
    "fit_summary",
    "format_fit_summary",
    "compression_columns",
    "plot_compression",
    "plot_fit_quality",
]


@dataclass(frozen=True)
class Setting(Result):
    """One setting of the experiment, every parameter resolved (:func:`resolve_settings`).

    Attributes
    ----------
    name : str
    depth : int
        L, the number of weight matrices (classifier included).
    loss : {"mse", "cross_entropy"}
    weight_decay, init_scale, alpha, lr : float
    init : {"default", "orthogonal", "gaussian"}
    num_per_class : int or None
        Training images per class (None: all of them).
    epochs : int
    """

    name: str
    depth: int
    loss: str
    weight_decay: float
    init: str
    init_scale: float
    alpha: float
    lr: float
    num_per_class: int | None
    epochs: int


#: Keys a setting may override (``name`` is required); the others default to the Config's.
SETTING_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Setting))

_LOSSES = ("mse", "cross_entropy")
_INITS = ("default", "orthogonal", "gaussian")

#: The real-data figure (F7) of the authors' project page, FashionMNIST panel: ``C_l`` read off
#: the figure (about +-3% of the axis range; ``None`` where a point could not be read), per
#: depth L. Which layers the points are (input included or not) cannot be read off it either.
PAPER_FIG7: dict[int, list[float | None]] = {
    5: [2.5, None, 0.93, 0.44],
    7: [2.6, 1.1, 0.8, 0.24, 0.085, 0.04],
    9: [2.4, 1.05, 0.78, 0.20, 0.062, 0.030, 0.022, 0.020],
}

_COMMON: dict[str, Any] = dict(
    dataset="fashion_mnist",
    num_per_class=50,  # n per class: N = 500 < d = 784 (interpolation is possible)
    loss="mse",  # the paper's loss (sum over classes, mean over samples)
    alpha=1.0,  # output scale of the MSE loss
    init="default",  # PyTorch's nn.Linear initialisation (F7)
    init_scale=1.0,  # xi of the "orthogonal"/"gaussian" initialisations (unused by "default")
    lr=0.05,  # peak learning rate of SGD
    momentum=0.9,
    batch_size=128,
    min_lr_ratio=0.01,  # cosine decay to lr/100
    weight_decay=0.0,
    eval_batch_size=4096,  # samples per forward pass of the analysis
    stall_ratio=0.9,  # a layer "stalls" when C_{l+1}/C_l exceeds this
    seed=0,  # initialisation of every network, and the mini-batch order
)


def _variants(large_n: int | None, large_epochs: int) -> list[dict[str, Any]]:
    """The settings shared by the scales: a depth sweep, then variations at L = 7."""
    return [
        {"name": "mse-L5", "depth": 5},
        {"name": "mse-L7", "depth": 7},
        {"name": "mse-L9", "depth": 9},
        {"name": "ce-L7", "depth": 7, "loss": "cross_entropy"},
        {"name": "wd-L7", "depth": 7, "weight_decay": 5e-3},
        {"name": "orth-L7", "depth": 7, "init": "orthogonal", "init_scale": 0.3, "alpha": 10.0},
        {"name": "largeN-L7", "depth": 7, "num_per_class": large_n, "epochs": large_epochs},
    ]


#: The three scales of the experiment (``quick``: seconds; ``book``: the chapter's live run,
#: under a minute on a 2-core CPU; ``paper``: full FashionMNIST, for a GPU).
SCALES: dict[str, Config] = {
    "quick": Config(**{**_COMMON, "num_per_class": 20, "width": 64, "epochs": 100,
                       "settings": _variants(100, 10)}),
    "book": Config(**{**_COMMON, "width": 128, "epochs": 150,
                      "settings": _variants(300, 20)}),
    "paper": Config(**{**_COMMON, "width": 784, "epochs": 2000, "settings": [
        *_variants(None, 100),
        {"name": "full-mse-L5", "depth": 5, "num_per_class": None, "epochs": 100},
        {"name": "full-mse-L9", "depth": 9, "num_per_class": None, "epochs": 100},
        {"name": "full-ce-L7", "depth": 7, "loss": "cross_entropy", "num_per_class": None,
         "epochs": 100},
        {"name": "full-wd-L7", "depth": 7, "weight_decay": 5e-3, "num_per_class": None,
         "epochs": 100},
    ]}),
}




#: The optimiser of the paper's CIFAR-10 runs (the authors' ``train_cifar.py`` defaults, as
#: ``submit_job.sh`` runs it: SGD on all parameters, 400 epochs of batches of 128 on the 5000
#: images of each of the 10 classes), for :func:`weight_decay_exposure`.
PAPER_CIFAR_TRAINING: dict[str, float | int] = dict(
    lr=1e-4, weight_decay=1e-4, momentum=0.9, epochs=400, num_train=50_000, batch_size=128)


def _seed_study(num_per_class: int, width: int, epochs: int, num_seeds: int) -> Config:
    """Cross-entropy against MSE at L = 7 over seeds: two learning rates, two run lengths."""
    return Config(**{**_COMMON, "num_per_class": num_per_class, "width": width, "epochs": epochs,
                     "num_seeds": num_seeds, "settings": [
        {"name": "ce-lr0.05", "depth": 7, "loss": "cross_entropy"},  # the lr of ce-L7
        {"name": "ce", "depth": 7, "loss": "cross_entropy", "lr": 0.01},
        {"name": "ce-long", "depth": 7, "loss": "cross_entropy", "lr": 0.01,
         "epochs": 4 * epochs},
        {"name": "mse", "depth": 7, "lr": 0.01},
        {"name": "mse-long", "depth": 7, "lr": 0.01, "epochs": 4 * epochs},
    ]})


#: The seed study of chapter 7 (:func:`run_seed_study`): the loss of ``ce-L7`` and ``mse-L7``
#: over ``num_seeds`` seeds, at the learning rate of :data:`SCALES` (0.05) and at 0.01, for
#: the epochs of :data:`SCALES` and four times as many (``quick``: seconds; ``book``: about a
#: minute on a 2-core CPU).
SEED_STUDY: dict[str, Config] = {
    "quick": _seed_study(20, 64, 100, 3),
    "book": _seed_study(50, 128, 150, 3),
}


# ----------------------------------------------------------------------------------------
# settings and assumptions
# ----------------------------------------------------------------------------------------


def resolve_settings(cfg: Mapping[str, Any]) -> list[Setting]:
    """Complete every setting of ``cfg["settings"]`` with the defaults of `cfg`, validated.

    Parameters
    ----------
    cfg : Config or mapping
        Needs ``settings`` (a list of dicts with a unique ``name`` and any of
        :data:`SETTING_KEYS`) and a default for every key but ``name`` and ``depth``.

    Returns
    -------
    list of Setting
        One :class:`Setting` per entry of ``cfg["settings"]``, in order.

    Raises
    ------
    ValueError
        Unknown keys, duplicate or missing names, a missing depth, or invalid values.

    Examples
    --------
    >>> s = resolve_settings(SCALES["book"])
    >>> [x.name for x in s][:3], s[3].loss, s[0].lr
    (['mse-L5', 'mse-L7', 'mse-L9'], 'cross_entropy', 0.05)

    Used in: ch07.
    """
    if not isinstance(cfg, Mapping) or "settings" not in cfg:
        raise ValueError("cfg must be a mapping with a 'settings' list")
    settings = cfg["settings"]
    if isinstance(settings, Mapping | str) or not isinstance(settings, Sequence) or not settings:
        raise ValueError("cfg['settings'] must be a non-empty list of dicts")
    out, names = [], set()
    for i, s in enumerate(settings):
        if not isinstance(s, Mapping):
            raise ValueError(f"setting {i} must be a dict, got {type(s).__name__}")
        unknown = sorted(set(s) - set(SETTING_KEYS))
        if unknown:
            raise ValueError(f"setting {i} has unknown keys {unknown}; allowed: {SETTING_KEYS}")
        if not isinstance(s.get("name"), str) or not s["name"]:
            raise ValueError(f"setting {i} needs a non-empty string 'name'")
        if s["name"] in names:
            raise ValueError(f"setting name {s['name']!r} is used twice")
        names.add(s["name"])
        if "depth" not in s:
            raise ValueError(f"setting {s['name']!r} needs a 'depth'")
        full = {}
        for key in SETTING_KEYS:
            if key in s:
                full[key] = s[key]
            elif key in cfg:
                full[key] = cfg[key]
            else:
                raise ValueError(f"setting {s['name']!r} has no {key!r} and cfg no default")
        full["depth"] = check_int(full["depth"], "depth", minimum=2)
        check_choice(full["loss"], "loss", _LOSSES)
        check_choice(full["init"], "init", _INITS)
        full["weight_decay"] = check_float(full["weight_decay"], "weight_decay", minimum=0.0)
        for key in ("init_scale", "alpha", "lr"):
            full[key] = check_float(full[key], key, minimum=0.0, strict=True)
        if full["num_per_class"] is not None:
            full["num_per_class"] = check_int(full["num_per_class"], "num_per_class", minimum=2)
        full["epochs"] = check_int(full["epochs"], "epochs", minimum=1)
        out.append(Setting(**full))
    return out


#: Everything :func:`broken_assumptions` can name, in its order: the theorem's hypotheses on the
#: data and on the weights, then the conditions under which gradient descent produces such
#: weights (chapters 2 and 4), then the output scale.
ASSUMPTIONS: tuple[str, ...] = (
    "near-orthogonal data",
    "N <= d",
    "width >= d",
    "small init",
    "balanced",
    "minimum norm",
    "MSE loss",
    "no regulariser",
    "full-batch GD",
    "no momentum",
    "alpha = 1",
)


def broken_assumptions(
    setting: Setting | Mapping[str, Any],
    num_samples: int,
    input_dim: int,
    *,
    width: int,
    batch_size: int,
    momentum: float,
) -> list[str]:
    """Every assumption of the theory that a run of real-data training does not satisfy.

    The theorem (book chapter 3) assumes nearly orthonormal inputs (so ``N <= d``) and weights
    that are minimum-norm, balanced and approximately low-rank with a *small* bulk singular
    value ε; the book's closed-form network with these properties has hidden width ``h >= d``
    (:func:`pncutils.theory.min_norm_balanced_network`); chapters 2 and 4 show that full-batch
    gradient descent without momentum on the unregularised MSE loss, from a small orthogonal
    initialisation, produces such weights. A run breaks (names from :data:`ASSUMPTIONS`):

    * ``"near-orthogonal data"``: always (real images are strongly correlated);
    * ``"N <= d"``: when ``num_samples > input_dim`` (no interpolation is possible);
    * ``"width >= d"``: when ``width < input_dim`` (the balanced construction needs ``h >= d``);
    * ``"small init"``: for ``init="default"`` (squared singular values of mean 1/3, spread
      from 0 to about 4/3), or ``"orthogonal"``/``"gaussian"`` with ``init_scale >= 1``;
    * ``"balanced"``: for ``init="default"`` or ``"gaussian"`` (an imbalance of order one at
      initialisation, which gradient flow conserves);
    * ``"minimum norm"``: when the initialisation is not small (gradient descent never changes
      the first layer outside the span of the data, so that part of the initial weights
      survives in the product), for cross-entropy (no finite minimiser) and with weight decay
      (the regularised minimiser does not interpolate);
    * ``"MSE loss"``: for cross-entropy;
    * ``"no regulariser"``: with weight decay (its minimisers have ``ε -> 0``: collapse at the
      first layer, not a progressive one);
    * ``"full-batch GD"``: when ``batch_size < num_samples`` (mini-batch SGD);
    * ``"no momentum"``: when ``momentum > 0`` (momentum breaks the conservation law of the
      imbalance: chapter 2's exercise measures a drift about twenty times larger);
    * ``"alpha = 1"``: when the output scale ``alpha != 1``. Not a hypothesis of the theorem,
      which holds for any α, but ``alpha W_L...W_1 = prod_l (alpha^{1/L} W_l)``: a run with α
      trains like one with α = 1, an initialisation ``alpha^{1/L}`` times larger and a
      learning rate ``alpha^{2/L}`` times larger, so it differs from the α = 1 runs in those two
      ways as well.

    Parameters
    ----------
    setting : Setting or mapping
        A resolved :class:`Setting` (:func:`resolve_settings`), or a mapping with ``init``,
        ``loss`` and ``weight_decay`` (``init_scale`` and ``alpha`` default to 1).
    num_samples : int
        N, the number of training samples.
    input_dim : int
        d, the input dimension.
    width : int
        h, the hidden width.
    batch_size : int
        Mini-batch size of the optimiser (``>= num_samples``: full batch).
    momentum : float
        Momentum of the optimiser (0: plain gradient descent).

    Returns
    -------
    list of str
        The broken assumptions, in the order of :data:`ASSUMPTIONS`, without repetitions.

    Examples
    --------
    >>> s = {"init": "orthogonal", "init_scale": 0.3, "loss": "mse", "weight_decay": 0.0}
    >>> broken_assumptions(s, 30, 50, width=50, batch_size=30, momentum=0.0)
    ['near-orthogonal data']
    >>> broken_assumptions({**s, "alpha": 10.0}, 500, 784, width=128, batch_size=128,
    ...                    momentum=0.9)
    ['near-orthogonal data', 'width >= d', 'full-batch GD', 'no momentum', 'alpha = 1']
    >>> broken_assumptions({**s, "init": "default"}, 500, 784, width=784, batch_size=500,
    ...                    momentum=0.0)
    ['near-orthogonal data', 'small init', 'balanced', 'minimum norm']

    Used in: ch07.
    """
    num_samples = check_int(num_samples, "num_samples", minimum=1)
    input_dim = check_int(input_dim, "input_dim", minimum=1)
    width = check_int(width, "width", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    momentum = check_float(momentum, "momentum", minimum=0.0)
    if isinstance(setting, Setting):
        setting = setting.to_dict()
    if not isinstance(setting, Mapping):
        raise ValueError(f"setting must be a Setting or a mapping, got {type(setting).__name__}")
    for key in ("init", "loss", "weight_decay"):
        if key not in setting:
            raise ValueError(f"setting needs {key!r}")
    init = check_choice(setting["init"], "init", _INITS)
    loss = check_choice(setting["loss"], "loss", _LOSSES)
    scale = check_float(setting.get("init_scale", 1.0), "init_scale", minimum=0.0, strict=True)
    alpha = check_float(setting.get("alpha", 1.0), "alpha", minimum=0.0, strict=True)
    decay = check_float(setting["weight_decay"], "weight_decay", minimum=0.0) > 0
    large_init = init == "default" or scale >= 1.0
    broken = {
        "near-orthogonal data": True,
        "N <= d": num_samples > input_dim,
        "width >= d": width < input_dim,
        "small init": large_init,
        "balanced": init in ("default", "gaussian"),
        "minimum norm": large_init or loss == "cross_entropy" or decay,
        "MSE loss": loss == "cross_entropy",
        "no regulariser": decay,
        "full-batch GD": batch_size < num_samples,
        "no momentum": momentum > 0,
        "alpha = 1": alpha != 1.0,
    }
    return [a for a in ASSUMPTIONS if broken[a]]


# ----------------------------------------------------------------------------------------
# measurements
# ----------------------------------------------------------------------------------------

#: The columns of :func:`layer_metrics` (NC1 is left out: it needs a (D, D) scatter per layer).
_LAYER_COLUMNS = ("layer", "compression", "discrimination", "trace_within", "trace_between")


def layer_metrics(
    model: torch.nn.Module, X: Tensor, y: Tensor, batch_size: int = 4096
) -> tuple[LayerTable, LayerTable]:
    """Per-layer table of the features and one row for the logits, streamed in batches.

    One pass of :func:`pncutils.measure` over the input, the outputs of the hidden blocks
    (``blocks.0``, ``blocks.1``, ...: what ``model.features`` returns) and the logits, in eval
    mode, without NC1.

    Parameters
    ----------
    model : DeepLinearNetwork or HybridNetwork
        A network of :mod:`pncutils.models` (``blocks``, ``classifier``, ``num_classes``).
    X : Tensor, shape (N, D_in)
        Inputs (on the model's device, or moved batch by batch; cast to the model's dtype).
    y : Tensor, shape (N,)
        Labels in ``[0, K)``; every class must occur.
    batch_size : int, default 4096

    Returns
    -------
    features : LayerTable
        Rows ``l = 0..L-1`` (input and hidden layers): ``layer, compression, discrimination,
        trace_within, trace_between`` (float64, streamed by
        :class:`pncutils.metrics.LayerwiseStats`).
    logits : LayerTable
        The same columns for the network's outputs (one row, ``layer = L``).

    Examples
    --------
    >>> from pncutils.models import DeepLinearNetwork
    >>> g = torch.Generator().manual_seed(0)
    >>> net = DeepLinearNetwork(6, 8, 2, depth=3, init="default", generator=g)
    >>> X = torch.randn(40, 6, generator=g); y = torch.arange(40) % 2
    >>> feats, out = layer_metrics(net, X, y, batch_size=16)
    >>> len(feats), out.layer.tolist()
    (3, [3.0])

    Used in: ch07.
    """
    from pncutils.measurement import INPUT, OUTPUT, measure

    if not (callable(getattr(model, "features", None)) and hasattr(model, "classifier")
            and isinstance(getattr(model, "blocks", None), torch.nn.ModuleList)):
        raise ValueError("model must have a features(x) method, blocks and a classifier layer "
                         "(a network of pncutils.models)")
    X, y = as_tensor(X, "X"), as_tensor(y, "y")
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X must be (N, D_in) and y (N,), got shapes {tuple(X.shape)} and {tuple(y.shape)}"
        )
    if X.shape[0] == 0:
        raise ValueError("X has no rows")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    dtype = next(model.parameters()).dtype
    if X.is_floating_point() and X.dtype != dtype:
        X = X.to(dtype)
    layers = [INPUT, *(f"blocks.{i}" for i in range(len(model.blocks))), OUTPUT]
    table = measure(model, (X, y.to(X.device)), layers, num_classes=model.num_classes,
                    nc1=False, batch_size=batch_size, progress=False).table
    n = len(table) - 1  # the logits are the last row
    return (LayerTable({c: table[c][:n] for c in _LAYER_COLUMNS}),
            LayerTable({c: table[c][n:] for c in _LAYER_COLUMNS}))


@dataclass(frozen=True)
class WeightDiagnostics(Result):
    """How far trained weights are from the theory's assumptions (:func:`weight_diagnostics`).

    Attributes
    ----------
    balance_error : float
    balance_error_init : float or None
        The same at initialisation (None when not measured).
    bulk_median, bulk_q10, bulk_q90 : float or None
        Quantiles of the bulk singular values (None without a bulk).
    null_space_fraction : float
    """

    balance_error: float
    balance_error_init: float | None
    bulk_median: float | None
    bulk_q10: float | None
    bulk_q90: float | None
    null_space_fraction: float


def weight_diagnostics(
    weights: Sequence[Any], X: Any, num_classes: int, init_weights: Sequence[Any] | None = None
) -> WeightDiagnostics:
    """Measured assumption checks of a deep linear network's weights (float64).

    The rules of :func:`broken_assumptions` say which assumptions a run *should* break; these
    numbers say how far its trained weights are from them:

    * ``balance_error``: :func:`pncutils.theory.balancedness`, the mean over ``l`` of
      ``||W_{l+1}^T W_{l+1} - W_l W_l^T||_F / ||W_l||_F`` (0 for balanced weights; the
      theory's construction has ``eps^2 sqrt(d - K) / ||W_{L-1}||_F`` in its last term);
      ``balance_error_init`` the same for `init_weights` (None without them);
    * ``bulk_median``, ``bulk_q10``, ``bulk_q90``: the median and the 10 % and 90 % quantiles
      of the bulk singular values ``sigma_i(W_l)``, ``K < i <= m - K``, ``l = 1..L-1``
      (:func:`pncutils.theory.bulk_singular_values`); all equal to ``eps`` under the low-rank
      assumption; None when the hidden layers have no bulk (``m <= 2K``);
    * ``null_space_fraction``: ``||P (I - Pi)||_F / ||P||_F`` with ``P = W_L ... W_1`` and
      ``Pi`` the orthogonal projector on the span of the rows of ``X`` (rank from the singular
      values above ``max(N, d) * 2.2e-16 * sigma_max``): the share of the product acting on
      directions that no training input visits. The minimum-norm map has 0; when ``X`` has
      full column rank (``N >= d``) there is no such direction and it is 0 for every network.

    Parameters
    ----------
    weights : sequence of Tensor
        ``[W_1, ..., W_L]``, each ``(out, in)``, ``L >= 2`` (e.g. ``model.weights()``).
    X : Tensor or ndarray, shape (N, d)
        The training inputs, one row per sample.
    num_classes : int
        K.
    init_weights : sequence of Tensor, optional
        The same network's weights at initialisation.

    Returns
    -------
    WeightDiagnostics
        ``balance_error``, ``balance_error_init``, ``bulk_median``, ``bulk_q10``,
        ``bulk_q90``, ``null_space_fraction`` (floats or None).

    Examples
    --------
    >>> X = torch.eye(2, 3)  # the data span the first two coordinates of R^3
    >>> Ws = [torch.tensor([[0.6, 0., 0.8]]), torch.tensor([[1.]])]  # balanced: 1 = 0.36 + 0.64
    >>> d = weight_diagnostics(Ws, X, num_classes=1)
    >>> round(d.null_space_fraction, 6), round(d.balance_error, 6), d.bulk_median
    (0.8, 0.0, None)

    Used in: ch07.
    """
    from pncutils.theory import balancedness, bulk_singular_values

    K = check_int(num_classes, "num_classes", minimum=1)
    Ws = [as_tensor(W, f"W_{l}").detach().to("cpu", torch.float64)
          for l, W in enumerate(weights, start=1)]
    if len(Ws) < 2:
        raise ValueError("weight diagnostics need at least two weight matrices (depth >= 2)")
    X = as_tensor(X, "X")
    if X.ndim != 2 or X.shape[1] != Ws[0].shape[1]:
        raise ValueError(f"X must be (N, {Ws[0].shape[1]}), got shape {tuple(X.shape)}")
    out: dict[str, float | None] = {
        "balance_error": float(balancedness(Ws)),
        "balance_error_init": None if init_weights is None else float(balancedness(
            [as_tensor(W, "init weight").detach() for W in init_weights])),
        "bulk_median": None, "bulk_q10": None, "bulk_q90": None,
    }
    if min(min(W.shape) for W in Ws[:-1]) > 2 * K:
        bulk = bulk_singular_values(Ws, K).flatten()
        q = torch.quantile(bulk, torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64))
        out.update(bulk_q10=float(q[0]), bulk_median=float(q[1]), bulk_q90=float(q[2]))
    P = Ws[0]
    for W in Ws[1:]:
        P = W @ P  # (K, d)
    Xd = X.detach().to(torch.float64)
    _, S, Vh = torch.linalg.svd(Xd, full_matrices=False)  # Vh (min(N, d), d)
    tol = float(S.max()) * max(Xd.shape) * torch.finfo(torch.float64).eps
    Vr = Vh[S > tol].cpu()  # (rank, d): orthonormal basis of the row span of X
    outside = P - (P @ Vr.T) @ Vr
    norm = float(torch.linalg.matrix_norm(P))
    out["null_space_fraction"] = float(torch.linalg.matrix_norm(outside)) / norm if norm else 0.0
    return WeightDiagnostics(**out)


@dataclass(frozen=True)
class SettingResult(Result):
    """One trained network of :func:`run`: its setting, its training and its measurements.

    A run whose loss became NaN/Inf has ``diverged=True``, ``final_loss=None`` and None for
    every measurement.

    Attributes
    ----------
    name : str
    setting : Setting
    num_train : int
        N, the training samples.
    broken_assumptions : list of str
        :func:`broken_assumptions` of the run.
    epochs_run : int
    diverged : bool
    final_loss : float or None
    loss_curve : LossCurve
        At most :data:`pncutils.book.config.MAX_CURVE_POINTS` epochs.
    train_wall_time_s : float
    train_acc : float or None
        Accuracy on the training set.
    layers : LayerTable or None
        :func:`layer_metrics` of the features, rows ``l = 0..L-1``.
    logits : LayerTable or None
        The same of the logits (one row, ``layer = L``).
    fit : Fit or None
        :func:`pncutils.fits.geometric` of ``C_l``, ``l = 1..L-1`` (None when ``C_l`` is not
        positive and finite).
    stall_layer : int or None
        ``fit.stall_layer(stall_ratio)`` with the Config's ``stall_ratio``.
    trace_within_ratios : list of float or None
        ``tr Σ_W^{l+1} / tr Σ_W^l`` for ``l = 0..L-2``.
    weights : WeightDiagnostics or None
        :func:`weight_diagnostics` of the trained weights (and at initialisation).
    """

    name: str
    setting: Setting
    num_train: int
    broken_assumptions: list[str] = field(default_factory=list)
    epochs_run: int = 0
    diverged: bool = False
    final_loss: float | None = None
    loss_curve: LossCurve = field(default_factory=lambda: LossCurve([], []))
    train_wall_time_s: float = 0.0
    train_acc: float | None = None
    layers: LayerTable | None = None
    logits: LayerTable | None = None
    fit: Fit | None = None
    stall_layer: int | None = None
    trace_within_ratios: list[float] | None = None
    weights: WeightDiagnostics | None = None

    @property
    def compression(self) -> list[float]:
        """``C_0, ..., C_{L-1}`` (empty for a diverged run)."""
        return [] if self.layers is None else self.layers.compression.tolist()

    @property
    def compression_logits(self) -> float:
        """``C_L`` of the logits (NaN for a diverged run)."""
        return math.nan if self.logits is None else float(self.logits.compression[0])


@dataclass(frozen=True)
class Fig7Result(Result):
    """What :func:`run` returns: one :class:`SettingResult` per setting (experiment ``fig7``).

    Attributes
    ----------
    settings : list of SettingResult
        In the order of ``cfg.settings``.
    input_dim, num_classes : int
        d and K of the data.
    input_compression : dict of str to float
        ``C_0`` of the inputs per training-set size N (keys ``str(N)``).
    device : str
        Where the networks trained.
    wall_time_s : float
        Data, training and analysis.
    """

    settings: list[SettingResult]
    input_dim: int
    num_classes: int
    input_compression: dict[str, float] = field(default_factory=dict)
    device: str = "cpu"
    wall_time_s: float = 0.0

    @property
    def names(self) -> list[str]:
        """The setting names, in order."""
        return [r.name for r in self.settings]

    def setting(self, name: str) -> SettingResult:
        """The :class:`SettingResult` called `name` (a ValueError lists the names)."""
        for r in self.settings:
            if r.name == name:
                return r
        raise ValueError(f"no setting {name!r}; settings are {self.names}")


def _train_setting(cfg: Config, s: Setting, X: Tensor, y: Tensor, dev: torch.device
                   ) -> SettingResult:
    """Build, train and measure the network of one setting (see :func:`run`)."""
    from pncutils.models import DeepLinearNetwork
    from pncutils.training import TrainConfig, train

    N, D_in = X.shape
    K = int(y.max()) + 1
    net = DeepLinearNetwork(D_in, cfg.width, K, s.depth, init=s.init, init_scale=s.init_scale,
                            generator=torch.Generator().manual_seed(cfg.seed))
    tcfg = TrainConfig(lr=s.lr, epochs=s.epochs, alpha=s.alpha, batch_size=cfg.batch_size,
                       momentum=cfg.momentum, weight_decay=s.weight_decay, schedule="cosine",
                       min_lr_ratio=cfg.min_lr_ratio, loss=s.loss, seed=cfg.seed,
                       progress=False)
    init_weights = [W.detach().clone() for W in net.weights()]
    hist = train(net, X, y, tcfg, device=dev)
    diverged = not math.isfinite(hist.final_loss)
    row = SettingResult(
        s.name, s, N,
        broken_assumptions(s, N, D_in, width=cfg.width, batch_size=cfg.batch_size,
                           momentum=cfg.momentum),
        epochs_run=hist.epochs_run, diverged=diverged,
        final_loss=None if diverged else hist.final_loss, loss_curve=loss_curve(hist.loss),
        train_wall_time_s=hist.wall_time)
    if diverged:
        return row
    feats, logits = layer_metrics(net, X, y, cfg.eval_batch_size)
    C, tw = feats.compression, feats.trace_within
    fit = fits.geometric(C, start=1) if bool((C > 0).all() & C.isfinite().all()) else None
    return dataclasses.replace(
        row, train_acc=accuracy(net, X, y, cfg.eval_batch_size), layers=feats, logits=logits,
        fit=fit, stall_layer=None if fit is None else fit.stall_layer(cfg.stall_ratio),
        trace_within_ratios=(tw[1:] / tw[:-1]).tolist(),
        weights=weight_diagnostics(net.weights(), X, K, init_weights))


def run(config: Config, device: torch.device | str) -> Fig7Result:
    """Train one deep linear network per setting on FashionMNIST and measure every layer.

    For every setting of ``config.settings`` (:func:`resolve_settings`): load the first
    ``num_per_class`` training images per class onto `device` (standardised), build
    ``DeepLinearNetwork(784, config.width, 10, depth, init, init_scale)`` with weights drawn
    from a CPU ``torch.Generator`` seeded with ``config.seed``, train it with
    :func:`pncutils.training.train` (SGD, momentum, mini-batches of ``config.batch_size``,
    cosine decay) and measure ``C_l, D_l`` at every layer and at the logits
    (:func:`layer_metrics`), the geometric fit of ``C_l`` over the hidden layers
    (:func:`pncutils.fits.geometric`, stalling at ``config.stall_ratio``), the training
    accuracy, the per-layer ratio of ``tr Σ_W`` and the trained weights
    (:func:`weight_diagnostics`).

    Parameters
    ----------
    config : Config
        One of :data:`SCALES` (or a variant): ``dataset, width, momentum, batch_size,
        min_lr_ratio, eval_batch_size, stall_ratio, seed, settings`` and the setting
        defaults.
    device : torch.device or str
        Where the data live and the networks train.

    Returns
    -------
    Fig7Result
        One :class:`SettingResult` per setting; ``to_dict()`` is the ``results`` field of a
        result file of experiment ``fig7``.

    Raises
    ------
    ValueError
        `config` is not a Config, or a setting is invalid (:func:`resolve_settings`).

    Examples
    --------
    >>> cfg = SCALES["quick"].replace(num_per_class=5, width=8, epochs=1,
    ...                               settings=[{"name": "a", "depth": 3}])
    >>> res = run(cfg, "cpu")  # needs FashionMNIST (dataset-fashion-mnist)
    >>> res.settings[0].num_train, res.settings[0].fit.layers
    (50, (1, 2))

    Used in: ch07.
    """
    from pncutils.data import load_dataset
    from pncutils.utils import device_name

    if not isinstance(config, Config):
        raise ValueError(f"cfg must be a pncutils.book.config.Config, got {type(config).__name__}")
    settings = resolve_settings(config)
    dev = torch.device(device)
    t_start = time.perf_counter()
    cache: dict[Any, tuple[Tensor, Tensor]] = {}
    rows, input_compression = [], {}
    for s in settings:
        if s.num_per_class not in cache:
            cache[s.num_per_class] = load_dataset(config.dataset, "train",
                                                  num_per_class=s.num_per_class, device=dev)
        X, y = cache[s.num_per_class]
        row = _train_setting(config, s, X, y, dev)
        if row.layers is not None:
            input_compression[str(row.num_train)] = row.compression[0]
        rows.append(row)
    X, y = next(iter(cache.values()))
    return Fig7Result(rows, int(X.shape[1]), int(y.max()) + 1, input_compression,
                      device_name(dev), time.perf_counter() - t_start)


@dataclass(frozen=True)
class SeedStudyResult(Result):
    """What :func:`run_seed_study` returns: one :class:`Fig7Result` per seed.

    Attributes
    ----------
    seeds : list of int
    names : list of str
        The settings, in order.
    runs : list of Fig7Result
        ``runs[i]`` is :func:`run` with the seed ``seeds[i]``.
    wall_time_s : float
    """

    seeds: list[int]
    names: list[str]
    runs: list[Fig7Result]
    wall_time_s: float = 0.0


def run_seed_study(config: Config, device: torch.device | str) -> SeedStudyResult:
    """:func:`run` for the seeds ``config.seed, ..., config.seed + config.num_seeds - 1``.

    Every seed draws its own initialisation and mini-batch order; the data (the first
    ``num_per_class`` images of each class) are the same for every seed.

    Parameters
    ----------
    config : Config
        One of :data:`SEED_STUDY` (or a variant): what :func:`run` needs, plus
        ``num_seeds``.
    device : torch.device or str

    Returns
    -------
    SeedStudyResult

    Examples
    --------
    >>> cfg = SEED_STUDY["quick"].replace(num_per_class=5, width=8, epochs=1, num_seeds=2,
    ...                                   settings=[{"name": "a", "depth": 3}])
    >>> res = run_seed_study(cfg, "cpu")  # needs FashionMNIST (dataset-fashion-mnist)
    >>> res.seeds, [r.settings[0].name for r in res.runs]
    ([0, 1], ['a', 'a'])

    Used in: ch07.
    """
    if not isinstance(config, Config):
        raise ValueError(f"cfg must be a pncutils.book.config.Config, got {type(config).__name__}")
    if "num_seeds" not in config:
        raise ValueError("cfg needs 'num_seeds' (see SEED_STUDY)")
    num_seeds = check_int(config.num_seeds, "num_seeds", minimum=1)
    seed0 = check_int(config.seed, "seed", minimum=0)
    seeds = list(range(seed0, seed0 + num_seeds))
    t_start = time.perf_counter()
    runs = [run(config.replace(seed=s), device) for s in seeds]
    names = [s.name for s in resolve_settings(config)]
    return SeedStudyResult(seeds, names, runs, time.perf_counter() - t_start)


@dataclass(frozen=True)
class SeedSummary(Result):
    """Scale-free statistics of one setting over the seeds (:func:`seed_study_summary`).

    Attributes
    ----------
    loss : str
    lr : float
    epochs, num_seeds : int
    diverged : int
        How many seeds diverged.
    compression_ratio, first_ratio, last_ratio : list of float
        Per seed that did not diverge: ``C_{L-1} / C_1``, ``C_2 / C_1``, ``C_{L-1} / C_{L-2}``.
    discrimination_first, discrimination_last : list of float
        ``D_1`` and ``D_{L-1}``.
    final_loss, train_acc : list of float
    """

    loss: str
    lr: float
    epochs: int
    num_seeds: int
    diverged: int
    compression_ratio: list[float]
    first_ratio: list[float]
    last_ratio: list[float]
    discrimination_first: list[float]
    discrimination_last: list[float]
    final_loss: list[float]
    train_acc: list[float]


def _seed_summary(rows: list[SettingResult]) -> SeedSummary:
    ok = [r for r in rows if not r.diverged]
    C = [r.compression for r in ok]
    D = [r.layers.discrimination.tolist() for r in ok]  # type: ignore[union-attr]
    s = rows[0].setting
    return SeedSummary(
        s.loss, s.lr, s.epochs, len(rows), len(rows) - len(ok),
        compression_ratio=[c[-1] / c[1] for c in C], first_ratio=[c[2] / c[1] for c in C],
        last_ratio=[c[-1] / c[-2] for c in C], discrimination_first=[d[1] for d in D],
        discrimination_last=[d[-1] for d in D], final_loss=[r.final_loss for r in ok],
        train_acc=[r.train_acc for r in ok])


def seed_study_summary(study: SeedStudyResult) -> dict[str, SeedSummary]:
    """Scale-free per-setting statistics of :func:`run_seed_study`, seed by seed.

    Parameters
    ----------
    study : SeedStudyResult

    Returns
    -------
    dict of str to SeedSummary
        Per setting name, in the order of ``study.names``: ``loss``, ``lr``, ``epochs``,
        ``num_seeds``, ``diverged`` (how many seeds diverged) and, one value per seed that did
        not diverge: ``compression_ratio`` (``C_{L-1} / C_1``: the compression after the first
        layer), ``first_ratio`` and ``last_ratio`` (``C_2 / C_1`` and ``C_{L-1} / C_{L-2}``),
        ``discrimination_first`` and ``discrimination_last`` (``D_1``, ``D_{L-1}``),
        ``final_loss`` and ``train_acc``.

    Examples
    --------
    >>> s = resolve_settings(SEED_STUDY["quick"].replace(settings=[{"name": "a", "depth": 4}]))[0]
    >>> t = LayerTable({"compression": [2.0, 1.0, 0.5, 0.4], "discrimination": [0, 0.2, 0.5, 0.9]})
    >>> row = SettingResult("a", s, 200, final_loss=0.1, train_acc=1.0, layers=t)
    >>> study = SeedStudyResult([0], ["a"], [Fig7Result([row], 784, 10)])
    >>> x = seed_study_summary(study)["a"]
    >>> x.compression_ratio, x.first_ratio, x.last_ratio, x.discrimination_last
    ([0.4], [0.5], [0.8], [0.9])

    Used in: ch07.
    """
    if not isinstance(study, SeedStudyResult):
        raise ValueError(f"study must be the SeedStudyResult of run_seed_study, got "
                         f"{type(study).__name__}")
    out: dict[str, SeedSummary] = {}
    for name in study.names:
        rows = [r for res in study.runs for r in res.settings if r.name == name]
        if not rows:
            raise ValueError(f"no runs of setting {name!r}")
        out[name] = _seed_summary(rows)
    return out


def format_seed_study(study: SeedStudyResult) -> str:
    """The seed study as a text table: ranges (min-max) over the seeds that did not diverge.

    Parameters
    ----------
    study : SeedStudyResult
        What :func:`run_seed_study` returns.

    Returns
    -------
    str
        One line per setting: name, loss, learning rate, epochs, diverged seeds out of all,
        then the ranges of ``C_{L-1}/C_1``, ``C_2/C_1``, ``C_{L-1}/C_{L-2}``, ``D_1``,
        ``D_{L-1}`` and the final loss (:func:`seed_study_summary`).

    Examples
    --------
    >>> s = resolve_settings(SEED_STUDY["quick"].replace(settings=[{"name": "a", "depth": 4}]))[0]
    >>> t = LayerTable({"compression": [2.0, 1.0, 0.5, 0.4], "discrimination": [0, 0.2, 0.5, 0.9]})
    >>> row = SettingResult("a", s, 200, final_loss=0.1, train_acc=1.0, layers=t)
    >>> study = SeedStudyResult([0], ["a"], [Fig7Result([row], 784, 10)])
    >>> print(format_seed_study(study).splitlines()[1].split()[:4])
    ['a', 'mse', '0.05', '100']

    Used in: ch07.
    """
    summ = seed_study_summary(study)

    def rng(v: list[float], fmt: str) -> str:
        return "-" if not v else f"{min(v):{fmt}}-{max(v):{fmt}}"

    head = (f"{'setting':<10} {'loss':<13} {'lr':>5} {'epochs':>6} {'div.':>4} "
            f"{'C_L-1/C_1':>11} {'C_2/C_1':>11} {'C_L-1/C_L-2':>11} {'D_1':>9} {'D_L-1':>9} "
            f"{'loss':>15}")
    lines = [head]
    for name, s in summ.items():
        lines.append(
            f"{name:<10} {s.loss:<13} {s.lr:>5g} {s.epochs:>6} "
            f"{s.diverged:>2}/{s.num_seeds:<1} "
            f"{rng(s.compression_ratio, '.3f'):>11} {rng(s.first_ratio, '.2f'):>11} "
            f"{rng(s.last_ratio, '.2f'):>11} {rng(s.discrimination_first, '.2f'):>9} "
            f"{rng(s.discrimination_last, '.2f'):>9} {rng(s.final_loss, '.1e'):>15}")
    return "\n".join(lines)


def weight_decay_exposure(lr: float, weight_decay: float, epochs: int, num_train: int,
                          batch_size: int, momentum: float = 0.0) -> float:
    """``lr * weight_decay * steps / (1 - momentum)``: how far weight decay alone shrinks.

    Decay alone multiplies the weights by ``1 - lr * wd`` per step of plain SGD, so after
    ``steps = epochs * ceil(num_train / batch_size)`` steps at a constant learning rate by
    ``exp(-lr * wd * steps)`` to first order. Heavy-ball momentum ``beta`` amplifies a steady
    step by ``1 / (1 - beta)``. A cosine schedule lowers the sum of the learning rates (to
    about half), so the value is an upper bound for it. Much less than one: the decay hardly
    acts; of order one or more: the weights are shaped by the regulariser.

    Parameters
    ----------
    lr, weight_decay : float
        Peak learning rate and weight decay (``>= 0``).
    epochs, num_train, batch_size : int
        Passes over the data, training samples and mini-batch size.
    momentum : float, default 0.0
        ``0 <= momentum < 1``.

    Returns
    -------
    float

    Examples
    --------
    >>> round(weight_decay_exposure(1e-4, 1e-4, 400, 50_000, 128), 6)  # the paper's CIFAR runs
    0.001564

    Used in: ch07.
    """
    lr = check_float(lr, "lr", minimum=0.0)
    weight_decay = check_float(weight_decay, "weight_decay", minimum=0.0)
    epochs = check_int(epochs, "epochs", minimum=1)
    num_train = check_int(num_train, "num_train", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    momentum = check_float(momentum, "momentum", minimum=0.0)
    if momentum >= 1:
        raise ValueError(f"momentum must be < 1, got {momentum}")
    steps = epochs * math.ceil(num_train / batch_size)
    return lr * weight_decay * steps / (1.0 - momentum)


# ----------------------------------------------------------------------------------------
# tables and figures
# ----------------------------------------------------------------------------------------


def _check_results(results: Any) -> list[SettingResult]:
    if not isinstance(results, Fig7Result):
        raise ValueError("results must be the Fig7Result of run (or the .result of a fig7 "
                         f"Record), got {type(results).__name__}")
    if not results.settings:
        raise ValueError("results hold no settings")
    return results.settings


def _toy_doc() -> Fig7Result:
    """The two-setting toy result of the docstrings below."""
    rows = []
    for name, C in (("geo", [2.0, 1.0, 0.5, 0.25]), ("flat", [2.0, 0.5, 0.5, 0.5])):
        s = resolve_settings(SCALES["quick"].replace(settings=[{"name": name, "depth": 4}]))[0]
        t = LayerTable({"layer": [0, 1, 2, 3], "compression": C,
                        "trace_within": [8.0, 4.0, 2.0, 1.0]})
        f = fits.geometric(C, start=1)
        rows.append(SettingResult(name, s, 200, final_loss=0.1, train_acc=1.0, layers=t,
                                  logits=LayerTable({"layer": [4], "compression": [0.1]}),
                                  fit=f, stall_layer=f.stall_layer(0.9)))
    return Fig7Result(rows, 784, 10)


def fit_summary(results: Fig7Result) -> LayerTable:
    """One numeric row per setting: what was trained and how geometric its ``C_l`` is.

    Parameters
    ----------
    results : Fig7Result
        What :func:`run` returns (or the ``.result`` of a ``fig7`` Record).

    Returns
    -------
    LayerTable
        Columns ``setting`` (row index, as in ``results.settings``), ``depth``,
        ``num_train``, ``cross_entropy`` (0/1), ``weight_decay``, ``default_init`` (0/1),
        ``compression_input`` (``C_0``), ``compression_first`` (``C_1``),
        ``compression_last`` (``C_{L-1}``), ``compression_logits`` (``C_L``), ``rate``,
        ``r2``, ``max_deviation`` (decades), ``stall_layer`` (NaN when none),
        ``trace_within_ratio`` (geometric mean of ``tr Σ_W^{l+1} / tr Σ_W^l``, l >= 1),
        ``final_loss`` and ``train_acc``. A run without a fit (diverged) has NaN fit columns.

    Examples
    --------
    >>> t = fit_summary(_toy_doc())  # C = [2, 1, 0.5, 0.25] and [2, 0.5, 0.5, 0.5]
    >>> t.rate.tolist(), t.trace_within_ratio.tolist(), t.stall_layer.isnan().tolist()
    ([0.5, 1.0], [0.5, 0.5], [True, False])

    Used in: ch07.
    """
    nan = math.nan
    cols: dict[str, list[float]] = {k: [] for k in (
        "setting", "depth", "num_train", "cross_entropy", "weight_decay", "default_init",
        "compression_input", "compression_first", "compression_last", "compression_logits",
        "rate", "r2", "max_deviation", "stall_layer", "trace_within_ratio", "final_loss",
        "train_acc")}
    for i, r in enumerate(_check_results(results)):
        s, f = r.setting, r.fit
        C = r.compression or [nan] * s.depth
        tw = r.layers.trace_within.tolist() if r.layers is not None else [nan] * s.depth
        ok = len(tw) > 2 and all(v > 0 for v in tw[1:])  # NaN > 0 is False
        row = {
            "setting": i, "depth": s.depth, "num_train": r.num_train,
            "cross_entropy": float(s.loss == "cross_entropy"), "weight_decay": s.weight_decay,
            "default_init": float(s.init == "default"), "compression_input": C[0],
            "compression_first": C[1], "compression_last": C[-1],
            "compression_logits": r.compression_logits,
            "rate": nan if f is None else f.rate, "r2": nan if f is None else f.r2,
            "max_deviation": nan if f is None else f.max_deviation,
            "stall_layer": nan if r.stall_layer is None else r.stall_layer,
            "trace_within_ratio": (tw[-1] / tw[1]) ** (1 / (len(tw) - 2)) if ok else nan,
            "final_loss": nan if r.final_loss is None else r.final_loss,
            "train_acc": nan if r.train_acc is None else r.train_acc,
        }
        for k, v in row.items():
            cols[k].append(v)
    return LayerTable(cols)


def format_fit_summary(results: Fig7Result) -> str:
    """The fit summary as a text table with the setting names.

    Parameters
    ----------
    results : Fig7Result
        What :func:`run` returns (or the ``.result`` of a ``fig7`` Record).

    Returns
    -------
    str
        One line per setting: name, N, ``C_0``, ``C_1``, ``C_{L-1}``, ``C_L`` (logits), rate,
        ``R^2``, max deviation (decades), stalling layer, training loss and accuracy.

    Examples
    --------
    >>> print(format_fit_summary(_toy_doc()).splitlines()[2].split()[:3])
    ['flat', '200', '2']

    Used in: ch07.
    """
    rows = _check_results(results)
    t = fit_summary(results)
    head = (f"{'setting':<12} {'N':>6} {'C_0':>6} {'C_1':>7} {'C_L-1':>8} {'C_L':>8} "
            f"{'rate':>6} {'R^2':>6} {'maxdev':>7} {'stall':>5} {'loss':>7} {'acc':>6}")
    lines = [head]
    for i, r in enumerate(rows):
        stall = t.stall_layer[i]
        lines.append(
            f"{r.name:<12} {int(t.num_train[i]):>6} {t.compression_input[i]:>6.3g} "
            f"{t.compression_first[i]:>7.3g} {t.compression_last[i]:>8.3g} "
            f"{t.compression_logits[i]:>8.3g} {t.rate[i]:>6.3f} {t.r2[i]:>6.3f} "
            f"{t.max_deviation[i]:>7.3f} {'-' if stall.isnan() else int(stall):>5} "
            f"{t.final_loss[i]:>7.3g} {t.train_acc[i]:>6.3f}")
    return "\n".join(lines)


def compression_columns(results: Fig7Result, names: Sequence[str] | None = None
                        ) -> LayerTable:
    """``C_l`` of some settings as table columns, one row per layer (logits last), for CSVs.

    Parameters
    ----------
    results : Fig7Result
        What :func:`run` returns (or the ``.result`` of a ``fig7`` Record).
    names : sequence of str, optional
        Settings to include (default: all).

    Returns
    -------
    LayerTable
        Column ``layer`` (``0 .. max L``) and one column per setting: ``C_0 .. C_{L-1}``, then
        the logits' ``C_L`` at row ``L``, NaN below (shorter networks, diverged runs).

    Examples
    --------
    >>> t = compression_columns(_toy_doc(), ["geo"])
    >>> t.layer.tolist(), t.geo.tolist()
    ([0.0, 1.0, 2.0, 3.0, 4.0], [2.0, 1.0, 0.5, 0.25, 0.1])

    Used in: ch07.
    """
    rows = _select_rows(_check_results(results), names)
    depth = max(r.setting.depth for r in rows)
    cols: dict[str, list[float]] = {"layer": list(range(depth + 1))}
    for r in rows:
        vals = [*r.compression, r.compression_logits] if r.layers is not None else []
        cols[r.name] = vals + [math.nan] * (depth + 1 - len(vals))
    return LayerTable(cols)


def _select_rows(rows: list[SettingResult], names: Sequence[str] | None) -> list[SettingResult]:
    if names is None:
        return rows
    by_name = {r.name: r for r in rows}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"no setting(s) {missing}; settings are {list(by_name)}")
    return [by_name[n] for n in names]


def plot_compression(
    results: Fig7Result,
    names: Sequence[str] | None = None,
    ax: Any | None = None,
    logits: bool = True,
    paper: bool = False,
    floors: Mapping[str, Sequence[float]] | None = None,
) -> tuple[Any, Any]:
    """``C_l`` against the layer (log scale) for some settings, with their geometric fits.

    Markers: measured ``C_l`` (l = 0..L-1); solid line: the fit over ``l >= 1``; open
    marker at ``l = L``: the logits' ``C_L`` (the floor, see chapter 7); crosses: the
    F7 values of the authors' project page for the same depth, plotted from ``l = 0``
    (``paper=True``); dashed line with plus signs: an analytic floor ``F_0..F_L`` per
    setting (``floors``, e.g. :func:`pncutils.theory.compression_floor`).

    Parameters
    ----------
    results : Fig7Result
        What :func:`run` returns (or the ``.result`` of a ``fig7`` Record).
    names : sequence of str, optional
        Settings to draw, in order (default: all).
    ax : matplotlib Axes, optional
        Where to draw; a new figure when omitted.
    logits : bool, default True
        Draw the logits' ``C_L``.
    paper : bool, default False
        Overlay :data:`PAPER_FIG7` for the depths drawn.
    floors : mapping of str to sequence of float, optional
        Per setting name, values ``F_0, ..., F_L`` drawn at ``l = 0..L``.

    Returns
    -------
    fig, ax

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plot_compression(_toy_doc(), ["geo"], paper=True)
    >>> ax.get_yscale(), len(ax.get_lines())  # points, fit, logits
    ('log', 3)
    >>> plt.close(fig)
    >>> fig, ax = plot_compression(_toy_doc(), ["geo"], floors={"geo": [1.0, 0.4, 0.2, 0.2, 0.1]})
    >>> len(ax.get_lines())
    4
    >>> plt.close(fig)

    Used in: ch07.
    """
    import matplotlib.pyplot as plt

    from pncutils.plotting import COLORS

    rows = _select_rows(_check_results(results), names)
    floors = dict(floors or {})
    unknown = sorted(set(floors) - {r.name for r in rows})
    if unknown:
        raise ValueError(f"floors given for settings not drawn: {unknown}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    else:
        fig = ax.figure
    drawn_paper = set()
    for i, r in enumerate(rows):
        color = COLORS[i % len(COLORS)]
        if r.layers is None:
            continue  # a diverged run has no layers
        C = np.asarray(r.compression, dtype=float)
        ax.semilogy(np.arange(len(C)), C, "o", color=color, label=r.name)
        if r.fit is not None:
            xs = list(r.fit.layers)
            ax.semilogy(xs, r.fit.predict(xs).numpy(), "-", color=color, alpha=0.7, lw=1.2)
        if logits:
            ax.semilogy([len(C)], [r.compression_logits], "o", mfc="none", color=color)
        if r.name in floors:
            F = np.asarray(floors[r.name], dtype=float)
            ax.semilogy(np.arange(len(F)), F, "+--", color=color, lw=1.0,
                        label=f"{r.name}: floor")
        depth = r.setting.depth
        if paper and depth in PAPER_FIG7 and depth not in drawn_paper:
            drawn_paper.add(depth)
            pts = [(l, v) for l, v in enumerate(PAPER_FIG7[depth]) if v is not None]
            ax.semilogy([p[0] for p in pts], [p[1] for p in pts], "x--", color=color, lw=0.8,
                        alpha=0.6, label=f"project page, L = {depth}")
    ax.set_xlabel("layer $l$ (open marker: logits, $l = L$)")
    ax.set_ylabel(r"$C_l = \mathrm{tr}\,\Sigma_W / \mathrm{tr}\,\Sigma_B$ (log scale)")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.legend(fontsize=8, ncol=2)
    return fig, ax


def plot_fit_quality(results: Fig7Result, axes: Sequence[Any] | None = None
                     ) -> tuple[Any, Any]:
    """Bar charts of the geometric fit per setting: ``R^2`` and the largest deviation.

    Parameters
    ----------
    results : Fig7Result
        What :func:`run` returns (or the ``.result`` of a ``fig7`` Record).
    axes : pair of Axes, optional
        Where to draw; a new ``1 x 2`` figure when omitted.

    Returns
    -------
    fig, axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, (a, b) = plot_fit_quality(_toy_doc())
    >>> len(a.patches), len(b.patches)
    (2, 2)
    >>> plt.close(fig)

    Used in: ch07.
    """
    import matplotlib.pyplot as plt

    from pncutils.plotting import COLORS

    rows = _check_results(results)
    t = fit_summary(results)
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.4), layout="constrained")
    else:
        if len(axes) != 2:
            raise ValueError("axes must be a pair (ax_r2, ax_deviation)")
        fig = axes[0].figure
    x = np.arange(len(rows))
    ax_r, ax_d = axes
    ax_r.bar(x, np.nan_to_num(t.r2.numpy()), color=COLORS[0])
    ax_r.axhline(0.95, color="0.4", lw=0.8, ls="--")
    ax_r.set_ylabel(r"$R^2$ of $\log C_l$ linear in $l$ ($l \geq 1$)")
    ax_d.bar(x, np.nan_to_num(t.max_deviation.numpy()), color=COLORS[1])
    ax_d.set_ylabel(r"largest $|\log_{10} C_l - \mathrm{fit}|$ (decades)")
    for ax in axes:
        ax.set_xticks(x, [r.name for r in rows], rotation=45, ha="right", fontsize=8)
    ax_r.set_ylim(min(0.0, float(np.nanmin(t.r2.numpy()))) if len(x) else 0.0, 1.02)
    return fig, axes
