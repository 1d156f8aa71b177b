"""Error Diffusion: each hidden unit learns from one output channel's error, sign set by its stream."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .base import LearningRule


def _spread(error: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """A (batch, channels) error broadcast over the positions of an activity of ``shape``."""
    return error.view(*error.shape, *([1] * (len(shape) - 2))).expand(shape)


class ED(LearningRule):
    """Hidden unit ``j`` (conv: channel ``j``, over all positions) receives output channel ``j mod d``:
    ``+e`` in the p-stream, ``-e`` in the n-stream. A scalar output (d = 1) reaches every unit.

    Every update it causes is local: presynaptic activity x routed error x the unit's own
    activation derivative. No forward weight and no random matrix is involved.
    """

    name = "ed"
    requires_dual_stream = True

    def hidden_error(self, e: torch.Tensor, shape: torch.Size, index: int) -> torch.Tensor:
        units = shape[1] // 2
        routed = e.repeat(1, -(-units // e.shape[1]))[:, :units]  # column j is e[:, j mod d]
        return _spread(torch.cat([routed, -routed], dim=1), shape)

    def hidden_errors(self, e: torch.Tensor, shapes: Sequence[torch.Size | None]) -> list[torch.Tensor | None]:
        # The error depends on a layer's channel count alone: layers of one width share one tensor.
        by_width = {}
        for i, shape in enumerate(shapes):
            if shape is not None and shape[1] not in by_width:
                by_width[shape[1]] = self.hidden_error(e, shape[:2], i)
        return [None if shape is None else _spread(by_width[shape[1]], shape) for shape in shapes]
