"""What every learning rule shares, and the one autograd function that delivers the output error."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class LearningRule(nn.Module):
    """How the hidden layers of a :class:`~sb3_ed.network.FeedbackNetwork` learn.

    A direct rule (``direct = True``) cuts the graph between layers: each hidden layer's output is
    a feedback point whose gradient is :meth:`hidden_error` of the output error ``e = dL/dy``,
    so ``loss.backward()`` only ever differentiates a layer through its own local terms.
    """

    name: str
    direct = True
    requires_dual_stream = False

    def __init__(self, out_features: int | None = None):
        super().__init__()
        self.out_features = out_features
        # Set track_errors to keep, after each backward, the mean |error| handed to each point.
        self.track_errors = False
        self.error_magnitudes: list[float] = []

    def hidden_error(self, e: torch.Tensor, shape: torch.Size, index: int) -> torch.Tensor:
        """The gradient handed to hidden feedback point ``index`` (activity of ``shape``)."""
        raise NotImplementedError

    def hidden_errors(self, e: torch.Tensor, shapes: Sequence[torch.Size | None]) -> list[torch.Tensor | None]:
        """The gradients for all feedback points of one backward (``None`` where ``shapes`` has ``None``)."""
        return [None if shape is None else self.hidden_error(e, shape, i) for i, shape in enumerate(shapes)]

    def check_error(self, e: torch.Tensor) -> None:
        if e.dim() != 2:
            raise ValueError(f"{self.name}: the network output must be (batch, d), got {tuple(e.shape)}")
        if self.out_features is not None and e.shape[1] != self.out_features:
            raise ValueError(
                f"{self.name}: output error has {e.shape[1]} channels, the rule was built for "
                f"out_features={self.out_features}"
            )
        if not torch.isfinite(e).all():
            raise FloatingPointError(f"{self.name}: the output error dL/dy holds NaN or inf; no update made")

    def extra_repr(self) -> str:
        return f"out_features={self.out_features}"


class _DeliverError(torch.autograd.Function):
    """Identity on the output ``y``; in backward, hands ``e = dL/dy`` to every feedback point."""

    @staticmethod
    def forward(ctx, rule: LearningRule, y: torch.Tensor, *points: torch.Tensor):
        ctx.rule = rule
        ctx.shapes = [p.shape for p in points]
        return y.view_as(y)

    @staticmethod
    def backward(ctx, e: torch.Tensor):
        ctx.rule.check_error(e)
        shapes = [shape if ctx.needs_input_grad[2 + i] else None for i, shape in enumerate(ctx.shapes)]
        errors = ctx.rule.hidden_errors(e, shapes)
        if ctx.rule.track_errors:
            ctx.rule.error_magnitudes = [err.abs().mean().item() for err in errors if err is not None]
        return (None, e, *errors)


def deliver_error(rule: LearningRule, y: torch.Tensor, points: Sequence[torch.Tensor]) -> torch.Tensor:
    """``y`` unchanged, wired so that ``loss.backward()`` sends the rule's hidden errors to ``points``."""
    if not torch.is_grad_enabled():
        return y
    return _DeliverError.apply(rule, y, *points)
