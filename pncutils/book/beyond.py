"""Beyond the assumptions: deep linear networks on real data from PyTorch's default init.

The real-data figure of the authors' project page (the book's label F7;
``docs/assets/figures/real_data.png`` of ``Heimine/PNC_DLN``) shows networks of depths 5, 7 and
9, trained from **PyTorch's default initialisation** on FashionMNIST and CIFAR-10 (deep linear
networks, we assume [R]), whose ``C_l`` still decays roughly geometrically (FashionMNIST:
from about 2.5 to about 0.02). The width, sample count, optimiser and epochs of that figure
are not known; the design here is the book's reconstruction (chapter 6):

* data: the first ``num_per_class`` FashionMNIST training images of every class (file order),
  flattened and standardised (:func:`pncutils.data.load_dataset`), resident on the device;
* network: :class:`pncutils.models.DeepLinearNetwork` with ``init="default"`` (what
  ``nn.Linear`` does: entries uniform with variance ``1 / (3 fan_in)``);
* training: SGD with momentum, mini-batches, a cosine learning-rate decay, MSE with output
  scale α (the paper's loss) or cross-entropy, with or without weight decay.

Each **setting** changes a few of these (depth, loss, weight decay, initialisation, sample
count); :func:`run_experiment` trains one network per setting and measures every layer, the
logits included, and how well ``log C_l`` is described by a straight line in ``l``
(:func:`compression_fit`). :func:`broken_assumptions` names every assumption of the theory
that a setting violates and :func:`weight_diagnostics` measures how far the trained weights
are from them. :func:`run_seed_study` repeats settings over seeds (:data:`SEED_STUDY`:
cross-entropy against MSE at two learning rates and two run lengths), and
:func:`weight_decay_exposure` says how strongly a weight decay acts over a whole run.

Conventions: ``X`` is (N, D_in) with samples as rows, ``y`` (N,) integer labels; ``depth`` is
the paper's ``L`` (classifier included); layer ``l = 0`` is the input.

See Also
--------
book chapter 6 (``ch06_beyond_assumptions``); pncutils.book.reproduce (experiment ``fig7``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pncutils._checks import as_tensor, check_choice, check_float, check_int
from pncutils.book.config import Config, loss_curve
from pncutils.metrics import LayerTable, LayerwiseStats, linear_fit

__all__ = [
    "SETTING_KEYS",
    "PAPER_FIG7",
    "PAPER_CIFAR_TRAINING",
    "SCALES",
    "SEED_STUDY",
    "resolve_settings",
    "ASSUMPTIONS",
    "broken_assumptions",
    "compression_fit",
    "layer_metrics",
    "weight_diagnostics",
    "run_experiment",
    "run_seed_study",
    "seed_study_summary",
    "format_seed_study",
    "weight_decay_exposure",
    "fit_summary",
    "format_fit_summary",
    "compression_columns",
    "plot_compression",
    "plot_fit_quality",
]

#: Keys a setting may override (``name`` is required); the others default to the Config's.
SETTING_KEYS: tuple[str, ...] = (
    "name",
    "depth",
    "loss",
    "weight_decay",
    "init",
    "init_scale",
    "alpha",
    "lr",
    "num_per_class",
    "epochs",
)

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


#: The seed study of chapter 6 (:func:`run_seed_study`): the loss of ``ce-L7`` and ``mse-L7``
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


def resolve_settings(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Complete every setting of ``cfg["settings"]`` with the defaults of `cfg`, validated.

    Parameters
    ----------
    cfg : Config or mapping
        Needs ``settings`` (a list of dicts with a unique ``name`` and any of
        :data:`SETTING_KEYS`) and a default for every key but ``name`` and ``depth``.

    Returns
    -------
    list of dict
        One dict per setting with every key of :data:`SETTING_KEYS`.

    Raises
    ------
    ValueError
        Unknown keys, duplicate or missing names, a missing depth, or invalid values.

    Examples
    --------
    >>> s = resolve_settings(SCALES["book"])
    >>> [x["name"] for x in s][:3], s[3]["loss"], s[0]["lr"]
    (['mse-L5', 'mse-L7', 'mse-L9'], 'cross_entropy', 0.05)
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
        out.append(full)
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
    setting: Mapping[str, Any],
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
    setting : mapping
        A resolved setting (:func:`resolve_settings`): needs ``init``, ``loss`` and
        ``weight_decay``; ``init_scale`` and ``alpha`` default to 1.
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

    Used in: ch06.
    """
    num_samples = check_int(num_samples, "num_samples", minimum=1)
    input_dim = check_int(input_dim, "input_dim", minimum=1)
    width = check_int(width, "width", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    momentum = check_float(momentum, "momentum", minimum=0.0)
    if not isinstance(setting, Mapping):
        raise ValueError(f"setting must be a mapping, got {type(setting).__name__}")
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
# fit quality
# ----------------------------------------------------------------------------------------


def compression_fit(compression: Any, start: int = 1, stall_ratio: float = 0.9) -> dict[str, Any]:
    """How well ``log C_l`` is a straight line in ``l`` (geometric compression), and where not.

    Least squares of ``log C_l`` against ``l`` for ``l = start .. P-1`` (float64).

    Parameters
    ----------
    compression : sequence or Tensor, shape (P,)
        Positive ``C_0, ..., C_{P-1}``.
    start : int, default 1
        First layer of the fit (1: the hidden layers, as the rates of chapter 3).
    stall_ratio : float, default 0.9
        A layer ``l >= start`` stalls when ``C_{l+1} / C_l > stall_ratio``.

    Returns
    -------
    dict
        ``layers`` (the fitted l), ``rate`` (``exp(slope)``: the fitted ratio per layer),
        ``slope`` and ``intercept`` (natural log), ``r2``, ``max_deviation`` (largest
        ``|log10 C_l - fit|``, in decades), ``ratios`` (``C_{l+1}/C_l`` for the fitted l),
        ``stall_layer`` (first stalling l, or None) and ``total_ratio``
        (``C_{P-1} / C_start``).

    Examples
    --------
    >>> f = compression_fit([5.0, 1.0, 0.5, 0.25, 0.125])  # exactly geometric from l = 1
    >>> round(f["rate"], 12), round(f["r2"], 12), round(f["max_deviation"], 12), f["stall_layer"]
    (0.5, 1.0, 0.0, None)
    >>> compression_fit([1.0, 0.1, 0.01, 0.0095], start=0)["stall_layer"]
    2
    """
    start = check_int(start, "start", minimum=0)
    stall_ratio = check_float(stall_ratio, "stall_ratio", minimum=0.0, strict=True)
    C = as_tensor(compression, "compression").detach().to("cpu", torch.float64).reshape(-1)
    if C.numel() - start < 2:
        raise ValueError(
            f"a fit from layer {start} on needs at least {start + 2} values, got {C.numel()}"
        )
    if not (torch.isfinite(C).all() and (C > 0).all()):
        raise ValueError("compression values must be positive and finite")
    layers = list(range(start, C.numel()))
    logc = C[start:].log()
    fit = linear_fit(layers, logc)
    pred = fit.slope * torch.tensor(layers, dtype=torch.float64) + fit.intercept
    ratios = (C[start + 1 :] / C[start:-1]).tolist()
    stall = next((layers[i] for i, r in enumerate(ratios) if r > stall_ratio), None)
    return {
        "layers": layers,
        "rate": math.exp(fit.slope),
        "slope": fit.slope,
        "intercept": fit.intercept,
        "r2": fit.r2,
        "max_deviation": float((logc - pred).abs().max()) / math.log(10.0),
        "ratios": ratios,
        "stall_layer": stall,
        "total_ratio": float(C[-1] / C[start]),
    }


# ----------------------------------------------------------------------------------------
# the experiment
# ----------------------------------------------------------------------------------------


def layer_metrics(
    model: torch.nn.Module, X: Tensor, y: Tensor, batch_size: int = 4096
) -> tuple[LayerTable, LayerTable]:
    """Per-layer table of the features and one row for the logits, streamed in batches.

    Parameters
    ----------
    model : DeepLinearNetwork or HybridNetwork
        Any network with ``features(x)`` and a ``classifier`` layer.
    X : Tensor, shape (N, D_in)
        Inputs (on the model's device, or moved batch by batch).
    y : Tensor, shape (N,)
        Labels in ``[0, K)``; every class must occur.
    batch_size : int, default 4096

    Returns
    -------
    features : LayerTable
        Rows ``l = 0..L-1`` (input and hidden layers): ``layer, compression, discrimination,
        trace_within, trace_between`` (float64, :class:`pncutils.metrics.LayerwiseStats`;
        no NC1, which needs a (D, D) scatter per layer).
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
    """
    if not callable(getattr(model, "features", None)) or not hasattr(model, "classifier"):
        raise ValueError("model must have a features(x) method and a classifier layer")
    X = as_tensor(X, "X")
    y = as_tensor(y, "y")
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X must be (N, D_in) and y (N,), got shapes {tuple(X.shape)} and {tuple(y.shape)}"
        )
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    K = int(getattr(model, "num_classes", int(y.max()) + 1))
    p = next(model.parameters())
    was_training = model.training
    model.eval()
    stats: LayerwiseStats | None = None
    try:
        with torch.no_grad():
            for a in range(0, X.shape[0], batch_size):
                xb = X[a : a + batch_size].to(p.device, p.dtype)
                feats = model.features(xb)
                feats = [*feats, model.classifier(feats[-1])]  # logits as the last row
                if stats is None:
                    stats = LayerwiseStats(len(feats), K, nc1=False)
                stats.update(feats, y[a : a + batch_size].to(feats[0].device))
    finally:
        model.train(was_training)
    if stats is None:
        raise ValueError("X has no rows")
    table = stats.compute().to_dict()
    cols = [c for c in table if c != "nc1"]  # not accumulated (nc1=False): all NaN
    return (LayerTable({c: table[c][:-1] for c in cols}),
            LayerTable({c: table[c][-1:] for c in cols}))


def weight_diagnostics(
    weights: Sequence[Any], X: Any, num_classes: int, init_weights: Sequence[Any] | None = None
) -> dict[str, float | None]:
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
    dict
        ``balance_error``, ``balance_error_init``, ``bulk_median``, ``bulk_q10``,
        ``bulk_q90``, ``null_space_fraction`` (floats or None).

    Examples
    --------
    >>> X = torch.eye(2, 3)  # the data span the first two coordinates of R^3
    >>> Ws = [torch.tensor([[0.6, 0., 0.8]]), torch.tensor([[1.]])]  # balanced: 1 = 0.36 + 0.64
    >>> d = weight_diagnostics(Ws, X, num_classes=1)
    >>> round(d["null_space_fraction"], 6), round(d["balance_error"], 6), d["bulk_median"]
    (0.8, 0.0, None)

    Used in: ch06.
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
    return out


def run_experiment(cfg: Config, device: torch.device | str) -> dict[str, Any]:
    """Train one deep linear network per setting on FashionMNIST and measure every layer.

    For every setting of ``cfg.settings`` (:func:`resolve_settings`): load the first
    ``num_per_class`` training images per class onto `device` (standardised), build
    ``DeepLinearNetwork(784, cfg.width, 10, depth, init, init_scale)`` with weights drawn from
    a CPU ``torch.Generator`` seeded with ``cfg.seed``, train it with
    :func:`pncutils.training.train` (SGD, momentum, mini-batches of ``cfg.batch_size``,
    cosine decay) and measure ``C_l, D_l`` at every layer and at the logits
    (:func:`layer_metrics`), the fit of ``log C_l`` (:func:`compression_fit`), the
    per-layer ratio of ``tr Σ_W`` and the trained weights (:func:`weight_diagnostics`).

    Parameters
    ----------
    cfg : Config
        One of :data:`SCALES` (or a variant): ``dataset, width, momentum, batch_size,
        min_lr_ratio, eval_batch_size, stall_ratio, seed, settings`` and the setting
        defaults.
    device : torch.device or str
        Where the data live and the networks train.

    Returns
    -------
    dict
        JSON-serialisable: ``input_dim``, ``num_classes``, ``device``, ``wall_time_s``,
        ``input_compression`` (``C_0`` per sample count), ``paper_fig7`` and ``settings``:
        one dict per setting with ``name``, ``setting`` (resolved), ``num_train``,
        ``broken_assumptions`` (:func:`broken_assumptions`), ``layers``
        (:meth:`LayerTable.to_dict`), ``logits``, ``fit``, ``trace_within_ratios``,
        ``weights`` (:func:`weight_diagnostics`), ``final_loss``, ``train_acc``,
        ``epochs_run``, ``diverged``, ``loss_curve`` (at most 200 points) and
        ``train_wall_time_s``. A run
        whose loss became NaN/Inf has ``diverged=True`` and None for the measurements.

    Raises
    ------
    ValueError
        `cfg` is not a Config, or a setting is invalid (:func:`resolve_settings`).

    Examples
    --------
    >>> cfg = SCALES["quick"].replace(num_per_class=5, width=8, epochs=1,
    ...                               settings=[{"name": "a", "depth": 3}])
    >>> res = run_experiment(cfg, "cpu")  # needs FashionMNIST (dataset-fashion-mnist)
    >>> res["settings"][0]["num_train"], res["settings"][0]["fit"]["layers"]
    (50, [1, 2])
    """
    from pncutils.data import load_dataset
    from pncutils.models import DeepLinearNetwork
    from pncutils.training import TrainConfig, train
    from pncutils.utils import device_name

    if not isinstance(cfg, Config):
        raise ValueError(f"cfg must be a pncutils.book.config.Config, got {type(cfg).__name__}")
    settings = resolve_settings(cfg)
    dev = torch.device(device)
    t_start = time.perf_counter()
    cache: dict[Any, tuple[Tensor, Tensor]] = {}
    out: dict[str, Any] = {"settings": [], "input_compression": {}}
    for s in settings:
        n = s["num_per_class"]
        if n not in cache:
            cache[n] = load_dataset(cfg.dataset, "train", num_per_class=n, device=dev)
        X, y = cache[n]
        N, D_in = X.shape
        K = int(y.max()) + 1
        gen = torch.Generator().manual_seed(cfg.seed)
        net = DeepLinearNetwork(D_in, cfg.width, K, s["depth"], init=s["init"],
                                init_scale=s["init_scale"], generator=gen)
        tcfg = TrainConfig(lr=s["lr"], epochs=s["epochs"], alpha=s["alpha"],
                           batch_size=cfg.batch_size, momentum=cfg.momentum,
                           weight_decay=s["weight_decay"], schedule="cosine",
                           min_lr_ratio=cfg.min_lr_ratio, loss=s["loss"], seed=cfg.seed,
                           progress=False)
        init_weights = [W.detach().clone() for W in net.weights()]
        hist = train(net, X, y, tcfg, device=dev)
        row: dict[str, Any] = {
            "name": s["name"],
            "setting": s,
            "num_train": N,
            "broken_assumptions": broken_assumptions(
                s, N, D_in, width=cfg.width, batch_size=cfg.batch_size, momentum=cfg.momentum),
            "epochs_run": hist.epochs_run,
            "final_loss": hist.final_loss if math.isfinite(hist.final_loss) else None,
            "diverged": not math.isfinite(hist.final_loss),
            "loss_curve": loss_curve(hist.loss).to_dict(),
            "train_wall_time_s": hist.wall_time,
            "train_acc": None, "layers": None, "logits": None, "fit": None,
            "trace_within_ratios": None, "weights": None,
        }
        if not row["diverged"]:
            feats, logits = layer_metrics(net, X, y, cfg.eval_batch_size)
            with torch.no_grad():
                B = cfg.eval_batch_size
                correct = sum(int((net(X[a : a + B]).argmax(1) == y[a : a + B]).sum())
                              for a in range(0, N, B))
            C, tw = feats.compression, feats.trace_within
            out["input_compression"][str(N)] = float(C[0])
            row.update({
                "train_acc": correct / N,
                "layers": feats.to_dict(),
                "logits": {k: v[0] for k, v in logits.to_dict().items()},
                "fit": compression_fit(C, 1, cfg.stall_ratio) if bool((C > 0).all()) else None,
                "trace_within_ratios": (tw[1:] / tw[:-1]).tolist(),
                "weights": weight_diagnostics(net.weights(), X, K, init_weights),
            })
        out["settings"].append(row)
        out["input_dim"], out["num_classes"] = D_in, K
    out["device"] = device_name(dev)
    out["paper_fig7"] = {str(k): v for k, v in PAPER_FIG7.items()}
    out["wall_time_s"] = time.perf_counter() - t_start
    return out


def run_seed_study(cfg: Config, device: torch.device | str) -> dict[str, Any]:
    """:func:`run_experiment` for the seeds ``cfg.seed, ..., cfg.seed + cfg.num_seeds - 1``.

    Every seed draws its own initialisation and mini-batch order; the data (the first
    ``num_per_class`` images of each class) are the same for every seed.

    Parameters
    ----------
    cfg : Config
        One of :data:`SEED_STUDY` (or a variant): what :func:`run_experiment` needs, plus
        ``num_seeds``.
    device : torch.device or str

    Returns
    -------
    dict
        JSON-serialisable: ``seeds``, ``names`` (the settings, in order), ``runs`` (one
        :func:`run_experiment` row per setting and seed, with its ``seed``) and
        ``wall_time_s``.

    Examples
    --------
    >>> cfg = SEED_STUDY["quick"].replace(num_per_class=5, width=8, epochs=1, num_seeds=2,
    ...                                   settings=[{"name": "a", "depth": 3}])
    >>> res = run_seed_study(cfg, "cpu")  # needs FashionMNIST (dataset-fashion-mnist)
    >>> res["seeds"], [(r["name"], r["seed"]) for r in res["runs"]]
    ([0, 1], [('a', 0), ('a', 1)])

    Used in: ch06.
    """
    if not isinstance(cfg, Config):
        raise ValueError(f"cfg must be a pncutils.book.config.Config, got {type(cfg).__name__}")
    if "num_seeds" not in cfg:
        raise ValueError("cfg needs 'num_seeds' (see SEED_STUDY)")
    num_seeds = check_int(cfg.num_seeds, "num_seeds", minimum=1)
    seed0 = check_int(cfg.seed, "seed", minimum=0)
    seeds = list(range(seed0, seed0 + num_seeds))
    t_start = time.perf_counter()
    runs = []
    for s in seeds:
        res = run_experiment(cfg.replace(seed=s), device)
        runs += [{**row, "seed": s} for row in res["settings"]]
    names = [s["name"] for s in resolve_settings(cfg)]
    return {"seeds": seeds, "names": names, "runs": runs,
            "wall_time_s": time.perf_counter() - t_start}


def seed_study_summary(study: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Scale-free per-setting statistics of :func:`run_seed_study`, seed by seed.

    Parameters
    ----------
    study : dict
        What :func:`run_seed_study` returns.

    Returns
    -------
    dict
        Per setting name: ``loss``, ``lr``, ``epochs``, ``num_seeds``, ``diverged`` (how many
        seeds diverged) and, one value per seed that did not diverge: ``compression_ratio``
        (``C_{L-1} / C_1``: the compression after the first layer), ``first_ratio`` and
        ``last_ratio`` (``C_2 / C_1`` and ``C_{L-1} / C_{L-2}``), ``discrimination_first``
        and ``discrimination_last`` (``D_1``, ``D_{L-1}``), ``final_loss`` and ``train_acc``.

    Examples
    --------
    >>> row = {"name": "a", "seed": 0, "diverged": False, "final_loss": 0.1, "train_acc": 1.0,
    ...        "setting": {"loss": "mse", "lr": 0.01, "epochs": 5},
    ...        "layers": {"compression": [2.0, 1.0, 0.5, 0.4],
    ...                   "discrimination": [0.0, 0.2, 0.5, 0.9]}}
    >>> s = seed_study_summary({"names": ["a"], "runs": [row]})["a"]
    >>> s["compression_ratio"], s["first_ratio"], s["last_ratio"], s["discrimination_last"]
    ([0.4], [0.5], [0.8], [0.9])

    Used in: ch06.
    """
    if not isinstance(study, Mapping) or not isinstance(study.get("runs"), list):
        raise ValueError("study must be the dict returned by run_seed_study")
    names = study.get("names") or list(dict.fromkeys(r["name"] for r in study["runs"]))
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        rows = [r for r in study["runs"] if r["name"] == name]
        if not rows:
            raise ValueError(f"no runs of setting {name!r}")
        s = rows[0]["setting"]
        keys = ("compression_ratio", "first_ratio", "last_ratio", "discrimination_first",
                "discrimination_last", "final_loss", "train_acc")
        stats: dict[str, Any] = {"loss": s["loss"], "lr": s["lr"], "epochs": s["epochs"],
                                 "num_seeds": len(rows),
                                 "diverged": sum(bool(r["diverged"]) for r in rows),
                                 **{k: [] for k in keys}}
        for r in rows:
            if r["diverged"]:
                continue
            C, D = r["layers"]["compression"], r["layers"]["discrimination"]
            stats["compression_ratio"].append(C[-1] / C[1])
            stats["first_ratio"].append(C[2] / C[1])
            stats["last_ratio"].append(C[-1] / C[-2])
            stats["discrimination_first"].append(D[1])
            stats["discrimination_last"].append(D[-1])
            stats["final_loss"].append(r["final_loss"])
            stats["train_acc"].append(r["train_acc"])
        out[name] = stats
    return out


def format_seed_study(study: Mapping[str, Any]) -> str:
    """The seed study as a text table: ranges (min-max) over the seeds that did not diverge.

    Parameters
    ----------
    study : dict
        What :func:`run_seed_study` returns.

    Returns
    -------
    str
        One line per setting: name, loss, learning rate, epochs, diverged seeds out of all,
        then the ranges of ``C_{L-1}/C_1``, ``C_2/C_1``, ``C_{L-1}/C_{L-2}``, ``D_1``,
        ``D_{L-1}`` and the final loss (:func:`seed_study_summary`).

    Examples
    --------
    >>> row = {"name": "a", "seed": 0, "diverged": False, "final_loss": 0.1, "train_acc": 1.0,
    ...        "setting": {"loss": "mse", "lr": 0.01, "epochs": 5},
    ...        "layers": {"compression": [2.0, 1.0, 0.5, 0.4],
    ...                   "discrimination": [0.0, 0.2, 0.5, 0.9]}}
    >>> print(format_seed_study({"names": ["a"], "runs": [row]}).splitlines()[1].split()[:4])
    ['a', 'mse', '0.01', '5']

    Used in: ch06.
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
            f"{name:<10} {s['loss']:<13} {s['lr']:>5g} {s['epochs']:>6} "
            f"{s['diverged']:>2}/{s['num_seeds']:<1} "
            f"{rng(s['compression_ratio'], '.3f'):>11} {rng(s['first_ratio'], '.2f'):>11} "
            f"{rng(s['last_ratio'], '.2f'):>11} {rng(s['discrimination_first'], '.2f'):>9} "
            f"{rng(s['discrimination_last'], '.2f'):>9} {rng(s['final_loss'], '.1e'):>15}")
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

    Used in: ch06.
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


def _check_results(results: Any) -> list[Mapping[str, Any]]:
    if isinstance(results, Mapping) and "results" in results and "settings" not in results:
        results = results["results"]  # a whole result file
    if not isinstance(results, Mapping) or not isinstance(results.get("settings"), list):
        raise ValueError("results must be the dict returned by run_experiment (or a result file)")
    if not results["settings"]:
        raise ValueError("results hold no settings")
    return results["settings"]


def fit_summary(results: Mapping[str, Any]) -> LayerTable:
    """One numeric row per setting: what was trained and how geometric its ``C_l`` is.

    Parameters
    ----------
    results : dict
        :func:`run_experiment`'s output, or a whole result file of experiment ``fig7``.

    Returns
    -------
    LayerTable
        Columns ``setting`` (row index, as in ``results["settings"]``), ``depth``,
        ``num_train``, ``cross_entropy`` (0/1), ``weight_decay``, ``default_init`` (0/1),
        ``compression_input`` (``C_0``), ``compression_first`` (``C_1``),
        ``compression_last`` (``C_{L-1}``), ``compression_logits`` (``C_L``), ``rate``,
        ``r2``, ``max_deviation`` (decades), ``stall_layer`` (NaN when none),
        ``trace_within_ratio`` (geometric mean of ``tr Σ_W^{l+1} / tr Σ_W^l``, l >= 1),
        ``final_loss`` and ``train_acc``. A run without a fit (diverged) has NaN fit columns.

    Examples
    --------
    >>> layers = {"layer": [0, 1, 2, 3], "compression": [2.0, 1.0, 0.5, 0.25],
    ...           "trace_within": [8.0, 4.0, 2.0, 1.0]}
    >>> s = {"name": "a", "setting": {"depth": 4, "loss": "mse", "weight_decay": 0.0,
    ...      "init": "default"}, "num_train": 500, "layers": layers,
    ...      "logits": {"compression": 0.1}, "fit": compression_fit(layers["compression"]),
    ...      "final_loss": 0.1, "train_acc": 1.0}
    >>> t = fit_summary({"settings": [s]})
    >>> t.rate.tolist(), t.trace_within_ratio.tolist(), t.stall_layer.isnan().tolist()
    ([0.5], [0.5], [True])
    """
    rows = _check_results(results)
    nan = float("nan")
    cols: dict[str, list[float]] = {k: [] for k in (
        "setting", "depth", "num_train", "cross_entropy", "weight_decay", "default_init",
        "compression_input", "compression_first", "compression_last", "compression_logits",
        "rate", "r2", "max_deviation", "stall_layer", "trace_within_ratio", "final_loss",
        "train_acc")}
    for i, r in enumerate(rows):
        s = r["setting"]
        lay = r.get("layers") or {"compression": [nan] * s["depth"],
                                  "trace_within": [nan] * s["depth"]}
        C, tw = lay["compression"], lay["trace_within"]
        f = r.get("fit") or {}
        cols["setting"].append(i)
        cols["depth"].append(s["depth"])
        cols["num_train"].append(r["num_train"])
        cols["cross_entropy"].append(float(s["loss"] == "cross_entropy"))
        cols["weight_decay"].append(s["weight_decay"])
        cols["default_init"].append(float(s["init"] == "default"))
        cols["compression_input"].append(C[0])
        cols["compression_first"].append(C[1])
        cols["compression_last"].append(C[-1])
        cols["compression_logits"].append((r.get("logits") or {}).get("compression", nan))
        for key in ("rate", "r2", "max_deviation"):
            cols[key].append(f.get(key, nan) if f.get(key) is not None else nan)
        stall = f.get("stall_layer")
        cols["stall_layer"].append(nan if stall is None else stall)
        ok = len(tw) > 2 and all(v is not None and v > 0 for v in tw[1:])  # NaN > 0 is False
        cols["trace_within_ratio"].append(
            (tw[-1] / tw[1]) ** (1 / (len(tw) - 2)) if ok else nan)
        cols["final_loss"].append(nan if r["final_loss"] is None else r["final_loss"])
        cols["train_acc"].append(nan if r["train_acc"] is None else r["train_acc"])
    return LayerTable(cols)


def format_fit_summary(results: Mapping[str, Any]) -> str:
    """The fit summary as a text table with the setting names and broken assumptions.

    Parameters
    ----------
    results : dict
        :func:`run_experiment`'s output or a result file.

    Returns
    -------
    str
        One line per setting: name, N, ``C_0``, ``C_1``, ``C_{L-1}``, ``C_L`` (logits), rate,
        ``R^2``, max deviation (decades), stalling layer, training loss and accuracy.

    Examples
    --------
    >>> layers = {"layer": [0, 1, 2], "compression": [2.0, 1.0, 0.5], "trace_within": [1, 1, 1]}
    >>> s = {"name": "toy", "setting": {"depth": 3, "loss": "mse", "weight_decay": 0.0,
    ...      "init": "default"}, "num_train": 5, "layers": layers, "logits": {"compression": 0.1},
    ...      "fit": compression_fit(layers["compression"]), "final_loss": 0.1, "train_acc": 1.0}
    >>> print(format_fit_summary({"settings": [s]}).splitlines()[1].split()[:3])
    ['toy', '5', '2']
    """
    rows = _check_results(results)
    t = fit_summary(results)
    head = (f"{'setting':<12} {'N':>6} {'C_0':>6} {'C_1':>7} {'C_L-1':>8} {'C_L':>8} "
            f"{'rate':>6} {'R^2':>6} {'maxdev':>7} {'stall':>5} {'loss':>7} {'acc':>6}")
    lines = [head]
    for i, r in enumerate(rows):
        stall = t.stall_layer[i]
        lines.append(
            f"{r['name']:<12} {int(t.num_train[i]):>6} {t.compression_input[i]:>6.3g} "
            f"{t.compression_first[i]:>7.3g} {t.compression_last[i]:>8.3g} "
            f"{t.compression_logits[i]:>8.3g} {t.rate[i]:>6.3f} {t.r2[i]:>6.3f} "
            f"{t.max_deviation[i]:>7.3f} {'-' if stall.isnan() else int(stall):>5} "
            f"{t.final_loss[i]:>7.3g} {t.train_acc[i]:>6.3f}")
    return "\n".join(lines)


def compression_columns(results: Mapping[str, Any], names: Sequence[str] | None = None
                        ) -> LayerTable:
    """``C_l`` of some settings as table columns, one row per layer (logits last), for CSVs.

    Parameters
    ----------
    results : dict
        :func:`run_experiment`'s output or a result file of ``fig7``.
    names : sequence of str, optional
        Settings to include (default: all).

    Returns
    -------
    LayerTable
        Column ``layer`` (``0 .. max L``) and one column per setting: ``C_0 .. C_{L-1}``, then
        the logits' ``C_L`` at row ``L``, NaN below (shorter networks, diverged runs).

    Examples
    --------
    >>> s = {"name": "toy", "setting": {"depth": 2},
    ...      "layers": {"compression": [2.0, 1.0]}, "logits": {"compression": 0.5}}
    >>> t = compression_columns({"settings": [s]})
    >>> t.layer.tolist(), t.toy.tolist()
    ([0.0, 1.0, 2.0], [2.0, 1.0, 0.5])
    """
    rows = _select_rows(_check_results(results), names)
    depth = max(r["setting"]["depth"] for r in rows)
    cols: dict[str, list[float]] = {"layer": list(range(depth + 1))}
    for r in rows:
        vals = [*r["layers"]["compression"], r["logits"]["compression"]] if r.get("layers") else []
        cols[r["name"]] = vals + [float("nan")] * (depth + 1 - len(vals))
    return LayerTable(cols)


def _select_rows(rows: list[Mapping[str, Any]], names: Sequence[str] | None) -> list:
    if names is None:
        return rows
    by_name = {r["name"]: r for r in rows}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"no setting(s) {missing}; settings are {list(by_name)}")
    return [by_name[n] for n in names]


def plot_compression(
    results: Mapping[str, Any],
    names: Sequence[str] | None = None,
    ax: Any | None = None,
    logits: bool = True,
    paper: bool = False,
    floors: Mapping[str, Sequence[float]] | None = None,
) -> tuple[Any, Any]:
    """``C_l`` against the layer (log scale) for some settings, with their geometric fits.

    Markers: measured ``C_l`` (l = 0..L-1); solid line: the fit over ``l >= 1``; open
    marker at ``l = L``: the logits' ``C_L`` (the floor, see chapter 6); crosses: the
    F7 values of the authors' project page for the same depth, plotted from ``l = 0``
    (``paper=True``); dashed line with plus signs: an analytic floor ``F_0..F_L`` per
    setting (``floors``, e.g. :func:`pncutils.theory.compression_floor`).

    Parameters
    ----------
    results : dict
        :func:`run_experiment`'s output or a result file of ``fig7``.
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
    >>> layers = {"layer": [0, 1, 2], "compression": [2.0, 1.0, 0.5]}
    >>> s = {"name": "toy", "setting": {"depth": 3}, "layers": layers,
    ...      "logits": {"compression": 0.3}, "fit": compression_fit(layers["compression"])}
    >>> fig, ax = plot_compression({"settings": [s]}, paper=True)
    >>> ax.get_yscale(), len(ax.get_lines())
    ('log', 3)
    >>> plt.close(fig)
    >>> fig, ax = plot_compression({"settings": [s]}, floors={"toy": [1.0, 0.4, 0.2, 0.2]})
    >>> len(ax.get_lines())
    4
    >>> plt.close(fig)
    """
    import matplotlib.pyplot as plt

    from pncutils.plotting import COLORS

    rows = _select_rows(_check_results(results), names)
    floors = dict(floors or {})
    unknown = sorted(set(floors) - {r["name"] for r in rows})
    if unknown:
        raise ValueError(f"floors given for settings not drawn: {unknown}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    else:
        fig = ax.figure
    drawn_paper = set()
    for i, r in enumerate(rows):
        color = COLORS[i % len(COLORS)]
        if not r.get("layers"):
            continue  # a diverged run has no layers
        C = np.asarray(r["layers"]["compression"], dtype=float)
        layers = np.arange(len(C))
        ax.semilogy(layers, C, "o", color=color, label=r["name"])
        f = r.get("fit")
        if f:
            xs = np.asarray(f["layers"], dtype=float)
            ax.semilogy(xs, np.exp(f["slope"] * xs + f["intercept"]), "-", color=color,
                        alpha=0.7, lw=1.2)
        if logits:
            ax.semilogy([len(C)], [r["logits"]["compression"]], "o", mfc="none", color=color)
        if r["name"] in floors:
            F = np.asarray(floors[r["name"]], dtype=float)
            ax.semilogy(np.arange(len(F)), F, "+--", color=color, lw=1.0,
                        label=f"{r['name']}: floor")
        depth = r["setting"]["depth"]
        if paper and depth in PAPER_FIG7 and depth not in drawn_paper:
            drawn_paper.add(depth)
            vals = PAPER_FIG7[depth]
            pts = [(l, v) for l, v in enumerate(vals) if v is not None]
            ax.semilogy([p[0] for p in pts], [p[1] for p in pts], "x--", color=color, lw=0.8,
                        alpha=0.6, label=f"project page, L = {depth}")
    ax.set_xlabel("layer $l$ (open marker: logits, $l = L$)")
    ax.set_ylabel(r"$C_l = \mathrm{tr}\,\Sigma_W / \mathrm{tr}\,\Sigma_B$ (log scale)")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.legend(fontsize=8, ncol=2)
    return fig, ax


def plot_fit_quality(results: Mapping[str, Any], axes: Sequence[Any] | None = None
                     ) -> tuple[Any, Any]:
    """Bar charts of the geometric fit per setting: ``R^2`` and the largest deviation.

    Parameters
    ----------
    results : dict
        :func:`run_experiment`'s output or a result file of ``fig7``.
    axes : pair of Axes, optional
        Where to draw; a new ``1 x 2`` figure when omitted.

    Returns
    -------
    fig, axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> layers = {"layer": [0, 1, 2, 3], "compression": [2.0, 1.0, 0.5, 0.3],
    ...           "trace_within": [1, 1, 1, 1]}
    >>> s = {"name": "toy", "setting": {"depth": 4, "loss": "mse", "weight_decay": 0.0,
    ...      "init": "default"}, "num_train": 5, "layers": layers, "logits": {"compression": 0.1},
    ...      "fit": compression_fit(layers["compression"]), "final_loss": 0.1, "train_acc": 1.0}
    >>> fig, (a, b) = plot_fit_quality({"settings": [s]})
    >>> len(a.patches), len(b.patches)
    (1, 1)
    >>> plt.close(fig)
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
    names = [r["name"] for r in rows]
    x = np.arange(len(rows))
    ax_r, ax_d = axes
    ax_r.bar(x, np.nan_to_num(t.r2.numpy()), color=COLORS[0])
    ax_r.axhline(0.95, color="0.4", lw=0.8, ls="--")
    ax_r.set_ylabel(r"$R^2$ of $\log C_l$ linear in $l$ ($l \geq 1$)")
    ax_d.bar(x, np.nan_to_num(t.max_deviation.numpy()), color=COLORS[1])
    ax_d.set_ylabel(r"largest $|\log_{10} C_l - \mathrm{fit}|$ (decades)")
    for ax in axes:
        ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
    ax_r.set_ylim(min(0.0, float(np.nanmin(t.r2.numpy()))) if len(x) else 0.0, 1.02)
    return fig, axes
