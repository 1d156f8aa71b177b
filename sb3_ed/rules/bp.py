"""Exact backpropagation through the same network: the control."""

from .base import LearningRule


class BP(LearningRule):
    name = "bp"
    direct = False
