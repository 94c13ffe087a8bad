"""The closed-form minimum-norm balanced network, its exact predictions, and assumption checks.

Conventions: rows are samples. ``X`` is ``(N, d)`` inputs, ``Y`` the ``(N, K)`` one-hot targets
(a 1-D label vector is accepted and one-hot encoded), weights ``W_l`` are ``(out, in)`` like
``nn.Linear.weight``, and ``depth`` is the paper's ``L`` (number of weight matrices, classifier
included). Everything is computed in float64 and returned on the CPU.

The construction (book chapter 2) and the exact predictions (book chapter 3) are the book's
own derivation, checked numerically; the paper states the corresponding rates with ``O(.)``
constants. With ``W* = alpha^{-1} Y^T (X^+)^T = U S V^T`` (``K x d``), random orthogonal
``F_l = [R_l, Q_l, ...]`` (``R_l`` its first ``K`` columns, ``Q_l`` the next ``d - K``), and
``V_perp`` an orthonormal complement of ``V``::

    W_1 = R_1 S^{1/L} V^T + eps Q_1 V_perp^T
    W_l = R_l S^{1/L} R_{l-1}^T + eps Q_l Q_{l-1}^T        (2 <= l <= L-1)
    W_L = U S^{1/L} R_{L-1}^T

so ``W_L ... W_1 = W*`` exactly, the weights are exactly balanced up to layer ``L - 2``, and
every hidden weight has ``K`` signal singular values ``s_k^{1/L}`` and ``d - K`` equal to
``eps``. Because ``W* X_W = 0`` for the within-class-centred inputs ``X_W``, all within-class
variation lives in the ``eps``-subspace, which gives (for ``0 <= l <= L-1``)::

    tr Sigma_W^l = eps^{2l} T_W
    tr Sigma_B^l = (1/K) ||X_B V S^{l/L}||_F^2 + eps^{2l} (1/K) ||X_B V_perp||_F^2
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from pncutils._checks import (
    as_tensor,
    check_choice,
    check_features,
    check_float,
    check_int,
    check_labels,
)
from pncutils.metrics import PINV_RTOL, LayerTable, nc1

__all__ = [
    "min_norm_map",
    "min_norm_balanced_network",
    "predicted_metrics",
    "ideal_compression_rate",
    "ideal_metrics",
    "first_order_discrimination",
    "orthogonality_gap",
    "min_norm_residual",
    "balancedness",
    "bulk_singular_values",
    "assumption_report",
]


# ----------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------


def _inputs(X: Any, Y: Any) -> tuple[Tensor, Tensor, Tensor]:
    """Validate ``(X, Y)``; return ``(X (N, d) float64 CPU, Y (N, K) float64, y (N,) int64)``."""
    X = check_features(X, "X").cpu()
    N, d = X.shape
    Y = as_tensor(Y, "Y")
    if Y.ndim == 1:  # labels
        y, K = check_labels(Y, N, device=X.device)
        Y = torch.nn.functional.one_hot(y, K).to(torch.float64)
    else:
        if Y.ndim != 2 or Y.shape[0] != N:
            raise ValueError(
                f"Y must be (N, K) one-hot targets or (N,) labels with N = {N} rows like X, "
                f"got shape {tuple(Y.shape)}"
            )
        Y = Y.detach().to("cpu", torch.float64)
        is_one_hot = bool(((Y == 0) | (Y == 1)).all()) and bool((Y.sum(1) == 1).all())
        if not is_one_hot:
            raise ValueError("Y must be one-hot: every row has a single 1 and zeros elsewhere")
        y, _ = check_labels(Y.argmax(1), N, num_classes=Y.shape[1])
    if N > d:
        raise ValueError(
            f"X has N = {N} samples in d = {d} dimensions: with N > d no linear map interpolates "
            "all targets in general, so the minimum-norm interpolating network does not exist "
            "(the theory needs N <= d)"
        )
    return X, Y, y


def _depth_eps(depth: Any, eps: Any) -> tuple[int, float]:
    return check_int(depth, "depth", minimum=1), check_float(eps, "eps", minimum=0.0)


def _alpha(alpha: Any) -> float:
    return check_float(alpha, "alpha", minimum=0.0, strict=True)


def min_norm_map(X: Any, Y: Any, alpha: float = 1.0) -> Tensor:
    """The minimum-Frobenius-norm map with ``alpha W X^T = Y^T``: ``W* = alpha^{-1} Y^T (X^+)^T``.

    Parameters
    ----------
    X : Tensor or ndarray, shape (N, d)
        Inputs with ``N <= d`` and full row rank.
    Y : Tensor or ndarray, shape (N, K) or (N,)
        One-hot targets, or integer labels.
    alpha : float, default 1.0
        Output scale of the loss ``||alpha f(x) - y||^2``.

    Returns
    -------
    Tensor, shape (K, d), float64
        ``alpha^{-1} Y^T (X X^T)^{-1} X``.

    Examples
    --------
    >>> X = torch.eye(2, 3); W = min_norm_map(X, torch.tensor([0, 1]), alpha=2.0)
    >>> W
    tensor([[0.5000, 0.0000, 0.0000],
            [0.0000, 0.5000, 0.0000]], dtype=torch.float64)
    """
    X, Y, _ = _inputs(X, Y)
    alpha = _alpha(alpha)
    G = X @ X.T  # (N, N)
    cond = torch.linalg.cond(G)
    if not torch.isfinite(cond) or float(cond) > 1e14:
        raise ValueError(
            f"X X^T is singular (condition number {float(cond):.3g}): the rows of X must be "
            "linearly independent for exact interpolation"
        )
    return torch.linalg.solve(G, Y).T @ X / alpha


def _haar_orthogonal(n: int, generator: torch.Generator | None) -> Tensor:
    """A Haar-random ``(n, n)`` orthogonal matrix (QR of a Gaussian with the sign fix)."""
    A = torch.randn(n, n, generator=generator, dtype=torch.float64)
    Q, R = torch.linalg.qr(A)
    return Q * torch.sign(torch.diagonal(R))


def min_norm_balanced_network(
    X: Any,
    Y: Any,
    depth: int,
    eps: float,
    alpha: float = 1.0,
    width: int | None = None,
    generator: torch.Generator | None = None,
) -> list[Tensor]:
    """The closed-form minimum-norm, balanced, approximately low-rank deep linear network.

    Parameters
    ----------
    X : Tensor or ndarray, shape (N, d)
        Inputs, ``N <= d``, linearly independent rows.
    Y : Tensor or ndarray, shape (N, K) or (N,)
        One-hot targets, or integer labels.
    depth : int
        L >= 1, the number of weight matrices.
    eps : float
        The bulk singular value ``eps >= 0`` of the hidden weights (``xi`` after training from
        an orthogonal initialisation of scale ``xi``).
    alpha : float, default 1.0
        Output scale: the network's product is ``alpha^{-1} Y^T (X^+)^T``.
    width : int, optional
        Hidden width ``h >= d``; defaults to ``d``.
    generator : torch.Generator, optional
        Source of the random orthogonal frames ``F_l``.

    Returns
    -------
    list of Tensor
        ``[W_1, ..., W_L]`` in float64: ``W_1`` is ``(h, d)``, hidden ``W_l`` are ``(h, h)``
        and ``W_L`` is ``(K, h)``; for ``depth = 1`` the single ``(K, d)`` map ``W*``.

    Examples
    --------
    >>> X = torch.eye(4, 6); y = torch.tensor([0, 0, 1, 1])
    >>> g = torch.Generator().manual_seed(0)
    >>> Ws = min_norm_balanced_network(X, y, depth=3, eps=0.1, generator=g)
    >>> [tuple(W.shape) for W in Ws]
    [(6, 6), (6, 6), (2, 6)]
    >>> P = Ws[2] @ Ws[1] @ Ws[0]
    >>> bool(torch.allclose(P @ X.T.double(), torch.eye(2).repeat_interleave(2, 1).double()))
    True
    """
    X, Y, _ = _inputs(X, Y)
    depth, eps = _depth_eps(depth, eps)
    alpha = _alpha(alpha)
    N, d = X.shape
    K = Y.shape[1]
    h = d if width is None else check_int(width, "width", minimum=1)
    if h < d:
        raise ValueError(f"width must be >= the input dimension d = {d}, got {h}")
    W_star = min_norm_map(X, Y, alpha)  # (K, d)
    if depth == 1:
        return [W_star]
    U, S, Vh = torch.linalg.svd(W_star, full_matrices=True)  # (K,K), (K,), (d,d)
    if float(S[-1]) <= 1e-12 * float(S[0]):
        raise ValueError("the targets Y have rank < K: every class needs at least one sample")
    V, V_perp = Vh[:K].T, Vh[K:].T  # (d, K), (d, d-K)
    root = S ** (1.0 / depth)  # (K,)
    frames = [_haar_orthogonal(h, generator) for _ in range(depth - 1)]
    R = [F[:, :K] for F in frames]  # (h, K)
    Q = [F[:, K:d] for F in frames]  # (h, d-K)
    weights = [(R[0] * root) @ V.T + eps * Q[0] @ V_perp.T]
    for l in range(1, depth - 1):
        weights.append((R[l] * root) @ R[l - 1].T + eps * Q[l] @ Q[l - 1].T)
    weights.append((U * root) @ R[-1].T)
    return weights


# ----------------------------------------------------------------------------------------
# exact and idealised predictions
# ----------------------------------------------------------------------------------------


def predicted_metrics(
    X: Any, Y: Any, depth: int, eps: float, alpha: float = 1.0
) -> LayerTable:
    """Exact per-layer C, D, NC1 and traces of the constructed network, for l = 0..L-1.

    The values do not depend on the random frames or the width: they equal the metrics of
    ``min_norm_balanced_network(X, Y, depth, eps, alpha)``'s features ``[X, H_1, ..., H_{L-1}]``
    to rounding error.

    Parameters
    ----------
    X : Tensor or ndarray, shape (N, d)
        Inputs, ``N <= d``.
    Y : Tensor or ndarray, shape (N, K) or (N,)
        One-hot targets, or integer labels.
    depth : int
        L >= 1.
    eps : float
        Bulk singular value ``eps >= 0``.
    alpha : float, default 1.0
        Output scale.

    Returns
    -------
    LayerTable
        Columns ``layer, compression, discrimination, nc1, trace_within, trace_between``.

    Examples
    --------
    >>> X = torch.eye(6); y = torch.tensor([0, 0, 0, 1, 1, 1])
    >>> t = predicted_metrics(X, y, depth=2, eps=0.5)
    >>> # C_0 = K(n-1)/(K-1) = 4, rho = 0.25 / 3^(1/2)
    >>> [round(c, 6) for c in t.compression.tolist()]
    [4.0, 0.57735]
    """
    X, Y, y = _inputs(X, Y)
    depth, eps = _depth_eps(depth, eps)
    alpha = _alpha(alpha)
    N, d = X.shape
    K = Y.shape[1]
    W_star = min_norm_map(X, Y, alpha)
    _, S, Vh = torch.linalg.svd(W_star, full_matrices=True)
    V, V_perp = Vh[:K].T, Vh[K:].T
    counts = torch.bincount(y, minlength=K).to(torch.float64)
    means = torch.zeros(K, d, dtype=torch.float64).index_add_(0, y, X) / counts[:, None]  # (K, d)
    X_W = X - means[y]  # (N, d)
    X_B = means - means.mean(0)  # (K, d)
    T_W = float((X_W @ V_perp).square().sum()) / N
    B_par = X_B @ V  # (K, K) signal part of the centred means
    B_perp = float((X_B @ V_perp).square().sum()) / K
    M_par, M_perp = means @ V, means @ V_perp  # (K, K), (K, d-K)
    rows: dict[str, list[float]] = {
        c: [] for c in ("layer", "compression", "discrimination", "nc1", "trace_within",
                        "trace_between")
    }
    for l in range(depth):
        scale = S ** (l / depth)  # (K,)
        e2l = eps ** (2 * l)
        trW = e2l * T_W
        trB = float((B_par * scale).square().sum()) / K + e2l * B_perp
        # Gram matrix of the uncentred class means, G_l = M V S^{2l/L} V^T M^T + eps^2l ...
        G = (M_par * scale**2) @ M_par.T + e2l * M_perp @ M_perp.T  # (K, K)
        # NC1 from the layer's features in the frame [V, V_perp] (frame-independent)
        reduced = torch.cat([X @ V * scale, eps**l * X @ V_perp], 1)  # (N, d)
        rows["layer"].append(l)
        rows["compression"].append(trW / trB)
        rows["discrimination"].append(_discrimination_from_gram(G))
        rows["nc1"].append(nc1(reduced, y, num_classes=K, rtol=PINV_RTOL))
        rows["trace_within"].append(trW)
        rows["trace_between"].append(trB)
    return LayerTable(rows)


def ideal_compression_rate(eps: float, alpha: float, n: int, depth: int) -> float:
    """Idealised per-layer compression ratio ``rho = C_{l+1}/C_l = eps^2 (alpha^2/n)^{1/L}``.

    Exact for orthonormal inputs (``X X^T = I``) with ``n`` samples per class; for nearly
    orthogonal inputs, the measured ratio is within a few per cent while ``eps`` is well below
    the per-layer signal singular value ``(sqrt(n)/alpha)^{1/L}``.

    Parameters
    ----------
    eps : float
        Bulk singular value (the initialisation scale ``xi`` after training).
    alpha : float
        Output scale.
    n : int
        Samples per class.
    depth : int
        L.

    Returns
    -------
    float

    Examples
    --------
    >>> round(ideal_compression_rate(0.3, 100.0, 10, 6), 4)
    0.2846
    """
    eps = check_float(eps, "eps", minimum=0.0)
    alpha = _alpha(alpha)
    n = check_int(n, "n", minimum=1)
    depth = check_int(depth, "depth", minimum=1)
    return eps**2 * (alpha**2 / n) ** (1.0 / depth)


def ideal_metrics(
    num_classes: int, num_per_class: int, depth: int, eps: float, alpha: float = 1.0
) -> LayerTable:
    """Idealised C_l (orthonormal inputs): ``C_l = C_0 rho^l``, ``C_0 = K(n-1)/(K-1)``.

    Instant to evaluate, for the theory explorer. For orthonormal inputs the class means stay
    orthogonal, so ``D_l = 1`` at every layer.

    Parameters
    ----------
    num_classes : int
        K >= 2.
    num_per_class : int
        n >= 1.
    depth : int
        L >= 1.
    eps : float
        Bulk singular value.
    alpha : float, default 1.0
        Output scale.

    Returns
    -------
    LayerTable
        Columns ``layer, compression, discrimination`` for ``l = 0..L-1``.

    Examples
    --------
    >>> ideal_metrics(3, 10, depth=2, eps=0.5).compression.tolist()[0]
    13.5
    """
    K = check_int(num_classes, "num_classes", minimum=2)
    n = check_int(num_per_class, "num_per_class", minimum=1)
    rho = ideal_compression_rate(eps, alpha, n, depth)
    C0 = K * (n - 1) / (K - 1)
    layers = list(range(depth))
    return LayerTable(
        {
            "layer": layers,
            "compression": [C0 * rho**l for l in layers],
            "discrimination": [1.0] * depth,
        }
    )


def first_order_discrimination(X: Any, Y: Any, depth: int, alpha: float = 1.0) -> LayerTable:
    """First-order (small-eps) prediction ``D_l ~ 1 - (1 - l/L)(1 - D~_0)``, linear in l.

    ``D~_0`` is the discrimination of the Gram matrix ``U S^{-2} U^T`` of the minimum-norm map
    ``W* = U S V^T``; the prediction reaches ``D_L = 1``. It approximates the exact
    :func:`predicted_metrics` for ``l >= 1`` (to about ``1e-3`` on the paper's synthetic data);
    the row ``l = 0`` holds ``D~_0`` itself, not the input's ``D_0``.

    Parameters
    ----------
    X : Tensor or ndarray, shape (N, d)
    Y : Tensor or ndarray, shape (N, K) or (N,)
    depth : int
        L >= 1.
    alpha : float, default 1.0
        Output scale (the prediction does not depend on it).

    Returns
    -------
    LayerTable
        Columns ``layer, discrimination`` for ``l = 0..L-1``.

    Examples
    --------
    >>> X = torch.eye(4); y = torch.tensor([0, 0, 1, 1])
    >>> first_order_discrimination(X, y, depth=4).discrimination.tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    X, Y, _ = _inputs(X, Y)
    depth = check_int(depth, "depth", minimum=1)
    W_star = min_norm_map(X, Y, _alpha(alpha))
    U, S, _ = torch.linalg.svd(W_star, full_matrices=False)
    G = (U / S**2) @ U.T  # (K, K)
    D0 = _discrimination_from_gram(G)
    layers = list(range(depth))
    return LayerTable(
        {"layer": layers, "discrimination": [1 - (1 - l / depth) * (1 - D0) for l in layers]}
    )


def _discrimination_from_gram(G: Tensor) -> float:
    d = torch.sqrt(torch.diagonal(G))
    cos = G / d[:, None] / d[None, :]
    off = ~torch.eye(G.shape[0], dtype=torch.bool, device=G.device)
    return 1.0 - float(cos[off].max())


# ----------------------------------------------------------------------------------------
# assumption diagnostics
# ----------------------------------------------------------------------------------------


_GAP_NORMS = ("max", "spectral", "fro")


def orthogonality_gap(X: Any, norm: str = "max") -> float:
    """Distance of the data from orthonormality, ``||X X^T - I_N||`` (the paper's delta).

    Parameters
    ----------
    X : Tensor or ndarray, shape (N, d)
    norm : {"max", "spectral", "fro"}, default "max"
        Entrywise maximum, spectral norm or Frobenius norm. The paper's exact form of delta is
        not known (the reference notebook prints the entrywise maxima divided by N).

    Returns
    -------
    float

    Examples
    --------
    >>> orthogonality_gap(torch.eye(3, 5))
    0.0
    >>> orthogonality_gap(torch.tensor([[1., 0.], [1., 1.]]))  # entries of X X^T - I: 0, 1, 1, 1
    1.0
    """
    X = check_features(X, "X")
    check_choice(norm, "norm", _GAP_NORMS)
    E = X @ X.T - torch.eye(X.shape[0], dtype=X.dtype, device=X.device)
    if norm == "max":
        return float(E.abs().max())
    if norm == "spectral":
        return float(torch.linalg.matrix_norm(E, ord=2))
    return float(torch.linalg.matrix_norm(E))


def _weights_list(weights: Any) -> list[Tensor]:
    if hasattr(weights, "weights") and callable(weights.weights):
        weights = weights.weights()
    if isinstance(weights, Tensor) or not isinstance(weights, Sequence) or not weights:
        raise ValueError("weights must be a non-empty list [W_1, ..., W_L] of (out, in) matrices")
    out = []
    for l, W in enumerate(weights, start=1):
        W = as_tensor(W, f"W_{l}")
        if W.ndim != 2:
            raise ValueError(f"W_{l} must be a 2-D (out, in) matrix, got shape {tuple(W.shape)}")
        W = W.detach().to("cpu", torch.float64)
        if out and W.shape[1] != out[-1].shape[0]:
            raise ValueError(
                f"W_{l} has {W.shape[1]} input columns but W_{l - 1} has {out[-1].shape[0]} "
                "output rows"
            )
        out.append(W)
    return out


def _product(weights: list[Tensor]) -> Tensor:
    P = weights[0]
    for W in weights[1:]:
        P = W @ P
    return P


def min_norm_residual(weights: Any, X: Any, Y: Any, alpha: float = 1.0) -> float:
    """Distance to the minimum-norm map: ``||alpha^{-1} Y^T (X^+)^T - W_L ... W_1||_F``.

    Parameters
    ----------
    weights : list of Tensor, or a model with a ``weights()`` method
        ``[W_1, ..., W_L]``, each ``(out, in)``.
    X : Tensor or ndarray, shape (N, d)
    Y : Tensor or ndarray, shape (N, K) or (N,)
    alpha : float, default 1.0

    Returns
    -------
    float

    Examples
    --------
    >>> X = torch.eye(2, 3); y = torch.tensor([0, 1])
    >>> min_norm_residual([torch.eye(2, 3)], X, y)
    0.0
    """
    Ws = _weights_list(weights)
    W_star = min_norm_map(X, Y, alpha)
    P = _product(Ws)
    if P.shape != W_star.shape:
        raise ValueError(
            f"the network maps {P.shape[1]} -> {P.shape[0]} but X, Y need "
            f"{W_star.shape[1]} -> {W_star.shape[0]}"
        )
    return float(torch.linalg.matrix_norm(W_star - P))


def balancedness(weights: Any, normalize: bool = True, reduce: bool = True) -> float | Tensor:
    """Balance error ``||W_{l+1}^T W_{l+1} - W_l W_l^T||_F``, for l = 1..L-1.

    Parameters
    ----------
    weights : list of Tensor, or a model with a ``weights()`` method
        ``[W_1, ..., W_L]`` with ``L >= 2``.
    normalize : bool, default True
        Divide each term by ``||W_l||_F``, as the reference notebook does (``normalize=True``).
    reduce : bool, default True
        Return the mean over the ``L - 1`` pairs (a float), or the per-pair CPU tensor.

    Returns
    -------
    float or Tensor of shape (L-1,)

    Examples
    --------
    >>> W = [torch.eye(3), torch.eye(3), torch.eye(3)]
    >>> balancedness(W)
    0.0
    """
    Ws = _weights_list(weights)
    if len(Ws) < 2:
        raise ValueError("balancedness needs at least two weight matrices (depth >= 2)")
    errs = []
    for W, W_next in zip(Ws[:-1], Ws[1:], strict=True):
        e = torch.linalg.matrix_norm(W_next.T @ W_next - W @ W.T)
        if normalize:
            e = e / torch.linalg.matrix_norm(W)
        errs.append(e)
    out = torch.stack(errs)
    return float(out.mean()) if reduce else out


def bulk_singular_values(weights: Any, num_classes: int) -> Tensor:
    """Bulk singular values of the hidden weights: ``sigma_i(W_l)``, ``K < i <= m - K``.

    For ``l = 1..L-1``, with ``m`` the smallest ``min(out, in)`` over those layers (the input
    dimension ``d`` when the width is at least ``d``). Under the low-rank assumption they are
    all close to ``eps``; the paper reports their variance.

    Parameters
    ----------
    weights : list of Tensor, or a model with a ``weights()`` method
        ``[W_1, ..., W_L]`` with ``L >= 2``.
    num_classes : int
        K.

    Returns
    -------
    Tensor, shape (L-1, m-2K), float64 on the CPU

    Examples
    --------
    >>> Ws = [0.1 * torch.eye(8), 0.1 * torch.eye(8), torch.ones(2, 8)]
    >>> bulk_singular_values(Ws, num_classes=2).shape
    torch.Size([2, 4])
    """
    Ws = _weights_list(weights)
    K = check_int(num_classes, "num_classes", minimum=1)
    if len(Ws) < 2:
        raise ValueError("bulk singular values need at least two weight matrices (depth >= 2)")
    hidden = Ws[:-1]
    m = min(min(W.shape) for W in hidden)
    if m <= 2 * K:
        raise ValueError(
            f"the hidden weights have at most {m} singular values: no bulk beyond the top and "
            f"bottom K = {K}"
        )
    return torch.stack([torch.linalg.svdvals(W)[K : m - K] for W in hidden])



def assumption_report(weights: Any, X: Any, Y: Any, alpha: float = 1.0,
                      eps: float | None = None) -> dict[str, float]:
    """The assumption checks of a deep linear network, as a dict of floats.

    The three checks of the authors' code (distance to the minimum-norm map, balance error,
    bulk singular values) and finer numbers: the part of the distance seen by the training
    data (the row space of ``X``), the imbalance of the last pair (``eps^2 sqrt(d - K)`` for
    the construction), and the signal and bottom singular values.

    Parameters
    ----------
    weights : list of Tensor, or a model with a ``weights()`` method
        ``[W_1, ..., W_L]`` with ``L >= 2``, each ``(out, in)``.
    X : Tensor or ndarray, shape (N, d)
    Y : Tensor or ndarray, shape (N, K) or (N,)
    alpha : float, default 1.0
    eps : float, optional
        The expected bulk singular value; adds ``"bulk: max deviation from eps"``.

    Returns
    -------
    dict of str to float
        Keys: ``"distance to the min-norm map"``, ``"distance, row-space part"``,
        ``"imbalance of pairs 1 to L-2 (max)"`` (0 when L = 2), ``"imbalance of pair L-1"``,
        ``"balance error (normalised mean)"``, ``"bulk: variance"``,
        ``"top K: max relative deviation from s^(1/L)"``, ``"bottom K: smallest"``,
        ``"bottom K: largest"``, and with `eps` ``"bulk: max deviation from eps"``. The
        singular values are those of the hidden weights ``W_1 .. W_{L-1}``, up to index
        ``m = min(out, in)`` of the narrowest; the bulk is ``K < i <= m - K``.

    Examples
    --------
    >>> X = torch.eye(6, 8); y = torch.tensor([0, 0, 1, 1, 2, 2])
    >>> g = torch.Generator().manual_seed(0)
    >>> Ws = min_norm_balanced_network(X, y, depth=3, eps=0.1, generator=g)
    >>> r = assumption_report(Ws, X, y, eps=0.1)
    >>> r["distance to the min-norm map"] < 1e-12, round(r["bulk: max deviation from eps"], 12)
    (True, 0.0)
    """
    Ws = _weights_list(weights)
    if len(Ws) < 2:
        raise ValueError("assumption_report needs at least two weight matrices (depth >= 2)")
    X64, Y64, _ = _inputs(X, Y)
    K, depth = Y64.shape[1], len(Ws)
    W_star = min_norm_map(X64, Y64, alpha)
    gap = W_star - _product(Ws)  # (K, d)
    P = X64.T @ torch.linalg.solve(X64 @ X64.T, X64)  # (d, d) projection on the row space
    imbalance = balancedness(Ws, normalize=False, reduce=False)  # (L-1,)
    hidden = Ws[:-1]
    m = min(min(W.shape) for W in hidden)
    s_all = torch.stack([torch.linalg.svdvals(W)[:m] for W in hidden])  # (L-1, m)
    s = torch.linalg.svdvals(W_star)  # (K,)
    report = {
        "distance to the min-norm map": float(torch.linalg.matrix_norm(gap)),
        "distance, row-space part": float(torch.linalg.matrix_norm(gap @ P)),
        "imbalance of pairs 1 to L-2 (max)": float(imbalance[:-1].max()) if depth > 2 else 0.0,
        "imbalance of pair L-1": float(imbalance[-1]),
        "balance error (normalised mean)": float(balancedness(Ws)),
        "bulk: variance": float(s_all[:, K : m - K].var()) if m > 2 * K + 1 else float("nan"),
        "top K: max relative deviation from s^(1/L)": float(
            (s_all[:, :K] / s ** (1.0 / depth) - 1).abs().max()
        ),
        "bottom K: smallest": float(s_all[:, m - K :].min()),
        "bottom K: largest": float(s_all[:, m - K :].max()),
    }
    if eps is not None:
        eps = check_float(eps, "eps", minimum=0.0)
        report["bulk: max deviation from eps"] = float((s_all[:, K : m - K] - eps).abs().max())
    return report
