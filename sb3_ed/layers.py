"""Dual-stream Dale layers and the activations that go with them.

A layer holds an excitatory (p) and an inhibitory (n) stream. Its activity travels as one tensor
with the p-stream in the first half of dim 1 and the n-stream in the second: ``[x_p | x_n]``::

    a_p = W_pp x_p - W_pn x_n + b_p
    a_n = W_nn x_n - W_np x_p + b_n

The four non-negative matrices are the blocks of one parameter ``weight = [[W_pp, W_pn],
[W_np, W_nn]]``. The structural minus signs are put on the activity instead of the weights:
with ``z = [x_p | -x_n]``, ``weight @ z = [a_p - b_p | -(a_n - b_n)]``, so the four products are
one matmul (or one conv) on the stored non-negative weight, with no signed copy of it.
"""

from __future__ import annotations

import math
import weakref

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.optim.optimizer import register_optimizer_step_post_hook

from .checks import check_flag, check_number, non_negative_finite, positive_finite

DEFAULT_FLOOR = 1e-6
INITS = ("uniform", "abs_normal")
BIAS_INITS = ("zeros", "uniform")

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


# Every live Dale layer. The optimizer hook below clamps the weight each of them holds *now*, so the
# floor survives anything that swaps a layer's Parameter object (load_state_dict(assign=True),
# to_empty() after building on the meta device, plain attribute assignment, swap_tensors).
_DALE_LAYERS: weakref.WeakSet = weakref.WeakSet()


class _DualStream(nn.Module):
    """What linear and conv Dale layers share: the weight, its init, its floor, the stream signs."""

    # class-level defaults of the later options, for layers pickled before they existed
    bias_init, centered = "zeros", False

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
        bias_init: str = "zeros",
        centered: bool = False,
    ):
        super().__init__()
        for name, flag in (("shared_input", shared_input), ("dale", dale), ("centered", centered)):
            check_flag(name, flag)
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; choose from {', '.join(INITS)}")
        if bias_init not in BIAS_INITS:
            raise ValueError(f"unknown bias_init {bias_init!r}; choose from {', '.join(BIAS_INITS)}")
        # checked with dale=False too, where it has no use: a typed -1 would pass unnoticed
        check_number("floor", floor, ">= 0 and finite", non_negative_finite)
        for name, scale in (("exc_scale", exc_scale), ("inh_scale", inh_scale)):
            check_number(name, scale, "> 0 and finite (a scale of the non-negative init)", positive_finite)
        if min(weight_shape[:2]) < 2:
            raise ValueError(f"{type(self).__name__} needs >= 1 unit per stream in and out, got {weight_shape[1] // 2} in and {weight_shape[0] // 2} out")
        out2, in2 = weight_shape[:2]
        self.out_features, self.in_features = out2 // 2, in2 // 2
        self.shared_input = shared_input
        self.dale = dale
        self.floor = floor
        self.fan_in, self.exc_scale, self.inh_scale, self.init = fan_in, exc_scale, inh_scale, init
        self.bias_init, self.centered = bias_init, centered
        self.weight = nn.Parameter(torch.empty(weight_shape))
        self.bias = nn.Parameter(torch.zeros(out2))
        self._signs: dict = {}
        _DALE_LAYERS.add(self)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Non-negative init scaled by ``1/sqrt(fan_in)``; W_pp, W_nn times ``exc_scale``, W_pn, W_np
        times ``inh_scale``; biases zero or, with ``bias_init="uniform"``, U(-1/sqrt(fan_in),
        1/sqrt(fan_in)) as ``torch.nn.Linear``'s. Takes no arguments, as PyTorch's meta-device recipe
        (``to_empty()``, then ``reset_parameters()``) expects."""
        bound = 1.0 / math.sqrt(self.fan_in)
        with torch.no_grad():
            if self.init == "uniform":
                self.weight.uniform_(0.0, bound)
            else:
                self.weight.normal_(0.0, bound).abs_()
            blocks = self.sub_matrices()
            for name in ("W_pp", "W_nn"):
                blocks[name].mul_(self.exc_scale)
            for name in ("W_pn", "W_np"):
                blocks[name].mul_(self.inh_scale)
            if self.bias_init == "uniform":
                self.bias.uniform_(-bound, bound)
            else:
                self.bias.zero_()
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
        """Raises every weight below the floor to it (nothing when ``dale=False``)."""
        if self.dale:
            if parametrize.is_parametrized(self, "weight"):
                raise TypeError(
                    f"{type(self).__name__}: its weight is parametrized (torch.nn.utils.parametrize), so the "
                    f"Dale floor cannot be kept on it; remove the parametrization or use dale=False"
                )
            with torch.no_grad():
                self.weight.clamp_(min=self.floor)

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        # A checkpoint written by hand (or by another library) may hold weights below the floor.
        self.clamp_()

    def __getstate__(self):
        # the sign vectors are a per-device cache, made again on first use
        return {**super().__getstate__(), "_signs": {}}

    def __setstate__(self, state):
        # copy.deepcopy and pickle make the layer without __init__: register it for the floor
        super().__setstate__(state)
        _DALE_LAYERS.add(self)

    def _sign_vectors(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(in_sign, out_sign)``: +1 on the p-stream's channels, -1 on the n-stream's, on the device
        and dtype of ``like``. Made on first use there (not buffers: a layer built on the meta device
        and loaded with ``assign=True`` would keep meta buffers)."""
        key = (like.device, like.dtype)
        if key not in self._signs:
            signs = torch.tensor([1.0, -1.0], device=like.device, dtype=like.dtype)
            self._signs[key] = (signs.repeat_interleave(self.in_features), signs.repeat_interleave(self.out_features))
        return self._signs[key]

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
        in_sign, out_sign = self._sign_vectors(x)
        if self.shared_input:
            # x_p = x_n = x: (W_.p - W_.n) x is half the work of the fused product on [x | -x].
            z, weight = x, _InputDifference.apply(self.weight)
        else:
            z, weight = x * self._broadcast(in_sign, x), self.weight
        if self.centered and z.shape[0] > 1 and torch.is_grad_enabled():
            # W z = W (z - m) + W m with m out of the weight's gradient: the same output, but the
            # update sees the input's deviation from its batch mean. Non-negative activity times
            # non-negative weights otherwise spends each (Adam) step on moving every output alike.
            m = z.detach().mean(dim=[0, *range(2, z.dim())], keepdim=True).expand_as(z[:1])
            u = self._op(z - m, weight) + self._op(m, weight.detach())
        else:
            u = self._op(z, weight)
        return torch.addcmul(self._broadcast(self.bias, u), u, self._broadcast(out_sign, u))

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"shared_input={self.shared_input}, dale={self.dale}, floor={self.floor}"
            + (f", bias_init={self.bias_init!r}" if self.bias_init != "zeros" else "")
            + (", centered=True" if self.centered else "")
        )


_OPTIONS_DOC = """
    :param shared_input: the input is one plain tensor fed to both streams (``x_p = x_n = x``): the
        first layer of a network. Default False: the input is dual-stream ``[x_p | x_n]``.
    :param dale: keep the four matrices non-negative (>= ``floor`` after every optimizer step and
        every ``load_state_dict``). False gives the non-Dalean control: same network, signs free.
    :param floor: the smallest weight, >= 0 (default ``DEFAULT_FLOOR`` = 1e-6).
    :param exc_scale: init scale of the same-stream blocks ``W_pp``, ``W_nn`` (default 1.0).
    :param inh_scale: init scale of the cross-stream blocks ``W_pn``, ``W_np`` (default 1.0).
    :param init: ``"uniform"`` (U(0, 1/sqrt(fan_in)), the default) or ``"abs_normal"``
        (``|N(0, 1/fan_in)|``): non-negative, then times the scales above.
    :param bias_init: ``"zeros"`` (default) or ``"uniform"``: U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
        ``torch.nn.Linear``'s bias init.
    :param centered: the weight's gradient sees the input minus its mean over the batch (and, for a
        convolution, over positions), the bias keeps the whole error: Schraudolph's centering of
        the gradient factors ("Centering neural network gradient factors", 1998). The output is
        unchanged. Applies when autograd records and the batch holds more than one sample (a
        single sample would have no deviation to learn from). Default False.
    :raises ValueError: an unknown ``init`` or ``bias_init``; ``floor``,
        ``exc_scale`` or ``inh_scale`` not a finite number in its range (a string or a bool
        included); in ``forward``, an input whose channel count does not fit ``shared_input``.
    :raises TypeError: the weight was parametrized (``torch.nn.utils.parametrize``): the floor cannot
        be kept on it.
"""


class DualStreamLinear(_DualStream):
    """Dale linear layer (the paper's dual-stream layer, eq. ``a_p = W_pp x_p - W_pn x_n + b_p``,
    ``a_n = W_nn x_n - W_np x_p + b_n``).

    Input ``(batch, 2 * in_features)`` holding ``[x_p | x_n]`` (``(batch, in_features)`` with
    ``shared_input=True``); output the pre-activations ``(batch, 2 * out_features)``, ``[a_p | a_n]``.
    ``weight`` is ``(2 * out_features, 2 * in_features)``, the blocks ``[[W_pp, W_pn], [W_np, W_nn]]``;
    ``bias`` is ``[b_p | b_n]``.

    :param in_features: units per stream of the input (the plain input's size with ``shared_input``)
    :param out_features: units per stream of the output
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        shared_input: bool = False,
        dale: bool = True,
        floor: float = DEFAULT_FLOOR,
        exc_scale: float = 1.0,
        inh_scale: float = 1.0,
        init: str = "uniform",
        bias_init: str = "zeros",
        centered: bool = False,
    ):
        super().__init__(
            (2 * out_features, 2 * in_features),
            in_features,
            shared_input=shared_input,
            dale=dale,
            floor=floor,
            exc_scale=exc_scale,
            inh_scale=inh_scale,
            init=init,
            bias_init=bias_init,
            centered=centered,
        )

    def _op(self, z, weight):
        return F.linear(z, weight)


class DualStreamConv2d(_DualStream):
    """Dale 2-d convolution: the dual-stream layer with each product a convolution.

    Input ``(batch, 2 * in_channels, H, W)`` (channels ``[:in_channels]`` the p-stream; ``(batch,
    in_channels, H, W)`` with ``shared_input=True``); output ``(batch, 2 * out_channels, H', W')``.
    ``weight`` is ``(2 * out_channels, 2 * in_channels, k, k)``; fan-in ``in_channels * k * k``.

    :param in_channels: channels per stream of the input
    :param out_channels: channels per stream of the output
    :param kernel_size: square kernel size ``k``
    :param stride: as in ``torch.nn.Conv2d`` (default 1)
    :param padding: zero padding on each side, as in ``torch.nn.Conv2d`` (default 0)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        padding: int = 0,
        shared_input: bool = False,
        dale: bool = True,
        floor: float = DEFAULT_FLOOR,
        exc_scale: float = 1.0,
        inh_scale: float = 1.0,
        init: str = "uniform",
        bias_init: str = "zeros",
        centered: bool = False,
    ):
        super().__init__(
            (2 * out_channels, 2 * in_channels, kernel_size, kernel_size),
            in_channels * kernel_size * kernel_size,
            shared_input=shared_input,
            dale=dale,
            floor=floor,
            exc_scale=exc_scale,
            inh_scale=inh_scale,
            init=init,
            bias_init=bias_init,
            centered=centered,
        )
        self.stride, self.padding = stride, padding

    def _op(self, z, weight):
        return F.conv2d(z, weight, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, kernel_size={self.weight.shape[-1]}, stride={self.stride}, padding={self.padding}"


DualStreamLinear.__doc__ += _OPTIONS_DOC
DualStreamConv2d.__doc__ += _OPTIONS_DOC


class Sigmoid(nn.Module):
    """``sigmoid(a / width)``: a wider sigmoid saturates later.

    :param width: ``w`` in ``sigmoid(a / w)``, finite and > 0 (default 1.0)
    :raises ValueError: ``width`` not a finite number > 0
    """

    def __init__(self, width: float = 1.0):
        super().__init__()
        check_number("sigmoid width", width, "> 0 and finite", positive_finite)
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
    """Clamps to its floor the weight of every Dale layer whose current weight ``optimizer`` trains.

    Registered as a post-step hook of every optimizer at import, so user loops (and SB3's
    ``train()``) keep the constraint without doing anything. The layers are the authority, not the
    Parameter objects: a weight swapped in by ``load_state_dict(assign=True)``, ``to_empty()`` or
    assignment is clamped as soon as an optimizer trains it.
    """
    layers = [m for m in list(_DALE_LAYERS) if m.dale]
    if not layers:
        return
    trained = {id(p) for group in optimizer.param_groups for p in group["params"]}
    for layer in layers:
        # a parametrized weight's Parameter is its original: clamp_ refuses it with a clear error
        weight = layer.parametrizations.weight.original if parametrize.is_parametrized(layer, "weight") else layer.weight
        if id(weight) in trained:
            layer.clamp_()


register_optimizer_step_post_hook(clamp_dale_weights)
