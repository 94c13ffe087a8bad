"""Tests of pncutils.training, including the theory check of spec §3.4 (GD on a 6-layer DLN)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import time

import pytest
import torch

from pncutils import metrics
from pncutils.models import DeepLinearNetwork, HybridNetwork
from pncutils.theory import ideal_compression_rate
from pncutils.training import History, TrainConfig, learning_rate, train, train_many

F64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def tiny() -> tuple[torch.Tensor, torch.Tensor]:
    """12 well-conditioned samples in 16 dimensions, 3 balanced classes (interpolable)."""
    g = gen(0)
    Q, _ = torch.linalg.qr(torch.randn(16, 16, generator=g, dtype=F64))
    X = 2.0 * Q[:, :12].T + 0.1 * torch.randn(12, 16, generator=g, dtype=F64)
    y = torch.arange(12) % 3
    return X, y


def dln(seed: int = 0, scale: float = 0.5, depth: int = 3, width: int = 16) -> DeepLinearNetwork:
    return DeepLinearNetwork(
        16, width, 3, depth=depth, init_scale=scale, generator=gen(seed)
    ).double()


def cfg(**kw) -> TrainConfig:
    kw.setdefault("progress", False)
    return TrainConfig(**kw)


def mse(model, X, y, alpha):
    with torch.no_grad():
        Y = torch.nn.functional.one_hot(y, model.num_classes).to(X.dtype)
        return ((alpha * model(X) - Y) ** 2).sum(1).mean().item()


# ------------------------------------------------------------------------------- basics


def test_loss_decreases_full_batch(tiny):
    X, y = tiny
    net = dln()
    h = train(net, X, y, cfg(lr=0.1, epochs=150), device="cpu")
    assert h.epochs_run == 150 == len(h.loss) == len(h.lr)
    assert h.final_loss < 1e-2 * h.loss[0]
    assert not h.converged
    assert h.device == "cpu" and h.wall_time > 0
    assert h.config == dataclasses.asdict(cfg(lr=0.1, epochs=150))
    # the model is left in eval mode, in float64, and the recorded loss is the paper's MSE
    assert not net.training
    assert next(net.parameters()).dtype == F64
    assert mse(net, X, y, 1.0) < h.final_loss


def test_first_loss_is_the_paper_mse(tiny):
    X, y = tiny
    net = dln()
    expected = mse(net, X, y, 3.0)
    h = train(net, X, y, cfg(lr=1e-3, epochs=1, alpha=3.0), device="cpu")
    assert h.loss[0] == pytest.approx(expected, rel=1e-12)


def ce(model, X, y, alpha):
    """Cross-entropy of the scaled logits, mean over the samples (torch's own reduction)."""
    with torch.no_grad():
        return torch.nn.functional.cross_entropy(alpha * model(X), y).item()


def test_first_loss_is_the_cross_entropy_of_scaled_logits(tiny):
    """The loss of epoch 0 (taken before the step) is CE(α f(X), y), averaged over samples."""
    X, y = tiny
    alpha = 3.0
    net = dln()
    expected = ce(net, X, y, alpha)
    # the value is neither the unscaled CE nor the sum over the 12 samples
    assert abs(expected - ce(net, X, y, 1.0)) > 1e-3 * expected
    h = train(net, X, y, cfg(lr=1e-3, epochs=1, alpha=alpha, loss="cross_entropy"), device="cpu")
    assert h.loss[0] == pytest.approx(expected, rel=1e-12)
    # mini-batches 5, 5, 2 at a negligible learning rate: the sample-weighted mean is the same
    net = dln()
    h = train(
        net, X, y, cfg(lr=1e-12, epochs=1, alpha=alpha, loss="cross_entropy", batch_size=5),
        device="cpu",
    )
    assert h.loss[0] == pytest.approx(expected, rel=1e-9)


def test_train_many_first_loss_is_the_cross_entropy_of_scaled_logits(tiny):
    X, y = tiny
    alphas = [0.5, 4.0]
    nets = [dln(0), dln(1)]
    expected = [ce(net, X, y, a) for net, a in zip(nets, alphas, strict=True)]
    cfgs = [cfg(lr=1e-3, epochs=1, alpha=a, loss="cross_entropy") for a in alphas]
    hs = train_many(nets, X, y, cfgs, device="cpu")
    for h, e in zip(hs, expected, strict=True):
        assert h.loss[0] == pytest.approx(e, rel=1e-12)


def test_loss_decreases_minibatch_and_cross_entropy(tiny):
    X, y = tiny
    h = train(dln(), X, y, cfg(lr=0.05, epochs=60, batch_size=5, momentum=0.9), device="cpu")
    assert h.final_loss < 0.1 * h.loss[0]
    h = train(dln(), X, y, cfg(lr=0.5, epochs=60, loss="cross_entropy"), device="cpu")
    assert h.final_loss < 0.2 * h.loss[0]


def test_float32_inputs_are_cast_to_the_model_dtype(tiny):
    X, y = tiny
    h64 = train(dln(), X.float(), y, cfg(lr=0.1, epochs=5), device="cpu")
    h64b = train(dln(), X.float().double(), y, cfg(lr=0.1, epochs=5), device="cpu")
    assert h64.loss == h64b.loss
    net32 = DeepLinearNetwork(16, 16, 3, depth=3, init_scale=0.5, generator=gen(0))
    train(net32, X, y, cfg(lr=0.1, epochs=5), device="cpu")
    assert next(net32.parameters()).dtype == torch.float32


def test_numpy_inputs(tiny):
    X, y = tiny
    h = train(dln(), X.numpy(), y.numpy(), cfg(lr=0.1, epochs=3), device="cpu")
    assert h.loss == train(dln(), X, y, cfg(lr=0.1, epochs=3), device="cpu").loss


# ----------------------------------------------------------------------------- reproducible


def test_same_seed_identical_history_and_weights(tiny):
    X, y = tiny
    c = cfg(lr=0.05, epochs=15, batch_size=4, momentum=0.9, weight_decay=1e-3, seed=7)
    runs = []
    for _ in range(2):
        net = HybridNetwork(
            16, 12, 3, depth=4, num_nonlinear=2, init_scale=0.5, generator=gen(1)
        ).double()
        runs.append((train(net, X, y, c, device="cpu"), net))
    (h1, n1), (h2, n2) = runs
    assert h1.loss == h2.loss and h1.lr == h2.lr and h1.epochs_run == h2.epochs_run
    for (k, a), b in zip(n1.state_dict().items(), n2.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    other = HybridNetwork(
        16, 12, 3, depth=4, num_nonlinear=2, init_scale=0.5, generator=gen(1)
    ).double()
    h3 = train(other, X, y, dataclasses.replace(c, seed=8), device="cpu")
    assert h3.loss != h1.loss  # another mini-batch order


def test_full_batch_equals_batch_size_n(tiny):
    X, y = tiny
    a, b = dln(), dln()
    ha = train(a, X, y, cfg(lr=0.1, epochs=40, momentum=0.5), device="cpu")
    hb = train(b, X, y, cfg(lr=0.1, epochs=40, momentum=0.5, batch_size=12), device="cpu")
    hc = train(dln(), X, y, cfg(lr=0.1, epochs=40, momentum=0.5, batch_size=100), device="cpu")
    torch.testing.assert_close(torch.tensor(ha.loss), torch.tensor(hb.loss), rtol=1e-10, atol=0)
    torch.testing.assert_close(torch.tensor(ha.loss), torch.tensor(hc.loss), rtol=1e-10, atol=0)
    for Wa, Wb in zip(a.weights(), b.weights(), strict=True):
        torch.testing.assert_close(Wa, Wb, rtol=1e-10, atol=1e-13)


def test_minibatch_epoch_loss_is_sample_weighted_mean(tiny):
    """Epoch loss of B=5 on N=12 (batches 5, 5, 2) weighs batches by their sizes."""
    X, y = tiny
    net = dln()
    h = train(net, X, y, cfg(lr=1e-12, epochs=1, batch_size=5), device="cpu")
    # with a negligible learning rate every batch sees the initial weights
    assert h.loss[0] == pytest.approx(mse(net, X, y, 1.0), rel=1e-9)


# ------------------------------------------------------------------------------- schedule


def test_cosine_schedule_values():
    c = cfg(lr=0.2, epochs=100, min_lr_ratio=0.1)
    lr_min = 0.02
    assert learning_rate(c, 0) == pytest.approx(0.2)
    assert learning_rate(c, 50) == pytest.approx((0.2 + lr_min) / 2)
    assert learning_rate(c, 100) == pytest.approx(lr_min)
    assert learning_rate(c, 250) == pytest.approx(lr_min)  # stays at the floor
    assert learning_rate(c, 25) == pytest.approx(lr_min + (0.2 - lr_min) * (1 + math.sqrt(0.5)) / 2)
    vals = [learning_rate(c, e) for e in range(101)]
    assert all(a >= b for a, b in itertools.pairwise(vals))
    # the paper's theory run: T = 5000 with η_min = lr / 10, stopped after ~60 epochs
    t = cfg(lr=0.1, epochs=100, schedule_epochs=5000, min_lr_ratio=0.1)
    assert learning_rate(t, 2500) == pytest.approx(0.055)
    assert learning_rate(t, 5000) == pytest.approx(0.01)
    expected_60 = 0.01 + 0.09 * (1 + math.cos(math.pi * 60 / 5000)) / 2
    assert learning_rate(t, 60) == pytest.approx(expected_60)


def test_constant_schedule_and_history_lr(tiny):
    X, y = tiny
    c = cfg(lr=0.3, epochs=10, schedule="constant")
    assert {learning_rate(c, e) for e in range(20)} == {0.3}
    c = cfg(lr=0.1, epochs=10, min_lr_ratio=0.5)
    h = train(dln(), X, y, c, device="cpu")
    assert h.lr == [learning_rate(c, e) for e in range(10)]


def test_learning_rate_errors():
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        learning_rate(cfg(lr=0.1, epochs=3), -1)
    with pytest.raises(ValueError, match="TrainConfig"):
        learning_rate({"lr": 0.1}, 0)


# -------------------------------------------------------------------------- early stopping


def test_loss_threshold_stops_early(tiny):
    X, y = tiny
    h = train(dln(), X, y, cfg(lr=0.2, epochs=2000, loss_threshold=1e-6), device="cpu")
    assert h.converged
    assert h.epochs_run < 2000 and h.epochs_run == len(h.loss)
    assert h.final_loss < 1e-6
    assert all(v >= 1e-6 for v in h.loss[:-1])


def test_diverging_run_stops(tiny):
    X, y = tiny
    h = train(dln(), X, y, cfg(lr=1e3, epochs=500, alpha=10.0, loss_threshold=1e-6), device="cpu")
    assert not h.converged
    assert h.epochs_run < 500
    assert not math.isfinite(h.final_loss)


# ------------------------------------------------------------------------------ eval_every


def test_eval_every_records_tables(tiny):
    X, y = tiny
    net = dln(depth=4)
    h = train(net, X, y, cfg(lr=0.1, epochs=10, eval_every=4), device="cpu")
    assert sorted(h.metrics) == [0, 4, 8, 10]
    for table in h.metrics.values():
        assert isinstance(table, metrics.LayerTable)
        assert len(table) == 4
        assert table.layer.tolist() == [0, 1, 2, 3]
    with torch.no_grad():
        expected = metrics.layerwise(net.features(X), y, num_classes=3)
    assert h.metrics[10] == expected
    # layer 0 (the input) does not change with training
    assert h.metrics[0]["compression"][0] == h.metrics[10]["compression"][0]


def test_eval_every_with_early_stop_and_exact_multiple(tiny):
    X, y = tiny
    h = train(
        dln(), X, y, cfg(lr=0.2, epochs=2000, loss_threshold=1e-4, eval_every=5), device="cpu"
    )
    assert h.converged
    expected = set(range(0, h.epochs_run, 5)) | {h.epochs_run}
    assert set(h.metrics) == expected
    h = train(dln(), X, y, cfg(lr=0.1, epochs=6, eval_every=3), device="cpu")
    assert sorted(h.metrics) == [0, 3, 6]


def test_eval_on_large_data_streams_in_chunks():
    """N > 4096: the table comes from LayerwiseStats and equals layerwise on all rows."""
    N = 5000
    X = torch.randn(N, 4, generator=gen(0), dtype=F64)
    y = torch.arange(N) % 2
    X[y == 1] += 1.0
    net = DeepLinearNetwork(4, 6, 2, depth=3, init_scale=0.5, generator=gen(1)).double()
    h = train(net, X, y, cfg(lr=0.05, epochs=1, eval_every=1), device="cpu")
    with torch.no_grad():
        expected = metrics.layerwise(net.features(X), y, num_classes=2)
    for col in ("compression", "discrimination", "trace_within", "trace_between"):
        torch.testing.assert_close(h.metrics[1][col], expected[col], rtol=1e-9, atol=1e-12)


def test_history_to_dict_is_json(tiny):
    X, y = tiny
    h = train(dln(), X, y, cfg(lr=0.1, epochs=4, eval_every=2), device="cpu")
    d = json.loads(json.dumps(h.to_dict()))
    assert d["epochs_run"] == 4 and d["loss"] == h.loss and d["final_loss"] == h.final_loss
    assert set(d["metrics"]) == {"0", "2", "4"}
    assert d["config"]["lr"] == 0.1
    back = History.from_dict(d)
    assert back.loss == h.loss and back.metrics == h.metrics and back.config == h.config


def test_progress_bar_runs(tiny, capsys):
    X, y = tiny
    h = train(dln(), X, y, cfg(lr=0.1, epochs=3, progress=True), device="cpu")
    assert h.epochs_run == 3
    err = capsys.readouterr().err
    assert "train:" in err and "0/3" in err  # tqdm's bar (desc "train", 3 epochs) on stderr
    h = train(dln(), X, y, cfg(lr=0.1, epochs=3, progress=False), device="cpu")
    assert h.epochs_run == 3
    assert capsys.readouterr() == ("", "")
    train_many([dln(0), dln(1)], X, y, cfg(lr=0.1, epochs=3, progress=True), device="cpu")
    assert "train:" in capsys.readouterr().err


# -------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(lr=0.0), "lr must be > 0"),
        (dict(lr=-1.0), "lr must be > 0"),
        (dict(lr=float("inf")), "lr must be finite"),
        (dict(epochs=0), "epochs must be >= 1"),
        (dict(epochs=1.5), "epochs must be an integer"),
        (dict(alpha=0.0), "alpha must be > 0"),
        (dict(batch_size=0), "batch_size must be >= 1"),
        (dict(momentum=1.0), "momentum must be < 1"),
        (dict(momentum=-0.1), "momentum must be >= 0"),
        (dict(weight_decay=-1e-4), "weight_decay must be >= 0"),
        (dict(schedule="step"), r"schedule must be one of \('cosine', 'constant'\)"),
        (dict(loss_threshold=0.0), "loss_threshold must be > 0"),
        (dict(eval_every=0), "eval_every must be >= 1"),
        (dict(seed=-1), "seed must be >= 0"),
        (dict(min_lr_ratio=1.5), "min_lr_ratio must be <= 1"),
        (dict(schedule_epochs=0), "schedule_epochs must be >= 1"),
        (dict(loss="hinge"), r"loss must be one of \('mse', 'cross_entropy'\)"),
        (dict(progress="yes"), "progress must be True, False or None"),
        (dict(compile=1), "compile must be True or False"),
    ],
)
def test_config_errors(kwargs, match):
    args = dict(lr=0.1, epochs=10)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        TrainConfig(**args)


def test_config_is_frozen_and_normalised():
    c = TrainConfig(lr=1, epochs=3, alpha=100)
    assert isinstance(c.lr, float) and isinstance(c.alpha, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.lr = 0.5  # type: ignore[misc]


def test_train_data_errors(tiny):
    X, y = tiny
    c = cfg(lr=0.1, epochs=1)
    with pytest.raises(ValueError, match="X has 12 rows but y has 11 labels"):
        train(dln(), X, y[:11], c, device="cpu")
    with pytest.raises(ValueError, match="X has 15 columns but the model's input dimension is 16"):
        train(dln(), X[:, :15], y, c, device="cpu")
    with pytest.raises(ValueError, match=r"labels in \[0, 3\)"):
        train(dln(), X, y + 1, c, device="cpu")
    with pytest.raises(ValueError, match="integer class labels"):
        train(dln(), X, y.double() + 0.5, c, device="cpu")
    with pytest.raises(ValueError, match="2-D"):
        train(dln(), X[0], y, c, device="cpu")
    with pytest.raises(ValueError, match="1-D"):
        train(dln(), X, y[:, None], c, device="cpu")
    Xbad = X.clone()
    Xbad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        train(dln(), Xbad, y, c, device="cpu")
    with pytest.raises(ValueError, match="TrainConfig"):
        train(dln(), X, y, {"lr": 0.1}, device="cpu")
    with pytest.raises(ValueError, match="nn.Module"):
        train(lambda x: x, X, y, c, device="cpu")


def test_batch_norm_single_sample_batch_is_refused(tiny):
    X, y = tiny
    net = HybridNetwork(16, 8, 3, depth=3, num_nonlinear=1, generator=gen())
    with pytest.raises(ValueError, match="last mini-batch of 1 sample"):
        train(net, X, y, cfg(lr=0.1, epochs=1, batch_size=11), device="cpu")


# ---------------------------------------------------------------------------- train_many


def test_train_many_equals_separate_trains(tiny):
    X, y = tiny
    seeds = [0, 1, 2]
    cfgs = [
        cfg(lr=0.2, epochs=300, loss_threshold=1e-5),
        cfg(lr=0.1, epochs=300, loss_threshold=1e-8, alpha=2.0, momentum=0.5),
        cfg(lr=0.05, epochs=300, weight_decay=1e-4, min_lr_ratio=0.3),  # no threshold
    ]
    batch = [dln(s, scale=0.4) for s in seeds]
    hs = train_many(batch, X, y, cfgs, device="cpu")
    assert [h.converged for h in hs] == [True, True, False]
    for s, c, h, net in zip(seeds, cfgs, hs, batch, strict=True):
        ref = dln(s, scale=0.4)
        hr = train(ref, X, y, c, device="cpu")
        assert h.epochs_run == hr.epochs_run and h.converged == hr.converged
        assert h.lr == hr.lr
        torch.testing.assert_close(
            torch.tensor(h.loss), torch.tensor(hr.loss), rtol=1e-9, atol=1e-15
        )
        for Wm, Wr in zip(net.weights(), ref.weights(), strict=True):
            torch.testing.assert_close(Wm, Wr, rtol=1e-10, atol=1e-12)
        assert not net.training
        assert h.config == dataclasses.asdict(c)
    # the models stopped at different epochs, each at its own threshold
    assert hs[0].epochs_run != hs[1].epochs_run
    assert max(hs[0].epochs_run, hs[1].epochs_run) < hs[2].epochs_run == 300


def test_train_many_per_model_data_and_eval(tiny):
    _, y = tiny
    Xs = torch.randn(2, 12, 16, generator=gen(5), dtype=F64)
    ys = torch.stack([y, y.flip(0)])
    c = cfg(lr=0.1, epochs=7, eval_every=3, alpha=1.5, loss="cross_entropy")
    batch = [dln(0), dln(1)]
    hs = train_many(batch, Xs, ys, c, device="cpu")
    for s in range(2):
        ref = dln(s)
        hr = train(ref, Xs[s], ys[s], c, device="cpu")
        torch.testing.assert_close(
            torch.tensor(hs[s].loss), torch.tensor(hr.loss), rtol=1e-9, atol=0
        )
        assert sorted(hs[s].metrics) == sorted(hr.metrics) == [0, 3, 6, 7]
        for e in hr.metrics:
            torch.testing.assert_close(
                hs[s].metrics[e]["compression"], hr.metrics[e]["compression"], rtol=1e-9, atol=0
            )


def test_train_many_errors(tiny):
    X, y = tiny
    c = cfg(lr=0.1, epochs=2)
    with pytest.raises(ValueError, match="full batch only"):
        train_many([dln(0), dln(1)], X, y, cfg(lr=0.1, epochs=2, batch_size=4), device="cpu")
    with pytest.raises(ValueError, match="must share 'epochs'"):
        train_many([dln(0), dln(1)], X, y, [c, cfg(lr=0.1, epochs=3)], device="cpu")
    with pytest.raises(ValueError, match="must share 'schedule'"):
        train_many(
            [dln(0), dln(1)], X, y, [c, cfg(lr=0.1, epochs=2, schedule="constant")], device="cpu"
        )
    with pytest.raises(ValueError, match="got 2 models but 1 configurations"):
        train_many([dln(0), dln(1)], X, y, [c], device="cpu")
    hybrid = HybridNetwork(16, 16, 3, depth=3, num_nonlinear=1, generator=gen()).double()
    with pytest.raises(ValueError, match="deep linear networks only"):
        train_many([dln(0), hybrid], X, y, c, device="cpu")
    with pytest.raises(ValueError, match="same"):
        train_many([dln(0), dln(1, width=8)], X, y, c, device="cpu")
    with pytest.raises(ValueError, match="first dimension must be S=2"):
        train_many([dln(0), dln(1)], X.expand(3, -1, -1), y, c, device="cpu")
    with pytest.raises(ValueError, match="X has 12 rows but y has 10 labels"):
        train_many([dln(0), dln(1)], X, y[:10], c, device="cpu")
    with pytest.raises(ValueError, match="empty"):
        train_many([], X, y, c, device="cpu")
    net = dln(0)
    with pytest.raises(ValueError, match="more than once"):
        train_many([net, net], X, y, c, device="cpu")


# ------------------------------------------------------------------- the theory check (§3.4)


def orthogonal_data(g: torch.Generator, N: int = 30, d: int = 50, K: int = 3):
    """The reference generator (spec §1.1): orthonormal rows plus a ‖Δ‖_F = 1 perturbation."""
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=F64))
    Delta = torch.randn(N, d, generator=g, dtype=F64)
    X = Q[:, :N].T + Delta / torch.linalg.norm(Delta)  # (N, d)
    y = torch.arange(N) // (N // K)  # class blocks of n = N / K
    return X, y


def compression_discrimination(H: torch.Tensor, y: torch.Tensor, K: int) -> tuple[float, float]:
    """C = tr Σ_W / tr Σ_B and D = 1 − max_{k≠k'} cos(μ_k, μ_k') (uncentred means, signed)."""
    M = torch.stack([H[y == k].mean(0) for k in range(K)])  # (K, D)
    tr_W = ((H - M[y]) ** 2).sum() / H.shape[0]
    tr_B = ((M - M.mean(0)) ** 2).sum() / K
    Mn = M / M.norm(dim=1, keepdim=True)
    cos = (Mn @ Mn.T)[torch.triu_indices(K, K, 1).unbind()]
    return (tr_W / tr_B).item(), (1 - cos.max()).item()


def test_theory_rate_and_linear_discrimination():
    """GD from small orthogonal init compresses at ρ = ξ²(α²/n)^{1/L}; D_l is linear in l.

    Setting of spec §3.4: N=30, d=h=50, K=3 (n=10), L=6, ξ=0.3, α=100, full-batch GD at
    lr 0.1 with a cosine schedule (T=5000, η_min=lr/10), stopped at loss < 1e-11; 5 seeds,
    each seed drawing its data and then its network from one generator.
    """
    t0 = time.perf_counter()
    L, K, n, xi, alpha = 6, 3, 10, 0.3, 100.0
    data, nets = [], []
    for seed in range(5):
        g = gen(seed)
        data.append(orthogonal_data(g))
        nets.append(DeepLinearNetwork(50, 50, K, depth=L, init_scale=xi, generator=g).double())
    X = torch.stack([X for X, _ in data])  # (S, N, d)
    y = data[0][1]
    c = cfg(
        lr=0.1,
        epochs=5000,
        alpha=alpha,
        schedule_epochs=5000,
        min_lr_ratio=0.1,
        loss_threshold=1e-11,
    )
    hists = train_many(nets, X, y, c, device="cpu")
    assert all(h.converged for h in hists)
    assert all(h.epochs_run < 500 for h in hists)  # the notebook needs ~60 epochs

    rates, D_curves = [], []
    for s, net in enumerate(nets):
        with torch.no_grad():
            feats = net.features(X[s])  # [X, H_1, ..., H_5]
        CD = [compression_discrimination(H, y, K) for H in feats]
        table = metrics.layerwise(list(feats), y)  # the library agrees with the test's own C, D
        assert table.compression.tolist() == pytest.approx([cd[0] for cd in CD], rel=1e-10)
        assert table.discrimination.tolist() == pytest.approx([cd[1] for cd in CD], rel=1e-10)
        C = [cd[0] for cd in CD]
        ratios = [C[i + 1] / C[i] for i in range(1, L - 1)]  # l >= 1
        rates.append(math.exp(sum(map(math.log, ratios)) / len(ratios)))
        D_curves.append([cd[1] for cd in CD[1:]])
    rate = sum(rates) / len(rates)
    ideal = ideal_compression_rate(xi, alpha, n, L)
    assert ideal == pytest.approx(xi**2 * (alpha**2 / n) ** (1 / L), rel=1e-12)  # 0.2846
    assert ideal == pytest.approx(0.2846, abs=1e-4)
    assert abs(rate / ideal - 1) < 0.05, f"measured rate {rate:.4f} vs ideal {ideal:.4f}"

    D = torch.tensor(D_curves, dtype=F64).mean(0)  # D_1..D_5 averaged over seeds
    ell = torch.arange(1, L, dtype=F64)
    A = torch.stack([ell, torch.ones_like(ell)], 1)
    fit = A @ torch.linalg.lstsq(A, D[:, None]).solution
    r2 = 1 - ((D - fit.flatten()) ** 2).sum() / ((D - D.mean()) ** 2).sum()
    assert r2 > 0.98, f"D_l = {D.tolist()} is not linear in l (R² = {r2:.4f})"
    assert time.perf_counter() - t0 < 30
