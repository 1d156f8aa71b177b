"""Networks whose hidden layers learn by a :mod:`~sb3_ed.rules` rule, and builders for MLPs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .checks import check_flag
from .layers import DEFAULT_FLOOR, DualStreamLinear, Sigmoid, StreamDifference, StreamRMSNorm
from .rules import LearningRule, deliver_error, make_rule

ACTIVATIONS = ("sigmoid", "relu", "tanh", "identity")


def activation(name: str, width: float = 1.0) -> nn.Module:
    """An activation by name; ``width`` is the sigmoid's (``sigmoid(a / width)``).

    :raises ValueError: ``name`` is unknown, or ``width`` is not 1.0 for an activation other than
        the sigmoid (which has no width: the value would be ignored)
    """
    if name == "sigmoid":
        return Sigmoid(width)
    modules = {"relu": nn.ReLU, "tanh": nn.Tanh, "identity": nn.Identity}
    if name not in modules:
        raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}")
    if width != 1.0:
        raise ValueError(f"widths: {width!r} is a sigmoid width, but this layer's activation is {name}, which has none")
    return modules[name]()


class FeedbackNetwork(nn.Module):
    """``hidden`` blocks, then ``output``, trained by ``rule`` through the usual ``loss.backward()``.

    Under a direct rule (``ed``, ``dfa``) each hidden block's output is a feedback point: the next
    block sees it detached, and the output error reaches it through the rule alone, so no gradient
    ever crosses a forward weight backwards. Under ``bp`` the blocks are simply chained.
    """

    def __init__(
        self,
        hidden: Sequence[nn.Module],
        output: nn.Module,
        rule: str | LearningRule = "bp",
        *,
        dual_stream: bool = True,
        **rule_kwargs,
    ):
        super().__init__()
        self.hidden = nn.ModuleList(hidden)
        self.output = output
        self.rule = make_rule(rule, **rule_kwargs)
        self.dual_stream = dual_stream
        if self.rule.requires_dual_stream and not dual_stream:
            raise ValueError(
                f"{self.rule.name} sends +e to the p-stream and -e to the n-stream: it needs dual-stream layers"
            )
        if self.rule.requires_hidden and not self.hidden:
            raise ValueError(f"{self.rule.name} learns the feedback to hidden layers: the network has none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.rule.direct:
            for block in self.hidden:
                x = block(x)
            return self.output(x)
        inputs, points = x, []
        for block in self.hidden:
            x = block(x)
            points.append(x)
            x = x.detach()
        return deliver_error(self.rule, self.output(x), points, lambda noises: self._perturbed(inputs, noises))

    @torch.no_grad()
    def _perturbed(self, x: torch.Tensor, noises) -> torch.Tensor:
        """The output of a second pass with ``noises[l]`` added to hidden block ``l``'s output."""
        for block, noise in zip(self.hidden, noises):
            x = block(x) + noise
        return self.output(x)


def _one_value(value: float | Sequence[float]) -> bool:
    # a string is one (bad) value, not one value per character
    return not isinstance(value, Sequence) or isinstance(value, str)


def _per_layer(value: float | Sequence[float], layers: int, what: str) -> list[float]:
    # the values go to the layers as given, which check them: float() would read "2" or True as a number
    if _one_value(value):
        return [value] * layers
    if len(value) != layers:
        raise ValueError(f"{what}: one value per layer ({layers}, hidden and output), got {len(value)}")
    return list(value)


def dale_mlp(
    in_features: int,
    hidden_sizes: Sequence[int],
    out_features: int,
    *,
    rule: str | LearningRule = "ed",
    activation_fn: str = "sigmoid",
    output_activation: str = "identity",
    widths: float | Sequence[float] = 1.0,
    rms_norm: bool = False,
    dale: bool = True,
    floor: float = DEFAULT_FLOOR,
    exc_scale: float | Sequence[float] = 1.0,
    inh_scale: float | Sequence[float] = 1.0,
    init: str = "uniform",
    bias_init: str = "zeros",
    centered: bool = False,
    **rule_kwargs,
) -> FeedbackNetwork:
    """A dual-stream Dale MLP ``in -> hidden_sizes -> out`` whose output is ``y = h_p - h_n``.

    ``widths``, ``exc_scale`` and ``inh_scale`` take one value for all layers or one per layer
    (hidden layers, then the output layer); one width applies to the sigmoid layers, and a width
    other than 1.0 for a layer without a sigmoid is refused (ValueError). ``rms_norm`` normalises
    each hidden stream after its activation. ``dale=False`` gives the non-Dalean variant of the
    same network. ``bias_init`` initialises the hidden layers' biases (the output layer's start at
    zero) and ``centered`` centres every layer's gradient factors: see
    :class:`~sb3_ed.layers.DualStreamLinear`.
    """
    check_flag("rms_norm", rms_norm)
    sizes = [in_features, *hidden_sizes, out_features]
    n = len(sizes) - 1
    kinds = [activation_fn] * (n - 1) + [output_activation]
    one_width = _one_value(widths)
    widths = _per_layer(widths, n, "widths")
    if one_width and "sigmoid" in kinds:
        # one value is the width of every sigmoid layer; the others have none, and refuse one
        widths = [w if kind == "sigmoid" else 1.0 for w, kind in zip(widths, kinds)]
    exc, inh = _per_layer(exc_scale, n, "exc_scale"), _per_layer(inh_scale, n, "inh_scale")
    layers = [
        DualStreamLinear(
            sizes[i],
            sizes[i + 1],
            shared_input=i == 0,
            dale=dale,
            floor=floor,
            exc_scale=exc[i],
            inh_scale=inh[i],
            init=init,
            bias_init=bias_init if i < n - 1 else "zeros",
            centered=centered,
        )
        for i in range(n)
    ]
    hidden = [
        nn.Sequential(layer, activation(activation_fn, widths[i]), *([StreamRMSNorm()] if rms_norm else []))
        for i, layer in enumerate(layers[:-1])
    ]
    output = nn.Sequential(layers[-1], activation(output_activation, widths[-1]), StreamDifference())
    return FeedbackNetwork(hidden, output, rule, out_features=out_features, **rule_kwargs)


def mlp(
    in_features: int,
    hidden_sizes: Sequence[int],
    out_features: int,
    *,
    rule: str | LearningRule = "dfa",
    activation_fn: str = "tanh",
    output_activation: str = "identity",
    **rule_kwargs,
) -> FeedbackNetwork:
    """A single-stream, unconstrained MLP (for ``dfa`` and ``bp``)."""
    sizes = [in_features, *hidden_sizes, out_features]
    hidden = [nn.Sequential(nn.Linear(a, b), activation(activation_fn)) for a, b in zip(sizes[:-2], sizes[1:-1])]
    output = nn.Sequential(nn.Linear(sizes[-2], sizes[-1]), activation(output_activation))
    return FeedbackNetwork(hidden, output, rule, dual_stream=False, out_features=out_features, **rule_kwargs)
