"""Tests of pncutils.book.beyond: the real-data experiment of chapter 7 (F7)."""

from __future__ import annotations

import dataclasses
import json
import math

import matplotlib
import numpy as np
import pytest
import torch

from pncutils import fits, metrics
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
# how beyond uses pncutils.fits: geometric(C, start=1) and stall_layer(stall_ratio), against
# naive numpy computations (the fits module has its own tests in test_fits.py)
# ----------------------------------------------------------------------------------------


def _fit(C, start=1, stall_ratio=0.9):
    """What run records for a setting: the fit from `start` on and its stalling layer."""
    f = fits.geometric(C, start=start)
    return f, f.stall_layer(stall_ratio)


def test_fit_of_an_exact_geometric_sequence():
    C = [3.0] + [2.0 * 0.3**l for l in range(1, 7)]
    f, stall = _fit(C)
    assert f.layers == (1, 2, 3, 4, 5, 6)
    assert f.rate == pytest.approx(0.3, rel=1e-12)
    assert f.r2 == pytest.approx(1.0, abs=1e-12)
    assert f.max_deviation == pytest.approx(0.0, abs=1e-12)
    assert stall is None
    assert f.total_ratio == pytest.approx(0.3**5, rel=1e-12)
    assert list(f.ratios) == pytest.approx([0.3] * 5, rel=1e-12)


@pytest.mark.parametrize("start", [0, 1, 2])
def test_fit_matches_numpy_polyfit(start):
    rng = np.random.default_rng(0)
    C = np.exp(-0.7 * np.arange(8) + rng.normal(0, 0.3, 8))
    f, _ = _fit(C, start=start)
    x, z = np.arange(start, 8), np.log(C[start:])
    slope, intercept = np.polyfit(x, z, 1)
    pred = slope * x + intercept
    r2 = 1 - ((z - pred) ** 2).sum() / ((z - z.mean()) ** 2).sum()
    assert f.slope == pytest.approx(slope, rel=1e-10)
    assert f.intercept == pytest.approx(intercept, rel=1e-10)
    assert f.r2 == pytest.approx(r2, rel=1e-10)
    assert f.rate == pytest.approx(math.exp(slope), rel=1e-10)
    assert f.max_deviation == pytest.approx(np.abs(z - pred).max() / np.log(10), rel=1e-10)


def test_stall_layer_and_a_floor():
    # geometric by 0.5 down to a floor: the first ratio above 0.9 is at layer 3 (0.1 -> 0.1)
    C = [2.0, 0.8, 0.4, 0.2, 0.2, 0.2]
    f, stall = _fit(C)
    assert stall == 3
    assert f.r2 < 0.95 and f.max_deviation > 0.05
    assert _fit(C, stall_ratio=1.5)[1] is None


def _naive_fit(C, start, stall_ratio):
    """The ratios, the first stall and the total ratio by loops over the layers."""
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
    assert _fit(C, stall_ratio=0.5)[1] is None
    assert _fit(C, stall_ratio=0.25)[1] == 1
    assert _fit(C, start=2, stall_ratio=0.125)[1] == 2


@pytest.mark.parametrize("seed", range(6))
def test_ratios_stall_and_total_ratio_match_loops(seed):
    rng = np.random.default_rng(seed)
    P = int(rng.integers(4, 9))
    C = np.exp(np.cumsum(rng.normal(-0.5, 0.6, P))).tolist()
    start = int(rng.integers(0, P - 2))
    stall_ratio = float(rng.uniform(0.3, 1.2))
    f, stall = _fit(C, start=start, stall_ratio=stall_ratio)
    ratios, naive_stall, total = _naive_fit(C, start, stall_ratio)
    assert f.layers == tuple(range(start, P))
    assert list(f.ratios) == pytest.approx(ratios, rel=1e-12)
    assert stall == naive_stall
    assert f.total_ratio == pytest.approx(total, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(C=[1.0, 0.5]), "at least 3 values"),
        (dict(C=[1.0, 0.5, 0.0]), "positive and finite"),
        (dict(C=[1.0, 0.5, float("nan")]), "positive and finite"),
        (dict(C=[1.0, 0.5, 0.2], start=-1), "start must be >= 0"),
        (dict(C=[1.0, 0.5, 0.2], stall_ratio=0.0), "ratio must be > 0"),
    ],
)
def test_fit_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _fit(**kwargs)


# ----------------------------------------------------------------------------------------
# settings and assumptions
# ----------------------------------------------------------------------------------------


def test_every_scale_has_a_seed_the_paper_depths_and_resolves():
    assert set(beyond.SCALES) == {"quick", "book", "paper"}
    for name, cfg in beyond.SCALES.items():
        assert isinstance(cfg, Config) and "seed" in cfg, name
        settings = beyond.resolve_settings(cfg)
        assert {s.depth for s in settings} >= {5, 7, 9}
        assert {s.loss for s in settings} == {"mse", "cross_entropy"}
        assert any(s.weight_decay > 0 for s in settings)
        assert any(s.init == "default" for s in settings)
        json.dumps(cfg.to_dict())
    # the paper scale trains on the full training set (num_per_class=None: all 60 000)
    assert any(s.num_per_class is None for s in beyond.resolve_settings(beyond.SCALES["paper"]))


def test_resolve_fills_defaults_and_keeps_overrides():
    cfg = beyond.SCALES["book"].replace(settings=[{"name": "a", "depth": 4, "lr": 0.2}])
    (s,) = beyond.resolve_settings(cfg)
    assert isinstance(s, beyond.Setting) and tuple(s.to_dict()) == beyond.SETTING_KEYS
    assert s.lr == 0.2 and s.loss == cfg.loss and s.epochs == cfg.epochs
    assert beyond.Setting.from_dict(json.loads(json.dumps(s.to_dict()))) == s


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
    # chapter 7's orth-L7 (book scale): N = 500, d = 784, width 128, batches of 128,
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
    """The table of chapter 7: every setting of the book scale, as the run records it."""
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
        N = 10 * s.num_per_class
        got = beyond.broken_assumptions(s, N, 784, width=cfg.width, batch_size=cfg.batch_size,
                                        momentum=cfg.momentum)
        assert got == want[s.name], s.name
        # a Setting and its dict name the same assumptions
        assert got == beyond.broken_assumptions(s.to_dict(), N, 784, width=cfg.width,
                                                batch_size=cfg.batch_size, momentum=cfg.momentum)


def test_broken_assumptions_errors():
    with pytest.raises(ValueError, match="setting needs 'loss'"):
        beyond.broken_assumptions({"init": "default", "weight_decay": 0.0}, 5, 5, **_FULL_GD)
    with pytest.raises(ValueError, match="init must be one of"):
        beyond.broken_assumptions({**_THEORY, "init": "xavier"}, 5, 5, **_FULL_GD)
    with pytest.raises(ValueError, match="momentum must be >= 0"):
        beyond.broken_assumptions(_THEORY, 5, 5, width=5, batch_size=5, momentum=-0.1)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        beyond.broken_assumptions({**_THEORY, "alpha": 0.0}, 5, 5, **_FULL_GD)
    with pytest.raises(ValueError, match="setting must be a Setting or a mapping"):
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
    assert got.balance_error == pytest.approx(bal, rel=1e-12)
    assert got.balance_error_init == pytest.approx(_naive_diagnostics(W0, X, 3)[0], rel=1e-12)
    assert [got.bulk_q10, got.bulk_median, got.bulk_q90] == pytest.approx(q, rel=1e-12)
    assert got.null_space_fraction == pytest.approx(null, rel=1e-9, abs=1e-12)
    if N >= d:  # X has full column rank: no direction outside the data
        assert got.null_space_fraction < 1e-12


def test_weight_diagnostics_of_the_theory_network():
    """The closed-form network: product = W* (no null-space part), bulk = eps, balanced."""
    from pncutils.theory import min_norm_balanced_network

    g = torch.Generator().manual_seed(0)
    X = torch.randn(12, 20, generator=g, dtype=torch.float64)
    y = torch.arange(12) % 3
    Ws = min_norm_balanced_network(X, y, depth=4, eps=0.2, width=24, generator=g)
    d = beyond.weight_diagnostics(Ws, X, 3)
    assert d.null_space_fraction < 1e-12
    assert d.bulk_q10 == pytest.approx(0.2, rel=1e-10)
    assert d.bulk_q90 == pytest.approx(0.2, rel=1e-10)
    assert d.balance_error_init is None


def test_weight_diagnostics_errors():
    W = [torch.eye(4), torch.eye(4)]
    with pytest.raises(ValueError, match="at least two weight matrices"):
        beyond.weight_diagnostics(W[:1], torch.zeros(3, 4), 2)
    with pytest.raises(ValueError, match=r"X must be \(N, 4\)"):
        beyond.weight_diagnostics(W, torch.zeros(3, 5), 2)
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        beyond.weight_diagnostics(W, torch.zeros(3, 4), 0)
    # no bulk beyond the top and bottom K singular values: None
    assert beyond.weight_diagnostics(W, torch.eye(3, 4), 2).bulk_median is None


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


def _old_layer_metrics(model, X, y, batch_size):
    """layer_metrics before it used pncutils.measure: its own loop over model.features."""
    p = next(model.parameters())
    model.eval()
    stats = None
    with torch.no_grad():
        for a in range(0, X.shape[0], batch_size):
            feats = model.features(X[a : a + batch_size].to(p.device, p.dtype))
            feats = [*feats, model.classifier(feats[-1])]
            if stats is None:
                stats = metrics.LayerwiseStats(len(feats), model.num_classes, nc1=False)
            stats.update(feats, y[a : a + batch_size])
    model.train()
    return stats.compute()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("num_nonlinear", [0, 2])
def test_layer_metrics_through_measure_equal_the_old_loop(dtype, num_nonlinear):
    from pncutils.models import HybridNetwork

    g = torch.Generator().manual_seed(3)
    net = HybridNetwork(10, 12, 4, depth=5, num_nonlinear=num_nonlinear, init="default",
                        generator=g).to(dtype)
    X = torch.randn(70, 10, generator=g, dtype=torch.float64)  # cast to the model's dtype
    y = torch.arange(70) % 4
    with torch.no_grad():  # BatchNorm running statistics away from their initial values
        net(X.to(dtype) + 1.0)
    feats, logits = beyond.layer_metrics(net, X, y, batch_size=16)
    old = _old_layer_metrics(net, X, y, 16)
    for c in feats.columns:
        torch.testing.assert_close(torch.cat([feats[c], logits[c]]), old[c], rtol=1e-10,
                                   atol=0.0)
    assert "nc1" not in feats.columns and old.nc1.isnan().all()


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
    return beyond.run(_TINY, torch.device("cpu"))


def _json_round_trip(result):
    """What a result file holds and gives back (NaN written as null)."""
    from pncutils.book.reproduce import _jsonable

    return type(result).from_dict(json.loads(json.dumps(_jsonable(result), allow_nan=False)))


@needs_data
def test_run_experiment_structure(tiny_results):
    res = tiny_results
    assert isinstance(res, beyond.Fig7Result)
    assert _json_round_trip(res) == res  # the result file reads back as the same result
    assert res.input_dim == 784 and res.num_classes == 10
    assert res.names == ["mse", "ce-wd", "big"]
    assert [r.num_train for r in res.settings] == [60, 60, 800]
    assert set(res.input_compression) == {"60", "800"}
    for r in res.settings:
        L = r.setting.depth
        assert len(r.compression) == L and r.layers.layer.tolist() == list(range(L))
        assert r.logits.layer.tolist() == [L] and r.compression_logits > 0
        # the fit is fits.geometric over the hidden layers, stalling at the Config's ratio
        assert r.fit == fits.geometric(r.layers.compression, start=1)
        assert r.stall_layer == r.fit.stall_layer(_TINY.stall_ratio)
        assert len(r.loss_curve.loss) == r.epochs_run == r.setting.epochs
        assert 0.0 <= r.train_acc <= 1.0
        assert len(r.trace_within_ratios) == L - 1
        assert isinstance(r.weights, beyond.WeightDiagnostics)
        assert r.weights.bulk_median is None  # width 16 <= 2K: no bulk
        cfg = _TINY
        assert r.broken_assumptions == beyond.broken_assumptions(
            r.setting, r.num_train, 784, width=cfg.width, batch_size=cfg.batch_size,
            momentum=cfg.momentum)
    assert "N <= d" in res.settings[2].broken_assumptions
    assert "MSE loss" in res.settings[1].broken_assumptions
    assert all("full-batch GD" in r.broken_assumptions for r in res.settings)  # B = 16
    assert res.setting("big") is res.settings[2]
    with pytest.raises(ValueError, match="no setting 'nope'"):
        res.setting("nope")


@needs_data
def test_stall_ratio_of_the_config_is_used():
    cfg = _TINY.replace(settings=_TINY.settings[:1], stall_ratio=1e-6)  # every ratio stalls
    (r,) = beyond.run(cfg, "cpu").settings
    assert r.stall_layer == 1 == r.fit.stall_layer(1e-6)


@needs_data
def test_run_experiment_measurements_match_an_independent_rerun(tiny_results):
    """Rebuild and retrain the first setting by hand; every recorded number is recomputed."""
    from pncutils.training import TrainConfig, train

    r = tiny_results.settings[0]
    s = r.setting
    X, y = load_dataset("fashion_mnist", "train", num_per_class=6)
    net = DeepLinearNetwork(784, _TINY.width, 10, s.depth, init=s.init,
                            init_scale=s.init_scale,
                            generator=torch.Generator().manual_seed(_TINY.seed))
    train(net, X, y, TrainConfig(lr=s.lr, epochs=s.epochs, alpha=s.alpha,
                                 batch_size=_TINY.batch_size, momentum=_TINY.momentum,
                                 weight_decay=s.weight_decay, schedule="cosine",
                                 min_lr_ratio=_TINY.min_lr_ratio, loss=s.loss,
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
    np.testing.assert_allclose(r.compression, C, rtol=1e-5)
    np.testing.assert_allclose(r.layers.trace_within.numpy(), trW, rtol=1e-5)
    assert r.compression_logits == pytest.approx(
        _naive_compression(out.double().numpy(), yn), rel=1e-5)
    assert r.train_acc == float((out.argmax(1) == y).double().mean())
    # the weight diagnostics of the same network, by numpy
    bal, _, null = _naive_diagnostics([W.double().numpy() for W in net.weights()],
                                      X.double().numpy(), 10)
    assert r.weights.balance_error == pytest.approx(bal, rel=1e-5)
    assert r.weights.null_space_fraction == pytest.approx(null, rel=1e-5)
    # the per-layer ratios of tr Sigma_W, l -> l + 1
    np.testing.assert_allclose(r.trace_within_ratios,
                               [trW[l + 1] / trW[l] for l in range(len(trW) - 1)], rtol=1e-5)
    # the input's C_0 per sample count: the data's own C, before any network
    assert tiny_results.input_compression["60"] == pytest.approx(C[0], rel=1e-6)
    X80, y80 = load_dataset("fashion_mnist", "train", num_per_class=80)
    assert tiny_results.input_compression["800"] == pytest.approx(
        _naive_compression(X80.double().numpy(), y80.numpy()), rel=1e-6)


@needs_data
def test_run_experiment_is_reproducible(tiny_results):
    again = beyond.run(_TINY.replace(settings=_TINY.settings[:1]), "cpu")
    a, b = tiny_results.settings[0], again.settings[0]
    assert a.layers == b.layers and a.loss_curve == b.loss_curve


def test_run_experiment_rejects_a_dict():
    with pytest.raises(ValueError, match="Config"):
        beyond.run(dict(_TINY), "cpu")


def _fake_row(name, C, tw=(4.0, 2.0, 1.0, 0.5), logits=0.2, **setting):
    s = beyond.resolve_settings(_TINY.replace(settings=[{"name": name, "depth": len(C),
                                                         **setting}]))[0]
    f = fits.geometric(C, start=1)
    return beyond.SettingResult(
        name, s, 10, final_loss=0.1, train_acc=1.0,
        layers=metrics.LayerTable({"layer": list(range(len(C))), "compression": C,
                                   "trace_within": list(tw)}),
        logits=metrics.LayerTable({"layer": [len(C)], "compression": [logits]}),
        fit=f, stall_layer=f.stall_layer(0.9))


def _fake_results():
    rows = [_fake_row("geo", [2.0, 1.0, 0.5, 0.25]), _fake_row("flat", [2.0, 0.5, 0.5, 0.5])]
    return beyond.Fig7Result(rows, 784, 10)


def test_fit_summary_and_text_table():
    res = _fake_results()
    t = beyond.fit_summary(res)
    assert t.setting.tolist() == [0, 1]
    assert t.rate[0].item() == pytest.approx(0.5) and t.rate[1].item() == pytest.approx(1.0)
    assert t.stall_layer[0].isnan() and t.stall_layer[1].item() == 1
    assert t.trace_within_ratio.tolist() == pytest.approx([0.5, 0.5])
    assert t.compression_logits.tolist() == [0.2, 0.2]
    # a run without a fit gives NaN; the typed result of a result file gives the same table
    res = dataclasses.replace(res, settings=[
        res.settings[0], dataclasses.replace(res.settings[1], fit=None, stall_layer=None)])
    t2 = beyond.fit_summary(_json_round_trip(res))
    assert t2.r2[1].isnan() and t2.stall_layer[1].isnan()
    assert t2.rate[0] == t.rate[0]
    text = beyond.format_fit_summary(res)
    assert text.splitlines()[1].startswith("geo") and len(text.splitlines()) == 3
    with pytest.raises(ValueError, match="Fig7Result"):
        beyond.fit_summary({"settings": []})
    with pytest.raises(ValueError, match="no settings"):
        beyond.fit_summary(beyond.Fig7Result([], 784, 10))


def test_fit_summary_columns_by_hand():
    row = _fake_row("x", [5.0, 3.0, 0.9, 0.85], tw=[9.0, 8.0, 2.0, 0.5], logits=0.4,
                    loss="cross_entropy", weight_decay=1e-3, init="gaussian")
    row = dataclasses.replace(row, num_train=7, final_loss=0.3, train_acc=0.75)
    t = beyond.fit_summary(beyond.Fig7Result([row], 784, 10))
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


def test_compression_columns_by_hand():
    res = beyond.Fig7Result([_fake_row("a", [2.0, 1.0, 0.5], tw=[1.0, 1.0, 1.0]),
                             _fake_row("b", [3.0, 1.0, 0.5, 0.2], logits=0.1)], 784, 10)
    t = beyond.compression_columns(res)
    assert t.layer.tolist() == [0, 1, 2, 3, 4]
    assert t.a.tolist()[:4] == [2.0, 1.0, 0.5, 0.2] and t.a[4].isnan()
    assert t.b.tolist() == [3.0, 1.0, 0.5, 0.2, 0.1]
    assert beyond.compression_columns(res, ["b"]).columns == ("layer", "b")


def test_plots():
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = _fake_results()
    fig, ax = beyond.plot_compression(res, names=["flat"], logits=False)
    assert len(ax.get_lines()) == 2  # points and fit
    # the fit line is the fit's prediction at the fitted layers
    xs, ys = ax.get_lines()[1].get_data()
    assert list(xs) == [1, 2, 3] and ys == pytest.approx([0.5, 0.5, 0.5])
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
        s = {x.name: x for x in beyond.resolve_settings(cfg)}
        assert cfg.num_seeds >= 3, scale
        assert s["ce-lr0.05"].lr == beyond.SCALES[scale].lr  # the lr of ce-L7
        for loss in ("ce", "mse"):
            assert s[loss].lr == s[f"{loss}-long"].lr == 0.01
            assert s[f"{loss}-long"].epochs == 4 * s[loss].epochs
        assert s["ce"].epochs == beyond.SCALES[scale].epochs
        assert (cfg.width, cfg.num_per_class) == (beyond.SCALES[scale].width,
                                                  beyond.SCALES[scale].num_per_class)
        assert {x.depth for x in s.values()} == {7}


def _row(name, seed, C, D, diverged=False, loss="mse"):
    s = beyond.resolve_settings(_TINY.replace(settings=[
        {"name": name, "depth": 4, "loss": loss, "lr": 0.01, "epochs": 5}]))[0]
    layers = None if diverged else metrics.LayerTable({"compression": C, "discrimination": D})
    return beyond.SettingResult(name, s, 10, diverged=diverged,
                                final_loss=None if diverged else 0.1 * (seed + 1),
                                train_acc=None if diverged else 1.0, layers=layers)


def _study(runs):
    """A SeedStudyResult of (seed, row) pairs, one Fig7Result per seed."""
    seeds = sorted({seed for seed, _ in runs})
    per_seed = [beyond.Fig7Result([r for s, r in runs if s == seed], 784, 10) for seed in seeds]
    return beyond.SeedStudyResult(seeds, ["a", "b"], per_seed)


def test_seed_study_summary_by_hand():
    runs = [(0, _row("a", 0, [3.0, 2.0, 1.0, 0.5], [0, 0.1, 0.2, 0.4])),
            (1, _row("a", 1, [3.0, 1.0, 0.8, 0.2], [0, 0.3, 0.2, 0.1])),
            (0, _row("b", 0, None, None, diverged=True, loss="cross_entropy")),
            (1, _row("b", 1, [1.0, 1.0, 1.0, 1.0], [0, 0.5, 0.5, 0.5], loss="cross_entropy"))]
    study = _study(runs)
    s = beyond.seed_study_summary(study)
    assert isinstance(s["a"], beyond.SeedSummary) and list(s) == ["a", "b"]
    assert s["a"].compression_ratio == pytest.approx([0.25, 0.2])
    assert s["a"].first_ratio == pytest.approx([0.5, 0.8])
    assert s["a"].last_ratio == pytest.approx([0.5, 0.25])
    assert s["a"].discrimination_first == pytest.approx([0.1, 0.3])
    assert s["a"].discrimination_last == pytest.approx([0.4, 0.1])
    assert s["a"].final_loss == pytest.approx([0.1, 0.2])
    assert (s["a"].num_seeds, s["a"].diverged) == (2, 0)
    assert (s["b"].num_seeds, s["b"].diverged, s["b"].loss) == (2, 1, "cross_entropy")
    assert s["b"].compression_ratio == [1.0]  # the diverged seed is left out
    text = beyond.format_seed_study(study).splitlines()
    assert len(text) == 3 and text[2].split()[:5] == ["b", "cross_entropy", "0.01", "5", "1/2"]
    assert "0.200-0.250" in text[1]
    with pytest.raises(ValueError, match="run_seed_study"):
        beyond.seed_study_summary({"runs": []})
    with pytest.raises(ValueError, match="no runs of setting 'c'"):
        beyond.seed_study_summary(dataclasses.replace(study, names=["c"]))


@needs_data
def test_run_seed_study_is_run_experiment_per_seed():
    cfg = beyond.SEED_STUDY["quick"].replace(
        num_per_class=6, width=16, epochs=2, batch_size=16, num_seeds=2, seed=3, lr=0.01,
        settings=[{"name": "m", "depth": 3}, {"name": "c", "depth": 3, "loss": "cross_entropy"}])
    st = beyond.run_seed_study(cfg, "cpu")
    assert st.seeds == [3, 4] and st.names == ["m", "c"]
    assert [[r.name for r in res.settings] for res in st.runs] == [["m", "c"], ["m", "c"]]
    again = beyond.run(cfg.replace(seed=4), "cpu").settings[1]
    assert st.runs[1].settings[1].layers == again.layers
    assert st.runs[0].settings[1].layers != st.runs[1].settings[1].layers  # the seeds differ
    assert _json_round_trip(st) == st


def test_run_seed_study_errors():
    with pytest.raises(ValueError, match="Config"):
        beyond.run_seed_study(dict(beyond.SEED_STUDY["quick"]), "cpu")
    with pytest.raises(ValueError, match="num_seeds"):
        beyond.run_seed_study(_TINY, "cpu")


def test_registered_in_reproduce():
    from pncutils.book.reproduce import EXPERIMENTS

    exp = EXPERIMENTS["fig7"]
    assert exp.fn is beyond.run and exp.scales is beyond.SCALES
    assert exp.result_type is beyond.Fig7Result


@needs_data
def test_a_diverged_run_is_recorded_not_raised():
    cfg = _TINY.replace(settings=[{"name": "boom", "depth": 3, "lr": 1e6}])
    (r,) = beyond.run(cfg, "cpu").settings
    assert r.diverged and r.layers is None and r.fit is None and r.final_loss is None
    t = beyond.fit_summary(beyond.Fig7Result([r], 784, 10))
    assert t.rate[0].isnan() and t.compression_logits[0].isnan()
    assert beyond.compression_columns(beyond.Fig7Result([r], 784, 10)).boom.isnan().all()


@needs_data
def test_committed_result_files_read_back_typed():
    """The committed quick and book files are Fig7Results of their registered Configs."""
    from pncutils.book import reproduce

    for scale in ("quick", "book"):
        rec = reproduce.load_or_run("fig7", scale, recompute=False)
        if rec is None:
            pytest.skip(f"fig7-{scale}.json is not committed")
        assert isinstance(rec.result, beyond.Fig7Result)
        assert rec.result.names == [s.name for s in beyond.resolve_settings(rec.config)]
        t = beyond.fit_summary(rec.result)
        assert len(t) == len(rec.result.settings) and not t.rate.isnan().any()
