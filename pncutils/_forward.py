"""Run a model over data in eval mode: the one loop that every caller of the package uses.

:func:`eval_mode` puts a model (every submodule) in eval mode and restores each module's own
flag afterwards, even when the body raises; :func:`outputs` runs the model (or a function of
it) over row batches under :func:`torch.no_grad`; :func:`accuracy` and :func:`features` are
the two common uses. :func:`pncutils.measure` streams through the same context manager.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from pncutils._checks import check_device, check_int

__all__ = ["eval_mode", "model_device", "outputs", "accuracy", "features"]


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for the body; every module's own training flag is restored afterwards.

    >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout()); net[1].train(False)
    Dropout(p=0.5, inplace=False)
    >>> with eval_mode(net):
    ...     net[0].training
    False
    >>> net.training, net[1].training  # restored module by module
    (True, False)
    """
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def model_device(model: nn.Module, device: Any = None) -> torch.device:
    """`device` if given, else the device of the model's first parameter or buffer (else CPU).

    >>> model_device(nn.Linear(2, 2)), model_device(nn.ReLU(), "cpu")
    (device(type='cpu'), device(type='cpu'))
    """
    if device is not None:
        return check_device(device)
    for tensor in [*model.parameters(), *model.buffers()]:
        return tensor.device
    return torch.device("cpu")


def _dtype(model: nn.Module) -> torch.dtype | None:
    for p in model.parameters():
        return p.dtype
    return None


def outputs(model: nn.Module, X: Tensor, batch_size: int,
            fn: Callable[[Tensor], Any] | None = None, device: Any = None
            ) -> Iterator[tuple[int, Any]]:
    """``(start, fn(X[start:start + batch_size]))`` over row batches, in eval mode, no grad.

    Each batch is moved to the model's device (or `device`) and, for a floating input, to
    the dtype of the model's parameters. `fn` defaults to the model itself (its logits);
    ``model.features`` gives the per-layer features of the book's networks.

    Parameters
    ----------
    model : nn.Module
    X : Tensor, shape (N, ...)
    batch_size : int
        Rows per batch, ``>= 1``.
    fn : callable, optional
        What to compute from a batch; ``model`` when omitted.
    device : torch.device or str, optional

    Yields
    ------
    (int, Any)
        The first row of the batch and `fn`'s output.

    Examples
    --------
    >>> net = nn.Linear(3, 2)
    >>> [(a, tuple(out.shape)) for a, out in outputs(net, torch.zeros(5, 3), 2)]
    [(0, (2, 2)), (2, (2, 2)), (4, (1, 2))]
    """
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    dev, dtype = model_device(model, device), _dtype(model)
    call = model if fn is None else fn
    with eval_mode(model), torch.no_grad():
        for a in range(0, X.shape[0], batch_size):
            xb = X[a : a + batch_size]
            xb = xb.to(dev, dtype) if xb.is_floating_point() and dtype else xb.to(dev)
            yield a, call(xb)


def accuracy(model: nn.Module, X: Tensor, y: Tensor, batch_size: int = 4096,
             device: Any = None) -> float:
    """Top-1 accuracy of the model's own outputs ``(N, K)`` on ``(X, y)``, in eval mode.

    >>> net = nn.Linear(2, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = net.weight.copy_(torch.eye(2))
    >>> accuracy(net, torch.tensor([[1., 0.], [0., 1.], [2., 3.]]), torch.tensor([0, 1, 0]))
    0.6666666666666666
    """
    if X.shape[0] == 0:
        raise ValueError("accuracy of an empty set is undefined")
    correct = 0
    for a, out in outputs(model, X, batch_size, device=device):
        correct += int((out.argmax(1) == y[a : a + out.shape[0]].to(out.device)).sum())
    return correct / X.shape[0]


def features(model: nn.Module, X: Tensor, batch_size: int, layers: Sequence[int],
             device: Any = None) -> list[Tensor]:
    """``model.features(X)[l]`` for every ``l`` of `layers`, batch by batch, concatenated.

    For the book's networks (:class:`pncutils.models.HybridNetwork` and its subclasses),
    whose ``features`` returns the list of per-layer features (row 0: the input). Any other
    model is measured with :func:`pncutils.measure`.

    >>> from pncutils.models import DeepLinearNetwork
    >>> net = DeepLinearNetwork(4, 3, 2, depth=3)
    >>> [tuple(h.shape) for h in features(net, torch.randn(5, 4), 2, [0, 2])]
    [(5, 4), (5, 3)]
    """
    if not layers:
        raise ValueError("layers is empty: give at least one layer index")
    out: list[list[Tensor]] = [[] for _ in layers]
    for _, feats in outputs(model, X, batch_size, model.features, device):  # type: ignore[arg-type]
        if max(layers) >= len(feats):
            raise ValueError(
                f"layer {max(layers)} requested but the model has {len(feats)} feature layers"
            )
        for j, i in enumerate(layers):
            out[j].append(feats[i])
    return [torch.cat(parts) for parts in out]
