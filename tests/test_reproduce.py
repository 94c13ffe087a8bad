"""Tests of pncutils.book.reproduce: result files, their verification, the registry and the CLI."""

from __future__ import annotations

import json
import math
import os
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch

from pncutils import training
from pncutils.book import assumptions, config, hybrid, main_result, nonlinear, reproduce
from pncutils.book.config import Config
from pncutils.book.reproduce import (
    EXPERIMENTS,
    REQUIRED_FIELDS,
    SCALES,
    Experiment,
    config_hash,
    load_result,
    main,
    run,
    verify_result,
)
from pncutils.data import DatasetNotFoundError, load_dataset

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted((ROOT / "book" / "results").glob("*.json"))


def _fashion_mnist_missing() -> str | None:
    try:
        load_dataset("fashion_mnist", "test", num_per_class=1)
    except DatasetNotFoundError:
        return (
            "FashionMNIST is not installed (apt-get install dataset-fashion-mnist puts it in "
            "/usr/share/datasets/fashion-mnist/)"
        )
    return None


@pytest.fixture(scope="module")
def fig4_run(tmp_path_factory):
    """The quick fig4 run, and the networks and data that its train_many call trained."""
    trained = {}
    real = training.train_many

    def spy(models, X, y, cfg, device=None):
        hists = real(models, X, y, cfg, device)
        trained.update(models=list(models), X=X, y=y, hists=hists)
        return hists

    from pncutils.book import experiments

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training, "train_many", spy)
        mp.setattr(experiments, "train_many", spy)  # what synthetic_runs calls
        path = run("fig4", "quick", device="cpu", out_dir=tmp_path_factory.mktemp("fig4"))
    return path, trained


@pytest.fixture(scope="module")
def fig4_path(fig4_run):
    return fig4_run[0]


@pytest.fixture(scope="module")
def hybrid_path(tmp_path_factory):
    reason = _fashion_mnist_missing()
    if reason:
        pytest.skip(reason)
    return run("hybrid", "quick", device="cpu", out_dir=tmp_path_factory.mktemp("hybrid"))


@pytest.fixture(params=["fig4", "hybrid"])
def result_path(request):
    return request.getfixturevalue(f"{request.param}_path")


def _line(x, y):
    """numpy least-squares line: (slope, intercept, R^2)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    res = y - (slope * x + intercept)
    return slope, intercept, 1.0 - (res @ res) / ((y - y.mean()) @ (y - y.mean()))


def _rate(v):
    """Mean per-layer ratio of positive values: (v_last / v_first)^(1 / (P - 1))."""
    return (v[-1] / v[0]) ** (1.0 / (len(v) - 1))


def _no_nan(text: str) -> dict:
    def bad(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=bad)


# ----------------------------------------------------------------------------------------
# the file
# ----------------------------------------------------------------------------------------


def test_file_fields(result_path):
    res = _no_nan(result_path.read_text())
    exp = result_path.stem.split("-")[0]
    assert result_path.name == f"{exp}-quick.json"
    assert set(REQUIRED_FIELDS) <= set(res)
    assert res["experiment"] == exp and res["scale"] == "quick"
    assert res["config"] == json.loads(json.dumps(EXPERIMENTS[exp].scales["quick"].to_dict()))
    assert res["config_hash"] == config_hash(exp, "quick", res["config"])
    assert re.fullmatch(r"[0-9a-f]{64}", res["config_hash"])
    assert res["torch_version"] == torch.__version__ and res["device"] == "cpu"
    assert res["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", res["git_commit"])
    assert res["git_dirty"] in (None, True, False)
    assert res["wall_time_s"] > 0
    assert datetime.fromisoformat(res["created"]).utcoffset().total_seconds() == 0
    assert result_path.stat().st_size < 300_000
    # the atomic write leaves nothing but the result file
    assert [p.name for p in result_path.parent.iterdir()] == [result_path.name]


def test_verify_passes_on_the_file_and_its_content(result_path):
    verify_result(result_path)
    verify_result(load_result(result_path))
    verify_result(result_path, against_registry=True)


def test_tampering_with_the_config_or_the_hash_is_detected(fig4_path):
    res = load_result(fig4_path)
    bad = json.loads(json.dumps(res))
    bad["config"]["init_scale"] = 0.31
    with pytest.raises(ValueError, match="config_hash does not match the config of fig4/quick"):
        verify_result(bad)
    bad = json.loads(json.dumps(res))
    bad["config_hash"] = "0" * 64
    with pytest.raises(ValueError, match="config_hash does not match"):
        verify_result(bad)
    bad = json.loads(json.dumps(res))
    bad["scale"] = "book"  # the hash covers the scale and the experiment too
    with pytest.raises(ValueError, match="config_hash does not match"):
        verify_result(bad)


@pytest.mark.parametrize("field", REQUIRED_FIELDS)
def test_a_missing_field_is_named(fig4_path, field):
    res = load_result(fig4_path)
    del res[field]
    with pytest.raises(ValueError, match=rf"missing field\(s\) \['{field}'\]"):
        verify_result(res)


def test_wrong_types_and_stale_configs_are_reported(fig4_path, tmp_path):
    res = load_result(fig4_path)
    with pytest.raises(ValueError, match="'results' must be a Mapping"):
        verify_result({**res, "results": []})
    with pytest.raises(ValueError, match="'wall_time_s' must be a number"):
        verify_result({**res, "wall_time_s": "fast"})
    with pytest.raises(ValueError, match="'created' is not an ISO"):
        verify_result({**res, "created": "yesterday"})
    with pytest.raises(ValueError, match="'scale' must be one of"):
        verify_result({**res, "scale": "huge"})
    # a consistent file whose config is not the registered one: fine unless against_registry
    cfg = {**res["config"], "lr": 0.05}
    stale = {**res, "config": cfg, "config_hash": config_hash("fig4", "quick", cfg)}
    verify_result(stale)
    with pytest.raises(ValueError, match=r"differs from the registered one in \['lr'\]"):
        verify_result(stale, against_registry=True)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_result(broken)


def test_config_hash_is_canonical():
    cfg = {"b": [1, 2], "a": 0.1}
    h = config_hash("fig4", "quick", cfg)
    assert h == config_hash("fig4", "quick", {"a": 0.1, "b": (1, 2)})  # key order, tuples
    assert h == config_hash("fig4", "quick", json.loads(json.dumps(cfg)))  # round trip
    assert h == config_hash("fig4", "quick", Config(**cfg))
    assert h != config_hash("hybrid", "quick", cfg) != config_hash("fig4", "book", cfg)
    assert h != config_hash("fig4", "quick", {**cfg, "a": 0.1 + 1e-16 * 2})
    with pytest.raises(ValueError, match="JSON"):
        config_hash("fig4", "quick", {"a": float("nan")})


def test_the_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    path = run("fig4", "quick", device="cpu", out_dir=tmp_path)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(reproduce.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        run("fig4", "quick", device="cpu", out_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert path.read_bytes() == before


def test_the_seed_enters_the_config_the_hash_and_the_file_name(tmp_path, fig4_path):
    path = run("fig4", "quick", device="cpu", out_dir=tmp_path, seed=5)
    res, ref = load_result(path), load_result(fig4_path)
    assert path.name == "fig4-quick-seed5.json"
    assert res["config"]["seed"] == 5 and res["results"]["base_seed"] == 5
    assert res["results"]["seeds"] == [0, 1, 2]  # the streams (5, s) of base seed 5
    assert res["config_hash"] != ref["config_hash"]
    verify_result(path, against_registry=True)


# ----------------------------------------------------------------------------------------
# the results
# ----------------------------------------------------------------------------------------


def _record(path):
    return reproduce.Record.from_dict(load_result(path))


def test_fig4_results(fig4_run):
    fig4_path, trained = fig4_run
    r = _record(fig4_path).result
    assert isinstance(r, main_result.Fig4Result)
    cfg = EXPERIMENTS["fig4"].scales["quick"]
    assert r.seeds == list(range(cfg.num_seeds))
    s = r.summary
    assert s.all_converged
    # the theorem's rate (book section 3.4: 0.2803 +- 0.0014 against the ideal 0.2846)
    assert abs(s.relative_error_measured_vs_ideal) < 0.05
    assert s.log_compression_fit_r2_min > 0.99
    for p in r.per_seed:
        assert p.measured.layer.tolist() == list(range(cfg.depth))
        assert len(p.predicted.compression) == cfg.depth
        assert p.final_loss < cfg.loss_threshold
        assert len(p.loss_curve.loss) == p.epochs_run
    # the derived fields, recomputed from the per-seed tables with numpy
    L, layers = cfg.depth, list(range(1, cfg.depth))
    measured, predicted = [], []
    for p in r.per_seed:
        C, D = p.measured.compression.numpy(), p.measured.discrimination.numpy()
        Cp, Dp = p.predicted.compression.numpy(), p.predicted.discrimination.numpy()
        measured.append(_rate(C[1:]))
        predicted.append(_rate(Cp[1:]))
        assert p.measured_rate == pytest.approx(measured[-1], rel=1e-9)
        assert p.predicted_rate == pytest.approx(predicted[-1], rel=1e-9)
        slope, intercept, r2 = _line(layers, D[1:])
        assert p.discrimination_fit.slope == pytest.approx(slope, rel=1e-8)
        assert p.discrimination_fit.intercept == pytest.approx(intercept, rel=1e-8)
        assert p.discrimination_fit.r2 == pytest.approx(r2, rel=1e-8)
        assert p.discrimination_fit.layers == tuple(layers)
        assert p.predicted_discrimination_slope == pytest.approx(
            _line(layers, Dp[1:])[0], rel=1e-8)
        slope, intercept, r2 = _line(range(L), np.log(C))
        f = p.log_compression_fit
        assert (f.kind, f.layers) == ("geometric", tuple(range(L)))
        assert (f.slope, f.intercept, f.r2) == pytest.approx((slope, intercept, r2), rel=1e-8)
        assert p.discrimination_max_abs_error == pytest.approx(
            np.abs(np.subtract(D[1:], Dp[1:])).max(), rel=1e-9)
    assert s.measured_rate.mean == pytest.approx(np.mean(measured), rel=1e-12)
    assert s.predicted_rate.mean == pytest.approx(np.mean(predicted), rel=1e-12)
    assert s.predicted_rate.std == pytest.approx(np.std(predicted, ddof=1), rel=1e-9)
    assert s.relative_error_measured_vs_predicted == pytest.approx(
        np.mean(measured) / np.mean(predicted) - 1, rel=1e-9)
    assert s.relative_error_measured_vs_ideal == pytest.approx(
        np.mean(measured) / (cfg.init_scale**2 * (cfg.alpha**2 / cfg.num_per_class) ** (1 / L))
        - 1, rel=1e-9)
    # the weight diagnostics, from the trained networks' weights (captured in fig4_run)
    assert len(trained["models"]) == cfg.num_seeds
    for s_, p in enumerate(r.per_seed):
        assert trained["hists"][s_].epochs_run == p.epochs_run
        Ws = [W.detach().numpy() for W in trained["models"][s_].weights()]
        y_all = trained["y"]  # (N,) shared by the runs, or (S, N)
        X, y = trained["X"][s_].numpy(), (y_all if y_all.ndim == 1 else y_all[s_]).numpy()
        Y = np.eye(cfg.num_classes)[y]  # (N, K) one-hot
        W_star = Y.T @ np.linalg.pinv(X).T / cfg.alpha  # alpha^-1 Y^T (X^+)^T, (K, d)
        prod = Ws[0]
        for W in Ws[1:]:
            prod = W @ prod
        assert p.min_norm_residual == pytest.approx(np.linalg.norm(W_star - prod), rel=1e-8)
        balance = np.mean([np.linalg.norm(B.T @ B - A @ A.T) / np.linalg.norm(A)
                           for A, B in zip(Ws[:-1], Ws[1:], strict=True)])
        assert p.balancedness == pytest.approx(balance, rel=1e-8)


def test_hybrid_results(hybrid_path):
    r = _record(hybrid_path).result
    assert isinstance(r, hybrid.HybridResult)
    cfg = EXPERIMENTS["hybrid"].scales["quick"]
    assert r.num_train == 10 * cfg.num_per_class and r.input_dim == 784
    assert set(r.networks) == {"hybrid", "mlp"}
    for net in r.networks.values():
        layers = net.layers
        assert layers.layer.tolist() == list(range(cfg.depth))
        assert {"compression", "rank", "probe_train_acc", "probe_test_acc"} <= set(layers.columns)
        assert bool(((layers.probe_test_acc >= 0) & (layers.probe_test_acc <= 1)).all())
        tr = net.training
        assert tr.epochs_run == cfg.epochs and tr.final_loss < tr.loss_curve.loss[0]
        assert 0 < len(tr.loss_curve.epoch) <= reproduce.MAX_CURVE_POINTS
        assert 0 <= tr.test_acc <= 1 and 0 <= tr.train_acc <= 1
        pca = net.pca
        n = len(pca.labels)
        assert pca.layers == cfg.pca_layers and n == cfg.pca_samples
        assert [len(x) for x in pca.x] == [n] * len(cfg.pca_layers)
        assert all(len(f"{v:g}".lstrip("-").replace(".", "")) <= 9 for v in pca.x[0])
        assert net.summary.fit_layers == list(range(cfg.hybrid_nonlinear, cfg.depth))
        _check_deep_summary(net.summary, layers.to_dict(), cfg.hybrid_nonlinear, cfg.depth - 1,
                            net.logits.compression)


def _check_deep_summary(summary, layers, first, last, C_out):
    """The hybrid summary from the per-layer table, recomputed here."""
    C, D = layers["compression"], layers["discrimination"]
    rank, probe = layers["rank"], layers["probe_train_acc"]
    fit = list(range(first, last + 1))
    slope, intercept, r2 = _line(fit, np.log([C[i] for i in fit]))
    best = max(probe[1:])  # the hidden layers, not the input
    expected = {
        "compression_ratio_layer1_to_last": C[1] / C[last],
        "compression_ratio_first_linear_to_last": C[first + 1] / C[last],
        "compression_ratio_fit_start_to_last": C[first] / C[last],
        "discrimination_change_over_fit_layers": D[last] - D[first],
        "discrimination_increasing_steps": int(np.sum(np.diff(D[first : last + 1]) > 0)),
        "discrimination_max_layer": 1 + int(np.argmax(D[1:])),
        "rank_layer1": rank[1],
        "rank_last": rank[last],
        "probe_train_acc_max": best,
        "probe_saturation_layer": 1 + int(np.flatnonzero(np.array(probe[1:]) >= best - 0.01)[0]),
    }
    got = summary.to_dict()
    assert got.pop("fit_layers") == fit
    lf = got.pop("log_compression_fit")
    assert (lf["slope"], lf["intercept"], lf["r2"], lf["rate"]) == pytest.approx(
        (slope, intercept, r2, math.exp(slope)), rel=1e-8)
    ff = got.pop("floor_fit")  # log(C_l - C_L) over the layers above 1.02 C_L
    keep = [i for i in fit if C[i] > 1.02 * C_out]
    if len(keep) >= 3:
        f_slope, f_intercept, f_r2 = _line(keep, np.log([C[i] - C_out for i in keep]))
        assert ff["layers"] == keep and ff["floor"] == C_out
        assert (ff["slope"], ff["intercept"], ff["r2"]) == pytest.approx(
            (f_slope, f_intercept, f_r2), rel=1e-8)
    else:
        assert ff is None
    assert got == pytest.approx(expected, rel=1e-8)


def test_subsample_curve():
    out = config.loss_curve([float(i) for i in range(1000)]).to_dict()
    assert len(out["epoch"]) == 200 and out["epoch"][0] == 0 and out["epoch"][-1] == 999
    assert out["loss"] == [float(e) for e in out["epoch"]]
    assert config.loss_curve([3.0, 2.0]).to_dict() == {"epoch": [0, 1], "loss": [3.0, 2.0]}


# ----------------------------------------------------------------------------------------
# registry, errors and the command line
# ----------------------------------------------------------------------------------------


def test_unknown_experiment_or_scale_lists_the_allowed_ones(tmp_path):
    with pytest.raises(ValueError, match=r"experiment must be one of \('hybrid', 'fig4'"):
        run("fig9", out_dir=tmp_path)
    with pytest.raises(ValueError, match=r"scale must be one of \('quick', 'book', 'paper'\)"):
        run("fig4", "huge", out_dir=tmp_path)
    with pytest.raises(ValueError, match="seed"):
        run("fig4", "quick", out_dir=tmp_path, seed=-1)
    assert list(tmp_path.iterdir()) == []


def test_every_experiment_defines_every_scale_with_a_seed():
    for name, exp in EXPERIMENTS.items():
        assert tuple(exp.scales) == SCALES, name
        assert all(cfg.seed == 0 for cfg in exp.scales.values())
    with pytest.raises(ValueError, match="exactly the scales"):
        Experiment(lambda cfg, device: {}, {"quick": Config(seed=0)}, "incomplete")
    with pytest.raises(ValueError, match="'seed' parameter"):
        Experiment(lambda cfg, device: {}, {s: Config(x=1) for s in SCALES}, "no seed")


def test_cli_runs_and_prints_one_line_per_run(tmp_path, capsys):
    assert main(["fig4", "--scale", "quick", "--device", "cpu", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    path = tmp_path / "fig4-quick.json"
    assert len(lines) == 1 and str(path) in lines[0] and "fig4/quick" in lines[0]
    verify_result(path)


def test_cli_usage_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fig9"])
    assert exc.value.code == 2
    assert "experiment must be one of ('hybrid', 'fig4', 'fig6'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fig4", "--scale", "huge"])
    assert "scale must be one of ('quick', 'book', 'paper')" in capsys.readouterr().err
    assert main(["--list"]) == 0
    assert capsys.readouterr().out.startswith("hybrid: ")


@pytest.mark.skipif(not COMMITTED, reason="no result files under book/results")
@pytest.mark.parametrize("path", COMMITTED, ids=[p.name for p in COMMITTED])
def test_committed_results_are_valid_and_current(path):
    """The shipped results verify and were produced by the registered configurations."""
    _no_nan(path.read_text())
    verify_result(path, against_registry=True)
    assert path.stat().st_size < 300_000
    assert os.access(path, os.R_OK)


# ----------------------------------------------------------------------------------------
# fig6 and fig3b
# ----------------------------------------------------------------------------------------


def test_fig6_quick_results(tmp_path):
    cfg = EXPERIMENTS["fig6"].scales["quick"]
    r = _record(run("fig6", "quick", out_dir=tmp_path)).result
    assert isinstance(r, assumptions.Fig6Result)
    grid = [(L, cfg.width_for_depths) for L in cfg.depths]
    grid += [(cfg.depth_for_widths, w) for w in cfg.widths if w != cfg.width_for_depths]
    assert sorted(r.grid) == sorted(grid)
    assert len(r.runs) == len(grid) * cfg.num_seeds
    assert r.summary.num_seeds.tolist() == [cfg.num_seeds] * len(grid)
    assert r.all_converged and r.bulk_variance_max < 1e-10
    # the summary is the seed average of the runs (checked by hand for the first pair)
    runs = r.runs.to_dict()
    L0, w0 = r.summary.depth[0].item(), r.summary.width[0].item()
    sel = [i for i, (L, w) in enumerate(zip(runs["depth"], runs["width"], strict=True))
           if (L, w) == (L0, w0)]
    assert r.summary.residual_mean[0].item() == pytest.approx(
        sum(runs["residual"][i] for i in sel) / len(sel), rel=1e-12)
    assert r.residual_max == max(runs["residual"]) < 0.2


# ----------------------------------------------------------------------------------------
# compute, load_or_run, the overview
# ----------------------------------------------------------------------------------------


def test_compute_equals_the_file_of_a_run(fig4_path):
    res = reproduce.compute("fig4", EXPERIMENTS["fig4"].scales["quick"], "cpu")
    assert isinstance(res, main_result.Fig4Result)
    assert res == _record(fig4_path).result  # the typed result survives the file
    assert reproduce._jsonable(res) == load_result(fig4_path)["results"]


def test_the_registry_is_built_from_the_experiment_modules():
    modules = {"hybrid": (hybrid, hybrid.HybridResult), "fig4": (main_result,
               main_result.Fig4Result), "fig6": (assumptions, assumptions.Fig6Result),
               "fig3b": (nonlinear, nonlinear.Fig3bResult)}
    for name, (module, result_type) in modules.items():
        exp = EXPERIMENTS[name]
        assert exp.fn is module.run and exp.scales is module.SCALES, name
        assert exp.result_type is result_type, name


def test_a_file_of_another_layout_is_out_of_date(fig4_path, tmp_path):
    res = load_result(fig4_path)
    old = {**res, "results": {**res["results"], "ideal_rate": 0.28}}  # a field since removed
    verify_result(old)  # consistent: fields and hash
    with pytest.raises(ValueError, match="do not have the layout of Fig4Result"):
        verify_result(old, against_registry=True)
    (tmp_path / "fig4-quick.json").write_text(json.dumps(old))
    with pytest.warns(UserWarning, match="out of date"):
        assert reproduce.load_or_run("fig4", "quick", False, results_dir=tmp_path) is None
    assert [r["current"] for r in reproduce.results_overview(tmp_path)] == [False]


def test_compute_rejects_a_config_of_another_experiment():
    with pytest.raises(ValueError, match=r"missing \['alpha'"):
        reproduce.compute("fig4", Config(seed=0, depth=3), "cpu")
    cfg = EXPERIMENTS["fig4"].scales["quick"].replace(seed=0)
    with pytest.raises(ValueError, match=r"unknown \['colour'\]"):
        reproduce.compute("fig4", Config(**cfg.to_dict(), colour=1), "cpu")
    with pytest.raises(ValueError, match="must be a pncutils.book.config.Config"):
        reproduce.compute("fig4", cfg.to_dict(), "cpu")
    with pytest.raises(ValueError, match="experiment must be one of"):
        reproduce.compute("fig9", cfg)


def test_load_or_run(tmp_path, fig4_path):
    committed, fresh = tmp_path / "committed", tmp_path / "fresh"
    committed.mkdir()
    assert reproduce.load_or_run("fig4", "quick", recompute=False, results_dir=committed) is None
    # "auto" on a machine without CUDA (or for a CPU experiment) only reads
    assert reproduce.load_or_run("fig4", "quick", results_dir=committed) is None
    (committed / fig4_path.name).write_bytes(fig4_path.read_bytes())
    got = reproduce.load_or_run("fig4", "quick", recompute=False, results_dir=committed)
    assert got == reproduce.Record.from_dict(load_result(fig4_path))
    assert got.config == load_result(fig4_path)["config"] and got.meta["device"] == "cpu"
    # a fresh run goes to out_dir, never to the committed folder
    new = reproduce.load_or_run("fig4", "quick", recompute=True, results_dir=committed,
                                out_dir=fresh)
    assert new.result == got.result and (fresh / "fig4-quick.json").is_file()
    assert [p.name for p in committed.iterdir()] == [fig4_path.name]
    # a stale committed file is not used
    res = load_result(fig4_path)
    cfg = {**res["config"], "lr": 0.05}
    stale = {**res, "config": cfg, "config_hash": config_hash("fig4", "quick", cfg)}
    (committed / fig4_path.name).write_text(json.dumps(stale))
    with pytest.warns(UserWarning, match="out of date"):
        assert reproduce.load_or_run("fig4", "quick", False, results_dir=committed) is None
    with pytest.raises(ValueError, match="recompute must be True, False or 'auto'"):
        reproduce.load_or_run("fig4", "quick", recompute="yes")
    with pytest.raises(ValueError, match="scale must be one of"):
        reproduce.load_or_run("fig4", "huge")


def test_results_overview_and_markdown(tmp_path, fig4_path):
    (tmp_path / "fig4-quick.json").write_bytes(fig4_path.read_bytes())
    res = load_result(fig4_path)
    cfg = {**res["config"], "seed": 3, "lr": 0.05}
    stale = {**res, "config": cfg, "config_hash": config_hash("fig4", "book", cfg),
             "scale": "book", "wall_time_s": 4000.0}
    (tmp_path / "fig4-book-seed3.json").write_text(json.dumps(stale))
    rows = reproduce.results_overview(tmp_path)
    assert [(r["scale"], r["seed"], r["current"]) for r in rows] == [
        ("quick", 0, True), ("book", 3, False)]
    table = reproduce.overview_markdown(rows).splitlines()
    assert len(table) == 4 and table[0].startswith("| experiment | scale | device |")
    assert "| fig4 | book (seed 3) | cpu | 1.11 h |" in table[3] and table[3].endswith("| no |")
    with pytest.raises(ValueError, match="is not a folder"):
        reproduce.results_overview(tmp_path / "nothing")
    (tmp_path / "junk.json").write_text("{}")
    with pytest.raises(ValueError, match="missing field"):
        reproduce.results_overview(tmp_path)


def test_hybrid_results_hold_the_linear_floor(hybrid_path):
    r = _record(hybrid_path).result
    cfg = EXPERIMENTS["hybrid"].scales["quick"]
    for net in r.networks.values():
        f = net.linear_floor
        assert f.layers == list(range(net.num_nonlinear, cfg.depth + 1))
        assert all(v > 0 for v in f.least_squares_floor)  # N > width: no interpolation
        assert f.least_squares_loss <= f.network_loss
        assert f.end_to_end_compression == pytest.approx(net.logits.compression, rel=1e-3)


# ----------------------------------------------------------------------------------------
# which claims about paper-scale files are checked
# ----------------------------------------------------------------------------------------


def test_paper_scale_uses_cover_the_registry():
    assert set(reproduce.PAPER_SCALE_USES) == set(EXPERIMENTS)
    for uses in reproduce.PAPER_SCALE_USES.values():
        assert uses and all(re.fullmatch(r"ch0\d", u.chapter) and u.claim for u in uses)


def test_paper_scale_checks_follow_the_files(tmp_path):
    rows = reproduce.paper_scale_checks(tmp_path)  # an empty folder
    n_uses = sum(len(u) for u in reproduce.PAPER_SCALE_USES.values())
    assert len(rows) == n_uses and not any(r["committed"] for r in rows)
    for r in rows:
        use = next(u for u in reproduce.PAPER_SCALE_USES[r["experiment"]]
                   if u.chapter == r["chapter"])
        expected = ("checked" if use.recomputed else "waiting for the file") if use.asserted \
            else "not shown"
        assert r["status"] == expected and r["asserted"] == use.asserted
    # a current paper-scale file turns its uses into checked / shown
    path = run("fig3b", "quick", out_dir=tmp_path / "q")
    res = load_result(path)
    paper_cfg = EXPERIMENTS["fig3b"].scales["paper"].to_dict()
    fake = {**res, "scale": "paper", "config": paper_cfg,
            "config_hash": config_hash("fig3b", "paper", paper_cfg)}
    (tmp_path / "fig3b-paper.json").write_text(json.dumps(fake))
    status = {(r["experiment"], r["chapter"]): r["status"]
              for r in reproduce.paper_scale_checks(tmp_path)}
    assert status[("fig3b", "ch05")] == "shown"
    assert status[("hybrid", "ch05")] == "waiting for the file"
    # a stale file (config no longer registered) counts as missing
    stale = {**fake, "config": {**paper_cfg, "epochs": paper_cfg["epochs"] + 1}}
    stale["config_hash"] = config_hash("fig3b", "paper", stale["config"])
    (tmp_path / "fig3b-paper.json").write_text(json.dumps(stale))
    status = {(r["experiment"], r["chapter"]): r["status"]
              for r in reproduce.paper_scale_checks(tmp_path)}
    assert status[("fig3b", "ch05")] == "not shown"


def test_paper_scale_checks_of_this_checkout():
    committed = {p.name for p in COMMITTED}
    for r in reproduce.paper_scale_checks():
        assert r["committed"] == (f"{r['experiment']}-paper.json" in committed)


def test_the_checkout_is_found_from_any_working_directory(tmp_path, monkeypatch):
    """Chapters run in book/: the committed files and the git commit must still be found."""
    monkeypatch.chdir(tmp_path)
    assert reproduce._REPO_ROOT == ROOT
    assert reproduce.default_out_dir() == ROOT / "book" / "results"
    if (ROOT / ".git").exists():
        commit, dirty = reproduce._git_info()
        assert commit is not None and re.fullmatch(r"[0-9a-f]{40}", commit.strip())
        assert isinstance(dirty, bool)
