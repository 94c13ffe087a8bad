"""Tests of pncutils.book.transfer: class selection, the network, the metrics, the experiment."""

from __future__ import annotations

import dataclasses
import json
import math

import matplotlib
import numpy as np
import pytest
import torch
from _naive import naive_probe
from test_probes import one_direction

from pncutils import probes
from pncutils.book import reproduce, transfer
from pncutils.book.config import Config

matplotlib.use("Agg")


def naive_compression(H: np.ndarray, y: np.ndarray) -> float:
    """tr Sigma_W / tr Sigma_B by loops over the samples (the reference code's definitions)."""
    K = int(y.max()) + 1
    means = [H[y == k].mean(0) for k in range(K)]
    g = np.mean(means, axis=0)
    trW = sum(float(((h - means[k]) ** 2).sum()) for h, k in zip(H, y, strict=True)) / len(H)
    trB = sum(float(((mu - g) ** 2).sum()) for mu in means) / K
    return trW / trB


def naive_discrimination(H: np.ndarray, y: np.ndarray) -> float:
    """1 - the largest cosine between two distinct uncentred class means, by loops."""
    K = int(y.max()) + 1
    means = [H[y == k].mean(0) for k in range(K)]
    cos = [means[a] @ means[b] / np.linalg.norm(means[a]) / np.linalg.norm(means[b])
           for a in range(K) for b in range(K) if a != b]
    return 1.0 - max(cos)


def naive_nc1(H: np.ndarray, y: np.ndarray) -> float:
    """tr(Sigma_W Sigma_B^+) / K with per-sample outer products and numpy's pinv."""
    K = int(y.max()) + 1
    means = [H[y == k].mean(0) for k in range(K)]
    g = np.mean(means, axis=0)
    Sw = sum(np.outer(h - means[k], h - means[k]) for h, k in zip(H, y, strict=True)) / len(H)
    Sb = sum(np.outer(mu - g, mu - g) for mu in means) / K
    return float(np.trace(Sw @ np.linalg.pinv(Sb, rcond=1e-10, hermitian=True))) / K


@pytest.fixture
def toy():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(60, 6, generator=g, dtype=torch.float64)
    y = torch.arange(60) % 3
    X = X + 2.0 * torch.nn.functional.one_hot(y, 6).double()  # separable classes
    net = transfer.build_network(6, 10, 3, backbone_depth=1, head_layers=3, generator=g).double()
    return net, X, y


# ----------------------------------------------------------------------------------------
# select_classes
# ----------------------------------------------------------------------------------------


def test_select_classes_by_hand():
    X = torch.arange(8.0).view(8, 1)
    y = torch.tensor([3, 0, 3, 1, 0, 1, 3, 0])
    Xs, ys = transfer.select_classes(X, y, [3, 0], num_per_class=2)
    # class 3 at rows 0, 2 (label 0); class 0 at rows 1, 4 (label 1); original order kept
    assert Xs.flatten().tolist() == [0.0, 1.0, 2.0, 4.0]
    assert ys.tolist() == [0, 1, 0, 1]
    Xa, ya = transfer.select_classes(X, y, [1, 0])
    assert Xa.flatten().tolist() == [1.0, 3.0, 4.0, 5.0, 7.0]
    assert ya.tolist() == [1, 0, 1, 0, 1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(classes=[0]), "at least two distinct"),
        (dict(classes=[0, 0]), "at least two distinct"),
        (dict(classes=[0, 5]), "class 5 has no samples"),
        (dict(classes=[0, 1], num_per_class=3), "fewer than num_per_class=3"),
        (dict(classes=[0, 1], num_per_class=0), "num_per_class must be >= 1"),
    ],
)
def test_select_classes_errors(kwargs, match):
    X, y = torch.zeros(4, 2), torch.tensor([0, 1, 0, 1])
    with pytest.raises(ValueError, match=match):
        transfer.select_classes(X, y, **kwargs)


def test_select_classes_shape_errors():
    with pytest.raises(ValueError, match="X has 4 rows"):
        transfer.select_classes(torch.zeros(4, 2), torch.tensor([0, 1, 0]), [0, 1])
    with pytest.raises(ValueError, match="2-D"):
        transfer.select_classes(torch.zeros(4), torch.tensor([0, 1, 0, 1]), [0, 1])


# ----------------------------------------------------------------------------------------
# the network and its features
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("m", [1, 2, 5])
def test_build_network_layout(m):
    net = transfer.build_network(8, 12, 4, backbone_depth=2, head_layers=m,
                                 generator=torch.Generator().manual_seed(1))
    assert net.depth == 2 + m and net.num_nonlinear == 2
    # two nonlinear blocks, then m - 1 plain linear hidden layers, then the classifier
    assert all(isinstance(b, torch.nn.Sequential) for b in net.blocks[:2])
    assert all(isinstance(b, torch.nn.Linear) for b in net.blocks[2:])
    assert len(net.blocks) == 1 + m and net.classifier.weight.shape == (4, 12)


def test_build_network_errors():
    with pytest.raises(ValueError, match="head_layers must be >= 1"):
        transfer.build_network(8, 12, 4, backbone_depth=2, head_layers=0)
    with pytest.raises(ValueError, match="backbone_depth must be >= 1"):
        transfer.build_network(8, 12, 4, backbone_depth=0, head_layers=2)


def test_build_network_is_seeded():
    a, b = (transfer.build_network(8, 12, 4, 2, 3, generator=torch.Generator().manual_seed(5))
            for _ in range(2))
    assert all(torch.equal(u, v) for u, v in zip(a.weights(), b.weights(), strict=True))


def test_extract_features_matches_the_model_in_eval_mode(toy):
    net, X, _ = toy
    net.train()
    got = transfer.extract_features(net, X, [0, 1, 3], batch_size=7)
    assert net.training, "the training mode is restored"
    net.eval()
    with torch.no_grad():
        ref = net.features(X)
    for H, i in zip(got, [0, 1, 3], strict=True):
        torch.testing.assert_close(H, ref[i])
    with pytest.raises(ValueError, match="layer 4 requested"):
        transfer.extract_features(net, X, [4])
    with pytest.raises(ValueError, match="layers is empty"):
        transfer.extract_features(net, X, [])


# ----------------------------------------------------------------------------------------
# transfer_metrics against naive computations
# ----------------------------------------------------------------------------------------


def test_transfer_metrics_against_naive_computations(toy):
    net, X, y = toy
    src, tgt, tgt_test = (X[:30], y[:30]), (X[30:48], y[30:48]), (X[48:], y[48:])
    out = transfer.transfer_metrics(net, 1, src, tgt, tgt_test, probe_ridge=1e-2, batch_size=8)
    net.eval()
    with torch.no_grad():
        Fs = [H.numpy() for H in net.features(src[0])]
        Ft, Fe = net.features(tgt[0])[1].numpy(), net.features(tgt_test[0])[1].numpy()
    ys, yt, ye = src[1].numpy(), tgt[1].numpy(), tgt_test[1].numpy()
    assert out.compression_source == pytest.approx(naive_compression(Fs[1], ys), rel=1e-10)
    assert out.compression_target == pytest.approx(naive_compression(Ft, yt), rel=1e-10)
    # C through the head: the extractor's output and the two hidden head layers
    assert out.head_compression == pytest.approx(
        [naive_compression(Fs[i], ys) for i in (1, 2, 3)], rel=1e-10)
    assert out.head_compression[0] == out.compression_source
    assert out.transfer_acc == naive_probe(Ft, yt, Fe, ye, 1e-2)
    assert out.probe_ridge == 1e-2 and out.head_probe_ridge == [1e-2] * 3
    with torch.no_grad():
        At, Ae = net.features(tgt[0]), net.features(tgt_test[0])
    assert out.head_transfer_acc == [naive_probe(At[i].numpy(), yt, Ae[i].numpy(), ye, 1e-2)
                                        for i in (1, 2, 3)]
    assert out.discrimination_source == pytest.approx(naive_discrimination(Fs[1], ys),
                                                         rel=1e-10)
    assert out.discrimination_target == pytest.approx(naive_discrimination(Ft, yt), rel=1e-10)
    assert out.nc1_source == pytest.approx(naive_nc1(Fs[1], ys), rel=1e-8)
    assert out.nc1_target == pytest.approx(naive_nc1(Ft, yt), rel=1e-8)
    geo = naive_geometry(Fs[1], ys, 1.0)
    for key, name in (("feature_norm_sq", "norm_sq"), ("feature_cosine", "mean_cosine"),
                      ("feature_norm_ratio", "norm_ratio"), ("signal_gain", "signal_gain")):
        assert getattr(out, key) == pytest.approx(geo[name], rel=1e-8), key
    scaled = transfer.transfer_metrics(net, 1, src, tgt, tgt_test, probe_ridge=1e-2, alpha=4.0)
    assert scaled.signal_gain == pytest.approx(out.signal_gain / 4.0, rel=1e-10)


# ----------------------------------------------------------------------------------------
# feature_geometry against loops and numpy
# ----------------------------------------------------------------------------------------


def naive_geometry(H: np.ndarray, y: np.ndarray, alpha: float) -> dict[str, float]:
    """r^2, the mean pairwise cosine (a double loop) and s_bar from numpy's pinv and svd."""
    H = np.asarray(H, dtype=np.float64)
    N, K = len(H), int(y.max()) + 1
    cos = [H[i] @ H[j] / np.linalg.norm(H[i]) / np.linalg.norm(H[j])
           for i in range(N) for j in range(N)
           if i != j and np.linalg.norm(H[i]) > 0 and np.linalg.norm(H[j]) > 0]
    Y = np.eye(K)[y]
    W = (np.linalg.pinv(H) @ Y).T / alpha  # (K, D): the minimum-norm least-squares map
    s = np.linalg.svd(W, compute_uv=False)
    s = s[s > s.max() * 1e-10]
    r2 = float((H**2).sum(1).mean())
    return {"norm_sq": r2, "mean_cosine": float(np.mean(cos)), "norm_ratio": alpha**2 * r2 * K / N,
            "signal_gain": float(np.exp(np.log(s).mean()))}


@pytest.mark.parametrize(("N", "D"), [(24, 10), (12, 30)])
def test_feature_geometry_matches_naive(N, D):
    rng = np.random.default_rng(N + D)
    H = np.abs(rng.normal(size=(N, D)))  # nonnegative, like ReLU features
    H[3] = 0.0  # a dead sample: left out of the cosine
    y = np.arange(N) % 3
    got = transfer.feature_geometry(torch.tensor(H), torch.tensor(y), alpha=2.0)
    want = naive_geometry(H, y, 2.0)
    assert isinstance(got, transfer.FeatureGeometry)
    for key in ("norm_sq", "mean_cosine", "norm_ratio", "signal_gain"):
        assert getattr(got, key) == pytest.approx(want[key], rel=1e-9), key
    assert got.num_per_class == N / 3


@pytest.mark.parametrize(("r", "n", "alpha"), [(1.0, 10, 1.0), (5.0, 10, 1.0), (8.0, 4, 3.0)])
def test_feature_geometry_of_orthogonal_rows(r, n, alpha):
    """Orthogonal rows of norm r, n per class: s_bar = sqrt(n) / (alpha r), cosines 0."""
    K, D = 3, 40
    Q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(D, K * n)))
    H = r * Q.T  # (K n, D), orthogonal rows of norm r
    y = np.repeat(np.arange(K), n)
    got = transfer.feature_geometry(torch.tensor(H), torch.tensor(y), alpha=alpha)
    assert got.signal_gain == pytest.approx(math.sqrt(n) / (alpha * r), rel=1e-10)
    assert got.norm_sq == pytest.approx(r**2, rel=1e-12)
    assert abs(got.mean_cosine) < 1e-12
    assert got.norm_ratio == pytest.approx(alpha**2 * r**2 / n, rel=1e-12)
    # the regime of the chapter: the per-layer gain exceeds one exactly when alpha^2 r^2 < n
    assert (got.signal_gain > 1) == (got.norm_ratio < 1)


def test_feature_geometry_errors():
    with pytest.raises(ValueError, match="alpha must be > 0"):
        transfer.feature_geometry(torch.eye(4), torch.tensor([0, 0, 1, 1]), alpha=0.0)
    with pytest.raises(ValueError, match="2-D"):
        transfer.feature_geometry(torch.ones(4), torch.tensor([0, 0, 1, 1]))


def test_transfer_metrics_errors(toy):
    net, X, y = toy
    pair = (X, y)
    with pytest.raises(ValueError, match="backbone_depth must be < the model's depth 4"):
        transfer.transfer_metrics(net, 4, pair, pair, pair)
    with pytest.raises(ValueError, match="target_test must be a pair"):
        transfer.transfer_metrics(net, 1, pair, pair, X)
    with pytest.raises(ValueError, match="probe_ridge must be >= 0"):
        transfer.transfer_metrics(net, 1, pair, pair, pair, probe_ridge=-1.0)


# ----------------------------------------------------------------------------------------
# the cross-validated probe ridge
# ----------------------------------------------------------------------------------------


def test_cv_with_one_ridge_is_the_fixed_ridge(toy, monkeypatch):
    net, X, y = toy
    H, yy = one_direction(50, 8)
    assert probes.cv_ridge(H, yy, ridges=[0.05]) == 0.05
    src, tgt, tgt_test = (X[:30], y[:30]), (X[:45], y[:45]), (X[45:], y[45:])
    fixed = transfer.transfer_metrics(net, 1, src, tgt, tgt_test, probe_ridge=0.05)
    monkeypatch.setattr(probes, "PROBE_RIDGE_GRID", (0.05,))
    cv = transfer.transfer_metrics(net, 1, src, tgt, tgt_test, probe_ridge="cv")
    assert cv == fixed
    assert cv.probe_ridge == 0.05 and cv.head_probe_ridge == [0.05] * 3


def test_cv_sees_no_test_data(toy, monkeypatch):
    net, X, y = toy
    src, tgt = (X[:30], y[:30]), (X[:45], y[:45])
    seen = []
    real = probes.cv_ridge

    def spy(H, labels, **kwargs):
        seen.append((H.shape[0], torch.as_tensor(labels).tolist()))
        return real(H, labels, **kwargs)

    monkeypatch.setattr(probes, "cv_ridge", spy)
    g = torch.Generator().manual_seed(9)
    outs = [transfer.transfer_metrics(net, 1, src, tgt, test, probe_ridge="cv")
            for test in ((X[45:], y[45:]),
                         (torch.randn(7, 6, generator=g, dtype=torch.float64),
                          torch.tensor([2, 2, 0, 1, 0, 2, 1])))]
    # one call per probe (3 head layers), each on the target training set only
    assert seen == [(45, y[:45].tolist())] * 6
    # the chosen ridges do not depend on the test set at all
    assert outs[0].head_probe_ridge == outs[1].head_probe_ridge
    assert set(outs[0].head_probe_ridge) <= set(probes.PROBE_RIDGE_GRID)


@pytest.mark.parametrize("bad", ["auto", "CV", None, True, [1e-3], -1.0, float("inf")])
def test_probe_ridge_errors(toy, bad):
    net, X, y = toy
    with pytest.raises(ValueError, match="probe_ridge must be"):
        probes.probe_accuracy(X, y, X, y, probe_ridge=bad)
    with pytest.raises(ValueError, match="probe_ridge must be"):
        transfer.transfer_metrics(net, 1, (X, y), (X, y), (X, y), probe_ridge=bad)


# ----------------------------------------------------------------------------------------
# the experiment
# ----------------------------------------------------------------------------------------

TINY = transfer.SCALES["quick"].replace(
    head_layers=[1, 3], num_seeds=2, epochs=2, width=16, num_per_class=30,
    target_train_per_class=20, target_test_per_class=20, source_test_per_class=20,
    batch_size=32)


@pytest.fixture(scope="module")
def tiny_result():
    return transfer.run(TINY, "cpu")


def _json_round_trip(result):
    """What a result file holds and gives back (NaN written as null)."""
    return type(result).from_dict(json.loads(json.dumps(reproduce._jsonable(result),
                                                        allow_nan=False)))


def _runs(r, m):
    return [p for p in r.per_seed if p.head_layers == m]


def test_run_experiment_shapes_and_summaries(tiny_result):
    r = tiny_result
    assert isinstance(r, transfer.TransferResult)
    assert _json_round_trip(r) == r  # the result file reads back as the same result
    assert r.seeds == [0, 1]
    assert (r.num_source_train, r.num_target_train, r.num_target_test) == (150, 100, 100)
    assert [(p.head_layers, p.seed) for p in r.per_seed] == [(1, 0), (1, 1), (3, 0), (3, 1)]
    assert r.head_layers == [1, 3]
    for h in r.summary:
        m = h.head_layers
        vals = [p.transfer_acc for p in _runs(r, m)]
        assert h.transfer_acc.mean == pytest.approx(np.mean(vals))
        assert h.transfer_acc.std == pytest.approx(np.std(vals, ddof=1))
        rows = np.array([p.head_compression for p in _runs(r, m)])
        assert rows.shape == (2, m)
        assert h.head_compression_mean == pytest.approx(np.exp(np.log(rows).mean(0)).tolist())
        accs = np.array([p.head_transfer_acc for p in _runs(r, m)])
        assert h.head_transfer_acc_mean == pytest.approx(accs.mean(0).tolist())
        assert (accs[:, 0] == [p.transfer_acc for p in _runs(r, m)]).all()
    assert 0.2 < r.raw_pixel_transfer_acc <= 1.0
    # every probe's ridge is cross-validated (the default) and recorded
    assert TINY.probe_ridge == "cv"
    assert r.raw_pixel_probe_ridge in probes.PROBE_RIDGE_GRID
    for p in r.per_seed:
        assert p.probe_ridge == p.head_probe_ridge[0] in probes.PROBE_RIDGE_GRID
        assert len(p.head_probe_ridge) == p.head_layers
    w = r.wall_time_s
    assert w.total >= w.train > 0 and w.data > 0
    assert w.data + w.train + w.analysis == pytest.approx(w.total, rel=1e-12)


def test_run_experiment_summary_is_the_seed_statistics_of_every_metric(tiny_result):
    r = tiny_result
    for h in r.summary:
        recs = _runs(r, h.head_layers)
        for key in ("transfer_acc", "compression_source", "compression_target",
                    "discrimination_source", "discrimination_target", "nc1_source",
                    "nc1_target", "feature_norm_sq", "feature_cosine", "feature_norm_ratio",
                    "signal_gain", "source_test_acc", "final_loss"):
            vals = np.array([getattr(p, key) for p in recs])
            assert getattr(h, key).mean == pytest.approx(vals.mean(), rel=1e-12), key
            assert getattr(h, key).std == pytest.approx(vals.std(ddof=1), rel=1e-9, abs=1e-15)
        rows = np.array([p.head_compression for p in recs])
        assert h.head_compression_std == pytest.approx(rows.std(0, ddof=1).tolist(), rel=1e-9)
    assert set(transfer.METRICS) == {
        "transfer_acc", "compression_source", "compression_target", "discrimination_source",
        "discrimination_target", "nc1_source", "nc1_target", "feature_norm_sq",
        "feature_cosine", "feature_norm_ratio", "signal_gain", "source_test_acc", "final_loss"}


def test_run_experiment_summary_by_hand_with_given_metrics(monkeypatch):
    """The summary of hand-picked per-seed records (head accuracies that differ by layer)."""
    calls = []

    def fake(model, b, source, target_train, target_test, probe_ridge, batch_size, alpha):
        m = model.depth - b
        calls.append(m)
        i = len(calls)  # records 1, 2 (m = 1, seeds 0, 1), then 3, 4 (m = 3)
        return transfer.TransferMetrics(
            transfer_acc=0.1 * i, probe_ridge=1.0, compression_source=2.0**i,
            compression_target=1.0 * i, discrimination_source=0.5, discrimination_target=0.5,
            nc1_source=1.0, nc1_target=1.0, feature_norm_sq=4.0 * i, feature_cosine=0.3,
            feature_norm_ratio=0.1, signal_gain=0.5,
            head_compression=[2.0**i * 0.5**j for j in range(m)],
            head_transfer_acc=[0.1 * i + 0.01 * j for j in range(m)],
            head_probe_ridge=[1.0] * m)

    monkeypatch.setattr(transfer, "transfer_metrics", fake)
    res = transfer.run(TINY.replace(epochs=1), "cpu")
    assert calls == [1, 1, 3, 3]
    t = transfer.summary_table(res, transfer.METRICS)
    assert t.transfer_acc_mean.tolist() == pytest.approx([0.15, 0.35])
    assert t.transfer_acc_std.tolist() == pytest.approx([0.1 / math.sqrt(2)] * 2)
    assert t.compression_target_mean.tolist() == pytest.approx([1.5, 3.5])
    assert t.feature_norm_sq_mean.tolist() == pytest.approx([6.0, 14.0])
    assert t.signal_gain_std.tolist() == [0.0, 0.0]
    s = res.summary
    # geometric mean over the seeds, per head layer: sqrt(2 * 4) and sqrt(8 * 16) * 0.5^j
    assert s[0].head_compression_mean == pytest.approx([math.sqrt(8)])
    assert s[1].head_compression_mean == pytest.approx([math.sqrt(128) * 0.5**j
                                                        for j in range(3)])
    # sample standard deviation of the pairs (2, 4) and (8, 16) * 0.5^j
    assert s[0].head_compression_std == pytest.approx([2 / math.sqrt(2)])
    assert s[1].head_compression_std == pytest.approx([8 / math.sqrt(2) * 0.5**j
                                                       for j in range(3)])
    assert s[0].head_transfer_acc_mean == pytest.approx([0.15])
    assert s[1].head_transfer_acc_mean == pytest.approx([0.35, 0.36, 0.37])
    # the per-seed records keep the metrics and add the training
    assert res.per_seed[2].compression_source == 8.0 and res.per_seed[2].head_layers == 3


def _select(X, y, classes, n):
    """select_classes by a loop over the samples: the first n of each class, relabelled."""
    keep, labels, seen = [], [], dict.fromkeys(classes, 0)
    for i, c in enumerate(y.tolist()):
        if c in seen and seen[c] < n:
            seen[c] += 1
            keep.append(i)
            labels.append(classes.index(c))
    return X[keep], torch.tensor(labels)


def test_task_data_is_select_classes_of_the_first_images():
    from pncutils.data import load_dataset

    d = transfer.task_data(TINY)
    X, y = load_dataset("fashion_mnist", "train", num_per_class=30)
    Xt, yt = load_dataset("fashion_mnist", "test", num_per_class=20)
    want = (_select(X, y, TINY.source_classes, 30), _select(X, y, TINY.target_classes, 20),
            _select(Xt, yt, TINY.target_classes, 20), _select(Xt, yt, TINY.source_classes, 20))
    for got, ref in zip(d, want, strict=True):
        assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1])


def test_run_experiment_data_and_accuracies_match_an_independent_rerun(tiny_result):
    """The data splits, the raw-pixel probe and the (m, seed) = (1, 0) network by hand."""
    from pncutils.data import load_dataset
    from pncutils.training import TrainConfig, train

    r = tiny_result
    X, y = load_dataset("fashion_mnist", "train", num_per_class=30)
    Xt, yt = load_dataset("fashion_mnist", "test", num_per_class=20)
    src = _select(X, y, TINY.source_classes, 30)
    tgt = _select(X, y, TINY.target_classes, 20)
    tgt_test = _select(Xt, yt, TINY.target_classes, 20)
    src_test = _select(Xt, yt, TINY.source_classes, 20)
    assert r.num_source_test == 100 and set(src_test[1].tolist()) == set(range(5))
    # the raw-pixel reference: the probe on the target pixels, with the recorded ridge
    raw = naive_probe(tgt[0].double().numpy(), tgt[1].numpy(), tgt_test[0].double().numpy(),
                      tgt_test[1].numpy(), r.raw_pixel_probe_ridge)
    assert r.raw_pixel_transfer_acc == pytest.approx(raw, abs=0.011)  # one sample of 100
    # the geometry of the network's own inputs: the source training pixels
    geo = naive_geometry(src[0].double().numpy(), src[1].numpy(), TINY.alpha)
    for key in ("norm_sq", "mean_cosine", "norm_ratio", "signal_gain"):
        assert getattr(r.raw_pixel_geometry, key) == pytest.approx(geo[key], rel=1e-6), key
    # the first network, rebuilt and retrained with the seed of its record
    net = transfer.build_network(784, TINY.width, 5, TINY.backbone_depth, 1,
                                 generator=torch.Generator().manual_seed(0))
    train(net, *src, TrainConfig(lr=TINY.lr, epochs=TINY.epochs, alpha=TINY.alpha,
                                 batch_size=TINY.batch_size, momentum=TINY.momentum,
                                 weight_decay=TINY.weight_decay, schedule="cosine",
                                 min_lr_ratio=TINY.min_lr_ratio, loss=TINY.loss, seed=0,
                                 progress=False), device="cpu")
    net.eval()
    with torch.no_grad():
        acc = float((net(src_test[0]).argmax(1) == src_test[1]).double().mean())
        H = net.features(src[0])[TINY.backbone_depth].double().numpy()
    rec = next(p for p in r.per_seed if p.head_layers == 1 and p.seed == 0)
    assert rec.source_test_acc == acc
    assert rec.compression_source == pytest.approx(naive_compression(H, src[1].numpy()),
                                                   rel=1e-6)


def test_run_experiment_is_deterministic_on_the_cpu(tiny_result):
    again = transfer.run(TINY.replace(head_layers=[3], num_seeds=1, seed=1), "cpu")
    first = next(p for p in tiny_result.per_seed if p.head_layers == 3 and p.seed == 1)
    second = again.per_seed[0]
    for key in ("transfer_acc", "compression_source", "head_compression", "final_loss"):
        assert getattr(first, key) == getattr(second, key)


def test_run_experiment_rejects_a_plain_dict():
    with pytest.raises(ValueError, match="must be a pncutils.book.config.Config"):
        transfer.run(dict(TINY), "cpu")


def test_scales_and_registry():
    assert set(transfer.SCALES) == {"quick", "book", "paper"}
    for cfg in transfer.SCALES.values():
        assert isinstance(cfg, Config) and "seed" in cfg
        assert set(cfg.source_classes).isdisjoint(cfg.target_classes)
    assert transfer.SCALES["paper"].num_per_class is None  # the full split
    assert all(cfg.probe_ridge == "cv" for cfg in transfer.SCALES.values())
    exp = reproduce.EXPERIMENTS["transfer"]
    assert exp.scales is transfer.SCALES and exp.fn is transfer.run
    assert exp.result_type is transfer.TransferResult


# ----------------------------------------------------------------------------------------
# tables and figures
# ----------------------------------------------------------------------------------------


def test_tables_and_figures_of_a_live_run_and_its_result_file(tiny_result):
    for res in (tiny_result, _json_round_trip(tiny_result)):
        t = transfer.summary_table(res)
        assert t.head_layers.tolist() == [1.0, 3.0]
        assert t.columns[:3] == ("head_layers", "transfer_acc_mean", "transfer_acc_std")
        fig, (ax_acc, ax_c) = transfer.plot_transfer(res, label="live")
        assert ax_c.get_yscale() == "log" and "transfer accuracy" in ax_acc.get_ylabel()
        fig2, ax = transfer.plot_head_compression(res)
        assert [len(line.get_xdata()) for line in ax.get_lines()] == [1, 3]
        h = transfer.head_compression_table(res)
        assert h.head_layers.tolist() == [1, 3, 3, 3]
        assert h.layer_after_extractor.tolist() == [0, 0, 1, 2]
        assert h.compression.tolist() == [*res.summary[0].head_compression_mean,
                                          *res.summary[1].head_compression_mean]
    with pytest.raises(ValueError, match="TransferResult"):
        transfer.summary_table({"results": {}})
    with pytest.raises(ValueError, match="TransferResult"):
        transfer.plot_transfer([1, 2])
    with pytest.raises(ValueError, match=r"unknown metric\(s\) \['colour'\]"):
        transfer.summary_table(tiny_result, ["colour"])


def _with_head_compression(res, curves):
    """`res` with its summary's head_compression_mean replaced by `curves` (one per m)."""
    summary = [dataclasses.replace(h, head_layers=len(C), head_compression_mean=C)
               for h, C in zip([res.summary[0]] * len(curves), curves, strict=True)]
    return dataclasses.replace(res, summary=summary)


def test_geometric_head_rate_by_hand(tiny_result):
    res = _with_head_compression(tiny_result, [[3.0], [1.0, 0.1], [8.0, 4.0, 2.0, 1.0]])
    rates = transfer.geometric_head_rate(res)
    assert rates[0] is None
    assert rates[1] == pytest.approx(0.1) and rates[2] == pytest.approx(0.5)
    # the mean ratio of fits, (C_last / C_first)^(1 / (m - 1))
    for h, rate in zip(tiny_result.summary, transfer.geometric_head_rate(tiny_result),
                       strict=True):
        C = h.head_compression_mean
        assert rate is None if len(C) < 2 else rate == pytest.approx(
            (C[-1] / C[0]) ** (1 / (len(C) - 1)), rel=1e-12)


def test_paper_reference_values():
    f8 = transfer.PAPER_F8
    assert f8["head_layers"] == [1, 2, 3, 4, 5]
    assert all(np.diff(f8["transfer_acc"]) > 0) and all(np.diff(f8["compression"]) > 0)


def test_committed_result_files_read_back_typed():
    """The committed quick and book files are TransferResults of their registered Configs."""
    for scale in ("quick", "book"):
        rec = reproduce.load_or_run("transfer", scale, recompute=False)
        if rec is None:
            pytest.skip(f"transfer-{scale}.json is not committed or out of date")
        assert isinstance(rec.result, transfer.TransferResult)
        assert rec.result.head_layers == list(rec.config.head_layers)
        assert len(rec.result.per_seed) == len(rec.config.head_layers) * rec.config.num_seeds
        t = transfer.summary_table(rec.result, transfer.METRICS)
        assert len(t) == len(rec.config.head_layers) and not t.transfer_acc_mean.isnan().any()
