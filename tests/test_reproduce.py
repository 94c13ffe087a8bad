"""Tests of pncutils.reproduce: result files, their verification, the registry and the CLI."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime
from pathlib import Path

import pytest
import torch

from pncutils import reproduce
from pncutils.config import Config
from pncutils.data import DatasetNotFoundError, load_dataset
from pncutils.reproduce import (
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
def fig4_path(tmp_path_factory):
    return run("fig4", "quick", device="cpu", out_dir=tmp_path_factory.mktemp("fig4"))


@pytest.fixture(scope="module")
def hybrid_path(tmp_path_factory):
    reason = _fashion_mnist_missing()
    if reason:
        pytest.skip(reason)
    return run("hybrid", "quick", device="cpu", out_dir=tmp_path_factory.mktemp("hybrid"))


@pytest.fixture(params=["fig4", "hybrid"])
def result_path(request):
    return request.getfixturevalue(f"{request.param}_path")


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
    assert res["config"]["seed"] == 5 and res["results"]["seeds"] == [5, 6, 7]
    assert res["config_hash"] != ref["config_hash"]
    verify_result(path, against_registry=True)


# ----------------------------------------------------------------------------------------
# the results
# ----------------------------------------------------------------------------------------


def test_fig4_results(fig4_path):
    r = load_result(fig4_path)["results"]
    cfg = EXPERIMENTS["fig4"].scales["quick"]
    assert r["seeds"] == list(range(cfg.num_seeds))
    s = r["summary"]
    assert s["all_converged"]
    # the theorem's rate (book section 3.4: 0.2803 +- 0.0014 against the ideal 0.2846)
    assert abs(s["relative_error_measured_vs_ideal"]) < 0.05
    assert s["log_compression_fit_r2_min"] > 0.99
    for p in r["per_seed"]:
        assert p["measured"]["layer"] == list(range(cfg.depth))
        assert len(p["predicted"]["compression"]) == cfg.depth
        assert p["final_loss"] < cfg.loss_threshold
        assert len(p["loss_curve"]["loss"]) == p["epochs_run"]


def test_hybrid_results(hybrid_path):
    res = load_result(hybrid_path)
    cfg = EXPERIMENTS["hybrid"].scales["quick"]
    r = res["results"]
    assert r["num_train"] == 10 * cfg.num_per_class and r["input_dim"] == 784
    assert set(r["networks"]) == {"hybrid", "mlp"}
    for net in r["networks"].values():
        layers = net["layers"]
        assert layers["layer"] == list(range(cfg.depth))
        assert {"compression", "rank", "probe_train_acc", "probe_test_acc"} <= set(layers)
        assert all(0 <= a <= 1 for a in layers["probe_test_acc"])
        assert net["epochs_run"] == cfg.epochs and net["final_loss"] < net["loss_curve"]["loss"][0]
        assert 0 < len(net["loss_curve"]["epoch"]) <= reproduce.MAX_CURVE_POINTS
        pca = net["pca"]
        n = len(pca["labels"])
        assert pca["layers"] == cfg.pca_layers and n == cfg.pca_samples
        assert [len(x) for x in pca["x"]] == [n] * len(cfg.pca_layers)
        assert all(len(f"{v:g}".lstrip("-").replace(".", "")) <= 9 for v in pca["x"][0])
        assert net["summary"]["fit_layers"] == list(range(cfg.hybrid_nonlinear, cfg.depth))


def test_subsample_curve():
    out = reproduce._subsample_curve([float(i) for i in range(1000)])
    assert len(out["epoch"]) == 200 and out["epoch"][0] == 0 and out["epoch"][-1] == 999
    assert out["loss"] == [float(e) for e in out["epoch"]]
    assert reproduce._subsample_curve([3.0, 2.0]) == {"epoch": [0, 1], "loss": [3.0, 2.0]}


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
    assert "experiment must be one of ('hybrid', 'fig4')" in capsys.readouterr().err
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
