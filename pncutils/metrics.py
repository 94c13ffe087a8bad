"""Layerwise metrics of features: compression C, discrimination D, NC1, rank and probes.

Conventions (the book's notation page states them once):

* rows are samples: features ``H`` are ``(N, D)``, labels ``y`` are ``(N,)`` integers in ``[0, K)``;
  the paper stacks samples as columns, so its ``Z_l`` is our ``H_l.T``;
* ``mu_k`` is the **uncentred** mean of class ``k`` and ``mu_G`` the mean of the class means
  (equal to the global mean for balanced classes);
* ``Sigma_W = (1/N) sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T`` (pooled over samples, divided by N);
* ``Sigma_B = (1/K) sum_k (mu_k - mu_G)(mu_k - mu_G)^T`` (unweighted over classes, divided by K).

Every function validates its inputs (clear :class:`ValueError` messages), never modifies them,
computes in float64 on the input's device (the CPU for MPS, which has no float64), and returns
Python floats for scalars and CPU float64 tensors for per-layer curves. Within-class quantities
use the corrected two-pass algorithm, which keeps them exact under large common offsets
(adding ``1e6`` to every feature changes ``C`` by about ``1e-10``), and form deviations in
chunks of rows, so memory stays O(D K + chunk D) beyond the input.

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
    """Validate and return ``(H float64, y int64 on H's device, K)``."""
    H = check_features(H)
    y, K = check_labels(y, H.shape[0], num_classes, device=H.device)
    return H, y, K


class _Moments:
    """Class means and within-class statistics of one feature matrix, in row chunks.

    The corrected two-pass algorithm (Chan, Golub & LeVeque 1983): class means ``M0`` from
    one pass, deviations ``d_i = h_i - M0[y_i]`` in a second pass together with their class
    means ``c_k`` (which hold the rounding error of ``M0``, large under a big common offset),
    then ``mu = M0 + c`` and ``sum ||h_i - mu_{y_i}||^2 = sum ||d_i||^2 - sum_k n_k ||c_k||^2``
    exactly. Deviations are formed ``CHUNK`` rows at a time in one reused buffer, so memory
    stays O(CHUNK * D) beyond the input.
    """

    CHUNK = 8192

    def __init__(self, H: Tensor, y: Tensor, K: int, with_nc1: bool = False) -> None:
        self.H, self.y, self.N, self.K = H, y, H.shape[0], K
        self.counts = torch.bincount(y, minlength=K).to(H.dtype)  # (K,)
        sums = torch.zeros(K, H.shape[1], dtype=H.dtype, device=H.device).index_add_(0, y, H)
        self._M0 = sums / self.counts[:, None]  # (K, D)
        self._buf = torch.empty(min(self.CHUNK, self.N), H.shape[1], dtype=H.dtype,
                                device=H.device)
        # for NC1, project the deviations on the singular directions of the centred M0 in
        # the same pass; they are exact unless the correction c below moves the means
        self._nc1_basis = None
        if with_nc1:
            Mc0 = self._M0 - self._M0.mean(0)
            _, S0, V0 = torch.linalg.svd(Mc0, full_matrices=False)  # (K,), (K, D)
            self._nc1_basis = (Mc0, S0, V0)
            proj_sq = torch.zeros(V0.shape[0], dtype=H.dtype, device=H.device)
        dev_sums = torch.zeros_like(self._M0)
        sq = torch.zeros((), dtype=H.dtype, device=H.device)
        for a, dev in self._raw_deviations():
            dev_sums.index_add_(0, y[a : a + dev.shape[0]], dev)
            flat = dev.reshape(-1)
            sq += flat @ flat
            if with_nc1:
                proj = dev @ V0.T  # (B, K)
                proj_sq += (proj * proj).sum(0)
        self._c = dev_sums / self.counts[:, None]  # (K, D) correction of the means
        self.means = self._M0 + self._c  # (K, D) uncentred class means
        self._sq = float(sq) - float((self.counts[:, None] * self._c * self._c).sum())
        if with_nc1:
            cV = self._c @ V0.T  # (K, K): the same exact correction, per direction
            self._proj_sq0 = proj_sq - (self.counts[:, None] * cV * cV).sum(0)

    def _raw_deviations(self) -> Iterator[tuple[int, Tensor]]:
        """Yield ``(start, H[start:stop] - M0[y[start:stop]])`` chunk by chunk (a reused buffer)."""
        for a in range(0, self.N, self.CHUNK):
            b = min(a + self.CHUNK, self.N)
            dev = self._buf[: b - a]
            torch.index_select(self._M0, 0, self.y[a:b], out=dev)
            torch.sub(self.H[a:b], dev, out=dev)
            yield a, dev

    def trace_within(self) -> float:
        return max(self._sq, 0.0) / self.N

    def within_scatter(self) -> Tensor:
        """``sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T``, (D, D)."""
        S = torch.zeros(self.H.shape[1], self.H.shape[1], dtype=self.H.dtype,
                        device=self.H.device)
        for _, dev in self._raw_deviations():
            S.addmm_(dev.T, dev)
        return S - (self._c.T * self.counts) @ self._c

    def projected_within(self, V: Tensor) -> Tensor:
        """``sum_i ||(h_i - mu_{y_i}) V^T||^2`` per row of ``V`` (r, D): shape (r,)."""
        cV = self._c @ V.T  # (K, r)
        out = torch.zeros(V.shape[0], dtype=self.H.dtype, device=self.H.device)
        for a, dev in self._raw_deviations():
            proj = dev @ V.T - cV.index_select(0, self.y[a : a + dev.shape[0]])  # (B, r)
            out += (proj * proj).sum(0)
        return out

    def centred_means(self) -> Tensor:
        """``mu_k - mu_G`` with ``mu_G`` the mean of the class means, ``(K, D)``."""
        return self.means - self.means.mean(0)

    def nc1(self, rtol: float) -> float:
        """``tr(Sigma_W Sigma_B^+)/K``: one pass when built ``with_nc1``, else two."""
        Mc = self.centred_means()
        basis = self._nc1_basis
        # the first-pass directions are those of the corrected means to ~1e-12 unless a huge
        # common offset made the first means inexact: then project again on the exact ones
        if basis is not None and float(torch.linalg.matrix_norm(Mc - basis[0])) <= 1e-13 * float(
            torch.linalg.matrix_norm(Mc)
        ):
            _, S, V = basis
            quad = self._proj_sq0 / self.N
        else:
            _, S, V = torch.linalg.svd(Mc, full_matrices=False)
            quad = self.projected_within(V) / self.N
        return _nc1_sum(S, V, quad, rtol)

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
    """
    H, y, K = _prepare(H, y, num_classes)
    Mc = _Moments(H, y, K).centred_means()
    return Mc.T @ Mc / K


def compression(H: Any, y: Any, num_classes: int | None = None) -> float:
    """Within-class compression ``C = tr Sigma_W / tr Sigma_B`` (smaller = more compressed).

    Computed from traces only, in O(N D) time and memory: no D x D matrix is formed.

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
    """
    H, y, K = _prepare(H, y, num_classes)
    if not isinstance(centered, bool):
        raise ValueError(f"centered must be True or False, got {centered!r}")
    sums = torch.zeros(K, H.shape[1], dtype=H.dtype, device=H.device).index_add_(0, y, H)
    counts = torch.bincount(y, minlength=K).to(H.dtype)
    return _discrimination_from_means(sums / counts[:, None], centered)


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
    """
    H, y, K = _prepare(H, y, num_classes)
    rtol = check_float(rtol, "rtol", minimum=0.0, maximum=1.0, strict=True)
    return _Moments(H, y, K, with_nc1=True).nc1(rtol)


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
    """
    features = _features_list(features)
    if not isinstance(centered, bool):
        raise ValueError(f"centered must be True or False, got {centered!r}")
    rtol = check_float(rtol, "rtol", minimum=0.0, maximum=1.0, strict=True)
    rows: dict[str, list[float]] = {c: [] for c in TABLE_COLUMNS}
    for layer, H in enumerate(features):
        try:
            H, y_l, K = _prepare(H, y, num_classes)
        except ValueError as err:
            raise ValueError(f"layer {layer}: {err}") from err
        m = _Moments(H, y_l, K, with_nc1=True)
        _append_row(rows, layer, m.trace_within(), m.trace_between(), m.means, m.nc1(rtol),
                    centered)
    return LayerTable(rows)


class LayerwiseStats:
    """Streaming, float64 accumulator of the per-layer table over mini-batches.

    It never stores features. Its state per layer is, per class, the sample count and the
    running mean, plus the pooled within-class scatter matrix ``sum_i (h_i - mu_{y_i})
    (h_i - mu_{y_i})^T`` (D x D), merged batch by batch with the parallel update of Chan,
    Golub & LeVeque (1979): for class k with running ``(n, mu)`` and a batch ``(m, b, S_b)``,
    ``S += S_b + n m / (n + m) (b - mu)(b - mu)^T``. Features are shifted by the first sample
    seen, so large common offsets cost no precision (unlike ``sum x^2 - n mu^2``).

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
                H = check_features(H)
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
        device = checked[0].device
        batch_counts = torch.bincount(y.to(device), minlength=K).to(torch.float64)  # (K,)
        if self._counts is None:
            self._counts = torch.zeros(K, dtype=torch.float64, device=device)
            for H in checked:
                D = H.shape[1]
                self._shift.append(H[0].clone())
                self._means.append(torch.zeros(K, D, dtype=torch.float64, device=device))
                shape = (D, D) if self.track_nc1 else ()
                self._scatter.append(torch.zeros(shape, dtype=torch.float64, device=device))
        n, m = self._counts, batch_counts
        total = n + m
        present = m > 0
        w_new = torch.where(present, m / total.clamp(min=1), torch.zeros_like(m))  # (K,)
        w_cross = torch.where(present, n * m / total.clamp(min=1), torch.zeros_like(m))
        for layer, H in enumerate(checked):
            H = H.to(self._shift[layer].device)
            yl = y.to(H.device)
            Hs = H - self._shift[layer]  # (B, D)
            sums = torch.zeros_like(self._means[layer]).index_add_(0, yl, Hs)
            b = torch.where(present[:, None], sums / m.clamp(min=1)[:, None], 0.0)  # (K, D)
            dev = Hs.sub_(b.index_select(0, yl))  # (B, D)
            delta = b - self._means[layer]  # (K, D)
            if self.track_nc1:
                self._scatter[layer] += dev.T @ dev + (delta.T * w_cross) @ delta
            else:
                flat = dev.reshape(-1)
                self._scatter[layer] += flat @ flat + (w_cross[:, None] * delta * delta).sum()
            self._means[layer] += delta * w_new[:, None]
        self._counts = total
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
