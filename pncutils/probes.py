"""Linear probes: one closed-form ridge solver, on full features, streamed or cross-validated.

A linear probe asks how linearly separable a layer's features are (Figure 1 of the paper,
bottom): fit ``[H, 1] W ~ one_hot(y)`` by least squares and score ``argmax``. The paper trains
it by SGD; here it is the exact minimiser, in closed form (ridge regression with a bias that
is not penalised, ``lambda = ridge * tr(H_c^T H_c) / D`` relative to the features' scale):

* :func:`linear_probe_accuracy` on a full ``(N, D)`` matrix (primal or dual form);
* :class:`GramStats` and :func:`solve_streamed` from moments accumulated over batches
  (:func:`pncutils.measure`, :func:`pncutils.analysis.layer_report`);
* :func:`cv_ridge` chooses the ridge by stratified k-fold cross-validation on the
  probe's training set, :func:`probe_accuracy` fits with a fixed or cross-validated ridge.

All primal solves go through one function (:func:`_ridge_solve`).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from pncutils._checks import check_features, check_float, check_int, check_labels

__all__ = [
    "linear_probe_accuracy",
    "GramStats",
    "solve_streamed",
    "rank_from_singular_values",
    "PROBE_RIDGE_GRID",
    "check_ridge",
    "cv_ridge",
    "probe_accuracy",
]


def linear_probe_accuracy(
    H: Any,
    y: Any,
    H_test: Any | None = None,
    y_test: Any | None = None,
    ridge: float = 1e-6,
    num_classes: int | None = None,
) -> float:
    """Accuracy of a closed-form (ridge) least-squares linear probe with bias.

    Fits ``[H, 1] W ~ one_hot(y)`` by ridge regression (the exact minimiser of the MSE probe
    the paper trains by SGD) and returns top-1 accuracy of ``argmax([H, 1] W)``.

    Parameters
    ----------
    H : Tensor or ndarray, shape (N, D)
        Training features.
    y : Tensor or ndarray, shape (N,)
        Training labels in ``[0, K)``.
    H_test, y_test : optional, shapes (M, D) and (M,)
        Held-out data; when given the held-out accuracy is returned instead of the training
        accuracy. ``y_test`` must lie in the training classes ``[0, K)``; it need not
        contain all of them.
    ridge : float, default 1e-6
        Ridge strength relative to the mean squared feature scale
        (``lambda = ridge * tr(H_c^T H_c) / D``, with ``H_c`` the centred features);
        the bias is not penalised.
    num_classes : int, optional
        K; inferred as ``y.max() + 1`` when omitted.

    Returns
    -------
    float
        Accuracy in ``[0, 1]``.

    Examples
    --------
    >>> H = torch.tensor([[0.], [1.], [4.], [5.]]); y = torch.tensor([0, 0, 1, 1])
    >>> linear_probe_accuracy(H, y)
    1.0

    Used in: ch01, ch05, ch08.
    """
    H = check_features(H)
    y, K = check_labels(y, H.shape[0], num_classes, device=H.device)
    ridge = check_float(ridge, "ridge", minimum=0.0)
    if (H_test is None) != (y_test is None):
        raise ValueError("give both H_test and y_test, or neither")
    mean = H.mean(0)
    Hc = H - mean  # centring makes the bias the mean of the targets
    Y = torch.nn.functional.one_hot(y, K).to(H.dtype)  # (N, K)
    Y_mean = Y.mean(0)
    N, D = Hc.shape
    lam = ridge * float((Hc * Hc).sum()) / D
    if N >= D:
        W = _ridge_solve(Hc.T @ Hc, Hc.T @ (Y - Y_mean), lam)  # (D, K)
    else:  # dual form: W = Hc^T (Hc Hc^T + lam I)^{-1} Y
        G = Hc @ Hc.T + lam * torch.eye(N, dtype=H.dtype, device=H.device)
        W = Hc.T @ torch.linalg.lstsq(G, Y - Y_mean).solution
    if H_test is None:
        H_eval, y_eval = Hc, y
    else:
        H_eval = check_features(H_test, "H_test")
        if H_eval.shape[1] != D:
            raise ValueError(f"H_test has {H_eval.shape[1]} columns but H has {D}")
        # held-out labels: in the training classes [0, K), any of them possibly absent
        y_eval, _ = check_labels(y_test, H_eval.shape[0], K, device=H_eval.device,
                                 require_all=False)
        H_eval = H_eval.to(H.device) - mean
        y_eval = y_eval.to(H.device)
    pred = (H_eval @ W + Y_mean).argmax(1)
    return float((pred == y_eval).to(H.dtype).mean())


class GramStats:
    """Shifted Gram matrix, column sums and per-class sums of one layer's features (float64).

    Streams the moments of a closed-form probe and of the numerical rank
    (:func:`solve_streamed`, :meth:`singular_values`); memory O(D^2 + D K).

    With a fixed shift ``c`` (the mean of the first batch), it accumulates over batches
    ``G_c = sum_i (h_i - c)(h_i - c)^T`` (D, D), ``s_c = sum_i (h_i - c)`` (D,) and
    ``S_c[:, k] = sum_{i: y_i = k} (h_i - c)`` (D, K). The shift keeps the centred Gram
    ``G_c - s_c s_c^T / N`` (the probe's normal matrix) free of the cancellation that
    ``H^T H - N m m^T`` suffers when the mean is large (ReLU features).

    Used in: ch05, ch06 (through :func:`pncutils.measure`).
    """

    def __init__(self, H: Tensor, K: int) -> None:
        self.shift = H.mean(0)  # (D,)
        D = H.shape[1]
        self.G = torch.zeros(D, D, dtype=torch.float64, device=H.device)
        self.s = torch.zeros(D, dtype=torch.float64, device=H.device)
        self.S = torch.zeros(D, K, dtype=torch.float64, device=H.device)
        self.N = 0

    def update(self, H: Tensor, y: Tensor) -> None:
        Hs = H - self.shift  # (B, D)
        self.G.addmm_(Hs.T, Hs)
        self.s += Hs.sum(0)
        self.S.index_add_(1, y, Hs.T)
        self.N += H.shape[0]

    def singular_values(self) -> Tensor:
        """Singular values of the uncentred ``(N, D)`` matrix, descending, ``min(N, D)`` of them.

        ``H^T H = G_c + c s_c^T + s_c c^T + N c c^T``; its eigenvalues are ``sigma_i^2``.
        """
        c = self.shift
        gram = self.G + torch.outer(c, self.s) + torch.outer(self.s, c) + self.N * torch.outer(c, c)
        gram = (gram + gram.T) / 2
        ev = torch.linalg.eigvalsh(gram).flip(0).clamp_(min=0.0)  # (D,) descending
        return ev[: min(self.N, ev.shape[0])].sqrt()


def rank_from_singular_values(s: Tensor, energy: float) -> int:
    """Smallest r with ``s_1 + ... + s_r >= energy * sum s`` (as ``metrics.numerical_rank``).

    >>> rank_from_singular_values(torch.tensor([3.0, 1.0, 0.0]), 0.7)
    1

    Used in: ch05, ch06 (through :func:`pncutils.measure`).
    """
    total = float(s.sum())
    if total == 0.0:
        return 0
    reached = torch.cumsum(s, 0) >= energy * total * (1 - 1e-12)
    return int(torch.nonzero(reached)[0]) + 1


def solve_streamed(st: GramStats, counts: Tensor, ridge: float) -> tuple[Tensor, Tensor, Tensor]:
    """The closed-form ridge probe from streamed moments: ``(W (D, K), mean (D,), Y_mean (K,))``.

    The same probe as :func:`linear_probe_accuracy` (centred features, unpenalised bias,
    ``lambda = ridge * tr(H_c^T H_c) / D``), from a :class:`GramStats` and the class counts
    ``(K,)``; predict with ``argmax((h - mean) @ W + Y_mean)``.

    Examples
    --------
    >>> H = torch.tensor([[0.], [1.], [4.], [5.]], dtype=torch.float64)
    >>> y = torch.tensor([0, 0, 1, 1])
    >>> st = GramStats(H, 2); st.update(H, y)
    >>> W, mean, Y_mean = solve_streamed(st, torch.tensor([2., 2.], dtype=torch.float64), 1e-6)
    >>> ((H - mean) @ W + Y_mean).argmax(1).tolist()
    [0, 0, 1, 1]

    Used in: ch05, ch06 (through :func:`pncutils.measure`).
    """
    N, D = st.N, st.G.shape[0]
    m_c = st.s / N  # (D,) mean minus shift
    Gc = st.G - torch.outer(st.s, st.s) / N  # (D, D) = H_c^T H_c
    Y_mean = counts / N  # (K,)
    # H_c^T (Y - Y_mean) = sum_i (h_i - c) y_i^T - s_c Y_mean^T   (since sum_i (y_i - Y_mean) = 0)
    rhs = st.S - torch.outer(st.s, Y_mean)  # (D, K)
    lam = ridge * float(torch.diagonal(Gc).sum()) / D
    return _ridge_solve(Gc, rhs, lam), st.shift + m_c, Y_mean


def _ridge_solve(Gc: Tensor, rhs: Tensor, lam: float) -> Tensor:
    """``(Gc + lam I)^+ rhs``: the one primal ridge solve of this module, ``(D, D), (D, K)``.

    Solved on the CPU whatever the device: LAPACK's gelsy also handles a singular matrix
    (``lam = 0``), which CUDA's lstsq (gels, full rank only) does not.
    """
    A = Gc + lam * torch.eye(Gc.shape[0], dtype=Gc.dtype, device=Gc.device)
    return torch.linalg.lstsq(A.cpu(), rhs.cpu()).solution.to(Gc.device)


PROBE_RIDGE_GRID: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def check_ridge(probe_ridge: Any) -> float | str:
    """``probe_ridge`` as a float >= 0 (a fixed ridge) or the string ``"cv"``."""
    if isinstance(probe_ridge, str):
        if probe_ridge != "cv":
            raise ValueError(f'probe_ridge must be a number >= 0 or "cv", got {probe_ridge!r}')
        return probe_ridge
    if isinstance(probe_ridge, bool) or not isinstance(probe_ridge, numbers.Real):
        raise ValueError(f'probe_ridge must be a number >= 0 or "cv", got {probe_ridge!r}')
    return check_float(probe_ridge, "probe_ridge", minimum=0.0)


def cv_ridge(
    H: Any,
    y: Any,
    ridges: Sequence[float] = PROBE_RIDGE_GRID,
    folds: int = 5,
    num_classes: int | None = None,
    return_scores: bool = False,
) -> float | tuple[float, list[float]]:
    """The ridge of a linear probe, chosen by k-fold cross-validation on its training set.

    For every relative ridge in `ridges` the probe of
    :func:`linear_probe_accuracy` (same centring, same
    ``lambda = ridge * tr(H_c^T H_c) / D`` computed on each fold's training part) is fitted
    on ``folds - 1`` folds and scored on the held-out fold; the ridge with the highest
    pooled held-out accuracy wins, ties going to the lower held-out squared error of the
    probe's outputs (then to the first in `ridges`). Only ``(H, y)`` is seen: pass the
    probe's *training* set, never its test set.

    The folds are deterministic and stratified: the ``i``-th sample of class ``k`` (in the
    order of `H`) goes to fold ``i mod folds``. Each fold costs one eigendecomposition of a
    Gram matrix of size ``min(n, D)``, shared by the whole grid.

    Parameters
    ----------
    H : Tensor or ndarray, shape (N, D)
        Training features of the probe.
    y : Tensor or ndarray, shape (N,)
        Training labels in ``[0, K)``.
    ridges : sequence of float, default :data:`PROBE_RIDGE_GRID`
        Candidate relative ridges (``>= 0``, at least one).
    folds : int, default 5
        Number of folds, ``>= 2``; every class needs at least `folds` samples.
    num_classes : int, optional
        K; inferred as ``y.max() + 1`` when omitted.
    return_scores : bool, default False
        Also return the pooled held-out accuracy of every ridge.

    Returns
    -------
    float, or (float, list of float)
        The chosen ridge (an element of `ridges`), and with ``return_scores=True`` the
        held-out accuracies in the order of `ridges`.

    Examples
    --------
    One informative direction among 90, and 100 samples: the nearly unregularised probe
    interpolates the noise, a larger ridge generalises.

    >>> g = torch.Generator().manual_seed(0)
    >>> y = torch.arange(100) % 2
    >>> H = torch.randn(100, 90, generator=g)
    >>> H[:, 0] += 2.0 * y
    >>> cv_ridge(H, y, ridges=[1e-6, 1.0], return_scores=True)
    (1.0, [0.65, 0.79])

    Used in: ch08.
    """
    H = check_features(H)
    y, K = check_labels(y, H.shape[0], num_classes, device=H.device)
    folds = check_int(folds, "folds", minimum=2)
    if isinstance(ridges, str | bytes) or not isinstance(ridges, Sequence | Tensor):
        raise ValueError(f"ridges must be a sequence of numbers, got {ridges!r}")
    grid = [check_float(r, "ridges", minimum=0.0) for r in ridges]
    if not grid:
        raise ValueError("ridges is empty")
    onehot = torch.nn.functional.one_hot(y, K).to(H.dtype)  # (N, K)
    counts = onehot.sum(0)
    small = [(k, int(c)) for k, c in enumerate(counts.tolist()) if c < folds]
    if small:
        raise ValueError(f"cross-validation with folds={folds} needs at least {folds} samples "
                         f"of every class; class {small[0][0]} has {small[0][1]}")
    # stratified folds by position within the class: no RNG
    rank = (onehot.cumsum(0)[torch.arange(H.shape[0], device=H.device), y] - 1).long()
    fold = rank % folds
    lam_rel = torch.tensor(grid, dtype=H.dtype, device=H.device)  # (R,)
    correct = torch.zeros(len(grid), dtype=H.dtype, device=H.device)
    sq_err = torch.zeros(len(grid), dtype=H.dtype, device=H.device)
    eps = torch.finfo(H.dtype).eps
    for f in range(folds):
        held = fold == f
        A, Yf = H[~held], onehot[~held]
        mean, Y_mean = A.mean(0), Yf.mean(0)
        Ac, Yc = A - mean, Yf - Y_mean
        V = H[held] - mean  # held-out features, centred like the fit
        n, D = Ac.shape
        if n >= D:  # primal: W = U diag(1/(e+lam)) U^T Ac^T Yc with Ac^T Ac = U diag(e) U^T
            e, U = torch.linalg.eigh(Ac.T @ Ac)
            P, B = V @ U, U.T @ (Ac.T @ Yc)
        else:  # dual: W = Ac^T U diag(1/(e+lam)) U^T Yc with Ac Ac^T = U diag(e) U^T
            e, U = torch.linalg.eigh(Ac @ Ac.T)
            P, B = (V @ Ac.T) @ U, U.T @ Yc
        e = e.clamp(min=0.0)
        lam = lam_rel * float((Ac * Ac).sum()) / D
        denom = e[None, :] + lam[:, None]  # (R, r)
        tol = float(e.max()) * max(n, D) * eps  # lam = 0: a pseudo-inverse
        inv = torch.where(denom > tol, denom.reciprocal(), torch.zeros_like(denom))
        out = P @ (inv[:, :, None] * B) + Y_mean  # (R, n_held, K): every ridge at once
        target = onehot[held]
        correct += (out.argmax(2) == y[held]).sum(1).to(H.dtype)
        sq_err += ((out - target) ** 2).sum((1, 2))
    acc = (correct / H.shape[0]).tolist()
    err = sq_err.tolist()
    best = max(range(len(grid)), key=lambda i: (acc[i], -err[i], -i))
    return (grid[best], acc) if return_scores else grid[best]


def probe_accuracy(
    H: Any,
    y: Any,
    H_test: Any,
    y_test: Any,
    probe_ridge: float | str = "cv",
) -> tuple[float, float]:
    """Test accuracy of the ridge probe, with a fixed or a cross-validated ridge.

    Parameters
    ----------
    H, y : shapes (N, D) and (N,)
        Training features and labels of the probe.
    H_test, y_test : shapes (M, D) and (M,)
        Test features and labels (used only to score the fitted probe).
    probe_ridge : float or "cv", default "cv"
        A relative ridge ``>= 0`` (see :func:`linear_probe_accuracy`), or
        ``"cv"``: chosen by :func:`cv_ridge` on ``(H, y)`` over
        :data:`PROBE_RIDGE_GRID` with 5 folds.

    Returns
    -------
    accuracy : float
        Test accuracy of the probe fitted on all of ``(H, y)``.
    ridge : float
        The ridge used.

    Examples
    --------
    >>> H = torch.tensor([[0.], [1.], [4.], [5.]]); y = torch.tensor([0, 0, 1, 1])
    >>> probe_accuracy(H, y, H, y, probe_ridge=1e-3)
    (1.0, 0.001)
    >>> probe_accuracy(H, y, H, y, probe_ridge="auto")
    Traceback (most recent call last):
    ...
    ValueError: probe_ridge must be a number >= 0 or "cv", got 'auto'

    Used in: ch08.
    """
    ridge = check_ridge(probe_ridge)
    if ridge == "cv":
        ridge = cv_ridge(H, y, ridges=PROBE_RIDGE_GRID)  # the grid as it is now
    return linear_probe_accuracy(H, y, H_test, y_test, ridge=ridge), ridge
