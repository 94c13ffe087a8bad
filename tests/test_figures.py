"""Tests of the figures drawn from typed experiment results: pncutils.book.figures (the
``hybrid`` experiment) and nonlinear.plot_synthetic_layers (``fig3b``)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from pncutils import fits  # noqa: E402
from pncutils.book import figures, hybrid, nonlinear  # noqa: E402
from pncutils.book.config import loss_curve, mean_std  # noqa: E402
from pncutils.metrics import LayerTable  # noqa: E402


def _result(nets):
    """A HybridResult of hand-made networks: ``{name: (num_nonlinear, layers, logits or None,
    pca or None)}``, each summarised over its linear layers by the driver's deep_summary."""
    out = {}
    for name, (m, lay, logits, pca) in nets.items():
        t = LayerTable(lay)
        last = len(t) - 1
        C_out = logits["compression"] if logits else None
        summary = hybrid.deep_summary(t, m, last, C_out) if last - m >= 2 else None
        out[name] = hybrid.NetworkResult(
            m, t, hybrid.Outputs(**logits) if logits else None, summary=summary,
            pca=hybrid.Projections(**pca) if pca else None)
    return hybrid.HybridResult(10, 10, 4, 2, out)


def _hybrid_results(num_layers=4, num_nonlinear=1):
    def layers(scale):
        return {
            "layer": list(range(num_layers)),
            "compression": [scale * 2.0 ** -i for i in range(num_layers)],
            "discrimination": [0.1 * i for i in range(num_layers)],
            "rank": [50 - 10 * i for i in range(num_layers)],
            "probe_train_acc": [0.5, 0.9, 1.0, 1.0][:num_layers],
            "probe_test_acc": [0.5, 0.8, 0.8, float("nan")][:num_layers],
        }

    pca = {"layers": [1, 2], "labels": [0, 0, 1, 1], "x": [[0, 1, 2, 3], [0, 0, 1, 1]],
           "y": [[1, 0, 1, 0], [0, 1, 0, 1]], "explained_variance_ratio": [[0.4, 0.3], [0.9, 0.1]]}
    return _result({"hybrid": (num_nonlinear, layers(8.0), None, pca),
                    "mlp": (num_layers - 1, layers(4.0), None, pca)})


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_network_table_keeps_nan():
    t = figures.network_table(_hybrid_results(), "hybrid")
    assert t.compression.tolist() == [8.0, 4.0, 2.0, 1.0]
    assert np.isnan(t.probe_test_acc[3].item()) and t.probe_test_acc[1].item() == 0.8


def test_rank_probe_plots_layers_from_one_and_overlays():
    res = _hybrid_results()
    fig, (ax_r, ax_p) = figures.plot_rank_probe(res)
    assert len(ax_r.lines) == 2 and len(ax_p.lines) == 4  # train + test per network
    x, y = ax_r.lines[0].get_data()
    assert list(x) == [1, 2, 3] and list(y) == [40, 30, 20]
    assert list(ax_p.lines[0].get_data()[1]) == [90.0, 100.0, 100.0]  # percent
    figures.plot_rank_probe(res, axes=[ax_r, ax_p], linestyle="--", label=" (paper)")
    assert len(ax_r.lines) == 4 and ax_r.lines[-1].get_linestyle() == "--"
    assert ax_r.get_legend_handles_labels()[1][-1] == "MLP (paper)"
    with pytest.raises(ValueError, match="2 Matplotlib axes"):
        figures.plot_rank_probe(res, axes=[ax_r])


def test_compression_plot_fits_the_linear_part():
    fig, (ax_c, ax_d) = figures.plot_compression_discrimination(_hybrid_results())
    # hybrid, its fit, MLP
    assert len(ax_c.lines) == 3 and len(ax_d.lines) == 2
    fx, fy = ax_c.lines[1].get_data()
    assert list(fx) == [1, 2, 3] and np.allclose(fy, [4.0, 2.0, 1.0])  # exact geometric data
    assert "$R^2$ = 1.000" in ax_c.get_legend_handles_labels()[1][1]
    fig, (ax_c, _) = figures.plot_compression_discrimination(_hybrid_results(), fit=False)
    assert len(ax_c.lines) == 2


def test_projections_and_errors():
    fig, axes = figures.plot_projections(_hybrid_results(), "mlp")
    assert len(axes) == 2 and axes[0].get_title() == "layer 1 (70% var.)"
    assert len(axes[0].collections) == 2  # one scatter per class
    with pytest.raises(ValueError, match="network must be one of"):
        figures.plot_projections(_hybrid_results(), "cnn")
    with pytest.raises(ValueError, match="must be a HybridResult"):
        figures.plot_rank_probe({"networks": {}})


def _fig3b(seeds, mean_C, mean_D):
    """A Fig3bResult of hand-made per-seed (C, D) and seed means."""
    per = []
    for i, (C, D) in enumerate(seeds):
        t = LayerTable({"layer": range(len(C)), "compression": C, "discrimination": D})
        per.append(nonlinear.SeedLayers(i, 10, 0.0, loss_curve([1.0, 0.0]), t,
                                        fits.geometric(C), fits.linear(D, start=1)))
    summary = nonlinear.Fig3bSummary(mean_C, mean_D, mean_C[0] / mean_C[-1],
                                     *[mean_std([0.0])] * 4, 0.0)
    return nonlinear.Fig3bResult(per, summary)


def test_synthetic_layers_plot():
    res = _fig3b([([8.0, 4.0, 2.0], [1.0, 0.2, 0.4]), ([2.0, 1.0, 0.5], [1.0, 0.4, 0.6])],
                 [4.0, 2.0, 1.0], [1.0, 0.3, 0.5])
    fig, (ax_c, ax_d) = nonlinear.plot_synthetic_layers(res)
    assert len(ax_c.lines) == 4 and len(ax_d.lines) == 4  # 2 seeds, mean, fit
    assert "rate 0.500" in ax_c.get_legend_handles_labels()[1][1]
    assert list(ax_d.lines[2].get_data()[0]) == [1, 2]
    with pytest.raises(ValueError, match="'fig3b' experiment"):
        nonlinear.plot_synthetic_layers(_hybrid_results())


# ----------------------------------------------------------------------------------------
# the plotted data are the results' data
# ----------------------------------------------------------------------------------------


def _floor_results(C_out=0.5):
    """A hybrid with 2 nonlinear layers whose linear part is C_l = 0.5 + 8 * 0.5**l exactly,
    its outputs' C_L = 0.5, and an MLP; every column differs between layers."""
    hyb = {"layer": [0, 1, 2, 3, 4], "compression": [30.0, 100.0, 2.5, 1.5, 1.0],
           "discrimination": [0.05, 0.2, 0.3, 0.45, 0.5], "rank": [60, 50, 40, 30, 20],
           "probe_train_acc": [0.4, 0.6, 0.7, 0.8, 0.9],
           "probe_test_acc": [0.3, 0.5, 0.55, 0.65, 0.75]}
    mlp = {"layer": [0, 1, 2, 3, 4], "compression": [30.0, 9.0, 7.0, 5.0, 4.0],
           "discrimination": [0.05, 0.1, 0.15, 0.25, 0.35], "rank": [60, 58, 56, 54, 52],
           "probe_train_acc": [0.4, 0.45, 0.5, 0.55, 0.6],
           "probe_test_acc": [0.35, 0.4, 0.42, 0.44, 0.46]}
    return _result({"hybrid": (2, hyb, {"compression": C_out, "discrimination": 0.9}, None),
                    "mlp": (4, mlp, {"compression": 3.0, "discrimination": 0.4}, None)})


def test_rank_probe_lines_are_the_table_columns_from_layer_one():
    res = _floor_results()
    fig, (ax_r, ax_p) = figures.plot_rank_probe(res)
    for i, name in enumerate(("hybrid", "mlp")):
        lay = res.networks[name].layers.to_dict()
        x, y = ax_r.lines[i].get_data()
        assert list(x) == [1, 2, 3, 4] and list(y) == lay["rank"][1:]
        (xt, yt), (xe, ye) = ax_p.lines[2 * i].get_data(), ax_p.lines[2 * i + 1].get_data()
        assert list(xt) == list(xe) == [1, 2, 3, 4]
        np.testing.assert_allclose(yt, [100 * v for v in lay["probe_train_acc"][1:]])
        np.testing.assert_allclose(ye, [100 * v for v in lay["probe_test_acc"][1:]])


def test_compression_discrimination_lines_outputs_and_floor_fit():
    res = _floor_results()
    fig, (ax_c, ax_d) = figures.plot_compression_discrimination(res)
    # C: hybrid, its logits, its fit; MLP, its logits.  D: hybrid, logits; MLP, logits
    assert len(ax_c.lines) == 5 and len(ax_d.lines) == 4
    for (ci, di), name in (((0, 0), "hybrid"), ((3, 2), "mlp")):
        lay, out = res.networks[name].layers.to_dict(), res.networks[name].logits.to_dict()
        x, y = ax_c.lines[ci].get_data()
        assert list(x) == [1, 2, 3, 4] and list(y) == lay["compression"][1:]
        x, y = ax_d.lines[di].get_data()
        assert list(x) == [1, 2, 3, 4] and list(y) == lay["discrimination"][1:]
        # the outputs one layer further, at l = L = 5
        assert [list(v) for v in ax_c.lines[ci + 1].get_data()] == [[5], [out["compression"]]]
        assert [list(v) for v in ax_d.lines[di + 1].get_data()] == [[5],
                                                                    [out["discrimination"]]]
    # the fit C_L + A rho^l over the linear layers l = 2..4 goes through the exact points
    fx, fy = ax_c.lines[2].get_data()
    assert list(fx) == [2, 3, 4]
    np.testing.assert_allclose(fy, [0.5 + 8.0 * 0.5**l for l in (2, 3, 4)], rtol=1e-12)
    assert "$R^2$ = 1.000" in ax_c.lines[2].get_label()


def test_synthetic_fit_lines_by_hand():
    res = _fig3b([([8.0, 4.0, 1.0], [1.0, 0.2, 0.4])], [8.0, 2.0, 1.0], [1.0, 0.3, 0.5])
    fig, (ax_c, ax_d) = nonlinear.plot_synthetic_layers(res)
    # log C over l = 0, 1, 2: slope (log 1 - log 8) / 2, i.e. rate 8 ** -0.5
    slope, intercept = np.polyfit([0, 1, 2], np.log([8.0, 2.0, 1.0]), 1)
    fx, fy = ax_c.lines[2].get_data()
    np.testing.assert_allclose(fy, np.exp(intercept + slope * np.arange(3)), rtol=1e-12)
    assert f"rate {8 ** -0.5:.3f}" in ax_c.lines[2].get_label()
    # D over l = 1, 2 only: the line through (1, 0.3) and (2, 0.5)
    dx, dy = ax_d.lines[2].get_data()
    assert list(dx) == [1, 2]
    np.testing.assert_allclose(dy, [0.3, 0.5], atol=1e-12)
    assert "slope 0.200" in ax_d.lines[2].get_label()


def test_projection_scatter_points_are_the_pca_coordinates():
    res = _hybrid_results()
    pca = res.networks["mlp"].pca
    fig, axes = figures.plot_projections(res, "mlp")
    labels = np.asarray(pca.labels)
    for ax, x, y in zip(axes, pca.x, pca.y, strict=True):
        for k, coll in zip((0, 1), ax.collections, strict=True):
            sel = labels == k
            np.testing.assert_allclose(coll.get_offsets(),
                                       np.stack([np.asarray(x)[sel], np.asarray(y)[sel]], 1))


# ----------------------------------------------------------------------------------------
# the least-squares floor and the summary of chapter 5
# ----------------------------------------------------------------------------------------


def _with_floor(res, floor=(0.4, 0.45, 0.45, 0.45)):
    import dataclasses

    lf = hybrid.LinearFloor([2, 3, 4, 5], list(floor), 0.5, 0.1, 0.2, 0.3)
    nets = {**res.networks,
            "hybrid": dataclasses.replace(res.networks["hybrid"], linear_floor=lf)}
    return dataclasses.replace(res, networks=nets)


def test_the_least_squares_floor_is_drawn_over_the_linear_layers_and_the_outputs():
    res = _with_floor(_floor_results())
    fig, (ax_c, _) = figures.plot_compression_discrimination(res, label=" (book)")
    # hybrid, logits, fit, floor; MLP, logits
    assert len(ax_c.lines) == 6
    x, y = ax_c.lines[3].get_data()
    assert list(x) == [2, 3, 4, 5] and list(y) == [0.4, 0.45, 0.45, 0.45]
    assert ax_c.lines[3].get_linestyle() == "-." and "(book)" in ax_c.lines[3].get_label()
    fig, (ax_c, _) = figures.plot_compression_discrimination(res, floor=False)
    assert len(ax_c.lines) == 5
    # a result file written before the floor existed: no floor line, no error
    fig, (ax_c, _) = figures.plot_compression_discrimination(_floor_results())
    assert len(ax_c.lines) == 5


def test_linear_part_summary_by_hand():
    res = _with_floor(_floor_results())
    s = figures.linear_part_summary(res, "hybrid")
    # C = 30, 100, 2.5, 1.5, 1.0 with m = 2, L - 1 = 4; C_L = 0.5, F_L = 0.45
    assert (s["first"], s["last"]) == (2, 4)
    assert s["C_ratio_1"] == 100.0 and s["C_ratio_first"] == 2.5
    assert s["C_out"] == 0.5 and s["last_over_out"] == 2.0
    assert s["F_out"] == 0.45 and s["out_over_floor"] == pytest.approx(0.5 / 0.45, rel=1e-15)
    # C_l - C_L = 2, 1, 0.5: exactly geometric, rate 1/2
    assert s["floor_fit"].layers == (2, 3, 4)
    assert s["floor_fit"].rate == pytest.approx(0.5, rel=1e-12)
    assert s["floor_fit"].r2 == pytest.approx(1.0, abs=1e-12)
    slope, _ = np.polyfit([2, 3, 4], np.log([2.5, 1.5, 1.0]), 1)
    assert s["log_fit"].slope == pytest.approx(slope, rel=1e-12)
    assert (s["D_first"], s["D_last"], s["D_max"], s["D_peak_layer"]) == (0.2, 0.5, 0.5, 4)
    assert s["rank_last"] == 20
    m = figures.linear_part_summary(res, "mlp")  # no floor in the MLP's entry
    assert m["F_out"] is None and m["out_over_floor"] is None
    assert m["log_fit"] is None and m["floor_fit"] is None  # one linear layer: no fit
    # the fits are the driver's (hybrid.deep_summary over the linear layers), not redone
    assert s["log_fit"] is res.networks["hybrid"].summary.log_compression_fit
    assert s["floor_fit"] is res.networks["hybrid"].summary.floor_fit
    with pytest.raises(ValueError, match="network must be one of"):
        figures.linear_part_summary(res, "cnn")


def test_linear_part_summary_without_layers_above_the_floor():
    res = _floor_results(C_out=1.4)  # only C_2 = 2.5 lies above it
    s = figures.linear_part_summary(res, "hybrid")
    assert s["floor_fit"] is None and s["last_over_out"] == pytest.approx(1.0 / 1.4)
