"""Metric conventions of other papers and codes, and their conversions to :mod:`pncutils.metrics`.

Every neural-collapse paper and library defines "the" within- and between-class covariances a
little differently: pooled or class-averaged ``Sigma_W``; ``Sigma_B`` centred at the mean of
all samples or at the mean of the class means, weighted by class sizes or not; a pseudo-inverse
trace or a ratio of traces; signed or absolute cosines between centred or uncentred class means.
All of them agree for balanced classes up to constant factors, and this module makes each one a
small function so that the conversions can be checked numerically (book chapter 1).

Conventions of :mod:`pncutils.metrics` (the paper's): pooled
``Sigma_W = (1/N) sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T``; unweighted
``Sigma_B = (1/K) sum_k (mu_k - m)(mu_k - m)^T`` with ``m`` the mean of the class means;
``C = tr Sigma_W / tr Sigma_B``; ``NC1 = tr(Sigma_W Sigma_B^+) / K``;
``D = 1 - max_{k != k'} cos(mu_k, mu_k')`` with uncentred means and the signed cosine.

Here ``hbar`` denotes the mean of all samples (Papyan et al.'s "global mean"); it equals ``m``
when the classes are balanced.

Rows are samples: ``H`` is ``(N, D)`` and ``y`` is ``(N,)`` integer labels in ``[0, K)``. The
functions compute in float64 on the CPU or the input's device and form at most ``(D, D)``
matrices: they are meant for checking conventions on small problems, not for large layers.

See Also
--------
book chapter 1 : the conventions table and the asserted conversions.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from pncutils._checks import check_choice, check_features, check_float, check_labels
from pncutils.metrics import PINV_RTOL

__all__ = [
    "total_cov",
    "between_class_cov_papyan",
    "between_class_cov_weighted",
    "within_class_cov_class_averaged",
    "nc1_papyan",
    "separation_fuzziness",
    "nc_library_metrics",
    "discrimination_abs",
    "reference_discrimination",
    "aliased_features",
    "reference_code_metrics",
    "INTER_DIVISORS",
]

#: Allowed ``inter_divisor`` values of :func:`nc_library_metrics`.
INTER_DIVISORS = ("dim", "classes")


# ----------------------------------------------------------------------------------------
# building blocks
# ----------------------------------------------------------------------------------------


def _prepare(H: Any, y: Any) -> tuple[Tensor, Tensor, int, Tensor, Tensor]:
    """Validate; return ``(H float64, y int64, K, counts (K,), class means (K, D))``."""
    H = check_features(H)
    y, K = check_labels(y, H.shape[0], device=H.device)
    counts = torch.bincount(y, minlength=K).to(H.dtype)  # (K,)
    sums = torch.zeros(K, H.shape[1], dtype=H.dtype, device=H.device).index_add_(0, y, H)
    return H, y, K, counts, sums / counts[:, None]


def _rtol(rtol: Any) -> float:
    return check_float(rtol, "rtol", minimum=0.0, maximum=1.0, strict=True)


def _pinv_trace(dev: Tensor, sample_weights: Tensor, B: Tensor, rtol: float) -> float:
    """``tr(Sigma_W (B^T B)^+)`` with ``Sigma_W = sum_i w_i d_i d_i^T``, without D x D inverses.

    With the SVD ``B = U S V^T`` (``B`` is ``(K, D)``), ``(B^T B)^+ = sum_j v_j v_j^T / s_j^2``
    over the singular values ``s_j > rtol * s_max`` (the cut-off of :func:`pncutils.metrics.nc1`),
    so the trace is ``sum_j sum_i w_i (d_i . v_j)^2 / s_j^2``.
    """
    _, S, Vh = torch.linalg.svd(B, full_matrices=False)  # (K,), (K, D)
    if S.numel() == 0 or float(S[0]) == 0.0:
        raise ValueError("all class means coincide (Sigma_B = 0): the pseudo-inverse trace is "
                         "undefined")
    keep = S > rtol * S[0]
    proj = dev @ Vh[keep].T  # (N, r)
    quad = (sample_weights[:, None] * proj * proj).sum(0)  # (r,)
    return float((quad / S[keep] ** 2).sum())


def _cosines(M: Tensor) -> Tensor:
    """Cosine matrix ``(K, K)`` of the rows of ``M``; a zero row raises a ValueError."""
    norms = torch.linalg.vector_norm(M, dim=1)
    zero = torch.nonzero(norms == 0).flatten().tolist()
    if zero:
        raise ValueError(f"class(es) {zero} have a zero mean vector: cosines are undefined")
    Mn = M / norms[:, None]
    return Mn @ Mn.T


# ----------------------------------------------------------------------------------------
# covariances
# ----------------------------------------------------------------------------------------


def total_cov(H: Any) -> Tensor:
    """Total covariance ``Sigma_T = (1/N) sum_i (h_i - hbar)(h_i - hbar)^T``.

    Parameters
    ----------
    H : Tensor or ndarray, shape (N, D)
        Features, one row per sample.

    Returns
    -------
    Tensor, shape (D, D), float64
        With ``hbar`` the mean of all samples. For any class sizes,
        ``Sigma_T = Sigma_W + between_class_cov_weighted(H, y)`` exactly.

    Examples
    --------
    >>> total_cov(torch.tensor([[0.], [2.], [4.]]))  # deviations -2, 0, 2 -> 8/3
    tensor([[2.6667]], dtype=torch.float64)

    Used in: ch01.
    """
    H = check_features(H)
    Hc = H - H.mean(0)
    return Hc.T @ Hc / H.shape[0]


def between_class_cov_papyan(H: Any, y: Any) -> Tensor:
    """Between-class covariance centred at the mean of all samples, unweighted over classes.

    ``Sigma_B = (1/K) sum_k (mu_k - hbar)(mu_k - hbar)^T`` with ``hbar`` the mean of all
    samples: the definition of Papyan, Han & Donoho (2020), and what the paper's reference code
    (``compute_Sigma_B``), tding1/Neural-Collapse and He & Su's balanced script compute.
    For balanced classes ``hbar`` is the mean ``m`` of the class means and this equals
    :func:`pncutils.metrics.between_class_cov`; in general it exceeds it by
    ``(m - hbar)(m - hbar)^T``.

    Parameters
    ----------
    H : Tensor or ndarray, shape (N, D)
        Features, one row per sample.
    y : Tensor or ndarray, shape (N,)
        Integer labels in ``[0, K)``.

    Returns
    -------
    Tensor, shape (D, D), float64

    References
    ----------
    Papyan, Han & Donoho (2020), PNAS 117(40).

    Examples
    --------
    >>> H = torch.tensor([[0.], [0.], [6.]]); y = torch.tensor([0, 0, 1])
    >>> between_class_cov_papyan(H, y)  # means 0 and 6, hbar = 2 -> (4 + 16) / 2
    tensor([[10.]], dtype=torch.float64)

    Used in: ch01.
    """
    H, _, K, _, M = _prepare(H, y)
    Mc = M - H.mean(0)  # (K, D)
    return Mc.T @ Mc / K


def between_class_cov_weighted(H: Any, y: Any) -> Tensor:
    """Between-class covariance weighted by class sizes, centred at the mean of all samples.

    ``Sigma_B^w = sum_k (n_k / N) (mu_k - hbar)(mu_k - hbar)^T``: the one for which the
    decomposition ``Sigma_T = Sigma_W + Sigma_B^w`` of the total covariance holds for any class
    sizes. He & Su's imbalanced-data script and the Re-equi-sepa reimplementation use it. For
    balanced classes it equals :func:`pncutils.metrics.between_class_cov`.

    Parameters
    ----------
    H : Tensor or ndarray, shape (N, D)
        Features, one row per sample.
    y : Tensor or ndarray, shape (N,)
        Integer labels in ``[0, K)``.

    Returns
    -------
    Tensor, shape (D, D), float64

    References
    ----------
    He & Su (2023), PNAS 120(36) (code: HornHehhf/Equi-Separation, ``get_variation_imbalance``).

    Examples
    --------
    >>> H = torch.tensor([[0.], [0.], [6.]]); y = torch.tensor([0, 0, 1])
    >>> between_class_cov_weighted(H, y)  # (2/3) * 4 + (1/3) * 16
    tensor([[8.]], dtype=torch.float64)

    Used in: ch01.
    """
    H, _, _, counts, M = _prepare(H, y)
    Mc = M - H.mean(0)  # (K, D)
    return (Mc.T * (counts / H.shape[0])) @ Mc


def within_class_cov_class_averaged(H: Any, y: Any) -> Tensor:
    """Within-class covariance as the mean of the per-class covariances (He & Su).

    ``Sigma_W^avg = (1/K) sum_k (1/n_k) sum_{i: y_i = k} (h_i - mu_k)(h_i - mu_k)^T``. For
    balanced classes it equals the pooled :func:`pncutils.metrics.within_class_cov`; otherwise
    small classes weigh more than in the pooled version.

    Parameters
    ----------
    H : Tensor or ndarray, shape (N, D)
        Features, one row per sample.
    y : Tensor or ndarray, shape (N,)
        Integer labels in ``[0, K)``.

    Returns
    -------
    Tensor, shape (D, D), float64

    References
    ----------
    He & Su (2023), PNAS 120(36) (code: HornHehhf/Equi-Separation, ``get_variation``).

    Examples
    --------
    >>> H = torch.tensor([[0.], [2.], [5.]]); y = torch.tensor([0, 0, 1])
    >>> within_class_cov_class_averaged(H, y)  # class 0: variance 1; class 1: 0 -> 1/2
    tensor([[0.5000]], dtype=torch.float64)
    """
    H, y, K, counts, M = _prepare(H, y)
    dev = H - M[y]  # (N, D)
    w = 1.0 / (K * counts[y])  # (N,)
    return (dev.T * w) @ dev


# ----------------------------------------------------------------------------------------
# NC1 variants
# ----------------------------------------------------------------------------------------


def nc1_papyan(H: Any, y: Any, rtol: float = PINV_RTOL) -> float:
    """Papyan et al.'s NC1: ``tr(Sigma_W Sigma_B^+) / K`` with ``Sigma_B`` centred at ``hbar``.

    Pooled ``Sigma_W`` (divided by N) and :func:`between_class_cov_papyan`. This is what the
    paper's reference code and tding1/Neural-Collapse compute (in float32 there). For balanced
    classes it equals :func:`pncutils.metrics.nc1`.

    Parameters
    ----------
    H : Tensor or ndarray, shape (N, D)
        Features, one row per sample.
    y : Tensor or ndarray, shape (N,)
        Integer labels in ``[0, K)``.
    rtol : float, default :data:`pncutils.metrics.PINV_RTOL`
        Relative cut-off on the singular values of the centred class means.

    Returns
    -------
    float

    References
    ----------
    Papyan, Han & Donoho (2020), PNAS 117(40).

    Examples
    --------
    >>> H = torch.tensor([[0.], [2.], [5.], [5.]]); y = torch.tensor([0, 0, 1, 1])
    >>> nc1_papyan(H, y)  # Sigma_W = 2/4, Sigma_B = 4 -> (0.5 / 4) / 2
    0.0625

    Used in: ch01.
    """
    rtol = _rtol(rtol)
    H, y, K, _, M = _prepare(H, y)
    N = H.shape[0]
    B = (M - H.mean(0)) / K**0.5  # Sigma_B = B^T B
    w = torch.full((N,), 1.0 / N, dtype=H.dtype, device=H.device)
    return _pinv_trace(H - M[y], w, B, rtol) / K


def separation_fuzziness(
    H: Any, y: Any, weighted: bool = False, rtol: float = PINV_RTOL
) -> float:
    """He & Su's separation fuzziness ``tr(Sigma_W Sigma_B^+)`` (no division by K).

    Two variants, as in the official code:

    * ``weighted=False`` (``get_variation``, balanced data): ``Sigma_W`` is the mean of the
      per-class covariances (:func:`within_class_cov_class_averaged`) and ``Sigma_B`` is
      unweighted and centred at ``hbar`` (:func:`between_class_cov_papyan`; the code centres
      the features first). For balanced classes the fuzziness is exactly ``K * NC1``.
    * ``weighted=True`` (``get_variation_imbalance``): pooled ``Sigma_W`` (divided by N) and
      the size-weighted :func:`between_class_cov_weighted`.

    He & Su report ``log`` of this quantity per layer.

    Parameters
    ----------
    H : Tensor or ndarray, shape (N, D)
        Features, one row per sample.
    y : Tensor or ndarray, shape (N,)
        Integer labels in ``[0, K)``.
    weighted : bool, default False
        Which of the two variants.
    rtol : float, default :data:`pncutils.metrics.PINV_RTOL`
        Relative cut-off on the singular values of the (weighted) centred class means.

    Returns
    -------
    float

    References
    ----------
    He & Su (2023), "A law of data separation in deep learning", PNAS 120(36).

    Examples
    --------
    >>> H = torch.tensor([[0.], [2.], [5.], [5.]]); y = torch.tensor([0, 0, 1, 1])
    >>> separation_fuzziness(H, y)  # Sigma_W = (1 + 0)/2, Sigma_B = 4 -> K * NC1
    0.125

    Used in: ch01.
    """
    if not isinstance(weighted, bool):
        raise ValueError(f"weighted must be True or False, got {weighted!r}")
    rtol = _rtol(rtol)
    H, y, K, counts, M = _prepare(H, y)
    N = H.shape[0]
    Mc = M - H.mean(0)  # (K, D)
    if weighted:
        B = Mc * (counts / N).sqrt()[:, None]  # Sigma_B^w = B^T B
        w = torch.full((N,), 1.0 / N, dtype=H.dtype, device=H.device)
    else:
        B = Mc / K**0.5
        w = 1.0 / (K * counts[y])
    return _pinv_trace(H - M[y], w, B, rtol)


def nc_library_metrics(
    H: Any, y: Any, inter_divisor: str = "dim", rtol: float = PINV_RTOL
) -> dict[str, float]:
    """The NC1 measures of the ``neural_collapse`` library (rhubarbwu/neural-collapse).

    An emulation, in float64, of ``neural_collapse.measure`` at commit ``c3864c2``:
    class means ``M`` and ``m_G`` = their unweighted mean (``MeanAccumulator.compute()``),
    ``V_intra`` = the pooled within-class covariance divided by N (``CovarAccumulator``), and
    ``V_inter = M_c^T M_c / D`` with ``M_c = M - m_G`` and **D the feature dimension** (not K).
    Then

    * ``"pinv"``: ``covariance_pinv(svd=False)`` = ``tr(V_inter^+ V_intra) / K``
      = ``(D/K) * NC1``;
    * ``"svd"``: ``covariance_pinv(svd=True)`` = ``tr(V_intra V_inter^+)`` over the top
      ``K - 1`` singular directions, without ``/ K``: ``D * NC1`` (when the centred means have
      rank ``K - 1``);
    * ``"quotient"``: ``covariance_ratio`` = ``tr V_intra / tr V_inter`` = ``(D/K) * C``.

    With ``inter_divisor="classes"`` the divisor is K instead of D, and the three become
    ``NC1``, ``K * NC1`` and ``C`` exactly.

    Parameters
    ----------
    H : Tensor or ndarray, shape (N, D)
        Features, one row per sample.
    y : Tensor or ndarray, shape (N,)
        Integer labels in ``[0, K)``.
    inter_divisor : {"dim", "classes"}, default "dim"
        Divide ``M_c^T M_c`` by the feature dimension (the library's code) or by K.
    rtol : float, default :data:`pncutils.metrics.PINV_RTOL`
        Cut-off of the pseudo-inverse of ``"pinv"`` (the library uses torch's default).

    Returns
    -------
    dict
        Keys ``"pinv"``, ``"svd"``, ``"quotient"``.

    References
    ----------
    Wu & Papyan (2024), NeurIPS (the library); Papyan et al. (2020) for ``pinv``; Tirer et al.
    (2023) for the quotient.

    Examples
    --------
    >>> H = torch.tensor([[0., 0.], [2., 0.], [5., 0.], [5., 0.]]); y = torch.tensor([0, 0, 1, 1])
    >>> r = nc_library_metrics(H, y)  # D = 2, K = 2: (D/K) = 1 here
    >>> round(r["quotient"], 12), round(r["pinv"], 12), round(r["svd"], 12)
    (0.125, 0.0625, 0.125)

    Used in: ch01.
    """
    check_choice(inter_divisor, "inter_divisor", INTER_DIVISORS)
    rtol = _rtol(rtol)
    H, y, K, _, M = _prepare(H, y)
    N, D = H.shape
    divisor = D if inter_divisor == "dim" else K
    Mc = M - M.mean(0)  # (K, D)
    B = Mc / divisor**0.5  # V_inter = B^T B
    dev = H - M[y]
    w = torch.full((N,), 1.0 / N, dtype=H.dtype, device=H.device)
    pinv = _pinv_trace(dev, w, B, rtol) / K
    # "svd": exactly the top K-1 singular directions, whatever their size
    _, S, Vh = torch.linalg.svd(B, full_matrices=False)
    S, Vh = S[: K - 1], Vh[: K - 1]
    if float(S[-1]) <= rtol * float(S[0]):
        raise ValueError(
            "the centred class means have rank < K - 1: the library's svd variant would "
            "divide by a (near) zero singular value"
        )
    proj = dev @ Vh.T  # (N, K-1)
    svd = float(((proj * proj).sum(0) / N / S**2).sum())
    quotient = float((dev * dev).sum()) / N / float((B * B).sum())
    return {"pinv": pinv, "svd": svd, "quotient": quotient}


# ----------------------------------------------------------------------------------------
# discrimination variants
# ----------------------------------------------------------------------------------------


def discrimination_abs(H: Any, y: Any, centered: bool = False) -> float:
    """Discrimination with the absolute cosine: ``1 - max_{k != k'} |cos(mu_k, mu_k')|``.

    What the docstring of the reference code's ``max_angle_metric`` describes (its code takes
    the signed cosine, as :func:`pncutils.metrics.discrimination` does). It lies in ``[0, 1]``
    and treats opposite class means (cosine -1) as not discriminated at all.

    Parameters
    ----------
    H : Tensor or ndarray, shape (N, D)
        Features, one row per sample.
    y : Tensor or ndarray, shape (N,)
        Integer labels in ``[0, K)``.
    centered : bool, default False
        Subtract the mean of the class means first.

    Returns
    -------
    float

    Examples
    --------
    >>> H = torch.tensor([[1., 0.], [-1., 0.], [0., 1.]]); y = torch.tensor([0, 1, 2])
    >>> discrimination_abs(H, y)  # the first two means are opposite
    0.0

    Used in: ch01.
    """
    if not isinstance(centered, bool):
        raise ValueError(f"centered must be True or False, got {centered!r}")
    _, _, K, _, M = _prepare(H, y)
    if centered:
        M = M - M.mean(0)
    cos = _cosines(M)
    off = ~torch.eye(K, dtype=torch.bool, device=cos.device)
    return 1.0 - float(cos[off].abs().max())


def reference_discrimination(H: Any, y: Any) -> float:
    """``D`` as the paper's reference code computes it: ``1 - max_angle_metric``.

    ``max_angle_metric`` takes the strictly lower triangle of the cosine matrix of the
    uncentred class means, **drops every entry equal to zero** (meant to drop the upper
    triangle, but it also drops exactly orthogonal pairs), and returns the signed maximum of
    the rest. So it agrees with :func:`pncutils.metrics.discrimination` unless some pair of
    class means is exactly orthogonal: then ``D`` can exceed the true value (even exceed 1),
    and if every pair is orthogonal the reference code fails (the max of an empty array).

    Parameters
    ----------
    H : Tensor or ndarray, shape (N, D)
        Features, one row per sample.
    y : Tensor or ndarray, shape (N,)
        Integer labels in ``[0, K)``.

    Returns
    -------
    float
        A :class:`ValueError` is raised where the reference code would crash.

    Examples
    --------
    >>> H = torch.tensor([[1., 0.], [0., 1.], [-1., -1.]]); y = torch.tensor([0, 1, 2])
    >>> round(reference_discrimination(H, y), 6)  # drops cos = 0: 1 + 1/sqrt(2), true D = 1
    1.707107

    Used in: ch01.
    """
    _, _, K, _, M = _prepare(H, y)
    cos = _cosines(M)
    lower = cos[torch.tril_indices(K, K, offset=-1, device=cos.device).unbind()]
    kept = lower[lower != 0]
    if kept.numel() == 0:
        raise ValueError(
            "every pair of class means is exactly orthogonal: the reference code's "
            "max_angle_metric takes the max of an empty array here and fails"
        )
    return 1.0 - float(kept.max())


# ----------------------------------------------------------------------------------------
# the reference code's aliasing bug
# ----------------------------------------------------------------------------------------


def aliased_features(H: Any, y: Any) -> Tensor:
    """The features as the reference code stores them: the first sample of each class replaced
    by its class mean.

    The reference code (``compute_info``, and the input block of ``calculate_nc1``) keeps
    ``features[b, :].detach().cpu().numpy()`` for every sample. For a CPU tensor this is a
    *view*, not a copy, and the running class sum is accumulated (``+=``, then ``/=``) in place
    in the view taken for the first sample of each class. At the end that stored "sample" holds
    the class mean. "First" means first in loader order: the row order of `H`.

    Parameters
    ----------
    H : Tensor or ndarray, shape (N, D)
        Features in loader order.
    y : Tensor or ndarray, shape (N,)
        Integer labels in ``[0, K)``.

    Returns
    -------
    Tensor, shape (N, D), float64
        A new tensor; `H` is not modified.

    Examples
    --------
    >>> H = torch.tensor([[0.], [2.], [4.], [7.]]); y = torch.tensor([0, 1, 0, 1])
    >>> aliased_features(H, y).flatten().tolist()  # rows 0 and 1 are the first of their class
    [2.0, 4.5, 4.0, 7.0]
    """
    H, y, K, _, M = _prepare(H, y)
    first = torch.full((K,), H.shape[0], dtype=torch.int64, device=H.device)
    first = first.scatter_reduce(0, y, torch.arange(H.shape[0], device=H.device), "amin")
    out = H.clone()
    out[first] = M
    return out


def reference_code_metrics(
    H: Any, y: Any, emulate_aliasing_bug: bool = True, rtol: float = PINV_RTOL
) -> dict[str, float]:
    """What the paper's reference code (``calculate_nc1`` and ``max_angle_metric``) reports.

    In float64 (the reference code works in float32):

    * class means: correct;
    * ``Sigma_W``: pooled, divided by N, but with :func:`aliased_features` when
      ``emulate_aliasing_bug`` (the input layer always; every layer when the code runs on the
      CPU), so the first sample of each class contributes nothing;
    * ``Sigma_B``: :func:`between_class_cov_papyan` (centred at the mean of all samples,
      unweighted), unaffected by the bug;
    * ``nc1 = tr(Sigma_W Sigma_B^+) / K``, ``compression = tr Sigma_W / tr Sigma_B``
      (``nc1_tilde``), and ``discrimination`` = :func:`reference_discrimination`.

    Exactly, ``tr Sigma_W^bug = tr Sigma_W - (1/N) sum_k ||h_{k,first} - mu_k||^2``: each class
    loses the deviation of its first sample. Averaged over which sample comes first (a shuffled
    loader), the loss is ``1/n_k`` of the class's scatter, so for balanced classes the expected
    ``tr Sigma_W``, ``C`` and NC1 are exactly ``(n-1)/n`` times the correct values.

    Parameters
    ----------
    H : Tensor or ndarray, shape (N, D)
        Features in loader order.
    y : Tensor or ndarray, shape (N,)
        Integer labels in ``[0, K)``.
    emulate_aliasing_bug : bool, default True
        Reproduce the bug; ``False`` gives the reference code's conventions without it.
    rtol : float, default :data:`pncutils.metrics.PINV_RTOL`
        Pseudo-inverse cut-off (the reference code uses scipy's default on float32 data).

    Returns
    -------
    dict
        Keys ``"trace_within"``, ``"trace_between"``, ``"nc1"``, ``"compression"``,
        ``"discrimination"``.

    References
    ----------
    Reference code: Heimine/PNC_DLN, ``utility.py`` (``compute_info``, ``compute_Sigma_W``,
    ``compute_Sigma_B``, ``calculate_nc1``, ``max_angle_metric``).

    Examples
    --------
    >>> H = torch.tensor([[0., 1.], [2., 1.], [4., 1.], [5., 3.], [7., 3.], [9., 3.]])
    >>> y = torch.tensor([0, 0, 0, 1, 1, 1])
    >>> ok = reference_code_metrics(H, y, emulate_aliasing_bug=False)
    >>> bug = reference_code_metrics(H, y)
    >>> ok["trace_within"], bug["trace_within"]  # (4+0+4)*2/6 vs (0+0+4)*2/6
    (2.6666666666666665, 1.3333333333333333)
    >>> ok["trace_between"] == bug["trace_between"]
    True

    Used in: ch01.
    """
    if not isinstance(emulate_aliasing_bug, bool):
        raise ValueError(
            f"emulate_aliasing_bug must be True or False, got {emulate_aliasing_bug!r}"
        )
    rtol = _rtol(rtol)
    H, y, K, _, M = _prepare(H, y)
    N = H.shape[0]
    stored = aliased_features(H, y) if emulate_aliasing_bug else H
    dev = stored - M[y]  # (N, D)
    Mc = M - H.mean(0)  # the global mean is summed before the in-place accumulation
    trace_within = float((dev * dev).sum()) / N
    trace_between = float((Mc * Mc).sum()) / K
    if trace_between == 0.0:
        raise ValueError("all class means coincide (tr Sigma_B = 0): C and NC1 are undefined")
    w = torch.full((N,), 1.0 / N, dtype=H.dtype, device=H.device)
    return {
        "trace_within": trace_within,
        "trace_between": trace_between,
        "nc1": _pinv_trace(dev, w, Mc / K**0.5, rtol) / K,
        "compression": trace_within / trace_between,
        "discrimination": reference_discrimination(H, y),
    }
