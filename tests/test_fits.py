"""Tests of pncutils.fits against numpy's least squares and hand-worked cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from pncutils import fits, metrics


def naive_line(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    ss_tot = ((y - y.mean()) ** 2).sum()
    return slope, intercept, 1.0 - (resid**2).sum() / ss_tot, np.abs(resid).max()


@pytest.mark.parametrize("seed", range(3))
def test_line_linear_and_geometric_match_numpy(seed):
    rng = np.random.default_rng(seed)
    x = np.arange(2, 9)
    y = 0.3 * x + 0.1 * rng.standard_normal(7)
    slope, intercept, r2, dev = naive_line(x, y)
    f = fits.line(x, y)
    assert (f.slope, f.intercept, f.r2, f.max_deviation) == pytest.approx(
        (slope, intercept, r2, dev), rel=1e-10)
    assert f.kind == "linear" and f.layers == tuple(range(2, 9)) and math.isnan(f.rate)
    lin = fits.linear(np.r_[9.0, y], start=1, layers=np.arange(1, 9))
    assert lin.slope == pytest.approx(slope, rel=1e-10) and lin.layers == f.layers
    C = np.exp(-0.7 * x + 0.05 * rng.standard_normal(7))
    g = fits.geometric(C, layers=x)
    slope, intercept, r2, dev = naive_line(x, np.log(C))
    assert (g.slope, g.intercept, g.r2) == pytest.approx((slope, intercept, r2), rel=1e-10)
    assert g.rate == pytest.approx(math.exp(slope), rel=1e-12)
    assert g.max_deviation == pytest.approx(dev / math.log(10), rel=1e-10)
    assert g.ratios == pytest.approx((C[1:] / C[:-1]).tolist(), rel=1e-12)
    assert g.total_ratio == pytest.approx(C[-1] / C[0], rel=1e-12)
    assert g.floor == 0.0 and g.kind == "geometric"


def test_geometric_stall_layer_by_hand():
    g = fits.geometric([1.0, 0.5, 0.25, 0.24, 0.01])
    assert g.stall_layer(0.9) == 2 and g.stall_layer(0.99) is None
    assert fits.geometric([4.0, 1.0, 0.5, 0.1], start=1).stall_layer(0.4) == 1
    with pytest.raises(ValueError, match="ratio must be > 0"):
        g.stall_layer(0.0)


def test_mean_ratio_and_the_first_names():
    assert fits.mean_ratio([8.0, 2.0, 0.5]) == pytest.approx(0.25, rel=1e-15)
    assert metrics.geometric_rate is fits.mean_ratio and metrics.linear_fit is fits.line
    assert metrics.LinearFit is fits.Fit


@pytest.mark.parametrize("fit", [fits.line([0, 1, 2], [1.0, 2.5, 2.9]),
                                 fits.geometric([3.0, 1.0, 0.4]),
                                 fits.floor([2.0, 1.1, 0.7, 0.56], 0.5)])
def test_fit_round_trips_through_json(fit):
    back = fits.Fit.from_dict(json.loads(json.dumps(fit.to_dict(), allow_nan=True)))
    assert back.kind == fit.kind and back.layers == fit.layers and back.ratios == fit.ratios
    for name in ("slope", "intercept", "r2", "floor", "max_deviation"):
        a, b = getattr(back, name), getattr(fit, name)
        assert (math.isnan(a) and math.isnan(b)) or a == b
    none = {**fit.to_dict(), "floor": None, "max_deviation": None}  # JSON nulls
    assert math.isnan(fits.Fit.from_dict(none).floor)


def test_predict_inverts_the_fit():
    f = fits.floor([0.5 + 8.0 * 0.25**l for l in range(5)], 0.5)
    assert f.predict(torch.arange(5)).tolist() == pytest.approx(
        [0.5 + 8.0 * 0.25**l for l in range(5)], rel=1e-12)
    assert fits.line([0, 1], [1.0, 3.0]).predict([2]).tolist() == pytest.approx([5.0])


@pytest.mark.parametrize(("call", "match"), [
    (lambda: fits.line([0, 1], [1.0]), "x has 2 values but y has 1"),
    (lambda: fits.line([1], [1.0]), "at least two points"),
    (lambda: fits.line([1, 1], [1.0, 2.0]), "all equal"),
    (lambda: fits.line([0, 1], [1.0, float("nan")]), "finite"),
    (lambda: fits.geometric([1.0, -1.0]), "positive and finite"),
    (lambda: fits.geometric([1.0, 0.5], start=1), "at least 3 values"),
    (lambda: fits.linear([1.0, 0.5, 0.2], layers=[0, 1]), "layers has 2"),
    (lambda: fits.mean_ratio([1.0]), "at least two values"),
    (lambda: fits.mean_ratio([1.0, 0.0]), "positive and finite"),
])
def test_fit_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ----------------------------------------------------------------------------------------
# floor_fit: geometric decay towards a floor
# ----------------------------------------------------------------------------------------


def test_floor_fit_recovers_rate_and_floor_exactly():
    layers = [3, 4, 5, 6, 7]
    C = [0.004 + 0.2 * 0.3 ** (l - 3) for l in layers]
    f = fits.floor(C, 0.004, layers)
    assert f.layers == tuple(layers)
    assert f.rate == pytest.approx(0.3, rel=1e-12) and f.r2 == pytest.approx(1.0, abs=1e-12)
    assert f.ratios == pytest.approx([0.3] * 4, rel=1e-12)
    assert f.predict(layers).tolist() == pytest.approx(C, rel=1e-12)
    # the plain fit of log C_l (floor 0) describes the same values worse
    plain = fits.floor(C, 0.0, layers)
    assert plain.r2 < 0.99 and plain.rate > 0.3


def test_floor_fit_matches_a_naive_least_squares():
    rng = np.random.default_rng(0)
    C = 0.01 + np.exp(-0.9 * np.arange(6) + 0.1 * rng.standard_normal(6))
    f = fits.floor(C, 0.01)
    slope, intercept = np.polyfit(np.arange(6), np.log(C - 0.01), 1)
    resid = np.log(C - 0.01) - (slope * np.arange(6) + intercept)
    r2 = 1 - (resid**2).sum() / ((np.log(C - 0.01) - np.log(C - 0.01).mean()) ** 2).sum()
    assert f.slope == pytest.approx(slope, rel=1e-10)
    assert f.intercept == pytest.approx(intercept, rel=1e-10)
    assert f.r2 == pytest.approx(r2, rel=1e-10)


def test_floor_fit_leaves_out_the_layers_on_the_floor():
    C = [1.0, 0.3, 0.1, 0.0505, 0.0499]  # the last two within 2% of the floor 0.05
    assert fits.floor(C, 0.03).layers == (0, 1, 2, 3, 4)
    assert fits.floor(C, 0.05).layers == (0, 1, 2)
    assert fits.floor(C, 0.05, layers=np.arange(3, 8)).layers == (3, 4, 5)
    with pytest.raises(ValueError, match="only 2 layer"):
        fits.floor([1.0, 0.3, 0.0505, 0.0499], 0.05)


def test_floor_fit_errors():
    with pytest.raises(ValueError, match="floor"):
        fits.floor([1.0, 0.5, 0.2], -0.1)
    with pytest.raises(ValueError, match="layers has 2"):
        fits.floor([1.0, 0.5, 0.2], 0.0, layers=[1, 2])
    with pytest.raises(ValueError, match="a fit needs three"):
        fits.floor([1.0, 0.5], 0.0)


def test_floor_fit_on_the_committed_hybrid_runs():
    """The book's claim on its own files: C_l - C_L decays geometrically (R^2 > 0.9)."""
    from pathlib import Path

    for scale in ("quick", "book"):
        path = Path(__file__).parents[1] / "book" / "results" / f"hybrid-{scale}.json"
        net = json.loads(path.read_text())["results"]["networks"]["hybrid"]
        C = net["layers"]["compression"]
        first = net["num_nonlinear"]
        f = fits.floor(C[first:], net["logits"]["compression"], range(first, len(C)))
        plain = fits.floor(C[first:], 0.0, range(first, len(C)))
        assert f.r2 > 0.9 and f.r2 > plain.r2, (scale, f, plain)
