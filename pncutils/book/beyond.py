"""Beyond the assumptions: deep linear networks on real data from PyTorch's default init.

The paper's real-data figure (the book's label F7; project page
``docs/assets/figures/real_data.png``) trains deep linear networks of depths 5, 7 and 9 from
**PyTorch's default initialisation** on FashionMNIST and CIFAR-10 and reports that ``C_l``
still decays roughly geometrically (FashionMNIST: from about 2.5 to about 0.02). The width,
sample count, optimiser and epochs of that figure are not known; the design here is the
book's reconstruction (chapter 6):

* data: the first ``num_per_class`` FashionMNIST training images of every class (file order),
  flattened and standardised (:func:`pncutils.data.load_dataset`), resident on the device;
* network: :class:`pncutils.models.DeepLinearNetwork` with ``init="default"`` (what
  ``nn.Linear`` does: entries uniform with variance ``1 / (3 fan_in)``);
* training: SGD with momentum, mini-batches, a cosine learning-rate decay, MSE with output
  scale α (the paper's loss) or cross-entropy, with or without weight decay.

Each **setting** changes a few of these (depth, loss, weight decay, initialisation, sample
count); :func:`run_experiment` trains one network per setting and measures every layer, the
logits included, and how well ``log C_l`` is described by a straight line in ``l``
(:func:`compression_fit`). :func:`broken_assumptions` names the assumptions of the main
theorem that a setting violates.

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
from pncutils.book.config import Config
from pncutils.metrics import LayerTable, LayerwiseStats, linear_fit

__all__ = [
    "SETTING_KEYS",
    "PAPER_FIG7",
    "SCALES",
    "resolve_settings",
    "broken_assumptions",
    "compression_fit",
    "layer_metrics",
    "run_experiment",
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

#: The paper's real-data figure (F7), FashionMNIST panel: ``C_l`` read off the figure (about
#: +-3% of the axis range; ``None`` where a point could not be read), per depth L. Which layers the
#: points are (input included or not) cannot be read off the figure either.
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


def broken_assumptions(setting: Mapping[str, Any], num_samples: int, input_dim: int) -> list[str]:
    """The assumptions of the main theorem that a setting of real-data training violates.

    The theorem (book chapter 3) assumes nearly orthonormal inputs (so ``N <= d``) and
    weights that are minimum-norm, balanced and approximately low-rank with a *small* bulk
    singular value ε; chapter 4 shows that gradient descent on the MSE loss from a small
    orthogonal initialisation produces such weights. A setting breaks:

    * ``"near-orthogonal data"``: always (real images are strongly correlated);
    * ``"N <= d"``: when ``num_samples > input_dim`` (no interpolation is possible);
    * ``"small init"``: for ``init="default"`` or ``"gaussian"`` with scale >= 1 (bulk
      singular values of order one, not a small ε);
    * ``"balanced"``: for any non-orthogonal initialisation (the conserved imbalance is of
      order one);
    * ``"MSE loss"`` and ``"minimum norm"``: for cross-entropy (no finite minimiser; the
      weights grow along the margin directions);
    * ``"no regulariser"`` and ``"minimum norm"``: with weight decay (the minimiser of the
      regularised loss does not interpolate, and decay shrinks the bulk towards 0).

    Parameters
    ----------
    setting : mapping
        A resolved setting (:func:`resolve_settings`).
    num_samples : int
        N, the number of training samples.
    input_dim : int
        d, the input dimension.

    Returns
    -------
    list of str
        The broken assumptions, in the order above, without repetitions.

    Examples
    --------
    >>> s = {"init": "orthogonal", "init_scale": 0.3, "loss": "mse", "weight_decay": 0.0}
    >>> broken_assumptions(s, 500, 784)
    ['near-orthogonal data']
    >>> broken_assumptions({**s, "init": "default", "loss": "cross_entropy"}, 6000, 784)
    ['near-orthogonal data', 'N <= d', 'small init', 'balanced', 'MSE loss', 'minimum norm']
    """
    num_samples = check_int(num_samples, "num_samples", minimum=1)
    input_dim = check_int(input_dim, "input_dim", minimum=1)
    for key in ("init", "loss", "weight_decay"):
        if key not in setting:
            raise ValueError(f"setting needs {key!r}")
    init = check_choice(setting["init"], "init", _INITS)
    loss = check_choice(setting["loss"], "loss", _LOSSES)
    scale = float(setting.get("init_scale", 1.0))
    out = ["near-orthogonal data"]
    if num_samples > input_dim:
        out.append("N <= d")
    if init == "default" or (init == "gaussian" and scale >= 1.0):
        out.append("small init")
    if init != "orthogonal":
        out.append("balanced")
    if loss == "cross_entropy":
        out += ["MSE loss", "minimum norm"]
    if float(setting["weight_decay"]) > 0:
        out += ["no regulariser"] + ([] if "minimum norm" in out else ["minimum norm"])
    return out


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


def _subsample(values: Sequence[float], max_points: int = 200) -> dict[str, list]:
    n = len(values)
    idx = list(range(n)) if n <= max_points else sorted(
        {round(i * (n - 1) / (max_points - 1)) for i in range(max_points)})
    return {"epoch": idx, "loss": [float(values[i]) for i in idx]}


def run_experiment(cfg: Config, device: torch.device | str) -> dict[str, Any]:
    """Train one deep linear network per setting on FashionMNIST and measure every layer.

    For every setting of ``cfg.settings`` (:func:`resolve_settings`): load the first
    ``num_per_class`` training images per class onto `device` (standardised), build
    ``DeepLinearNetwork(784, cfg.width, 10, depth, init, init_scale)`` with weights drawn from
    a CPU ``torch.Generator`` seeded with ``cfg.seed``, train it with
    :func:`pncutils.training.train` (SGD, momentum, mini-batches of ``cfg.batch_size``,
    cosine decay) and measure ``C_l, D_l`` at every layer and at the logits
    (:func:`layer_metrics`), the fit of ``log C_l`` (:func:`compression_fit`) and the
    per-layer ratio of ``tr Σ_W``.

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
        ``broken_assumptions``, ``layers`` (:meth:`LayerTable.to_dict`), ``logits``,
        ``fit``, ``trace_within_ratios``, ``final_loss``, ``train_acc``, ``epochs_run``,
        ``diverged``, ``loss_curve`` (at most 200 points) and ``train_wall_time_s``. A run
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
        hist = train(net, X, y, tcfg, device=dev)
        row: dict[str, Any] = {
            "name": s["name"],
            "setting": s,
            "num_train": N,
            "broken_assumptions": broken_assumptions(s, N, D_in),
            "epochs_run": hist.epochs_run,
            "final_loss": hist.final_loss if math.isfinite(hist.final_loss) else None,
            "diverged": not math.isfinite(hist.final_loss),
            "loss_curve": _subsample(hist.loss),
            "train_wall_time_s": hist.wall_time,
            "train_acc": None, "layers": None, "logits": None, "fit": None,
            "trace_within_ratios": None,
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
            })
        out["settings"].append(row)
        out["input_dim"], out["num_classes"] = D_in, K
    out["device"] = device_name(dev)
    out["paper_fig7"] = {str(k): v for k, v in PAPER_FIG7.items()}
    out["wall_time_s"] = time.perf_counter() - t_start
    return out


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
) -> tuple[Any, Any]:
    """``C_l`` against the layer (log scale) for some settings, with their geometric fits.

    Markers: measured ``C_l`` (l = 0..L-1); solid line: the fit over ``l >= 1``; open
    marker at ``l = L``: the logits' ``C_L`` (the floor, see chapter 6); crosses: the
    paper's F7 values for the same depth, plotted from ``l = 0`` (``paper=True``).

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
    """
    import matplotlib.pyplot as plt

    from pncutils.plotting import COLORS

    rows = _select_rows(_check_results(results), names)
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
        depth = r["setting"]["depth"]
        if paper and depth in PAPER_FIG7 and depth not in drawn_paper:
            drawn_paper.add(depth)
            vals = PAPER_FIG7[depth]
            pts = [(l, v) for l, v in enumerate(vals) if v is not None]
            ax.semilogy([p[0] for p in pts], [p[1] for p in pts], "x--", color=color, lw=0.8,
                        alpha=0.6, label=f"paper, L = {depth}")
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
