"""Post-training analysis of a network: the per-layer report and 2-D projections of features.

:func:`layer_report` computes, for every layer ``l`` of ``model.features(X)`` (row 0 is the
input), the paper's compression ``C_l``, discrimination ``D_l``, NC1 and traces, the numerical
rank of the uncentred features (Figure 1, top) and the accuracy of a closed-form linear probe
(Figure 1, bottom), streaming over mini-batches of samples. It never holds the features of the
whole data set: its memory is O(L D^2) of float64 statistics plus one batch of features, so it
runs on the paper's scale (60 000 samples, width 1024, 8 layers) on a GPU or a large CPU.

:func:`pca_projection` gives the 2-D views of F2 (the paper uses UMAP; PCA is
deterministic, dependency-free and linear, so the straightening of the class clusters that it
shows is the features' own).

Conventions: rows are samples; ``X`` is (N, D_in), ``y`` (N,) integer labels in ``[0, K)``,
features ``H_l`` are (N, d_l).

See Also
--------
pncutils.metrics : the metrics on full feature matrices, which these functions agree with.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from pncutils._checks import (
    check_device,
    check_features,
    check_float,
    check_inputs,
    check_int,
    check_labels,
)
from pncutils._forward import eval_mode
from pncutils.measurement import measure
from pncutils.metrics import LayerTable

__all__ = ["REPORT_COLUMNS", "layer_report", "pca_projection"]

#: Columns of :func:`layer_report` (``probe_test_acc`` is appended when test data are given).
REPORT_COLUMNS = (
    "layer",
    "compression",
    "discrimination",
    "nc1",
    "trace_within",
    "trace_between",
    "rank",
    "probe_train_acc",
)


# ----------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------


def _check_model(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(getattr(model, "features", None)):
        raise ValueError(
            f"model must have a features(x) method returning [X, H_1, ...], as "
            f"pncutils.models.HybridNetwork does; {type(model).__name__} has none"
        )
    return model


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    for p in model.parameters():
        if p.is_floating_point():
            return p.device, p.dtype
    return torch.device("cpu"), torch.get_default_dtype()


def _place_model(model: nn.Module, device: Any) -> tuple[torch.device, torch.dtype]:
    """The model's device and dtype; with `device`, the model moves there first."""
    if device is None:
        return _model_device_dtype(model)
    dev = check_device(device)
    model.to(dev)
    return dev, _model_device_dtype(model)[1]


# ----------------------------------------------------------------------------------------
# streaming statistics for the rank and the probe
# ----------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------
# public functions
# ----------------------------------------------------------------------------------------


def layer_report(
    model: nn.Module,
    X: Any,
    y: Any,
    X_test: Any | None = None,
    y_test: Any | None = None,
    batch_size: int = 4096,
    energy: float = 0.95,
    probe_ridge: float = 1e-6,
    device: torch.device | str | None = None,
) -> LayerTable:
    """Per-layer table of C, D, NC1, traces, numerical rank and linear-probe accuracy.

    The features ``model.features(x)`` are streamed through :func:`pncutils.measure`
    (``eval()`` mode, no gradients, `batch_size` samples at a time), in two passes over ``X``
    (three with test data):

    1. statistics: per layer, :class:`pncutils.metrics.LayerwiseStats` (C, D, NC1, traces)
       and the float64 Gram matrix ``H^T H`` (D, D), the column sums and the per-class sums
       of the features (accumulated about a fixed shift, see below);
    2. predictions: the closed-form ridge probe of every layer, solved from those sums, is
       applied to every training sample (and, with test data, to every test sample).

    **Numerical rank.** The singular values ``sigma_i`` of the uncentred (N, D) features are
    the square roots of the eigenvalues of the float64 Gram matrix. Eigenvalues carry an
    absolute error of about ``1e-16 sigma_max^2``, so singular values below about
    ``1e-8 sigma_max`` are noise; they cannot move the 95%-of-nuclear-norm rank of
    :func:`pncutils.metrics.numerical_rank`, which this reproduces (same slack in the
    cumulative sum; only the top ``min(N, D)`` values are kept).

    **Probe.** A linear classifier with bias, fitted by ridge least squares to the one-hot
    labels, ``[H, 1] W ~ Y``: the normal equations are accumulated over batches, so the
    result equals :func:`pncutils.metrics.linear_probe_accuracy` on the full features (up
    to rounding, and ties in the argmax). The paper trains the same MSE probe by SGD; the
    closed form is its exact minimiser (with a tiny ridge, relative to the feature scale).

    Memory: one batch of features of every layer (``batch_size * sum_l d_l`` values) plus
    two (d_l, d_l) float64 matrices per layer; the model is moved to `device`, left there,
    and restored to its training mode afterwards.

    Parameters
    ----------
    model : nn.Module
        A network with a ``features(x)`` method returning ``[x, H_1, ..., H_{L-1}]``, e.g.
        :class:`pncutils.models.HybridNetwork`. Its ``num_classes`` attribute, when present,
        fixes K (else ``y.max() + 1``).
    X : Tensor or ndarray, shape (N, D_in)
        Training inputs, on any device (moved batch by batch).
    y : Tensor or ndarray, shape (N,)
        Training labels in ``[0, K)``; every class must occur.
    X_test, y_test : optional, shapes (M, D_in) and (M,)
        Held-out data: adds the column ``probe_test_acc`` (probe fitted on ``X``).
    batch_size : int, default 4096
        Samples per forward pass.
    energy : float, default 0.95
        Fraction of the nuclear norm captured by the numerical rank, in ``(0, 1]``.
    probe_ridge : float, default 1e-6
        Ridge strength of the probe, relative to the mean squared (centred) feature scale;
        see :func:`pncutils.metrics.linear_probe_accuracy`.
    device : torch.device or str, optional
        Where to run the model; the device of its parameters when omitted.

    Returns
    -------
    LayerTable
        One row per entry of ``model.features`` (row 0 = the input), columns
        :data:`REPORT_COLUMNS` = ``layer, compression, discrimination, nc1, trace_within,
        trace_between, rank, probe_train_acc``, plus ``probe_test_acc`` with test data.

    Raises
    ------
    ValueError
        Bad arguments or shapes, labels out of range or a class without samples, or a
        degenerate layer (all class means equal, or a zero class mean for D).

    Examples
    --------
    >>> from pncutils.models import HybridNetwork
    >>> g = torch.Generator().manual_seed(0)
    >>> net = HybridNetwork(6, 8, 2, depth=3, num_nonlinear=1, init_scale=1.0, generator=g)
    >>> X = torch.randn(40, 6, generator=g); y = torch.arange(40) % 2
    >>> t = layer_report(net, X, y, batch_size=16)
    >>> t.columns[-2:], len(t), int(t.rank[0]) <= 6
    (('rank', 'probe_train_acc'), 3, True)

    Used in: ch05.
    """
    model = _check_model(model)
    X = check_inputs(X, "X")
    N = X.shape[0]
    y, K = check_labels(y, N, getattr(model, "num_classes", None))
    if (X_test is None) != (y_test is None):
        raise ValueError("give both X_test and y_test, or neither")
    if X_test is not None:
        X_test = check_inputs(X_test, "X_test")
        if X_test.shape[1] != X.shape[1]:
            raise ValueError(f"X_test has {X_test.shape[1]} columns but X has {X.shape[1]}")
        y_test, _ = check_labels(y_test, X_test.shape[0], K, require_all=False, name="y_test",
                                 rows="X_test")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    energy = check_float(energy, "energy", minimum=0.0, maximum=1.0)
    if energy == 0.0:
        raise ValueError("energy must be in (0, 1], got 0.0")
    probe_ridge = check_float(probe_ridge, "probe_ridge", minimum=0.0)
    dev, dtype = _place_model(model, device)
    taps = _FeatureTaps(model, X[:1].to(dev, dtype))
    m = measure(taps, (X.to(dtype), y), layers=taps.names, num_classes=K, nc1=True, rank=True,
                probe=True, probe_data=None if X_test is None else (X_test.to(dtype), y_test),
                probe_train=X_test is not None, ridge=probe_ridge, energy=energy,
                batch_size=batch_size, device=dev, progress=False)
    columns = {k: v for k, v in m.table.to_dict().items() if k != "dim"}
    if X_test is None:
        columns["probe_train_acc"] = columns.pop("probe_accuracy")
    else:
        test_acc = columns.pop("probe_accuracy")
        columns["probe_train_acc"] = columns.pop("probe_train_accuracy")
        columns["probe_test_acc"] = test_acc
    return LayerTable(columns)


class _FeatureTaps(nn.Module):
    """``model.features(x)`` as module outputs: feature ``l`` passes through ``taps.l``
    (an identity), so that :func:`pncutils.measure` can hook every entry of the list."""

    def __init__(self, model: nn.Module, probe_input: Tensor) -> None:
        super().__init__()
        self.model = model
        with eval_mode(model), torch.no_grad():
            count = len(model.features(probe_input))
        self.taps = nn.ModuleList(nn.Identity() for _ in range(count))
        self.names = [f"taps.{i}" for i in range(count)]

    def forward(self, x: Tensor) -> list[Tensor]:
        return [tap(h) for tap, h in zip(self.taps, self.model.features(x), strict=True)]


def pca_projection(H: Any, num_components: int = 2) -> Tensor:
    """Coordinates of the samples on the top principal components of the centred features.

    ``P = (H - mean) V_k``, with ``V_k`` the top-`num_components` right singular vectors of
    the centred features. Each component's sign is fixed so that its largest-magnitude
    loading (entry of ``V_k``'s column; the first one on ties) is positive, which makes the
    projection deterministic (independent of the LAPACK/cuSOLVER sign choice).

    Parameters
    ----------
    H : Tensor or ndarray, shape (N, D)
        Features, one row per sample (computed in float64 on the CPU).
    num_components : int, default 2
        Number of components k, ``1 <= k <= min(N, D)``.

    Returns
    -------
    Tensor, shape (N, k), float64 on the CPU
        Column j has variance ``s_j^2 / N`` (``s_j`` the j-th singular value of the centred
        features), in decreasing order.

    Examples
    --------
    >>> H = torch.tensor([[0., 1.], [0., -1.], [3., 0.], [-3., 0.]])
    >>> pca_projection(H)  # the first component is the x axis, the second the y axis
    tensor([[ 0.,  1.],
            [ 0., -1.],
            [ 3.,  0.],
            [-3.,  0.]], dtype=torch.float64)

    Used in: ch05 (through :mod:`pncutils.book.hybrid`).
    """
    H = check_features(H).cpu()
    N, D = H.shape
    k = check_int(num_components, "num_components", minimum=1)
    if k > min(N, D):
        raise ValueError(
            f"num_components must be <= min(N, D) = {min(N, D)} for H of shape {(N, D)}, got {k}"
        )
    Hc = H - H.mean(0)
    _, _, Vh = torch.linalg.svd(Hc, full_matrices=False)  # (min(N, D), D)
    V = Vh[:k].T.clone()  # (D, k)
    idx = V.abs().argmax(0)  # (k,) largest-|.| loading of each component
    signs = torch.sign(V[idx, torch.arange(k)])
    signs[signs == 0] = 1.0
    V *= signs
    out = Hc @ V
    out[out == 0] = 0.0  # no negative zeros in printed output
    return out
