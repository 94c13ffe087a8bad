"""Fits of per-layer curves: one typed result, :class:`Fit`, for lines, geometric decays and
geometric decays towards a floor.

The paper's two laws are fits over layers: ``D_l`` grows **linearly** (a line in ``l``) and
``C_l`` decays **geometrically** (a line in ``log C_l``, rate ``exp(slope)``). Where the
network does not interpolate, ``C_l`` decays towards a **floor** ``C_L`` (chapter 5): a line
in ``log(C_l - floor)``. All three return a :class:`Fit`, which also records the layers
fitted, the largest deviation from the fit and the per-layer ratios.

Examples
--------
>>> from pncutils import fits
>>> f = fits.geometric([8.0, 4.0, 2.0, 1.0])
>>> round(f.rate, 12), round(f.r2, 12), f.layers
(0.5, 1.0, (0, 1, 2, 3))
>>> fits.linear([0.5, 0.9, 0.92, 0.94], start=1).slope  # doctest: +ELLIPSIS
0.0199999...
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from pncutils._checks import as_tensor, check_float, check_int

__all__ = ["Fit", "line", "linear", "geometric", "floor", "mean_ratio"]

class Fit(NamedTuple):
    """A least-squares fit over layers.

    ``kind = "linear"``: ``y_l ~ slope * l + intercept``. ``kind = "geometric"``:
    ``log C_l ~ slope * l + intercept`` (``floor = 0``). ``kind = "floor"``:
    ``log(C_l - floor) ~ slope * l + intercept``.

    Attributes
    ----------
    slope, intercept : float
        Of the fitted line (natural logs for the geometric kinds).
    r2 : float
        ``1 - SS_res / SS_tot`` of the fitted line (1 for a perfect fit, also when the
        values are constant and fitted exactly).
    kind : {"linear", "geometric", "floor"}
    layers : tuple of int or float
        The abscissae fitted (layer indices), in order.
    floor : float
        The floor (``0.0`` for a geometric fit; NaN for a line).
    max_deviation : float
        Largest absolute residual: in the values' units for a line, in decades
        (``log10``) for the geometric kinds.
    ratios : tuple of float
        ``v_{l+1} / v_l`` of the fitted values (the excess over the floor for ``"floor"``);
        empty for a line.

    Used in: ch03, ch05, ch06, ch07, ch08 (the result of every fit).
    """

    slope: float
    intercept: float
    r2: float
    kind: str = "linear"
    layers: tuple = ()
    floor: float = math.nan
    max_deviation: float = math.nan
    ratios: tuple = ()

    @property
    def rate(self) -> float:
        """``exp(slope)``: the fitted factor per layer (NaN for a line)."""
        return math.nan if self.kind == "linear" else math.exp(self.slope)

    @property
    def total_ratio(self) -> float:
        """Last over first fitted value (product of :attr:`ratios`; NaN for a line)."""
        return math.prod(self.ratios) if self.ratios else math.nan

    def stall_layer(self, ratio: float = 0.9) -> int | None:
        """First fitted layer ``l`` whose ratio ``v_{l+1} / v_l`` exceeds `ratio`, or None.

        >>> geometric([1.0, 0.1, 0.01, 0.0095]).stall_layer()
        2
        """
        ratio = check_float(ratio, "ratio", minimum=0.0, strict=True)
        return next((int(self.layers[i]) for i, r in enumerate(self.ratios) if r > ratio), None)

    def predict(self, layers: Any) -> torch.Tensor:
        """The fitted curve at `layers` (values, not logs), float64.

        >>> geometric([8.0, 4.0, 2.0]).predict([3])
        tensor([1.0000], dtype=torch.float64)
        """
        x = torch.as_tensor(layers, dtype=torch.float64).reshape(-1)
        v = self.slope * x + self.intercept
        if self.kind == "linear":
            return v
        return v.exp() + self.floor

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (``rate`` included), for result files."""
        out = self._asdict()
        out["layers"], out["ratios"] = list(self.layers), list(self.ratios)
        out["rate"] = self.rate
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Fit:
        """Inverse of :meth:`to_dict` (``rate`` is recomputed; JSON nulls read as NaN)."""
        fields = {k: data[k] for k in cls._fields if k in data}
        for k in ("floor", "max_deviation"):
            if k in fields and fields[k] is None:
                fields[k] = math.nan
        fields["layers"] = tuple(fields.get("layers", ()))
        fields["ratios"] = tuple(fields.get("ratios", ()))
        return cls(**fields)

    def __repr__(self) -> str:
        body = f"slope={self.slope:.6g}, intercept={self.intercept:.6g}, r2={self.r2:.6g}"
        if self.kind == "linear":
            return f"Fit({body})"
        extra = f", floor={self.floor:.6g}" if self.kind == "floor" else ""
        return f"Fit({self.kind}: rate={self.rate:.6g}, {body}{extra})"


def _vector(values: Any, name: str) -> torch.Tensor:
    return as_tensor(values, name).detach().to("cpu", torch.float64).reshape(-1)


def line(x: Any, y: Any) -> Fit:
    """Fit a straight line ``y ~ slope * x + intercept`` by least squares, with R^2.

    Parameters
    ----------
    x, y : sequence or Tensor, shape (P,)
        At least two finite points; ``x`` not all equal.

    Returns
    -------
    Fit
        ``kind = "linear"``, ``layers = x``.

    Examples
    --------
    >>> line([0, 1, 2], [1.0, 3.0, 5.0])
    Fit(slope=2, intercept=1, r2=1)

    Used in: ch03, ch05, ch07 (through :func:`linear` and :func:`geometric`).
    """
    x, y = _vector(x, "x"), _vector(y, "y")
    if x.numel() != y.numel():
        raise ValueError(f"x has {x.numel()} values but y has {y.numel()}")
    if x.numel() < 2:
        raise ValueError("a line needs at least two points")
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise ValueError("x and y must be finite (take logs of positive values only)")
    xc, yc = x - x.mean(), y - y.mean()
    sxx = float(xc @ xc)
    if sxx == 0.0:
        raise ValueError("x values are all equal: the slope is undefined")
    slope = float(xc @ yc) / sxx
    intercept = float(y.mean()) - slope * float(x.mean())
    ss_tot = float(yc @ yc)
    resid = y - (slope * x + intercept)
    ss_res = float(resid @ resid)
    r2 = 1.0 if ss_tot == 0.0 else 1.0 - ss_res / ss_tot
    layers = tuple(int(v) if float(v).is_integer() else float(v) for v in x.tolist())
    return Fit(slope, intercept, r2, "linear", layers, math.nan, float(resid.abs().max()), ())


def _layers(n: int, layers: Any | None) -> list:
    if layers is None:
        return list(range(n))
    idx = layers.tolist() if hasattr(layers, "tolist") else list(layers)
    if len(idx) != n:
        raise ValueError(f"values has {n} entries but layers has {len(idx)}")
    return idx


def _from(values: torch.Tensor, start: int) -> torch.Tensor:
    start = check_int(start, "start", minimum=0)
    if values.numel() - start < 2:
        raise ValueError(
            f"a fit from layer {start} on needs at least {start + 2} values, got {values.numel()}"
        )
    return values


def linear(values: Any, layers: Any | None = None, start: int = 0) -> Fit:
    """Least-squares line through per-layer values ``v_l`` against ``l`` (e.g. ``D_l``).

    Parameters
    ----------
    values : sequence or Tensor, shape (P,)
    layers : sequence, shape (P,), optional
        The layer index of each value; ``0 .. P-1`` when omitted.
    start : int, default 0
        Position of the first value fitted (the paper fits ``D_l`` from ``start = 1``).

    Returns
    -------
    Fit
        ``kind = "linear"``.

    Examples
    --------
    >>> round(linear([0.5, 0.9, 0.92, 0.94], start=1).slope, 12)  # D_0 left out
    0.02

    Used in: ch03, ch04.
    """
    v = _from(_vector(values, "values"), start)
    idx = _layers(v.numel(), layers)
    return line(idx[start:], v[start:])


def geometric(values: Any, layers: Any | None = None, start: int = 0) -> Fit:
    """Geometric decay: least squares of ``log v_l`` against ``l``; ``rate = exp(slope)``.

    Parameters
    ----------
    values : sequence or Tensor, shape (P,)
        Positive, finite ``v_l`` (e.g. the compression ``C_l``).
    layers : sequence, shape (P,), optional
        The layer index of each value; ``0 .. P-1`` when omitted.
    start : int, default 0
        Position of the first value fitted (1: the hidden layers, as the rates of chapter 3).

    Returns
    -------
    Fit
        ``kind = "geometric"``, ``floor = 0``, ``max_deviation`` in decades, ``ratios`` the
        consecutive ``v_{l+1} / v_l`` of the fitted values.

    Examples
    --------
    >>> f = geometric([5.0, 1.0, 0.5, 0.25, 0.125], start=1)  # exactly geometric from l = 1
    >>> round(f.rate, 12), round(f.r2, 12), round(f.max_deviation, 12), f.stall_layer()
    (0.5, 1.0, 0.0, None)
    >>> geometric([1.0, 0.0])
    Traceback (most recent call last):
    ...
    ValueError: values must be positive and finite for a geometric fit

    Used in: ch03, ch05, ch06, ch07, ch08.
    """
    v = _from(_vector(values, "values"), start)
    idx = _layers(v.numel(), layers)
    v = v[start:]
    if not (torch.isfinite(v).all() and (v > 0).all()):
        raise ValueError("values must be positive and finite for a geometric fit")
    return _log_fit(v, idx[start:], "geometric", 0.0)


def _log_fit(v: torch.Tensor, idx: list, kind: str, floor_value: float) -> Fit:
    f = line(idx, v.log())
    dev = f.max_deviation / math.log(10.0)
    ratios = tuple((v[1:] / v[:-1]).tolist())
    return Fit(f.slope, f.intercept, f.r2, kind, f.layers, floor_value, dev, ratios)


def floor(values: Any, floor: float, layers: Any | None = None, tol: float = 0.02) -> Fit:
    """Geometric decay towards a floor: least squares of ``log(C_l - floor)`` against ``l``.

    When a network does not interpolate, its linear layers shrink the within-class spread
    outside the directions they pass on geometrically, while the part inside them reaches the
    outputs unchanged (chapter 5): ``C_l ~ floor + A rho^l`` with ``floor`` the outputs'
    ``C_L``. Layers already on the floor (``C_l <= (1 + tol) floor``, where the excess is lost
    in the noise) are left out of the fit.

    Parameters
    ----------
    values : sequence or Tensor, shape (P,)
        ``C_l`` of the layers to describe (e.g. the linear layers of a hybrid network).
    floor : float
        The floor, ``>= 0`` (``0`` gives the plain geometric fit).
    layers : sequence, shape (P,), optional
        The layer indices ``l``; ``0, 1, ...`` when omitted.
    tol : float, default 0.02
        Relative margin above the floor below which a layer counts as on the floor.

    Returns
    -------
    Fit
        ``kind = "floor"``; ``layers`` are those fitted, ``ratios`` those of the excess,
        ``rate = exp(slope)`` the per-layer factor of the excess.

    Raises
    ------
    ValueError
        Fewer than three layers above the floor, mismatched lengths, or a negative floor.

    Examples
    --------
    >>> C = [0.5 + 8.0 * 0.25**l for l in range(5)]  # floor 0.5, rate 0.25
    >>> f = floor(C, 0.5)
    >>> f.layers, round(f.rate, 12), round(f.r2, 12)
    ((0, 1, 2, 3, 4), 0.25, 1.0)
    >>> floor([2.0, 1.0, 0.51, 0.5], 0.5)  # the last two sit on the floor
    Traceback (most recent call last):
    ...
    ValueError: only 2 layer(s) lie above 1.02 x the floor 0.5: a fit needs three

    Used in: ch05, ch06, ch07.
    """
    C = _vector(values, "values")
    idx = _layers(C.numel(), layers)
    floor_value = check_float(floor, "floor", minimum=0.0)
    tol = check_float(tol, "tol", minimum=0.0)
    keep = [i for i in range(C.numel()) if float(C[i]) > (1.0 + tol) * floor_value]
    if len(keep) < 3:
        raise ValueError(
            f"only {len(keep)} layer(s) lie above {1 + tol:g} x the floor {floor_value:g}: "
            "a fit needs three"
        )
    excess = C[keep] - floor_value
    if not torch.isfinite(excess).all():
        raise ValueError("values must be finite")
    return _log_fit(excess, [idx[i] for i in keep], "floor", floor_value)


def mean_ratio(values: Any) -> float:
    """Mean per-layer ratio ``(v_last / v_first)^{1/(P-1)}`` = geometric mean of ``v_{l+1}/v_l``.

    Unlike :func:`geometric` (a least-squares rate), it depends on the end points only.

    Parameters
    ----------
    values : sequence or Tensor, shape (P,)
        Positive per-layer values (e.g. ``table.compression[1:]``), ``P >= 2``.

    Returns
    -------
    float

    Examples
    --------
    >>> round(mean_ratio([8.0, 4.0, 2.0, 1.0]), 12)
    0.5

    Used in: ch03, ch08.
    """
    v = _vector(values, "values")
    if v.numel() < 2:
        raise ValueError("a rate needs at least two values")
    if not (v > 0).all() or not torch.isfinite(v).all():
        raise ValueError("values must be positive and finite")
    return float(torch.exp(torch.log(v[1:] / v[:-1]).mean()))

