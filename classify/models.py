"""Dual-stream Dale classifiers, the paper's three innovations and its ablation variants."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sb3_ed import DualStreamConv2d, DualStreamLinear, FeedbackNetwork, Sigmoid, StreamDifference
from sb3_ed.diagnostics import dale_layers

# The three innovations (layer_widths, center, asym_init); a variant switches some of them off.
VARIANTS: dict[str, dict[str, bool]] = {
    "proposed": {"layer_widths": True, "center": True, "asym_init": True},
    "seed": {"layer_widths": False, "center": False, "asym_init": False},
    "no-center": {"layer_widths": True, "center": False, "asym_init": True},
    "sym-init": {"layer_widths": True, "center": True, "asym_init": False},
    "uniform-width": {"layer_widths": False, "center": True, "asym_init": True},
}
UNIFORM_WIDTH = 1.0  # a plain sigmoid, for every layer, when layer-specific widths are off
# The output layer's pre-activations start at this fraction of its sigmoid's width (see data_init)
OUTPUT_STD = 0.1


@torch.no_grad()
def data_init(net: FeedbackNetwork, x: torch.Tensor) -> None:
    """Data-dependent init of every Dale layer, in forward order, on the probe batch ``x``: each
    unit's pre-activation gets zero mean (the bias) and each layer's pre-activations a per-unit
    standard deviation equal to the width of the sigmoid they feed (weight and bias scaled by one
    factor per layer), so that every sigmoid starts on its slope. Each layer is set on the activity
    of the layers below it, already set. Mishkin & Matas's LSUV init (ICLR 2016), with the mean
    taken out as well and a non-negative scale, which keeps the Dale signs and the E/I ratio.

    Why: non-negative weights on non-negative activity give every unit a drive proportional to the
    mean input, enough to saturate a sigmoid wherever the init has an E/I surplus; and correlated
    inputs (the pixels of a patch, the features of a conv layer) make the spread of a layer's drive
    far from ``1/sqrt(fan_in)``'s assumption: on CIFAR-10 the first conv layer's units barely vary
    from image to image, and the output layer starts saturated.

    :param net: a network of :func:`build`, each block holding one Dale layer and its sigmoid
    :param x: a batch of training images ``(N, C, H, W)``, N of a few hundred
    """
    pairs = _layers_and_sigmoids(net)
    targets = {id(layer): sigmoid.width for layer, sigmoid in pairs}
    output_layer = pairs[-1][0]
    targets[id(output_layer)] *= OUTPUT_STD

    def center_and_scale(module, _inputs, a):
        dims = [d for d in range(a.dim()) if d != 1]
        centred = a - a.mean(dim=dims, keepdim=True)
        std = centred.pow(2).mean(dim=dims).sqrt().mean()
        scale = targets[id(module)] / std.clamp_min(1e-12)
        module.bias.sub_(a.mean(dim=dims)).mul_(scale)
        module.weight.mul_(scale)
        module.clamp_()
        return centred * scale  # what the new weight and bias give, for the layers above

    handles = [m.register_forward_hook(center_and_scale) for m in dale_layers(net).values()]
    try:
        net(x)
    finally:
        for h in handles:
            h.remove()


def _layers_and_sigmoids(net: FeedbackNetwork) -> list[tuple[nn.Module, Sigmoid]]:
    pairs = []
    for block in [*net.hidden, net.output]:
        layer = next(m for m in block.modules() if isinstance(m, (DualStreamLinear, DualStreamConv2d)))
        sigmoid = next(m for m in block.modules() if isinstance(m, Sigmoid))
        pairs.append((layer, sigmoid))
    return pairs


class ChannelsLast(nn.Module):
    """Hands the images on in channels-last layout, in which oneDNN's CPU convolutions run fastest."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last)


@dataclass(frozen=True)
class Architecture:
    """Layer sizes, the layer-specific sigmoid widths and E/I init of the innovations, and per-layer
    learning-rate multipliers (hidden layers first, then the output layer)."""

    conv_channels: tuple[int, ...]  # 5x5 conv layers (channels per stream), each pooled 2x2 after
    hidden: tuple[int, ...]  # fully connected hidden layers
    conv_width: float
    fc_width: float
    output_width: float
    # Excitatory : inhibitory init scale of hidden layers whose input is dual-stream. The first layer
    # feeds one input to both streams, so there an E/I surplus would only add a drive proportional
    # to the total input intensity, the same for every unit: it stays 1:1, as does the output layer.
    exc_inh: tuple[float, float]
    lr_mult: tuple[float, ...]
    fc_pool: int = 1  # average pooling (this factor) after the last conv pooling, before the FC layers
    # Under bp the hidden layers' multipliers are scaled by this. The true gradient reaches a hidden
    # layer through the differences of nearly balanced non-negative matrices (W_pp - W_np, ...), far
    # below the output error that ED and DFA hand every unit (3 to 4 orders of magnitude on the
    # CIFAR-10 network), so at their rates backprop leaves the hidden layers where they started
    # (CIFAR-10: chance). Chosen by a sweep over the factor (docs/classify.md), as each rule's rate
    # is its own in the literature.
    bp_hidden_lr: float = 1.0

    def lr_multipliers(self, rule: str) -> tuple[float, ...]:
        """The per-layer learning-rate multipliers (hidden layers, then the output) under ``rule``."""
        scale = self.bp_hidden_lr if rule == "bp" else 1.0
        return (*(m * scale for m in self.lr_mult[:-1]), self.lr_mult[-1])


ARCHITECTURES = {
    # the paper's MNIST network: one wide hidden layer
    "mlp": Architecture((), (2000,), 0.0, 0.25, 1.0, (3.0, 1.0), (0.1, 1.0), bp_hidden_lr=100.0),
    # the CIFAR-10 network. Its cost was chosen for a 2-core CPU (docs/classify.md): the FC layer
    # sees the conv features pooled to 4x4 (a quarter of its weights at 8x8). Every hidden layer
    # learns at the FC's multiplier: at a quarter of it (the earlier default) the network underfit,
    # train accuracy no higher than test (docs/results/cifar10/NOTES.md)
    "conv": Architecture((32, 64), (1000,), 2.0, 0.25, 1.0, (3.0, 1.0), (0.1, 0.1, 0.1, 1.0), fc_pool=2, bp_hidden_lr=3000.0),
}


def default_architecture(in_shape: tuple[int, int, int]) -> str:
    """``"conv"`` for colour images (CIFAR-10's network), ``"mlp"`` for grey ones (MNIST's)."""
    return "conv" if in_shape[0] == 3 else "mlp"


def build(
    arch_name: str, in_shape: tuple[int, int, int], num_classes: int, rule: str, variant: str, seed: int = 0, **rule_kwargs
) -> FeedbackNetwork:
    """The classifier ``arch_name`` (a key of ``ARCHITECTURES``) for images of ``in_shape``
    ``(C, H, W)``, with ``num_classes`` independent sigmoid outputs.

    :raises ValueError: images too small for the conv network's poolings
    """
    arch, flags = ARCHITECTURES[arch_name], VARIANTS[variant]
    if arch.conv_channels and min(in_shape[1:]) < 2 ** len(arch.conv_channels) * arch.fc_pool:
        raise ValueError(f"{arch_name}: images of {in_shape[1]}x{in_shape[2]} are too small for its poolings (by {2 ** len(arch.conv_channels) * arch.fc_pool}); use --arch mlp")

    def width(kind: float) -> float:
        return kind if flags["layer_widths"] else UNIFORM_WIDTH

    def scales(first: bool) -> dict[str, float]:
        exc, inh = arch.exc_inh if flags["asym_init"] and not first else (1.0, 1.0)
        return {"shared_input": first, "exc_scale": exc, "inh_scale": inh}

    channels, height, width_px = in_shape
    hidden: list[nn.Module] = []
    # Each block ends at its activation (the feedback point); a conv layer's 2x2 average pooling
    # opens the next block. Under ED and DFA the error then reaches the conv layer without a
    # pooling backward (and ED's, the same at every position, needs none).
    pooling: list[nn.Module] = [ChannelsLast()]
    for i, out_channels in enumerate(arch.conv_channels):
        conv = DualStreamConv2d(channels, out_channels, 5, padding=2, **scales(not hidden))
        hidden.append(nn.Sequential(*pooling, conv, Sigmoid(width(arch.conv_width))))
        last = i == len(arch.conv_channels) - 1
        pool = 2 * (arch.fc_pool if last else 1)
        pooling = [nn.AvgPool2d(pool)]
        channels, height, width_px = out_channels, height // pool, width_px // pool
    if not arch.conv_channels:
        pooling = []
    features = channels * height * width_px
    for i, units in enumerate(arch.hidden):
        linear = DualStreamLinear(features, units, **scales(not hidden))
        # [p | n] channels flatten to [p | n] features
        flatten = [*pooling, nn.Flatten()] if i == 0 else []
        hidden.append(nn.Sequential(*flatten, linear, Sigmoid(width(arch.fc_width))))
        features = units
    output = nn.Sequential(DualStreamLinear(features, num_classes), Sigmoid(width(arch.output_width)), StreamDifference())
    net = FeedbackNetwork(hidden, output, rule, out_features=num_classes, seed=seed, **rule_kwargs)
    return net.to(memory_format=torch.channels_last) if arch.conv_channels else net


def layer_groups(net: FeedbackNetwork) -> list[list[nn.Parameter]]:
    """Parameters of each layer, hidden layers first, for per-layer learning rates."""
    return [list(block.parameters()) for block in net.hidden] + [list(net.output.parameters())]
