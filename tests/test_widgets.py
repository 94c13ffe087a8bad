"""Tests of pncutils.book.widgets: the pure computations and the headless widgets."""

from __future__ import annotations

import math
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from pncutils import metrics, theory  # noqa: E402
from pncutils.book import widgets as W  # noqa: E402
from pncutils.data import orthogonal_dataset  # noqa: E402

REL = 1e-10
PNG = b"\x89PNG"


# ----------------------------------------------------------------------------------------
# the metrics explorer
# ----------------------------------------------------------------------------------------


def test_explorer_values_data_and_metrics():
    v = W.explorer_values(spread=2.0, noise=0.5, offset=1.0, num_classes=4, num_per_class=7)
    assert v["X"].shape == (28, 2) and v["y"].tolist() == [k for k in range(4) for _ in range(7)]
    assert v["compression"] == pytest.approx(metrics.compression(v["X"], v["y"]), rel=REL)
    assert v["discrimination"] == pytest.approx(metrics.discrimination(v["X"], v["y"]), rel=REL)
    assert v["nc1"] == pytest.approx(metrics.nc1(v["X"], v["y"]), rel=REL)
    # the same noise draws for every setting: the data move continuously with the sliders
    a = W.explorer_values(2.0, 0.5, 0.0)["X"]
    b = W.explorer_values(2.0, 0.5, 3.0)["X"]
    torch.testing.assert_close(b - a, torch.full_like(a, 3.0 / math.sqrt(2)))


def test_explorer_without_noise_is_a_regular_simplex():
    v = W.explorer_values(spread=1.5, noise=0.0)
    assert v["compression"] == 0.0
    assert v["discrimination"] == pytest.approx(1.5, rel=1e-12)
    torch.testing.assert_close(v["means"].norm(dim=1), torch.full((3,), 1.5, dtype=torch.float64))


def test_explorer_values_respond_to_the_sliders_as_the_chapter_claims():
    base = W.explorer_values(spread=2.0, noise=0.6, offset=0.0)
    noisier = W.explorer_values(spread=2.0, noise=1.2, offset=0.0)
    wider = W.explorer_values(spread=4.0, noise=0.6, offset=0.0)
    shifted = W.explorer_values(spread=2.0, noise=0.6, offset=4.0)
    assert noisier["compression"] > base["compression"] > wider["compression"]
    assert shifted["compression"] == pytest.approx(base["compression"], rel=REL)
    assert shifted["nc1"] == pytest.approx(base["nc1"], rel=REL)
    assert shifted["discrimination_centered"] == pytest.approx(base["discrimination_centered"],
                                                               rel=REL)
    assert shifted["discrimination"] < base["discrimination"] - 0.5


def test_explorer_values_validates():
    with pytest.raises(ValueError, match="spread"):
        W.explorer_values(spread=0.0)
    with pytest.raises(ValueError, match="noise"):
        W.explorer_values(noise=-1.0)
    with pytest.raises(ValueError, match="num_classes"):
        W.explorer_values(num_classes=1)


def test_plot_explorer_grid():
    fig, axes = W.plot_explorer_grid([{"noise": 0.1}, {"offset": 2.0}, {"spread": 1.0}],
                                     ncols=2, num_per_class=5)
    assert axes.shape == (2, 2)
    assert not axes[1, 1].get_visible()
    assert axes[0, 0].get_xlim() == axes[1, 0].get_xlim()
    plt.close(fig)
    with pytest.raises(ValueError, match="unknown setting"):
        W.plot_explorer_grid([{"sigma": 1.0}])
    with pytest.raises(ValueError, match="at least one"):
        W.plot_explorer_grid([])


def test_metrics_explorer_widget_updates_its_values_and_picture():
    box = W.metrics_explorer(num_per_class=10)
    assert set(box.sliders) == {"spread", "noise", "offset"}
    first_png, first = bytes(box.image.value), box.values
    assert first_png.startswith(PNG)
    box.sliders["noise"].value = 1.5
    assert box.values["noise"] == 1.5
    assert box.values["compression"] > first["compression"]
    assert bytes(box.image.value) != first_png
    box.sliders["offset"].value = 5.0
    assert box.values["compression"] == pytest.approx(
        W.explorer_values(2.0, 1.5, 5.0, num_per_class=10)["compression"], rel=REL)
    assert box.values["discrimination"] < first["discrimination"]
    assert f"{box.values['compression']:.4g}" in box.readout.value


# ----------------------------------------------------------------------------------------
# the theory explorer
# ----------------------------------------------------------------------------------------


def test_theory_values_ideal_and_exact():
    v = W.theory_values(depth=4, eps=0.2, num_per_class=6, num_classes=4, alpha=10.0, seed=1)
    assert v["rate"] == pytest.approx(0.04 * (100 / 6) ** 0.25, rel=REL)
    C_ideal = v["ideal"].compression
    assert C_ideal[0].item() == pytest.approx(4 * 5 / 3, rel=REL)
    torch.testing.assert_close(C_ideal[1:] / C_ideal[:-1], torch.full((3,), v["rate"],
                                                                      dtype=torch.float64))
    X, y = orthogonal_dataset(4, 6, 44, generator=torch.Generator().manual_seed(1),
                              dtype=torch.float64)
    want = theory.predicted_metrics(X, y, 4, 0.2, 10.0)
    for col in ("compression", "discrimination"):
        torch.testing.assert_close(v["exact"][col], want[col], rtol=1e-12, atol=0)
    assert v["exact_rate"] == pytest.approx(metrics.geometric_rate(want.compression[1:]), rel=REL)
    assert v["signal"] == pytest.approx((math.sqrt(6) / 10) ** 0.25, rel=REL)


def test_theory_values_depth_two_and_without_exact():
    v = W.theory_values(depth=2, exact=True)
    comp = v["exact"].compression
    assert v["exact_rate"] == pytest.approx(float(comp[1] / comp[0]), rel=REL)
    v = W.theory_values(exact=False)
    assert v["exact"] is None and v["exact_rate"] is None


def test_theory_values_validates():
    with pytest.raises(ValueError, match="depth"):
        W.theory_values(depth=1)
    with pytest.raises(ValueError, match="eps"):
        W.theory_values(eps=0.0)
    with pytest.raises(ValueError, match="exact"):
        W.theory_values(exact=1)


def test_theory_explorer_widget_follows_every_slider():
    box = W.theory_explorer(exact=False)
    assert set(box.sliders) == {"depth", "eps", "num_per_class", "num_classes", "alpha", "norm",
                                "exact"}
    assert (box.sliders["depth"].min, box.sliders["depth"].max) == (2, 12)
    assert (box.sliders["alpha"].min, box.sliders["alpha"].max) == (0, 3)  # 10^0 .. 10^3
    png = bytes(box.image.value)
    assert png.startswith(PNG)
    box.sliders["depth"].value = 10
    box.sliders["eps"].value = 0.2
    box.sliders["num_per_class"].value = 20
    box.sliders["num_classes"].value = 5
    box.sliders["alpha"].value = 10.0
    v = box.values
    assert len(v["ideal"]) == 10 and v["num_classes"] == 5
    assert v["rate"] == pytest.approx(theory.ideal_compression_rate(0.2, 10.0, 20, 10), rel=REL)
    assert v["ideal"].compression[0].item() == pytest.approx(5 * 19 / 4, rel=REL)
    assert bytes(box.image.value) != png
    assert f"{v['rate']:.4g}" in box.readout.value
    box.sliders["exact"].value = True
    assert box.values["exact"] is not None and len(box.values["exact"]) == 10
    box.sliders["eps"].value = 0.6  # not small against the signal value (sqrt(20)/10)^(1/10)
    assert "no longer accurate" in box.readout.value


def test_pncutils_imports_without_ipywidgets():
    code = (
        "import sys; sys.modules['ipywidgets'] = None\n"
        "import pncutils, pncutils.book.widgets as W\n"
        "W.explorer_values(); W.theory_values(exact=False)\n"
        "try:\n    W.metrics_explorer()\nexcept ImportError:\n    print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={"MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1",
                                           "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_theory_values_input_norm():
    """Orthogonal rows of norm r: rho = eps^2 (alpha^2 r^2 / n)^{1/L}, checked on r X itself."""
    v1 = W.theory_values(depth=6, eps=0.3, alpha=1.0, exact=False)
    v5 = W.theory_values(depth=6, eps=0.3, alpha=1.0, norm=5.0)
    assert v5["norm"] == 5.0 and v1["norm"] == 1.0
    assert v5["rate"] == pytest.approx(0.09 * (25 / 10) ** (1 / 6), rel=REL)  # 0.1048
    assert v5["rate"] / v1["rate"] == pytest.approx(25 ** (1 / 6), rel=REL)
    assert v5["signal"] == pytest.approx((math.sqrt(10) / 5) ** (1 / 6), rel=REL)
    torch.testing.assert_close(v5["ideal"].compression[1:] / v5["ideal"].compression[:-1],
                               torch.full((5,), v5["rate"], dtype=torch.float64))
    assert v5["ideal"].compression[0].item() == pytest.approx(13.5, rel=REL)  # C_0 keeps
    # the exact curves are those of the synthetic data scaled by r
    X, y = orthogonal_dataset(3, 10, 50, generator=torch.Generator().manual_seed(3),
                              dtype=torch.float64)
    want = theory.predicted_metrics(5.0 * X, y, 6, 0.3, 1.0)
    torch.testing.assert_close(v5["exact"].compression, want.compression, rtol=1e-12, atol=0)
    assert abs(v5["exact_rate"] / v5["rate"] - 1) < 0.05
    # on exactly orthogonal rows of norm 5 the constructed network has the r-formula's rate
    Xo, yo = orthogonal_dataset(3, 10, 50, perturbation=0.0, dtype=torch.float64,
                                generator=torch.Generator().manual_seed(0))
    C = theory.predicted_metrics(5.0 * Xo, yo, 6, 0.3, 1.0).compression
    torch.testing.assert_close(C[1:] / C[:-1], torch.full((5,), v5["rate"], dtype=torch.float64))
    with pytest.raises(ValueError, match="norm"):
        W.theory_values(norm=0.0)


def test_theory_explorer_norm_slider():
    box = W.theory_explorer(exact=False, norm=2.0)
    assert box.sliders["norm"].value == pytest.approx(2.0)
    box.sliders["norm"].value = 5.0
    assert box.values["rate"] == pytest.approx(
        theory.ideal_compression_rate(0.3, 100.0, 10, 6, norm=5.0), rel=REL)
    assert "norm r = 5" in box.readout.value
    with pytest.raises(ValueError, match="norm"):
        W.theory_explorer(norm=20.0)
