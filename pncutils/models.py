"""Deep linear and hybrid (nonlinear + linear) networks with the paper's initialisation.

Conventions
-----------
- Samples are rows: inputs ``X`` have shape (N, D_in) and logits (N, K).
- Weights are stored as PyTorch stores them: ``W_l`` has shape (d_l, d_{l-1}) = (out, in),
  and a layer computes ``H_l = H_{l-1} @ W_l.T``. The paper stacks samples as columns and
  writes ``Z_l = W_l Z_{l-1}``; the two conventions describe the same network.
- The depth ``L`` is the number of weight matrices, **classifier included** (the paper's
  convention). The reference code's ``num_layers`` counts hidden layers only, so a paper
  "6-layer linear network" is ``DeepLinearNetwork(..., depth=6)`` here.
- ``model.features(X)`` returns ``[X, H_1, ..., H_{L-1}]``: the input (layer 0) and the
  output of every hidden layer, logits excluded, as the paper's metrics expect.

Initialisation
--------------
``init="orthogonal"`` makes every weight ``ξ`` times a Haar-random matrix with orthonormal
rows (``out <= in``) or orthonormal columns (``out >= in``), with ``ξ = init_scale``.
This fixes a bug of the reference code (Heimine/PNC_DLN, `model.py`). There, ``W_1 = ξ [U, 0]``
when the width is below the input dimension, which at initialisation connects only the
first ``width`` input coordinates (the red channel of a CHW-flattened CIFAR image), and
a width above the input dimension crashes. The reference classifier ``ξ [O_K, 0]`` has
the same distribution as ``ξ`` times a Haar matrix with orthonormal rows once it follows a
Haar-random hidden layer, so that choice is unchanged in distribution.

All random draws use the ``generator`` passed to the constructor, never the global RNG,
so the same seed gives the same weights whatever else the program has drawn.

See Also
--------
book/notation.md : the shape letters and the networks.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from pncutils._checks import check_choice, check_float, check_int

__all__ = [
    "DeepLinearNetwork", "HybridNetwork", "orthogonal_init_", "ConvBlock", "ResidualBlock",
    "SmallCNN", "SmallResNet",
]

#: Allowed values of the ``init`` argument.
INITS: tuple[str, ...] = ("orthogonal", "default", "gaussian")


def orthogonal_init_(
    weight: Tensor, scale: float, generator: torch.Generator | None = None
) -> Tensor:
    """Fill `weight` in place with `scale` times a Haar-random semi-orthogonal matrix.

    The matrix has orthonormal rows when ``out <= in`` and orthonormal columns when
    ``out >= in``, so ``W W^T = scale² I`` (wide) or ``W^T W = scale² I`` (tall).
    The draw is made in float64 on the generator's device (the CPU by default) and
    then cast into `weight`, so a float64 model is orthogonal to float64 precision.

    Parameters
    ----------
    weight : Tensor, shape (out, in)
        The weight to overwrite, e.g. ``nn.Linear.weight``.
    scale : float
        The initialisation scale ξ >= 0.
    generator : torch.Generator, optional
        Source of randomness; the global RNG when omitted.

    Returns
    -------
    Tensor, shape (out, in)
        `weight` itself.

    Examples
    --------
    >>> W = torch.empty(2, 5)
    >>> _ = orthogonal_init_(W, 0.5, generator=torch.Generator().manual_seed(0))
    >>> torch.allclose(W @ W.T, 0.25 * torch.eye(2), atol=1e-6)
    True
    """
    if not isinstance(weight, Tensor) or weight.ndim != 2:
        raise ValueError(
            "weight must be a 2-D tensor of shape (out, in), got "
            f"{tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__}"
        )
    scale = check_float(scale, "scale", minimum=0.0)
    draw_device = generator.device if generator is not None else torch.device("cpu")
    tmp = torch.empty(weight.shape, dtype=torch.float64, device=draw_device)
    # QR of a Gaussian with the sign fix: Haar on the Stiefel manifold (Mezzadri 2007)
    nn.init.orthogonal_(tmp, gain=scale, generator=generator)
    with torch.no_grad():
        weight.copy_(tmp)
    return weight


def _init_weight_(
    weight: Tensor, init: str, scale: float, generator: torch.Generator | None
) -> None:
    """Initialise one (out, in) weight in place with the named scheme."""
    with torch.no_grad():
        if init == "orthogonal":
            orthogonal_init_(weight, scale, generator)
        elif init == "default":
            # what `nn.Linear.reset_parameters` does, but drawn from `generator`
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
        else:  # "gaussian": N(0, scale² / in)
            weight.normal_(0.0, scale / math.sqrt(weight.shape[1]), generator=generator)


def _linear(in_dim: int, out_dim: int) -> nn.Linear:
    """A bias-free ``nn.Linear`` whose weight is left uninitialised (no global RNG draw)."""
    return nn.utils.skip_init(nn.Linear, in_dim, out_dim, bias=False)


class HybridNetwork(nn.Module):
    """Nonlinear blocks followed by linear layers and a linear classifier (no biases).

    The network is ``num_nonlinear`` blocks ``Linear -> BatchNorm1d -> ReLU`` (or
    ``Linear -> ReLU`` with ``batch_norm=False``), then ``depth - 1 - num_nonlinear``
    bias-free linear layers, then the bias-free classifier: ``depth`` weight matrices
    in all. ``num_nonlinear = depth - 1`` is the paper's MLP, ``num_nonlinear = 3``
    with ``depth = 8`` its "8-layer hybrid", and ``num_nonlinear = 0`` a deep linear
    network. The features of a nonlinear block are taken after the ReLU.

    Parameters
    ----------
    in_dim : int
        Input dimension D_in.
    width : int
        Width of every hidden layer.
    num_classes : int
        Number of classes K (the number of logits).
    depth : int
        L >= 1, the number of weight matrices, classifier included.
    num_nonlinear : int
        Number of nonlinear blocks, ``0 <= num_nonlinear <= depth - 1``.
    init : {"orthogonal", "default", "gaussian"}
        "orthogonal": ``init_scale`` times a Haar semi-orthogonal matrix (see
        :func:`orthogonal_init_`); "default": PyTorch's ``nn.Linear`` initialisation
        (``init_scale`` is ignored); "gaussian": entries N(0, init_scale² / in).
    init_scale : float
        The scale ξ > 0 of the "orthogonal" and "gaussian" initialisations.
    batch_norm : bool
        Whether the nonlinear blocks contain ``BatchNorm1d`` (as in the paper).
    generator : torch.Generator, optional
        Source of all randomness of the initialisation; the global RNG when omitted.

    Attributes
    ----------
    in_dim, width, num_classes, depth, num_nonlinear : int
        The constructor arguments.
    blocks : nn.ModuleList
        The ``depth - 1`` hidden blocks (``nn.Sequential`` for nonlinear ones,
        ``nn.Linear`` for linear ones).
    classifier : nn.Linear
        The last layer, weight shape (K, width) (or (K, in_dim) when depth = 1).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> net = HybridNetwork(8, 16, 3, depth=4, num_nonlinear=2, generator=g)
    >>> X = torch.randn(5, 8, generator=g)
    >>> [tuple(H.shape) for H in net.features(X)], tuple(net(X).shape)
    ([(5, 8), (5, 16), (5, 16), (5, 16)], (5, 3))

    Used in: ch05, ch07, ch08 (through the book's drivers).
    """

    def __init__(
        self,
        in_dim: int,
        width: int,
        num_classes: int,
        depth: int,
        num_nonlinear: int,
        init: str = "orthogonal",
        init_scale: float = 0.1,
        batch_norm: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_dim = check_int(in_dim, "in_dim", minimum=1)
        self.width = check_int(width, "width", minimum=1)
        self.num_classes = check_int(num_classes, "num_classes", minimum=1)
        self.depth = check_int(depth, "depth", minimum=1)
        self.num_nonlinear = check_int(num_nonlinear, "num_nonlinear", minimum=0)
        if self.num_nonlinear > self.depth - 1:
            raise ValueError(
                f"num_nonlinear must be <= depth - 1 = {self.depth - 1} (the classifier is "
                f"linear), got num_nonlinear={self.num_nonlinear} with depth={self.depth}"
            )
        self.init = check_choice(init, "init", INITS)
        self.init_scale = check_float(init_scale, "init_scale", minimum=0.0, strict=True)
        if not isinstance(batch_norm, bool):
            raise ValueError(f"batch_norm must be a bool, got {batch_norm!r}")
        self.batch_norm = batch_norm
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")

        blocks: list[nn.Module] = []
        prev = self.in_dim
        for i in range(self.depth - 1):
            lin = _linear(prev, self.width)
            if i < self.num_nonlinear:
                parts: list[nn.Module] = [lin]
                if batch_norm:
                    parts.append(nn.BatchNorm1d(self.width))
                parts.append(nn.ReLU())
                blocks.append(nn.Sequential(*parts))
            else:
                blocks.append(lin)
            prev = self.width
        self.blocks = nn.ModuleList(blocks)
        self.classifier = _linear(prev, self.num_classes)
        # initialise in order W_1, ..., W_L so that a seed fixes every weight
        for weight in self.weights():
            _init_weight_(weight, self.init, self.init_scale, generator)

    def _linears(self) -> list[nn.Linear]:
        """The L linear layers, first to last."""
        out = [b[0] if isinstance(b, nn.Sequential) else b for b in self.blocks]
        return [*out, self.classifier]  # type: ignore[list-item]

    def weights(self) -> list[Tensor]:
        """The L weight matrices ``[W_1, ..., W_L]``, each of shape (out, in).

        The tensors are detached views: they share storage with the parameters, so they
        follow training, but carry no autograd history.

        Returns
        -------
        list of Tensor
            ``W_1`` (width, in_dim), ..., ``W_L`` (num_classes, width).

        Examples
        --------
        >>> net = DeepLinearNetwork(4, 6, 2, depth=3, generator=torch.Generator().manual_seed(0))
        >>> [tuple(W.shape) for W in net.weights()]
        [(6, 4), (6, 6), (2, 6)]
        """
        return [lin.weight.detach() for lin in self._linears()]

    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.ndim != 2:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be a 2-D tensor of shape (N, {self.in_dim}), got {shape}")
        if x.shape[1] != self.in_dim:
            raise ValueError(
                f"x has {x.shape[1]} columns but the network's input dimension is {self.in_dim}"
            )

    def features(self, x: Tensor) -> list[Tensor]:
        """Layer features ``[X, H_1, ..., H_{L-1}]``: the input and every hidden output.

        Call it under ``torch.no_grad()`` and in ``eval()`` mode for analysis: BatchNorm then
        uses its running statistics, as the book does everywhere. (The authors'
        ``hybrid_mlp.ipynb`` computes C and D in train mode, with the batch statistics of
        shuffled batches of 1000; only their ``post_processing.py`` rank calls ``eval()``.)

        Parameters
        ----------
        x : Tensor, shape (N, D_in)

        Returns
        -------
        list of Tensor
            L tensors: ``x`` itself (layer 0), then ``H_l`` of shape (N, width) for
            ``l = 1..L-1`` (after the ReLU for nonlinear blocks). The logits are excluded.

        Examples
        --------
        >>> net = DeepLinearNetwork(4, 6, 2, depth=3, generator=torch.Generator().manual_seed(0))
        >>> [tuple(H.shape) for H in net.features(torch.ones(5, 4))]
        [(5, 4), (5, 6), (5, 6)]
        """
        self._check_input(x)
        feats = [x]
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``f(x)`` of shape (N, K) for inputs of shape (N, D_in).

        Examples
        --------
        >>> net = DeepLinearNetwork(4, 6, 2, depth=3, generator=torch.Generator().manual_seed(0))
        >>> tuple(net(torch.ones(5, 4)).shape)
        (5, 2)
        """
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            self._check_input(x)
        for block in self.blocks:
            x = block(x)
        return self.classifier(x)

    def end_to_end_matrix(self) -> Tensor:
        """The end-to-end matrix ``W_{L:1} = W_L ⋯ W_1`` of a linear network.

        Returns
        -------
        Tensor, shape (K, D_in)
            Detached; ``forward(x) == x @ end_to_end_matrix().T``.

        Raises
        ------
        ValueError
            If the network has nonlinear blocks (``num_nonlinear > 0``).

        Examples
        --------
        >>> net = HybridNetwork(4, 6, 2, depth=3, num_nonlinear=0,
        ...                     generator=torch.Generator().manual_seed(0))
        >>> tuple(net.end_to_end_matrix().shape)
        (2, 4)
        """
        if self.num_nonlinear > 0:
            raise ValueError(
                "end_to_end_matrix is only defined for linear networks, but this network "
                f"has num_nonlinear={self.num_nonlinear} nonlinear blocks"
            )
        with torch.no_grad():
            Ws = self.weights()
            M = Ws[0]
            for W in Ws[1:]:
                M = W @ M  # (d_l, D_in)
            return M.clone()

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, width={self.width}, num_classes={self.num_classes}, "
            f"depth={self.depth}, num_nonlinear={self.num_nonlinear}, init={self.init!r}, "
            f"init_scale={self.init_scale}"
        )


class DeepLinearNetwork(HybridNetwork):
    """Deep linear network ``f(x) = W_L ⋯ W_1 x`` of `depth` bias-free linear layers.

    ``depth = 1`` is a single ``Linear(in_dim, num_classes)``. It is a
    :class:`HybridNetwork` with ``num_nonlinear = 0``.

    Parameters
    ----------
    in_dim : int
        Input dimension D_in.
    width : int
        Width of every hidden layer (unused when ``depth = 1``).
    num_classes : int
        Number of classes K.
    depth : int
        L >= 1, the number of weight matrices, classifier included.
    init : {"orthogonal", "default", "gaussian"}
        See :class:`HybridNetwork`.
    init_scale : float
        The initialisation scale ξ > 0 (paper: ξ = 0.1 to 0.5).
    generator : torch.Generator, optional
        Source of all randomness of the initialisation.

    Examples
    --------
    >>> net = DeepLinearNetwork(50, 50, 3, depth=6, init_scale=0.3,
    ...                         generator=torch.Generator().manual_seed(0))
    >>> W1 = net.weights()[0]
    >>> torch.allclose(W1 @ W1.T, 0.09 * torch.eye(50), atol=1e-6)
    True
    >>> X = torch.randn(4, 50)
    >>> torch.allclose(net(X), X @ net.end_to_end_matrix().T, atol=1e-6)
    True

    Used in: ch01, ch02, ch04, ch07.
    """

    def __init__(
        self,
        in_dim: int,
        width: int,
        num_classes: int,
        depth: int,
        init: str = "orthogonal",
        init_scale: float = 0.1,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(
            in_dim,
            width,
            num_classes,
            depth,
            num_nonlinear=0,
            init=init,
            init_scale=init_scale,
            batch_norm=False,
            generator=generator,
        )

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, width={self.width}, num_classes={self.num_classes}, "
            f"depth={self.depth}, init={self.init!r}, init_scale={self.init_scale}"
        )


# ----------------------------------------------------------------------------------------
# convolutional and residual networks (measured with pncutils.measure)
# ----------------------------------------------------------------------------------------


def _conv(c_in: int, c_out: int, kernel: int, stride: int, generator: torch.Generator | None
          ) -> nn.Conv2d:
    """A bias-free conv (BatchNorm follows), He-initialised from `generator`."""
    conv = nn.utils.skip_init(nn.Conv2d, c_in, c_out, kernel, stride=stride,
                              padding=kernel // 2, bias=False)
    with torch.no_grad():
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu",
                                generator=generator)
    return conv


class ConvBlock(nn.Module):
    """``conv3x3 -> BatchNorm -> ReLU`` (the unit of :class:`SmallCNN`)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.conv = _conv(c_in, c_out, 3, stride, generator)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class ResidualBlock(nn.Module):
    """The basic residual block of He et al. (2016): ``relu(x' + bn(conv(relu(bn(conv(x))))))``.

    ``x'`` is ``x``, or a strided ``1x1 conv -> BatchNorm`` when the shape changes.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.conv1 = _conv(c_in, c_out, 3, stride, generator)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = _conv(c_out, c_out, 3, 1, generator)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(_conv(c_in, c_out, 1, stride, generator),
                                          nn.BatchNorm2d(c_out))
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        return self.act(self.bn2(self.conv2(out)) + self.shortcut(x))


class _ImageNet(nn.Module):
    """Shared frame: flat or image input -> stem -> stages of `block`s -> global pool -> head."""

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int,
                 widths: tuple[int, ...], blocks: int, generator: torch.Generator | None,
                 block: type[nn.Module]) -> None:
        super().__init__()
        if not isinstance(image_shape, tuple | list) or len(image_shape) != 3:
            raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}")
        self.image_shape = tuple(check_int(s, "image_shape entry", minimum=1)
                                 for s in image_shape)
        num_classes = check_int(num_classes, "num_classes", minimum=2)
        if not isinstance(widths, tuple | list) or not widths:
            raise ValueError(f"widths must name at least one stage, got {widths!r}")
        self.widths = tuple(check_int(w, "width", minimum=1) for w in widths)
        blocks = check_int(blocks, "blocks", minimum=1)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError("generator must be a torch.Generator or None")
        self.stem = ConvBlock(self.image_shape[0], self.widths[0], generator=generator)
        stages, c_in = [], self.widths[0]
        for s, width in enumerate(self.widths):
            stages.append(nn.Sequential(*[
                block(c_in if b == 0 else width, width, stride=2 if (b == 0 and s > 0) else 1,
                      generator=generator) for b in range(blocks)]))
            c_in = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.utils.skip_init(nn.Linear, self.widths[-1], num_classes)
        with torch.no_grad():
            nn.init.kaiming_uniform_(self.head.weight, a=math.sqrt(5), generator=generator)
            self.head.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 2:
            if x.shape[1] != math.prod(self.image_shape):
                raise ValueError(f"x has {x.shape[1]} columns, expected C*H*W = "
                                 f"{math.prod(self.image_shape)} for images {self.image_shape}")
            x = x.view(x.shape[0], *self.image_shape)
        return self.head(self.pool(self.stages(self.stem(x))).flatten(1))


class SmallCNN(_ImageNet):
    """A small plain CNN: a stem, then stages of :class:`ConvBlock` (the first block of every
    stage after the first halves the resolution with stride 2), global average pooling, and a
    linear head.

    Module names (what :func:`pncutils.measure` selects), in order: ``stem``,
    ``stages.0.0`` ... ``stages.S-1.B-1``, ``pool``, ``head``.

    Parameters
    ----------
    image_shape : (C, H, W), default (1, 28, 28)
        Inputs may be images ``(N, C, H, W)`` or flattened rows ``(N, C H W)`` (as
        :func:`pncutils.data.load_dataset` returns them).
    num_classes : int, default 10
    widths : tuple of int, default (16, 32, 64)
        Channels of each stage.
    blocks : int, default 2
        Blocks per stage.
    generator : torch.Generator, optional
        Source of every initial weight (He normal for the convs, PyTorch's default for the
        head), so the same seed gives the same network.

    Examples
    --------
    >>> net = SmallCNN(widths=(4, 8), blocks=1, generator=torch.Generator().manual_seed(0))
    >>> net(torch.zeros(2, 784)).shape
    torch.Size([2, 10])
    >>> [n for n, _ in net.named_children()]
    ['stem', 'stages', 'pool', 'head']

    Used in: ch06 (convolutional and residual networks, :mod:`pncutils.book.convnets`).
    """

    def __init__(self, image_shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 10,
                 widths: tuple[int, ...] = (16, 32, 64), blocks: int = 2,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(image_shape, num_classes, widths, blocks, generator, ConvBlock)


class SmallResNet(_ImageNet):
    """A small ResNet: a stem, stages of :class:`ResidualBlock` (stride 2 at the start of
    every stage after the first), global average pooling, and a linear head.

    Same parameters and module names as :class:`SmallCNN`.

    Examples
    --------
    >>> net = SmallResNet(widths=(4, 8), blocks=2, generator=torch.Generator().manual_seed(0))
    >>> net(torch.zeros(3, 1, 28, 28)).shape
    torch.Size([3, 10])
    >>> sum(isinstance(m, ResidualBlock) for m in net.modules())
    4

    Used in: ch06 (convolutional and residual networks, :mod:`pncutils.book.convnets`).
    """

    def __init__(self, image_shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 10,
                 widths: tuple[int, ...] = (16, 32, 64), blocks: int = 2,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(image_shape, num_classes, widths, blocks, generator, ResidualBlock)
