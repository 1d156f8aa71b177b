"""Error Diffusion: each hidden unit learns from one output channel's error, sign set by its stream."""

from __future__ import annotations

import torch

from .base import LearningRule


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
        signed = torch.cat([routed, -routed], dim=1)
        return signed.view(*signed.shape, *([1] * (len(shape) - 2))).expand(shape)
