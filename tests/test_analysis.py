"""Tests of pncutils.analysis: the streaming layer report agrees with the full-matrix metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _naive import naive_probe
from torch import nn

from pncutils import metrics
from pncutils.analysis import REPORT_COLUMNS, layer_report, pca_projection
from pncutils.models import DeepLinearNetwork, HybridNetwork


def _data(N, D_in, K, seed=0, offset=0.0):
    g = torch.Generator().manual_seed(seed)
    means = 2.0 * torch.randn(K, D_in, generator=g)
    y = torch.arange(N) % K
    X = means[y] + torch.randn(N, D_in, generator=g) + offset
    return X, y


def _trained_like_hybrid(D_in=10, width=12, K=3, seed=0):
    """A small hybrid in train mode whose BatchNorm has non-trivial running statistics."""
    g = torch.Generator().manual_seed(seed)
    net = HybridNetwork(D_in, width, K, depth=5, num_nonlinear=2, init_scale=1.0, generator=g)
    X, _ = _data(64, D_in, K, seed=seed + 1)
    with torch.no_grad():
        net.train()
        for _ in range(3):
            net(X)  # updates the running statistics
    return net


def _full_features(net, X):
    net.eval()
    with torch.no_grad():
        return net.features(X)


@pytest.mark.parametrize("batch_size", [7, 13, 1000])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_metrics_columns_match_layerwise_on_full_features(batch_size, dtype):
    net = _trained_like_hybrid().to(dtype)
    X, y = _data(50, 10, 3, seed=5)
    X = X.to(dtype)
    report = layer_report(net, X, y, batch_size=batch_size)
    ref = metrics.layerwise(_full_features(net, X), y, num_classes=3)
    assert report.columns == REPORT_COLUMNS
    # float32 features of a batch differ from those of the full matrix by BLAS rounding
    rtol = 1e-9 if dtype == torch.float64 else 1e-5
    for col in ref.columns:
        torch.testing.assert_close(report[col], ref[col], rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("energy", [0.5, 0.9, 0.95, 0.99])
@pytest.mark.parametrize("N", [30, 200])  # fewer and more samples than the width 40
def test_rank_matches_numerical_rank(energy, N):
    g = torch.Generator().manual_seed(1)
    net = HybridNetwork(20, 40, 4, depth=4, num_nonlinear=2, init_scale=1.0, generator=g)
    X, y = _data(N, 20, 4, seed=2)
    report = layer_report(net, X, y, batch_size=17, energy=energy)
    expected = [metrics.numerical_rank(H, energy) for H in _full_features(net, X)]
    assert report.rank.long().tolist() == expected


def test_rank_of_an_exactly_low_rank_layer():
    # a linear net of width 30 on 5-dimensional inputs: every layer has rank <= 5
    net = DeepLinearNetwork(5, 30, 3, depth=4, init_scale=1.0,
                            generator=torch.Generator().manual_seed(0)).double()
    X, y = _data(60, 5, 3, seed=3)
    X = X.double()
    report = layer_report(net, X, y, batch_size=8, energy=0.999)
    expected = [metrics.numerical_rank(H, 0.999) for H in _full_features(net, X)]
    assert report.rank.long().tolist() == expected
    assert max(expected) <= 5


@pytest.mark.parametrize("N", [36, 300])  # dual (N < D) and primal (N > D) forms of the reference
def test_probe_matches_linear_probe_accuracy(N):
    net = _trained_like_hybrid(D_in=10, width=48)
    X, y = _data(N, 10, 3, seed=7)
    Xt, yt = _data(90, 10, 3, seed=8)
    report = layer_report(net, X, y, Xt, yt, batch_size=25, probe_ridge=1e-4)
    feats, feats_t = _full_features(net, X), _full_features(net, Xt)
    train = [metrics.linear_probe_accuracy(H, y, ridge=1e-4) for H in feats]
    test = [
        metrics.linear_probe_accuracy(H, y, Ht, yt, ridge=1e-4)
        for H, Ht in zip(feats, feats_t, strict=True)
    ]
    assert report.columns == (*REPORT_COLUMNS, "probe_test_acc")
    assert report.probe_train_acc.tolist() == pytest.approx(train, abs=1e-12)
    assert report.probe_test_acc.tolist() == pytest.approx(test, abs=1e-12)


class _GivenFeatures(nn.Module):
    """Features [x, x A] for a fixed matrix A (float64): the report's input is known exactly."""

    def __init__(self, A, num_classes):
        super().__init__()
        self.A = nn.Parameter(A.double(), requires_grad=False)
        self.num_classes = num_classes

    def features(self, x):
        return [x, x @ self.A]


def test_probe_matches_naive_normal_equations_for_imbalanced_classes_and_large_ridges():
    # sizes 45, 20, 7: the class prior Y_mean changes the argmax; large ridges shrink W
    # towards 0 so that the prior decides more and more predictions
    g = torch.Generator().manual_seed(21)
    y = torch.cat([torch.full((n,), k) for k, n in enumerate((45, 20, 7))])
    means = 1.2 * torch.randn(3, 6, generator=g, dtype=torch.float64)
    X = means[y] + torch.randn(72, 6, generator=g, dtype=torch.float64)
    yt = torch.arange(60) % 3
    Xt = means[yt] + torch.randn(60, 6, generator=g, dtype=torch.float64)
    model = _GivenFeatures(torch.randn(6, 9, generator=g, dtype=torch.float64), 3)
    ridges = [1e-3, 0.1, 1.0, 10.0, 100.0]
    seen = set()
    for ridge in ridges:
        report = layer_report(model, X, y, Xt, yt, batch_size=11, probe_ridge=ridge)
        for layer, (H, Ht) in enumerate(zip(model.features(X), model.features(Xt),
                                            strict=True)):
            H, Ht = H.detach().numpy(), Ht.detach().numpy()
            train = naive_probe(H, y.numpy(), H, y.numpy(), ridge)
            test = naive_probe(H, y.numpy(), Ht, yt.numpy(), ridge)
            assert report.probe_train_acc[layer].item() == pytest.approx(train, abs=1e-12)
            assert report.probe_test_acc[layer].item() == pytest.approx(test, abs=1e-12)
            seen.add(round(train, 9))
    assert len(seen) >= 3  # the ridge does change the accuracies: the test has teeth


def test_rank_of_two_equal_singular_values_at_half_energy_is_one():
    # X = I_2 (two samples, one per class): singular values exactly (1, 1); half of the
    # nuclear norm is reached by the first one (the cumulative sum equals the threshold)
    X = torch.eye(2, dtype=torch.float64)
    y = torch.tensor([0, 1])
    model = _GivenFeatures(torch.eye(2, dtype=torch.float64), 2)
    report = layer_report(model, X, y, energy=0.5)
    assert report.rank.tolist() == [1.0, 1.0]
    assert metrics.numerical_rank(X, 0.5) == 1
    assert layer_report(model, X, y, energy=0.51).rank.tolist() == [2.0, 2.0]


class _OffsetFeatures(nn.Module):
    """Features [x, x + 1e4, 3 x]: a large common offset must not cost the probe precision."""

    num_classes = 3

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1, dtype=torch.float64))

    def features(self, x):
        return [x, x + 1e4, 3 * x * self.w]


def test_large_offsets_do_not_change_the_probe_or_the_rank():
    X, y = _data(120, 6, 3, seed=9)
    X = X.double()
    report = layer_report(_OffsetFeatures(), X, y, batch_size=32)
    assert report.probe_train_acc[1] == report.probe_train_acc[0]
    assert report.probe_train_acc[0] == metrics.linear_probe_accuracy(X, y)
    torch.testing.assert_close(report.compression[1], report.compression[0], rtol=1e-9, atol=0)
    assert int(report.rank[1]) == metrics.numerical_rank(X + 1e4)


def test_eval_mode_is_used_and_training_mode_restored():
    net = _trained_like_hybrid()
    net.train()
    X, y = _data(40, 10, 3, seed=4)
    report = layer_report(net, X, y)
    assert net.training
    ref = metrics.layerwise(_full_features(net, X), y)  # eval-mode features
    torch.testing.assert_close(report.compression, ref.compression, rtol=1e-9, atol=0)


def test_layer_report_errors():
    net = _trained_like_hybrid()
    X, y = _data(30, 10, 3)
    with pytest.raises(ValueError, match="features"):
        layer_report(nn.Linear(10, 3), X, y)
    with pytest.raises(ValueError, match="2-D"):
        layer_report(net, X[0], y)
    with pytest.raises(ValueError, match="30 rows but y has 29"):
        layer_report(net, X, y[:29])
    with pytest.raises(ValueError, match="both X_test and y_test"):
        layer_report(net, X, y, X_test=X)
    with pytest.raises(ValueError, match="X_test has 9 columns"):
        layer_report(net, X, y, X[:, :9], y)
    with pytest.raises(ValueError, match="y_test must hold labels"):
        layer_report(net, X, y, X, y + 3)
    with pytest.raises(ValueError, match="energy"):
        layer_report(net, X, y, energy=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        layer_report(net, X, y, batch_size=0)
    with pytest.raises(ValueError, match="probe_ridge"):
        layer_report(net, X, y, probe_ridge=-1.0)
    with pytest.raises(ValueError, match="no samples"):
        layer_report(net, X[y != 1], y[y != 1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
def test_layer_report_on_cuda_matches_cpu():
    net = _trained_like_hybrid()
    X, y = _data(80, 10, 3, seed=6)
    cpu = layer_report(net, X, y, X, y, batch_size=16)
    gpu = layer_report(net, X, y, X, y, batch_size=16, device="cuda")
    for col in ("compression", "discrimination", "rank", "probe_train_acc"):
        torch.testing.assert_close(gpu[col], cpu[col], rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------------------
# pca_projection
# ----------------------------------------------------------------------------------------


def _numpy_pca(H, k):
    Hc = H - H.mean(0)
    _, _, Vt = np.linalg.svd(Hc, full_matrices=False)
    V = Vt[:k].T
    idx = np.abs(V).argmax(0)
    V = V * np.sign(V[idx, np.arange(k)])
    return Hc @ V


@pytest.mark.parametrize("k", [1, 2, 3])
def test_pca_matches_numpy_svd(k):
    H, _ = _data(50, 8, 3, seed=11)
    H = H.double()
    P = pca_projection(H, k)
    assert P.shape == (50, k) and P.dtype == torch.float64
    np.testing.assert_allclose(P.numpy(), _numpy_pca(H.numpy(), k), atol=1e-10)


def test_pca_properties():
    H, _ = _data(40, 6, 2, seed=12)
    H = H.double()
    P = pca_projection(H, 2)
    # decreasing variances that equal the top squared singular values / N
    s = torch.linalg.svdvals(H - H.mean(0))
    torch.testing.assert_close(P.square().mean(0), s[:2] ** 2 / 40)
    # translation leaves it unchanged; negation negates it (the sign convention is on V)
    torch.testing.assert_close(pca_projection(H + 100.0, 2), P, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(pca_projection(-H, 2), -P)
    # the largest loading of each component is positive: rotating the data does not flip it
    torch.testing.assert_close(pca_projection(H.numpy(), 2), P)


def test_pca_hand_worked_case():
    # the docstring's case: variances 9/2 along x and 1/2 along y, both loadings +1
    H = torch.tensor([[0.0, 1.0], [0.0, -1.0], [3.0, 0.0], [-3.0, 0.0]])
    P = pca_projection(H)
    assert P.tolist() == [[0.0, 1.0], [0.0, -1.0], [3.0, 0.0], [-3.0, 0.0]]
    # reflected axes: the projection is the same (the sign is fixed by the loading)
    assert pca_projection(H * torch.tensor([-1.0, 1.0])).tolist() == [
        [0.0, 1.0], [0.0, -1.0], [-3.0, 0.0], [3.0, 0.0]]


@pytest.mark.parametrize("seed", range(4))
def test_pca_largest_loading_of_every_component_is_positive(seed):
    # recover V from P = H_c V (H_c has full column rank) and check the sign convention
    rng = np.random.default_rng(seed)
    signs_checked = 0
    for _ in range(10):
        H = rng.normal(size=(30, 5)) @ np.diag([5.0, 3.0, 2.0, 1.0, 0.5])
        H = H @ np.linalg.qr(rng.normal(size=(5, 5)))[0]  # rotate: loadings of either sign
        P = pca_projection(torch.from_numpy(H), 3).numpy()
        Hc = H - H.mean(0)
        V = np.linalg.lstsq(Hc, P, rcond=None)[0]  # (5, 3)
        np.testing.assert_allclose(V.T @ V, np.eye(3), atol=1e-10)
        for j in range(3):
            i = np.abs(V[:, j]).argmax()
            assert V[i, j] > 0, (seed, j)
            signs_checked += 1
        # the convention is on the loading, not on the scores
        _, _, Vt = np.linalg.svd(Hc, full_matrices=False)
        np.testing.assert_allclose(np.abs(V), np.abs(Vt[:3].T), atol=1e-10)
    assert signs_checked == 30


def test_pca_errors():
    H = torch.randn(5, 3)
    with pytest.raises(ValueError, match="num_components must be <= min"):
        pca_projection(H, 4)
    with pytest.raises(ValueError, match="num_components must be >= 1"):
        pca_projection(H, 0)
    with pytest.raises(ValueError, match="2-D"):
        pca_projection(H[0])


def test_layer_report_is_measure_on_the_blocks():
    """The report of a book network equals pnc.measure on its input and blocks (one loop)."""
    import pncutils as pnc
    from pncutils.models import HybridNetwork

    g = torch.Generator().manual_seed(3)
    net = HybridNetwork(6, 8, 3, depth=4, num_nonlinear=2, init_scale=1.0, generator=g)
    X, y = torch.randn(45, 6, generator=g), torch.arange(45) % 3
    report = layer_report(net, X, y, batch_size=10)
    names = ["input", *[f"blocks.{i}" for i in range(len(net.blocks))]]
    m = pnc.measure(net, (X, y), layers=names, rank=True, probe=True, batch_size=10)
    for col in ("compression", "discrimination", "nc1", "trace_within", "rank"):
        assert report[col].tolist() == pytest.approx(m.table[col].tolist(), rel=1e-12), col
    assert report.probe_train_acc.tolist() == m.table.probe_accuracy.tolist()
