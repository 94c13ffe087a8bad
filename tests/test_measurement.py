"""pncutils.measure on a model with nested blocks, BatchNorm and pooling (no features method).

Every table is compared with features captured by hand (calling the submodules one by one in
eval mode) and measured by the independent per-sample numpy implementation of
``tests/_naive.py``, to 1e-10 in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _naive import naive_layer_metrics, naive_probe
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import pncutils as pnc
from pncutils.measurement import Measurement

K = 3
COLUMNS = ("compression", "discrimination", "nc1", "trace_within", "trace_between")


class Block(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Net(nn.Module):
    """stem -> stage1 (block, max-pool) -> stage2 (block) -> global pool -> head."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.stage1 = nn.Sequential(Block(4, 6), nn.MaxPool2d(2))
        self.stage2 = Block(6, 8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(8, K)
        self.unused = nn.Linear(2, 2)  # never called by forward
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x):
        return self.head(self.pool(self.stage2(self.stage1(self.stem(x)))).flatten(1))


@pytest.fixture(scope="module")
def setup():
    g = torch.Generator().manual_seed(1)
    y = torch.tensor([0] * 20 + [1] * 12 + [2] * 15)  # imbalanced, class-sorted
    X = torch.randn(len(y), 1, 8, 8, generator=g) + y[:, None, None, None] * 0.7
    net = Net()
    net.train()
    with torch.no_grad():  # running statistics that differ from any batch's statistics
        for _ in range(3):
            net(X[::2] * 1.5 + 0.3)
    return net, X.double(), y


def _by_hand(net: Net, X: torch.Tensor) -> dict[str, np.ndarray]:
    """Features of every block, computed by calling the submodules, in eval mode."""
    net = net.double()
    was = net.training
    net.eval()
    with torch.no_grad():
        stem = net.stem(X)
        b1 = net.stage1[0](stem)
        s1 = net.stage1(stem)
        s2 = net.stage2(s1)
        out = net(X)
        feats = {
            "input": X.flatten(1), "stem": stem.mean((2, 3)), "stem.2": stem.mean((2, 3)),
            "stage1.0": b1.mean((2, 3)), "stage1": s1.mean((2, 3)), "stage2": s2.mean((2, 3)),
            "stage2.bn": net.stage2.bn(net.stage2.conv(s1)).mean((2, 3)),
            "stage1.0.act": b1.mean((2, 3)), "stage2.act": s2.mean((2, 3)),
            "stage1_flat": s1.flatten(1), "stage2_grid2":
                nn.functional.adaptive_avg_pool2d(s2, 2).flatten(1),
            "pool": net.pool(s2).flatten(1), "head": out, "output": out,
        }
    net.train(was)
    return {k: v.numpy() for k, v in feats.items()}


def _check(m: Measurement, expected: list[np.ndarray], y, tol=1e-10):
    assert len(m.table) == len(expected)
    for row, H in enumerate(expected):
        ref = naive_layer_metrics(H, y.numpy())
        assert m.table.dim[row] == H.shape[1]
        for col in COLUMNS:
            got = float(m.table[col][row])
            assert got == pytest.approx(ref[col], rel=tol, abs=tol), (m.names[row], col)


def test_names_patterns_and_types_against_hand_captured_features(setup):
    net, X, y = setup
    net = net.double()
    hand = _by_hand(net, X)
    m = pnc.measure(net, (X, y), layers=["input", "stem", "stage1", "stage2.bn", "output"],
                    batch_size=7)
    assert m.names == ("input", "stem", "stage1", "stage2.bn", "output")
    _check(m, [hand[n] for n in m.names], y)
    assert m.pooling[0] == "flatten (1x8x8 -> 64)" and m.pooling[-1] == "none"
    assert m.pooling[2] == "avg (6x4x4 -> 6)"
    pattern = pnc.measure(net, (X, y), layers="stage?", batch_size=16)
    assert pattern.names == ("stage1", "stage2")
    _check(pattern, [hand["stage1"], hand["stage2"]], y)
    by_type = pnc.measure(net, (X, y), layers=[Block], batch_size=16)
    assert by_type.names == ("stage1.0", "stage2")
    _check(by_type, [hand["stage1.0"], hand["stage2"]], y)
    relus = pnc.measure(net, (X, y), layers=nn.ReLU, batch_size=16)
    assert relus.names == ("stem.2", "stage1.0.act", "stage2.act")
    _check(relus, [hand[n] for n in relus.names], y)


def test_default_layers_are_the_children_and_an_unused_one_is_an_error(setup):
    net, X, y = setup
    with pytest.raises(ValueError, match="'unused' never fired"):
        pnc.measure(net.double(), (X, y))
    m = pnc.measure(net.double(), (X, y), layers=["stem", "stage1", "stage2", "pool", "head"])
    hand = _by_hand(net, X)
    _check(m, [hand[n] for n in m.names], y)


def test_pooling_choices_are_applied_and_recorded(setup):
    net, X, y = setup
    hand = _by_hand(net.double(), X)
    flat = pnc.measure(net, (X, y), layers="stage1", pool="flatten", nc1=False)
    assert flat.pooling == ("flatten (6x4x4 -> 96)",) and flat.table.dim.tolist() == [96.0]
    ref = naive_layer_metrics(hand["stage1_flat"], y.numpy())
    assert float(flat.table.compression[0]) == pytest.approx(ref["compression"], rel=1e-10)
    assert np.isnan(float(flat.table.nc1[0]))
    grid = pnc.measure(net, (X, y), layers="stage2", pool=2)
    assert grid.pooling == ("grid 2x2 (8x4x4 -> 32)",)
    _check(grid, [hand["stage2_grid2"]], y)


def test_tokens_are_averaged_over_the_sequence():
    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(3, 5)

        def forward(self, x):  # (B, T, 3) -> (B, T, 5)
            return self.embed(x)

    g = torch.Generator().manual_seed(2)
    X, y = torch.randn(30, 4, 3, generator=g, dtype=torch.float64), torch.arange(30) % 3
    model = Tokens().double()
    m = pnc.measure(model, (X, y), layers="embed")
    with torch.no_grad():
        H = model.embed(X).mean(1).numpy()
    assert m.pooling == ("avg (4x5 -> 5)",)
    _check(m, [H], y)


def test_uneven_batches_and_a_last_batch_without_some_classes(setup):
    net, X, y = setup
    hand = _by_hand(net.double(), X)
    loader = DataLoader(TensorDataset(X, y), batch_size=13, shuffle=False)  # last: class 2 only
    assert set(list(loader)[-1][1].tolist()) == {2}
    m = pnc.measure(net, loader, layers=["stem", "stage2"], num_classes=K)
    _check(m, [hand["stem"], hand["stage2"]], y)
    assert m.num_samples == len(y)


def test_mode_parameters_and_buffers_are_restored_bit_for_bit(setup):
    net, X, y = setup
    net.train()
    net.stage2.eval()  # mixed modes come back as they were
    before = {k: v.clone() for k, v in net.state_dict().items()}
    modes = {n: m.training for n, m in net.named_modules()}
    pnc.measure(net, (X, y), layers=["stem", "stage2.bn"], rank=True, probe=True)
    assert {n: m.training for n, m in net.named_modules()} == modes
    after = net.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k
    net.train()


def test_hooks_are_removed_and_modes_restored_after_an_exception(setup):
    net, X, y = setup
    net.train()

    def batches():
        yield X[:10], y[:10]
        raise RuntimeError("the loader broke")

    with pytest.raises(RuntimeError, match="loader broke"):
        pnc.measure(net, batches(), layers=["stem", "stage1.0"], num_classes=K)
    assert all(not m._forward_hooks for m in net.modules())
    assert all(m.training for m in net.modules())


@pytest.mark.parametrize("layers, match", [
    ("stage3", r"'stage3' matches no submodule of Net; close names: \['stage2', 'stage1'"),
    ("stem.*.zzz", "matches no submodule"),
    (nn.GELU, "matches no submodule"),
    ([], "non-empty"),
    ([3], "neither a module name"),
])
def test_bad_layer_selectors(setup, layers, match):
    net, X, y = setup
    with pytest.raises(ValueError, match=match):
        pnc.measure(net, (X, y), layers=layers)


def test_bad_data_and_labels(setup):
    net, X, y = setup
    with pytest.raises(ValueError, match="batch 0 has no labels"):
        pnc.measure(net, [X[:5]], layers="stem", num_classes=K)
    with pytest.raises(ValueError, match="num_classes is required"):
        pnc.measure(net, [(X, y)], layers="stem")
    bad = y.clone()
    bad[3] = 7
    with pytest.raises(ValueError, match=r"batch 0: y must hold labels in \[0, 3\)"):
        pnc.measure(net, [(X, bad)], layers="stem", num_classes=K)
    with pytest.raises(ValueError, match=r"class\(es\) \[2\] have no samples"):
        pnc.measure(net, (X[y < 2], y[y < 2]), layers="stem", num_classes=K)
    with pytest.raises(ValueError, match="data must be a DataLoader"):
        pnc.measure(net, X, layers="stem")
    with pytest.raises(ValueError, match="pool must be"):
        pnc.measure(net, (X, y), layers="stem", pool="max")
    with pytest.raises(ValueError, match="model must be a torch.nn.Module"):
        pnc.measure(lambda x: x, (X, y))
    with pytest.raises(ValueError, match="one-shot iterator"):
        pnc.measure(net, iter([(X, y)]), layers="stem", num_classes=K, probe=True)


def test_non_finite_features_name_the_layer(setup):
    net, X, y = setup

    class Breaks(nn.Module):
        def forward(self, x):
            return x.masked_fill(x > 1.0, float("nan"))

    model = nn.Sequential(net.stem, Breaks(), nn.Flatten())
    with pytest.raises(ValueError, match=r"layer '1' \(row 1\), batch 0: .*NaN"):
        pnc.measure(model, (X, y), layers=["0", "1"])


def test_shared_module_and_tuple_outputs_are_refused():
    relu = nn.ReLU()

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = relu
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            return self.act(self.lin(self.act(x)))

    X, y = torch.randn(12, 4), torch.arange(12) % 2
    with pytest.raises(ValueError, match="'act' fired 2 times"):
        pnc.measure(Twice(), (X, y), layers="act")

    class Pair(nn.Module):
        def forward(self, x):
            return x, x

    with pytest.raises(ValueError, match="returns a tuple, not a tensor"):
        pnc.measure(nn.Sequential(Pair()), (X, y), layers="0")


def test_scatter_limit_is_refused_with_the_number(setup):
    net, X, y = setup
    with pytest.raises(ValueError, match=r"0\.00 GiB in all \(largest: 'input', D = 64\)"):
        pnc.measure(net, (X, y), layers=["input", "stem"], max_scatter_bytes=1000)
    m = pnc.measure(net, (X, y), layers=["input", "stem"], nc1=False, max_scatter_bytes=1000)
    assert np.isnan(m.table.nc1.numpy()).all()


def test_rank_and_probes_match_the_metrics_on_captured_features(setup):
    net, X, y = setup
    hand = _by_hand(net.double(), X)
    names = ["stem", "stage1", "stage2"]
    m = pnc.measure(net, (X, y), layers=names, rank=True, probe=True, batch_size=10)
    for row, name in enumerate(names):
        H = torch.from_numpy(hand[name])
        assert m.table.rank[row] == pnc.metrics.numerical_rank(H)
        train = naive_probe(hand[name], y.numpy(), hand[name], y.numpy(), 1e-6)
        assert float(m.table.probe_accuracy[row]) == pytest.approx(train, abs=1e-12)
        assert float(m.table.probe_accuracy[row]) == pytest.approx(
            pnc.metrics.linear_probe_accuracy(H, y), abs=1e-12)
    g = torch.Generator().manual_seed(5)
    Xt = torch.randn(21, 1, 8, 8, generator=g, dtype=torch.float64)
    yt = torch.arange(21) % 2  # held-out data may miss a class
    held = pnc.measure(net, (X, y), layers=names, probe=True, probe_data=(Xt, yt),
                       num_classes=K)
    hand_t = _by_hand(net, Xt)
    for row, name in enumerate(names):
        ref = naive_probe(hand[name], y.numpy(), hand_t[name], yt.numpy(), 1e-6)
        assert float(held.table.probe_accuracy[row]) == pytest.approx(ref, abs=1e-12)
    both = pnc.measure(net, (X, y), layers=names, probe=True, probe_data=(Xt, yt),
                       probe_train=True, num_classes=K)
    assert torch.equal(both.table.probe_accuracy, held.table.probe_accuracy)
    assert torch.equal(both.table.probe_train_accuracy, m.table.probe_accuracy)


def test_probe_train_needs_probe_data_and_reiterable_data(setup):
    net, X, y = setup
    with pytest.raises(ValueError, match="probe_train=True needs probe=True and probe_data"):
        pnc.measure(net, (X, y), layers="stem", probe=True, probe_train=True)
    once = iter([(X, y)])
    with pytest.raises(ValueError, match="re-iterable data"):
        pnc.measure(net, once, layers="stem", num_classes=K, probe=True, probe_data=(X, y),
                    probe_train=True)
    with pytest.raises(ValueError, match="probe_train must be True or False"):
        pnc.measure(net, (X, y), layers="stem", probe_train=1)


def test_geometric_fit_over_the_chosen_rows(setup):
    net, X, y = setup
    m = pnc.measure(net, (X, y), layers=["input", "stem", "stage1", "stage2", "output"])
    assert m.fit_rows == (1, 2, 3)
    C = m.table.compression.numpy()
    slope, intercept = np.polyfit([1, 2, 3], np.log(C[1:4]), 1)
    assert m.fit.slope == pytest.approx(slope, rel=1e-10)
    assert m.fit.kind == "geometric" and m.fit.layers == (1, 2, 3)
    assert m.rate == pytest.approx(np.exp(slope), rel=1e-10)
    custom = pnc.measure(net, (X, y), layers=["input", "stem", "output"], fit_rows=[0, 2])
    assert custom.fit_rows == (0, 2)
    with pytest.raises(ValueError, match="fit_rows must index"):
        pnc.measure(net, (X, y), layers="stem", fit_rows=[0, 5])
    assert "geometric rate of C" in repr(m) and repr(m).splitlines()[1].startswith("input")


def test_float32_model_and_features_are_measured_in_float64(setup):
    net, X, y = setup
    net32 = Net()
    net32.load_state_dict({k: v.float() for k, v in net.state_dict().items()})
    m32 = pnc.measure(net32, (X.float(), y), layers=["stem", "stage2"])
    m64 = pnc.measure(net.double(), (X, y), layers=["stem", "stage2"])
    np.testing.assert_allclose(m32.table.compression.numpy(), m64.table.compression.numpy(),
                               rtol=1e-4)
    assert m32.table.compression.dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda(setup):
    net, X, y = setup
    m_cpu = pnc.measure(net.double(), (X, y), layers=["stem", "stage2"])
    m_gpu = pnc.measure(net.double().cuda(), (X, y), layers=["stem", "stage2"])
    np.testing.assert_allclose(m_gpu.table.compression.numpy(),
                               m_cpu.table.compression.numpy(), rtol=1e-9)
    net.cpu()
