"""What every learning rule shares, and the one autograd function that delivers the output error."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from ..checks import SEED_RANGE, check_number


class LearningRule(nn.Module):
    """How the hidden layers of a :class:`~sb3_ed.network.FeedbackNetwork` learn.

    A direct rule (``direct = True``) cuts the graph between layers: each hidden layer's output is
    a feedback point whose gradient is :meth:`hidden_error` of the output error ``e = dL/dy``,
    so ``loss.backward()`` only ever differentiates a layer through its own local terms.
    """

    name: str
    direct = True
    requires_dual_stream = False
    requires_hidden = False

    def __init__(self, out_features: int | None = None, seed: int = 0):
        super().__init__()
        if out_features is not None:
            check_number(f"{self.name}: out_features", out_features, "an integer >= 1 (the network's output dimension)", lambda v: v >= 1, integer=True)
        check_number(f"{self.name}: seed", seed, "an integer from 0 to 2**32 - 1", lambda v: v in SEED_RANGE, integer=True)
        self.out_features, self.seed = out_features, seed
        # Set track_errors to keep, after each backward, the mean |error| handed to each point.
        self.track_errors = False
        self.error_magnitudes: list[float] = []
        # False while frozen(): a rule with state of its own (learned feedback) leaves it unchanged
        self.learning = True

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Within it, backward passes hand out the rule's errors but change none of its own state
        (diagnostics use it to probe a rule without training it)."""
        learning, self.learning = self.learning, False
        try:
            yield
        finally:
            self.learning = learning

    def hidden_error(self, e: torch.Tensor, shape: torch.Size, index: int) -> torch.Tensor:
        """The gradient handed to hidden feedback point ``index`` (activity of ``shape``)."""
        raise NotImplementedError

    def hidden_errors(self, e: torch.Tensor, shapes: Sequence[torch.Size | None]) -> list[torch.Tensor | None]:
        """The gradients for all feedback points of one backward (``None`` where ``shapes`` has ``None``)."""
        return [None if shape is None else self.hidden_error(e, shape, i) for i, shape in enumerate(shapes)]

    def forward_context(self, points: Sequence[torch.Tensor], y: torch.Tensor, run_perturbed) -> Any:
        """Called by the network after each forward pass that will be differentiated; what it returns
        reaches :meth:`deliver` of that pass's backward. ``run_perturbed(noises)`` runs the network
        again, without gradients, with ``noises[l]`` added to hidden point ``l``, and returns its
        output. The default needs nothing."""
        return None

    def deliver(self, e: torch.Tensor, shapes: Sequence[torch.Size | None], context: Any) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
        """``(gradient for the output y, gradients for the hidden points)`` of one backward."""
        return e, self.hidden_errors(e, shapes)

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
    def forward(ctx, rule: LearningRule, context: Any, y: torch.Tensor, *points: torch.Tensor):
        ctx.rule, ctx.context = rule, context
        ctx.shapes = [p.shape for p in points]
        return y.view_as(y)

    @staticmethod
    def backward(ctx, e: torch.Tensor):
        ctx.rule.check_error(e)
        shapes = [shape if ctx.needs_input_grad[3 + i] else None for i, shape in enumerate(ctx.shapes)]
        e_out, errors = ctx.rule.deliver(e, shapes, ctx.context)
        if ctx.rule.track_errors:
            ctx.rule.error_magnitudes = [err.abs().mean().item() for err in errors if err is not None]
        return (None, None, e_out, *errors)


def deliver_error(rule: LearningRule, y: torch.Tensor, points: Sequence[torch.Tensor], run_perturbed=None) -> torch.Tensor:
    """``y`` unchanged, wired so that ``loss.backward()`` sends the rule's hidden errors to ``points``
    (``run_perturbed``: see :meth:`LearningRule.forward_context`)."""
    if not torch.is_grad_enabled():
        return y
    context = rule.forward_context(points, y, run_perturbed)
    return _DeliverError.apply(rule, context, y, *points)
