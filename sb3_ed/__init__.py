"""sb3-ed: Dale dual-stream networks trained by Error Diffusion (ED) or Direct Feedback Alignment (DFA)."""

from .allocator import retain_freed_memory
from .layers import (
    DEFAULT_FLOOR,
    DualStreamConv2d,
    DualStreamLinear,
    Sigmoid,
    StreamDifference,
    StreamRMSNorm,
    clamp_dale_weights,
    split_streams,
)
from .network import FeedbackNetwork, activation, dale_mlp, mlp
from .rules import BP, DFA, ED, RULES, LearningRule, make_rule

__version__ = "0.1.0"

_POLICIES = ("EDPolicy", "DFAPolicy", "DaleBPPolicy", "FeedbackPolicy")


def __getattr__(name):
    # The policies need Stable-Baselines3; the layers and rules do not.
    if name in _POLICIES:
        from . import policies

        return getattr(policies, name)
    raise AttributeError(f"module 'sb3_ed' has no attribute {name!r}")


__all__ = [
    "BP",
    "DEFAULT_FLOOR",
    "DFAPolicy",
    "DaleBPPolicy",
    "EDPolicy",
    "FeedbackPolicy",
    "DFA",
    "ED",
    "RULES",
    "DualStreamConv2d",
    "DualStreamLinear",
    "FeedbackNetwork",
    "LearningRule",
    "Sigmoid",
    "StreamDifference",
    "StreamRMSNorm",
    "activation",
    "clamp_dale_weights",
    "dale_mlp",
    "make_rule",
    "mlp",
    "retain_freed_memory",
    "split_streams",
]
