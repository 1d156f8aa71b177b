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

# importing the policies registers their names with SB3's PPO and A2C: PPO("EDPolicy", env) works
from .policies import DaleBPPolicy, DFAPolicy, EDPolicy, FeedbackPolicy, NPPolicy
from .rules import BP, DFA, ED, RULES, LearningRule, NodePerturbation, make_rule

__version__ = "0.1.0"

__all__ = [
    "BP",
    "DEFAULT_FLOOR",
    "DFAPolicy",
    "DaleBPPolicy",
    "EDPolicy",
    "FeedbackPolicy",
    "NPPolicy",
    "NodePerturbation",
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
