"""Tests of pncutils.models: shapes, the fixed orthogonal initialisation, hybrids, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from pncutils import models
from pncutils.models import DeepLinearNetwork, HybridNetwork, orthogonal_init_


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def assert_semi_orthogonal(W: torch.Tensor, scale: float, atol: float = 1e-5) -> None:
    """W W^T = scale² I (wide) or W^T W = scale² I (tall)."""
    out, inp = W.shape
    G = W @ W.T if out <= inp else W.T @ W
    torch.testing.assert_close(
        G, scale**2 * torch.eye(min(out, inp), dtype=W.dtype), atol=atol, rtol=0
    )


# ---------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_dln_shapes(depth):
    net = DeepLinearNetwork(7, 5, 3, depth=depth, generator=gen())
    X = torch.randn(11, 7, generator=gen(1))
    feats = net.features(X)
    assert len(feats) == depth
    assert feats[0] is X
    assert [tuple(H.shape) for H in feats[1:]] == [(11, 5)] * (depth - 1)
    assert tuple(net(X).shape) == (11, 3)
    Ws = net.weights()
    assert len(Ws) == depth
    dims = [7] + [5] * (depth - 1) + [3]
    assert [tuple(W.shape) for W in Ws] == [(dims[i + 1], dims[i]) for i in range(depth)]
    assert (net.depth, net.width, net.in_dim, net.num_classes) == (depth, 5, 7, 3)
    if depth == 1:
        assert isinstance(net.classifier, nn.Linear) and len(net.blocks) == 0


def test_no_biases():
    net = HybridNetwork(6, 8, 3, depth=4, num_nonlinear=2, generator=gen())
    for m in net.modules():
        if isinstance(m, nn.Linear):
            assert m.bias is None


def test_features_chain_to_forward():
    net = DeepLinearNetwork(6, 9, 4, depth=5, generator=gen())
    X = torch.randn(8, 6, generator=gen(1))
    feats = net.features(X)
    torch.testing.assert_close(net.classifier(feats[-1]), net(X))
    for W, H_prev, H in zip(net.weights()[:-1], feats[:-1], feats[1:], strict=True):
        torch.testing.assert_close(H_prev @ W.T, H)


@pytest.mark.parametrize("width", [4, 10, 30])
def test_end_to_end_matrix_equals_forward(width):
    net = DeepLinearNetwork(10, width, 3, depth=4, init_scale=0.7, generator=gen()).double()
    X = torch.randn(6, 10, generator=gen(1), dtype=torch.float64)
    M = net.end_to_end_matrix()
    assert tuple(M.shape) == (3, 10)
    assert not M.requires_grad
    torch.testing.assert_close(X @ M.T, net(X), atol=1e-13, rtol=1e-10)


def test_weights_are_detached_views():
    net = DeepLinearNetwork(4, 4, 2, depth=2, generator=gen())
    W = net.weights()[0]
    assert not W.requires_grad
    with torch.no_grad():
        net.blocks[0].weight.mul_(2.0)
    torch.testing.assert_close(W, net.blocks[0].weight.detach())


# ------------------------------------------------------------- orthogonal initialisation


@pytest.mark.parametrize(
    "in_dim,width,num_classes,depth",
    [(50, 50, 3, 6), (40, 10, 3, 4), (10, 40, 3, 4), (12, 12, 5, 1), (3, 7, 10, 3)],
)
def test_orthogonal_init_every_weight(in_dim, width, num_classes, depth):
    xi = 0.3
    net = DeepLinearNetwork(in_dim, width, num_classes, depth, init_scale=xi, generator=gen(3))
    for W in net.weights():
        assert_semi_orthogonal(W, xi)


def test_orthogonal_init_wide_first_layer_touches_all_inputs():
    """Bug 5 of the reference: with width < in_dim, W_1 = ξ[U, 0] ignored most inputs."""
    in_dim, width, xi = 48, 8, 0.1
    net = DeepLinearNetwork(in_dim, width, 3, depth=3, init_scale=xi, generator=gen(0))
    W1 = net.weights()[0]  # (8, 48)
    assert_semi_orthogonal(W1, xi)  # orthonormal rows scaled by ξ
    col_norms = W1.norm(dim=0)
    assert bool((col_norms > 0).all()), "some input coordinates are not connected"
    # the reference's zero block: columns width..in_dim would be exactly zero
    assert W1[:, width:].abs().max() > 0.1 * xi
    # Haar rows spread their energy: every column gets a share, none is dominant
    assert col_norms.pow(2).sum().item() == pytest.approx(width * xi**2, rel=1e-5)
    assert col_norms.max() < xi


def test_orthogonal_init_tall_first_layer():
    """width > in_dim (crashed in the reference): orthonormal columns scaled by ξ."""
    net = DeepLinearNetwork(5, 20, 3, depth=3, init_scale=0.5, generator=gen(0))
    W1 = net.weights()[0]
    assert tuple(W1.shape) == (20, 5)
    torch.testing.assert_close(W1.T @ W1, 0.25 * torch.eye(5), atol=1e-5, rtol=0)


def test_orthogonal_init_layers_differ():
    net = DeepLinearNetwork(6, 6, 3, depth=4, generator=gen(0))
    Ws = net.weights()
    assert not torch.allclose(Ws[1], Ws[2])


def test_orthogonal_init_function():
    W = torch.empty(4, 9, dtype=torch.float64)
    out = orthogonal_init_(W, 2.0, generator=gen(0))
    assert out is W
    torch.testing.assert_close(W @ W.T, 4.0 * torch.eye(4, dtype=torch.float64), atol=1e-12, rtol=0)
    p = nn.Parameter(torch.empty(9, 4))
    orthogonal_init_(p, 1.0, generator=gen(0))
    assert p.requires_grad
    assert_semi_orthogonal(p.detach(), 1.0)
    with pytest.raises(ValueError, match="2-D"):
        orthogonal_init_(torch.empty(3), 1.0)
    with pytest.raises(ValueError, match="scale"):
        orthogonal_init_(torch.empty(3, 3), -1.0)


def test_orthogonal_init_is_haar_on_average():
    """E[W] = 0 and E[W_ij²] = ξ² / max(out, in) over many draws (a loose check)."""
    g = gen(0)
    draws = torch.stack(
        [orthogonal_init_(torch.empty(3, 6, dtype=torch.float64), 1.0, g) for _ in range(2000)]
    )
    assert draws.mean(0).abs().max() < 0.05
    torch.testing.assert_close(
        draws.pow(2).mean(0), torch.full((3, 6), 1 / 6.0, dtype=torch.float64), atol=0.02, rtol=0
    )


# ------------------------------------------------------------------ other initialisations


def test_default_init_matches_pytorch():
    net = DeepLinearNetwork(20, 30, 4, depth=3, init="default", generator=gen(5))
    g = gen(5)
    for W in net.weights():
        ref = torch.empty_like(W)
        nn.init.kaiming_uniform_(ref, a=math.sqrt(5), generator=g)
        torch.testing.assert_close(W, ref)
        assert W.abs().max() <= 1 / math.sqrt(W.shape[1])


def test_gaussian_init_scale():
    net = DeepLinearNetwork(400, 300, 3, depth=2, init="gaussian", init_scale=0.5, generator=gen(0))
    W1 = net.weights()[0]
    assert W1.std().item() == pytest.approx(0.5 / math.sqrt(400), rel=0.02)
    assert abs(W1.mean().item()) < 1e-3


# --------------------------------------------------------------------------- reproducible


@pytest.mark.parametrize("init", ["orthogonal", "default", "gaussian"])
def test_same_seed_same_weights(init):
    a = HybridNetwork(9, 7, 3, depth=5, num_nonlinear=2, init=init, generator=gen(11))
    b = HybridNetwork(9, 7, 3, depth=5, num_nonlinear=2, init=init, generator=gen(11))
    c = HybridNetwork(9, 7, 3, depth=5, num_nonlinear=2, init=init, generator=gen(12))
    for Wa, Wb, Wc in zip(a.weights(), b.weights(), c.weights(), strict=True):
        assert torch.equal(Wa, Wb)
        assert not torch.equal(Wa, Wc)


def test_generator_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    DeepLinearNetwork(30, 40, 3, depth=4, generator=gen(0))
    HybridNetwork(30, 40, 3, depth=4, num_nonlinear=2, init="default", generator=gen(0))
    assert torch.equal(state, torch.random.get_rng_state())


# ---------------------------------------------------------------------------------- hybrid


@pytest.mark.parametrize("num_nonlinear", [0, 3, 5])
def test_hybrid_structure(num_nonlinear):
    depth = 6
    net = HybridNetwork(10, 16, 4, depth=depth, num_nonlinear=num_nonlinear, generator=gen())
    assert len(net.blocks) == depth - 1
    for i, block in enumerate(net.blocks):
        if i < num_nonlinear:
            kinds = [type(m) for m in block]
            assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU]
        else:
            assert isinstance(block, nn.Linear)
    assert len(net.weights()) == depth
    X = torch.randn(20, 10, generator=gen(1))
    net.eval()
    with torch.no_grad():
        feats = net.features(X)
    assert len(feats) == depth and feats[0] is X
    for layer in range(1, depth):
        assert tuple(feats[layer].shape) == (20, 16)
        if layer <= num_nonlinear:
            assert bool((feats[layer] >= 0).all()), f"layer {layer} is after a ReLU"
        else:
            assert bool((feats[layer] < 0).any()), f"layer {layer} is linear"
    assert tuple(net(X).shape) == (20, 4)


def test_hybrid_features_in_train_mode_use_batch_statistics():
    net = HybridNetwork(5, 8, 3, depth=3, num_nonlinear=2, generator=gen())
    X = torch.randn(64, 5, generator=gen(1))
    net.train()
    feats = net.features(X)
    # after BN (batch statistics) and ReLU: about half of the entries are zero
    frac_zero = (feats[1] == 0).double().mean().item()
    assert 0.3 < frac_zero < 0.7
    assert bool((feats[2] >= 0).all())


def test_hybrid_features_in_eval_mode_use_the_running_statistics():
    net = HybridNetwork(5, 8, 3, depth=4, num_nonlinear=2, generator=gen()).double()
    X = torch.randn(40, 5, generator=gen(1), dtype=torch.float64)
    with torch.no_grad():
        net.train()
        for _ in range(4):
            net(X + 2.0)  # running statistics away from the defaults (0, 1)
        net.eval()
        feats = net.features(X)
        single = net.features(X[:3])
    # each row depends on that sample only (not on the batch)
    for a, b in zip(feats, single, strict=True):
        torch.testing.assert_close(b, a[:3], rtol=1e-12, atol=1e-12)
    # by hand, in numpy: relu((h W^T - running_mean) / sqrt(running_var + eps)) (gamma 1, beta 0)
    H = X.numpy()
    for layer, block in enumerate(net.blocks[:2], start=1):
        lin, bn = block[0], block[1]
        assert bn.running_mean.abs().max() > 1e-3
        Z = H @ lin.weight.detach().numpy().T
        Z = (Z - bn.running_mean.numpy()) / np.sqrt(bn.running_var.numpy() + bn.eps)
        H = np.maximum(Z, 0.0)
        np.testing.assert_allclose(feats[layer].numpy(), H, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(feats[3].numpy(), H @ net.blocks[2].weight.detach().numpy().T,
                               rtol=1e-10, atol=1e-12)


def test_hybrid_without_batch_norm():
    net = HybridNetwork(5, 8, 3, depth=4, num_nonlinear=2, batch_norm=False, generator=gen())
    assert not any(isinstance(m, nn.BatchNorm1d) for m in net.modules())
    assert [type(m) for m in net.blocks[0]] == [nn.Linear, nn.ReLU]


def test_hybrid_end_to_end_matrix():
    lin = HybridNetwork(6, 8, 3, depth=4, num_nonlinear=0, generator=gen()).double()
    X = torch.randn(5, 6, dtype=torch.float64, generator=gen(1))
    torch.testing.assert_close(X @ lin.end_to_end_matrix().T, lin(X))
    mlp = HybridNetwork(6, 8, 3, depth=4, num_nonlinear=3, generator=gen())
    with pytest.raises(ValueError, match="nonlinear"):
        mlp.end_to_end_matrix()


def test_dln_equals_hybrid_with_zero_nonlinear():
    a = DeepLinearNetwork(6, 8, 3, depth=4, init_scale=0.2, generator=gen(4))
    b = HybridNetwork(6, 8, 3, depth=4, num_nonlinear=0, init_scale=0.2, generator=gen(4))
    for Wa, Wb in zip(a.weights(), b.weights(), strict=True):
        assert torch.equal(Wa, Wb)


def test_double_precision_model():
    net = DeepLinearNetwork(8, 8, 2, depth=3, init_scale=0.3, generator=gen()).double()
    X = torch.randn(4, 8, dtype=torch.float64)
    assert net(X).dtype == torch.float64
    assert all(H.dtype == torch.float64 for H in net.features(X))


# ---------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(depth=0), "depth must be >= 1"),
        (dict(width=0), "width must be >= 1"),
        (dict(in_dim=-1), "in_dim must be >= 1"),
        (dict(num_classes=0), "num_classes must be >= 1"),
        (dict(depth=2.5), "depth must be an integer"),
        (dict(init="xavier"), r"init must be one of \('orthogonal', 'default', 'gaussian'\)"),
        (dict(init_scale=0.0), "init_scale must be > 0"),
        (dict(init_scale=-0.1), "init_scale must be > 0"),
        (dict(init_scale=float("nan")), "init_scale must be finite"),
        (dict(generator=0), "generator must be a torch.Generator"),
    ],
)
def test_dln_errors(kwargs, match):
    args = dict(in_dim=4, width=5, num_classes=3, depth=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        DeepLinearNetwork(**args)


@pytest.mark.parametrize(
    "num_nonlinear,match",
    [
        (4, "num_nonlinear must be <= depth - 1 = 3"),
        (-1, "num_nonlinear must be >= 0"),
        (1.0, "num_nonlinear must be an integer"),
    ],
)
def test_hybrid_errors(num_nonlinear, match):
    with pytest.raises(ValueError, match=match):
        HybridNetwork(4, 5, 3, depth=4, num_nonlinear=num_nonlinear)


def test_hybrid_batch_norm_flag_error():
    with pytest.raises(ValueError, match="batch_norm"):
        HybridNetwork(4, 5, 3, depth=4, num_nonlinear=1, batch_norm="yes")


def test_input_shape_errors():
    net = DeepLinearNetwork(4, 5, 3, depth=3, generator=gen())
    with pytest.raises(ValueError, match="x has 6 columns but the network's input dimension is 4"):
        net.features(torch.zeros(2, 6))
    with pytest.raises(ValueError, match="2-D"):
        net.features(torch.zeros(4))
    with pytest.raises(ValueError, match="columns"):
        net(torch.zeros(2, 6))


# ----------------------------------------------------------------------------------------
# SmallCNN and SmallResNet
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [models.SmallCNN, models.SmallResNet])
def test_image_nets_shapes_names_and_seeded_weights(cls):
    g = torch.Generator().manual_seed(3)
    net = cls(widths=(4, 6, 8), blocks=2, generator=g)
    names = [n for n, _ in net.named_modules() if n.count(".") == 2 and n.startswith("stages")]
    assert names == ["stages.0.0", "stages.0.1", "stages.1.0", "stages.1.1", "stages.2.0",
                     "stages.2.1"]
    X = torch.randn(5, 784)
    assert net(X).shape == (5, 10) and torch.equal(net(X), net(X.view(5, 1, 28, 28)))
    state = torch.get_rng_state()
    twin = cls(widths=(4, 6, 8), blocks=2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.get_rng_state(), state), "no draw from the global RNG"
    pairs = zip(net.named_parameters(), twin.named_parameters(), strict=True)
    for (k, a), (_, b) in pairs:  # (the buffers moved: net ran in training mode above)
        assert torch.equal(a, b), k
    other = cls(widths=(4, 6, 8), blocks=2, generator=torch.Generator().manual_seed(4))
    assert not torch.equal(other.stem.conv.weight, net.stem.conv.weight)
    # resolution halves at the start of every stage after the first: 28 -> 14 -> 7
    with torch.no_grad():
        h = net.stages[:2](net.stem(X.view(5, 1, 28, 28)))
    assert h.shape == (5, 6, 14, 14)


def test_residual_block_adds_its_input():
    block = models.ResidualBlock(3, 3, generator=torch.Generator().manual_seed(0)).eval()
    with torch.no_grad():
        block.bn2.weight.zero_()  # the residual branch outputs bn2's bias (0): block = relu(x)
        block.bn2.bias.zero_()
        x = torch.randn(2, 3, 5, 5)
        assert torch.allclose(block(x), torch.relu(x))
    down = models.ResidualBlock(3, 4, stride=2)
    assert isinstance(down.shortcut, torch.nn.Sequential) and down(x).shape == (2, 4, 3, 3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(image_shape=(28, 28)), "image_shape must be"),
    (dict(widths=()), "widths must name"),
    (dict(blocks=0), "blocks"),
    (dict(num_classes=1), "num_classes"),
    (dict(generator=0), "generator"),
])
def test_image_nets_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.SmallResNet(**kwargs)
    with pytest.raises(ValueError, match="expected C\\*H\\*W = 784"):
        models.SmallCNN(widths=(2,), blocks=1)(torch.zeros(2, 100))
