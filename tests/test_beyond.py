"""Tests of pncutils.book.beyond: the real-data experiment of chapter 6 (F7)."""

from __future__ import annotations

import json
import math

import matplotlib
import numpy as np
import pytest
import torch

from pncutils import metrics
from pncutils.book import beyond
from pncutils.book.config import Config
from pncutils.data import DatasetNotFoundError, load_dataset
from pncutils.models import DeepLinearNetwork


def _has_fashion_mnist() -> bool:
    try:
        load_dataset("fashion_mnist", "train", num_per_class=2)
    except (DatasetNotFoundError, OSError, ValueError):
        return False
    return True


needs_data = pytest.mark.skipif(not _has_fashion_mnist(), reason="FashionMNIST not installed")


# ----------------------------------------------------------------------------------------
# compression_fit against a naive numpy computation
# ----------------------------------------------------------------------------------------


def test_fit_of_an_exact_geometric_sequence():
    C = [3.0] + [2.0 * 0.3**l for l in range(1, 7)]
    f = beyond.compression_fit(C)
    assert f["layers"] == [1, 2, 3, 4, 5, 6]
    assert f["rate"] == pytest.approx(0.3, rel=1e-12)
    assert f["r2"] == pytest.approx(1.0, abs=1e-12)
    assert f["max_deviation"] == pytest.approx(0.0, abs=1e-12)
    assert f["stall_layer"] is None
    assert f["total_ratio"] == pytest.approx(0.3**5, rel=1e-12)
    assert f["ratios"] == pytest.approx([0.3] * 5, rel=1e-12)


@pytest.mark.parametrize("start", [0, 1, 2])
def test_fit_matches_numpy_polyfit(start):
    rng = np.random.default_rng(0)
    C = np.exp(-0.7 * np.arange(8) + rng.normal(0, 0.3, 8))
    f = beyond.compression_fit(C, start=start)
    x, z = np.arange(start, 8), np.log(C[start:])
    slope, intercept = np.polyfit(x, z, 1)
    pred = slope * x + intercept
    r2 = 1 - ((z - pred) ** 2).sum() / ((z - z.mean()) ** 2).sum()
    assert f["slope"] == pytest.approx(slope, rel=1e-10)
    assert f["intercept"] == pytest.approx(intercept, rel=1e-10)
    assert f["r2"] == pytest.approx(r2, rel=1e-10)
    assert f["rate"] == pytest.approx(math.exp(slope), rel=1e-10)
    assert f["max_deviation"] == pytest.approx(np.abs(z - pred).max() / np.log(10), rel=1e-10)


def test_stall_layer_and_a_floor():
    # geometric by 0.5 down to a floor: the first ratio above 0.9 is at layer 3 (0.1 -> 0.1)
    C = [2.0, 0.8, 0.4, 0.2, 0.2, 0.2]
    f = beyond.compression_fit(C)
    assert f["stall_layer"] == 3
    assert f["r2"] < 0.95 and f["max_deviation"] > 0.05
    assert beyond.compression_fit(C, stall_ratio=1.5)["stall_layer"] is None


def _naive_fit(C, start, stall_ratio):
    """compression_fit by loops over the layers (ratios, first stall, total ratio)."""
    ratios = [C[l + 1] / C[l] for l in range(start, len(C) - 1)]
    stall = None
    for l in range(start, len(C) - 1):
        if C[l + 1] / C[l] > stall_ratio:
            stall = l
            break
    return ratios, stall, C[-1] / C[start]


def test_stall_needs_a_ratio_strictly_above_the_threshold():
    # ratios (exact in binary) 0.5 then 0.25: a ratio equal to stall_ratio does not stall
    C = [4.0, 2.0, 1.0, 0.25]
    assert beyond.compression_fit(C, stall_ratio=0.5)["stall_layer"] is None
    assert beyond.compression_fit(C, stall_ratio=0.25)["stall_layer"] == 1
    assert beyond.compression_fit(C, start=2, stall_ratio=0.125)["stall_layer"] == 2


@pytest.mark.parametrize("seed", range(6))
def test_ratios_stall_and_total_ratio_match_loops(seed):
    rng = np.random.default_rng(seed)
    P = int(rng.integers(4, 9))
    C = np.exp(np.cumsum(rng.normal(-0.5, 0.6, P))).tolist()
    start = int(rng.integers(0, P - 2))
    stall_ratio = float(rng.uniform(0.3, 1.2))
    f = beyond.compression_fit(C, start=start, stall_ratio=stall_ratio)
    ratios, stall, total = _naive_fit(C, start, stall_ratio)
    assert f["layers"] == list(range(start, P))
    assert f["ratios"] == pytest.approx(ratios, rel=1e-12)
    assert f["stall_layer"] == stall
    assert f["total_ratio"] == pytest.approx(total, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(compression=[1.0, 0.5]), "at least 3 values"),
        (dict(compression=[1.0, 0.5, 0.0]), "positive and finite"),
        (dict(compression=[1.0, 0.5, float("nan")]), "positive and finite"),
        (dict(compression=[1.0, 0.5, 0.2], start=-1), "start must be >= 0"),
        (dict(compression=[1.0, 0.5, 0.2], stall_ratio=0.0), "stall_ratio must be > 0"),
    ],
)
def test_fit_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        beyond.compression_fit(**kwargs)


# ----------------------------------------------------------------------------------------
# settings and assumptions
# ----------------------------------------------------------------------------------------


def test_every_scale_has_a_seed_the_paper_depths_and_resolves():
    assert set(beyond.SCALES) == {"quick", "book", "paper"}
    for name, cfg in beyond.SCALES.items():
        assert isinstance(cfg, Config) and "seed" in cfg, name
        settings = beyond.resolve_settings(cfg)
        assert {s["depth"] for s in settings} >= {5, 7, 9}
        assert {s["loss"] for s in settings} == {"mse", "cross_entropy"}
        assert any(s["weight_decay"] > 0 for s in settings)
        assert any(s["init"] == "default" for s in settings)
        json.dumps(cfg.to_dict())
    # the paper scale trains on the full training set (num_per_class=None: all 60 000)
    assert any(s["num_per_class"] is None for s in beyond.resolve_settings(beyond.SCALES["paper"]))


def test_resolve_fills_defaults_and_keeps_overrides():
    cfg = beyond.SCALES["book"].replace(settings=[{"name": "a", "depth": 4, "lr": 0.2}])
    (s,) = beyond.resolve_settings(cfg)
    assert set(s) == set(beyond.SETTING_KEYS)
    assert s["lr"] == 0.2 and s["loss"] == cfg.loss and s["epochs"] == cfg.epochs


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ([], "non-empty list"),
        ([{"name": "a", "depth": 3, "colour": 1}], "unknown keys"),
        ([{"name": "a", "depth": 3}, {"name": "a", "depth": 4}], "used twice"),
        ([{"name": "a"}], "needs a 'depth'"),
        ([{"depth": 3}], "non-empty string 'name'"),
        ([{"name": "a", "depth": 3, "loss": "hinge"}], "loss must be one of"),
        ([{"name": "a", "depth": 1}], "depth must be >= 2"),
        ([{"name": "a", "depth": 3, "lr": 0}], "lr must be > 0"),
        ([{"name": "a", "depth": 3, "alpha": 0.0}], "alpha must be > 0"),
        ([{"name": "a", "depth": 3, "init_scale": 0.0}], "init_scale must be > 0"),
        ([{"name": "a", "depth": 3, "weight_decay": -1e-3}], "weight_decay must be >= 0"),
        ([{"name": "a", "depth": 3, "init": "xavier"}], "init must be one of"),
        ([{"name": "a", "depth": 3, "num_per_class": 1}], "num_per_class must be >= 2"),
        ([{"name": "a", "depth": 3, "epochs": 0}], "epochs must be >= 1"),
    ],
)
def test_resolve_errors(settings, match):
    with pytest.raises(ValueError, match=match):
        beyond.resolve_settings(beyond.SCALES["quick"].replace(settings=settings))


_THEORY = {"init": "orthogonal", "init_scale": 0.3, "loss": "mse", "weight_decay": 0.0,
           "alpha": 1.0}
_FULL_GD = dict(width=50, batch_size=30, momentum=0.0)  # the theory's N = 30, d = h = 50


def test_broken_assumptions_by_hand():
    # the theory's own setting breaks nothing but the data
    assert beyond.broken_assumptions(_THEORY, 30, 50, **_FULL_GD) == ["near-orthogonal data"]
    # chapter 6's orth-L7 (book scale): N = 500, d = 784, width 128, batches of 128,
    # momentum 0.9, alpha = 10; the old function said "(only the data)"
    orth = {**_THEORY, "alpha": 10.0}
    assert beyond.broken_assumptions(orth, 500, 784, width=128, batch_size=128,
                                     momentum=0.9) == [
        "near-orthogonal data", "width >= d", "full-batch GD", "no momentum", "alpha = 1"]
    # the default initialisation is neither small nor balanced, and not minimum-norm either
    default = beyond.broken_assumptions({**_THEORY, "init": "default"}, 30, 50, **_FULL_GD)
    assert default == ["near-orthogonal data", "small init", "balanced", "minimum norm"]
    assert "minimum norm" in beyond.broken_assumptions(
        {**_THEORY, "init": "orthogonal", "init_scale": 1.0}, 30, 50, **_FULL_GD)
    wd = beyond.broken_assumptions({**_THEORY, "weight_decay": 1e-3}, 30, 50, **_FULL_GD)
    assert wd == ["near-orthogonal data", "minimum norm", "no regulariser"]
    ce_wd = beyond.broken_assumptions(
        {**_THEORY, "loss": "cross_entropy", "weight_decay": 1e-3}, 30, 50, **_FULL_GD)
    assert ce_wd == ["near-orthogonal data", "minimum norm", "MSE loss", "no regulariser"]
    # boundaries: N = d and width = d are allowed, batch = N is full-batch
    assert beyond.broken_assumptions(_THEORY, 784, 784, width=784, batch_size=784,
                                     momentum=0.0) == ["near-orthogonal data"]
    assert beyond.broken_assumptions(_THEORY, 785, 784, width=783, batch_size=784,
                                     momentum=0.1) == [
        "near-orthogonal data", "N <= d", "width >= d", "full-batch GD", "no momentum"]
    # init_scale and alpha default to 1 when a setting omits them
    assert beyond.broken_assumptions({"init": "gaussian", "loss": "mse", "weight_decay": 0.0},
                                     30, 50, **_FULL_GD) == [
        "near-orthogonal data", "small init", "balanced", "minimum norm"]


def test_broken_assumptions_of_the_chapter_settings():
    """The table of chapter 6: every setting of the book scale, as the run records it."""
    cfg = beyond.SCALES["book"]
    common = ["near-orthogonal data", "width >= d"]
    default = ["small init", "balanced", "minimum norm"]
    sgd = ["full-batch GD", "no momentum"]
    want = {
        "mse-L5": common + default + sgd, "mse-L7": common + default + sgd,
        "mse-L9": common + default + sgd,
        "ce-L7": common + default + ["MSE loss"] + sgd,
        "wd-L7": common + default + ["no regulariser"] + sgd,
        "orth-L7": common + sgd + ["alpha = 1"],
        "largeN-L7": ["near-orthogonal data", "N <= d", "width >= d"] + default + sgd,
    }
    for s in beyond.resolve_settings(cfg):
        N = 10 * s["num_per_class"]
        got = beyond.broken_assumptions(s, N, 784, width=cfg.width, batch_size=cfg.batch_size,
                                        momentum=cfg.momentum)
        assert got == want[s["name"]], s["name"]


def test_broken_assumptions_errors():
    with pytest.raises(ValueError, match="setting needs 'loss'"):
        beyond.broken_assumptions({"init": "default", "weight_decay": 0.0}, 5, 5, **_FULL_GD)
    with pytest.raises(ValueError, match="init must be one of"):
        beyond.broken_assumptions({**_THEORY, "init": "xavier"}, 5, 5, **_FULL_GD)
    with pytest.raises(ValueError, match="momentum must be >= 0"):
        beyond.broken_assumptions(_THEORY, 5, 5, width=5, batch_size=5, momentum=-0.1)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        beyond.broken_assumptions({**_THEORY, "alpha": 0.0}, 5, 5, **_FULL_GD)
    with pytest.raises(ValueError, match="setting must be a mapping"):
        beyond.broken_assumptions([("init", "default")], 5, 5, **_FULL_GD)
    with pytest.raises(TypeError):  # width, batch size and momentum are required
        beyond.broken_assumptions(_THEORY, 5, 5)


def _naive_broken(init, scale, loss, wd, alpha, N, d, h, B, beta):
    """The docstring's rules, written out one assumption at a time."""
    out = []
    out.append("near-orthogonal data")
    if N > d:
        out.append("N <= d")
    if h < d:
        out.append("width >= d")
    not_small = (init == "default") or (init in ("orthogonal", "gaussian") and scale >= 1.0)
    if not_small:
        out.append("small init")
    if init != "orthogonal":
        out.append("balanced")
    if not_small or loss == "cross_entropy" or wd > 0:
        out.append("minimum norm")
    if loss == "cross_entropy":
        out.append("MSE loss")
    if wd > 0:
        out.append("no regulariser")
    if B < N:
        out.append("full-batch GD")
    if beta > 0:
        out.append("no momentum")
    if alpha != 1:
        out.append("alpha = 1")
    return out


def test_broken_assumptions_every_combination():
    import itertools

    for init, scale, loss, wd, alpha, N, h, B, beta in itertools.product(
            ("default", "orthogonal", "gaussian"), (0.3, 0.99, 1.0, 2.0),
            ("mse", "cross_entropy"), (0.0, 1e-3), (1.0, 10.0), (100, 784, 785), (128, 784),
            (128, 1000), (0.0, 0.9)):
        s = {"init": init, "init_scale": scale, "loss": loss, "weight_decay": wd,
             "alpha": alpha}
        got = beyond.broken_assumptions(s, N, 784, width=h, batch_size=B, momentum=beta)
        assert got == _naive_broken(init, scale, loss, wd, alpha, N, 784, h, B, beta), (s, N)
        assert got == [a for a in beyond.ASSUMPTIONS if a in got]  # in the documented order


# ----------------------------------------------------------------------------------------
# weight_diagnostics against numpy
# ----------------------------------------------------------------------------------------


def _naive_diagnostics(Ws, X, K):
    Ws = [W.astype(np.float64) for W in Ws]
    bal = np.mean([np.linalg.norm(Ws[l + 1].T @ Ws[l + 1] - Ws[l] @ Ws[l].T)
                   / np.linalg.norm(Ws[l]) for l in range(len(Ws) - 1)])
    m = min(min(W.shape) for W in Ws[:-1])
    bulk = np.concatenate([np.linalg.svd(W, compute_uv=False)[K : m - K] for W in Ws[:-1]])
    q = np.quantile(bulk, [0.1, 0.5, 0.9]) if bulk.size else None
    P = Ws[0]
    for W in Ws[1:]:
        P = W @ P
    proj = np.linalg.pinv(X) @ X  # orthogonal projector on the row space of X
    null = np.linalg.norm(P - P @ proj) / np.linalg.norm(P)
    return bal, q, null


@pytest.mark.parametrize(("N", "d"), [(12, 20), (40, 20)])
def test_weight_diagnostics_match_numpy(N, d):
    rng = np.random.default_rng(N)
    Ws = [rng.normal(size=(16, d)), rng.normal(size=(16, 16)), rng.normal(size=(16, 16)),
          rng.normal(size=(3, 16))]
    W0 = [0.1 * W for W in Ws]
    X = rng.normal(size=(N, d))
    got = beyond.weight_diagnostics([torch.tensor(W) for W in Ws], torch.tensor(X), 3,
                                    init_weights=[torch.tensor(W) for W in W0])
    bal, q, null = _naive_diagnostics(Ws, X, 3)
    assert got["balance_error"] == pytest.approx(bal, rel=1e-12)
    assert got["balance_error_init"] == pytest.approx(_naive_diagnostics(W0, X, 3)[0], rel=1e-12)
    assert [got["bulk_q10"], got["bulk_median"], got["bulk_q90"]] == pytest.approx(q, rel=1e-12)
    assert got["null_space_fraction"] == pytest.approx(null, rel=1e-9, abs=1e-12)
    if N >= d:  # X has full column rank: no direction outside the data
        assert got["null_space_fraction"] < 1e-12


def test_weight_diagnostics_of_the_theory_network():
    """The closed-form network: product = W* (no null-space part), bulk = eps, balanced."""
    from pncutils.theory import min_norm_balanced_network

    g = torch.Generator().manual_seed(0)
    X = torch.randn(12, 20, generator=g, dtype=torch.float64)
    y = torch.arange(12) % 3
    Ws = min_norm_balanced_network(X, y, depth=4, eps=0.2, width=24, generator=g)
    d = beyond.weight_diagnostics(Ws, X, 3)
    assert d["null_space_fraction"] < 1e-12
    assert d["bulk_q10"] == pytest.approx(0.2, rel=1e-10)
    assert d["bulk_q90"] == pytest.approx(0.2, rel=1e-10)
    assert d["balance_error_init"] is None


def test_weight_diagnostics_errors():
    W = [torch.eye(4), torch.eye(4)]
    with pytest.raises(ValueError, match="at least two weight matrices"):
        beyond.weight_diagnostics(W[:1], torch.zeros(3, 4), 2)
    with pytest.raises(ValueError, match=r"X must be \(N, 4\)"):
        beyond.weight_diagnostics(W, torch.zeros(3, 5), 2)
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        beyond.weight_diagnostics(W, torch.zeros(3, 4), 0)
    # no bulk beyond the top and bottom K singular values: None
    assert beyond.weight_diagnostics(W, torch.eye(3, 4), 2)["bulk_median"] is None


# ----------------------------------------------------------------------------------------
# weight decay exposure against a simulated optimiser
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("momentum", "rel"), [(0.0, 1e-4), (0.9, 0.02)])
def test_weight_decay_exposure_is_the_log_shrinkage_of_sgd(momentum, rel):
    """Decay alone (a loss with zero gradient), run through torch.optim.SGD step by step."""
    lr, wd, epochs, N, B = 0.01, 1e-3, 100, 1000, 100  # 10 steps per epoch, 1000 steps
    w = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    opt = torch.optim.SGD([w], lr=lr, momentum=momentum, weight_decay=wd)
    for _ in range(epochs * math.ceil(N / B)):
        opt.zero_grad()
        (0.0 * w).sum().backward()
        opt.step()
    shrink = -math.log(float(w.detach()))
    got = beyond.weight_decay_exposure(lr, wd, epochs, N, B, momentum=momentum)
    assert got == pytest.approx(shrink, rel=rel)


def test_weight_decay_exposure_by_hand_and_errors():
    # the paper's CIFAR runs: 400 epochs of ceil(50 000 / 128) = 391 steps
    assert beyond.weight_decay_exposure(1e-4, 1e-4, 400, 50_000, 128) == pytest.approx(
        1e-8 * 400 * 391, rel=1e-12)
    assert beyond.PAPER_CIFAR_TRAINING == dict(lr=1e-4, weight_decay=1e-4, momentum=0.9,
                                               epochs=400, num_train=50_000, batch_size=128)
    assert beyond.weight_decay_exposure(**beyond.PAPER_CIFAR_TRAINING) == pytest.approx(
        1e-8 * 400 * 391 / 0.1, rel=1e-12)
    assert beyond.weight_decay_exposure(0.05, 5e-3, 150, 500, 128, momentum=0.9) == (
        pytest.approx(0.05 * 5e-3 * 600 / 0.1, rel=1e-12))
    with pytest.raises(ValueError, match="momentum must be < 1"):
        beyond.weight_decay_exposure(0.1, 1e-3, 1, 10, 10, momentum=1.0)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        beyond.weight_decay_exposure(0.1, 1e-3, 1, 10, 0)


# ----------------------------------------------------------------------------------------
# layer_metrics against a naive full-batch computation
# ----------------------------------------------------------------------------------------


def _naive_compression(H: np.ndarray, y: np.ndarray) -> float:
    K = int(y.max()) + 1
    M = np.stack([H[y == k].mean(0) for k in range(K)])
    trW = ((H - M[y]) ** 2).sum() / len(y)
    trB = ((M - H.mean(0)) ** 2).sum() / K
    return trW / trB


def test_layer_metrics_stream_equals_the_naive_formula():
    g = torch.Generator().manual_seed(1)
    net = DeepLinearNetwork(12, 10, 3, depth=4, init="default", generator=g).double()
    X = torch.randn(60, 12, generator=g, dtype=torch.float64)
    y = torch.arange(60) % 3
    feats, logits = beyond.layer_metrics(net, X, y, batch_size=7)
    with torch.no_grad():
        Hs = [*net.features(X), net(X)]
    naive = [_naive_compression(H.numpy(), y.numpy()) for H in Hs]
    assert feats.layer.tolist() == [0, 1, 2, 3] and logits.layer.tolist() == [4]
    np.testing.assert_allclose(feats.compression.numpy(), naive[:-1], rtol=1e-10)
    np.testing.assert_allclose(logits.compression.numpy(), naive[-1:], rtol=1e-10)
    ref = metrics.layerwise(Hs, y)
    np.testing.assert_allclose(feats.discrimination.numpy(), ref.discrimination[:-1].numpy(),
                               rtol=1e-10)
    assert net.training  # the training mode is restored


def test_layer_metrics_of_a_hybrid_use_eval_mode_features_and_the_classifier():
    from pncutils.models import HybridNetwork

    g = torch.Generator().manual_seed(2)
    net = HybridNetwork(8, 12, 3, depth=4, num_nonlinear=2, init="default",
                        generator=g).double()
    X = torch.randn(45, 8, generator=g, dtype=torch.float64)
    y = torch.arange(45) % 3
    with torch.no_grad():  # non-trivial BatchNorm running statistics
        net.train()
        for _ in range(3):
            net(X + 1.5)
    feats, logits = beyond.layer_metrics(net, X, y, batch_size=10)
    assert net.training  # restored
    net.eval()
    with torch.no_grad():
        Hs = [*net.features(X), net(X)]
    naive = [_naive_compression(H.numpy(), y.numpy()) for H in Hs]
    np.testing.assert_allclose(feats.compression.numpy(), naive[:-1], rtol=1e-10)
    np.testing.assert_allclose(logits.compression.numpy(), naive[-1:], rtol=1e-10)


def test_layer_metrics_errors():
    net = DeepLinearNetwork(4, 4, 2, depth=2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="features"):
        beyond.layer_metrics(torch.nn.Linear(4, 2), torch.zeros(4, 4), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="shapes"):
        beyond.layer_metrics(net, torch.zeros(4, 4), torch.tensor([0, 1, 0]))


# ----------------------------------------------------------------------------------------
# the experiment, the tables and the figures
# ----------------------------------------------------------------------------------------

_TINY = beyond.SCALES["quick"].replace(
    num_per_class=6, width=16, epochs=3, batch_size=16, lr=0.01,
    settings=[{"name": "mse", "depth": 3},
              {"name": "ce-wd", "depth": 4, "loss": "cross_entropy", "weight_decay": 1e-3},
              {"name": "big", "depth": 3, "num_per_class": 80, "epochs": 1}])


@pytest.fixture(scope="module")
def tiny_results():
    if not _has_fashion_mnist():
        pytest.skip("FashionMNIST not installed")
    return beyond.run_experiment(_TINY, torch.device("cpu"))


@needs_data
def test_run_experiment_structure(tiny_results):
    res = tiny_results
    json.dumps(res, allow_nan=False)
    assert res["input_dim"] == 784 and res["num_classes"] == 10
    assert [r["name"] for r in res["settings"]] == ["mse", "ce-wd", "big"]
    assert [r["num_train"] for r in res["settings"]] == [60, 60, 800]
    assert set(res["input_compression"]) == {"60", "800"}
    for r in res["settings"]:
        L = r["setting"]["depth"]
        assert len(r["layers"]["compression"]) == L and r["layers"]["layer"] == list(range(L))
        assert r["fit"] == beyond.compression_fit(r["layers"]["compression"], 1, _TINY.stall_ratio)
        assert len(r["loss_curve"]["loss"]) == r["epochs_run"] == r["setting"]["epochs"]
        assert 0.0 <= r["train_acc"] <= 1.0
        assert len(r["trace_within_ratios"]) == L - 1
        assert set(r["weights"]) == {"balance_error", "balance_error_init", "bulk_median",
                                     "bulk_q10", "bulk_q90", "null_space_fraction"}
        assert r["weights"]["bulk_median"] is None  # width 16 <= 2K: no bulk
        cfg = _TINY
        assert r["broken_assumptions"] == beyond.broken_assumptions(
            r["setting"], r["num_train"], 784, width=cfg.width, batch_size=cfg.batch_size,
            momentum=cfg.momentum)
    assert "N <= d" in res["settings"][2]["broken_assumptions"]
    assert "MSE loss" in res["settings"][1]["broken_assumptions"]
    assert all("full-batch GD" in r["broken_assumptions"] for r in res["settings"])  # B = 16



@needs_data
def test_run_experiment_measurements_match_an_independent_rerun(tiny_results):
    """Rebuild and retrain the first setting by hand; every recorded number is recomputed."""
    from pncutils.training import TrainConfig, train

    r = tiny_results["settings"][0]
    s = r["setting"]
    X, y = load_dataset("fashion_mnist", "train", num_per_class=6)
    net = DeepLinearNetwork(784, _TINY.width, 10, s["depth"], init=s["init"],
                            init_scale=s["init_scale"],
                            generator=torch.Generator().manual_seed(_TINY.seed))
    train(net, X, y, TrainConfig(lr=s["lr"], epochs=s["epochs"], alpha=s["alpha"],
                                 batch_size=_TINY.batch_size, momentum=_TINY.momentum,
                                 weight_decay=s["weight_decay"], schedule="cosine",
                                 min_lr_ratio=_TINY.min_lr_ratio, loss=s["loss"],
                                 seed=_TINY.seed, progress=False), device="cpu")
    net.eval()
    with torch.no_grad():
        Hs = [H.double().numpy() for H in net.features(X)]
        out = net(X)
    yn = y.numpy()
    C = [_naive_compression(H, yn) for H in Hs]
    trW = []
    for H in Hs:
        M = np.stack([H[yn == k].mean(0) for k in range(10)])
        trW.append(((H - M[yn]) ** 2).sum() / len(yn))
    np.testing.assert_allclose(r["layers"]["compression"], C, rtol=1e-5)
    np.testing.assert_allclose(r["layers"]["trace_within"], trW, rtol=1e-5)
    assert r["logits"]["compression"] == pytest.approx(
        _naive_compression(out.double().numpy(), yn), rel=1e-5)
    assert r["train_acc"] == float((out.argmax(1) == y).double().mean())
    # the weight diagnostics of the same network, by numpy
    bal, _, null = _naive_diagnostics([W.double().numpy() for W in net.weights()],
                                      X.double().numpy(), 10)
    assert r["weights"]["balance_error"] == pytest.approx(bal, rel=1e-5)
    assert r["weights"]["null_space_fraction"] == pytest.approx(null, rel=1e-5)
    # the per-layer ratios of tr Sigma_W, l -> l + 1
    np.testing.assert_allclose(r["trace_within_ratios"],
                               [trW[l + 1] / trW[l] for l in range(len(trW) - 1)], rtol=1e-5)
    # the input's C_0 per sample count: the data's own C, before any network
    assert tiny_results["input_compression"]["60"] == pytest.approx(C[0], rel=1e-6)
    X80, y80 = load_dataset("fashion_mnist", "train", num_per_class=80)
    assert tiny_results["input_compression"]["800"] == pytest.approx(
        _naive_compression(X80.double().numpy(), y80.numpy()), rel=1e-6)


@needs_data
def test_run_experiment_is_reproducible(tiny_results):
    again = beyond.run_experiment(_TINY.replace(settings=_TINY.settings[:1]), "cpu")
    a, b = tiny_results["settings"][0], again["settings"][0]
    assert a["layers"] == b["layers"] and a["loss_curve"] == b["loss_curve"]


def test_run_experiment_rejects_a_dict():
    with pytest.raises(ValueError, match="Config"):
        beyond.run_experiment(dict(_TINY), "cpu")


def _fake_results():
    rows = []
    for name, C in (("geo", [2.0, 1.0, 0.5, 0.25]), ("flat", [2.0, 0.5, 0.5, 0.5])):
        rows.append({
            "name": name,
            "setting": {"depth": 4, "loss": "mse", "weight_decay": 0.0, "init": "default"},
            "num_train": 10, "layers": {"layer": [0, 1, 2, 3], "compression": C,
                                        "trace_within": [4.0, 2.0, 1.0, 0.5]},
            "logits": {"compression": 0.2}, "fit": beyond.compression_fit(C),
            "final_loss": 0.1, "train_acc": 1.0,
        })
    return {"settings": rows}


def test_fit_summary_and_text_table():
    res = _fake_results()
    t = beyond.fit_summary(res)
    assert t.setting.tolist() == [0, 1]
    assert t.rate[0].item() == pytest.approx(0.5) and t.rate[1].item() == pytest.approx(1.0)
    assert t.stall_layer[0].isnan() and t.stall_layer[1].item() == 1
    assert t.trace_within_ratio.tolist() == pytest.approx([0.5, 0.5])
    assert t.compression_logits.tolist() == [0.2, 0.2]
    # a whole result file is accepted too, and a run without a fit gives NaN
    res["settings"][1]["fit"] = None
    t2 = beyond.fit_summary({"experiment": "fig7", "results": res})
    assert t2.r2[1].isnan() and t2.stall_layer[1].isnan()
    text = beyond.format_fit_summary(res)
    assert text.splitlines()[1].startswith("geo") and len(text.splitlines()) == 3
    with pytest.raises(ValueError, match="run_experiment"):
        beyond.fit_summary({"rows": []})
    with pytest.raises(ValueError, match="no settings"):
        beyond.fit_summary({"settings": []})


def test_fit_summary_columns_by_hand():
    layers = {"layer": [0, 1, 2, 3], "compression": [5.0, 3.0, 0.9, 0.85],
              "trace_within": [9.0, 8.0, 2.0, 0.5]}
    row = {"name": "x", "num_train": 7, "layers": layers, "logits": {"compression": 0.4},
           "setting": {"depth": 4, "loss": "cross_entropy", "weight_decay": 1e-3,
                       "init": "gaussian"},
           "fit": beyond.compression_fit(layers["compression"]), "final_loss": 0.3,
           "train_acc": 0.75}
    t = beyond.fit_summary({"settings": [row]})
    got = {c: t[c][0].item() for c in t.columns}
    assert got["compression_input"] == 5.0 and got["compression_first"] == 3.0
    assert got["compression_last"] == 0.85 and got["compression_logits"] == 0.4
    # geometric mean of tr Sigma_W ratios from l = 1: (0.5 / 8) ** (1 / 2)
    assert got["trace_within_ratio"] == pytest.approx(0.25, rel=1e-12)
    assert got["stall_layer"] == 2  # ratios 0.3 (layer 1), 0.944 > 0.9 (layer 2)
    assert (got["depth"], got["num_train"], got["cross_entropy"], got["default_init"]) == (
        4, 7, 1.0, 0.0)
    assert got["weight_decay"] == 1e-3 and got["final_loss"] == 0.3 and got["train_acc"] == 0.75
    slope = np.polyfit([1, 2, 3], np.log([3.0, 0.9, 0.85]), 1)[0]
    assert got["rate"] == pytest.approx(np.exp(slope), rel=1e-12)


def test_plots():
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = _fake_results()
    fig, ax = beyond.plot_compression(res, names=["flat"], logits=False)
    assert len(ax.get_lines()) == 2  # points and fit
    plt.close(fig)
    fig, axes = beyond.plot_fit_quality(res)
    assert [len(a.patches) for a in axes] == [2, 2]
    plt.close(fig)
    with pytest.raises(ValueError, match="no setting"):
        beyond.plot_compression(res, names=["nope"])


def test_plot_floors():
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = _fake_results()
    fig, ax = beyond.plot_compression(res, names=["geo"], floors={"geo": [2, 1, 1, 1, 1]})
    assert len(ax.get_lines()) == 4  # points, fit, logits, floor
    assert list(ax.get_lines()[-1].get_ydata()) == [2, 1, 1, 1, 1]
    plt.close(fig)
    with pytest.raises(ValueError, match="floors given for settings not drawn"):
        beyond.plot_compression(res, names=["geo"], floors={"flat": [1, 1]})


# ----------------------------------------------------------------------------------------
# the seed study
# ----------------------------------------------------------------------------------------


def test_seed_study_scales():
    for scale, cfg in beyond.SEED_STUDY.items():
        s = {x["name"]: x for x in beyond.resolve_settings(cfg)}
        assert cfg.num_seeds >= 3, scale
        assert s["ce-lr0.05"]["lr"] == beyond.SCALES[scale].lr  # the lr of ce-L7
        for loss in ("ce", "mse"):
            assert s[loss]["lr"] == s[f"{loss}-long"]["lr"] == 0.01
            assert s[f"{loss}-long"]["epochs"] == 4 * s[loss]["epochs"]
        assert s["ce"]["epochs"] == beyond.SCALES[scale].epochs
        assert (cfg.width, cfg.num_per_class) == (beyond.SCALES[scale].width,
                                                  beyond.SCALES[scale].num_per_class)
        assert {x["depth"] for x in s.values()} == {7}


def _row(name, seed, C, D, diverged=False, loss="mse"):
    return {"name": name, "seed": seed, "diverged": diverged, "final_loss": 0.1 * (seed + 1),
            "train_acc": 1.0, "setting": {"loss": loss, "lr": 0.01, "epochs": 5},
            "layers": None if diverged else {"compression": C, "discrimination": D}}


def test_seed_study_summary_by_hand():
    runs = [_row("a", 0, [3.0, 2.0, 1.0, 0.5], [0, 0.1, 0.2, 0.4]),
            _row("a", 1, [3.0, 1.0, 0.8, 0.2], [0, 0.3, 0.2, 0.1]),
            _row("b", 0, None, None, diverged=True, loss="cross_entropy"),
            _row("b", 1, [1.0, 1.0, 1.0, 1.0], [0, 0.5, 0.5, 0.5], loss="cross_entropy")]
    s = beyond.seed_study_summary({"names": ["a", "b"], "runs": runs})
    assert s["a"]["compression_ratio"] == pytest.approx([0.25, 0.2])
    assert s["a"]["first_ratio"] == pytest.approx([0.5, 0.8])
    assert s["a"]["last_ratio"] == pytest.approx([0.5, 0.25])
    assert s["a"]["discrimination_first"] == [0.1, 0.3]
    assert s["a"]["discrimination_last"] == [0.4, 0.1]
    assert s["a"]["final_loss"] == pytest.approx([0.1, 0.2])
    assert (s["a"]["num_seeds"], s["a"]["diverged"]) == (2, 0)
    assert (s["b"]["num_seeds"], s["b"]["diverged"], s["b"]["loss"]) == (2, 1, "cross_entropy")
    assert s["b"]["compression_ratio"] == [1.0]  # the diverged seed is left out
    text = beyond.format_seed_study({"names": ["a", "b"], "runs": runs}).splitlines()
    assert len(text) == 3 and text[2].split()[:5] == ["b", "cross_entropy", "0.01", "5", "1/2"]
    assert "0.200-0.250" in text[1]
    with pytest.raises(ValueError, match="run_seed_study"):
        beyond.seed_study_summary({"rows": []})
    with pytest.raises(ValueError, match="no runs of setting 'c'"):
        beyond.seed_study_summary({"names": ["c"], "runs": runs})


@needs_data
def test_run_seed_study_is_run_experiment_per_seed():
    cfg = beyond.SEED_STUDY["quick"].replace(
        num_per_class=6, width=16, epochs=2, batch_size=16, num_seeds=2, seed=3, lr=0.01,
        settings=[{"name": "m", "depth": 3}, {"name": "c", "depth": 3, "loss": "cross_entropy"}])
    st = beyond.run_seed_study(cfg, "cpu")
    assert st["seeds"] == [3, 4] and st["names"] == ["m", "c"]
    assert [(r["name"], r["seed"]) for r in st["runs"]] == [("m", 3), ("c", 3), ("m", 4),
                                                            ("c", 4)]
    again = beyond.run_experiment(cfg.replace(seed=4), "cpu")["settings"][1]
    assert st["runs"][3]["layers"] == again["layers"]
    assert st["runs"][1]["layers"] != st["runs"][3]["layers"]  # the seeds differ
    json.dumps(st, allow_nan=False)


def test_run_seed_study_errors():
    with pytest.raises(ValueError, match="Config"):
        beyond.run_seed_study(dict(beyond.SEED_STUDY["quick"]), "cpu")
    with pytest.raises(ValueError, match="num_seeds"):
        beyond.run_seed_study(_TINY, "cpu")


def test_registered_in_reproduce():
    from pncutils.book.reproduce import EXPERIMENTS

    exp = EXPERIMENTS["fig7"]
    assert exp.fn is beyond.run_experiment and exp.scales is beyond.SCALES


@needs_data
def test_a_diverged_run_is_recorded_not_raised():
    cfg = _TINY.replace(settings=[{"name": "boom", "depth": 3, "lr": 1e6}])
    (r,) = beyond.run_experiment(cfg, "cpu")["settings"]
    assert r["diverged"] and r["layers"] is None and r["fit"] is None
    t = beyond.fit_summary({"settings": [r]})
    assert t.rate[0].isnan() and t.compression_logits[0].isnan()
