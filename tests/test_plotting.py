"""Tests of pncutils.plotting and of the line fits it uses."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from pncutils import metrics as M  # noqa: E402
from pncutils import plotting as P  # noqa: E402


def test_linear_fit_matches_numpy_polyfit():
    g = np.random.default_rng(0)
    x = np.arange(7.0)
    y = 0.3 * x - 2 + 0.05 * g.normal(size=7)
    f = M.linear_fit(x, y)
    slope, intercept = np.polyfit(x, y, 1)
    assert f.slope == pytest.approx(slope, rel=1e-12)
    assert f.intercept == pytest.approx(intercept, rel=1e-12)
    r2 = 1 - np.sum((y - (slope * x + intercept)) ** 2) / np.sum((y - y.mean()) ** 2)
    assert f.r2 == pytest.approx(r2, rel=1e-12)
    assert M.linear_fit([0, 1], [2.0, 2.0]).r2 == 1.0
    with pytest.raises(ValueError, match="at least two"):
        M.linear_fit([1.0], [1.0])
    with pytest.raises(ValueError, match="all equal"):
        M.linear_fit([1.0, 1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        M.linear_fit([1.0, 2.0], [1.0, float("nan")])


def test_geometric_rate():
    assert M.geometric_rate(torch.tensor([1.0, 0.3, 0.09])) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="positive"):
        M.geometric_rate([1.0, 0.0])


def test_plot_layerwise_draws_fit_and_theory():
    P.use_book_style()
    t = M.LayerTable({"layer": [0, 1, 2, 3], "compression": [10.0, 2.0, 0.4, 0.08],
                      "discrimination": [0.9, 0.92, 0.94, 0.96]})
    theory = M.LayerTable({"layer": [0, 1, 2, 3], "compression": [10.0, 2.1, 0.41, 0.08],
                           "discrimination": [0.9, 0.92, 0.94, 0.96]})
    fig, (ax_c, ax_d) = P.plot_layerwise(t, theory=theory, label="net")
    labels = [line.get_label() for line in ax_c.lines]
    assert any("ratio 0.2/layer" in lab and "$R^2$=1.000" in lab for lab in labels)
    assert "theory" in labels
    assert any("slope 0.02/layer" in line.get_label() for line in ax_d.lines)
    assert ax_c.get_yscale() == "log" and ax_c.get_xlabel() == "layer $l$"
    assert ax_c.get_title() == ""  # captions do the titling
    plt.close(fig)
    fig, axes = plt.subplots(1, 2)
    out_fig, _ = P.plot_layerwise(t, axes=axes, fit_layers=[1, 2, 3])
    assert out_fig is fig
    with pytest.raises(ValueError, match="at least two layers"):
        P.plot_layerwise(t, axes=axes, fit_layers=[0])
    plt.close("all")


def test_other_plots():
    fig, ax = P.plot_history([1.0, 0.5, 0.25], label="run")
    assert len(ax.lines) == 1 and math.isclose(ax.lines[0].get_ydata()[-1], 0.25)
    fig2, ax2 = P.plot_spectrum([torch.eye(4), torch.diag(torch.tensor([3.0, 2.0, 1.0]))],
                                num_values=2)
    assert [len(line.get_ydata()) for line in ax2.lines] == [2, 2]
    plt.close("all")


def test_save_figure_data_writes_csv(tmp_path, monkeypatch):
    folder = tmp_path / "out" / "figure-data"
    path = P.save_figure_data({"layer": torch.arange(3), "C": np.array([1.0, 0.5, 0.25])},
                              "fig-x", folder=folder)
    assert path == str(folder / "fig-x.csv")
    back = M.LayerTable.from_csv(path)
    assert back.columns == ("layer", "C") and back.C.tolist() == [1.0, 0.5, 0.25]
    table = M.LayerTable({"a": [1.0, 2.0]})
    assert M.LayerTable.from_csv(P.save_figure_data(table, "fig-x", folder=folder)) == table
    assert sorted(p.name for p in folder.iterdir()) == ["fig-x.csv"]  # no temporary left
    monkeypatch.chdir(tmp_path)
    assert P.save_figure_data(table, "rel") == "figure-data/rel.csv"
    assert (tmp_path / "figure-data" / "rel.csv").is_file()
    with pytest.raises(ValueError, match="expected 2"):
        P.save_figure_data({"a": [1.0, 2.0], "b": [1.0]}, "bad", folder=folder)
    with pytest.raises(ValueError, match="plain file name"):
        P.save_figure_data(table, "sub/x", folder=folder)
