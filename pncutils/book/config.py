"""The one convention of the book's experiments: a frozen :class:`Config` per scale, a
typed :class:`Result`.

Every experiment of the book is a module (or a section of one) with

* ``SCALES``: a dict ``{"quick": Config, "book": Config, "paper": Config}`` of frozen
  parameters (every Config has a ``seed``). The chapter's ``parameters`` cell takes the
  book scale, or the quick scale in quick mode (``$PNC_QUICK``, set by the notebook tests),
  and may ``replace`` a parameter; every claim it asserts must hold at both scales;
* ``run(config, device) -> SomeResult``: the experiment, returning a frozen dataclass that
  derives from :class:`Result`; its :meth:`Result.to_dict` is the ``"results"`` field of a
  result file (:mod:`pncutils.book.reproduce`) and :meth:`Result.from_dict` reads it back;
* the chapter's plot functions, which take the typed result.

Examples
--------
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Toy(Result):
...     rates: list[float]
...     table: LayerTable
...     fit: Fit | None = None
>>> r = Toy([0.5, float("nan")], LayerTable({"layer": [0, 1], "compression": [2.0, 1.0]}))
>>> d = r.to_dict(); d["rates"], d["table"]["compression"], d["fit"]
([0.5, nan], [2.0, 1.0], None)
>>> back = Toy.from_dict({**d, "rates": [0.5, None]})  # JSON writes NaN as null
>>> back.table == r.table, back.rates
(True, [0.5, nan])
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from pncutils.fits import Fit
from pncutils.metrics import LayerTable
from pncutils.utils import to_plain

__all__ = [
    "Config", "Result", "MeanStd", "mean_std", "LossCurve", "loss_curve", "MAX_CURVE_POINTS",
]


class Config(Mapping[str, Any]):
    """A frozen set of named parameters, read as attributes.

    Parameters
    ----------
    **params
        Parameter names and values (JSON-serialisable: numbers, strings, booleans, None,
        lists and tuples of them).

    Examples
    --------
    >>> cfg = Config(depth=6, eps=0.3, num_seeds=5)
    >>> cfg.depth, cfg.replace(num_seeds=2).num_seeds
    (6, 2)
    >>> cfg
    Config(depth=6, eps=0.3, num_seeds=5)
    >>> cfg.depth = 3
    Traceback (most recent call last):
    ...
    AttributeError: Config is frozen: use cfg.replace(depth=...)
    """

    def __init__(self, **params: Any) -> None:
        for name, value in params.items():
            try:
                json.dumps(value)
            except TypeError as err:
                raise ValueError(f"parameter {name!r} is not JSON-serialisable: {err}") from err
        object.__setattr__(self, "_params", dict(params))

    def __getattr__(self, name: str) -> Any:
        params = self.__dict__.get("_params", {})
        if name in params:
            return params[name]
        raise AttributeError(f"no parameter {name!r}; parameters are {sorted(params)}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Config is frozen: use cfg.replace({name}=...)")

    def __getitem__(self, name: str) -> Any:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def replace(self, **changes: Any) -> Config:
        """A copy with some parameters changed; unknown names raise a ValueError."""
        unknown = sorted(set(changes) - set(self._params))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown}; parameters are {sorted(self)}")
        return Config(**{**self._params, **changes})

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict."""
        return dict(self._params)

    def digest(self) -> str:
        """A short SHA-256 of the sorted JSON of the parameters (for result files)."""
        text = json.dumps(self._params, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"Config({inner})"


def _typed(tp: Any, value: Any, where: str) -> Any:
    """``value`` read from JSON as the annotated type ``tp`` (nested results, tables, fits)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _typed(inner[0], value, where) if len(inner) == 1 else value
    if tp is float:
        return math.nan if value is None else float(value)
    if isinstance(tp, type) and issubclass(tp, Result | LayerTable | Fit):
        return tp.from_dict(value)
    if tp is Config:
        return Config(**value)
    if origin in (dict, Mapping) and args:
        return {k: _typed(args[1], v, f"{where}[{k!r}]") for k, v in value.items()}
    if origin is list and args:
        return [_typed(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple and args:
        kinds = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        return tuple(_typed(k, v, where) for k, v in zip(kinds, value, strict=True))
    return value


@dataclasses.dataclass(frozen=True)
class Result:
    """Base of every experiment's typed result: a frozen dataclass that round-trips to JSON.

    Subclasses declare typed fields; fields may be numbers, strings, lists, dicts,
    :class:`~pncutils.metrics.LayerTable`, :class:`~pncutils.fits.Fit`, :class:`Config` or
    other :class:`Result` classes (nested), and ``X | None``. ``from_dict(to_dict())`` gives
    the result back (NaN survives as JSON ``null`` in float fields).
    """

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain, JSON-ready values (NaN kept: the writer maps it to null)."""
        return {f.name: to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        """Inverse of :meth:`to_dict`; unknown or missing fields raise a ValueError."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{cls.__name__}.from_dict needs a mapping, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f"{cls.__name__} has no field(s) {unknown}; fields are {names}")
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        missing = [n for n in required if n not in data]
        if missing:
            raise ValueError(f"{cls.__name__} is missing field(s) {missing}")
        return cls(**{n: _typed(hints[n], data[n], n) for n in names if n in data})


@dataclasses.dataclass(frozen=True)
class MeanStd(Result):
    """Mean and sample standard deviation over seeds (``std = 0`` for one value).

    >>> mean_std([1.0, 2.0, 3.0])
    MeanStd(mean=2.0, std=1.0)
    >>> MeanStd.from_dict(mean_std([4.0]).to_dict())
    MeanStd(mean=4.0, std=0.0)
    """

    mean: float
    std: float


def mean_std(values: Any) -> MeanStd:
    """The :class:`MeanStd` of a sequence of numbers (float64; NaN when empty)."""
    import torch

    t = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    if t.numel() == 0:
        return MeanStd(math.nan, math.nan)
    return MeanStd(float(t.mean()), float(t.std()) if t.numel() > 1 else 0.0)


#: Loss curves in result files keep at most this many epochs (first and last included).
MAX_CURVE_POINTS = 200


@dataclasses.dataclass(frozen=True)
class LossCurve(Result):
    """A training loss curve at evenly spaced epochs (0-based)."""

    epoch: list[int]
    loss: list[float]


def loss_curve(values: Any, max_points: int = MAX_CURVE_POINTS) -> LossCurve:
    """The :class:`LossCurve` of per-epoch losses, at most `max_points` evenly spaced epochs.

    >>> c = loss_curve([float(i) for i in range(1000)], max_points=3)
    >>> c.epoch, c.loss
    ([0, 500, 999], [0.0, 500.0, 999.0])
    """
    values = [float(v) for v in values]
    n = len(values)
    if n <= max_points:
        idx = list(range(n))
    else:
        idx = sorted({round(i * (n - 1) / (max_points - 1)) for i in range(max_points)})
    return LossCurve(idx, [values[i] for i in idx])
