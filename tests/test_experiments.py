"""Tests of pncutils.book.experiments against independent computations (numpy, naive formulas)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pncutils import theory as T
from pncutils.book import assumptions, main_result, nonlinear, reproduce
from pncutils.book import experiments as E
from pncutils.data import orthogonal_dataset
from pncutils.metrics import LayerTable
from pncutils.models import DeepLinearNetwork
from pncutils.training import TrainConfig, train_many

F64 = torch.float64


def naive_C_D(H, y, K):
    """C = tr Σ_W / tr Σ_B and D = 1 - max cos of uncentred class means, in numpy."""
    H, y = np.asarray(H, dtype=np.float64), np.asarray(y)
    M = np.stack([H[y == k].mean(0) for k in range(K)])
    trW = ((H - M[y]) ** 2).sum() / len(H)
    trB = ((M - M.mean(0)) ** 2).sum() / K
    Mn = M / np.linalg.norm(M, axis=1, keepdims=True)
    cos = Mn @ Mn.T
    return trW / trB, 1 - cos[np.triu_indices(K, 1)].max()


# ------------------------------------------------------------------------------- helpers


def test_seed_stream_is_numpy_seedsequence_and_streams_differ():
    expected = int(np.random.SeedSequence(7, spawn_key=(2, 1)).generate_state(1, np.uint64)[0])
    a = torch.rand(5, generator=E.seed_stream(7, 2, 1))
    assert torch.equal(a, torch.rand(5, generator=torch.Generator().manual_seed(expected)))
    draws = {tuple(torch.rand(3, generator=E.seed_stream(0, *k)).tolist())
             for k in [(0, 0), (0, 1), (1, 0), (0, 1, 6, 50), (0, 1, 6, 51)]}
    assert len(draws) == 5
    with pytest.raises(ValueError, match="key"):
        E.seed_stream(0, -1)


def test_weights_features_matches_model_features():
    g = torch.Generator().manual_seed(0)
    net = DeepLinearNetwork(6, 8, 3, depth=4, init_scale=0.7, generator=g).double()
    X = torch.randn(5, 6, generator=g, dtype=F64)
    for a, b in zip(E.weights_features(net.weights(), X), net.features(X), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="columns"):
        E.weights_features([torch.eye(3), torch.eye(2)], torch.ones(1, 4))


def test_rate_and_fit_against_numpy():
    C = [13.0, 5.0, 1.3, 0.4, 0.09]
    ratios = [C[i + 1] / C[i] for i in range(1, 4)]
    assert E.compression_rate(C) == pytest.approx(np.prod(ratios) ** (1 / 3))
    assert E.compression_rate(C, start=0) == pytest.approx((C[-1] / C[0]) ** 0.25)
    D = [0.5, 0.91, 0.925, 0.93, 0.96]
    slope, intercept = np.polyfit(np.arange(1, 5), D[1:], 1)
    fit = E.discrimination_fit(D)
    assert fit.slope == pytest.approx(slope) and fit.intercept == pytest.approx(intercept)
    resid = np.array(D[1:]) - (slope * np.arange(1, 5) + intercept)
    r2 = 1 - (resid**2).sum() / ((np.array(D[1:]) - np.mean(D[1:])) ** 2).sum()
    assert fit.r2 == pytest.approx(r2)
    with pytest.raises(ValueError, match="at least 3 layers"):
        E.compression_rate([1.0, 0.5])


# ---------------------------------------------------------------------------- chapter 3


@pytest.fixture(scope="module")
def runs():
    return E.synthetic_runs(depth=4, init_scale=0.3, alpha=100.0, num_seeds=3, seed=5)


def test_synthetic_runs_data_streams_and_tables(runs):
    K, L = 3, 4
    assert runs.converged and runs.num_seeds == 3 and runs.X.shape == (3, 30, 50)
    for s in range(3):
        X, y = orthogonal_dataset(3, 10, 50, generator=E.seed_stream(5, s, 0), dtype=F64)
        assert torch.equal(runs.X[s], X) and torch.equal(runs.y, y)
        with torch.no_grad():
            feats = runs.models[s].features(runs.X[s])
        for layer, H in enumerate(feats):
            C, D = naive_C_D(H, y, K)
            assert runs.measured[s].compression[layer].item() == pytest.approx(C, rel=1e-10)
            assert runs.measured[s].discrimination[layer].item() == pytest.approx(D, abs=1e-12)
        pred = T.predicted_metrics(runs.X[s], y, L, eps=0.3, alpha=100.0)
        assert runs.predicted[s] == pred
    assert not torch.equal(runs.X[0], runs.X[1])
    assert runs.ideal_rate == pytest.approx(0.09 * (1e4 / 10) ** (1 / L))


def test_synthetic_runs_rates_slopes_and_means(runs):
    rates = [np.exp(np.mean(np.diff(np.log(t.compression.numpy()[1:])))) for t in runs.measured]
    torch.testing.assert_close(runs.rates(), torch.tensor(rates, dtype=F64))
    assert runs.rate() == pytest.approx(np.mean(rates))
    assert abs(runs.rate() / runs.ideal_rate - 1) < 0.1
    D = np.stack([t.discrimination.numpy() for t in runs.measured])
    mean = runs.mean_table()
    np.testing.assert_allclose(mean.discrimination.numpy(), D.mean(0))
    Cs = np.stack([t.compression.numpy() for t in runs.measured])
    np.testing.assert_allclose(mean.compression.numpy(), np.exp(np.log(Cs).mean(0)))
    slopes = [np.polyfit(np.arange(1, 4), d[1:], 1)[0] for d in D]
    np.testing.assert_allclose(runs.discrimination_slopes().numpy(), slopes, atol=1e-12)
    assert runs.discrimination_fit().slope == pytest.approx(np.polyfit(np.arange(1, 4),
                                                                       D.mean(0)[1:], 1)[0])
    # the first-order prediction is exactly linear, slope (1 - D~_0) / L
    fo = runs.discrimination_slopes("first_order")
    D0 = torch.tensor([t.discrimination[0].item() for t in runs.first_order], dtype=F64)
    torch.testing.assert_close(fo, (1 - D0) / 4)
    with pytest.raises(ValueError, match="source"):
        runs.rates("theory")
    with pytest.raises(ValueError, match="D_l only"):
        runs.rates("first_order")


def test_synthetic_runs_is_reproducible_and_validates():
    a = E.synthetic_runs(depth=3, num_seeds=1, max_epochs=20, loss_threshold=None)
    b = E.synthetic_runs(depth=3, num_seeds=1, max_epochs=20, loss_threshold=None)
    assert all(torch.equal(x, y) for x, y in zip(a.models[0].weights(), b.models[0].weights(),
                                                  strict=True))
    assert a.epochs == [20] and not a.converged
    with pytest.raises(ValueError, match="N <= d"):
        E.synthetic_runs(num_per_class=20, dim=50)
    with pytest.raises(ValueError, match="depth"):
        E.synthetic_runs(depth=1)


def test_sweep_rows_match_synthetic_runs():
    settings = [{"init_scale": 0.2}, {"init_scale": 0.3, "num_per_class": 5}]
    table = E.sweep(settings, num_seeds=2, depth=4, seed=1)
    assert isinstance(table, LayerTable) and len(table) == 2
    for i, st in enumerate(settings):
        r = E.synthetic_runs(depth=4, num_seeds=2, seed=1, **st)
        n = st.get("num_per_class", 10)
        assert table.init_scale[i].item() == st["init_scale"]
        assert table.num_per_class[i].item() == n
        assert table.rate_mean[i].item() == pytest.approx(r.rate())
        assert table.rate_std[i].item() == pytest.approx(float(np.std(r.rates().numpy())))
        assert table.rate_closed_form[i].item() == pytest.approx(r.rate("predicted"))
        ideal = st["init_scale"] ** 2 * (100.0**2 / n) ** (1 / 4)
        assert table.rate_ideal[i].item() == pytest.approx(ideal)
        assert table.err_ideal[i].item() == pytest.approx(r.rate() / ideal - 1)
        assert table.xi_ratio[i].item() == pytest.approx(
            st["init_scale"] / (math.sqrt(n) / 100.0) ** (1 / 4))
        assert table.d_slope[i].item() == pytest.approx(r.discrimination_fit().slope)
        # the closed-form columns: the prediction's own rate and D slope (numpy fits)
        Dp = np.stack([t.discrimination.numpy() for t in r.predicted]).mean(0)
        assert table.d_slope_closed_form[i].item() == pytest.approx(
            np.polyfit(np.arange(1, 4), Dp[1:], 1)[0], rel=1e-9)
        Dm = np.stack([t.discrimination.numpy() for t in r.measured]).mean(0)
        pred = np.polyval(np.polyfit(np.arange(1, 4), Dm[1:], 1), np.arange(1, 4))
        r2 = 1 - ((Dm[1:] - pred) ** 2).sum() / ((Dm[1:] - Dm[1:].mean()) ** 2).sum()
        assert table.d_r2[i].item() == pytest.approx(r2, rel=1e-9)
        closed = np.mean([np.exp(np.mean(np.diff(np.log(t.compression.numpy()[1:]))))
                          for t in r.predicted])
        assert table.rate_closed_form[i].item() == pytest.approx(closed, rel=1e-9)
        assert table.err_closed_form[i].item() == pytest.approx(r.rate() / closed - 1, rel=1e-9)
        assert table.epochs_mean[i].item() == pytest.approx(np.mean(r.epochs))
        assert table.converged[i].item() == 1.0
    with pytest.raises(ValueError, match="key"):
        E.sweep([{"xi": 0.3}])
    with pytest.raises(ValueError, match="depth >= 3"):
        E.sweep([{"depth": 2}], num_seeds=1, max_epochs=5)
    with pytest.raises(ValueError, match="list of dicts"):
        E.sweep({"init_scale": 0.3})


# ---------------------------------------------------------------------------- chapter 4


def paper_data(seed):
    return orthogonal_dataset(3, 10, 50, generator=torch.Generator().manual_seed(seed),
                              dtype=F64)


def test_residual_split_is_pythagorean_and_null_part_is_frozen_init():
    X, y = paper_data(0)
    g = torch.Generator().manual_seed(1)
    Ws = [torch.randn(60, 50, generator=g, dtype=F64) * 0.1,
          torch.randn(3, 60, generator=g, dtype=F64)]
    row, null = E.residual_split(Ws, X, y)
    assert math.hypot(row, null) == pytest.approx(T.min_norm_residual(Ws, X, y), rel=1e-12)
    # independent null-space projector from numpy
    Xn = X.numpy()
    P_null = np.eye(50) - np.linalg.pinv(Xn) @ Xn
    assert null == pytest.approx(np.linalg.norm((Ws[1] @ Ws[0]).numpy() @ P_null), rel=1e-10)
    # after training, W_1 is unchanged on the null space of X
    net = DeepLinearNetwork(50, 60, 3, depth=3, init_scale=0.5, generator=g).double()
    W1_0 = net.weights()[0].clone()
    train_many([net], X, y, TrainConfig(lr=0.1, epochs=100, progress=False), device="cpu")
    change = (net.weights()[0] - W1_0).numpy() @ P_null
    assert np.abs(change).max() < 1e-12


def test_reduced_training_equals_full_training():
    """GD in the invariant subspaces (reduce=True) follows the full networks' trajectory."""
    kw = dict(num_seeds=2, max_epochs=300, loss_threshold=None, init_scale=0.3, seed=3)
    grid = [(3, 50), (3, 64), (4, 80)]
    red = E.assumption_grid(grid, reduce=True, **kw)
    full = E.assumption_grid(grid, reduce=False, **kw)
    for col in ("residual", "residual_null", "balance", "balance_conserved", "final_loss"):
        torch.testing.assert_close(red[col], full[col], rtol=1e-8, atol=1e-12)
    assert red.epochs.tolist() == [300.0] * 6


def test_reduced_weights_equal_full_weights():
    X, y = paper_data(4)
    L, h = 4, 70
    cfg = TrainConfig(lr=0.1, epochs=200, alpha=1.0, progress=False)
    full, small = [E._network(50, h, 3, L, 0.4, torch.Generator().manual_seed(9), F64)
                   for _ in range(2)]
    init = [W.clone() for W in small.weights()]
    train_many([full], X, y, cfg, device="cpu")
    E._train_reduced([small], [init], [X], y, cfg, "cpu")
    for A, B in zip(full.weights(), small.weights(), strict=True):
        torch.testing.assert_close(A, B, rtol=0, atol=1e-11)
    # the subspaces have dimension rank(X) + K = 33
    bases = E._invariant_bases(init, E._row_basis(X))
    assert [B.shape[1] for B in bases] == [30, 33, 33, 33]


def test_reduce_rejects_non_orthogonal_init():
    X, y = paper_data(0)
    net = DeepLinearNetwork(50, 60, 3, depth=3, init="gaussian", init_scale=1.0,
                            generator=torch.Generator().manual_seed(0)).double()
    with pytest.raises(ValueError, match="scaled orthogonal"):
        E._invariant_bases([W.clone() for W in net.weights()], E._row_basis(X))


def test_assumption_grid_columns_against_theory_functions():
    t, nets = E.assumption_grid([(2, 60)], num_seeds=2, max_epochs=2000, seed=2,
                                return_models=True)
    assert t.converged.tolist() == [1.0, 1.0]
    for s, net in enumerate(nets):
        X, y = orthogonal_dataset(3, 10, 50, generator=E.seed_stream(2, s, 0), dtype=F64)
        assert t.residual[s].item() == pytest.approx(T.min_norm_residual(net, X, y))
        assert net.width == 60 and net.depth == 2
    assert (t.final_loss < 1e-10).all()
    # residual ~ null part once interpolating; balance ~ conserved value of the init
    torch.testing.assert_close(t.residual, t.residual_null, rtol=1e-3, atol=0)
    assert ((t.balance / t.balance_conserved - 1).abs() < 0.02).all()
    assert (t.bulk_variance < 1e-10).all()
    # at initialisation, the pair (W_1, W_2) of an L = 2 network is unbalanced by
    # ||xi^2 (W_2^T W_2 - W_1 W_1^T)||: an independent check of the conserved numerator
    net = E._network(50, 60, 3, 2, 0.1, E.seed_stream(2, 0, 1, 2, 60), F64)
    W1, W2 = (W.numpy() for W in net.weights())
    imb = np.linalg.norm(W2.T @ W2 - W1 @ W1.T)
    assert imb == pytest.approx(0.01 * math.sqrt(53), rel=0.05)  # ranges nearly orthogonal


def test_grid_points_summary_and_validation():
    assert E.grid_points() == [(2, 400), (3, 400), (4, 400), (5, 200), (5, 300), (5, 400),
                               (5, 500), (5, 600), (5, 700)]
    rng = np.random.default_rng(0)
    cols = {"depth": [2, 2, 2, 3], "width": [60, 60, 60, 60], "seed": [0, 1, 2, 0]}
    for c in ("residual", "residual_null", "balance", "balance_conserved", "bulk_variance",
              "epochs", "final_loss"):
        cols[c] = rng.random(4).tolist()
    cols["converged"] = [1, 0, 1, 1]
    s = E.grid_summary(LayerTable(cols))
    assert s.depth.tolist() == [2, 3] and s.num_seeds.tolist() == [3, 1]
    assert s.residual_mean[0].item() == pytest.approx(np.mean(cols["residual"][:3]))
    assert s.balance_std[0].item() == pytest.approx(np.std(cols["balance"][:3]))
    assert s.bulk_variance_max[0].item() == pytest.approx(max(cols["bulk_variance"][:3]))
    assert s.converged.tolist() == pytest.approx([2 / 3, 1.0])
    with pytest.raises(ValueError, match="below the input dimension"):
        E.assumption_grid([(3, 40)])
    with pytest.raises(ValueError, match="repeated"):
        E.assumption_grid([(3, 60), (3, 60)])
    with pytest.raises(ValueError, match="pair"):
        E.assumption_grid([3, 60])
    with pytest.raises(ValueError, match="lacks"):
        E.grid_summary(LayerTable({"depth": [2]}))


def test_predicted_balance_numerators_and_trained_value():
    for L, h in [(3, 80), (4, 120)]:
        net = E._network(50, h, 3, L, 0.1, E.seed_stream(0, 1, L, h), F64)
        W = [w.numpy() for w in net.weights()]
        imb = [np.linalg.norm(W[i + 1].T @ W[i + 1] - W[i] @ W[i].T) for i in range(L - 1)]
        assert imb[0] == pytest.approx(0.01 * math.sqrt(h - 50), rel=1e-9)
        assert imb[-1] == pytest.approx(0.01 * math.sqrt(h - 3), rel=1e-9)
        assert max(imb[1:-1], default=0.0) < 1e-12
    # the trained network: numerators conserved, norms of the idealised network
    t = E.assumption_grid([(3, 60)], num_seeds=1, max_epochs=3000, seed=1)
    assert t.converged.item() == 1.0
    assert t.balance.item() == pytest.approx(E.predicted_balance(3, 60), rel=0.03)
    s2 = 10 ** (1 / 3)
    hand = (0.01 * math.sqrt(10) / math.sqrt(3 * s2 + 0.01 * 47)
            + 0.01 * math.sqrt(57) / math.sqrt(3 * s2 + 0.01 * 57)) / 2
    assert E.predicted_balance(3, 60) == pytest.approx(hand)
    with pytest.raises(ValueError, match="width"):
        E.predicted_balance(3, 40)


def test_predicted_balance_of_depth_two_by_hand_and_by_random_subspaces():
    # L = 2, h = 60, d = 50, K = 3, n = 10, xi = 0.1, alpha = 1: the single pair has
    # numerator xi^2 sqrt(K + d - 2 K d / h) = 0.01 sqrt(48) and ||W_1|| from the idealised
    # network, sqrt(K s^{2/L} + xi^2 (d - K)) with s^{2/L} = sqrt(10)
    hand = 0.01 * math.sqrt(48) / math.sqrt(3 * math.sqrt(10) + 0.01 * 47)
    assert E.predicted_balance(2, 60) == pytest.approx(hand, rel=1e-12)
    # the numerator is the root mean square of ||W_2^T W_2 - W_1 W_1^T||_F at the init: with
    # random orthonormal W_1 (h x d) and W_2^T (h x K), E ||P_K - P_d||^2 = K + d - 2 K d / h
    rng = np.random.default_rng(0)
    sq = []
    for _ in range(300):
        Q1 = np.linalg.qr(rng.normal(size=(60, 50)))[0]
        Q2 = np.linalg.qr(rng.normal(size=(60, 3)))[0]
        sq.append(np.linalg.norm(Q2 @ Q2.T - Q1 @ Q1.T) ** 2)
    assert np.mean(sq) == pytest.approx(3 + 50 - 2 * 3 * 50 / 60, rel=0.01)


def test_assumption_grid_bulk_variance_is_the_population_variance(monkeypatch):
    # trained from a scaled orthogonal init the bulk stays at xi (variance ~ 1e-32, noise),
    # so the aggregation is checked on given bulk values: population variance, hand-worked
    seen = []

    def fake_bulk(weights, num_classes):
        seen.append((len(weights), num_classes))
        return torch.tensor([[1.0, 2.0], [3.0, 5.0]], dtype=F64)

    monkeypatch.setattr(E._theory, "bulk_singular_values", fake_bulk)
    t = E.assumption_grid([(3, 60)], num_seeds=1, max_epochs=2, loss_threshold=None)
    assert seen == [(3, 3)]
    # mean 2.75; squared deviations 3.0625 + 0.5625 + 0.0625 + 5.0625 = 8.75 over 4 values
    assert t.bulk_variance.tolist() == [pytest.approx(8.75 / 4, rel=1e-12)]


def _grid_result(summary):
    runs = LayerTable({"depth": [2.0], "width": [400.0], "residual": [0.05]})
    return assumptions.Fig6Result([(2, 400)], runs, summary, True, 0.05, 0.02, 1e-14)


def test_plot_assumption_grid_draws_reference_and_prediction():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = LayerTable({"depth": [2, 3, 5, 5], "width": [400, 400, 200, 400],
                    "residual_mean": [0.05, 0.04, 0.06, 0.04], "residual_std": [0.0] * 4,
                    "balance_mean": [0.02, 0.07, 0.03, 0.04], "balance_std": [0.0] * 4,
                    "bulk_variance_mean": [1e-14] * 4, "bulk_variance_std": [0.0] * 4})
    cfg = assumptions.SCALES["book"]  # width 400 for the depths, depth 5 for the widths
    fig, axes = assumptions.plot_assumption_grid(
        _grid_result(s), cfg, reference=assumptions.PAPER_ASSUMPTION_VALUES, prediction=True)
    top_balance = axes[0, 1]
    xs = [line.get_xdata().tolist() for line in top_balance.lines]
    assert [list(map(int, x)) for x in xs].count([2, 3, 5]) >= 3  # book, prediction, notebook
    assert len(top_balance.lines) >= 3
    labels = top_balance.get_legend_handles_labels()[1]
    assert "authors' notebook" in labels and "paper" not in labels
    pred = next(line for line in top_balance.lines if line.get_label().startswith("predicted"))
    np.testing.assert_allclose(pred.get_ydata(), [E.predicted_balance(L, 400) for L in (2, 3, 5)])
    with pytest.raises(ValueError, match="no rows"):
        assumptions.plot_assumption_grid(_grid_result(s), cfg.replace(width_for_depths=300))
    plt.close("all")


def test_notebook_comparison_and_predicted_balances():
    s = LayerTable({"depth": [2, 3, 3], "width": [400, 400, 250],
                    "residual_mean": [0.05, 0.04, 0.07], "residual_std": [0.01, 0.02, 0.0],
                    "balance_mean": [0.02, 0.07, 0.03]})
    cfg = assumptions.SCALES["quick"]
    t = assumptions.notebook_comparison(_grid_result(s), cfg)
    assert t.depth.tolist() == [2, 3] and t.width.tolist() == [400, 400]  # (3, 250): no value
    assert t.residual_notebook.tolist() == [0.049, 0.047]
    assert t.balance_notebook.tolist() == [0.023, 0.066]
    assert t.residual_std.tolist() == [0.01, 0.02] and t.balance.tolist() == [0.02, 0.07]
    expected = [E.predicted_balance(L, 400, dim=50, num_classes=3, num_per_class=10,
                                    init_scale=0.1, alpha=1.0) for L in (2, 3)]
    np.testing.assert_allclose(t.balance_predicted.numpy(), expected, rtol=1e-15)
    pairs = zip(torch.tensor([2.0]), torch.tensor([400.0]), strict=True)
    assert assumptions.predicted_balances(cfg, pairs) == expected[:1]


def test_fig6_quick_scale_is_chapter_4s_grid():
    """Chapter 4 runs fig6's configurations: the quick one keeps the widths of the book."""
    q, b = assumptions.SCALES["quick"], assumptions.SCALES["book"]
    assert q.width_for_depths == b.width_for_depths == 400 and q.widths == b.widths
    assert {k: v for k, v in q.items() if k not in ("depths", "depth_for_widths")} == \
        {k: v for k, v in b.items() if k not in ("depths", "depth_for_widths")}


# ------------------------------------------------------------ chapter 3: the D_l survey


def test_discrimination_survey_equals_predicted_metrics_data_set_by_data_set():
    sv = E.discrimination_survey(num_draws=6, depth=5, eps=0.4, alpha=10.0, seed=3)
    assert sv.num_draws == 6 and sv.exact.shape == (6, 5) and sv.first_order.shape == (6, 5)
    for s in range(6):
        # data set s is the one seed s of synthetic_runs trains on (stream (s, 0))
        X, y = orthogonal_dataset(3, 10, 50, generator=E.seed_stream(3, s, 0), dtype=F64)
        exact = T.predicted_metrics(X, y, 5, eps=0.4, alpha=10.0).discrimination
        first = T.first_order_discrimination(X, y, 5, alpha=10.0).discrimination
        torch.testing.assert_close(sv.exact[s], exact, rtol=0, atol=1e-12)
        torch.testing.assert_close(sv.first_order[s], first, rtol=0, atol=1e-12)
    assert sv.settings["eps"] == 0.4 and sv.settings["seed"] == 3


def test_discrimination_survey_against_the_constructed_network():
    """The exact D_l is that of the features of the closed-form network (naive numpy D)."""
    sv = E.discrimination_survey(num_draws=2, seed=1)
    X, y = orthogonal_dataset(3, 10, 50, generator=E.seed_stream(1, 1, 0), dtype=F64)
    Ws = T.min_norm_balanced_network(X, y, 6, eps=0.3, alpha=100.0,
                                     generator=torch.Generator().manual_seed(0))
    for layer, H in enumerate(E.weights_features(Ws, X)):
        assert sv.exact[1, layer].item() == pytest.approx(naive_C_D(H, y, 3)[1], abs=1e-10)


def test_discrimination_survey_slopes_share_and_gap_by_hand():
    exact = torch.tensor([[0.9, 0.91, 0.93, 0.95],   # rising
                          [1.2, 1.06, 1.04, 1.02],   # falling
                          [0.8, 0.99, 0.99, 0.99]], dtype=F64)  # flat from l = 1
    first = torch.tensor([[0.9, 0.92, 0.94, 0.96],
                          [1.08, 1.06, 1.04, 1.02],
                          [0.99, 0.99, 0.99, 0.99]], dtype=F64)
    sv = E.DiscriminationSurvey(exact=exact, first_order=first)
    for s in range(3):
        slope = np.polyfit([1, 2, 3], exact[s, 1:].numpy(), 1)[0]
        assert sv.slopes()[s].item() == pytest.approx(slope, abs=1e-12)
        assert sv.slopes("first_order")[s].item() == pytest.approx(
            np.polyfit([1, 2, 3], first[s, 1:].numpy(), 1)[0], abs=1e-12)
        assert sv.slopes(start=0)[s].item() == pytest.approx(
            np.polyfit([0, 1, 2, 3], exact[s].numpy(), 1)[0], abs=1e-12)
    assert sv.decreasing().tolist() == [False, True, False]
    assert sv.decreasing_share() == pytest.approx(1 / 3)
    torch.testing.assert_close(sv.first_order_gap(), torch.tensor(
        [[0.01, 0.01, 0.01], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=F64), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="source"):
        sv.slopes("measured")
    with pytest.raises(ValueError, match="layers"):
        sv.slopes(start=3)


def test_discrimination_survey_orthonormal_data_and_validation():
    sv = E.discrimination_survey(num_draws=3, perturbation=0.0)  # orthonormal: D_l = 1
    torch.testing.assert_close(sv.exact, torch.ones(3, 6, dtype=F64), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="N <= d"):
        E.discrimination_survey(num_per_class=20, dim=50)
    with pytest.raises(ValueError, match="depth"):
        E.discrimination_survey(depth=2)
    with pytest.raises(ValueError, match="num_draws"):
        E.discrimination_survey(num_draws=0)


# ------------------------------------------------- chapter 3: the grouped fits of D_l


def test_grouped_discrimination_fits_average_each_group_of_seeds(runs):
    D = np.stack([t.discrimination.numpy() for t in runs.measured])  # (3, L)
    fits = runs.grouped_discrimination_fits(group_size=1)
    assert len(fits) == 3
    for f, d in zip(fits, D, strict=True):
        slope, intercept = np.polyfit(np.arange(1, 4), d[1:], 1)
        assert f.slope == pytest.approx(slope, abs=1e-12) and f.layers == (1, 2, 3)
    (whole,) = runs.grouped_discrimination_fits(group_size=3)
    assert whole.slope == pytest.approx(runs.discrimination_fit().slope, rel=1e-12)
    with pytest.raises(ValueError, match="do not split into groups of 2"):
        runs.grouped_discrimination_fits(group_size=2)


# ------------------------------------------ the experiments fig4 (ch03) and fig3b (ch05)


def test_fig4_is_chapter_3s_experiment_with_its_seeding():
    """One Figure-4 driver: the result is experiments.synthetic_runs with the same streams."""
    cfg = main_result.SCALES["quick"].replace(num_seeds=2, epochs=400, seed=3)
    r = reproduce.compute("fig4", cfg, "cpu")
    runs = E.synthetic_runs(cfg.num_classes, cfg.num_per_class, cfg.dim, cfg.depth,
                            cfg.init_scale, cfg.alpha, cfg.num_seeds, max_epochs=400,
                            schedule_epochs=400, seed=3, device="cpu")
    assert r.base_seed == 3 and r.seeds == [0, 1]
    for s, rec in enumerate(r.per_seed):
        assert rec.measured == runs.measured[s]  # the same numbers, bit for bit
        assert rec.epochs_run == runs.histories[s].epochs_run
        assert rec.measured_rate == pytest.approx(float(runs.rates()[s]), rel=1e-12)
    assert r == main_result.summarize(cfg, main_result.synthetic(cfg))


@pytest.mark.parametrize("scale", ["quick", "book"])
def test_committed_fig4_files_agree_with_chapter_3(scale):
    """The committed file is what chapter 3 computes live at that scale (the same config,
    the same seeds, the same numbers)."""
    rec = reproduce.load_or_run("fig4", scale, recompute=False)
    if rec is None:
        pytest.skip(f"no current fig4-{scale}.json under book/results")
    assert rec.config == main_result.SCALES[scale]
    live = main_result.run(main_result.SCALES[scale], "cpu")
    got, ref = rec.result, live
    assert [p.measured_rate for p in got.per_seed] == pytest.approx(
        [p.measured_rate for p in ref.per_seed], rel=1e-9)
    assert [p.epochs_run for p in got.per_seed] == [p.epochs_run for p in ref.per_seed]
    assert got.summary.measured_rate.mean == pytest.approx(ref.summary.measured_rate.mean,
                                                           rel=1e-9)


def _parameters_cell(chapter):
    import json
    from pathlib import Path

    nb = json.loads((Path(__file__).resolve().parents[1] / "book" / f"{chapter}.ipynb")
                    .read_text())
    return next("".join(c["source"]) for c in nb["cells"]
                if "parameters" in c.get("metadata", {}).get("tags", []))


@pytest.mark.parametrize(("chapter", "driver"), [
    ("ch03_main_result", "book.main_result.SCALES[scale]"),
    ("ch04_implicit_bias", "book.assumptions.SCALES[scale]"),
    ("ch05_hybrid_mlp", "book.hybrid.SCALES[scale]"),
])
def test_the_chapters_take_their_parameters_from_the_drivers(chapter, driver):
    """No retyped numbers: the parameters cell reads the registered scales."""
    import re

    source = _parameters_cell(chapter)
    assert driver in source
    assert 'scale = "quick" if pnc.quick_mode() else "book"' in source
    code = "\n".join(line.split("#")[0] for line in source.splitlines())
    assert not re.search(r"=\s*\d", code), f"a number is typed in the parameters of {chapter}"


def test_fig3b_summary_is_the_seed_average():
    cfg = nonlinear.SCALES["quick"].replace(num_seeds=2, epochs=300)
    r = nonlinear.run(cfg, "cpu")
    per = r.per_seed
    assert [p.seed for p in per] == [0, 1]
    L = cfg.depth
    for i in range(L):  # geometric mean of C, arithmetic mean of D, by hand
        logs = [math.log(p.layers.compression[i].item()) for p in per]
        assert r.summary.compression_geometric_mean[i] == pytest.approx(
            math.exp(sum(logs) / 2), rel=1e-12)
        assert r.summary.discrimination_mean[i] == pytest.approx(
            sum(p.layers.discrimination[i].item() for p in per) / 2, rel=1e-12)
    for p in per:  # the fitted rate against a least-squares fit written out here
        y = [math.log(c) for c in p.layers.compression.tolist()]
        xm, ym = (L - 1) / 2, sum(y) / L
        slope = sum((x - xm) * (v - ym) for x, v in enumerate(y)) / sum(
            (x - xm) ** 2 for x in range(L))
        assert p.log_compression_fit.rate == pytest.approx(math.exp(slope), rel=1e-9)
        assert p.layers.layer.tolist() == list(range(L))
        # D_l is fitted on the hidden layers 1..L-1 (the input's D_0 is left out)
        D = p.layers.discrimination.numpy()
        d_slope, d_intercept = np.polyfit(np.arange(1, L), D[1:], 1)
        assert p.discrimination_fit.layers == tuple(range(1, L))
        assert (p.discrimination_fit.slope, p.discrimination_fit.intercept) == pytest.approx(
            (d_slope, d_intercept), rel=1e-8)
    assert r.summary.discrimination_slope.mean == pytest.approx(
        np.mean([p.discrimination_fit.slope for p in per]), rel=1e-12)
    # the network fits its 30 points and compresses (the figure's claim, loosely)
    assert r.summary.final_loss_max < 1e-3
    assert r.summary.compression_ratio_first_to_last > 2
    assert nonlinear.Fig3bResult.from_dict(r.to_dict()) == r
