"""Tests of pncutils.conventions against naive per-sample implementations and hand-worked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pncutils import conventions as C
from pncutils import metrics as M
from pncutils.data import gaussian_mixture, orthogonal_dataset

REL = 1e-10


def _balanced(seed=0, K=3, n=8, D=6):
    X, y = gaussian_mixture(K, n, D, class_sep=2.0, noise=0.7,
                            generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return X, y


def _imbalanced(seed=0, sizes=(3, 7, 12), D=5):
    g = np.random.default_rng(seed)
    K = len(sizes)
    means = 3 * g.normal(size=(K, D))
    y = np.concatenate([np.full(s, k) for k, s in enumerate(sizes)])
    H = means[y] + g.normal(size=(len(y), D))
    perm = g.permutation(len(y))
    return torch.tensor(H[perm]), torch.tensor(y[perm])


# ----------------------------------------------------------------------------------------
# naive implementations: Python loops, one outer product per sample, numpy float64
# ----------------------------------------------------------------------------------------


def naive_groups(H, y):
    H = np.array(torch.as_tensor(H).numpy(), dtype=np.float64)
    y = torch.as_tensor(y).numpy().astype(int)
    K = y.max() + 1
    groups = [[H[i] for i in range(len(y)) if y[i] == k] for k in range(K)]
    means = [sum(g) / len(g) for g in groups]
    return H, y, K, groups, means


def naive_pooled_within(H, y):
    H, y, K, groups, means = naive_groups(H, y)
    S = np.zeros((H.shape[1],) * 2)
    for i in range(len(y)):
        d = H[i] - means[y[i]]
        S += np.outer(d, d)
    return S / len(y)


def naive_between(H, y, center="samples", weighted=False):
    H, y, K, groups, means = naive_groups(H, y)
    c = H.mean(0) if center == "samples" else sum(means) / K
    S = np.zeros((H.shape[1],) * 2)
    for k in range(K):
        w = len(groups[k]) / len(y) if weighted else 1.0 / K
        S += w * np.outer(means[k] - c, means[k] - c)
    return S


def naive_within_avg(H, y):
    H, y, K, groups, means = naive_groups(H, y)
    S = np.zeros((H.shape[1],) * 2)
    for k in range(K):
        Sk = np.zeros_like(S)
        for h in groups[k]:
            Sk += np.outer(h - means[k], h - means[k])
        S += Sk / len(groups[k])
    return S / K


def naive_pinv_trace(Sw, Sb):
    return float(np.trace(Sw @ np.linalg.pinv(Sb, rcond=1e-10, hermitian=True)))


def naive_cos(means):
    K = len(means)
    return np.array([[means[a] @ means[b] / np.linalg.norm(means[a]) / np.linalg.norm(means[b])
                      for b in range(K)] for a in range(K)])


def naive_reference_code(H, y, batch_size, copy):
    """The reference code's loop mechanism, written independently: CPU torch batches, numpy
    arrays taken from rows with ``.numpy()`` (views unless ``copy``), in-place class sums."""
    H = torch.as_tensor(H, dtype=torch.float64).clone()
    y = torch.as_tensor(y)
    sums, stored, counts = {}, {}, {}
    total, num = 0.0, 0
    for a in range(0, H.shape[0], batch_size):
        batch = H[a:a + batch_size].clone()  # a fresh tensor per batch, as a DataLoader gives
        labels = y[a:a + batch_size]
        total = total + batch.sum(0).numpy()  # the global sum is taken before the loop
        for b in range(batch.shape[0]):
            k = int(labels[b])

            def row(b=b, batch=batch):
                r = batch[b, :].numpy()
                return r.copy() if copy else r

            if k not in sums:
                sums[k] = row()
                stored[k] = [row()]
                counts[k] = 1
            else:
                sums[k] += row()
                stored[k].append(row())
                counts[k] += 1
        num += batch.shape[0]
    K = len(sums)
    for k in range(K):
        sums[k] /= counts[k]  # in place: through the view, the first stored row changes too
    mean_G = total / num
    D = H.shape[1]
    Sw, Sb = np.zeros((D, D)), np.zeros((D, D))
    for k in range(K):
        for h in stored[k]:
            Sw += np.outer(h - sums[k], h - sums[k])
        Sb += np.outer(sums[k] - mean_G, sums[k] - mean_G)
    Sw /= num
    Sb /= K
    cos = naive_cos([sums[k] for k in range(K)])
    low = np.tril(cos, k=-1)
    low = low[low != 0]
    return {"trace_within": np.trace(Sw), "trace_between": np.trace(Sb),
            "nc1": naive_pinv_trace(Sw, Sb) / K, "compression": np.trace(Sw) / np.trace(Sb),
            "discrimination": 1 - np.max(low)}


# ----------------------------------------------------------------------------------------
# covariances
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [_balanced, _imbalanced])
def test_covariances_match_naive_loops(data):
    H, y = data()
    np.testing.assert_allclose(C.between_class_cov_papyan(H, y), naive_between(H, y), rtol=REL,
                               atol=1e-13)
    np.testing.assert_allclose(C.between_class_cov_weighted(H, y),
                               naive_between(H, y, weighted=True), rtol=REL, atol=1e-13)
    np.testing.assert_allclose(C.within_class_cov_class_averaged(H, y), naive_within_avg(H, y),
                               rtol=REL, atol=1e-13)
    Hn = H.numpy() - H.numpy().mean(0)
    np.testing.assert_allclose(C.total_cov(H), Hn.T @ Hn / len(y), rtol=REL, atol=1e-13)


def test_balanced_classes_make_all_conventions_agree():
    H, y = _balanced()
    Sb = M.between_class_cov(H, y)
    torch.testing.assert_close(C.between_class_cov_papyan(H, y), Sb, rtol=REL, atol=1e-12)
    torch.testing.assert_close(C.between_class_cov_weighted(H, y), Sb, rtol=REL, atol=1e-12)
    torch.testing.assert_close(C.within_class_cov_class_averaged(H, y), M.within_class_cov(H, y),
                               rtol=REL, atol=1e-12)


def test_imbalanced_classes_separate_the_conventions_by_exact_identities():
    H, y = _imbalanced()
    Sw, Sb = M.within_class_cov(H, y), M.between_class_cov(H, y)
    # total = within + size-weighted between, for any class sizes
    torch.testing.assert_close(C.total_cov(H), Sw + C.between_class_cov_weighted(H, y),
                               rtol=REL, atol=1e-12)
    # centring at the sample mean adds (m - hbar)(m - hbar)^T
    m = M.class_means(H, y).mean(0)
    g = H.mean(0)
    torch.testing.assert_close(C.between_class_cov_papyan(H, y),
                               Sb + torch.outer(m - g, m - g), rtol=REL, atol=1e-12)
    assert not torch.allclose(C.between_class_cov_papyan(H, y), Sb, rtol=1e-3)
    assert not torch.allclose(C.within_class_cov_class_averaged(H, y), Sw, rtol=1e-3)


# ----------------------------------------------------------------------------------------
# NC1 variants
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [_balanced, _imbalanced])
def test_nc1_variants_match_naive_pinv(data):
    H, y = data()
    K = int(y.max()) + 1
    Sw = naive_pooled_within(H, y)
    Sb_pap = naive_between(H, y)
    assert C.nc1_papyan(H, y) == pytest.approx(naive_pinv_trace(Sw, Sb_pap) / K, rel=REL)
    assert C.separation_fuzziness(H, y) == pytest.approx(
        naive_pinv_trace(naive_within_avg(H, y), Sb_pap), rel=REL)
    assert C.separation_fuzziness(H, y, weighted=True) == pytest.approx(
        naive_pinv_trace(Sw, naive_between(H, y, weighted=True)), rel=REL)


def test_fuzziness_is_K_times_nc1_for_balanced_classes_only():
    H, y = _balanced(K=4, n=6, D=9)
    assert C.separation_fuzziness(H, y) == pytest.approx(4 * M.nc1(H, y), rel=REL)
    assert C.separation_fuzziness(H, y, weighted=True) == pytest.approx(4 * M.nc1(H, y), rel=REL)
    assert C.nc1_papyan(H, y) == pytest.approx(M.nc1(H, y), rel=REL)
    Hi, yi = _imbalanced()
    assert C.separation_fuzziness(Hi, yi) != pytest.approx(3 * M.nc1(Hi, yi), rel=1e-3)
    assert C.nc1_papyan(Hi, yi) != pytest.approx(M.nc1(Hi, yi), rel=1e-3)


def naive_nc_library(H, y, divisor):
    H, y, K, groups, means = naive_groups(H, y)
    D = H.shape[1]
    Mm = np.stack(means)
    Mc = Mm - Mm.mean(0)
    V_inter = Mc.T @ Mc / (D if divisor == "dim" else K)
    V_intra = naive_pooled_within(H, y)
    pinv = np.trace(np.linalg.pinv(V_inter, rcond=1e-10) @ V_intra) / K
    vals, vecs = np.linalg.eigh(V_inter)
    top = np.argsort(vals)[::-1][: K - 1]
    inv = vecs[:, top] @ np.diag(1 / vals[top]) @ vecs[:, top].T
    return {"pinv": pinv, "svd": np.trace(V_intra @ inv),
            "quotient": np.trace(V_intra) / np.trace(V_inter)}


@pytest.mark.parametrize("divisor", ["dim", "classes"])
def test_nc_library_metrics_match_naive_and_convert(divisor):
    H, y = _balanced(K=3, n=7, D=8)
    got = C.nc_library_metrics(H, y, inter_divisor=divisor)
    want = naive_nc_library(H, y, divisor)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-9), key
    f = 8 / 3 if divisor == "dim" else 1.0
    assert got["pinv"] == pytest.approx(f * M.nc1(H, y), rel=REL)
    assert got["svd"] == pytest.approx(3 * f * M.nc1(H, y), rel=REL)
    assert got["quotient"] == pytest.approx(f * M.compression(H, y), rel=REL)


def test_nc_library_svd_needs_rank_K_minus_1():
    H = torch.tensor([[0.0, 0], [0, 0], [1, 0], [1, 0], [2, 0], [2, 0]])  # collinear means
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    H = H + torch.tensor([[0.0, 0.1], [0, -0.1]] * 3)
    with pytest.raises(ValueError, match="rank < K - 1"):
        C.nc_library_metrics(H, y)


def test_nc1_ignores_noise_orthogonal_to_the_class_mean_span_but_C_does_not():
    H, y = _balanced()
    E = torch.randn(H.shape[0], 4, generator=torch.Generator().manual_seed(1), dtype=H.dtype)
    E = E - M.class_means(E, y)[y]  # zero class means: the class-mean span is unchanged
    H2 = torch.cat([H, E], 1)
    assert M.nc1(H2, y) == pytest.approx(M.nc1(H, y), rel=REL)
    assert M.compression(H2, y) > 1.1 * M.compression(H, y)


# ----------------------------------------------------------------------------------------
# discrimination variants
# ----------------------------------------------------------------------------------------


def test_discrimination_abs_and_reference_match_naive():
    H, y = _balanced(K=4, n=5, D=6)
    _, _, K, _, means = naive_groups(H, y)
    cos = naive_cos(means)
    off = ~np.eye(K, dtype=bool)
    assert C.discrimination_abs(H, y) == pytest.approx(1 - np.abs(cos[off]).max(), rel=REL)
    mc = [m - sum(means) / K for m in means]
    assert C.discrimination_abs(H, y, centered=True) == pytest.approx(
        1 - np.abs(naive_cos(mc)[off]).max(), rel=REL)
    assert C.reference_discrimination(H, y) == pytest.approx(M.discrimination(H, y), rel=REL)


def test_centred_discrimination_abs_uses_the_mean_of_the_class_means():
    H, y = _imbalanced(seed=5)  # the mean of all samples differs from that of the class means
    _, _, K, _, means = naive_groups(H, y)
    off = ~np.eye(K, dtype=bool)
    mc = [m - sum(means) / K for m in means]
    want = 1 - np.abs(naive_cos(mc)[off]).max()
    assert C.discrimination_abs(H, y, centered=True) == pytest.approx(want, rel=REL)
    hbar = H.numpy().mean(0)
    other = 1 - np.abs(naive_cos([m - hbar for m in means])[off]).max()
    assert abs(other - want) > 1e-3  # the two centrings differ on these data


@pytest.mark.parametrize("scale", [1e-12, 1e8])
def test_pseudo_inverse_measures_are_scale_invariant(scale):
    # NC1-type ratios do not depend on the units of H: the cut-off must be relative
    for data in (_balanced, _imbalanced):
        H, y = data()
        Hs = H * scale
        assert C.nc1_papyan(Hs, y) == pytest.approx(C.nc1_papyan(H, y), rel=1e-8)
        for weighted in (False, True):
            assert C.separation_fuzziness(Hs, y, weighted=weighted) == pytest.approx(
                C.separation_fuzziness(H, y, weighted=weighted), rel=1e-8)
        a, b = C.nc_library_metrics(Hs, y), C.nc_library_metrics(H, y)
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-8), key
        assert C.reference_code_metrics(Hs, y)["nc1"] == pytest.approx(
            C.reference_code_metrics(H, y)["nc1"], rel=1e-8)


def test_simplex_means_signed_vs_absolute():
    ang = 2 * math.pi * torch.arange(3, dtype=torch.float64) / 3
    H = torch.stack([ang.cos(), ang.sin()], 1)
    y = torch.arange(3)
    assert M.discrimination(H, y) == pytest.approx(1.5, rel=REL)
    assert C.discrimination_abs(H, y) == pytest.approx(0.5, rel=REL)


def test_reference_discrimination_drops_exact_zeros_and_fails_when_all_are_zero():
    H = torch.tensor([[1.0, 0], [0, 1], [-1, -1]])
    y = torch.arange(3)
    assert M.discrimination(H, y) == 1.0
    assert C.reference_discrimination(H, y) == pytest.approx(1 + 1 / math.sqrt(2), rel=REL)
    with pytest.raises(ValueError, match="empty array"):
        C.reference_discrimination(torch.eye(3), y)


# ----------------------------------------------------------------------------------------
# the reference code's aliasing bug
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1000, 7, 1])
def test_reference_code_metrics_reproduce_the_loop_mechanism(batch_size):
    H, y = _imbalanced(seed=3)  # shuffled labels: the first sample of a class is anywhere
    aliased = naive_reference_code(H, y, batch_size, copy=False)
    copied = naive_reference_code(H, y, batch_size, copy=True)
    assert aliased["trace_within"] < 0.99 * copied["trace_within"]  # the views do alias
    for copy, bug in ((False, True), (True, False)):
        want = naive_reference_code(H, y, batch_size, copy=copy)
        got = C.reference_code_metrics(H, y, emulate_aliasing_bug=bug)
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=1e-9), (key, copy)


def test_aliasing_bias_is_exactly_the_first_deviation_and_n_minus_1_over_n_on_average():
    X, y = orthogonal_dataset(3, 5, 20, generator=torch.Generator().manual_seed(0),
                              dtype=torch.float64)
    n, N = 5, 15
    ok = C.reference_code_metrics(X, y, emulate_aliasing_bug=False)
    bug = C.reference_code_metrics(X, y)
    mu = M.class_means(X, y)
    lost = sum(float(((X[k * n] - mu[k]) ** 2).sum()) for k in range(3)) / N
    assert bug["trace_within"] == pytest.approx(ok["trace_within"] - lost, rel=REL)
    assert bug["trace_between"] == ok["trace_between"]
    assert bug["discrimination"] == ok["discrimination"]
    # average over which sample of each class comes first: exactly (n-1)/n
    ratios = {"trace_within": [], "compression": [], "nc1": []}
    for s in range(n):
        order = torch.cat([k * n + (torch.arange(n) + s) % n for k in range(3)])
        r = C.reference_code_metrics(X[order], y[order])
        for key in ratios:
            ratios[key].append(r[key] / ok[key])
    for key, vals in ratios.items():
        assert np.mean(vals) == pytest.approx((n - 1) / n, rel=1e-12), key
    # without the bug the reference conventions equal pncutils' for balanced classes
    assert ok["compression"] == pytest.approx(M.compression(X, y), rel=REL)
    assert ok["nc1"] == pytest.approx(M.nc1(X, y), rel=REL)


def test_aliased_features_does_not_modify_its_input():
    H = torch.tensor([[0.0], [2.0], [4.0]])
    y = torch.tensor([0, 0, 1])
    out = C.aliased_features(H, y)
    assert H.flatten().tolist() == [0.0, 2.0, 4.0]
    assert out.flatten().tolist() == [1.0, 2.0, 4.0]


# ----------------------------------------------------------------------------------------
# error paths
# ----------------------------------------------------------------------------------------


def test_errors_are_value_errors_with_clear_messages():
    H, y = _balanced()
    with pytest.raises(ValueError, match="inter_divisor must be one of"):
        C.nc_library_metrics(H, y, inter_divisor="K")
    with pytest.raises(ValueError, match="rows but y has"):
        C.nc1_papyan(H, y[:-1])
    with pytest.raises(ValueError, match="weighted must be True or False"):
        C.separation_fuzziness(H, y, weighted=1)
    with pytest.raises(ValueError, match="emulate_aliasing_bug"):
        C.reference_code_metrics(H, y, emulate_aliasing_bug="yes")
    with pytest.raises(ValueError, match="rtol"):
        C.nc1_papyan(H, y, rtol=0.0)
    same = torch.ones(4, 2)
    with pytest.raises(ValueError, match="coincide"):
        C.nc1_papyan(same, torch.tensor([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="zero mean"):
        C.discrimination_abs(torch.zeros(4, 2), torch.tensor([0, 0, 1, 1]))
