"""Dual-stream Dale layers and the activations that go with them.

A layer holds an excitatory (p) and an inhibitory (n) stream. Its activity travels as one tensor
with the p-stream in the first half of dim 1 and the n-stream in the second: ``[x_p | x_n]``.

    a_p = W_pp x_p - W_pn x_n + b_p
    a_n = W_nn x_n - W_np x_p + b_n

The four non-negative matrices are the blocks of one parameter ``weight = [[W_pp, W_pn],
[W_np, W_nn]]``. The structural minus signs are put on the activity instead of the weights:
with ``z = [x_p | -x_n]``, ``weight @ z = [a_p - b_p | -(a_n - b_n)]``, so the four products are
one matmul (or one conv) on the stored non-negative weight, with no signed copy of it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

DEFAULT_FLOOR = 1e-6
INITS = ("uniform", "abs_normal")

__all__ = [
    "DEFAULT_FLOOR",
    "DualStreamConv2d",
    "DualStreamLinear",
    "Sigmoid",
    "StreamDifference",
    "StreamRMSNorm",
    "clamp_dale_weights",
    "split_streams",
]


def split_streams(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(h_p, h_n)`` of a dual-stream activity ``[h_p | h_n]``."""
    return h.chunk(2, dim=1)


class _InputDifference(torch.autograd.Function):
    """``weight[:, :in] - weight[:, in:]`` with a one-pass backward (autograd's slicing would zero-fill
    and copy the whole weight gradient twice, a large cost for a wide first layer)."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor) -> torch.Tensor:
        i = weight.shape[1] // 2
        return weight[:, :i] - weight[:, i:]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        i = grad.shape[1]
        out = grad.new_empty(grad.shape[0], 2 * i, *grad.shape[2:])
        out[:, :i] = grad
        torch.neg(grad, out=out[:, i:])
        return out


class _DualStream(nn.Module):
    """What linear and conv Dale layers share: the weight, its init, its floor, the stream signs.

    Options of both: ``shared_input`` (the input is one plain tensor fed to both streams: the first
    layer of a network), ``dale`` (False lifts the non-negativity: the non-Dalean control),
    ``floor`` (smallest weight, kept after every optimizer step), ``exc_scale`` / ``inh_scale``
    (init scale of W_pp, W_nn / of W_pn, W_np), ``init`` (``"uniform"`` or ``"abs_normal"``,
    non-negative, scaled by ``1/sqrt(fan_in)``).
    """

    def __init__(
        self,
        weight_shape: tuple[int, ...],
        fan_in: int,
        *,
        shared_input: bool = False,
        dale: bool = True,
        floor: float = DEFAULT_FLOOR,
        exc_scale: float = 1.0,
        inh_scale: float = 1.0,
        init: str = "uniform",
    ):
        super().__init__()
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; choose from {', '.join(INITS)}")
        if dale and floor < 0:
            raise ValueError(f"floor must be >= 0, got {floor}")
        out2, in2 = weight_shape[:2]
        self.out_features, self.in_features = out2 // 2, in2 // 2
        self.shared_input = shared_input
        self.dale = dale
        self.floor = floor
        self.weight = nn.Parameter(torch.empty(weight_shape))
        self.bias = nn.Parameter(torch.zeros(out2))
        signs = torch.ones(2, dtype=torch.float32)
        signs[1] = -1
        self.register_buffer("in_sign", signs.repeat_interleave(self.in_features), persistent=False)
        self.register_buffer("out_sign", signs.repeat_interleave(self.out_features), persistent=False)
        self.reset_parameters(fan_in, exc_scale, inh_scale, init)
        self._mark_dale()
        # A checkpoint written by hand (or by another library) may hold weights below the floor.
        self.register_load_state_dict_post_hook(lambda module, _: module.clamp_())

    def reset_parameters(self, fan_in: int, exc_scale: float, inh_scale: float, init: str) -> None:
        """Non-negative init scaled by ``1/sqrt(fan_in)``; W_pp, W_nn by ``exc_scale``, W_pn, W_np by ``inh_scale``."""
        bound = 1.0 / math.sqrt(fan_in)
        with torch.no_grad():
            if init == "uniform":
                self.weight.uniform_(0.0, bound)
            else:
                self.weight.normal_(0.0, bound).abs_()
            blocks = self.sub_matrices()
            for name in ("W_pp", "W_nn"):
                blocks[name].mul_(exc_scale)
            for name in ("W_pn", "W_np"):
                blocks[name].mul_(inh_scale)
        self.clamp_()

    def sub_matrices(self, tensor: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The four blocks ``W_pp, W_pn, W_np, W_nn`` of ``weight`` (or of a tensor shaped like it,
        such as ``weight.grad``), as views."""
        t = self.weight if tensor is None else tensor
        o, i = self.out_features, self.in_features
        return {"W_pp": t[:o, :i], "W_pn": t[:o, i:], "W_np": t[o:, :i], "W_nn": t[o:, i:]}

    W_pp, W_pn, W_np, W_nn = (
        property(lambda self, name=name: self.sub_matrices()[name], doc=f"{name}, a view of weight")
        for name in ("W_pp", "W_pn", "W_np", "W_nn")
    )

    @property
    def b_p(self) -> torch.Tensor:
        return self.bias[: self.out_features]

    @property
    def b_n(self) -> torch.Tensor:
        return self.bias[self.out_features :]

    def clamp_(self) -> None:
        if self.dale:
            with torch.no_grad():
                self.weight.clamp_(min=self.floor)

    def _mark_dale(self) -> None:
        # The optimizer hook below finds the weights to clamp by this mark.
        self.weight.dale_floor = self.floor if self.dale else None

    def __setstate__(self, state):
        # copy.deepcopy rebuilds parameters without their Python attributes: mark again.
        super().__setstate__(state)
        self._mark_dale()

    def _check_input(self, x: torch.Tensor) -> None:
        channels = self.in_features * (1 if self.shared_input else 2)
        if x.dim() < 2 or x.shape[1] != channels:
            layout = "x (fed to both streams)" if self.shared_input else "[x_p | x_n]"
            raise ValueError(
                f"{type(self).__name__} expects input of shape (batch, {channels}, ...) holding "
                f"{layout}, got {tuple(x.shape)}"
            )

    def _op(self, z: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _broadcast(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return v.view(-1, *([1] * (x.dim() - 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activations ``[a_p | a_n]``."""
        self._check_input(x)
        if self.shared_input:
            # x_p = x_n = x: (W_.p - W_.n) x is half the work of the fused product on [x | -x].
            u = self._op(x, _InputDifference.apply(self.weight))
        else:
            u = self._op(x * self._broadcast(self.in_sign, x), self.weight)
        return torch.addcmul(self._broadcast(self.bias, u), u, self._broadcast(self.out_sign, u))

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"shared_input={self.shared_input}, dale={self.dale}, floor={self.floor}"
        )


class DualStreamLinear(_DualStream):
    """Dale linear layer: ``(batch, 2*in_features) -> (batch, 2*out_features)`` pre-activations.

    With ``shared_input=True`` it takes a plain ``(batch, in_features)`` input. Options: see
    ``_DualStream``.
    """

    def __init__(self, in_features: int, out_features: int, **options):
        super().__init__((2 * out_features, 2 * in_features), in_features, **options)

    def _op(self, z, weight):
        return F.linear(z, weight)


class DualStreamConv2d(_DualStream):
    """Dale conv layer: ``(batch, 2*in_channels, H, W) -> (batch, 2*out_channels, H', W')``.

    Channels ``[:out_channels]`` are the p-stream, the rest the n-stream. Options: see ``_DualStream``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        padding: int = 0,
        **options,
    ):
        super().__init__(
            (2 * out_channels, 2 * in_channels, kernel_size, kernel_size), in_channels * kernel_size * kernel_size, **options
        )
        self.stride, self.padding = stride, padding

    def _op(self, z, weight):
        return F.conv2d(z, weight, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, kernel_size={self.weight.shape[-1]}, stride={self.stride}, padding={self.padding}"


class Sigmoid(nn.Module):
    """``sigmoid(a / width)``: a wider sigmoid saturates later."""

    def __init__(self, width: float = 1.0):
        super().__init__()
        if width <= 0:
            raise ValueError(f"sigmoid width must be > 0, got {width}")
        self.width = width

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        # width 1 is the common case: skip a pass over the activity forward and backward
        return torch.sigmoid(a if self.width == 1 else a / self.width)

    def extra_repr(self) -> str:
        return f"width={self.width}"


class StreamRMSNorm(nn.Module):
    """Divides each stream of each sample by its root-mean-square activity (no learnable gain)."""

    def __init__(self, eps: float = 1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        streams = h.reshape(h.shape[0], 2, -1)
        # torch's own op: its backward is one fused kernel instead of autograd through five ops
        return F.rms_norm(streams, streams.shape[-1:], eps=self.eps).view_as(h)


class StreamDifference(nn.Module):
    """The network output ``y = h_p - h_n``."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h_p, h_n = split_streams(h)
        return h_p - h_n


def clamp_dale_weights(optimizer: torch.optim.Optimizer, *_args) -> None:
    """Clamps every Dale weight that ``optimizer`` trains to its floor.

    Registered for every optimizer at import, so user loops (and SB3's ``train()``) keep the
    constraint without doing anything.
    """
    with torch.no_grad():
        for group in optimizer.param_groups:
            for p in group["params"]:
                floor = getattr(p, "dale_floor", None)
                if floor is not None:
                    p.clamp_(min=floor)


register_optimizer_step_post_hook(clamp_dale_weights)
