"""The closed-form minimum-norm balanced network, its exact predictions, and assumption checks.

Conventions: rows are samples. ``X`` is ``(N, d)`` inputs, ``Y`` the ``(N, K)`` one-hot targets
(a 1-D label vector is accepted and one-hot encoded), weights ``W_l`` are ``(out, in)`` like
``nn.Linear.weight``, and ``depth`` is the paper's ``L`` (number of weight matrices, classifier
included). Everything is computed in float64 and returned on the CPU.

The construction (book chapter 2) and the exact predictions (book chapter 3) are the book's
own derivation, checked numerically; the paper states the corresponding rates with ``O(.)``
constants.

**The map.** ``W* = alpha^{-1} Y^T (X^+)^T`` (``K x d``) is the minimum-norm least-squares
map: it minimises ``||alpha W X^T - Y^T||_F`` and, among the minimisers, ``||W||_F``. When
``X`` has full row rank (``N <= d``) it interpolates, ``alpha W* X^T = Y^T``
(:func:`min_norm_map`); otherwise (``N > d``, or dependent rows) ``alpha X W*^T = P Y`` with
``P = X X^+`` the projection on the column space of ``X``, the least-squares fit
(:func:`least_squares_map`). Let ``k = rank W* <= min(K, rank X)`` (``k = K`` when ``W*``
interpolates; ``k < K`` is possible only without interpolation, e.g. when ``d < K``),
``W* = U S V^T`` its compact SVD (``U`` ``K x k``, ``S`` ``k``, ``V`` ``d x k``) and
``V_perp`` (``d x (d - k)``) an orthonormal complement of ``V``.

**The construction.** With random orthogonal ``F_l = [R_l, Q_l, ...]`` (``h x h``; ``R_l``
its first ``k`` columns, ``Q_l`` the next ``d - k``)::

    W_1 = R_1 S^{1/L} V^T + eps Q_1 V_perp^T
    W_l = R_l S^{1/L} R_{l-1}^T + eps Q_l Q_{l-1}^T        (2 <= l <= L-1)
    W_L = U S^{1/L} R_{L-1}^T

so ``W_{l:1} = R_l S^{l/L} V^T + eps^l Q_l V_perp^T`` for ``l <= L-1`` (the cross terms vanish
because ``R_l^T Q_l = 0``) and ``W_L ... W_1 = W*`` exactly. The weights are exactly balanced
up to layer ``L - 2``, and every hidden weight has ``k`` signal singular values ``s_j^{1/L}``
and ``d - k`` equal to ``eps``.

**Exact per-layer metrics.** ``[R_l, Q_l]`` has orthonormal columns, so the features
``H_l = X W_{l:1}^T`` have the Gram matrix of the reduced features
``Z_l = [X V S^{l/L}, eps^l X V_perp]`` (``N x d``), and every metric (traces, cosines of the
class means, NC1) is that of ``Z_l``. With ``M`` the ``(K, d)`` class means of ``X``,
``X_W = X - M[y]`` (within-class deviations) and ``X_B = M - mean_k M`` (centred means), for
``0 <= l <= L-1``::

    tr Sigma_W^l = (1/N) ||X_W V S^{l/L}||_F^2 + eps^{2l} (1/N) ||X_W V_perp||_F^2
    tr Sigma_B^l = (1/K) ||X_B V S^{l/L}||_F^2 + eps^{2l} (1/K) ||X_B V_perp||_F^2
    G_l = M V S^{2l/L} V^T M^T + eps^{2l} M V_perp V_perp^T M^T     (Gram of the class means)
    C_l = tr Sigma_W^l / tr Sigma_B^l,   D_l = 1 - max_{k != k'} G_kk' / sqrt(G_kk G_k'k'),
    NC1_l = tr(Sigma_W(Z_l) Sigma_B(Z_l)^+) / K.

When ``W*`` interpolates, ``W* X_W^T = 0``, hence ``X_W V = 0``: all within-class variation
lives in the ``eps``-subspace and ``tr Sigma_W^l = eps^{2l} tr Sigma_W^0`` (paper.md 3.3).
Without interpolation the signal part ``(1/N) ||X_W V S^{l/L}||^2`` survives, and ``C_l``
tends to the **floor** (:func:`compression_floor`)::

    F_l = (1/N) ||X_W V S^{l/L}||_F^2 / ((1/K) ||X_B V S^{l/L}||_F^2),

the ratio of the signal-subspace parts: ``C_l = F_l`` at ``eps = 0`` (``l >= 1``), and
``C_l - F_l = O((eps / s_min^{1/L})^{2l})``. At the output (``l = L``), ``W_L`` removes the
``eps``-subspace for every ``eps``, so ``C_L = F_L`` is the compression of the least-squares
fit ``P Y`` (zero exactly when the fit has no within-class variation, e.g. when it
interpolates).

**Idealised rate.** For orthogonal input rows of common norm ``r`` and ``n`` samples per
class, ``W* W*^T = n / (alpha r)^2 I``: every ``s_j = sqrt(n) / (alpha r)`` and the class means
lie in the signal subspace, so ``C_{l+1} / C_l = eps^2 (alpha^2 r^2 / n)^{1/L}`` exactly
(:func:`ideal_compression_rate`). In general ``rho ~ eps^2 / s_bar^{2/L}`` with ``s_bar`` the
geometric mean of the ``s_j`` (:func:`approximate_compression_rate`).
"""

from __future__ import annotations

import math
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
    "least_squares_map",
    "min_norm_balanced_network",
    "predicted_metrics",
    "compression_floor",
    "ideal_compression_rate",
    "approximate_compression_rate",
    "ideal_metrics",
    "first_order_discrimination",
    "orthogonality_gap",
    "min_norm_residual",
    "balancedness",
    "bulk_singular_values",
    "assumption_report",
]

#: Singular values of ``W*`` below ``RANK_RTOL * s_max`` count as zero: they set ``k = rank W*``
#: of the construction when ``W*`` does not interpolate.
RANK_RTOL = 1e-12


# ----------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------


def _inputs(X: Any, Y: Any) -> tuple[Tensor, Tensor, Tensor]:
    """Validate ``(X, Y)``; return ``(X (N, d) float64 CPU, Y (N, K) float64, y (N,) int64)``."""
    X = check_features(X, "X").cpu()
    N = X.shape[0]
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
    return X, Y, y


def _depth_eps(depth: Any, eps: Any) -> tuple[int, float]:
    return check_int(depth, "depth", minimum=1), check_float(eps, "eps", minimum=0.0)


def _alpha(alpha: Any) -> float:
    return check_float(alpha, "alpha", minimum=0.0, strict=True)


def _interpolating_map(X: Tensor, Y: Tensor, alpha: float) -> Tensor | None:
    """``alpha^{-1} Y^T (X X^T)^{-1} X`` when ``X`` has full row rank, else None."""
    if X.shape[0] > X.shape[1]:
        return None
    G = X @ X.T  # (N, N)
    cond = torch.linalg.cond(G)
    if not torch.isfinite(cond) or float(cond) > 1e14:
        return None
    return torch.linalg.solve(G, Y).T @ X / alpha


def _pinv_map(X: Tensor, Y: Tensor, alpha: float) -> Tensor:
    """``alpha^{-1} Y^T (X^+)^T`` from the SVD of ``X`` (the cut-off of ``numpy.linalg.pinv``)."""
    A, sig, Bh = torch.linalg.svd(X, full_matrices=False)  # (N, m), (m,), (m, d)
    keep = sig > max(X.shape) * torch.finfo(torch.float64).eps * sig[0]
    return (Y.T @ A[:, keep] / sig[keep]) @ Bh[keep] / alpha  # (K, d)


def min_norm_map(X: Any, Y: Any, alpha: float = 1.0) -> Tensor:
    """The minimum-Frobenius-norm map with ``alpha W X^T = Y^T``: ``W* = alpha^{-1} Y^T (X^+)^T``.

    It exists only when the rows of ``X`` are linearly independent (so ``N <= d``); for any
    ``X``, :func:`least_squares_map` gives the minimum-norm least-squares map.

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

    Used in: ch02.
    """
    X, Y, _ = _inputs(X, Y)
    alpha = _alpha(alpha)
    N, d = X.shape
    if N > d:
        raise ValueError(
            f"X has N = {N} samples in d = {d} dimensions: with N > d no linear map interpolates "
            "all targets in general, so the minimum-norm interpolating map does not exist "
            "(least_squares_map gives the minimum-norm least-squares map)"
        )
    W = _interpolating_map(X, Y, alpha)
    if W is None:
        cond = torch.linalg.cond(X @ X.T)
        raise ValueError(
            f"X X^T is singular (condition number {float(cond):.3g}): the rows of X must be "
            "linearly independent for exact interpolation (least_squares_map handles any X)"
        )
    return W


def least_squares_map(X: Any, Y: Any, alpha: float = 1.0) -> Tensor:
    """The minimum-norm least-squares map ``W* = alpha^{-1} Y^T (X^+)^T``, for any ``X``.

    It minimises ``||alpha W X^T - Y^T||_F`` and, among the minimisers, ``||W||_F``. When the
    rows of ``X`` are linearly independent it interpolates and equals :func:`min_norm_map` (it
    is computed that way); otherwise (``N > d`` or dependent rows) ``alpha X W*^T = X X^+ Y`` is
    the least-squares fit. ``X^+`` drops the singular values of ``X`` below
    ``max(N, d) * 2.2e-16 * sigma_max`` (numpy's ``matrix_rank`` rule).

    Parameters
    ----------
    X : Tensor or ndarray, shape (N, d)
        Inputs, any ``N`` and ``d``.
    Y : Tensor or ndarray, shape (N, K) or (N,)
        One-hot targets, or integer labels.
    alpha : float, default 1.0
        Output scale of the loss ``||alpha f(x) - y||^2``.

    Returns
    -------
    Tensor, shape (K, d), float64

    Examples
    --------
    >>> X = torch.tensor([[1.], [3.], [2.]]); y = torch.tensor([0, 0, 1])
    >>> least_squares_map(X, y)  # (Y^T X) / (X^T X) = [4, 2] / 14
    tensor([[0.2857],
            [0.1429]], dtype=torch.float64)

    Used in: ch02 (N > d: the least-squares network), ch05 and ch07 (the floor).
    """
    X, Y, _ = _inputs(X, Y)
    alpha = _alpha(alpha)
    W = _interpolating_map(X, Y, alpha)
    return _pinv_map(X, Y, alpha) if W is None else W


def _zero_class_means(X: Tensor, Y: Tensor) -> list[int]:
    """Classes whose mean in ``X`` is zero up to rounding (each class sum cancels to 1e-12)."""
    sums, scale = Y.T @ X, Y.T @ X.abs()  # (K, d)
    return torch.nonzero((sums.abs() <= 1e-12 * scale).all(1)).flatten().tolist()


def _signal_svd(
    X: Tensor, Y: Tensor, alpha: float
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, bool]:
    """``(W*, U (K, k), S (k,), V (d, k), V_perp (d, d-k), interpolates)`` for validated inputs.

    The interpolating case takes the exact path of :func:`min_norm_map` with ``k = K``.
    """
    W_star = _interpolating_map(X, Y, alpha)
    interpolates = W_star is not None
    if W_star is None:
        if len(_zero_class_means(X, Y)) == Y.shape[1]:
            raise ValueError(
                "the least-squares map W* is zero: every class mean of X is zero (X^T Y = 0), "
                "so no layer carries any signal"
            )
        W_star = _pinv_map(X, Y, alpha)
    U, S, Vh = torch.linalg.svd(W_star, full_matrices=True)  # (K,K), (min(K,d),), (d,d)
    if interpolates:
        if float(S[-1]) <= RANK_RTOL * float(S[0]):
            raise ValueError("the targets Y have rank < K: every class needs at least one sample")
        k = Y.shape[1]
    else:
        k = int((S > RANK_RTOL * S[0]).sum())
    return W_star, U[:, :k], S[:k], Vh[:k].T, Vh[k:].T, interpolates


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

    Its product is the minimum-norm least-squares map :func:`least_squares_map`: the
    interpolating :func:`min_norm_map` when the rows of ``X`` are linearly independent
    (``N <= d``), the least-squares fit otherwise (``N > d`` or dependent rows). The hidden
    weights carry ``k = rank W*`` signal singular values ``s_j^{1/L}`` (``k = K`` when ``W*``
    interpolates; ``k <= min(K, d)`` otherwise, so ``k < K`` when ``d < K``) and ``d - k`` equal
    to ``eps`` (the module docstring has the formulas).

    Parameters
    ----------
    X : Tensor or ndarray, shape (N, d)
        Inputs, any ``N`` and ``d``, with ``X^T Y != 0`` (not every class mean zero).
    Y : Tensor or ndarray, shape (N, K) or (N,)
        One-hot targets, or integer labels; every class needs a sample.
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
    >>> Xn = torch.tensor([[1., 0.], [3., 0.], [0., 1.], [0., 2.], [1., 1.]])  # N > d
    >>> yn = torch.tensor([0, 0, 1, 1, 1])
    >>> Ws = min_norm_balanced_network(Xn, yn, depth=2, eps=0.1)
    >>> bool(torch.allclose(Ws[1] @ Ws[0], least_squares_map(Xn, yn)))  # least squares
    True

    Used in: ch01, ch02, ch03.
    """
    X, Y, _ = _inputs(X, Y)
    depth, eps = _depth_eps(depth, eps)
    alpha = _alpha(alpha)
    d = X.shape[1]
    h = d if width is None else check_int(width, "width", minimum=1)
    if h < d:
        raise ValueError(f"width must be >= the input dimension d = {d}, got {h}")
    W_star, U, S, V, V_perp, _ = _signal_svd(X, Y, alpha)  # (K,k), (k,), (d,k), (d,d-k)
    if depth == 1:
        return [W_star]
    k = S.shape[0]
    root = S ** (1.0 / depth)  # (k,)
    frames = [_haar_orthogonal(h, generator) for _ in range(depth - 1)]
    R = [F[:, :k] for F in frames]  # (h, k)
    Q = [F[:, k:d] for F in frames]  # (h, d-k)
    weights = [(R[0] * root) @ V.T + eps * Q[0] @ V_perp.T]
    for l in range(1, depth - 1):
        weights.append((R[l] * root) @ R[l - 1].T + eps * Q[l] @ Q[l - 1].T)
    weights.append((U * root) @ R[-1].T)
    return weights


# ----------------------------------------------------------------------------------------
# exact and idealised predictions
# ----------------------------------------------------------------------------------------


def _class_parts(
    X: Tensor, Y: Tensor, y: Tensor, need_nonzero: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """``(means (K, d), X_W (N, d), X_B (K, d))``, checking that C (and D) are defined."""
    K = Y.shape[1]
    counts = torch.bincount(y, minlength=K).to(torch.float64)
    means = torch.zeros(K, X.shape[1], dtype=torch.float64).index_add_(0, y, X) / counts[:, None]
    X_W = X - means[y]  # (N, d) within-class deviations
    X_B = means - means.mean(0)  # (K, d) centred class means
    if float(X_B.abs().max()) <= 1e-12 * float(means.abs().max()):
        raise ValueError(
            "all class means of X coincide (tr Sigma_B = 0): the compression C is undefined "
            "at every layer"
        )
    zero = _zero_class_means(X, Y) if need_nonzero else []
    if zero:
        raise ValueError(
            f"class(es) {zero} have a zero class mean in X; it stays zero at every layer, so "
            "the discrimination D is undefined"
        )
    return means, X_W, X_B


def predicted_metrics(
    X: Any, Y: Any, depth: int, eps: float, alpha: float = 1.0
) -> LayerTable:
    """Exact per-layer C, D, NC1 and traces of the constructed network, for l = 0..L-1.

    The values do not depend on the random frames or the width: they equal the metrics of
    ``min_norm_balanced_network(X, Y, depth, eps, alpha)``'s features ``[X, H_1, ..., H_{L-1}]``
    to rounding error, for any ``X`` (interpolating or least-squares ``W*``; the module
    docstring derives the formulas). When ``W*`` interpolates, ``tr Sigma_W^l = eps^{2l}
    tr Sigma_W^0``; otherwise a signal part remains, and ``C_l`` tends to
    :func:`compression_floor` as ``eps -> 0``.

    Parameters
    ----------
    X : Tensor or ndarray, shape (N, d)
        Inputs, any ``N`` and ``d``; no class mean may be zero.
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
    >>> Xn = torch.tensor([[1., 0, 0], [3, 0, 0], [0, 1, 1], [0, 1, -1]])  # N > d, by hand:
    >>> # C_l = (0.4^{2l/L} + eps^{2l}) / (2 (0.4^{2l/L} + 1/4))
    >>> t = predicted_metrics(Xn, torch.tensor([0, 0, 1, 1]), depth=2, eps=0.5)
    >>> [round(c, 12) for c in t.compression.tolist()]
    [0.8, 0.5]

    Used in: ch03.
    """
    X, Y, y = _inputs(X, Y)
    depth, eps = _depth_eps(depth, eps)
    alpha = _alpha(alpha)
    N = X.shape[0]
    K = Y.shape[1]
    _, _, S, V, V_perp, interpolates = _signal_svd(X, Y, alpha)
    means, X_W, X_B = _class_parts(X, Y, y, need_nonzero=True)
    T_W = float((X_W @ V_perp).square().sum()) / N
    W_par = None if interpolates else X_W @ V  # (N, k); exactly 0 when W* interpolates
    B_par = X_B @ V  # (K, k) signal part of the centred means
    B_perp = float((X_B @ V_perp).square().sum()) / K
    M_par, M_perp = means @ V, means @ V_perp  # (K, k), (K, d-k)
    rows: dict[str, list[float]] = {
        c: [] for c in ("layer", "compression", "discrimination", "nc1", "trace_within",
                        "trace_between")
    }
    for l in range(depth):
        scale = S ** (l / depth)  # (k,)
        e2l = eps ** (2 * l)
        trW = e2l * T_W
        if W_par is not None:
            trW += float((W_par * scale).square().sum()) / N
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


def compression_floor(X: Any, Y: Any, depth: int, alpha: float = 1.0) -> LayerTable:
    """The floor of ``C_l``: its signal-subspace part, the ``eps -> 0`` limit, for l = 0..L.

    ``F_l = (1/N) ||X_W V S^{l/L}||_F^2 / ((1/K) ||X_B V S^{l/L}||_F^2)`` with ``W* = U S V^T``
    the minimum-norm least-squares map (module docstring). For ``1 <= l <= L-1``,
    :func:`predicted_metrics` gives ``C_l = F_l`` at ``eps = 0`` and ``C_l - F_l =
    O((eps / s_min^{1/L})^{2l})``; row ``l = L`` is the network's output, where ``C_L = F_L``
    for every ``eps``: the compression of the least-squares fit ``X X^+ Y``. Row 0 is the
    compression of ``X`` projected on the signal subspace ``V``. All rows are 0 when ``W*``
    interpolates (``N <= d``, independent rows): there compression has no floor. ``F_l`` is a
    lower bound of ``C_l`` exactly when the ``eps``-subspace part alone is less compressed,
    ``||X_W V_perp||^2 / ||X_B V_perp||^2 >= N F_l / K`` (``C_l`` is a mediant of the two).
    When ``rank W* = rank X`` (e.g. ``d <= K``) the ``eps``-subspace holds no data
    (``X V_perp = 0``) and ``C_l = F_l`` at every layer, for every ``eps``. The floor does not
    depend on ``eps`` or ``alpha``.

    Parameters
    ----------
    X : Tensor or ndarray, shape (N, d)
        Inputs, any ``N`` and ``d``.
    Y : Tensor or ndarray, shape (N, K) or (N,)
        One-hot targets, or integer labels.
    depth : int
        L >= 1.
    alpha : float, default 1.0
        Output scale (the floor does not depend on it).

    Returns
    -------
    LayerTable
        Columns ``layer, compression, trace_within, trace_between`` for ``l = 0..L``: the floor
        ``F_l`` and the signal parts of ``tr Sigma_W^l`` and ``tr Sigma_B^l``.

    Examples
    --------
    >>> X = torch.tensor([[1., 0, 0], [3, 0, 0], [0, 1, 1], [0, 1, -1]])
    >>> y = torch.tensor([0, 0, 1, 1])
    >>> # F_l = a / (2 (a + 1/4)) with a = 0.4^{2l/L}: 0.4, 4/13, 8/41
    >>> [round(f, 6) for f in compression_floor(X, y, depth=2).compression.tolist()]
    [0.4, 0.307692, 0.195122]

    Used in: ch02, ch05 (the floor of the hybrid's linear part), ch07 (the N > d run).
    """
    X, Y, y = _inputs(X, Y)
    depth = check_int(depth, "depth", minimum=1)
    alpha = _alpha(alpha)
    N, K = X.shape[0], Y.shape[1]
    _, _, S, V, _, interpolates = _signal_svd(X, Y, alpha)
    _, X_W, X_B = _class_parts(X, Y, y, need_nonzero=False)
    W_par, B_par = X_W @ V, X_B @ V  # (N, k), (K, k)
    rows: dict[str, list[float]] = {
        c: [] for c in ("layer", "compression", "trace_within", "trace_between")
    }
    for l in range(depth + 1):
        scale = S ** (l / depth)  # (k,)
        trW = 0.0 if interpolates else float((W_par * scale).square().sum()) / N
        trB = float((B_par * scale).square().sum()) / K
        rows["layer"].append(l)
        rows["compression"].append(trW / trB)
        rows["trace_within"].append(trW)
        rows["trace_between"].append(trB)
    return LayerTable(rows)


def ideal_compression_rate(
    eps: float, alpha: float, n: int, depth: int, norm: float = 1.0
) -> float:
    """Idealised per-layer compression ratio ``rho = C_{l+1}/C_l = eps^2 (alpha^2 r^2/n)^{1/L}``.

    Exact, for every ``eps`` and every layer of the constructed network
    (:func:`predicted_metrics`), when the input rows are orthogonal with a common norm
    ``r = norm`` and every class has ``n`` samples: then ``W*`` has all ``K`` singular values
    ``sqrt(n) / (alpha r)``, so this is :func:`approximate_compression_rate` with those values.
    For nearly orthogonal inputs, or for a network trained from an orthogonal initialisation
    of scale ``eps``, the measured ratio is within a few per cent while ``eps`` is well below
    the per-layer signal singular value ``(sqrt(n)/(alpha r))^{1/L}``. Features that are not
    unit-norm (extractor outputs, BatchNorm features, images) must pass their ``norm``: the
    unit-norm formula is off by the factor ``r^{2/L}`` (at ``r = 5``, ``eps = 0.3``,
    ``alpha = 1``, ``n = 10``, ``L = 6``: 0.1048, not 0.0613).

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
    norm : float, default 1.0
        ``r > 0``, the common norm of the orthogonal input rows (1 for orthonormal rows).

    Returns
    -------
    float

    Examples
    --------
    >>> round(ideal_compression_rate(0.3, 100.0, 10, 6), 4)
    0.2846
    >>> round(ideal_compression_rate(0.3, 1.0, 10, 6), 4)  # orthonormal rows
    0.0613
    >>> round(ideal_compression_rate(0.3, 1.0, 10, 6, norm=5.0), 4)  # orthogonal, norm 5
    0.1048

    Used in: ch03.
    """
    eps = check_float(eps, "eps", minimum=0.0)
    alpha = _alpha(alpha)
    n = check_int(n, "n", minimum=1)
    depth = check_int(depth, "depth", minimum=1)
    r = check_float(norm, "norm", minimum=0.0, strict=True)
    # r = 1 multiplies by 1.0 exactly: the unit-norm value is unchanged to the last bit
    return eps**2 * (alpha**2 * r**2 / n) ** (1.0 / depth)


def approximate_compression_rate(eps: float, singular_values: Any, depth: int) -> float:
    """General per-layer compression ratio ``rho ~ eps^2 / s_bar^{2/L}`` (geometric mean s_bar).

    ``s_j`` are the nonzero singular values of the minimum-norm map ``W*``
    (``torch.linalg.svdvals(least_squares_map(X, Y, alpha))``). The ratio is exact when all
    ``s_j`` are equal and ``W*`` interpolates with the class means in its row space (orthogonal
    rows of equal norm, ``n`` per class: :func:`ideal_compression_rate`). Otherwise it is an
    approximation of the exact per-layer ratios of :func:`predicted_metrics`, which weight the
    ``s_j`` differently at each layer: good (a few per cent) while the ``s_j`` are close, the
    data nearly orthogonal, and ``eps`` well below the per-layer signal ``s_bar^{1/L}``.

    Parameters
    ----------
    eps : float
        Bulk singular value ``eps >= 0``.
    singular_values : Tensor, ndarray or sequence, shape (k,)
        The nonzero singular values of ``W*``, all ``> 0``.
    depth : int
        L >= 1.

    Returns
    -------
    float

    Examples
    --------
    >>> round(approximate_compression_rate(0.3, [10 ** 0.5 / 100] * 3, 6), 4)  # = ideal rate
    0.2846
    >>> approximate_compression_rate(0.5, [4.0, 1.0], depth=2)  # s_bar = 2: 0.25 / 2^(2/2)
    0.125

    Used in: ch02 (the smallest example), ch03 (the general rate).
    """
    eps = check_float(eps, "eps", minimum=0.0)
    depth = check_int(depth, "depth", minimum=1)
    s = as_tensor(singular_values, "singular_values").detach().to("cpu", torch.float64)
    if s.ndim != 1 or s.numel() == 0:
        raise ValueError(
            f"singular_values must be a non-empty 1-D list of the singular values of W*, got "
            f"shape {tuple(s.shape)}"
        )
    if not bool(torch.isfinite(s).all()) or bool((s <= 0).any()):
        raise ValueError(
            "singular_values must be finite and > 0 (drop the zero singular values of a "
            f"rank-deficient W*), got {s.tolist()}"
        )
    log_s_bar = float(torch.log(s).mean())  # log of the geometric mean
    return eps**2 * math.exp(-2.0 * log_s_bar / depth)


def ideal_metrics(
    num_classes: int,
    num_per_class: int,
    depth: int,
    eps: float,
    alpha: float = 1.0,
    norm: float = 1.0,
) -> LayerTable:
    """Idealised C_l (orthogonal inputs): ``C_l = C_0 rho^l``, ``C_0 = K(n-1)/(K-1)``.

    Instant to evaluate, for the theory explorer. Exact for orthogonal input rows of common
    norm ``r`` with ``n`` samples per class (``C_0`` does not depend on ``r``, the rate
    :func:`ideal_compression_rate` does). The class means stay orthogonal, so ``D_l = 1`` at
    every layer.

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
    norm : float, default 1.0
        ``r > 0``, the common norm of the input rows.

    Returns
    -------
    LayerTable
        Columns ``layer, compression, discrimination`` for ``l = 0..L-1``.

    Examples
    --------
    >>> ideal_metrics(3, 10, depth=2, eps=0.5).compression.tolist()[0]
    13.5
    >>> round(ideal_metrics(3, 10, depth=6, eps=0.3, norm=5.0).compression.tolist()[1] / 13.5, 4)
    0.1048

    Used in: ch03, ch08.
    """
    K = check_int(num_classes, "num_classes", minimum=2)
    n = check_int(num_per_class, "num_per_class", minimum=1)
    rho = ideal_compression_rate(eps, alpha, n, depth, norm=norm)
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
    :func:`predicted_metrics` for ``l >= 1`` (on the paper's synthetic data: median gap about
    ``1.5e-4``, worst case about ``7e-3``, from the dropped ``eps^{2l}`` term; ch03 measures both);
    the row ``l = 0`` holds ``D~_0`` itself, not the input's ``D_0``. It needs an interpolating
    ``W*`` (``N <= d``, independent rows: it uses ``W* M^T = I / alpha``).

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

    Used in: ch03.
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

    Used in: ch02.
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

    Used in: ch02 (and ch04 through :func:`pncutils.book.experiments.assumption_grid`).
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

    Used in: ch02, ch03, ch04.
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

    Used in: ch02 (and ch04 through :func:`pncutils.book.experiments.assumption_grid`).
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

    Used in: ch02.
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
