"""Argument validation shared by the public functions (private module).

Every public function of :mod:`pncutils` validates its arguments here and raises a
:class:`ValueError` whose message names the problem. None of these helpers modifies
its input: conversions always produce new tensors.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__: list[str] = []


def _compute_device(x: Tensor) -> torch.device:
    """Device on which float64 work on `x` is done (MPS has no float64: use the CPU)."""
    return torch.device("cpu") if x.device.type == "mps" else x.device


def as_tensor(x: Any, name: str) -> Tensor:
    """Return `x` as a torch tensor without copying torch inputs.

    numpy arrays and nested sequences are converted; anything else raises.
    """
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray | list | tuple | numbers.Number):
        try:
            return torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} could not be converted to a tensor: {err}") from err
    raise ValueError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")


def check_features(H: Any, name: str = "H") -> Tensor:
    """Validate a feature matrix and return it as a float64 tensor (a new tensor).

    Raises if `H` is not 2-D, is empty, is not real-valued, or holds NaN/Inf.
    """
    H = as_tensor(H, name)
    if H.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D with shape (N, D) (one row per sample), got shape {tuple(H.shape)}"
        )
    if H.shape[0] == 0 or H.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(H.shape)}")
    if H.dtype == torch.bool or H.is_complex():
        raise ValueError(f"{name} must be real-valued, got dtype {H.dtype}")
    # metrics are not differentiable: detach, so that features straight from a model (which
    # require grad) work without torch.no_grad()
    H = H.detach().to(device=_compute_device(H), dtype=torch.float64)
    # one cheap reduction: a NaN or Inf anywhere makes the sum non-finite (the element-wise
    # test runs only then, to count them, or to clear a sum that merely overflowed)
    if not torch.isfinite(H.sum()):
        bad = int((~torch.isfinite(H)).sum())
        if bad:
            raise ValueError(f"{name} contains {bad} NaN or Inf value(s)")
    return H


def check_labels(
    y: Any,
    num_samples: int,
    num_classes: int | None = None,
    device: torch.device | None = None,
    require_all: bool = True,
    name: str = "y",
    rows: str = "H",
    hint: str = "",
) -> tuple[Tensor, int]:
    """Validate integer labels and return ``(y as int64 on device, K)``: the one label check.

    Checks: 1-D, length `num_samples` (the rows of `rows`), integer-valued, in ``[0, K)``,
    and (unless ``require_all=False``, for batches and held-out labels checked against a known
    K) at least two classes with every class in ``[0, K)`` holding at least one sample. `name`
    names the labels in the messages, `hint` is appended to the out-of-range message.
    """
    y = as_tensor(y, name)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D with shape (N,), got shape {tuple(y.shape)}")
    if y.shape[0] != num_samples:
        raise ValueError(f"{rows} has {num_samples} rows but {name} has {y.shape[0]} labels")
    if y.dtype == torch.bool or y.is_complex():
        raise ValueError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if y.is_floating_point():
        if not torch.isfinite(y).all() or not torch.equal(y, torch.round(y)):
            raise ValueError(f"{name} must hold integer class labels, got non-integer values")
    y = y.to(device=device if device is not None else y.device, dtype=torch.int64)
    if y.numel() and int(y.min()) < 0:
        raise ValueError(f"{name} must hold labels in [0, K), got negative label {int(y.min())}")
    max_label = int(y.max()) if y.numel() else -1
    if num_classes is None:
        num_classes = max_label + 1
    else:
        num_classes = check_int(num_classes, "num_classes", minimum=1)
        if max_label >= num_classes:
            raise ValueError(
                f"{name} must hold labels in [0, {num_classes}), got label {max_label} (out of "
                f"range for num_classes={num_classes}){hint}"
            )
    if not require_all:
        return y, num_classes
    if num_classes < 2:
        raise ValueError(f"at least two classes are needed, got {num_classes}")
    counts = torch.bincount(y, minlength=num_classes)
    empty = torch.nonzero(counts == 0).flatten().tolist()
    if empty:
        raise ValueError(f"class(es) {empty} have no samples (num_classes={num_classes})")
    return y, num_classes


def check_int(value: Any, name: str, minimum: int | None = None) -> int:
    """Return `value` as an ``int``; raise if it is not an integer or is below `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_float(
    value: Any,
    name: str,
    minimum: float | None = None,
    maximum: float | None = None,
    strict: bool = False,
) -> float:
    """Return `value` as a finite ``float`` in range; raise a ValueError otherwise.

    With ``strict=True`` the bounds are exclusive.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum}, got {value}")
    if maximum is not None and (value >= maximum if strict else value > maximum):
        raise ValueError(f"{name} must be {'<' if strict else '<='} {maximum}, got {value}")
    return value


def check_device(device: Any) -> torch.device:
    """``torch.device(device)``, or a ValueError naming what was given (the one device check).

    A CUDA device on a machine without CUDA is refused here, before any work starts.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must name a torch device, got {device!r}") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(dev)!r} requested but CUDA is not available")
    return dev


def check_inputs(X: Any, name: str = "X", in_dim: int | None = None) -> Tensor:
    """A model's inputs: a real 2-D ``(N, D_in)`` tensor with rows (integers become floats).

    The one input check of the package (training and the per-layer report); `in_dim`, when
    given, must be the number of columns.
    """
    X = as_tensor(X, name)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D with shape (N, D_in), got shape {tuple(X.shape)}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} has no rows")
    if X.dtype == torch.bool or X.is_complex():
        raise ValueError(f"{name} must be real-valued, got dtype {X.dtype}")
    if not X.is_floating_point():
        X = X.to(torch.get_default_dtype())
    if in_dim is not None and X.shape[1] != in_dim:
        raise ValueError(
            f"{name} has {X.shape[1]} columns but the model's input dimension is {in_dim}"
        )
    return X


def check_choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    """Raise unless `value` is one of `allowed`; the message lists the allowed values."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value
