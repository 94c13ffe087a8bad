"""Tests of pncutils.book.hybrid: the driver of chapter 5's experiment (set-up, the floor of
the linear layers, the summary, the typed result)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pncutils.book import hybrid
from pncutils.metrics import LayerTable


def test_hybrid_setup_follows_the_config():
    cfg = hybrid.SCALES["quick"]
    for name in ("hybrid", "mlp"):
        net, tcfg = hybrid.hybrid_setup(cfg, name, 784, 10)
        assert (net.in_dim, net.width, net.depth) == (784, cfg.width, cfg.depth)
        assert net.num_nonlinear == cfg[f"{name}_nonlinear"] and net.init == "orthogonal"
        assert (tcfg.lr, tcfg.alpha) == (cfg[f"{name}_lr"], cfg[f"{name}_alpha"])
        assert (tcfg.epochs, tcfg.batch_size, tcfg.seed) == (cfg.epochs, cfg.batch_size, cfg.seed)
        again, _ = hybrid.hybrid_setup(cfg, name, 784, 10)  # seeded: the same weights
        assert all(torch.equal(a, b) for a, b in zip(net.weights(), again.weights(), strict=True))
    with pytest.raises(ValueError, match="network must be one of"):
        hybrid.hybrid_setup(cfg, "cnn", 784, 10)


# ----------------------------------------------------------------------------------------
# the analytic floor of the hybrid's linear layers (chapter 5)
# ----------------------------------------------------------------------------------------


def test_linear_part_floor_against_numpy():
    """The least-squares floor, the losses and the map distance, recomputed with numpy."""
    from pncutils.models import HybridNetwork

    g = torch.Generator().manual_seed(3)
    K, N, width, depth, m, alpha = 3, 60, 8, 5, 2, 4.0
    net = HybridNetwork(6, width, K, depth, m, init="default", generator=g).double()
    X = torch.randn(N, 6, generator=g, dtype=torch.float64)  # float64: the comparison is exact
    y = torch.arange(N) % K
    net.train()
    net(X)  # one training-mode pass moves the BatchNorm running statistics
    f = hybrid.linear_part_floor(net, X, y, alpha, batch_size=7)
    assert net.training  # the mode is restored
    # H_m by hand, eval mode: Linear -> BatchNorm with running statistics -> ReLU
    H = X.double().numpy()
    for block in net.blocks[:m]:
        lin, bn = block[0], block[1]
        Z = H @ lin.weight.detach().double().numpy().T
        Z = (Z - bn.running_mean.double().numpy()) / np.sqrt(
            bn.running_var.double().numpy() + bn.eps)
        H = np.maximum(Z * bn.weight.detach().double().numpy()
                       + bn.bias.detach().double().numpy(), 0.0)
    Y = np.eye(K)[y.numpy()]
    W_star = np.linalg.lstsq(H, Y, rcond=None)[0].T / alpha  # (K, width), N > width
    A = np.eye(width)
    for W in net.weights()[m:]:
        A = W.double().numpy() @ A
    U, S, Vt = np.linalg.svd(W_star, full_matrices=False)
    means = np.stack([H[y.numpy() == k].mean(0) for k in range(K)])
    H_W, H_B = H - means[y.numpy()], means - means.mean(0)
    L = depth - m
    floor = [((H_W @ Vt.T * S ** (j / L)) ** 2).sum() / N
             / (((H_B @ Vt.T * S ** (j / L)) ** 2).sum() / K) for j in range(L + 1)]
    assert f.layers == list(range(m, depth + 1))
    np.testing.assert_allclose(f.least_squares_floor, floor, rtol=1e-8)
    # the last row is the compression of the least-squares fit itself
    fit = H @ W_star.T
    fit_means = np.stack([fit[y.numpy() == k].mean(0) for k in range(K)])
    C_fit = (((fit - fit_means[y.numpy()]) ** 2).sum() / N) / (
        ((fit_means - fit_means.mean(0)) ** 2).sum() / K)
    assert f.least_squares_floor[-1] == pytest.approx(C_fit, rel=1e-8)
    assert f.least_squares_loss == pytest.approx(
        ((alpha * H @ W_star.T - Y) ** 2).sum(1).mean(), rel=1e-8)
    assert f.network_loss == pytest.approx(((alpha * H @ A.T - Y) ** 2).sum(1).mean(),
                                              rel=1e-8)
    assert f.least_squares_loss <= f.network_loss
    assert f.map_distance == pytest.approx(
        np.linalg.norm(A - W_star) / np.linalg.norm(W_star), rel=1e-8)
    # the network's own outputs (its forward pass, eval mode) have the same compression
    net.eval()
    with torch.no_grad():
        out = net(X).double().numpy()
    out_means = np.stack([out[y.numpy() == k].mean(0) for k in range(K)])
    C_out = (((out - out_means[y.numpy()]) ** 2).sum() / N) / (
        ((out_means - out_means.mean(0)) ** 2).sum() / K)
    assert f.end_to_end_compression == pytest.approx(C_out, rel=1e-8)


def test_linear_part_floor_rejects_bad_input():
    from pncutils.models import HybridNetwork

    net = HybridNetwork(4, 6, 2, depth=3, num_nonlinear=1,
                        generator=torch.Generator().manual_seed(0))
    X, y = torch.randn(10, 4), torch.arange(10) % 2
    with pytest.raises(ValueError, match="HybridNetwork"):
        hybrid.linear_part_floor(torch.nn.Linear(4, 2), X, y, 1.0)
    with pytest.raises(ValueError, match=r"\(N, D_in\) tensor"):
        hybrid.linear_part_floor(net, X, y[:5], 1.0)
    with pytest.raises(ValueError, match="alpha"):
        hybrid.linear_part_floor(net, X, y, 0.0)


# ----------------------------------------------------------------------------------------
# the summary and the typed result
# ----------------------------------------------------------------------------------------


def _table():
    return LayerTable({"layer": [0, 1, 2, 3, 4, 5], "compression": [5.0, 9.0, 3.0, 1.5, 1.0, 0.75],
                       "discrimination": [0.1, 0.3, 0.2, 0.6, 0.5, 0.9],
                       "rank": [50, 40, 30, 20, 12, 10],
                       "probe_train_acc": [0.3, 0.8, 0.985, 0.99, 0.97, 0.99]})


def test_deep_summary_by_hand():
    s = hybrid.deep_summary(_table(), 2, 5, outputs_compression=0.5)
    assert s.fit_layers == [2, 3, 4, 5]
    assert s.compression_ratio_layer1_to_last == 12.0
    assert s.compression_ratio_first_linear_to_last == 2.0  # C_3 / C_5
    assert s.compression_ratio_fit_start_to_last == 4.0  # C_2 / C_5
    slope, intercept = np.polyfit([2, 3, 4, 5], np.log([3.0, 1.5, 1.0, 0.75]), 1)
    assert s.log_compression_fit.slope == pytest.approx(slope, rel=1e-12)
    assert s.log_compression_fit.rate == pytest.approx(math.exp(slope), rel=1e-12)
    # C_l - C_L = 2.5, 1.0, 0.5, 0.25 over l = 2..5
    f_slope, _ = np.polyfit([2, 3, 4, 5], np.log([2.5, 1.0, 0.5, 0.25]), 1)
    assert s.floor_fit.floor == 0.5 and s.floor_fit.slope == pytest.approx(f_slope, rel=1e-12)
    assert s.discrimination_change_over_fit_layers == pytest.approx(0.7)
    assert s.discrimination_increasing_steps == 2  # 0.2 -> 0.6, 0.5 -> 0.9
    assert s.discrimination_max_layer == 5
    assert (s.rank_layer1, s.rank_last) == (40, 10)
    # the best probe over l >= 1 is 0.99; within 0.01 from layer 2 (0.985)
    assert s.probe_train_acc_max == 0.99 and s.probe_saturation_layer == 2
    assert hybrid.deep_summary(_table(), 2, 5).floor_fit is None  # no outputs' C_L
    assert hybrid.deep_summary(_table(), 2, 5, 1.4).floor_fit is None  # 2 layers above it


def test_a_network_result_round_trips_through_json():
    t = _table()
    net = hybrid.NetworkResult(2, t, hybrid.Outputs(0.5, 0.95),
                               summary=hybrid.deep_summary(t, 2, 5, 0.5))
    res = hybrid.HybridResult(6, 6, 4, 2, {"hybrid": net})
    back = hybrid.HybridResult.from_dict(res.to_dict())
    assert back == res and back.networks["hybrid"].pca is None
    assert back.networks["hybrid"].summary.floor_fit.kind == "floor"
