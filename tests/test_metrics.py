"""Tests of pncutils.metrics against naive per-sample implementations and hand-worked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pncutils import metrics as M

REL = 1e-10


# ----------------------------------------------------------------------------------------
# an independent, naive implementation: the reference code's per-sample loops and outer
# products (utility.py: compute_info / compute_Sigma_W / compute_Sigma_B / max_angle_metric),
# in numpy float64 and without its aliasing bug (every sample is copied).
# ----------------------------------------------------------------------------------------


def naive_stats(H, y):
    H = np.array(H, dtype=np.float64)  # a copy
    y = np.asarray(y)
    K = int(y.max()) + 1
    N, D = H.shape
    sums = {k: np.zeros(D) for k in range(K)}
    counts = {k: 0 for k in range(K)}
    for i in range(N):
        sums[int(y[i])] = sums[int(y[i])] + H[i]
        counts[int(y[i])] += 1
    mu = np.stack([sums[k] / counts[k] for k in range(K)])
    mu_G = mu.mean(0)
    Sigma_W = np.zeros((D, D))
    for i in range(N):
        d = H[i] - mu[int(y[i])]
        Sigma_W += np.outer(d, d)
    Sigma_W /= N
    Sigma_B = np.zeros((D, D))
    for k in range(K):
        d = mu[k] - mu_G
        Sigma_B += np.outer(d, d)
    Sigma_B /= K
    return mu, Sigma_W, Sigma_B


def naive_compression(H, y):
    _, Sw, Sb = naive_stats(H, y)
    return np.trace(Sw) / np.trace(Sb)


def naive_discrimination(H, y, centered=False):
    mu, _, _ = naive_stats(H, y)
    if centered:
        mu = mu - mu.mean(0)
    K = mu.shape[0]
    best = -np.inf
    for k in range(K):
        for j in range(K):
            if k != j:
                c = mu[k] @ mu[j] / (np.linalg.norm(mu[k]) * np.linalg.norm(mu[j]))
                best = max(best, c)
    return 1 - best


def naive_nc1(H, y):
    mu, Sw, Sb = naive_stats(H, y)
    K = mu.shape[0]
    return np.trace(Sw @ np.linalg.pinv(Sb, rcond=1e-10, hermitian=True)) / K


def naive_rank(H, energy=0.95):
    s = np.linalg.svd(np.asarray(H, dtype=np.float64), compute_uv=False)
    total, acc = s.sum(), 0.0
    for r, v in enumerate(s, start=1):
        acc += v
        if acc >= energy * total * (1 - 1e-12):
            return r
    return len(s)


def naive_probe(H, y, H_eval, y_eval, ridge):
    H = np.asarray(H, dtype=np.float64)
    K = int(np.max(y)) + 1
    mean = H.mean(0)
    Hc = H - mean
    Y = np.eye(K)[np.asarray(y)]
    lam = ridge * (Hc**2).sum() / H.shape[1]
    # augmented system with an unpenalised bias column
    A = np.hstack([Hc, np.ones((len(H), 1))])
    P = lam * np.eye(A.shape[1])
    P[-1, -1] = 0.0
    W = np.linalg.solve(A.T @ A + P, A.T @ Y)
    Ae = np.hstack([np.asarray(H_eval, dtype=np.float64) - mean, np.ones((len(H_eval), 1))])
    return float(np.mean((Ae @ W).argmax(1) == np.asarray(y_eval)))


def random_problem(seed, N=60, D=7, K=4, offset=0.0, imbalanced=False):
    g = np.random.default_rng(seed)
    if imbalanced:
        y = np.concatenate([np.arange(K), g.integers(0, K, N - K)])
    else:
        y = np.repeat(np.arange(K), N // K)
    mu = g.normal(size=(K, D)) * 2 + offset
    H = mu[y] + g.normal(size=(len(y), D))
    return H, y


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


# ----------------------------------------------------------------------------------------
# agreement with the naive implementation
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("imbalanced", [False, True])
def test_matches_naive_implementation(seed, imbalanced):
    H, y = random_problem(seed, imbalanced=imbalanced)
    mu, Sw, Sb = naive_stats(H, y)
    Ht, yt = torch.from_numpy(H), torch.from_numpy(y)
    np.testing.assert_allclose(M.class_means(Ht, yt).numpy(), mu, rtol=REL, atol=1e-12)
    np.testing.assert_allclose(M.within_class_cov(Ht, yt).numpy(), Sw, rtol=REL, atol=1e-12)
    np.testing.assert_allclose(M.between_class_cov(Ht, yt).numpy(), Sb, rtol=REL, atol=1e-12)
    assert rel(M.compression(Ht, yt), naive_compression(H, y)) < REL
    assert rel(M.discrimination(Ht, yt), naive_discrimination(H, y)) < REL
    assert rel(M.discrimination(Ht, yt, centered=True), naive_discrimination(H, y, True)) < REL
    assert rel(M.nc1(Ht, yt), naive_nc1(H, y)) < REL
    assert M.numerical_rank(Ht) == naive_rank(H)
    assert M.numerical_rank(Ht, energy=0.5) == naive_rank(H, 0.5)


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_chunked_deviations_match_naive(monkeypatch, chunk):
    monkeypatch.setattr(M._Moments, "CHUNK", chunk)
    H, y = random_problem(21, N=50, D=6, K=3, imbalanced=True)
    _, Sw, _ = naive_stats(H, y)
    np.testing.assert_allclose(M.within_class_cov(H, y).numpy(), Sw, rtol=REL, atol=1e-12)
    assert rel(M.compression(H, y), naive_compression(H, y)) < REL
    assert rel(M.nc1(H, y), naive_nc1(H, y)) < REL


def test_nc1_rank_deficient_between_class_in_high_dimension():
    # D > K: Sigma_B has rank K - 1 and the pseudo-inverse must ignore its null space
    H, y = random_problem(3, N=40, D=50, K=4)
    assert rel(M.nc1(H, y), naive_nc1(H, y)) < REL


@pytest.mark.parametrize("seed", range(3))
def test_linear_probe_matches_naive_solution(seed):
    H, y = random_problem(seed, N=80, D=5, K=4)
    Ht, yt = random_problem(seed + 100, N=40, D=5, K=4)
    for ridge in (1e-6, 1.0):
        assert M.linear_probe_accuracy(H, y, ridge=ridge) == naive_probe(H, y, H, y, ridge)
        got = M.linear_probe_accuracy(H, y, Ht, yt, ridge=ridge)
        assert got == naive_probe(H, y, Ht, yt, ridge)


def test_linear_probe_dual_form_when_fewer_samples_than_features():
    H, y = random_problem(5, N=12, D=40, K=3)
    assert M.linear_probe_accuracy(H, y) == 1.0  # 12 points in 40 dimensions are separable
    assert M.linear_probe_accuracy(H, y) == naive_probe(H, y, H, y, 1e-6)


def test_layerwise_matches_single_metrics():
    H, y = random_problem(0)
    feats = [H, 2 * H + 1, np.tanh(H)]
    t = M.layerwise(feats, y)
    assert t.columns == M.TABLE_COLUMNS
    assert t.layer.tolist() == [0, 1, 2]
    for layer, Hl in enumerate(feats):
        assert rel(float(t.compression[layer]), naive_compression(Hl, y)) < REL
        assert rel(float(t.discrimination[layer]), naive_discrimination(Hl, y)) < REL
        assert rel(float(t.nc1[layer]), naive_nc1(Hl, y)) < 1e-9
        _, Sw, Sb = naive_stats(Hl, y)
        assert rel(float(t.trace_within[layer]), np.trace(Sw)) < REL
        assert rel(float(t.trace_between[layer]), np.trace(Sb)) < REL


# ----------------------------------------------------------------------------------------
# hand-worked cases
# ----------------------------------------------------------------------------------------


def test_features_equal_to_class_means_give_zero_compression():
    mu = torch.tensor([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0], [4.0, 0.0, 1.0]])
    y = torch.tensor([0, 0, 1, 2, 2, 2, 1])
    H = mu[y]
    assert M.compression(H, y) == 0.0
    assert M.nc1(H, y) == 0.0
    assert M.within_class_cov(H, y).abs().max().item() == 0.0


def test_orthogonal_class_means_give_unit_discrimination():
    y = torch.arange(4).repeat_interleave(3)
    H = torch.eye(4)[y] * torch.tensor([1.0, 2.0, 3.0, 4.0])  # orthogonal, unequal norms
    assert M.discrimination(H, y) == 1.0
    # within-class noise that averages to zero in each class leaves the means, hence D, alone
    noise = 0.3 * torch.randn(12, 4, generator=torch.Generator().manual_seed(0),
                              dtype=torch.float64)
    noise = noise - noise.view(4, 3, 4).mean(1).repeat_interleave(3, 0)
    assert noise.abs().max() > 0.1  # not dead
    Hn = H.double() + noise
    assert M.compression(Hn, y) > 0.01
    assert M.discrimination(Hn, y) == pytest.approx(1.0, abs=1e-12)


def test_two_class_one_dimensional_case_worked_by_hand():
    """Class 0 = {1, 3}, class 1 = {6, 8, 10}.

    mu_0 = 2, mu_1 = 8, mu_G = 5. Deviations -1, 1, -2, 0, 2: tr Sigma_W = 10/5 = 2.
    tr Sigma_B = ((2-5)^2 + (8-5)^2)/2 = 9. C = 2/9. NC1 = (2/9)/2 = 1/9.
    Means 2 and 8 are positive: cos = 1, D = 0. Centred: -3 and 3, cos = -1, D = 2.
    """
    H = torch.tensor([[1.0], [3.0], [6.0], [8.0], [10.0]])
    y = torch.tensor([0, 0, 1, 1, 1])
    assert M.class_means(H, y).flatten().tolist() == [2.0, 8.0]
    assert math.isclose(M.within_class_cov(H, y).item(), 2.0, rel_tol=1e-15)
    assert math.isclose(M.between_class_cov(H, y).item(), 9.0, rel_tol=1e-15)
    assert math.isclose(M.compression(H, y), 2 / 9, rel_tol=1e-15)
    assert math.isclose(M.nc1(H, y), 1 / 9, rel_tol=1e-12)
    assert M.discrimination(H, y) == 0.0
    assert M.discrimination(H, y, centered=True) == 2.0
    t = M.layerwise([H], y)
    assert math.isclose(float(t.compression[0]), 2 / 9, rel_tol=1e-15)


def test_signed_cosine_can_exceed_one():
    # three class means at 120 degrees: all cosines -1/2, so D = 1.5 (not 0.5 as |cos| gives)
    ang = torch.tensor([0.0, 2 * math.pi / 3, 4 * math.pi / 3], dtype=torch.float64)
    H = torch.stack([ang.cos(), ang.sin()], 1)
    assert math.isclose(M.discrimination(H, torch.arange(3)), 1.5, rel_tol=1e-12)


def test_numerical_rank_edge_cases():
    assert M.numerical_rank(torch.zeros(3, 4)) == 0
    assert M.numerical_rank(torch.eye(5), energy=1.0) == 5
    assert M.numerical_rank(torch.eye(5), energy=0.6) == 3


# ----------------------------------------------------------------------------------------
# invariances
# ----------------------------------------------------------------------------------------


def _all_metrics(H, y, **kw):
    return {
        "C": M.compression(H, y, **kw),
        "D": M.discrimination(H, y, **kw),
        "Dc": M.discrimination(H, y, centered=True, **kw),
        "NC1": M.nc1(H, y, **kw),
    }


def test_label_permutation_invariance():
    H, y = random_problem(1, imbalanced=True)
    perm = np.array([2, 0, 3, 1])
    a, b = _all_metrics(H, y), _all_metrics(H, perm[y])
    for k in a:
        assert rel(b[k], a[k]) < 1e-12
    # reordering the samples changes nothing either
    order = np.random.default_rng(0).permutation(len(y))
    c = _all_metrics(H[order], y[order])
    for k in a:
        assert rel(c[k], a[k]) < 1e-12


def test_orthogonal_rotation_invariance():
    H, y = random_problem(2)
    Q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(7, 7)))
    a, b = _all_metrics(H, y), _all_metrics(H @ Q, y)
    for k in a:
        assert rel(b[k], a[k]) < 1e-9
    assert M.numerical_rank(H @ Q) == M.numerical_rank(H)


def test_global_scaling_invariance():
    H, y = random_problem(3)
    a, b = _all_metrics(H, y), _all_metrics(-3.7 * H, y)
    for k in ("C", "NC1", "Dc"):
        assert rel(b[k], a[k]) < 1e-12
    assert rel(_all_metrics(3.7 * H, y)["D"], a["D"]) < 1e-12


def test_translation_invariance_of_centred_quantities():
    H, y = random_problem(4)
    shift = np.random.default_rng(2).normal(size=7) * 5
    a, b = _all_metrics(H, y), _all_metrics(H + shift, y)
    for k in ("C", "NC1", "Dc"):
        assert rel(b[k], a[k]) < 1e-10
    assert rel(b["D"], a["D"]) > 1e-3  # the paper's D uses uncentred means: not invariant


def test_large_common_offset_costs_no_precision():
    H, y = random_problem(5, N=400, D=16, K=4)
    Ht = torch.from_numpy(H)
    C = M.compression(Ht, y)
    assert rel(M.compression(Ht + 1e6, y), C) < 1e-8
    assert rel(M.nc1(Ht + 1e6, y), M.nc1(Ht, y)) < 1e-8
    stats = M.LayerwiseStats(num_layers=1, num_classes=4)
    for idx in torch.randperm(400, generator=torch.Generator().manual_seed(0)).split(37):
        stats.update([Ht[idx] + 1e6], y[idx.numpy()])
    assert rel(float(stats.compute().compression[0]), C) < 1e-8


def two_pass_reference(H, y):
    """float64 two-pass reference: exact class means first, then the squared deviations."""
    H = np.asarray(H, dtype=np.float64)
    K, N = int(y.max()) + 1, len(y)
    means = np.stack([H[y == k].mean(0) for k in range(K)])
    dev = H - means[y]
    Mc = means - means.mean(0)
    Sw, Sb = dev.T @ dev / N, Mc.T @ Mc / K
    nc1 = np.trace(Sw @ np.linalg.pinv(Sb, rcond=1e-10, hermitian=True)) / K
    return {"trace_within": np.trace(Sw), "trace_between": np.trace(Sb), "nc1": nc1,
            "compression": np.trace(Sw) / np.trace(Sb)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("order", ["sorted", "shuffled"])
@pytest.mark.parametrize("chunk", [256, None])
def test_large_mean_features_match_a_two_pass_reference(monkeypatch, dtype, order, chunk):
    # ReLU-like features: mean 1e4 and spread 1. The one-pass sum x^2 - n mu^2 loses ~8
    # digits here; the chunked, per-class shifted one-pass update must not lose any.
    if chunk is not None:
        monkeypatch.setattr(M._Moments, "CHUNK", chunk)
    g = np.random.default_rng(30)
    N, D, K = 3000, 32, 5
    y = np.concatenate([np.arange(K), g.integers(0, K, N - K)])
    y = np.sort(y) if order == "sorted" else g.permutation(y)  # sorted: chunks of one class
    H = (1e4 + g.normal(size=(K, D)) * 3)[y] + g.normal(size=(N, D))
    H = H.astype(dtype)
    ref = two_pass_reference(H, y)
    X = H.astype(np.float64)
    sums = np.stack([X[y == k].sum(0) for k in range(K)])
    naive = ((X * X).sum() - ((sums**2).sum(1) / np.bincount(y)).sum()) / N
    assert rel(naive, ref["trace_within"]) > 1e-9  # the naive formula fails
    t = M.layerwise([torch.from_numpy(H)], y)
    for batch_nc1 in (True, False):
        stats = M.LayerwiseStats(1, K, nc1=batch_nc1)
        for idx in np.array_split(np.arange(N), 7):
            stats.update([torch.from_numpy(H[idx])], y[idx])
        s = stats.compute()
        for col, value in ref.items():
            if col == "nc1" and not batch_nc1:
                assert math.isnan(float(s.nc1[0]))
                continue
            assert rel(float(s[col][0]), value) < REL, (col, batch_nc1)
    for col, value in ref.items():
        assert rel(float(t[col][0]), value) < REL, col
    np.testing.assert_allclose(M.class_means(H, y).numpy(),
                               np.stack([X[y == k].mean(0) for k in range(K)]), rtol=1e-14)


def test_many_classes_take_the_gather_path_and_match_naive():
    K = M._ClassRows.MANY + 8  # a gather instead of the one-hot GEMM, chunks of >= 4 K rows
    H, y = random_problem(18, N=8 * K, D=6, K=K, offset=50.0, imbalanced=True)
    mu, Sw, _ = naive_stats(H, y)
    np.testing.assert_allclose(M.class_means(H, y).numpy(), mu, rtol=REL, atol=1e-12)
    np.testing.assert_allclose(M.within_class_cov(H, y).numpy(), Sw, rtol=REL, atol=1e-12)
    assert rel(M.compression(H, y), naive_compression(H, y)) < REL
    assert rel(M.nc1(H, y), naive_nc1(H, y)) < REL
    stats = M.LayerwiseStats(1, K, nc1=False)
    for idx in np.array_split(np.arange(len(y)), 3):
        stats.update([torch.from_numpy(H[idx]).float()], y[idx])
    ref = M.layerwise([torch.from_numpy(H).float()], y)
    torch.testing.assert_close(stats.compute().compression, ref.compression, rtol=REL, atol=0)


def test_layerwise_float32_input_nan_is_found_and_named():
    H, y = random_problem(16, N=40, D=5, K=4)
    bad = torch.from_numpy(H).float()
    bad[7, 2] = float("nan")
    with pytest.raises(ValueError, match=r"layer 1: H contains 1 NaN or Inf"):
        M.layerwise([H, bad], y)
    bad[7, 2] = float("inf")
    with pytest.raises(ValueError, match="NaN or Inf"):
        M.compression(bad, y)
    stats = M.LayerwiseStats(1, 4, nc1=False)
    with pytest.raises(ValueError, match="layer 0: H contains 1 NaN or Inf"):
        stats.update([bad], y)
    assert stats.num_samples == 0 and stats._counts is None  # nothing committed


def test_streaming_state_does_not_alias_the_caller_batch():
    H, y = random_problem(17, N=40, D=5, K=4)
    ref = M.layerwise([H], y)
    stats = M.LayerwiseStats(1, 4)
    batch = torch.from_numpy(H[:20].copy())
    stats.update([batch], y[:20])
    batch.fill_(1e9)  # a reused batch buffer: the accumulated state must not change
    stats.update([torch.from_numpy(H[20:])], y[20:])
    torch.testing.assert_close(stats.compute().compression, ref.compression, rtol=1e-10,
                               atol=0)


# ----------------------------------------------------------------------------------------
# streaming accumulator
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_streaming_over_random_batch_splits_equals_full_table(seed):
    g = torch.Generator().manual_seed(seed)
    N, K = 300, 5
    y = torch.randint(0, K, (N,), generator=g)
    y[:K] = torch.arange(K)
    feats = [torch.randn(N, 9, generator=g, dtype=torch.float64) + 3 * torch.eye(5, 9)[y % 5]]
    feats.append(torch.relu(feats[0] @ torch.randn(9, 12, generator=g, dtype=torch.float64)))
    feats.append(feats[1] @ torch.randn(12, 4, generator=g, dtype=torch.float64))
    full = M.layerwise(feats, y)
    for centered in (False, True):
        stats = M.LayerwiseStats(num_layers=3, num_classes=K, centered=centered)
        cuts = torch.sort(torch.randperm(N - 1, generator=g)[:7] + 1).values.tolist()
        bounds = [0, *cuts, N]
        order = torch.randperm(N, generator=g)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            idx = order[a:b]
            stats.update([f[idx] for f in feats], y[idx])
        got = stats.compute()
        ref = full if not centered else M.layerwise(feats, y, centered=True)
        assert stats.num_samples == N
        for col in M.TABLE_COLUMNS:
            torch.testing.assert_close(got[col], ref[col], rtol=1e-10, atol=1e-13)


def test_streaming_without_nc1_keeps_only_traces():
    H, y = random_problem(14, N=90, D=5, K=3, imbalanced=True)
    stats = M.LayerwiseStats(num_layers=1, num_classes=3, nc1=False)
    for idx in np.array_split(np.random.default_rng(0).permutation(90), 4):
        stats.update([H[idx] + 1e6], y[idx])
    assert stats._scatter[0].shape == ()  # no D x D state
    got, ref = stats.compute(), M.layerwise([H], y)
    for col in ("compression", "trace_within", "trace_between"):  # D is uncentred: not here
        torch.testing.assert_close(got[col], ref[col], rtol=1e-8, atol=0)
    assert math.isnan(float(got.nc1[0]))
    with pytest.raises(ValueError, match="nc1 must be True or False"):
        M.LayerwiseStats(1, 3, nc1="no")


def test_streaming_batches_missing_classes_and_float32_input():
    H, y = random_problem(6, N=64, D=6, K=4)
    stats = M.LayerwiseStats(num_layers=1, num_classes=4)
    order = np.argsort(y, kind="stable")  # class-sorted batches: most miss classes
    for idx in np.array_split(order, 5):
        stats.update([torch.from_numpy(H[idx]).float()], torch.from_numpy(y[idx]))
    ref = M.layerwise([torch.from_numpy(H).float()], y)
    torch.testing.assert_close(stats.compute().compression, ref.compression, rtol=1e-9, atol=0)


def test_streaming_rejects_bad_batches_without_changing_state():
    H, y = random_problem(7, N=40, D=3, K=2, imbalanced=True)
    stats = M.LayerwiseStats(num_layers=2, num_classes=2)
    stats.update([H[:20], H[:20]], y[:20])
    before = stats.compute()
    bad = H[20:].copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        stats.update([H[20:], bad], y[20:])
    with pytest.raises(ValueError, match=r"labels in \[0, 2\)"):
        stats.update([H[20:], H[20:]], y[20:] + 1)
    with pytest.raises(ValueError, match="expected 2"):
        stats.update([H[20:]], y[20:])
    with pytest.raises(ValueError, match="columns"):
        stats.update([H[20:], H[20:, :2]], y[20:])
    assert stats.num_samples == 20
    assert stats.compute() == before
    with pytest.raises(ValueError, match="no batch"):
        M.LayerwiseStats(1, 3).compute()
    one_class = M.LayerwiseStats(1, 3)
    one_class.update([H[:5]], np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match="no samples"):
        one_class.compute()


# ----------------------------------------------------------------------------------------
# inputs, outputs and errors
# ----------------------------------------------------------------------------------------


def test_accepts_numpy_float32_and_returns_python_floats():
    H, y = random_problem(8)
    ref = M.compression(H, y)
    assert isinstance(ref, float)
    assert isinstance(M.numerical_rank(H), int)
    assert rel(M.compression(torch.from_numpy(H).float(), torch.from_numpy(y)), ref) < 1e-6
    assert M.class_means(H, y).dtype == torch.float64
    t = M.layerwise([torch.from_numpy(H).float()], y)
    assert t.compression.dtype == torch.float64 and t.compression.device.type == "cpu"


def test_features_that_require_grad_are_accepted():
    H, y = random_problem(15)
    Ht = torch.from_numpy(H).requires_grad_(True)
    feats = [Ht, Ht * 2]  # as model.features(X) returns them outside torch.no_grad()
    t = M.layerwise(feats, y)
    assert rel(float(t.compression[0]), naive_compression(H, y)) < REL
    assert isinstance(M.nc1(Ht, y), float) and isinstance(M.discrimination(Ht, y), float)
    stats = M.LayerwiseStats(2, 4)
    stats.update(feats, y)
    torch.testing.assert_close(stats.compute().compression, t.compression, rtol=1e-10, atol=0)


def test_inputs_are_never_modified():
    H, y = random_problem(9)
    Ht, yt = torch.from_numpy(H.copy()), torch.from_numpy(y.copy())
    for fn in (M.class_means, M.within_class_cov, M.between_class_cov, M.compression,
               M.discrimination, M.nc1, M.linear_probe_accuracy):
        fn(Ht, yt)
        fn(H, y)
    M.layerwise([Ht, H], yt)
    stats = M.LayerwiseStats(1, 4)
    stats.update([Ht], yt)
    assert torch.equal(Ht, torch.from_numpy(H)) and torch.equal(yt, torch.from_numpy(y))
    H2, y2 = random_problem(9)
    assert np.array_equal(H, H2) and np.array_equal(y, y2)


ERROR_CASES = [
    ("mismatched N", lambda H, y: (H, y[:-1]), "rows but y has"),
    ("float labels", lambda H, y: (H, y + 0.5), "non-integer"),
    ("negative label", lambda H, y: (H, np.where(np.arange(len(y)) == 0, -1, y)), "negative"),
    ("1-D features", lambda H, y: (H[:, 0], y), "2-D"),
    ("NaN", lambda H, y: (np.where(np.eye(*H.shape) > 0, np.nan, H), y), "NaN or Inf"),
    ("Inf", lambda H, y: (np.where(np.eye(*H.shape) > 0, np.inf, H), y), "NaN or Inf"),
    ("one class", lambda H, y: (H, np.zeros_like(y)), "at least two classes"),
    ("2-D labels", lambda H, y: (H, y[:, None]), "1-D"),
    ("bool labels", lambda H, y: (H, y > 1), "integer"),
    ("empty features", lambda H, y: (H[:0], y[:0]), "empty"),
    ("gap in classes", lambda H, y: (H, np.where(y == 1, 3, y)), r"class\(es\) \[1\]"),
]


@pytest.mark.parametrize("fn", [M.class_means, M.within_class_cov, M.between_class_cov,
                                M.compression, M.discrimination, M.nc1,
                                M.linear_probe_accuracy])
@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_bad_input_raises_clear_value_error(fn, case):
    H, y = random_problem(10, N=20, D=4, K=4)
    Hb, yb = case[1](H, y)
    with pytest.raises(ValueError, match=case[2]):
        fn(Hb, yb)


def test_num_classes_errors():
    H, y = random_problem(11, N=20, D=4, K=4)
    with pytest.raises(ValueError, match=r"class\(es\) \[4, 5\] have no samples"):
        M.compression(H, y, num_classes=6)
    with pytest.raises(ValueError, match="out of range for num_classes=3"):
        M.compression(H, y, num_classes=3)
    with pytest.raises(ValueError, match="num_classes must be an integer"):
        M.compression(H, y, num_classes=4.0)


def test_zero_class_mean_in_discrimination():
    H = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 0, 1])
    with pytest.raises(ValueError, match=r"class\(es\) \[0\] have a zero class mean"):
        M.discrimination(H, y)
    assert M.compression(H, y) > 0  # other metrics are fine


def test_coinciding_class_means_and_other_argument_errors():
    H = torch.tensor([[1.0], [3.0], [2.0], [2.0]])
    y = torch.tensor([0, 0, 1, 1])
    with pytest.raises(ValueError, match="class means coincide"):
        M.compression(H, y)
    with pytest.raises(ValueError, match="class means coincide"):
        M.nc1(H, y)
    with pytest.raises(ValueError, match="energy"):
        M.numerical_rank(H, energy=0.0)
    with pytest.raises(ValueError, match="energy"):
        M.numerical_rank(H, energy=1.5)
    with pytest.raises(ValueError, match="must be a torch.Tensor or numpy array"):
        M.compression("features", y)
    with pytest.raises(ValueError, match="list of per-layer"):
        M.layerwise(torch.ones(4, 2), y)
    with pytest.raises(ValueError, match="layer 1: .*NaN"):
        good = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
        M.layerwise([good, torch.full((4, 2), float("nan"))], y)
    with pytest.raises(ValueError, match="H_test and y_test"):
        M.linear_probe_accuracy(H, y, H_test=H)
    with pytest.raises(ValueError, match="centered"):
        M.discrimination(torch.eye(2), torch.arange(2), centered="yes")


def test_probe_held_out_labels_are_checked_against_training_classes():
    g = torch.Generator().manual_seed(3)
    H = torch.randn(30, 4, generator=g, dtype=torch.float64)
    y = torch.arange(30) % 3
    H += 4 * torch.nn.functional.one_hot(y, 4)  # separable: the probe is right everywhere
    Ht = torch.zeros(4, 4, dtype=torch.float64)
    # a held-out set may miss classes, or hold a single one
    Ht[:, 2] = 4.0
    assert M.linear_probe_accuracy(H, y, Ht, torch.tensor([2, 2, 2, 2])) == 1.0
    Ht[:2, 2], Ht[:2, 0] = 0.0, 4.0
    assert M.linear_probe_accuracy(H, y, Ht, torch.tensor([0, 0, 2, 2])) == 1.0
    # ... but not a class the probe never saw, and not a bad label
    with pytest.raises(ValueError, match=r"got label 3 \(out of range for num_classes=3\)"):
        M.linear_probe_accuracy(H, y, Ht, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="negative"):
        M.linear_probe_accuracy(H, y, Ht, torch.tensor([0, 1, 2, -1]))
    with pytest.raises(ValueError, match="rows but y has"):
        M.linear_probe_accuracy(H, y, Ht, torch.tensor([0, 1, 2]))


# ----------------------------------------------------------------------------------------
# the table
# ----------------------------------------------------------------------------------------


def test_layer_table_roundtrip_and_display(tmp_path):
    H, y = random_problem(12)
    t = M.layerwise([H, H**2], y)
    path = tmp_path / "table.csv"
    t.to_csv(path)
    back = M.LayerTable.from_csv(path)
    assert back == t  # full precision survives the round trip
    assert M.LayerTable.from_dict(t.to_dict()) == t
    assert "compression" in repr(t) and "<table " in t._repr_html_()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]  # no temporary left
    with pytest.raises(KeyError, match="no column"):
        t["rank"]
    with pytest.raises(ValueError, match="expected 2"):
        M.LayerTable({"a": [1, 2], "b": [1]})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    H, y = random_problem(13)
    Hc, yc = torch.from_numpy(H).cuda(), torch.from_numpy(y).cuda()
    for name in ("compression", "discrimination", "nc1"):
        fn = getattr(M, name)
        assert rel(fn(Hc, yc), fn(H, y)) < 1e-10
    t = M.layerwise([Hc], yc)
    assert t.compression.device.type == "cpu"
