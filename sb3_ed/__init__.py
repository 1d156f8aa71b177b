"""sb3-ed: Dale dual-stream networks trained by Error Diffusion (ED) or Direct Feedback Alignment (DFA)."""

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

__all__ = [
    "BP",
    "DEFAULT_FLOOR",
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
    "split_streams",
]
