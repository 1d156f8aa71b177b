"""Direct Feedback Alignment: hidden layer ``l`` receives ``B_l e`` through a fixed random ``B_l``."""

from __future__ import annotations

import math

import torch

from .base import LearningRule


class DFA(LearningRule):
    """``B_l`` (features of layer ``l`` x ``out_features``) is drawn from N(0, 1/out_features) by a
    generator seeded with ``(seed, l)`` the first time layer ``l`` needs it, and kept as buffer
    ``B_l`` so that it is saved and loaded with the model's ``state_dict``.
    """

    name = "dfa"

    def __init__(self, out_features: int | None = None, seed: int = 0):
        if out_features is None:
            raise ValueError("dfa needs the network's output dimension: pass out_features=d")
        super().__init__(out_features, seed)

    def feedback_matrix(self, index: int, features: int, like: torch.Tensor) -> torch.Tensor:
        name = f"B_{index}"
        if not hasattr(self, name):
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
            B = torch.randn(features, self.out_features, generator=generator) / math.sqrt(self.out_features)
            self.register_buffer(name, B.to(like))
        B = getattr(self, name)
        if B.shape[0] != features:
            raise ValueError(f"dfa: {name} has {B.shape[0]} rows, hidden layer {index} has {features} units")
        return B

    def hidden_error(self, e, shape, index):
        B = self.feedback_matrix(index, math.prod(shape[1:]), e)
        return (e @ B.T).view(shape)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The buffers are made on first use; a checkpoint may hold ones this module has not made yet.
        for key, value in state_dict.items():
            name = key[len(prefix) :]
            if key.startswith(prefix) and "." not in name and name != "_extra_state" and not hasattr(self, name):
                self.register_buffer(name, torch.empty_like(value))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, seed={self.seed}"
