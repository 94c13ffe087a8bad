"""Full-batch and mini-batch training with the paper's MSE loss and output scale α.

The loss is the reference code's (Heimine/PNC_DLN):

    ℓ(Θ) = (1/N) Σ_i ‖α f_Θ(x_i) − y_i‖²,

with one-hot targets ``y_i``: summed over the K classes, averaged over the samples (over the
mini-batch for mini-batch training). The optimiser is ``torch.optim.SGD`` (momentum, weight
decay on every parameter, BatchNorm included, as in the reference), with a learning rate
that is either constant or a cosine decay stepped once per epoch (:func:`learning_rate`).

Two entry points:

- :func:`train` trains one model. The data are moved to the device once and stay there;
  mini-batches are slices of a ``torch.randperm`` drawn from a CPU generator seeded with
  ``cfg.seed``, so that the same seed gives the same run. Within an epoch nothing is read
  back from the device: the loss is accumulated on the device and read once per epoch.
- :func:`train_many` trains S same-shaped deep linear networks at once, with batched
  matrix products over stacked (S, out, in) weights. Each model follows exactly the run
  that :func:`train` would give it (its own learning rate, α, momentum, weight decay and
  stopping threshold), which makes seed sweeps of the theory chapters cheap.

Conventions: ``X`` is (N, D_in) with samples as rows, ``y`` is (N,) int64 in ``[0, K)``.

See Also
--------
pncutils.models : the networks; pncutils.metrics.layerwise : the per-layer tables recorded
with ``eval_every``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pncutils._checks import (
    as_tensor,
    check_choice,
    check_device,
    check_float,
    check_inputs,
    check_int,
    check_labels,
)
from pncutils._forward import eval_mode
from pncutils.utils import device_name, get_device, progress_enabled, to_plain

__all__ = ["TrainConfig", "History", "learning_rate", "train", "train_many"]

SCHEDULES: tuple[str, ...] = ("cosine", "constant")
LOSSES: tuple[str, ...] = ("mse", "cross_entropy")
#: Rows per chunk when the per-layer tables are computed on large data sets.
EVAL_CHUNK = 4096

# fields that the S configurations of `train_many` may set differently
_PER_MODEL_FIELDS = frozenset(
    {
        "lr",
        "alpha",
        "momentum",
        "weight_decay",
        "loss_threshold",
        "min_lr_ratio",
        "schedule_epochs",
        "seed",
    }
)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (validated on construction).

    Examples
    --------
    >>> cfg = TrainConfig(lr=0.1, epochs=100, alpha=100.0, loss_threshold=1e-11)
    >>> cfg.schedule, cfg.batch_size
    ('cosine', None)
    >>> TrainConfig(lr=0.1, epochs=10, schedule="step")
    Traceback (most recent call last):
    ...
    ValueError: schedule must be one of ('cosine', 'constant'), got 'step'

    Used in: ch02.
    """

    lr: float  # initial (peak) learning rate η > 0
    epochs: int  # maximum number of epochs (passes over the data)
    alpha: float = 1.0  # output scale α of the loss: ‖α f(x) − y‖²
    batch_size: int | None = None  # mini-batch size; None = full batch (gradient descent)
    momentum: float = 0.0  # SGD momentum in [0, 1) (torch.optim.SGD semantics, no dampening)
    weight_decay: float = 0.0  # L2 penalty coefficient added to the gradient of every parameter
    schedule: str = "cosine"  # "cosine" (decay to η_min over `schedule_epochs`) or "constant"
    loss_threshold: float | None = None  # stop after the first epoch whose loss is below this
    eval_every: int | None = None  # record a per-layer table every k epochs and at the end
    seed: int = 0  # seed of the mini-batch order (CPU generator)
    min_lr_ratio: float = 0.01  # cosine floor η_min = lr · min_lr_ratio
    schedule_epochs: int | None = None  # cosine period T; None = `epochs`
    loss: str = "mse"  # "mse" (the paper's) or "cross_entropy" (on α · logits)
    progress: bool | None = None  # tqdm bar; None = pncutils.utils.progress_enabled()
    compile: bool = False  # wrap the forward + loss in torch.compile (`train` only)

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("lr", check_float(self.lr, "lr", minimum=0.0, strict=True))
        put("epochs", check_int(self.epochs, "epochs", minimum=1))
        put("alpha", check_float(self.alpha, "alpha", minimum=0.0, strict=True))
        if self.batch_size is not None:
            put("batch_size", check_int(self.batch_size, "batch_size", minimum=1))
        put("momentum", check_float(self.momentum, "momentum", minimum=0.0, maximum=1.0))
        if self.momentum >= 1.0:
            raise ValueError(f"momentum must be < 1, got {self.momentum}")
        put("weight_decay", check_float(self.weight_decay, "weight_decay", minimum=0.0))
        check_choice(self.schedule, "schedule", SCHEDULES)
        if self.loss_threshold is not None:
            put(
                "loss_threshold",
                check_float(self.loss_threshold, "loss_threshold", minimum=0.0, strict=True),
            )
        if self.eval_every is not None:
            put("eval_every", check_int(self.eval_every, "eval_every", minimum=1))
        put("seed", check_int(self.seed, "seed", minimum=0))
        put("min_lr_ratio", check_float(self.min_lr_ratio, "min_lr_ratio", 0.0, 1.0))
        if self.schedule_epochs is not None:
            put("schedule_epochs", check_int(self.schedule_epochs, "schedule_epochs", minimum=1))
        check_choice(self.loss, "loss", LOSSES)
        if self.progress is not None and not isinstance(self.progress, bool):
            raise ValueError(f"progress must be True, False or None, got {self.progress!r}")
        if not isinstance(self.compile, bool):
            raise ValueError(f"compile must be True or False, got {self.compile!r}")


@dataclass
class History:
    """Record of a training run, as returned by :func:`train` and :func:`train_many`.

    Attributes
    ----------
    loss : list of float
        Training loss of every epoch run (for mini-batches, the sample-weighted mean of the
        batch losses, each taken before its update; for full batch, the loss before the
        epoch's update).
    lr : list of float
        Learning rate used in every epoch.
    epochs_run : int
        Number of epochs run (= number of full passes with updates).
    converged : bool
        Whether the loss fell below ``cfg.loss_threshold``.
    metrics : dict of int to LayerTable
        Epoch ``e`` to the per-layer table of the model after ``e`` epochs (see
        ``TrainConfig.eval_every``); empty without ``eval_every``.
    wall_time : float
        Seconds spent in training (for :func:`train_many`, the time of the whole batch).
    device : str
        Name of the device that trained the model.
    config : dict
        ``dataclasses.asdict`` of the configuration.

    Examples
    --------
    >>> h = History(loss=[1.0, 0.5], lr=[0.1, 0.1], epochs_run=2, converged=False)
    >>> h.final_loss, h.to_dict()["epochs_run"]
    (0.5, 2)

    Used in: ch03, ch06.
    """

    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    epochs_run: int = 0
    converged: bool = False
    metrics: dict[int, Any] = field(default_factory=dict)
    wall_time: float = 0.0
    device: str = "cpu"
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def final_loss(self) -> float:
        """Loss of the last epoch run (NaN when no epoch ran)."""
        return self.loss[-1] if self.loss else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (metric tables via their ``to_dict``; epochs as strings).

        Examples
        --------
        >>> import json
        >>> len(json.dumps(History(loss=[1.0], lr=[0.1], epochs_run=1).to_dict())) > 0
        True
        """
        return {
            "loss": [float(v) for v in self.loss],
            "lr": [float(v) for v in self.lr],
            "epochs_run": int(self.epochs_run),
            "converged": bool(self.converged),
            "final_loss": float(self.final_loss),
            "metrics": {str(e): to_plain(t) for e, t in self.metrics.items()},
            "wall_time": float(self.wall_time),
            "device": str(self.device),
            "config": to_plain(self.config),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """Inverse of :meth:`to_dict` (tables come back as ``pncutils.metrics.LayerTable``).

        Examples
        --------
        >>> h = History(loss=[1.0], lr=[0.1], epochs_run=1)
        >>> History.from_dict(h.to_dict()) == h
        True
        """
        from pncutils.metrics import LayerTable

        return cls(
            loss=[float(v) for v in data["loss"]],
            lr=[float(v) for v in data["lr"]],
            epochs_run=int(data["epochs_run"]),
            converged=bool(data["converged"]),
            metrics={int(e): LayerTable.from_dict(t) for e, t in data.get("metrics", {}).items()},
            wall_time=float(data.get("wall_time", 0.0)),
            device=str(data.get("device", "cpu")),
            config=dict(data.get("config", {})),
        )


def learning_rate(cfg: TrainConfig, epoch: int) -> float:
    """Learning rate of epoch `epoch` (0-based) under the configuration's schedule.

    Cosine: ``η_e = η_min + (lr − η_min)(1 + cos(π e / T)) / 2`` with
    ``η_min = lr · min_lr_ratio`` and ``T = schedule_epochs or epochs``; it equals ``lr`` at
    ``e = 0`` and ``η_min`` at ``e = T``, and stays at ``η_min`` after ``T``. (The reference
    code's ``CosineAnnealingWarmRestarts(T_0=T)`` would restart at ``T``; its runs never
    reach ``T``, so the two agree on them.) Constant: ``η_e = lr``.

    Parameters
    ----------
    cfg : TrainConfig
    epoch : int
        Epoch index ``e >= 0``.

    Returns
    -------
    float

    Examples
    --------
    >>> cfg = TrainConfig(lr=0.1, epochs=100, min_lr_ratio=0.1)
    >>> [round(learning_rate(cfg, e), 6) for e in (0, 50, 100)]
    [0.1, 0.055, 0.01]
    """
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    epoch = check_int(epoch, "epoch", minimum=0)
    if cfg.schedule == "constant":
        return cfg.lr
    period = cfg.schedule_epochs if cfg.schedule_epochs is not None else cfg.epochs
    lr_min = cfg.lr * cfg.min_lr_ratio
    e = min(epoch, period)
    return lr_min + (cfg.lr - lr_min) * (1.0 + math.cos(math.pi * e / period)) / 2.0


# ----------------------------------------------------------------------------------------
# helpers shared by `train` and `train_many`
# ----------------------------------------------------------------------------------------


def _resolve_device(device: torch.device | str | None, dtype: torch.dtype) -> torch.device:
    dev = get_device() if device is None else check_device(device)
    if dev.type == "mps" and dtype == torch.float64:
        raise ValueError("MPS has no float64: train a float32 model or pass device='cpu'")
    return dev


def _param_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    raise ValueError("the model has no floating-point parameters to train")


def _num_classes(model: nn.Module, X: Tensor) -> int:
    K = getattr(model, "num_classes", None)
    if K is not None:
        return int(K)
    # a generic module: read K off one forward pass (eval mode leaves BatchNorm untouched)
    with eval_mode(model), torch.no_grad():
        return int(model(X[:2]).shape[-1])


def _check_targets(y: Any, num_samples: int, num_classes: int, name: str = "y") -> Tensor:
    y, _ = check_labels(y, num_samples, num_classes, require_all=False, name=name, rows="X",
                        hint=f" (the model has {num_classes} outputs)")
    return y


def _show_progress(cfg: TrainConfig) -> bool:
    if cfg.progress is not None:
        return cfg.progress
    return progress_enabled()


def _epochs_iter(cfg: TrainConfig) -> Any:
    if _show_progress(cfg):
        from tqdm.auto import tqdm

        return tqdm(range(cfg.epochs), desc="train", leave=False)
    return range(cfg.epochs)


def _targets(y: Tensor, num_classes: int, kind: str, dtype: torch.dtype) -> Tensor:
    """One-hot (…, K) targets in `dtype` for MSE; the labels themselves for cross-entropy."""
    if kind == "mse":
        return F.one_hot(y, num_classes).to(dtype)
    return y


def _loss(out: Tensor, target: Tensor, alpha: float | Tensor, kind: str) -> Tensor:
    """Per-model mean loss; `out` (…, B, K) gives a loss of shape (…)."""
    if kind == "mse":
        # the reference code's loss: sum over classes, mean over samples
        return (alpha * out - target).square().sum(-1).mean(-1)
    logits = alpha * out
    per_sample = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none"
    )
    return per_sample.reshape(target.shape).mean(-1)


def _layer_table(
    features_fn: Callable[[Tensor], Sequence[Tensor]], X: Tensor, y: Tensor, K: int
) -> Any:
    """Per-layer table of ``features_fn(X)`` (chunks of `EVAL_CHUNK` rows for large N)."""
    from pncutils import metrics

    with torch.no_grad():
        N = X.shape[0]
        if N <= EVAL_CHUNK:
            return metrics.layerwise(features_fn(X), y, num_classes=K)
        stats = None
        for start in range(0, N, EVAL_CHUNK):
            feats = features_fn(X[start : start + EVAL_CHUNK])
            if stats is None:
                stats = metrics.LayerwiseStats(len(feats), K)
            stats.update(feats, y[start : start + EVAL_CHUNK])
        return stats.compute()  # type: ignore[union-attr]


def _evaluate(model: nn.Module, X: Tensor, y: Tensor, K: int) -> Any:
    with eval_mode(model):
        return _layer_table(model.features, X, y, K)  # type: ignore[arg-type]


def _has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


# ----------------------------------------------------------------------------------------
# one model
# ----------------------------------------------------------------------------------------


def train(
    model: nn.Module,
    X: Any,
    y: Any,
    cfg: TrainConfig,
    device: torch.device | str | None = None,
) -> History:
    """Train `model` on ``(X, y)`` with SGD and the MSE loss with output scale α.

    Each epoch: set the learning rate :func:`learning_rate` ``(cfg, epoch)``; for full
    batch, one gradient step on ``ℓ = (1/N) Σ_i ‖α f(x_i) − y_i‖²``; for mini-batches, one
    step per slice of a random permutation (the last batch may be smaller). After the epoch,
    training stops if the epoch loss is below ``cfg.loss_threshold`` (``converged=True``)
    or is NaN/Inf (``converged=False``).

    The model is moved to `device` and left there, **in eval() mode**, after training.
    ``X`` is cast to the model's parameter dtype, so a float64 model trains in float64.
    On the CPU the same ``cfg.seed`` gives the same history and weights.

    Parameters
    ----------
    model : nn.Module
        A network mapping (B, D_in) to (B, K) logits, e.g.
        :class:`pncutils.models.DeepLinearNetwork`; its ``in_dim`` and ``num_classes``
        attributes are checked against the data when present. ``eval_every`` needs a
        ``model.features`` method.
    X : Tensor or ndarray, shape (N, D_in)
        Inputs, one row per sample.
    y : Tensor or ndarray, shape (N,)
        Integer labels in ``[0, K)``.
    cfg : TrainConfig
        Hyper-parameters.
    device : torch.device or str, optional
        Where to train; :func:`pncutils.utils.get_device` when omitted.

    Returns
    -------
    History
        Per-epoch loss and learning rate, stopping information, per-layer tables at epochs
        ``0, k, 2k, …`` and at the end (with ``cfg.eval_every = k``).

    Examples
    --------
    >>> from pncutils.models import DeepLinearNetwork
    >>> g = torch.Generator().manual_seed(0)
    >>> X = torch.randn(12, 16, generator=g, dtype=torch.float64); y = torch.arange(12) % 3
    >>> net = DeepLinearNetwork(16, 16, 3, depth=3, init_scale=0.5, generator=g).double()
    >>> h = train(net, X, y, TrainConfig(lr=0.1, epochs=200, progress=False), device="cpu")
    >>> h.loss[-1] < 0.1 * h.loss[0], h.epochs_run
    (True, 200)

    Used in: ch02, ch05, ch06.
    """
    dev, dtype, X, y, K, B = _train_inputs(model, X, y, cfg, device)
    T = _targets(y, K, cfg.loss, dtype)  # (N, K) one-hot, or (N,) labels
    # one fused kernel per step on CUDA (the `fused` argument exists only in torch >= 2.3)
    fused = {"fused": True} if dev.type == "cuda" else {}
    opt = torch.optim.SGD(
        model.parameters(),
        lr=cfg.lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        **fused,
    )
    alpha, kind = cfg.alpha, cfg.loss

    def batch_loss(xb: Tensor, tb: Tensor) -> Tensor:
        return _loss(model(xb), tb, alpha, kind)

    loss_fn = torch.compile(batch_loss) if cfg.compile else batch_loss
    order_gen = torch.Generator().manual_seed(cfg.seed)
    hist = History(device=device_name(dev), config=dataclasses.asdict(cfg))

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    model.train()
    epochs = _epochs_iter(cfg)
    for epoch in epochs:
        if cfg.eval_every is not None and epoch % cfg.eval_every == 0:
            hist.metrics[epoch] = _evaluate(model, X, y, K)
        lr = learning_rate(cfg, epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        total = _one_epoch(opt, loss_fn, X, T, None if cfg.batch_size is None else B,
                           order_gen)
        epoch_loss = float(total.item())  # the one device -> host read of the epoch
        hist.loss.append(epoch_loss)
        hist.lr.append(lr)
        if hasattr(epochs, "set_postfix"):
            epochs.set_postfix(loss=f"{epoch_loss:.3g}", refresh=False)
        if not math.isfinite(epoch_loss):
            break
        if cfg.loss_threshold is not None and epoch_loss < cfg.loss_threshold:
            hist.converged = True
            break
    if hasattr(epochs, "close"):
        epochs.close()
    hist.epochs_run = len(hist.loss)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    hist.wall_time = time.perf_counter() - t0
    if cfg.eval_every is not None and hist.epochs_run not in hist.metrics:
        hist.metrics[hist.epochs_run] = _evaluate(model, X, y, K)
    model.eval()
    return hist


def _train_inputs(model: Any, X: Any, y: Any, cfg: Any, device: Any
                  ) -> tuple[torch.device, torch.dtype, Tensor, Tensor, int, int]:
    """Validate `train`'s arguments; the model moves to the device, X and y with it.

    Returns ``(device, dtype, X (N, D_in), y (N,), K, batch size)``.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    dtype = _param_dtype(model)
    dev = _resolve_device(device, dtype)
    X = check_inputs(X, in_dim=getattr(model, "in_dim", None))
    N = X.shape[0]
    model.to(dev)
    X = X.to(device=dev, dtype=dtype)
    K = _num_classes(model, X)
    y = _check_targets(y, N, K).to(dev)
    if not bool(torch.isfinite(X).all()):
        raise ValueError("X contains NaN or Inf values")
    if cfg.eval_every is not None and not hasattr(model, "features"):
        raise ValueError("eval_every needs a model with a features(x) method")
    B = N if cfg.batch_size is None else cfg.batch_size
    if cfg.batch_size is not None and _has_batch_norm(model) and N % B == 1:
        raise ValueError(
            f"N={N} and batch_size={B} leave a last mini-batch of 1 sample, which BatchNorm "
            "cannot normalise in training mode; choose another batch_size"
        )
    return dev, dtype, X, y, K, B


def _one_epoch(opt: torch.optim.Optimizer, loss_fn: Any, X: Tensor, T: Tensor, B: int | None,
               order_gen: torch.Generator) -> Tensor:
    """One pass over the data: one full-batch step when ``B`` is None, else shuffled mini-batches.

    Returns the epoch's mean loss as a 0-d tensor on the data's device (no host read).
    """
    N = X.shape[0]
    if B is None:
        loss = loss_fn(X, T)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()
    perm = torch.randperm(N, generator=order_gen).to(X.device, non_blocking=True)
    total = torch.zeros((), dtype=X.dtype, device=X.device)
    for start in range(0, N, B):
        idx = perm[start : start + B]
        loss = loss_fn(X.index_select(0, idx), T.index_select(0, idx))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach() * idx.shape[0]
    return total / N


# ----------------------------------------------------------------------------------------
# S models at once
# ----------------------------------------------------------------------------------------


def _check_configs(cfg: TrainConfig | Sequence[TrainConfig], S: int) -> list[TrainConfig]:
    if isinstance(cfg, TrainConfig):
        cfgs = [cfg] * S
    else:
        cfgs = list(cfg)
        if len(cfgs) != S:
            raise ValueError(f"got {S} models but {len(cfgs)} configurations")
        for i, c in enumerate(cfgs):
            if not isinstance(c, TrainConfig):
                raise ValueError(f"cfg[{i}] must be a TrainConfig, got {type(c).__name__}")
    for i, c in enumerate(cfgs):
        if c.batch_size is not None:
            raise ValueError(
                f"train_many trains full batch only, but cfg[{i}].batch_size={c.batch_size}; "
                "use train() for mini-batches"
            )
    first = dataclasses.asdict(cfgs[0])
    for i, c in enumerate(cfgs[1:], start=1):
        for name, value in dataclasses.asdict(c).items():
            if name not in _PER_MODEL_FIELDS and value != first[name]:
                raise ValueError(
                    f"all configurations of train_many must share {name!r}: cfg[0].{name}="
                    f"{first[name]!r} but cfg[{i}].{name}={value!r} (only "
                    f"{sorted(_PER_MODEL_FIELDS)} may differ)"
                )
    return cfgs


def _check_models(models: Any) -> list[nn.Module]:
    from pncutils.models import HybridNetwork

    if isinstance(models, nn.Module):
        raise ValueError("models must be a sequence of networks; use train() for one model")
    models = list(models)
    if not models:
        raise ValueError("models is empty")
    shape = None
    for i, m in enumerate(models):
        if not isinstance(m, HybridNetwork) or m.num_nonlinear > 0:
            raise ValueError(
                f"train_many supports deep linear networks only; models[{i}] is "
                f"{type(m).__name__}"
                + (
                    f" with {m.num_nonlinear} nonlinear blocks"
                    if isinstance(m, HybridNetwork)
                    else ""
                )
            )
        s = (m.in_dim, m.width, m.num_classes, m.depth, _param_dtype(m))
        if shape is None:
            shape = s
        elif s != shape:
            raise ValueError(
                "all models must have the same (in_dim, width, num_classes, depth, dtype): "
                f"models[0] has {shape}, models[{i}] has {s}"
            )
    if len({id(m) for m in models}) != len(models):
        raise ValueError("models contains the same network more than once")
    return models


def train_many(
    models: Sequence[nn.Module],
    X: Any,
    y: Any,
    cfg: TrainConfig | Sequence[TrainConfig],
    device: torch.device | str | None = None,
) -> list[History]:
    """Train S same-shaped deep linear networks at once with batched matrix products.

    The S weight stacks ``(S, out, in)`` are trained by full-batch gradient descent on the
    sum of the S losses (whose gradient with respect to model s is that of its own loss),
    with SGD's update ``b ← μ b + (g + λ W)``, ``W ← W − η b`` applied per model. Model s
    stops updating after its first epoch with a loss below its threshold (or a NaN/Inf
    loss), so every model follows the run that :func:`train` would give it, up to
    floating-point summation order. The trained weights are written back into the models,
    which are left on `device` in eval() mode.

    Parameters
    ----------
    models : sequence of DeepLinearNetwork, length S
        Networks of identical shape and dtype (e.g. different seeds or init scales).
        Networks with nonlinear blocks are not supported.
    X : Tensor or ndarray, shape (N, D_in) or (S, N, D_in)
        Inputs shared by all models, or one data set per model.
    y : Tensor or ndarray, shape (N,) or (S, N)
        Labels, shared or per model.
    cfg : TrainConfig or sequence of S TrainConfig
        Full batch only (``batch_size=None``). The configurations may differ in ``lr``,
        ``alpha``, ``momentum``, ``weight_decay``, ``loss_threshold``, ``min_lr_ratio``,
        ``schedule_epochs`` and ``seed``, and must share everything else (``epochs``,
        ``schedule``, ``loss``, ``eval_every``, …). ``compile`` is ignored.
    device : torch.device or str, optional
        Where to train; :func:`pncutils.utils.get_device` when omitted.

    Returns
    -------
    list of History
        One per model, as :func:`train` returns; ``wall_time`` is that of the whole batch.

    Examples
    --------
    >>> from pncutils.models import DeepLinearNetwork
    >>> X = torch.randn(9, 6, dtype=torch.float64); y = torch.arange(9) % 3
    >>> nets = [DeepLinearNetwork(6, 8, 3, depth=3, init_scale=0.5,
    ...                           generator=torch.Generator().manual_seed(s)).double()
    ...         for s in range(4)]
    >>> hs = train_many(nets, X, y, TrainConfig(lr=0.1, epochs=50, progress=False), "cpu")
    >>> len(hs), all(h.final_loss < h.loss[0] for h in hs)
    (4, True)

    Used in: ch03, ch04 (through :mod:`pncutils.book.experiments`).
    """
    models = _check_models(models)
    S = len(models)
    cfgs = _check_configs(cfg, S)
    c0 = cfgs[0]
    ref = models[0]
    dtype = _param_dtype(ref)
    dev = _resolve_device(device, dtype)
    K, L = ref.num_classes, ref.depth

    X, y = _stacked_data(X, y, S, ref.in_dim, K)
    X = X.to(device=dev, dtype=dtype)  # (S, N, D_in)
    y = y.to(dev)  # (S, N)
    if not bool(torch.isfinite(X).all()):
        raise ValueError("X contains NaN or Inf values")
    T = _targets(y, K, c0.loss, dtype)  # (S, N, K) or (S, N)

    for m in models:
        m.to(dev)
    Ws, bufs, (alpha, mom, wd) = _stacked_state(models, cfgs, L, dev, dtype)
    shape3 = (S, 1, 1)
    active = [True] * S
    active_dev = torch.ones(shape3, dtype=torch.bool, device=dev)
    hists = [History(device=device_name(dev), config=dataclasses.asdict(c)) for c in cfgs]

    def write_back(indices: Sequence[int]) -> None:
        with torch.no_grad():
            for s in indices:
                for lin_w, W in zip(models[s].weights(), Ws, strict=True):
                    lin_w.copy_(W[s])

    def evaluate(s: int) -> Any:
        write_back([s])
        return _evaluate(models[s], X[s], y[s], K)

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    epochs = _epochs_iter(c0)
    for epoch in epochs:
        if c0.eval_every is not None and epoch % c0.eval_every == 0:
            for s in range(S):
                if active[s]:
                    hists[s].metrics[epoch] = evaluate(s)
        lrs = [learning_rate(c, epoch) for c in cfgs]
        lr = torch.tensor(lrs, dtype=dtype, device=dev).view(shape3)
        H = X
        for W in Ws:
            H = torch.bmm(H, W.transpose(1, 2))  # (S, N, d_l)
        losses = _loss(H, T, alpha, c0.loss)  # (S,)
        grads = torch.autograd.grad(losses.sum(), Ws)
        _sgd_step(Ws, grads, bufs, lr, mom, wd, active_dev)
        values = losses.detach().cpu().tolist()  # the one device -> host read of the epoch
        stopped = _record(hists, values, lrs, cfgs, active)
        if stopped:
            for s in stopped:
                active[s] = False
            active_dev = torch.tensor(active, device=dev).view(shape3)
        if hasattr(epochs, "set_postfix"):
            epochs.set_postfix(active=sum(active), refresh=False)
        if not any(active):
            break
    if hasattr(epochs, "close"):
        epochs.close()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    wall = time.perf_counter() - t0
    write_back(range(S))
    for s, h in enumerate(hists):
        h.epochs_run = len(h.loss)
        h.wall_time = wall
        if c0.eval_every is not None and h.epochs_run not in h.metrics:
            h.metrics[h.epochs_run] = _evaluate(models[s], X[s], y[s], K)
        models[s].eval()
    return hists


def _stacked_data(X: Any, y: Any, S: int, in_dim: int, K: int) -> tuple[Tensor, Tensor]:
    """`train_many`'s data as ``(S, N, D_in)`` inputs and ``(S, N)`` labels (shared or per run)."""
    X = as_tensor(X, "X")
    if X.ndim == 2:
        X = check_inputs(X, in_dim=in_dim).unsqueeze(0).expand(S, -1, -1)
    elif X.ndim == 3:
        if X.shape[0] != S:
            raise ValueError(f"X has shape {tuple(X.shape)}: its first dimension must be S={S}")
        X = torch.stack([check_inputs(X[s], f"X[{s}]", in_dim) for s in range(S)])
    else:
        raise ValueError(f"X must have shape (N, D_in) or (S, N, D_in), got {tuple(X.shape)}")
    N = X.shape[1]
    y = as_tensor(y, "y")
    if y.ndim == 1:
        y = _check_targets(y, N, K).unsqueeze(0).expand(S, -1)
    elif y.ndim == 2:
        if y.shape[0] != S:
            raise ValueError(f"y has shape {tuple(y.shape)}: its first dimension must be S={S}")
        y = torch.stack([_check_targets(y[s], N, K, f"y[{s}]") for s in range(S)])
    else:
        raise ValueError(f"y must have shape (N,) or (S, N), got {tuple(y.shape)}")
    return X, y


def _sgd_step(Ws: list[Tensor], grads: Sequence[Tensor], bufs: list[Tensor], lr: Tensor,
              mom: Tensor, wd: Tensor, active: Tensor) -> None:
    """One SGD step of every stacked weight, exactly as ``torch.optim.SGD`` (no dampening)."""
    with torch.no_grad():
        for W, g, b in zip(Ws, grads, bufs, strict=True):
            g = g + wd * W  # torch.optim.SGD: weight decay enters the gradient
            b.mul_(mom).add_(g)  # first step: b = g, as torch.optim.SGD
            W.copy_(torch.where(active, W - lr * b, W))


def _record(hists: list[History], values: list[float], lrs: list[float],
            cfgs: list[TrainConfig], active: list[bool]) -> list[int]:
    """Append the epoch to the active runs' histories; return the runs that stop now."""
    stopped = []
    for s, value in enumerate(values):
        if not active[s]:
            continue
        hists[s].loss.append(value)
        hists[s].lr.append(lrs[s])
        thr = cfgs[s].loss_threshold
        if not math.isfinite(value):
            stopped.append(s)
        elif thr is not None and value < thr:
            hists[s].converged = True
            stopped.append(s)
    return stopped


def _stacked_state(models: list[nn.Module], cfgs: list[TrainConfig], L: int,
                   dev: torch.device, dtype: torch.dtype
                   ) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
    """`train_many`'s state: per layer the (S, out, in) weights (leaf tensors, independent of
    the models until written back) and momentum buffers, and the per-run alpha, momentum and
    weight decay as (S, 1, 1) tensors."""
    Ws = [
        torch.stack([m.weights()[layer] for m in models]).to(dev, dtype).requires_grad_(True)
        for layer in range(L)
    ]
    bufs = [torch.zeros_like(W) for W in Ws]
    scalars = [torch.tensor([getattr(c, name) for c in cfgs], dtype=dtype,
                            device=dev).view(len(cfgs), 1, 1)
               for name in ("alpha", "momentum", "weight_decay")]
    return Ws, bufs, scalars
