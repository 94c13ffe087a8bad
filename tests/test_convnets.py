"""Tests of pncutils.book.convnets: configs, rows, fits, the midpoint test, centred D, the
experiment's typed result and its JSON round trip, the hybrid reference, the figures."""

from __future__ import annotations

import json
import math

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

import pncutils as pnc
from pncutils.book import convnets
from pncutils.book.config import Config
from pncutils.models import SmallCNN, SmallResNet
from pncutils.utils import to_plain

matplotlib.use("Agg")

#: A run small enough for a unit test (about a second): two stages of two blocks, one epoch.
TINY = convnets.SCALES["quick"].replace(num_per_class=6, test_per_class=2, widths=[2, 4],
                                        blocks=2, epochs=1, batch_size=20, midpoint_samples=16)


def json_round_trip(result):
    """Write as a result file does (NaN as null), read back as the typed result."""
    text = json.dumps(to_plain(result.to_dict(), nan_as_none=True), allow_nan=False)
    return type(result).from_dict(json.loads(text))


@pytest.fixture(scope="module")
def tiny():
    return convnets.run(TINY, "cpu")


# ----------------------------------------------------------------------------------------
# configs
# ----------------------------------------------------------------------------------------


def test_scales_are_valid_and_seeded():
    assert set(convnets.SCALES) == {"quick", "book", "paper"}
    for cfg in convnets.SCALES.values():
        assert convnets.check_config(cfg) is cfg and "seed" in cfg
    # the book scale trains more than the quick one, the paper scale on every image
    q, b, p = (convnets.SCALES[s] for s in ("quick", "book", "paper"))
    assert q.num_per_class * q.epochs < b.num_per_class * b.epochs
    assert p.num_per_class is None


@pytest.mark.parametrize("change, match", [
    ({"architectures": ["vgg"]}, "architectures: each must be one of"),
    ({"architectures": []}, "architectures must be a non-empty list"),
    ({"losses": ["hinge"]}, "losses: each must be one of"),
    ({"losses": ["mse", "mse"]}, "losses has duplicates"),
    ({"widths": [8]}, "widths must name at least two stages"),
    ({"widths": [8, 0]}, "widths entry must be >= 1"),
    ({"widths": [8, 16], "blocks": 1}, "the fits need two deep blocks"),
    ({"blocks": 0}, "blocks must be >= 1"),
    ({"epochs": 0}, "epochs must be >= 1"),
    ({"lr": 0.0}, "lr must be > 0"),
    ({"num_per_class": 1}, "num_per_class must be >= 2"),
    ({"num_seeds": 0}, "num_seeds must be >= 1"),
    ({"dataset": "imagenet"}, "dataset must be one of"),
])
def test_bad_configs_raise_clear_errors(change, match):
    with pytest.raises(ValueError, match=match):
        convnets.check_config(convnets.SCALES["quick"].replace(**change))
    with pytest.raises(ValueError, match=match):
        convnets.run(convnets.SCALES["quick"].replace(**change), "cpu")


def test_config_type_and_missing_parameters_raise():
    with pytest.raises(ValueError, match="must be a Config"):
        convnets.check_config(dict(convnets.SCALES["quick"]))
    with pytest.raises(ValueError, match=r"lacks \['widths'\]"):
        convnets.check_config(Config(**{k: v for k, v in convnets.SCALES["quick"].items()
                                        if k != "widths"}))


# ----------------------------------------------------------------------------------------
# rows and fits
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [SmallCNN, SmallResNet])
def test_row_names_follow_the_modules(cls):
    net = cls(widths=(2, 3, 4), blocks=2, generator=torch.Generator().manual_seed(0))
    names = convnets.row_names(net)
    assert names == ["input", "stem", "stages.0.0", "stages.0.1", "stages.1.0", "stages.1.1",
                     "stages.2.0", "stages.2.1", "pool", "output"]
    assert convnets.deep_rows(names) == [4, 5, 6, 7]
    with pytest.raises(ValueError, match="has no 'stem'"):
        convnets.row_names(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="at least two deep blocks"):
        convnets.deep_rows(["input", "stem", "stages.0.0", "stages.1.0", "pool", "output"])


def test_compression_fits_on_hand_made_tables():
    rows = [3, 4, 5, 6]
    # exactly geometric over the deep rows: rate 0.5, and no floor (C_L far below)
    C = [2.0, 3.0, 1.0, 8.0, 4.0, 2.0, 1.0, 1.0, 1e-6]
    geo, floor = convnets.compression_fits(C, rows, 1e-6)
    assert geo.kind == "geometric" and geo.layers == tuple(rows)
    assert geo.rate == pytest.approx(0.5) and geo.r2 == pytest.approx(1.0)
    assert floor.rate == pytest.approx(0.5, rel=1e-5)
    # geometric towards a floor 0.3: the floor fit is exact, the plain one is not
    C = [2.0, 3.0, 1.0, *(0.3 + 4.0 * 0.25**k for k in range(4)), 0.7, 0.3]
    geo, floor = convnets.compression_fits(C, rows, 0.3)
    assert floor.kind == "floor" and floor.floor == 0.3
    assert floor.rate == pytest.approx(0.25) and floor.r2 == pytest.approx(1.0)
    assert geo.r2 < 0.99 and geo.rate > floor.rate
    # too few rows above the floor: no floor fit, the geometric fit stays
    geo, floor = convnets.compression_fits([1.0, 1.0, 1.0, 2.0, 1.01, 1.0, 1.0], rows[:3], 1.0)
    assert floor is None and geo.r2 <= 1.0
    with pytest.raises(ValueError, match="outside the"):
        convnets.compression_fits([1.0, 0.5], [0, 5], 0.1)


# ----------------------------------------------------------------------------------------
# the midpoint test and centred discrimination
# ----------------------------------------------------------------------------------------


def test_midpoint_nonlinearity_is_zero_for_affine_maps_and_not_for_relu():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 3, 6, 6, generator=g)
    affine = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(2),
                           nn.Flatten(), nn.Linear(16, 5))
    affine.train()
    with torch.no_grad():  # BatchNorm with non-trivial running statistics (affine in eval)
        affine[1].running_mean.uniform_(-1, 1, generator=g)
        affine[1].running_var.uniform_(0.5, 2, generator=g)
    assert convnets.midpoint_nonlinearity(affine, x, g) < 1e-10
    assert affine.training  # put back in the mode it was in
    relu = convnets.midpoint_nonlinearity(nn.ReLU(), torch.randn(200_000, 1, generator=g), g)
    # closed form for a ReLU on standard Gaussian inputs: the same value by quadrature
    t = np.linspace(-8, 8, 801)
    a, b = np.meshgrid(t, t)
    w = np.exp(-(a**2 + b**2) / 2)
    ra, rb, rm = np.maximum(a, 0), np.maximum(b, 0), np.maximum((a + b) / 2, 0)
    num = (w * (rm - (ra + rb) / 2) ** 2).sum()
    den = (w * ((ra - rb) / 2) ** 2).sum()
    assert relu == pytest.approx(num / den, abs=0.01)
    assert 0.25 < relu < 0.29


def test_midpoint_nonlinearity_errors():
    with pytest.raises(ValueError, match="at least two samples"):
        convnets.midpoint_nonlinearity(nn.ReLU(), torch.ones(1, 3))
    with pytest.raises(ValueError, match="same output"):
        convnets.midpoint_nonlinearity(nn.ReLU(), -torch.rand(5, 3))  # all outputs zero
    with pytest.raises(ValueError, match="must be an nn.Module"):
        convnets.midpoint_nonlinearity(torch.relu, torch.ones(3, 3))


def test_block_nonlinearity_rows():
    g = torch.Generator().manual_seed(0)
    net = SmallResNet(widths=(2, 4), blocks=2, generator=g)
    net.train()
    names = convnets.row_names(net)
    nu = convnets.block_nonlinearity(net, torch.randn(64, 784, generator=g), names, g)
    assert len(nu) == len(names) and math.isnan(nu[0])
    assert nu[names.index("pool")] < 1e-10 and nu[-1] < 1e-10  # the pool and the head
    assert all(v > 0.01 for v in nu[1:-2])  # blocks with ReLUs
    assert net.training


def test_class_mean_geometry_matches_the_metrics_on_pooled_features():
    g = torch.Generator().manual_seed(0)
    net = SmallCNN(widths=(3, 4), blocks=2, generator=g)
    X, y = torch.randn(50, 784, generator=g), torch.arange(50) % 5
    names = convnets.row_names(net)
    got = convnets.class_mean_geometry(net, X, y, names, batch_size=16)
    assert got.columns == ("discrimination_centred", "mean_spread", "mean_angle")
    assert len(got) == len(names)
    net.eval()
    with torch.no_grad():
        stem = net.stem(X.view(-1, 1, 28, 28))
        block = net.stages[0][0](stem)
        logits = net(X)
    feats = (X, stem.mean((2, 3)), block.mean((2, 3)))
    expected = [pnc.metrics.discrimination(H, y, centered=True) for H in feats]
    np.testing.assert_allclose(got.discrimination_centred[:3], expected, rtol=1e-6)
    assert float(got.discrimination_centred[-1]) == pytest.approx(
        pnc.metrics.discrimination(logits, y, centered=True))
    for H, r, theta in zip(feats, got.mean_spread[:3].tolist(), got.mean_angle[:3].tolist(),
                           strict=True):
        H = H.double().numpy()
        M = np.stack([H[y.numpy() == k].mean(0) for k in range(5)])
        mu = M.mean(0)
        assert r == pytest.approx(np.linalg.norm(M - mu, axis=1).max() / np.linalg.norm(mu))
        cos = M @ mu / np.linalg.norm(M, axis=1) / np.linalg.norm(mu)
        assert theta == pytest.approx(np.degrees(np.arccos(np.clip(cos, -1, 1)).max()))
    # the bounds D <= 1 - cos(2 theta) <= 2 r^2 of the uncentred D (theta <= 90, r < 1)
    D = [pnc.metrics.discrimination(H, y) for H in feats]
    for d, r, theta in zip(D, got.mean_spread[:3].tolist(), got.mean_angle[:3].tolist(),
                           strict=True):
        assert theta > 90 or d <= 1 - math.cos(2 * math.radians(theta)) + 1e-12
        assert r >= 1 or 1 - math.cos(2 * math.radians(theta)) <= 2 * r**2 + 1e-12


# ----------------------------------------------------------------------------------------
# the experiment
# ----------------------------------------------------------------------------------------


def test_tiny_run_structure(tiny):
    res = tiny
    assert [(r.architecture, r.loss) for r in res.runs] == [
        ("cnn", "mse"), ("cnn", "cross_entropy"), ("resnet", "mse"), ("resnet", "cross_entropy")]
    assert res.num_train == 60 and res.num_test == 20 and res.dataset == "fashion_mnist"
    assert set(res.summary) == {"cnn/mse", "cnn/cross_entropy", "resnet/mse",
                                "resnet/cross_entropy"}
    for r in res.runs:
        assert r.names == ["input", "stem", "stages.0.0", "stages.0.1", "stages.1.0",
                           "stages.1.1", "pool", "output"]
        assert r.deep == [4, 5] and r.deep_fit.layers == (4, 5)
        assert r.pooling[0] == "none" and r.pooling[-1] == "none"
        assert r.pooling[1] == "avg (2x28x28 -> 2)" and r.pooling[4] == "avg (4x14x14 -> 4)"
        assert r.table.dim.tolist() == [784, 2, 2, 2, 4, 4, 4, 10]
        assert r.flat.dim.tolist() == [784, 2 * 784, 2 * 784, 2 * 784, 4 * 196, 4 * 196, 4, 10]
        assert "nc1" not in r.flat.columns and "mean_angle" in r.table.columns
        C, Cf = r.table.compression, r.flat.compression
        # the pool row repeats the last block's averaged row; flattening the input changes
        # nothing; after the pool the two measurements agree
        assert C[r.row("pool")] == pytest.approx(float(C[r.last_block]), rel=1e-9)
        assert Cf[0] == pytest.approx(float(C[0])) and Cf[-2:].tolist() == pytest.approx(
            C[-2:].tolist())
        assert r.pool_factor == pytest.approx(float(Cf[r.last_block] / C[r.row("pool")]))
        assert math.isnan(r.nonlinearity[0]) and r.nonlinearity[-2] < 1e-10
        assert r.nonlinearity[-1] < 1e-10
        assert r.total_compression == pytest.approx(float(C[1] / C[-1]))
        assert 0 <= r.train_acc <= 1 and 0 <= r.test_acc <= 1
        assert len(r.loss_curve.loss) == TINY.epochs
    # the same initial weights for the two losses of an architecture: the same input row
    assert res.runs[0].table.compression[0] == res.runs[1].table.compression[0]
    assert res.network("resnet", "mse") is res.runs[2]
    with pytest.raises(ValueError, match="no run with seed 7"):
        res.networks(seed=7)


def test_run_is_reproducible_on_the_cpu(tiny):
    again = convnets.run(TINY.replace(architectures=["cnn"], losses=["mse"]), "cpu")
    assert again.runs[0].table == tiny.runs[0].table
    assert again.runs[0].nonlinearity == tiny.runs[0].nonlinearity


def test_result_round_trips_through_json(tiny):
    for res in (tiny, convnets._example()):
        back = json_round_trip(res)
        assert isinstance(back, convnets.ConvResult)
        for r, b in zip(res.runs, back.runs, strict=True):
            assert b.table == r.table and b.flat == r.flat
            assert b.deep_fit == r.deep_fit and b.floor_fit == r.floor_fit
            assert b.names == r.names and b.pooling == r.pooling
            assert math.isnan(b.nonlinearity[0]) and b.nonlinearity[1:] == r.nonlinearity[1:]
            assert b.loss_curve == r.loss_curve
        for key, s in res.summary.items():
            assert back.summary[key].rate == s.rate
            assert isinstance(back.summary[key].floor_rate.mean, float)
        assert back.to_dict().keys() == res.to_dict().keys()


# ----------------------------------------------------------------------------------------
# the hybrid of chapter 5
# ----------------------------------------------------------------------------------------


def _hybrid_results(C, C_out, m=3):
    return {"networks": {"hybrid": {
        "num_nonlinear": m, "logits": {"compression": C_out},
        "layers": {"layer": list(range(len(C))), "compression": C}}}}


def test_hybrid_reference_from_hand_made_results():
    C = [5.0, 4.0, 3.0, *(0.1 + 2.0 * 0.5**k for k in range(5))]
    ref = convnets._hybrid_from_results(_hybrid_results(C, 0.1), "book")
    assert ref.layers == [3, 4, 5, 6, 7] and ref.compression == C[3:]
    assert ref.floor_fit.rate == pytest.approx(0.5) and ref.fit.rate > 0.5
    assert json_round_trip(ref) == ref
    with pytest.raises(ValueError, match="no linear-layer compression"):
        convnets._hybrid_from_results({"networks": {}}, "book")


def test_hybrid_reference_reads_the_committed_files(tmp_path):
    for scale in ("quick", "book"):
        ref = convnets.hybrid_reference(scale)
        if ref is None:
            pytest.skip(f"no committed hybrid-{scale}.json")
        assert ref.layers == [3, 4, 5, 6, 7] and ref.C_out > 0
        assert ref.compression[-1] >= ref.C_out  # the last linear layer above its floor
    assert convnets.hybrid_reference("book", results_dir=tmp_path) is None
    with pytest.raises(ValueError, match="scale must be one of"):
        convnets.hybrid_reference("huge")


# ----------------------------------------------------------------------------------------
# text and figures
# ----------------------------------------------------------------------------------------


def test_format_summary_and_figures(tiny):
    import matplotlib.pyplot as plt

    ref = convnets._hybrid_from_results(_hybrid_results([5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.3,
                                                         0.25], 0.2), "quick")
    text = convnets.format_summary(tiny, ref)
    assert len(text.splitlines()) == 1 + len(tiny.runs) + 1 and "hybrid (ch5)" in text
    for plot in (convnets.plot_compression, convnets.plot_pooling,
                 convnets.plot_discrimination):
        fig, axes = plot(tiny)
        assert len(axes) == 2 and axes[0].get_yscale() in ("log", "linear")
        plt.close(fig)
    fig, ax = convnets.plot_rates(tiny, ref)
    assert len(ax.lines) == len(tiny.runs) + 1
    plt.close(fig)
    for plot in (convnets.plot_compression, convnets.format_summary):
        with pytest.raises(ValueError, match="must be a ConvResult"):
            plot({"runs": []})
