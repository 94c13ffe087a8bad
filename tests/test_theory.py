"""Tests of pncutils.theory: the closed-form network, its exact predictions and diagnostics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pncutils import metrics as M
from pncutils import theory as T


def paper_data(seed, N=30, d=50, K=3, perturbation=1.0):
    """The paper's nearly-orthogonal data (paper.md 1.1), written independently of pncutils."""
    g = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(g.normal(size=(d, d)))
    delta = g.normal(size=(N, d))
    X = Q[:, :N].T + perturbation * delta / np.linalg.norm(delta)
    y = np.repeat(np.arange(K), N // K)
    return torch.from_numpy(X), torch.from_numpy(y)


def network_features(weights, X):
    feats, H = [X.double()], X.double()
    for W in weights[:-1]:
        H = H @ W.T
        feats.append(H)
    return feats


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("depth,eps,alpha,width", [(6, 0.3, 100.0, None), (4, 0.1, 1.0, 64),
                                                   (2, 0.5, 3.0, None), (10, 0.2, 100.0, 50)])
def test_construction_interpolates_is_balanced_and_low_rank(depth, eps, alpha, width):
    X, y = paper_data(1)
    K, d = 3, 50
    Ws = T.min_norm_balanced_network(X, y, depth, eps, alpha=alpha, width=width, generator=gen())
    assert len(Ws) == depth
    h = width or d
    assert Ws[0].shape == (h, d) and Ws[-1].shape == (K, h)
    Y = torch.nn.functional.one_hot(y, K).double()
    P = Ws[0]
    for W in Ws[1:]:
        P = W @ P
    # interpolation: alpha W_L ... W_1 X^T = Y^T
    assert (alpha * P @ X.T - Y.T).abs().max() < 1e-10
    assert T.min_norm_residual(Ws, X, y, alpha) < 1e-12
    # exact balance up to layer L-2; the last pair is not balanced when eps > 0
    per_pair = T.balancedness(Ws, normalize=False, reduce=False)
    assert per_pair.shape == (depth - 1,)
    assert per_pair[:-1].abs().max() < 1e-12 if depth > 2 else True
    assert math.isclose(float(per_pair[-1]), eps**2 * math.sqrt(d - K), rel_tol=1e-9)
    # singular values: top K = s_k^{1/L}, then d - K equal to eps, then zeros
    s = torch.linalg.svdvals(T.min_norm_map(X, y, alpha))
    for W in Ws[:-1]:
        sv = torch.linalg.svdvals(W)
        torch.testing.assert_close(sv[:K], s ** (1 / depth), rtol=1e-10, atol=0)
        torch.testing.assert_close(sv[K:d], torch.full((d - K,), eps, dtype=torch.float64),
                                   rtol=1e-10, atol=1e-13)
        assert sv[d:].numel() == 0 or sv[d:].abs().max() < 1e-12
    bulk = T.bulk_singular_values(Ws, num_classes=K)
    assert bulk.shape == (depth - 1, d - 2 * K)
    assert (bulk - eps).abs().max() < 1e-10


def test_within_class_variation_lives_in_the_eps_subspace():
    X, y = paper_data(2)
    W_star = T.min_norm_map(X, y, alpha=7.0)
    means = M.class_means(X, y)
    X_W = X - means[y]
    _, _, Vh = torch.linalg.svd(W_star, full_matrices=False)
    assert (X_W @ Vh.T).abs().max() < 1e-12 * X_W.abs().max() * 1e3


@pytest.mark.parametrize("depth,eps,alpha", [(6, 0.3, 100.0), (4, 0.5, 1.0), (3, 0.05, 10.0),
                                             (1, 0.3, 1.0), (8, 0.0, 100.0)])
def test_predictions_equal_measured_metrics_of_the_construction(depth, eps, alpha):
    X, y = paper_data(3)
    Ws = T.min_norm_balanced_network(X, y, depth, eps, alpha=alpha, width=64, generator=gen(5))
    measured_feats = network_features(Ws, X)
    pred = T.predicted_metrics(X, y, depth, eps, alpha)
    assert pred.layer.tolist() == list(range(depth))
    for l, H in enumerate(measured_feats):
        trW = float(torch.trace(M.within_class_cov(H, y)))
        trB = float(torch.trace(M.between_class_cov(H, y)))
        assert math.isclose(float(pred.trace_within[l]), trW, rel_tol=1e-8, abs_tol=1e-14 * trB)
        assert math.isclose(float(pred.trace_between[l]), trB, rel_tol=1e-8)
        if float(pred.trace_within[l]) > 0:
            assert math.isclose(float(pred.compression[l]), M.compression(H, y), rel_tol=1e-8)
            assert math.isclose(float(pred.nc1[l]), M.nc1(H, y), rel_tol=1e-8)
        else:
            assert float(pred.compression[l]) == 0.0 and M.compression(H, y) < 1e-25
        assert math.isclose(float(pred.discrimination[l]), M.discrimination(H, y), rel_tol=1e-8,
                            abs_tol=1e-12)


def test_predictions_do_not_depend_on_frames_or_width():
    X, y = paper_data(4)
    a = network_features(T.min_norm_balanced_network(X, y, 5, 0.2, width=50, generator=gen(1)), X)
    b = network_features(T.min_norm_balanced_network(X, y, 5, 0.2, width=90, generator=gen(2)), X)
    ta, tb = M.layerwise(a, y), M.layerwise(b, y)
    torch.testing.assert_close(ta.compression, tb.compression, rtol=1e-9, atol=0)
    torch.testing.assert_close(ta.discrimination, tb.discrimination, rtol=1e-9, atol=0)


def test_orthonormal_data_match_the_idealised_rate_exactly():
    X, y = paper_data(5, perturbation=0.0)
    assert T.orthogonality_gap(X) < 1e-13
    for depth, eps, alpha in [(6, 0.3, 100.0), (4, 0.2, 1.0)]:
        pred = T.predicted_metrics(X, y, depth, eps, alpha)
        ideal = T.ideal_metrics(3, 10, depth, eps, alpha)
        torch.testing.assert_close(pred.compression, ideal.compression, rtol=1e-10, atol=0)
        rho = T.ideal_compression_rate(eps, alpha, 10, depth)
        ratios = pred.compression[1:] / pred.compression[:-1]
        torch.testing.assert_close(ratios, torch.full_like(ratios, rho), rtol=1e-10, atol=0)
        assert float(pred.compression[0]) == pytest.approx(3 * 9 / 2, rel=1e-12)
        torch.testing.assert_close(pred.discrimination, torch.ones(depth, dtype=torch.float64),
                                   rtol=0, atol=1e-12)


def test_ideal_rate_formula():
    assert T.ideal_compression_rate(0.3, 100.0, 10, 6) == pytest.approx(0.09 * 1000 ** (1 / 6))
    assert T.ideal_compression_rate(0.3, 1.0, 10, 6) == pytest.approx(0.0613, abs=1e-4)
    assert T.ideal_compression_rate(0.0, 1.0, 10, 6) == 0.0


@pytest.mark.parametrize("seed", range(3))
def test_first_order_discrimination_is_close_to_exact_for_small_eps(seed):
    X, y = paper_data(10 + seed)
    depth = 6
    exact = T.predicted_metrics(X, y, depth, eps=0.1, alpha=100.0).discrimination
    approx = T.first_order_discrimination(X, y, depth).discrimination
    assert (exact[1:] - approx[1:]).abs().max() < 1e-3
    slopes = approx[1:].diff()
    torch.testing.assert_close(slopes, torch.full_like(slopes, float(slopes[0])))
    assert float(slopes[0]) > 0


def test_paper_table_closed_form_rates():
    """Closed-form rho of paper.md 3.4 (10 seeds averaged there; within a few per cent here)."""
    rows = [(0.1, 100.0, 6, 0.0316), (0.3, 100.0, 6, 0.2850), (0.3, 1.0, 6, 0.0613),
            (0.3, 100.0, 10, 0.1796), (0.3, 100.0, 4, 0.509)]
    for eps, alpha, depth, expected in rows:
        rhos = []
        for seed in range(3):
            X, y = paper_data(seed)
            c = T.predicted_metrics(X, y, depth, eps, alpha).compression
            rhos.append(float(torch.exp(torch.log(c[2:] / c[1:-1]).mean())))
        assert np.mean(rhos) == pytest.approx(expected, rel=0.03)


def test_diagnostics():
    X, y = paper_data(6)
    assert 0.05 < T.orthogonality_gap(X) < 0.5
    assert T.orthogonality_gap(X, "spectral") <= T.orthogonality_gap(X, "fro") + 1e-12
    assert T.orthogonality_gap(X, "max") <= T.orthogonality_gap(X, "spectral") + 1e-12
    Xn = X.numpy()
    E = Xn @ Xn.T - np.eye(30)
    assert T.orthogonality_gap(X, "max") == pytest.approx(np.abs(E).max(), rel=1e-12)
    assert T.orthogonality_gap(X, "spectral") == pytest.approx(np.linalg.norm(E, 2), rel=1e-12)
    assert T.orthogonality_gap(X, "fro") == pytest.approx(np.linalg.norm(E), rel=1e-12)
    # the largest entry in absolute value is negative: X X^T - I = [[0, -1], [-1, 0.25]]
    Xneg = np.array([[1.0, 0.0], [-1.0, 0.5]])
    assert np.abs(Xneg @ Xneg.T - np.eye(2)).max() == 1.0
    assert T.orthogonality_gap(Xneg, "max") == pytest.approx(1.0, rel=1e-12)
    Ws = [0.1 * torch.eye(50), 0.1 * torch.eye(50), torch.ones(3, 50)]
    assert T.min_norm_residual(Ws, X, y) > 0
    assert T.balancedness(Ws[:2]) == 0.0
    per = T.balancedness(Ws, normalize=True, reduce=False)
    W2, W3 = Ws[1], Ws[2]
    expected = torch.linalg.matrix_norm(W3.T @ W3 - W2 @ W2.T) / torch.linalg.matrix_norm(W2)
    assert float(per[1]) == pytest.approx(float(expected))

    class Holder:
        def weights(self):
            return Ws

    assert T.balancedness(Holder()) == T.balancedness(Ws)


def test_errors():
    X, y = paper_data(7)
    with pytest.raises(ValueError, match="depth must be >= 1"):
        T.min_norm_balanced_network(X, y, 0, 0.1)
    with pytest.raises(ValueError, match="eps must be >= 0"):
        T.min_norm_balanced_network(X, y, 3, -0.1)
    with pytest.raises(ValueError, match="N > d no linear map interpolates"):
        T.min_norm_balanced_network(X[:, :20], y, 3, 0.1)
    with pytest.raises(ValueError, match="N > d"):
        T.predicted_metrics(X[:, :20], y, 3, 0.1)
    with pytest.raises(ValueError, match="width must be >= the input dimension"):
        T.min_norm_balanced_network(X, y, 3, 0.1, width=40)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        T.min_norm_balanced_network(X, y, 3, 0.1, alpha=0.0)
    with pytest.raises(ValueError, match="one-hot"):
        T.min_norm_balanced_network(X, torch.rand(30, 3), 3, 0.1)
    with pytest.raises(ValueError, match="rows like X"):
        T.min_norm_balanced_network(X, torch.eye(3)[y[:10]], 3, 0.1)
    with pytest.raises(ValueError, match="singular"):
        T.min_norm_map(torch.cat([X[:29], X[:1]]), y)
    with pytest.raises(ValueError, match="norm must be one of"):
        T.orthogonality_gap(X, "nuclear")
    with pytest.raises(ValueError, match="at least two weight matrices"):
        T.balancedness([torch.eye(3)])
    with pytest.raises(ValueError, match="input columns"):
        T.balancedness([torch.eye(3), torch.eye(4)])
    with pytest.raises(ValueError, match="no bulk"):
        T.bulk_singular_values([torch.eye(4), torch.eye(4)], num_classes=2)
    with pytest.raises(ValueError, match="NaN"):
        T.predicted_metrics(torch.full((3, 5), float("nan")), torch.arange(3), 2, 0.1)


def test_assumption_report_matches_direct_computations():
    X, y = paper_data(8)
    K, d, L, eps, alpha = 3, 50, 5, 0.2, 10.0
    Ws = T.min_norm_balanced_network(X, y, L, eps, alpha=alpha, generator=gen(3))
    r = T.assumption_report(Ws, X, y, alpha=alpha, eps=eps)
    assert r["distance to the min-norm map"] < 1e-12 and r["distance, row-space part"] < 1e-12
    assert r["imbalance of pairs 1 to L-2 (max)"] < 1e-12
    assert r["imbalance of pair L-1"] == pytest.approx(eps**2 * math.sqrt(d - K), rel=1e-9)
    assert r["bulk: max deviation from eps"] < 1e-12 and r["bulk: variance"] < 1e-24
    assert r["top K: max relative deviation from s^(1/L)"] < 1e-10
    assert r["bottom K: smallest"] == pytest.approx(eps, rel=1e-10)
    # a perturbed network: the numbers follow their definitions
    W1 = Ws[0] + 0.01 * torch.randn(Ws[0].shape, generator=gen(4), dtype=torch.float64)
    r2 = T.assumption_report([W1, *Ws[1:]], X, y, alpha=alpha)
    Xn = X.numpy()
    P = Xn.T @ np.linalg.solve(Xn @ Xn.T, Xn)
    prod = Ws[-1]
    for W in reversed(Ws[1:-1]):
        prod = prod @ W
    gap = T.min_norm_map(X, y, alpha).numpy() - (prod @ W1).numpy()
    assert r2["distance to the min-norm map"] == pytest.approx(np.linalg.norm(gap), rel=1e-10)
    assert r2["distance, row-space part"] == pytest.approx(np.linalg.norm(gap @ P), rel=1e-10)
    # every other key, from its definition (hidden weights W_1..W_{L-1}, m = d = 50 here)
    Wn = [W1.numpy(), *(W.numpy() for W in Ws[1:])]
    imb = [np.linalg.norm(B.T @ B - A @ A.T) for A, B in zip(Wn[:-1], Wn[1:], strict=True)]
    assert r2["imbalance of pairs 1 to L-2 (max)"] == pytest.approx(max(imb[:-1]), rel=1e-10)
    assert r2["imbalance of pair L-1"] == pytest.approx(imb[-1], rel=1e-10)
    norm_mean = np.mean([e / np.linalg.norm(A) for e, A in zip(imb, Wn[:-1], strict=True)])
    assert r2["balance error (normalised mean)"] == pytest.approx(norm_mean, rel=1e-10)
    sv = np.stack([np.linalg.svd(W, compute_uv=False)[:d] for W in Wn[:-1]])  # (L-1, d)
    assert r2["bulk: variance"] == pytest.approx(np.var(sv[:, K : d - K], ddof=1), rel=1e-8)
    s_star = np.linalg.svd(T.min_norm_map(X, y, alpha).numpy(), compute_uv=False)
    top = np.abs(sv[:, :K] / s_star ** (1 / L) - 1).max()
    assert r2["top K: max relative deviation from s^(1/L)"] == pytest.approx(top, rel=1e-8)
    assert r2["bottom K: smallest"] == pytest.approx(sv[:, d - K :].min(), rel=1e-10)
    assert r2["bottom K: largest"] == pytest.approx(sv[:, d - K :].max(), rel=1e-10)
    # the perturbation spreads the bottom K: smallest and largest differ
    assert sv[:, d - K :].max() > 1.01 * sv[:, d - K :].min()
    assert set(r2) == {
        "distance to the min-norm map", "distance, row-space part",
        "imbalance of pairs 1 to L-2 (max)", "imbalance of pair L-1",
        "balance error (normalised mean)", "bulk: variance",
        "top K: max relative deviation from s^(1/L)", "bottom K: smallest", "bottom K: largest",
    }
    assert "bulk: max deviation from eps" not in r2
    with pytest.raises(ValueError, match="at least two weight matrices"):
        T.assumption_report(Ws[:1], X, y)
