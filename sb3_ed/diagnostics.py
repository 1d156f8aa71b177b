"""Per-layer diagnostics of Dale networks: E/I balance, weights at the floor, surrogate gradients,
and how well a rule's hidden errors align with backprop's."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn

from .layers import DualStreamConv2d, DualStreamLinear

DALE_LAYERS = (DualStreamLinear, DualStreamConv2d)


def dale_layers(module: nn.Module) -> dict[str, nn.Module]:
    """The Dale layers of ``module`` by their qualified names, in forward order."""
    return {name: m for name, m in module.named_modules() if isinstance(m, DALE_LAYERS)}


@torch.no_grad()
def weight_stats(module: nn.Module) -> dict[str, dict[str, float]]:
    """Per Dale layer: ``ei_ratio`` (mean of W_pp, W_nn over mean of W_pn, W_np) and, for each
    sub-matrix, the fraction of its weights at the floor (``floor_W_pp`` ...)."""
    stats = {}
    for name, layer in dale_layers(module).items():
        blocks = layer.sub_matrices()
        exc = (blocks["W_pp"].mean() + blocks["W_nn"].mean()) / 2
        inh = (blocks["W_pn"].mean() + blocks["W_np"].mean()) / 2
        entry = {"ei_ratio": (exc / inh.clamp_min(torch.finfo(inh.dtype).tiny)).item()}
        floor = layer.floor if layer.dale else 0.0
        for block, w in blocks.items():
            entry[f"floor_{block}"] = (w <= floor).float().mean().item()
        stats[name] = entry
    return stats


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """The cosine between ``a`` and ``b`` (any shapes of as many entries), flattened, computed in
    float64: float32 sums over a conv layer's millions of entries drift by about 0.1 % (a vector of
    16M entries against itself measured 1.0013 in float32)."""
    return torch.nn.functional.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0).item()


def surrogate_gradients(module: nn.Module, loss_fn: Callable[[], torch.Tensor]) -> dict[str, float]:
    """Mean ``|dL/da|`` at each Dale layer's pre-activation for one ``loss_fn().backward()``: the signal
    each layer learns from (under ``bp``, its attenuation from the output to the first layer).
    Parameter gradients are restored afterwards, so this can run between training steps."""
    layers = dale_layers(module)
    seen: dict[str, float] = {}

    def keep(name):
        def hook(_module, _inputs, output):
            if output.requires_grad:
                output.register_hook(lambda g: seen.__setitem__(name, g.abs().mean().item()))

        return hook

    handles = [layer.register_forward_hook(keep(name)) for name, layer in layers.items()]
    saved = [(p, p.grad) for p in module.parameters()]
    rule = getattr(module, "rule", None)  # a probe, not a training step: a rule keeps its state
    try:
        for p, _ in saved:
            p.grad = None
        with rule.frozen() if rule is not None else contextlib.nullcontext():
            loss_fn().backward()
    finally:
        for h in handles:
            h.remove()
        for p, grad in saved:
            p.grad = grad
    return {name: seen.get(name, 0.0) for name in layers}


def hidden_error_alignment(net: nn.Module, loss_fn: Callable[[], torch.Tensor]) -> dict[str, float]:
    """Per hidden block ``l`` of a :class:`~sb3_ed.network.FeedbackNetwork`: the cosine between the
    error its rule hands to the block's output ``h_l`` and the exact backprop gradient ``dL/dh_l``,
    over all units and samples of one ``loss_fn()`` (1 under ``bp``). Keys ``hidden.<l>``.

    The rule is swapped for :class:`~sb3_ed.rules.BP` for the second pass and put back; parameter
    gradients are restored afterwards, so this can run between training steps.
    """
    from .rules import BP

    def errors() -> dict[int, torch.Tensor]:
        seen: dict[int, torch.Tensor] = {}

        def keep(index):
            def hook(_module, _inputs, output):
                if output.requires_grad:
                    output.register_hook(lambda g: seen.__setitem__(index, g.detach().flatten()))

            return hook

        handles = [block.register_forward_hook(keep(i)) for i, block in enumerate(net.hidden)]
        try:
            loss_fn().backward()
        finally:
            for h in handles:
                h.remove()
        return seen

    saved = [(p, p.grad) for p in net.parameters()]
    rule = net.rule
    try:
        for p, _ in saved:
            p.grad = None
        with rule.frozen():
            from_rule = errors()
        net.rule = BP()
        for p, _ in saved:
            p.grad = None
        from_bp = errors()
    finally:
        net.rule = rule
        for p, grad in saved:
            p.grad = grad
    return {
        f"hidden.{i}": cosine(from_rule[i], from_bp[i]) for i in sorted(from_rule.keys() & from_bp.keys())
    }
