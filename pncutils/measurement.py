"""Measure any PyTorch model layer by layer: C_l, D_l, NC1, traces, rank and probes.

:func:`measure` runs a model over data once, captures the outputs of the submodules you
select with forward hooks, reduces feature maps to vectors, and streams them into the float64
accumulator :class:`pncutils.metrics.LayerwiseStats`: features are never stored, so memory is
O(K D) per layer without NC1 and O(D^2) with it. Nothing about the model is assumed beyond
``model(x)``: no ``features`` method, no particular architecture.

Conventions: the rows of the result are the selected layers in the order of
``model.named_modules()``, with the input first and the output (logits) last when included.
The metrics follow :mod:`pncutils.metrics` (``Sigma_W`` divided by N, ``Sigma_B`` by K around
the mean of the uncentred class means, signed-cosine D).

Feature maps are reduced by an explicit choice, recorded per row in ``pooling``:

* ``"avg"`` (what the default ``"auto"`` does to every map but the input, which it
  flattens): global average pooling, ``(B, C, H, W) -> (B, C)`` and
  ``(B, T, D) -> (B, D)`` (the mean over tokens). It is what a network's own head sees after
  its final pooling, it is invariant to where a pattern occurs, and it keeps D small enough
  for the D x D scatter of NC1. It is a choice: within-class variation that lives in the
  spatial layout is averaged out, so ``C`` of a pooled map is not ``C`` of the full map.
* ``"flatten"``: every coordinate, ``(B, C, H, W) -> (B, C H W)`` (exact, but D can be large).
* an integer ``k``: average pooling to a ``k x k`` grid (``k`` tokens for ``(B, T, D)``), then
  flatten: ``(B, C k^2)``, a middle ground.

Three-dimensional outputs are read as ``(B, T, D)`` (tokens, as transformers emit them); a
``Conv1d`` map ``(B, C, L)`` should be measured with ``pool="flatten"`` or an integer grid
(which then pools over ``C``; transpose it in a wrapper module if you want ``L`` pooled).

Used in: ch06 (convolutional and residual networks, through :mod:`pncutils.book.convnets`),
and the library's measurement API for readers' own models.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from pncutils._checks import as_tensor, check_float, check_int
from pncutils._forward import eval_mode, model_device
from pncutils.fits import Fit, geometric
from pncutils.metrics import LayerTable, LayerwiseStats
from pncutils.probes import GramStats, rank_from_singular_values, solve_streamed

__all__ = ["measure", "Measurement", "INPUT", "OUTPUT"]

#: Pseudo-layer names: the model's input and its output (the logits).
INPUT, OUTPUT = "input", "output"
_GLOB = set("*?[")
_DEFAULT_SCATTER_LIMIT = 4 * 2**30  # bytes of float64 D x D scatters, all layers together


@dataclass(frozen=True)
class Measurement:
    """The per-layer table of one :func:`measure` run.

    Attributes
    ----------
    table : LayerTable
        One row per selected layer. Columns: ``layer`` (the row index), ``dim`` (the feature
        dimension after reduction), ``compression``, ``discrimination``, ``nc1`` (NaN with
        ``nc1=False``), ``trace_within``, ``trace_between``; ``rank`` with ``rank=True``;
        ``probe_accuracy`` with ``probe=True`` (held-out accuracy when ``probe_data`` was
        given, else training accuracy), and ``probe_train_accuracy`` with ``probe_train=True``.
    names : tuple of str
        The module name of each row (``"input"``, ``"output"`` for the pseudo-layers).
    pooling : tuple of str
        How each row's output was reduced, e.g. ``"avg (8x4x4 -> 8)"`` or ``"none"``.
    fit : Fit or None
        The geometric fit (:func:`pncutils.fits.geometric`) of ``C`` against the row over
        ``fit_rows`` (None when fewer than two rows or a non-positive C).
    fit_rows : tuple of int
        The rows of the fit.
    num_samples : int
        N, the samples measured.

    Used in: ch06.
    """

    table: LayerTable
    names: tuple[str, ...]
    pooling: tuple[str, ...]
    fit: Fit | None
    fit_rows: tuple[int, ...]
    num_samples: int

    @property
    def rate(self) -> float:
        """The fitted geometric rate per row, ``fit.rate`` (NaN without a fit)."""
        return self.fit.rate if self.fit is not None else math.nan

    def to_pandas(self) -> Any:
        """The table with ``name`` and ``pooling`` columns, as a :class:`pandas.DataFrame`."""
        df = self.table.to_pandas()
        df.insert(1, "name", list(self.names))
        df.insert(2, "pooling", list(self.pooling))
        return df

    def __repr__(self) -> str:
        width = max(len(n) for n in self.names)
        lines = repr(self.table).splitlines()
        out = ["name".ljust(width) + "  " + lines[0]]
        out += [n.ljust(width) + "  " + line for n, line in zip(self.names, lines[1:], strict=True)]
        if self.fit is not None:
            out.append(f"geometric rate of C over rows {list(self.fit_rows)}: {self.rate:.4g} "
                       f"per layer (R^2 = {self.fit.r2:.4f})")
        return "\n".join(out)


# ----------------------------------------------------------------------------------------
# selecting layers
# ----------------------------------------------------------------------------------------


def _selectors(layers: Any) -> list[Any]:
    if isinstance(layers, str | type):
        layers = [layers]
    if not isinstance(layers, Sequence) or not layers:
        raise ValueError("layers must be a name, a glob pattern, a module type, or a non-empty "
                         f"list of them; got {layers!r}")
    for sel in layers:
        if not (isinstance(sel, str) or (isinstance(sel, type) and issubclass(sel, nn.Module))):
            raise ValueError(f"layers: {sel!r} is neither a module name, a glob pattern nor an "
                             "nn.Module subclass")
    return list(layers)


def _select(model: nn.Module, layers: Any) -> list[tuple[str, nn.Module | None]]:
    """The selected ``(name, module)`` pairs in ``named_modules`` order; None for input/output."""
    named = [(n, m) for n, m in model.named_modules() if n]
    if layers is None:
        chosen = {n for n, _ in model.named_children()}
        want_in = want_out = False
    else:
        chosen, want_in, want_out = set(), False, False
        for sel in _selectors(layers):
            if sel == INPUT:
                want_in = True
                continue
            if sel == OUTPUT:
                want_out = True
                continue
            if isinstance(sel, type):
                hits = {n for n, m in named if isinstance(m, sel)}
            elif _GLOB & set(sel):
                hits = {n for n, _ in named if fnmatch.fnmatchcase(n, sel)}
            else:
                hits = {n for n, _ in named if n == sel}
            if not hits:
                close = difflib.get_close_matches(str(getattr(sel, "__name__", sel)),
                                                  [n for n, _ in named], n=5, cutoff=0.4)
                hint = f"; close names: {close}" if close else ""
                raise ValueError(f"layers: {sel!r} matches no submodule of "
                                 f"{type(model).__name__}{hint}")
            chosen |= hits
    rows: list[tuple[str, nn.Module | None]] = [(INPUT, None)] if want_in else []
    rows += [(n, m) for n, m in named if n in chosen]
    if want_out:
        rows.append((OUTPUT, None))
    if not rows:
        raise ValueError(f"{type(model).__name__} has no submodule to measure")
    return rows


# ----------------------------------------------------------------------------------------
# data, pooling, hooks, modes
# ----------------------------------------------------------------------------------------


def _batches(data: Any, batch_size: int) -> Iterable[Any]:
    """``(inputs, labels)`` pairs: a pair of tensors is cut into batches, iterables pass."""
    if isinstance(data, tuple) and len(data) == 2 and all(isinstance(t, Tensor) for t in data):
        X, y = data
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"data: {X.shape[0]} inputs but {y.shape[0]} labels")
        return [(X[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(X), batch_size)]
    if isinstance(data, Tensor) or not isinstance(data, Iterable):
        raise ValueError("data must be a DataLoader, an iterable of (inputs, labels) batches, or "
                         f"a pair (X, y) of tensors; got {type(data).__name__}")
    return data


def _split(batch: Any, index: int) -> tuple[Any, Tensor]:
    if isinstance(batch, dict):
        raise ValueError(f"batch {index} is a dict; give (inputs, labels) pairs")
    if not isinstance(batch, Sequence) or isinstance(batch, Tensor | str) or len(batch) < 2:
        raise ValueError(f"batch {index} has no labels: each batch must be (inputs, labels), "
                         f"got {type(batch).__name__}")
    y = as_tensor(batch[1], "labels")
    if y.ndim != 1:
        raise ValueError(f"batch {index}: labels must be 1-D, got shape {tuple(y.shape)}")
    return batch[0], y


def _pool_spec(pool: Any) -> Any:
    if pool in ("auto", "avg", "flatten"):
        return pool
    if isinstance(pool, int) and not isinstance(pool, bool) and pool >= 1:
        return pool
    raise ValueError(f"pool must be 'auto', 'avg', 'flatten' or a grid size >= 1, got {pool!r}")


def _reduce(t: Tensor, pool: Any, is_input: bool = False) -> tuple[Tensor, str]:
    """One layer's output ``(B, ...)`` as ``(B, D)``, and how it was reduced.

    ``pool="auto"`` flattens the input (the raw data matrix, the paper's layer 0) and
    average-pools every other map; ``"avg"``, ``"flatten"`` and a grid apply to all rows.
    """
    pool = "flatten" if pool == "auto" and is_input else "avg" if pool == "auto" else pool
    if t.ndim == 1:
        return t[:, None], "none"
    if t.ndim == 2:
        return t, "none"
    shape = "x".join(str(s) for s in t.shape[1:])
    if pool == "flatten":
        out = t.reshape(t.shape[0], -1)
    elif t.ndim == 3:  # (B, T, D): tokens
        out = (t.mean(1) if pool == "avg" else
               nn.functional.adaptive_avg_pool1d(t.transpose(1, 2), pool).flatten(1))
    elif t.ndim == 4:  # (B, C, H, W)
        out = (t.mean((2, 3)) if pool == "avg" else
               nn.functional.adaptive_avg_pool2d(t, pool).flatten(1))
    else:
        out = t.flatten(2).mean(2) if pool == "avg" else t.reshape(t.shape[0], -1)
    name = pool if isinstance(pool, str) else f"grid {pool}x{pool}" if t.ndim == 4 else \
        f"grid {pool}"
    return out, f"{name} ({shape} -> {out.shape[1]})"


class _Capture:
    """Forward hooks on the selected modules; each batch's outputs, reduced, in row order."""

    def __init__(self, rows: list[tuple[str, nn.Module | None]], pool: Any) -> None:
        self.rows, self.pool = rows, pool
        self.outputs: dict[str, list[Tensor]] = {}
        self.pooling: dict[str, str] = {}
        self.handles: list[Any] = []

    def __enter__(self) -> _Capture:
        for name, module in self.rows:
            if module is not None:
                self.handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            self.store(name, output)

        return hook

    def store(self, name: str, output: Any) -> None:
        if not isinstance(output, Tensor):
            raise ValueError(f"layer {name!r} returns a {type(output).__name__}, not a tensor: "
                             "select a submodule that returns one")
        reduced, how = _reduce(output, self.pool, is_input=name == INPUT)
        self.outputs.setdefault(name, []).append(reduced)
        self.pooling[name] = how

    def take(self, batch: int) -> list[Tensor]:
        """This batch's features in row order; every layer must have fired exactly once."""
        feats = []
        for name, _ in self.rows:
            got = self.outputs.get(name, [])
            if len(got) != 1:
                what = "never fired" if not got else f"fired {len(got)} times"
                raise ValueError(f"layer {name!r} {what} in the forward pass of batch {batch}"
                                 + ("" if not got else " (a module used more than once?)"))
            feats.append(got[0])
        self.outputs.clear()
        return feats


def _progress(batches: Iterable[Any], progress: bool | None, desc: str) -> Iterable[Any]:
    from pncutils.utils import progress_enabled

    if not (progress_enabled() if progress is None else progress):
        return batches
    from tqdm.auto import tqdm

    total = len(batches) if hasattr(batches, "__len__") else None  # type: ignore[arg-type]
    return tqdm(batches, total=total, desc=desc, leave=False)


def _forward(model: nn.Module, cap: _Capture, x: Any, device: torch.device,
             index: int) -> list[Tensor]:
    x = x.to(device, non_blocking=True) if isinstance(x, Tensor) else x
    out = model(x)
    if any(name == OUTPUT for name, _ in cap.rows):
        cap.store(OUTPUT, out)
    if any(name == INPUT for name, _ in cap.rows):
        if not isinstance(x, Tensor):
            raise ValueError("the input can be measured only when it is a tensor")
        cap.store(INPUT, x)
    return cap.take(index)


def _run(model: nn.Module, rows: list[tuple[str, nn.Module | None]], data: Any, pool: Any,
         device: torch.device, progress: bool | None, consume: Any, desc: str) -> dict[str, str]:
    """Run `model` over `data` in eval mode under inference mode, and `consume(feats, y, i)`."""
    with eval_mode(model), _Capture(rows, pool) as cap, torch.inference_mode():
        for index, batch in enumerate(_progress(data, progress, desc)):
            x, y = _split(batch, index)
            consume(_forward(model, cap, x, device, index), y, index)
        return dict(cap.pooling)


def _named(rows: list[tuple[str, Any]], index: int, err: ValueError, batch: int) -> ValueError:
    text = str(err)
    if text.startswith("layer "):  # LayerwiseStats names the row: say which module it is
        text = text.split(": ", 1)[-1]
        name = rows[index][0]
        return ValueError(f"layer {name!r} (row {index}), batch {batch}: {text}")
    return ValueError(f"batch {batch}: {text}")


def _update(stats: LayerwiseStats, rows: list[tuple[str, Any]], feats: list[Tensor], y: Tensor,
            batch: int) -> None:
    try:
        stats.update(feats, y)
    except ValueError as err:
        layer = int(str(err).split()[1].rstrip(":")) if str(err).startswith("layer ") else 0
        raise _named(rows, layer, err, batch) from None


def _check_scatter(rows: list[tuple[str, Any]], feats: list[Tensor], limit: float,
                   copies: int) -> None:
    need = copies * sum(f.shape[1] ** 2 * 8 for f in feats)
    if need > limit:
        big = max(range(len(feats)), key=lambda i: feats[i].shape[1])
        raise ValueError(
            f"NC1, rank and probes need float64 D x D matrices per layer ({copies} each here): "
            f"{need / 2**30:.2f} GiB in all "
            f"(largest: {rows[big][0]!r}, D = {feats[big].shape[1]}), over the limit of "
            f"{limit / 2**30:.2f} GiB. Pass nc1=False (O(K D) memory), pool='avg' or a small "
            "grid, fewer layers, or a larger max_scatter_bytes."
        )


# ----------------------------------------------------------------------------------------
# the entry point
# ----------------------------------------------------------------------------------------


def measure(
    model: nn.Module,
    data: Any,
    layers: Any = None,
    *,
    num_classes: int | None = None,
    pool: Any = "auto",
    nc1: bool = True,
    rank: bool = False,
    probe: bool = False,
    probe_data: Any = None,
    probe_train: bool = False,
    ridge: float = 1e-6,
    energy: float = 0.95,
    fit_rows: Sequence[int] | None = None,
    batch_size: int = 256,
    device: Any = None,
    progress: bool | None = None,
    max_scatter_bytes: float | None = None,
) -> Measurement:
    """Per-layer C, D, NC1 and traces (and optionally rank and probes) of any model.

    Parameters
    ----------
    model : nn.Module
        Any module; it is run as ``model(x)`` in eval mode under ``torch.inference_mode``
        and put back in the mode each submodule was in. Its parameters and buffers are not
        changed (BatchNorm running statistics included).
    data : DataLoader, iterable of (inputs, labels), or (X, y) tensors
        Labels ``(B,)`` in ``[0, K)``; a batch may miss classes. A pair of tensors is cut into
        batches of `batch_size`.
    layers : str, type, or a list of them, optional
        Which outputs to measure: module names as in ``model.named_modules()`` (``"layer1.0"``),
        glob patterns (``"layer*.?"``), module types (``nn.ReLU``, your block class), and the
        pseudo-names ``"input"`` and ``"output"`` (the logits). Default: the model's direct
        children.
    num_classes : int, optional
        K; inferred as ``y.max() + 1`` when `data` is a pair of tensors, required otherwise.
    pool : {"auto", "avg", "flatten"} or int, default "auto"
        How feature maps are reduced (module docstring); "auto" average-pools every map and
        flattens the input (the raw data, the paper's layer 0).
    nc1 : bool, default True
        Keep the D x D within-class scatter NC1 needs (O(D^2) memory per layer, refused over
        `max_scatter_bytes`); False keeps O(K D) and gives NaN NC1.
    rank, probe : bool, default False
        Add the numerical rank of the uncentred features (``energy`` of the nuclear norm, as
        :func:`pncutils.metrics.numerical_rank`) and the accuracy of the closed-form ridge
        probe of :func:`pncutils.metrics.linear_probe_accuracy`, both from streamed Gram
        matrices (D x D per layer). The probe's accuracy needs a second pass: over
        `probe_data` (held-out, same format as `data`) when given, else over `data` again
        (which must then be re-iterable, like a DataLoader).
    probe_train : bool, default False
        With `probe_data`, also the probe's accuracy on `data` (a third pass; `data` must
        be re-iterable): the column ``probe_train_accuracy``.
    ridge, energy : float
        Probe ridge (relative, as in ``linear_probe_accuracy``) and rank energy.
    fit_rows : sequence of int, optional
        Rows of the geometric fit of C (default: every row except the input and the output).
    batch_size : int, default 256
        Batch size when `data` is a pair of tensors.
    device : torch.device or str, optional
        Where inputs go (default: the device of the model's first parameter). The model is
        never moved; features are reduced on the device (float64; the CPU for MPS).
    progress : bool, optional
        A progress bar over batches (default: :func:`pncutils.utils.progress_enabled`).
    max_scatter_bytes : float, optional
        Limit of the NC1/rank/probe scatters, all layers together (default 4 GiB).

    Returns
    -------
    Measurement
        ``.table`` (LayerTable), ``.names``, ``.pooling``, ``.fit``, ``.rate``.

    Raises
    ------
    ValueError
        A layer selector that matches nothing (with the close names), a layer that never fires
        or fires twice per forward pass, a batch without labels, labels out of range, a class
        never seen, non-finite features (naming the layer), too large a scatter, bad options.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> X, y = torch.randn(40, 4, generator=g), torch.arange(40) % 2
    >>> m = measure(net, (X, y), layers=["input", "0", "2"])
    >>> m.names, m.table.dim.tolist()
    (('input', '0', '2'), [4.0, 8.0, 2.0])
    >>> bool(net.training)  # put back in training mode
    True

    Used in: ch06.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for flag, name in ((nc1, "nc1"), (rank, "rank"), (probe, "probe"),
                       (probe_train, "probe_train")):
        if not isinstance(flag, bool):
            raise ValueError(f"{name} must be True or False, got {flag!r}")
    pool = _pool_spec(pool)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    ridge = check_float(ridge, "ridge", minimum=0.0)
    energy = check_float(energy, "energy", minimum=0.0, maximum=1.0, strict=True)
    limit = (_DEFAULT_SCATTER_LIMIT if max_scatter_bytes is None
             else check_float(max_scatter_bytes, "max_scatter_bytes", minimum=0.0))
    rows = _select(model, layers)
    dev = model_device(model, device)
    batches = _batches(data, batch_size)
    K = _num_classes(data, num_classes)
    if probe_train and not (probe and probe_data is not None):
        raise ValueError("probe_train=True needs probe=True and probe_data")
    if probe and (probe_data is None or probe_train) and isinstance(batches, Iterator):
        raise ValueError("a probe on the training data needs re-iterable data (a DataLoader "
                         "or a list), not a one-shot iterator")
    stats = LayerwiseStats(len(rows), K, nc1=nc1)
    grams: list[GramStats] = []
    dims: list[int] = []
    copies = int(nc1) + int(rank or probe)

    def consume(feats: list[Tensor], y: Tensor, index: int) -> None:
        if index == 0:
            dims.extend(f.shape[1] for f in feats)
            if copies:
                _check_scatter(rows, feats, limit, copies)
        _update(stats, rows, feats, y, index)
        if rank or probe:
            _update_grams(grams, feats, y, K)

    pooling = _run(model, rows, batches, pool, dev, progress, consume, "measure")
    if stats.num_samples == 0:
        raise ValueError("data gave no batch")
    table = _table(stats, dims, grams, rank, energy)
    if probe:
        accuracy = _probe_pass(model, rows, grams, stats, ridge, probe_data, batches,
                               batch_size, pool, dev, progress)
        columns = {**table.to_dict(), "probe_accuracy": accuracy}
        if probe_train:
            columns["probe_train_accuracy"] = _probe_pass(
                model, rows, grams, stats, ridge, None, batches, batch_size, pool, dev, progress)
        table = LayerTable(columns)
    return _result(table, rows, pooling, fit_rows, stats.num_samples)


def _num_classes(data: Any, num_classes: int | None) -> int:
    if num_classes is not None:
        return check_int(num_classes, "num_classes", minimum=2)
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[1], Tensor):
        y = data[1]
        if y.numel() == 0 or y.is_floating_point() or y.dtype == torch.bool:
            raise ValueError("data: labels must be a non-empty integer tensor")
        return max(int(y.max()) + 1, 2)
    raise ValueError("num_classes is required when data is a DataLoader or an iterable")


def _update_grams(grams: list[GramStats], feats: list[Tensor], y: Tensor, K: int) -> None:
    for layer, H in enumerate(feats):
        H64 = H.to(torch.float64)
        if len(grams) <= layer:
            grams.append(GramStats(H64, K))
        grams[layer].update(H64, y.to(H64.device))


def _table(stats: LayerwiseStats, dims: list[int], grams: list[GramStats], rank: bool,
           energy: float) -> LayerTable:
    try:
        base = stats.compute()
    except ValueError as err:
        raise ValueError(f"measure: {err}") from None
    cols = base.to_dict()
    cols = {"layer": cols.pop("layer"), "dim": [float(d) for d in dims], **cols}
    if rank:
        cols["rank"] = [rank_from_singular_values(g.singular_values(), energy) for g in grams]
    return LayerTable(cols)


def _probe_pass(model: nn.Module, rows: list[tuple[str, Any]], grams: list[GramStats],
                stats: LayerwiseStats, ridge: float, probe_data: Any, batches: Any,
                batch_size: int, pool: Any, dev: torch.device,
                progress: bool | None) -> list[float]:
    """Second pass: each layer's closed-form ridge probe applied to held-out or training data."""
    counts = stats._counts  # (K,) float64
    probes = [solve_streamed(g, counts.to(g.G.device), ridge) for g in grams]
    K = stats.num_classes
    evaluate = batches if probe_data is None else _batches(probe_data, batch_size)
    correct: list[Tensor] = []
    seen = [0]

    def consume(feats: list[Tensor], y: Tensor, index: int) -> None:
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= K):
            raise ValueError(f"probe data, batch {index}: labels must lie in [0, {K})")
        for layer, H in enumerate(feats):
            W, mean, y_mean = probes[layer]
            pred = ((H.to(W.device, torch.float64) - mean) @ W + y_mean).argmax(1)
            hits = (pred == y.to(pred.device)).sum()
            if len(correct) <= layer:
                correct.append(hits)
            else:
                correct[layer] = correct[layer] + hits
        seen[0] += y.numel()

    _run(model, rows, evaluate, pool, dev, progress, consume, "probe")
    if seen[0] == 0:
        raise ValueError("probe data gave no sample")
    return [int(c) / seen[0] for c in correct]


def _result(table: LayerTable, rows: list[tuple[str, Any]], pooling: dict[str, str],
            fit_rows: Sequence[int] | None, num_samples: int) -> Measurement:
    names = tuple(n for n, _ in rows)
    if fit_rows is None:
        fit_rows = [i for i, n in enumerate(names) if n not in (INPUT, OUTPUT)]
    else:
        fit_rows = [check_int(i, "fit_rows entry", minimum=0) for i in fit_rows]
        if any(i >= len(names) for i in fit_rows):
            raise ValueError(f"fit_rows must index the {len(names)} rows, got {list(fit_rows)}")
    C = table.compression[list(fit_rows)] if fit_rows else torch.zeros(0)
    fit = None
    if len(fit_rows) >= 2 and bool((C > 0).all()) and bool(torch.isfinite(C).all()):
        fit = geometric(C, layers=list(fit_rows))
    return Measurement(table, names, tuple(pooling.get(n, "none") for n in names), fit,
                       tuple(fit_rows), num_samples)
