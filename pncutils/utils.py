"""Seeds, devices, the environment (quick mode, Colab) and plain-JSON conversion.

See Also
--------
book/intro.md : how the book uses quick mode and the device.
"""

from __future__ import annotations

import math
import os
import random
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = [
    "seed_everything", "get_device", "quick_mode", "is_colab", "progress_enabled", "device_name",
    "to_plain",
]

_DEVICES = ("cpu", "cuda", "mps")


def seed_everything(seed: int) -> torch.Generator:
    """Seed ``random``, numpy and torch (and CUDA), and return a seeded CPU generator.

    Parameters
    ----------
    seed : int
        Non-negative seed.

    Returns
    -------
    torch.Generator
        A CPU generator seeded with `seed`; pass it as ``generator=`` to the data and
        model constructors so that the data do not depend on other random draws.

    Examples
    --------
    >>> g = seed_everything(0)
    >>> a = torch.rand(2, generator=g); b = torch.rand(2, generator=seed_everything(0))
    >>> bool(torch.equal(a, b))
    True

    Used in: ch01, ch02, ch03, ch04, ch06, ch08.
    """
    from pncutils._checks import check_int

    seed = check_int(seed, "seed", minimum=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (seeds the legacy global RNG)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return torch.Generator().manual_seed(seed)


def get_device() -> torch.device:
    """Best available device: CUDA, then MPS, then CPU; ``$PNC_DEVICE`` overrides.

    Returns
    -------
    torch.device

    Examples
    --------
    >>> get_device().type in ("cpu", "cuda", "mps")
    True

    Used in: ch05, ch06, ch07, ch08, ch09.
    """
    forced = os.environ.get("PNC_DEVICE", "").strip()
    if forced:
        kind = forced.split(":")[0]
        if kind not in _DEVICES:
            raise ValueError(f"PNC_DEVICE must name one of {_DEVICES}, got {forced!r}")
        if kind == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"PNC_DEVICE={forced!r} but CUDA is not available")
        if kind == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"PNC_DEVICE={forced!r} but MPS is not available")
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_name(device: torch.device | str | None = None) -> str:
    """Human-readable name of a device, e.g. ``"NVIDIA H100 80GB HBM3"`` or ``"cpu"``.

    Examples
    --------
    >>> device_name("cpu")
    'cpu'
    """
    device = torch.device(device) if device is not None else get_device()
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


def quick_mode() -> bool:
    """Whether quick mode is on (``$PNC_QUICK`` set to anything but ``""``, ``0`` or ``false``).

    Quick mode shrinks every chapter's configuration so that the notebook tests run in
    seconds; all of a chapter's checks must hold in both modes.

    Examples
    --------
    >>> import os; old = os.environ.pop("PNC_QUICK", None)
    >>> quick_mode()
    False
    >>> os.environ["PNC_QUICK"] = "1"; quick_mode()
    True
    >>> _ = os.environ.pop("PNC_QUICK") if old is None else os.environ.update(PNC_QUICK=old)

    Used in: ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09.
    """
    return os.environ.get("PNC_QUICK", "").strip().lower() not in ("", "0", "false", "no")


def is_colab() -> bool:
    """Whether the code runs inside Google Colab.

    Examples
    --------
    >>> is_colab()
    False
    """
    return "google.colab" in sys.modules


def _in_notebook() -> bool:
    """Whether the code runs in a Jupyter kernel (Jupyter, JupyterLab, Colab, VS Code)."""
    if "ipykernel" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - ipykernel always brings IPython
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def progress_enabled() -> bool:
    """Whether long runs show a progress bar by default (``TrainConfig(progress=None)``).

    ``$PNC_PROGRESS`` decides when set (``1``/``true``: on; ``0``/``false``: off; the
    Makefile sets it to 0 so that built pages and test logs hold no bars). Otherwise the bar
    is on outside quick mode when someone watches: in a terminal (stderr is a TTY) or in a
    Jupyter kernel (Colab included), where ``tqdm.auto`` draws a widget.

    Examples
    --------
    >>> import os; old = os.environ.get("PNC_PROGRESS")
    >>> os.environ["PNC_PROGRESS"] = "0"; progress_enabled()
    False
    >>> os.environ["PNC_PROGRESS"] = "1"; progress_enabled()
    True
    >>> _ = os.environ.pop("PNC_PROGRESS") if old is None else os.environ.update(PNC_PROGRESS=old)
    """
    env = os.environ.get("PNC_PROGRESS", "").strip().lower()
    if env in ("0", "false", "no", "off"):
        return False
    if env:
        return True
    if quick_mode():
        return False
    return bool(sys.stderr is not None and sys.stderr.isatty()) or _in_notebook()


def to_plain(obj: Any, nan_as_none: bool = False, strict: bool = False) -> Any:
    """Plain Python containers of `obj`: anything with ``to_dict`` (tables, fits, results,
    configs) through it, tensors and numpy values as lists and numbers, tuples as lists.

    Parameters
    ----------
    obj : Any
    nan_as_none : bool, default False
        Write non-finite floats as None (standard JSON has no NaN).
    strict : bool, default False
        Raise a ValueError for a value that is not a JSON type (instead of passing it on).

    Examples
    --------
    >>> to_plain({"a": torch.tensor([1.5, float("nan")]), "b": (np.int64(2), "x")})
    {'a': [1.5, nan], 'b': [2, 'x']}
    >>> to_plain([float("inf")], nan_as_none=True)
    [None]
    >>> to_plain(object(), strict=True)
    Traceback (most recent call last):
    ...
    ValueError: cannot write a object as JSON
    """
    def conv(v: Any) -> Any:
        if hasattr(v, "to_dict") and callable(v.to_dict):
            return conv(v.to_dict())
        if isinstance(v, Mapping):
            return {str(k): conv(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [conv(x) for x in v]
        if isinstance(v, torch.Tensor):
            return conv(v.detach().cpu().tolist())
        if hasattr(v, "tolist") and callable(v.tolist):  # numpy arrays and scalars
            return conv(v.tolist())
        if isinstance(v, float):
            return None if nan_as_none and not math.isfinite(v) else v
        if strict and not (v is None or isinstance(v, bool | int | str)):
            raise ValueError(f"cannot write a {type(v).__name__} as JSON")
        return v

    return conv(obj)
