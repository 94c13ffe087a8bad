"""Tests of pncutils.theory: the closed-form network, its exact predictions and diagnostics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _naive import naive_features, naive_layer_metrics, naive_least_squares_network

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
    # N > d: no interpolating map (min_norm_balanced_network and predicted_metrics now take
    # the least-squares map instead, see the tests below)
    with pytest.raises(ValueError, match="N > d no linear map interpolates"):
        T.min_norm_map(X[:, :20], y)
    with pytest.raises(ValueError, match="N > d"):
        T.first_order_discrimination(X[:, :20], y, 3)
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


# ----------------------------------------------------------------------------------------
# issue 12, part 1: the idealised rate depends on the norm of the input rows
# ----------------------------------------------------------------------------------------


def orthogonal_rows(seed, K, n, d, norm):
    """K n exactly orthogonal rows of common norm `norm` in R^d, n per class (numpy QR)."""
    g = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(g.normal(size=(d, d)))
    X = norm * Q[:, : K * n].T
    return torch.from_numpy(X), torch.from_numpy(np.repeat(np.arange(K), n))


def naive_compressions(weights, X, y):
    feats = naive_features([W.numpy() for W in weights], X.numpy())
    return np.array([naive_layer_metrics(H, y.numpy())["compression"] for H in feats])


@pytest.mark.parametrize("norm", [0.2, 1.0, 5.0])
@pytest.mark.parametrize("K,n,d,depth,eps,alpha", [(3, 10, 40, 6, 0.3, 1.0),
                                                   (4, 5, 25, 3, 0.5, 100.0),
                                                   (2, 8, 16, 2, 0.2, 3.0)])
def test_ideal_rate_with_input_norm_is_exact_for_orthogonal_rows(norm, K, n, d, depth, eps,
                                                                 alpha):
    """Orthogonal rows of norm r: W* W*^T = n / (alpha r)^2 I, so every s_j = sqrt(n)/(alpha r),
    the class means lie in the signal subspace and the within-class deviations in the eps one:
    C_l = C_0 (eps^2 (alpha r)^{2/L} / n^{1/L})^l exactly, at every layer and for every eps."""
    X, y = orthogonal_rows(K + n, K, n, d, norm)
    Ws = T.min_norm_balanced_network(X, y, depth, eps, alpha=alpha, width=d + 5, generator=gen())
    C = naive_compressions(Ws, X, y)  # measured on the construction's features
    rho = eps**2 * (alpha**2 * norm**2 / n) ** (1 / depth)  # written out independently
    np.testing.assert_allclose(C[1:] / C[:-1], rho, rtol=1e-10, atol=0)
    assert T.ideal_compression_rate(eps, alpha, n, depth, norm=norm) == pytest.approx(rho,
                                                                                      rel=1e-13)
    ideal = T.ideal_metrics(K, n, depth, eps, alpha, norm=norm)
    np.testing.assert_allclose(ideal.compression.numpy(), C, rtol=1e-10, atol=0)
    assert C[0] == pytest.approx(K * (n - 1) / (K - 1), rel=1e-12)
    # the general form with the singular values of W*: all equal to sqrt(n) / (alpha r)
    s = torch.linalg.svdvals(T.least_squares_map(X, y, alpha))
    np.testing.assert_allclose(s.numpy(), math.sqrt(n) / (alpha * norm), rtol=1e-12)
    assert T.approximate_compression_rate(eps, s, depth) == pytest.approx(rho, rel=1e-12)


def test_unit_norm_rate_is_wrong_for_rows_of_norm_five():
    """paper.md 0, correction 1: eps = 0.3, alpha = 1, n = 10, L = 6, r = 5."""
    X, y = orthogonal_rows(0, 3, 10, 50, 5.0)
    Ws = T.min_norm_balanced_network(X, y, 6, 0.3, alpha=1.0, generator=gen())
    C = naive_compressions(Ws, X, y)
    measured = C[1:] / C[:-1]
    np.testing.assert_allclose(measured, 0.3**2 * 2.5 ** (1 / 6), rtol=1e-10)
    assert measured[0] == pytest.approx(0.1048, abs=5e-5)
    assert T.ideal_compression_rate(0.3, 1.0, 10, 6, 5.0) == pytest.approx(measured[0], rel=1e-10)
    unit = T.ideal_compression_rate(0.3, 1.0, 10, 6)
    assert unit == pytest.approx(0.0613, abs=5e-5)
    assert np.all(np.abs(measured / unit - 1) > 0.7)  # off by the factor 5^{2/6} = 1.71
    # the book's default (orthonormal rows) is unchanged
    assert T.ideal_compression_rate(0.3, 100.0, 10, 6, norm=1.0) == T.ideal_compression_rate(
        0.3, 100.0, 10, 6)


def test_approximate_rate_is_close_on_nearly_orthogonal_data():
    """eps^2 / s_bar^{2/L} within 2% of the exact mean rate of paper.md 3.4's settings."""
    for eps, alpha, depth in [(0.1, 100.0, 6), (0.3, 1.0, 6), (0.3, 100.0, 4)]:
        for seed in range(2):
            X, y = paper_data(seed)
            exact = M.geometric_rate(T.predicted_metrics(X, y, depth, eps, alpha).compression[1:])
            s = np.linalg.svd(T.least_squares_map(X, y, alpha).numpy(), compute_uv=False)
            by_hand = eps**2 / np.exp(np.log(s).mean()) ** (2 / depth)
            approx = T.approximate_compression_rate(eps, s, depth)
            assert approx == pytest.approx(by_hand, rel=1e-12)
            assert approx == pytest.approx(exact, rel=0.02)
    # hand-worked: s = (4, 1), s_bar = 2, L = 2: 0.25 / 2
    assert T.approximate_compression_rate(0.5, [4.0, 1.0], 2) == pytest.approx(0.125, rel=1e-15)


def test_rate_errors():
    with pytest.raises(ValueError, match="norm must be > 0"):
        T.ideal_compression_rate(0.3, 1.0, 10, 6, norm=0.0)
    with pytest.raises(ValueError, match="norm must be > 0"):
        T.ideal_metrics(3, 10, 6, 0.3, norm=-1.0)
    with pytest.raises(ValueError, match="singular_values must be finite and > 0"):
        T.approximate_compression_rate(0.3, [1.0, 0.0], 6)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        T.approximate_compression_rate(0.3, [], 6)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        T.approximate_compression_rate(0.3, np.ones((2, 2)), 6)


# ----------------------------------------------------------------------------------------
# issue 12, part 2: N > d, the minimum-norm least-squares map
# ----------------------------------------------------------------------------------------


def gaussian_data(seed, counts, d, shift=1.0, rank=None):
    """Non-orthogonal Gaussian data with class offsets; `rank` < d projects X to that rank."""
    g = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(counts)), counts)
    X = g.normal(size=(len(y), d)) + shift * g.normal(size=(len(counts), d))[y]
    if rank is not None:
        X = X @ g.normal(size=(d, rank)) @ g.normal(size=(rank, d)) / d
    return torch.from_numpy(X), torch.from_numpy(y)


def duplicated_rows():
    """N = 12 <= d = 20, but rows 0 and 1 reappear in other classes: no interpolation."""
    X, y = gaussian_data(7, [4, 4, 2], 20)
    return torch.cat([X, X[:2]]), torch.cat([y, torch.tensor([1, 2])])


LS_DATA = {
    "imbalanced, N = 2d": lambda: gaussian_data(1, [16, 6, 10, 8], 20),
    "N = 2d, alpha-scaled offsets": lambda: gaussian_data(2, [10, 10], 10, shift=3.0),
    "d < K": lambda: gaussian_data(3, [5, 4, 6, 5, 4], 3),
    "rank X = 2 < K = 3": lambda: gaussian_data(4, [9, 6, 9], 8, rank=2),
    "dependent rows, N <= d": duplicated_rows,
}


def ls_network_and_predictions(name, depth, eps, alpha):
    X, y = LS_DATA[name]()
    d = X.shape[1]
    pred = T.predicted_metrics(X, y, depth, eps, alpha)
    Ws = T.min_norm_balanced_network(X, y, depth, eps, alpha=alpha, width=d + 4,
                                     generator=gen(depth))
    return X, y, pred, Ws


COLUMNS = ("compression", "discrimination", "nc1", "trace_within", "trace_between")


@pytest.mark.parametrize("name", list(LS_DATA))
@pytest.mark.parametrize("depth", [2, 3, 6])
@pytest.mark.parametrize("eps,alpha", [(0.0, 1.0), (0.2, 100.0), (0.5, 2.5)])
def test_least_squares_predictions_equal_measured_metrics(name, depth, eps, alpha):
    X, y, pred, Ws = ls_network_and_predictions(name, depth, eps, alpha)
    assert pred.layer.tolist() == list(range(depth))
    # (1) the package's construction, measured by pncutils.metrics.layerwise
    measured = M.layerwise(network_features(Ws, X), y)
    # (2) an independent numpy construction (other frames and width), measured by loops
    Wn, _ = naive_least_squares_network(X.numpy(), y.numpy(), depth, eps, alpha,
                                        X.shape[1] + 7, seed=depth)
    naive = [naive_layer_metrics(H, y.numpy()) for H in naive_features(Wn, X.numpy())]
    for col in COLUMNS:
        p = pred[col].numpy()
        scale = np.abs(p).max()
        np.testing.assert_allclose(p, measured[col].numpy(), rtol=1e-8, atol=1e-13 * scale)
        np.testing.assert_allclose(p, [m[col] for m in naive], rtol=1e-8, atol=1e-13 * scale)


@pytest.mark.parametrize("name", list(LS_DATA))
def test_least_squares_construction(name):
    X, y = LS_DATA[name]()
    N, d = X.shape
    K = int(y.max()) + 1
    alpha, eps, depth = 3.0, 0.3, 4
    Ws = T.min_norm_balanced_network(X, y, depth, eps, alpha=alpha, generator=gen())
    P = Ws[0]
    for W in Ws[1:]:
        P = W @ P
    Y = np.eye(K)[y.numpy()]
    W_ls = Y.T @ np.linalg.pinv(X.numpy()).T / alpha  # numpy's least-squares map
    np.testing.assert_allclose(P.numpy(), W_ls, rtol=0, atol=1e-10)
    np.testing.assert_allclose(T.least_squares_map(X, y, alpha).numpy(), W_ls, rtol=0, atol=1e-10)
    # it is the least-squares solution, and it does not interpolate
    lstsq = np.linalg.lstsq(X.numpy(), Y / alpha, rcond=None)[0].T
    np.testing.assert_allclose(W_ls, lstsq, rtol=0, atol=1e-10)
    assert np.linalg.norm(alpha * P.numpy() @ X.numpy().T - Y.T) > 0.1
    # singular values: k = rank W* signal values s_j^{1/L}, d - k equal to eps, then zeros
    s = np.linalg.svd(W_ls, compute_uv=False)
    k = int((s > 1e-12 * s[0]).sum())
    assert k == min(K, np.linalg.matrix_rank(X.numpy()))
    for W in Ws[:-1]:
        sv = np.linalg.svd(W.numpy(), compute_uv=False)
        np.testing.assert_allclose(sv[:k], s[:k] ** (1 / depth), rtol=1e-10)
        np.testing.assert_allclose(sv[k:d], eps, rtol=1e-10)
        assert np.all(sv[d:] < 1e-12)
    per_pair = T.balancedness(Ws, normalize=False, reduce=False)
    assert float(per_pair[:-1].abs().max()) < 1e-12
    assert float(per_pair[-1]) == pytest.approx(eps**2 * math.sqrt(d - k), rel=1e-9)


def test_interpolating_inputs_keep_the_exact_old_path():
    """Full row rank: least_squares_map is min_norm_map to the last bit, and so is depth 1."""
    X, y = paper_data(3)
    W = T.min_norm_map(X, y, 7.0)
    assert torch.equal(T.least_squares_map(X, y, 7.0), W)
    assert torch.equal(T.min_norm_balanced_network(X, y, 1, 0.3, alpha=7.0)[0], W)
    np.testing.assert_allclose(W.numpy(), np.eye(3)[y.numpy()].T @ np.linalg.pinv(X.numpy()).T
                               / 7.0, rtol=0, atol=1e-12)


def test_hand_worked_least_squares_case():
    """K = 2, d = 3, N = 4, alpha = 1, L = 2, eps = 0.5 (by hand).

    X = [[1,0,0], [3,0,0] | [0,1,1], [0,1,-1]]: orthogonal columns, X^T X = diag(10, 2, 2),
    Y^T X = [[4,0,0], [0,2,0]], so W* = Y^T X (X^T X)^{-1} = [[0.4,0,0], [0,1,0]]: singular
    values 1 (v = e2) and 0.4 (v = e1), V_perp = e3; the fit gives 0.4 and 1.2 for class 0
    (no interpolation). Layer l, t = l/L, a = 0.4^t: features (a x1, x2, eps^l x3); class 0 is
    (a, 0, 0), (3a, 0, 0), class 1 is (0, 1, eps^l), (0, 1, -eps^l).
    tr Sigma_W = (2 a^2 + 2 eps^{2l}) / 4, tr Sigma_B = a^2 + 1/4 (centred means
    +-(a, -1/2, 0)), the means stay orthogonal (D = 1), and Sigma_B = c c^T with
    c = (a, -1/2, 0), so NC1 = c^T Sigma_W c / |c|^4 / K = a^4 / (4 (a^2 + 1/4)^2).
    Floor: F_l = (a^2 / 2) / (a^2 + 1/4); at l = L, a^2 = 0.16: F_2 = 8/41.
    """
    X = torch.tensor([[1.0, 0, 0], [3, 0, 0], [0, 1, 1], [0, 1, -1]])
    y = torch.tensor([0, 0, 1, 1])
    pred = T.predicted_metrics(X, y, depth=2, eps=0.5)
    expected = {
        "trace_within": [1.0, (0.4 + 0.25) / 2],
        "trace_between": [1.25, 0.65],
        "compression": [0.8, 0.5],
        "discrimination": [1.0, 1.0],
        "nc1": [1 / (4 * 1.25**2), 0.16 / (4 * 0.65**2)],
    }
    for col, values in expected.items():
        np.testing.assert_allclose(pred[col].numpy(), values, rtol=1e-12, atol=1e-15)
    floor = T.compression_floor(X, y, depth=2)
    np.testing.assert_allclose(floor.compression.numpy(), [0.4, 4 / 13, 8 / 41], rtol=1e-12)
    np.testing.assert_allclose(floor.trace_within.numpy(), [0.5, 0.2, 0.08], rtol=1e-12)
    Ws = T.min_norm_balanced_network(X, y, depth=2, eps=0.5, width=5, generator=gen())
    np.testing.assert_allclose((Ws[1] @ Ws[0]).numpy(), [[0.4, 0, 0], [0, 1, 0]], atol=1e-14)
    np.testing.assert_allclose(np.linalg.svd(Ws[0].numpy(), compute_uv=False)[:3],
                               [1.0, 0.4**0.5, 0.5], rtol=1e-12)


def test_hand_worked_rank_deficient_case():
    """K = 2, d = 2, N = 4: the class sums (2, 0) and (4, 0) are parallel, so rank W* = 1 < K.

    X = [[1,1], [1,-1] | [2,1], [2,-1]], X^T X = diag(10, 4), W* = [[0.2, 0], [0.4, 0]]:
    s = sqrt(0.2), v = e1, V_perp = e2 (one eps direction, d - k = 1). All within-class
    variation is along e2 and all between-class along e1: tr Sigma_W^l = eps^{2l},
    tr Sigma_B^l = s^{2l/L} / 4, so C_l = 4 (eps^2 / s^{2/L})^l exactly; the class means stay
    parallel (D = 0) and NC1 = 0. With L = 2, eps = 0.5: C = [4, sqrt(5)]. Floor: 0.
    """
    X = torch.tensor([[1.0, 1], [1, -1], [2, 1], [2, -1]])
    y = torch.tensor([0, 0, 1, 1])
    pred = T.predicted_metrics(X, y, depth=2, eps=0.5)
    np.testing.assert_allclose(pred.compression.numpy(), [4.0, math.sqrt(5)], rtol=1e-12)
    np.testing.assert_allclose(pred.trace_within.numpy(), [1.0, 0.25], rtol=1e-12)
    np.testing.assert_allclose(pred.trace_between.numpy(), [0.25, 0.25 * math.sqrt(0.2)],
                               rtol=1e-12)
    np.testing.assert_allclose(pred.discrimination.numpy(), [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(pred.nc1.numpy(), [0.0, 0.0], atol=1e-12)
    assert T.approximate_compression_rate(0.5, [math.sqrt(0.2)], 2) == pytest.approx(
        float(pred.compression[1] / pred.compression[0]), rel=1e-12)
    np.testing.assert_allclose(T.compression_floor(X, y, 2).compression.numpy(), 0, atol=1e-12)
    Ws = T.min_norm_balanced_network(X, y, depth=2, eps=0.5, generator=gen())
    np.testing.assert_allclose((Ws[1] @ Ws[0]).numpy(), [[0.2, 0], [0.4, 0]], atol=1e-14)
    np.testing.assert_allclose(np.linalg.svd(Ws[0].numpy(), compute_uv=False),
                               [0.2**0.25, 0.5], rtol=1e-12)


@pytest.mark.parametrize("name", list(LS_DATA))
def test_compression_floor(name):
    X, y = LS_DATA[name]()
    depth, alpha = 5, 3.0
    floor = T.compression_floor(X, y, depth, alpha)
    assert floor.layer.tolist() == list(range(depth + 1))
    # the eps -> 0 limit: C_l = F_l at eps = 0 for 1 <= l <= L-1
    at_zero = T.predicted_metrics(X, y, depth, 0.0, alpha)
    torch.testing.assert_close(at_zero.compression[1:], floor.compression[1:depth],
                               rtol=1e-12, atol=0)
    # C_l - F_l = O(eps^{2l}): halving eps divides the gap by about 4^l (l <= 3: beyond, the
    # gap eps^{2l} ~ 1e-14 drowns in the rounding of C_l)
    gap = [(T.predicted_metrics(X, y, depth, e, alpha).compression - floor.compression[:depth])
           for e in (1e-2, 5e-3, 0.5)]
    Xn, K = X.numpy(), int(y.max()) + 1
    W_ls = np.eye(K)[y.numpy()].T @ np.linalg.pinv(Xn).T
    if np.linalg.matrix_rank(W_ls) == np.linalg.matrix_rank(Xn):
        # the eps-subspace holds no data (X V_perp = 0, e.g. d < K): C_l = F_l for every eps
        for g in gap:
            assert float(g[1:].abs().max()) < 1e-12 * float(floor.compression.max())
    else:
        np.testing.assert_allclose((gap[0][1:4] / gap[1][1:4]).numpy(), [4.0, 16.0, 64.0],
                                   rtol=1e-3)
    # C_l is the mediant of F_l and of the eps-part ratio: it lies between the two
    _, s, Vh = np.linalg.svd(W_ls)
    k = int((s > 1e-12 * s[0]).sum())
    means = np.stack([Xn[y.numpy() == c].mean(0) for c in range(K)])
    dev, cen = Xn - means[y.numpy()], means - means.mean(0)
    perp = Vh[k:].T
    if perp.shape[1] and np.abs(Xn @ perp).max() > 1e-10:  # the eps-subspace holds data
        eps_part = (K / len(Xn)) * ((dev @ perp) ** 2).sum() / ((cen @ perp) ** 2).sum()
        C = T.predicted_metrics(X, y, depth, 0.5, alpha).compression.numpy()
        F = floor.compression.numpy()[:depth]
        lo, hi = np.minimum(F, eps_part), np.maximum(F, eps_part)
        assert np.all(C[1:] >= lo[1:] * (1 - 1e-12)) and np.all(C[1:] <= hi[1:] * (1 + 1e-12))
        assert np.all((C[1:] >= F[1:]) == (eps_part >= F[1:]))
    # the output layer: C_L = F_L for every eps, the compression of the least-squares fit
    Ws = T.min_norm_balanced_network(X, y, depth, 0.4, alpha=alpha, generator=gen())
    H = network_features(Ws, X)[-1] @ Ws[-1].T  # (N, K): the outputs W_L ... W_1 x
    fit = Xn @ np.linalg.pinv(Xn) @ np.eye(K)[y.numpy()]  # P Y
    for out in (H.numpy(), fit):
        assert naive_layer_metrics(out, y.numpy())["compression"] == pytest.approx(
            float(floor.compression[depth]), rel=1e-8)
    # row 0: X projected on the signal subspace of W* (numpy SVD); no alpha dependence
    projected = Xn @ Vh[:k].T
    assert naive_layer_metrics(projected, y.numpy())["compression"] == pytest.approx(
        float(floor.compression[0]), rel=1e-8)
    torch.testing.assert_close(T.compression_floor(X, y, depth, 1.0).compression,
                               floor.compression, rtol=1e-10, atol=0)


def test_compression_floor_is_zero_when_the_map_interpolates():
    X, y = paper_data(5)
    floor = T.compression_floor(X, y, 6, 100.0)
    assert floor.compression.abs().max() == 0.0 and floor.trace_within.abs().max() == 0.0
    assert T.predicted_metrics(X, y, 6, 0.0, 100.0).compression[1:].abs().max() == 0.0


def test_least_squares_errors():
    y = torch.tensor([0, 0, 1, 1])
    zero_means = torch.tensor([[1.0, 0], [-1, 0], [0, 1], [0, -1]])  # N > d, X^T Y = 0
    for fn in (lambda: T.min_norm_balanced_network(zero_means, y, 3, 0.1),
               lambda: T.predicted_metrics(zero_means, y, 3, 0.1),
               lambda: T.compression_floor(zero_means, y, 3)):
        with pytest.raises(ValueError, match="least-squares map W\\* is zero"):
            fn()
    assert T.least_squares_map(zero_means, y).abs().max() < 1e-15  # it is zero, not an error
    same_means = torch.tensor([[1.0, 0], [1, 2], [1, 1], [1, 1], [0, 1]])
    with pytest.raises(ValueError, match="all class means of X coincide"):
        T.predicted_metrics(same_means[:4], y, 3, 0.1)
    with pytest.raises(ValueError, match="all class means of X coincide"):
        T.compression_floor(same_means[:4], y, 3)
    X0 = torch.tensor([[1.0, 0], [-1, 0], [1, 1], [1, 2], [2, 0]])  # class 0 has mean 0
    y0 = torch.tensor([0, 0, 1, 1, 2])
    with pytest.raises(ValueError, match=r"class\(es\) \[0\] have a zero class mean"):
        T.predicted_metrics(X0, y0, 3, 0.1)
    assert len(T.compression_floor(X0, y0, 3)) == 4  # the floor needs no discrimination
    X, yl = gaussian_data(0, [10, 10, 10], 10)
    with pytest.raises(ValueError, match="N > d no linear map interpolates"):
        T.min_norm_residual(T.min_norm_balanced_network(X, yl, 3, 0.1), X, yl)
    with pytest.raises(ValueError, match="N > d no linear map interpolates"):
        T.assumption_report(T.min_norm_balanced_network(X, yl, 3, 0.1), X, yl)
    with pytest.raises(ValueError, match="depth must be >= 1"):
        T.compression_floor(X, yl, 0)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        T.least_squares_map(X, yl, alpha=-1.0)
