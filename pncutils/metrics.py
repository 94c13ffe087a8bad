"""Layerwise metrics of features: compression C, discrimination D, NC1, traces and rank.

Conventions (the book's notation page states them once):

* rows are samples: features ``H`` are ``(N, D)``, labels ``y`` are ``(N,)`` integers in ``[0, K)``;
  the paper stacks samples as columns, so its ``Z_l`` is our ``H_l.T``;
* ``mu_k`` is the **uncentred** mean of class ``k`` and ``mu_G`` the mean of the class means
  (equal to the global mean for balanced classes);
* ``Sigma_W = (1/N) sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T`` (pooled over samples, divided by N);
* ``Sigma_B = (1/K) sum_k (mu_k - mu_G)(mu_k - mu_G)^T`` (unweighted over classes, divided by K).

Every function validates its inputs (clear :class:`ValueError` messages), never modifies them,
computes in float64 on the input's device (the CPU for MPS, which has no float64), and returns
Python floats for scalars and CPU float64 tensors for per-layer curves. The input is never
copied whole: rows are converted to float64 a chunk at a time, and within-class quantities are
accumulated chunk by chunk with each row shifted by its class's running mean (see
``_accumulate``), which keeps them exact under large common offsets (adding ``1e6`` to every
feature changes ``C`` by about ``1e-11``); memory stays O(N + chunk D + K D) beyond the input.

See Also
--------
book chapter 1 : the definitions, the conventions of other papers and libraries, and their
conversions.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from pncutils._checks import (
    as_tensor,
    check_features,
    check_float,
    check_int,
    check_labels,
)
from pncutils.fits import Fit, line, mean_ratio
from pncutils.probes import linear_probe_accuracy

__all__ = [
    "class_means",
    "within_class_cov",
    "between_class_cov",
    "compression",
    "discrimination",
    "nc1",
    "numerical_rank",
    "linear_probe_accuracy",
    "LayerTable",
    "LayerwiseStats",
    "layerwise",
    "LinearFit",
    "linear_fit",
    "geometric_rate",
    "PINV_RTOL",
    "TABLE_COLUMNS",
]

#: Relative cut-off of the pseudo-inverse in :func:`nc1`: singular values of the centred
#: class-mean matrix below ``PINV_RTOL * sigma_max`` count as zero. The centring makes the
#: K-th singular value exactly zero in exact arithmetic (about ``1e-16 sigma_max`` in float64),
#: and an explicit cut-off keeps it out of the pseudo-inverse whatever the library's default.
#: (The reference code's ``scipy.linalg.pinv`` has its own default cut-off: in every case
#: tried its NC1 equalled a float32 emulation of this one to 2e-7.)
PINV_RTOL = 1e-10

#: Columns of the per-layer table returned by :func:`layerwise` and :class:`LayerwiseStats`.
TABLE_COLUMNS = ("layer", "compression", "discrimination", "nc1", "trace_within", "trace_between")


# ----------------------------------------------------------------------------------------
# internal building blocks (validated inputs only)
# ----------------------------------------------------------------------------------------


def _prepare(H: Any, y: Any, num_classes: int | None) -> tuple[Tensor, Tensor, int]:
    """Validate and return ``(H in its own dtype, y int64 on H's device, K)``.

    ``H`` is not converted to float64 here: :class:`_Moments` converts it a chunk of rows at
    a time (a full-size float64 copy costs more than the arithmetic) and finds NaN and Inf on
    the way (see :func:`_features`).
    """
    H = _features(H)
    y, K = check_labels(y, H.shape[0], num_classes, device=H.device)
    return H, y, K


def _features(H: Any, name: str = "H") -> Tensor:
    """:func:`check_features` without its full-size float64 copy, with the same messages.

    Shape and dtype are checked here; NaN and Inf are found by :func:`_accumulate`, whose
    running sums they make non-finite, and which then calls :func:`check_features` for the
    message. Returns ``H`` detached, in its own dtype, on the device where the float64 work
    is done (the CPU for MPS, which has no float64).
    """
    T = as_tensor(H, name)
    if T.ndim != 2 or 0 in T.shape or T.dtype == torch.bool or T.is_complex():
        check_features(T, name)  # raises the shape or dtype message
    return T.detach().to("cpu" if T.device.type == "mps" else T.device)


class _ClassRows:
    """Subtracts class rows ``M[y_i]`` from a float64 chunk ``d`` in place, one reused buffer.

    With few classes a GEMM with the chunk's one-hot labels (faster than a gather there), with
    ``K >= MANY`` a gather into the buffer; both round ``d_i - M[y_i]`` once, so are exact.

    Parameters
    ----------
    K, D, rows : int
        Classes, columns, and the most rows of a chunk.
    device : torch.device
    """

    MANY = 32

    def __init__(self, K: int, D: int, rows: int, device: torch.device) -> None:
        self.gemm = K < self.MANY
        self.buf = torch.empty(rows, K if self.gemm else D, dtype=torch.float64, device=device)

    def subtract(self, d: Tensor, M: Tensor, y: Tensor) -> Tensor:
        """``d -= M[y]``: ``d`` (B, D) float64, ``M`` (K, D) float64, ``y`` (B,) int64."""
        w = self.buf[: d.shape[0]]
        if self.gemm:
            return d.addmm_(w.zero_().scatter_(1, y[:, None], 1.0), M, alpha=-1)
        return d.sub_(torch.index_select(M, 0, y, out=w))


def _chunk_rows(device: torch.device, K: int) -> int:
    """Rows per float64 chunk: ``_Moments.CHUNK`` on the CPU, 8 times more elsewhere, and at
    least ``4 K`` with many classes, so that a chunk's O(K D) updates stay a fraction of its
    O(rows D) work."""
    rows = _Moments.CHUNK if device.type == "cpu" else 8 * _Moments.CHUNK
    return max(rows, 4 * K) if K >= _ClassRows.MANY else rows


def _accumulate(H: Tensor, y: Tensor, counts: Tensor, shift: Tensor, means: Tensor,
                scatter: Tensor, chunk: int, name: str = "H") -> None:
    """Add the rows of ``H`` to running per-class moments in one pass over float64 chunks.

    The one kernel of :func:`layerwise` (through :class:`_Moments`) and of
    :class:`LayerwiseStats`. ``chunk`` rows at a time are converted into one reused float64
    buffer (never the whole matrix) and shifted by their class's current mean, ``d_i = h_i -
    r_{y_i}`` (see :class:`_ClassRows`; ``r_k`` is the running mean rounded, or the class's
    first sample before it has one). For class ``k`` with ``n`` samples so far and
    ``m`` in the chunk, ``b_k = mean(d_i)`` and ``delta_k = b_k + rho_k`` (the chunk mean
    minus the running mean, ``rho_k`` the rounding error of ``r_k``), then (Chan, Golub &
    LeVeque 1979)::

        scatter += sum_i d_i d_i^T - m b_k b_k^T + n m / (n + m) delta_k delta_k^T
        mean_k  += m / (n + m) delta_k

    Because ``r_k`` lies within a few standard deviations of the class mean, the subtraction
    loses at most a bit whatever the features' offset (unlike ``sum x^2 - n mu^2``), and the
    means are stored minus ``shift``, so a large common offset costs no precision either.

    Parameters
    ----------
    H : Tensor, shape (N, D)
        Features, any real dtype, on the device of the state.
    y : Tensor, shape (N,)
        int64 labels in ``[0, K)``, on the device of ``H``.
    counts : Tensor, shape (K,)
        float64 samples per class before these rows (not modified).
    shift : Tensor, shape (D,)
        float64 offset ``s`` of the stored means.
    means : Tensor, shape (K, D)
        float64 running class means minus ``shift`` (rows of classes without samples are
        ignored); updated in place.
    scatter : Tensor, shape () or (D, D)
        float64 running within-class scatter: its trace, or the matrix; updated in place.
    chunk : int
        Rows per chunk.
    name : str, default "H"
        Name of ``H`` in the NaN/Inf message.

    Examples
    --------
    >>> H = torch.tensor([[0.], [2.], [5.]]); y = torch.tensor([0, 0, 1])
    >>> counts, shift = torch.zeros(2, dtype=torch.float64), H[0].double()
    >>> means, sq = torch.zeros(2, 1, dtype=torch.float64), torch.zeros((), dtype=torch.float64)
    >>> _accumulate(H, y, counts, shift, means, sq, chunk=2)
    >>> (means + shift).flatten().tolist(), float(sq)  # deviations -1, 1, 0
    ([1.0, 5.0], 2.0)
    """
    N, D = H.shape
    K, dev, f64 = counts.shape[0], H.device, torch.float64
    # per-chunk class counts and merge weights, for all chunks at once
    nch = -(-N // chunk)
    cut = torch.arange(N, device=dev) // chunk
    m = torch.bincount(cut * K + y, minlength=nch * K).view(nch, K).to(f64)  # (nch, K)
    n = counts + torch.cumsum(m, 0) - m  # samples before each chunk
    w_new = m / (n + m).clamp(min=1)  # (nch, K)
    w_cross = n * w_new
    inv_m = 1 / m.clamp(min=1)
    if bool((counts == 0).any()):  # a class's first sample is its first shift
        first = torch.full((K,), N, dtype=torch.int64, device=dev).scatter_reduce_(
            0, y, torch.arange(N, device=dev), "amin")
        new = torch.nonzero((counts == 0) & (first < N)).flatten()
        means[new] = H[first[new]].to(f64) - shift
    buf = torch.empty(min(chunk, N), D, dtype=f64, device=dev)
    rows_of = _ClassRows(K, D, buf.shape[0], dev)
    S1 = torch.empty(K, D, dtype=f64, device=dev)
    for c, a in enumerate(range(0, N, chunk)):
        b = min(a + chunk, N)
        r = means + shift  # (K, D) the shifts r_k
        rho = (r - shift).sub_(means)  # their rounding error (exact: r - s is exact)
        d = buf[: b - a]
        d.copy_(H[a:b])
        rows_of.subtract(d, r, y[a:b])  # d_i = h_i - r_{y_i}
        S1.zero_().index_add_(0, y[a:b], d)  # (K, D) sum of d per class = m_k b_k
        bk = S1 * inv_m[c][:, None]
        delta = bk + rho  # rows of classes absent from the chunk have weight 0 below
        if scatter.ndim == 2:
            scatter.addmm_(d.T, d).addmm_(S1.T, bk, alpha=-1)
            scatter.addmm_(delta.T * w_cross[c], delta)
        else:
            flat = d.view(-1)
            scatter += flat @ flat - (S1 * bk).sum() + (delta * delta).sum(1) @ w_cross[c]
        means.addcmul_(delta, w_new[c][:, None])
    if not bool(torch.isfinite(means).all() & torch.isfinite(scatter).all()):
        check_features(H, name)  # raises the NaN/Inf message (a mere overflow passes on)


class _Moments:
    """Class means and within-class statistics of one feature matrix, in row chunks.

    One pass of :func:`_accumulate` (the kernel of :class:`LayerwiseStats` too) gives the
    counts, the exact class means and the trace of the within-class scatter; what needs the
    final means first (the D x D scatter, NC1's projections) takes a second pass that forms
    ``h_i - mu_{y_i}`` chunk by chunk. Memory stays O(N + CHUNK * D + K D) beyond the input.
    """

    #: Rows per float64 chunk on the CPU (8 times more on other devices).
    CHUNK = 1024

    def __init__(self, H: Tensor, y: Tensor, K: int) -> None:
        self.H, self.y, self.N, self.K = H, y, H.shape[0], K
        f64, dev = torch.float64, H.device
        self._chunk = _chunk_rows(dev, K)
        self.counts = torch.bincount(y, minlength=K).to(f64)  # (K,)
        shift = H[0].to(f64)
        means = torch.zeros(K, H.shape[1], dtype=f64, device=dev)
        sq = torch.zeros((), dtype=f64, device=dev)
        _accumulate(H, y, torch.zeros_like(self.counts), shift, means, sq, self._chunk)
        self.means = means + shift  # (K, D) uncentred class means
        self._sq = float(sq)

    def _deviations(self) -> Iterator[Tensor]:
        """Yield ``h_i - mu_{y_i}`` chunk by chunk, in one reused float64 buffer."""
        D, dev = self.H.shape[1], self.H.device
        buf = torch.empty(min(self._chunk, self.N), D, dtype=torch.float64, device=dev)
        rows_of = _ClassRows(self.K, D, buf.shape[0], dev)
        for a in range(0, self.N, self._chunk):
            b = min(a + self._chunk, self.N)
            d = buf[: b - a]
            d.copy_(self.H[a:b])
            yield rows_of.subtract(d, self.means, self.y[a:b])

    def trace_within(self) -> float:
        return max(self._sq, 0.0) / self.N

    def within_scatter(self) -> Tensor:
        """``sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T``, (D, D)."""
        D = self.H.shape[1]
        S = torch.zeros(D, D, dtype=torch.float64, device=self.H.device)
        for dev in self._deviations():
            S.addmm_(dev.T, dev)
        return S

    def projected_within(self, V: Tensor) -> Tensor:
        """``sum_i ||(h_i - mu_{y_i}) V^T||^2`` per row of ``V`` (r, D): shape (r,)."""
        out = torch.zeros(V.shape[0], dtype=torch.float64, device=self.H.device)
        for dev in self._deviations():
            proj = dev @ V.T  # (B, r)
            out += (proj * proj).sum(0)
        return out

    def centred_means(self) -> Tensor:
        """``mu_k - mu_G`` with ``mu_G`` the mean of the class means, ``(K, D)``."""
        return self.means - self.means.mean(0)

    def nc1(self, rtol: float) -> float:
        """``tr(Sigma_W Sigma_B^+)/K``, projecting the deviations on the kept directions."""
        _, S, V = torch.linalg.svd(self.centred_means(), full_matrices=False)  # (K,), (K, D)
        if S.numel() == 0 or float(S[0]) == 0.0:
            raise ValueError("all class means coincide (Sigma_B = 0): NC1 is undefined")
        keep = S > rtol * S[0]  # the centring's null direction is dropped before the pass
        return _nc1_sum(S[keep], V[keep], self.projected_within(V[keep]) / self.N, rtol)

    def trace_between(self) -> float:
        Mc = self.centred_means()
        return float((Mc * Mc).sum()) / self.K


def _ratio(trace_within: float, trace_between: float) -> float:
    if trace_between == 0.0:
        raise ValueError(
            "all class means coincide (tr Sigma_B = 0): the compression ratio is undefined"
        )
    return trace_within / trace_between


def _discrimination_from_means(M: Tensor, centered: bool) -> float:
    """``1 - max_{k != k'} cos(mu_k, mu_k')`` from class means ``(K, D)``."""
    if centered:
        M = M - M.mean(0)
    norms = torch.linalg.vector_norm(M, dim=1)
    zero = torch.nonzero(norms == 0).flatten().tolist()
    if zero:
        what = "centred class mean" if centered else "class mean"
        raise ValueError(
            f"class(es) {zero} have a zero {what}: their cosine with other class means is "
            "undefined, so discrimination D cannot be computed"
        )
    Mn = M / norms[:, None]
    cos = Mn @ Mn.T  # (K, K)
    K = cos.shape[0]
    off_diagonal = ~torch.eye(K, dtype=torch.bool, device=cos.device)
    return 1.0 - float(cos[off_diagonal].max())


def _nc1_sum(S: Tensor, V: Tensor, quad: Tensor, rtol: float) -> float:
    """``sum_j q_j / s_j^2`` over the singular values ``s_j > rtol * s_max``.

    With ``Mc = U S V^T`` the centred class means (K, D), ``Sigma_B^+ = K sum_j v_j v_j^T /
    s_j^2``, so ``NC1 = tr(Sigma_W Sigma_B^+)/K = sum_j v_j^T Sigma_W v_j / s_j^2`` with
    ``quad_j = v_j^T Sigma_W v_j``.
    """
    if S.numel() == 0 or float(S[0]) == 0.0:
        raise ValueError("all class means coincide (Sigma_B = 0): NC1 is undefined")
    keep = S > rtol * S[0]
    return float((quad[keep] / S[keep] ** 2).sum())


def _nc1_from_scatter(Sigma_W: Tensor, Mc: Tensor, rtol: float) -> float:
    """NC1 from ``Sigma_W`` (D, D) and the centred class means ``Mc`` (K, D)."""
    _, S, V = torch.linalg.svd(Mc, full_matrices=False)  # (K,), (K, D)
    return _nc1_sum(S, V, ((V @ Sigma_W) * V).sum(1), rtol)


# ----------------------------------------------------------------------------------------
# public scalar and matrix metrics
# ----------------------------------------------------------------------------------------


def class_means(H: Any, y: Any, num_classes: int | None = None) -> Tensor:
    """Uncentred class means ``mu_k`` of features.

    Parameters
    ----------
    H : Tensor or ndarray, shape (N, D)
        Features, one row per sample.
    y : Tensor or ndarray, shape (N,)
        Integer labels in ``[0, K)``.
    num_classes : int, optional
        K; inferred as ``y.max() + 1`` when omitted. Every class must have a sample.

    Returns
    -------
    Tensor, shape (K, D), float64
        ``mu_k = (1/n_k) sum_{i: y_i = k} h_i``, on the device of `H`.

    Examples
    --------
    >>> H = torch.tensor([[1., 0.], [3., 0.], [0., 2.]]); y = torch.tensor([0, 0, 1])
    >>> class_means(H, y)
    tensor([[2., 0.],
            [0., 2.]], dtype=torch.float64)

    Used in: ch01, ch02.
    """
    H, y, K = _prepare(H, y, num_classes)
    return _Moments(H, y, K).means


def within_class_cov(H: Any, y: Any, num_classes: int | None = None) -> Tensor:
    """Within-class covariance ``Sigma_W`` of features.

    Parameters
    ----------
    H : Tensor or ndarray, shape (N, D)
        Features, one row per sample.
    y : Tensor or ndarray, shape (N,)
        Integer labels in ``[0, K)``.
    num_classes : int, optional
        K; inferred as ``y.max() + 1`` when omitted.

    Returns
    -------
    Tensor, shape (D, D), float64
        ``(1/N) sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T`` (pooled, divided by N).

    References
    ----------
    Papyan, Han & Donoho (2020), PNAS 117(40); Wang et al. (2023), arXiv:2311.02960.

    Examples
    --------
    >>> H = torch.tensor([[0.], [2.], [5.]]); y = torch.tensor([0, 0, 1])
    >>> within_class_cov(H, y)  # deviations -1, 1, 0 -> (1 + 1 + 0)/3
    tensor([[0.6667]], dtype=torch.float64)

    Used in: ch01, ch02.
    """
    H, y, K = _prepare(H, y, num_classes)
    m = _Moments(H, y, K)
    return m.within_scatter() / m.N


def between_class_cov(H: Any, y: Any, num_classes: int | None = None) -> Tensor:
    """Between-class covariance ``Sigma_B`` of features.

    Parameters
    ----------
    H : Tensor or ndarray, shape (N, D)
        Features, one row per sample.
    y : Tensor or ndarray, shape (N,)
        Integer labels in ``[0, K)``.
    num_classes : int, optional
        K; inferred as ``y.max() + 1`` when omitted.

    Returns
    -------
    Tensor, shape (D, D), float64
        ``(1/K) sum_k (mu_k - mu_G)(mu_k - mu_G)^T`` with ``mu_G`` the mean of the class means.

    Examples
    --------
    >>> H = torch.tensor([[0.], [2.], [5.]]); y = torch.tensor([0, 0, 1])
    >>> between_class_cov(H, y)  # means 1 and 5, mu_G = 3 -> (4 + 4)/2
    tensor([[4.]], dtype=torch.float64)

    Used in: ch01, ch02.
    """
    H, y, K = _prepare(H, y, num_classes)
    Mc = _Moments(H, y, K).centred_means()
    return Mc.T @ Mc / K


def compression(H: Any, y: Any, num_classes: int | None = None) -> float:
    """Within-class compression ``C = tr Sigma_W / tr Sigma_B`` (smaller = more compressed).

    Computed from traces only, in one pass over ``H`` (O(N D) time for few classes, memory
    O(N + chunk D + K D) beyond it): no D x D matrix is formed.

    Parameters
    ----------
    H : Tensor or ndarray, shape (N, D)
        Features, one row per sample.
    y : Tensor or ndarray, shape (N,)
        Integer labels in ``[0, K)``.
    num_classes : int, optional
        K; inferred as ``y.max() + 1`` when omitted.

    Returns
    -------
    float
        ``C``; a :class:`ValueError` is raised when all class means coincide.

    References
    ----------
    Wang et al. (2023), arXiv:2311.02960 (``C_l``; ``nc1_tilde`` in the reference code).

    Examples
    --------
    >>> H = torch.tensor([[0.], [2.], [5.]]); y = torch.tensor([0, 0, 1])
    >>> round(compression(H, y), 6)  # (2/3) / 4
    0.166667

    Used in: ch01, ch02, ch03, ch05.
    """
    H, y, K = _prepare(H, y, num_classes)
    m = _Moments(H, y, K)
    return _ratio(m.trace_within(), m.trace_between())


def discrimination(
    H: Any, y: Any, centered: bool = False, num_classes: int | None = None
) -> float:
    """Between-class discrimination ``D = 1 - max_{k != k'} cos(mu_k, mu_k')`` (larger = better).

    The paper's definition uses **uncentred** class means and the **signed** cosine, so
    ``D`` lies in ``[0, 2]`` and exceeds 1 only when all pairwise cosines are negative.

    Parameters
    ----------
    H : Tensor or ndarray, shape (N, D)
        Features, one row per sample.
    y : Tensor or ndarray, shape (N,)
        Integer labels in ``[0, K)``.
    centered : bool, default False
        Subtract ``mu_G`` (the mean of the class means) before taking cosines, as the
        neural-collapse literature does (for K = 2 the centred means are antipodal: D = 2).
    num_classes : int, optional
        K; inferred as ``y.max() + 1`` when omitted.

    Returns
    -------
    float
        ``D``. A zero class mean makes the cosine undefined: :class:`ValueError`.

    References
    ----------
    Wang et al. (2023), arXiv:2311.02960 (``D_l``; ``max_angle_metric`` in the reference code,
    whose docstring says ``|cos|`` but whose code takes the signed maximum).

    Examples
    --------
    >>> H = torch.tensor([[1., 0.], [1., 0.], [0., 3.]]); y = torch.tensor([0, 0, 1])
    >>> discrimination(H, y)  # orthogonal class means
    1.0

    Used in: ch01, ch02, ch03.
    """
    H, y, K = _prepare(H, y, num_classes)
    if not isinstance(centered, bool):
        raise ValueError(f"centered must be True or False, got {centered!r}")
    return _discrimination_from_means(_Moments(H, y, K).means, centered)


def nc1(
    H: Any, y: Any, num_classes: int | None = None, rtol: float = PINV_RTOL
) -> float:
    """Neural-collapse metric ``NC1 = tr(Sigma_W Sigma_B^+) / K`` in float64.

    The pseudo-inverse is never formed: with the SVD ``M_c = U S V^T`` of the centred class
    means ``(K, D)``, ``NC1 = (1/N) ||(H - M[y]) V_r S_r^{-1}||_F^2`` where ``r`` keeps the
    singular values above ``rtol * s_max`` (at most K - 1 of them). Cost O(N D K).

    Parameters
    ----------
    H : Tensor or ndarray, shape (N, D)
        Features, one row per sample.
    y : Tensor or ndarray, shape (N,)
        Integer labels in ``[0, K)``.
    num_classes : int, optional
        K; inferred as ``y.max() + 1`` when omitted.
    rtol : float, default :data:`PINV_RTOL` (1e-10)
        Relative cut-off of the pseudo-inverse (``rcond`` of ``numpy.linalg.pinv``).

    Returns
    -------
    float

    References
    ----------
    Papyan, Han & Donoho (2020), PNAS 117(40). He & Su's separation fuzziness
    ``tr(Sigma_W Sigma_B^+)`` equals ``K * NC1`` for balanced classes.

    Examples
    --------
    >>> H = torch.tensor([[0.], [2.], [5.]]); y = torch.tensor([0, 0, 1])
    >>> round(nc1(H, y), 6)  # Sigma_W = 2/3, Sigma_B = 4 -> (2/3)/4/2
    0.083333

    Used in: ch01.
    """
    H, y, K = _prepare(H, y, num_classes)
    rtol = check_float(rtol, "rtol", minimum=0.0, maximum=1.0, strict=True)
    return _Moments(H, y, K).nc1(rtol)


def numerical_rank(H: Any, energy: float = 0.95) -> int:
    """Numerical rank: the smallest ``r`` with ``s_1 + ... + s_r >= energy * sum_i s_i``.

    Singular values ``s_i`` of the **uncentred** feature matrix, and their plain sum (the
    nuclear norm), not the sum of squares — as in the paper's Figure 1.

    Parameters
    ----------
    H : Tensor or ndarray, shape (N, D)
        Features, one row per sample.
    energy : float, default 0.95
        Fraction of the nuclear norm to capture, in ``(0, 1]``.

    Returns
    -------
    int
        The rank; 0 for an all-zero matrix.

    Examples
    --------
    >>> numerical_rank(torch.diag(torch.tensor([10., 1., 0.1])), energy=0.9)  # 10 >= 0.9 * 11.1
    1
    >>> numerical_rank(torch.diag(torch.tensor([10., 1., 0.1])), energy=0.95)
    2

    Used in: ch01.
    """
    H = check_features(H)
    energy = check_float(energy, "energy", minimum=0.0, maximum=1.0)
    if energy == 0.0:
        raise ValueError("energy must be in (0, 1], got 0.0")
    s = torch.linalg.svdvals(H)
    total = float(s.sum())
    if total == 0.0:
        return 0
    cum = torch.cumsum(s, 0)
    # a tiny slack so that energy = 1 is reached despite rounding in the cumulative sum
    reached = cum >= energy * total * (1 - 1e-12)
    return int(torch.nonzero(reached)[0]) + 1


# ----------------------------------------------------------------------------------------
# per-layer tables
# ----------------------------------------------------------------------------------------


class LayerTable:
    """A small per-layer table: named 1-D CPU float64 columns of equal length.

    Columns are read as ``table["compression"]`` or ``table.compression``; ``layer`` is the
    layer index ``l`` (0 = the input). The table prints as text, renders as HTML in Jupyter,
    and writes CSV atomically (:meth:`to_csv`) so that every figure's numbers can be downloaded.

    Parameters
    ----------
    columns : mapping of str to 1-D tensor or sequence
        Column name to values; all of the same length.

    Examples
    --------
    >>> t = LayerTable({"layer": [0, 1], "compression": [2.0, 0.5]})
    >>> t.compression
    tensor([2.0000, 0.5000], dtype=torch.float64)
    >>> len(t), t.columns
    (2, ('layer', 'compression'))

    Used in: ch01, ch02, ch03, ch04, ch08, ch09.
    """

    def __init__(self, columns: Mapping[str, Any]) -> None:
        cols: dict[str, Tensor] = {}
        length = None
        for name, values in columns.items():
            if isinstance(values, Tensor):
                t = values.detach().to("cpu", torch.float64).reshape(-1)
            else:
                t = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
            if length is not None and t.numel() != length:
                raise ValueError(
                    f"column {name!r} has {t.numel()} values, expected {length} like the others"
                )
            length = t.numel()
            cols[str(name)] = t
        self._cols = cols

    @property
    def columns(self) -> tuple[str, ...]:
        """Column names, in order."""
        return tuple(self._cols)

    def __len__(self) -> int:
        return next(iter(self._cols.values())).numel() if self._cols else 0

    def __getitem__(self, name: str) -> Tensor:
        if name not in self._cols:
            raise KeyError(f"no column {name!r}; columns are {self.columns}")
        return self._cols[name]

    def __getattr__(self, name: str) -> Tensor:
        cols = self.__dict__.get("_cols", {})
        if name in cols:
            return cols[name]
        raise AttributeError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._cols)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LayerTable):
            return NotImplemented
        return self.columns == other.columns and all(
            torch.equal(self[c], other[c]) for c in self.columns
        )

    def to_dict(self) -> dict[str, list[float]]:
        """Columns as plain Python lists (JSON-serialisable)."""
        return {k: [int(x) if k == "layer" else float(x) for x in v] for k, v in self._cols.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[float]]) -> LayerTable:
        """Inverse of :meth:`to_dict`."""
        return cls(data)

    def to_pandas(self) -> Any:
        """The table as a :class:`pandas.DataFrame` (pandas must be installed)."""
        import pandas as pd

        df = pd.DataFrame({k: v.numpy() for k, v in self._cols.items()})
        if "layer" in df:
            df["layer"] = df["layer"].astype(int)
        return df

    def to_csv(self, path: str | os.PathLike[str]) -> None:
        """Write the table as CSV (full float64 precision), atomically."""
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".csv")
        try:
            with os.fdopen(fd, "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(self.columns)
                for row in zip(*self.to_dict().values(), strict=True):
                    writer.writerow([repr(v) for v in row])
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str]) -> LayerTable:
        """Read a table written by :meth:`to_csv`."""
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            raise ValueError(f"{os.fspath(path)} is empty")
        header, body = rows[0], rows[1:]
        return cls({h: [float(r[i]) for r in body] for i, h in enumerate(header)})

    def _format_rows(self) -> list[list[str]]:
        out = []
        for i in range(len(self)):
            row = []
            for name, col in self._cols.items():
                v = float(col[i])
                row.append(str(int(v)) if name == "layer" else f"{v:.4g}")
            out.append(row)
        return out

    def __repr__(self) -> str:
        header = list(self.columns)
        rows = self._format_rows()
        widths = [max(len(h), *(len(r[j]) for r in rows)) for j, h in enumerate(header)]
        lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
        lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        cell = 'style="text-align: right; padding: 0.1em 0.8em"'
        head = "".join(f"<th {cell}>{h}</th>" for h in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td {cell}>{c}</td>" for c in row) + "</tr>"
            for row in self._format_rows()
        )
        table = 'class="layer-table"'
        return f"<table {table}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _append_row(rows: dict[str, list[float]], layer: int, trace_within: float,
                trace_between: float, means: Tensor, nc1_value: float, centered: bool) -> None:
    """One layer's row of :data:`TABLE_COLUMNS`, from its moments: the one place that turns
    traces, uncentred class means ``(K, D)`` and NC1 into a row, for :func:`layerwise` and
    :class:`LayerwiseStats` alike (a new column is written here once)."""
    rows["layer"].append(layer)
    rows["compression"].append(_ratio(trace_within, trace_between))
    rows["discrimination"].append(_discrimination_from_means(means, centered))
    rows["nc1"].append(nc1_value)
    rows["trace_within"].append(trace_within)
    rows["trace_between"].append(trace_between)


def _features_list(features: Any, name: str = "features") -> list[Any]:
    if isinstance(features, Tensor | str) or not isinstance(features, Sequence):
        raise ValueError(
            f"{name} must be a list of per-layer feature matrices [H_0, H_1, ...], "
            f"got {type(features).__name__}"
        )
    if len(features) == 0:
        raise ValueError(f"{name} is empty: give at least one layer")
    return list(features)


def layerwise(
    features: Sequence[Any],
    y: Any,
    num_classes: int | None = None,
    centered: bool = False,
    rtol: float = PINV_RTOL,
) -> LayerTable:
    """Per-layer table of C, D, NC1, tr Sigma_W and tr Sigma_B from full feature matrices.

    Parameters
    ----------
    features : sequence of Tensor, each of shape (N, D_l)
        Per-layer features, e.g. ``model.features(X)`` = ``[X, H_1, ..., H_{L-1}]``; entry
        ``l`` becomes row ``l`` of the table (so row 0 is the input, as in the paper).
    y : Tensor or ndarray, shape (N,)
        Integer labels in ``[0, K)``.
    num_classes : int, optional
        K; inferred as ``y.max() + 1`` when omitted.
    centered : bool, default False
        Passed to :func:`discrimination`.
    rtol : float, default :data:`PINV_RTOL`
        Pseudo-inverse cut-off of :func:`nc1`.

    Returns
    -------
    LayerTable
        Columns :data:`TABLE_COLUMNS`: ``layer, compression, discrimination, nc1,
        trace_within, trace_between``.

    Examples
    --------
    >>> X = torch.tensor([[1., 0.], [3., 0.], [0., 2.], [0., 4.]]); y = torch.tensor([0, 0, 1, 1])
    >>> t = layerwise([X, 2 * X], y)
    >>> t.compression.tolist(), t.discrimination.tolist()  # tr Sigma_W = 1, tr Sigma_B = 3.25
    ([0.3076923076923077, 0.3076923076923077], [1.0, 1.0])

    Used in: ch01, ch02, ch03.
    """
    features = _features_list(features)
    if not isinstance(centered, bool):
        raise ValueError(f"centered must be True or False, got {centered!r}")
    rtol = check_float(rtol, "rtol", minimum=0.0, maximum=1.0, strict=True)
    rows: dict[str, list[float]] = {c: [] for c in TABLE_COLUMNS}
    for layer, H in enumerate(features):
        try:
            H, y_l, K = _prepare(H, y, num_classes)
            m = _Moments(H, y_l, K)  # NaN and Inf are found here
        except ValueError as err:
            raise ValueError(f"layer {layer}: {err}") from err
        _append_row(rows, layer, m.trace_within(), m.trace_between(), m.means, m.nc1(rtol),
                    centered)
    return LayerTable(rows)


class LayerwiseStats:
    """Streaming, float64 accumulator of the per-layer table over mini-batches.

    It never stores features. Its state per layer is, per class, the sample count and the
    running mean, plus the pooled within-class scatter matrix ``sum_i (h_i - mu_{y_i})
    (h_i - mu_{y_i})^T`` (D x D), merged chunk by chunk with the parallel update of Chan,
    Golub & LeVeque (1979): for class k with running ``(n, mu)`` and a chunk ``(m, b, S_b)``,
    ``S += S_b + n m / (n + m) (b - mu)(b - mu)^T``. This is the kernel of :func:`layerwise`
    too: rows are converted to float64 a chunk at a time and shifted by their class's running
    mean, so large common offsets cost no precision (unlike ``sum x^2 - n mu^2``).

    Parameters
    ----------
    num_layers : int
        Number of feature matrices per update (``len(model.features(X))``).
    num_classes : int
        K. Every class must have been seen by :meth:`compute`.
    centered : bool, default False
        Passed to :func:`discrimination`.
    rtol : float, default :data:`PINV_RTOL`
        Pseudo-inverse cut-off for NC1.
    nc1 : bool, default True
        Keep the D x D scatter that NC1 needs: O(B D^2) work per batch, the cost of one Gram
        matrix ``H^T H`` per layer over the data. With ``nc1=False`` only its trace is kept
        (O(B D K) work, no D x D memory) and the ``nc1`` column is NaN.

    Examples
    --------
    >>> X = torch.tensor([[1., 0.], [3., 0.], [0., 2.], [0., 4.]]); y = torch.tensor([0, 0, 1, 1])
    >>> stats = LayerwiseStats(num_layers=1, num_classes=2)
    >>> stats.update([X[:3]], y[:3]); stats.update([X[3:]], y[3:])
    >>> stats.compute().compression.tolist() == layerwise([X], y).compression.tolist()
    True

    Used in: ch05, ch06, ch07 (through :func:`pncutils.measure`).
    """

    def __init__(
        self,
        num_layers: int,
        num_classes: int,
        centered: bool = False,
        rtol: float = PINV_RTOL,
        nc1: bool = True,
    ) -> None:
        if not isinstance(nc1, bool):
            raise ValueError(f"nc1 must be True or False, got {nc1!r}")
        self.track_nc1 = nc1
        self.num_layers = check_int(num_layers, "num_layers", minimum=1)
        self.num_classes = check_int(num_classes, "num_classes", minimum=2)
        if not isinstance(centered, bool):
            raise ValueError(f"centered must be True or False, got {centered!r}")
        self.centered = centered
        self.rtol = check_float(rtol, "rtol", minimum=0.0, maximum=1.0, strict=True)
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self.num_samples = 0
        self._counts: Tensor | None = None  # (K,) float64
        self._shift: list[Tensor] = []  # per layer (D_l,)
        self._means: list[Tensor] = []  # per layer (K, D_l), of shifted features
        self._scatter: list[Tensor] = []  # per layer (D_l, D_l), or its trace () without NC1

    def update(self, features: Sequence[Any], y: Any) -> None:
        """Add one mini-batch.

        Parameters
        ----------
        features : sequence of Tensor, each of shape (B, D_l)
            The batch's features at every layer (``num_layers`` entries).
        y : Tensor or ndarray, shape (B,)
            The batch's labels in ``[0, num_classes)``; a batch may miss classes.
        """
        features = _features_list(features)
        if len(features) != self.num_layers:
            raise ValueError(
                f"expected {self.num_layers} per-layer feature matrices, got {len(features)}"
            )
        K = self.num_classes
        # validate everything before touching the state, so a bad batch changes nothing
        checked = []
        for layer, H in enumerate(features):
            try:
                H = _features(H)
            except ValueError as err:
                raise ValueError(f"layer {layer}: {err}") from err
            if self._shift and H.shape[1] != self._shift[layer].shape[0]:
                raise ValueError(
                    f"layer {layer}: features have {H.shape[1]} columns, earlier batches had "
                    f"{self._shift[layer].shape[0]}"
                )
            if checked and H.shape[0] != checked[0].shape[0]:
                raise ValueError(
                    f"layer {layer} has {H.shape[0]} rows but layer 0 has {checked[0].shape[0]}"
                )
            checked.append(H)
        B = checked[0].shape[0]
        y, _ = check_labels(y, B, K, require_all=False)  # a batch may miss classes
        f64 = torch.float64
        if self._counts is None:  # the state lives on the first batch's device
            device = checked[0].device
            counts = torch.zeros(K, dtype=f64, device=device)
            shifts = [H[0].to(device, f64, copy=True) for H in checked]
            scatter = [torch.zeros((H.shape[1],) * (2 if self.track_nc1 else 0), dtype=f64,
                                   device=device) for H in checked]
            means = [torch.zeros(K, H.shape[1], dtype=f64, device=device) for H in checked]
        else:
            counts, shifts, scatter = self._counts, self._shift, self._scatter
            means = [M.clone() for M in self._means]
        y = y.to(counts.device)
        increments = []
        for layer, H in enumerate(checked):
            inc = torch.zeros_like(scatter[layer])
            H = H.to(counts.device)
            try:  # NaN and Inf are found here, before anything is committed
                _accumulate(H, y, counts, shifts[layer], means[layer], inc,
                            _chunk_rows(counts.device, K))
            except ValueError as err:
                raise ValueError(f"layer {layer}: {err}") from err
            increments.append(inc)
        for total, inc in zip(scatter, increments, strict=True):
            total += inc
        self._shift, self._means, self._scatter = shifts, means, scatter
        self._counts = counts + torch.bincount(y, minlength=K).to(f64)
        self.num_samples += B

    def compute(self) -> LayerTable:
        """The per-layer table of everything accumulated (same columns as :func:`layerwise`)."""
        if self._counts is None:
            raise ValueError("no batch has been added: call update() first")
        empty = torch.nonzero(self._counts == 0).flatten().tolist()
        if empty:
            raise ValueError(f"class(es) {empty} have no samples (num_classes={self.num_classes})")
        N, K = self.num_samples, self.num_classes
        rows: dict[str, list[float]] = {c: [] for c in TABLE_COLUMNS}
        for layer in range(self.num_layers):
            Ms = self._means[layer]
            Sigma_W = self._scatter[layer] / N  # (D, D), or its trace
            trW = float(torch.diagonal(Sigma_W).sum()) if self.track_nc1 else float(Sigma_W)
            Mc = Ms - Ms.mean(0)
            nc1_value = (_nc1_from_scatter(Sigma_W, Mc, self.rtol) if self.track_nc1
                         else float("nan"))
            _append_row(rows, layer, trW, float((Mc * Mc).sum()) / K, Ms + self._shift[layer],
                        nc1_value, self.centered)
        return LayerTable(rows)



# ----------------------------------------------------------------------------------------
# fits of per-layer curves: in pncutils.fits (kept here under their first names)
# ----------------------------------------------------------------------------------------

#: The typed fit result (:class:`pncutils.fits.Fit`), under its first name.
LinearFit = Fit
#: :func:`pncutils.fits.line` under its first name.
linear_fit = line
#: :func:`pncutils.fits.mean_ratio` under its first name.
geometric_rate = mean_ratio
