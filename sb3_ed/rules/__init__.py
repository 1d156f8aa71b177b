"""Learning rules, selectable by name: ``ed``, ``dfa``, ``np`` (learned feedback by node perturbation), ``bp``."""

from __future__ import annotations

import inspect

from .base import LearningRule, deliver_error
from .bp import BP
from .dfa import DFA
from .ed import ED
from .node_perturbation import NodePerturbation

RULES: dict[str, type[LearningRule]] = {rule.name: rule for rule in (ED, DFA, NodePerturbation, BP)}


def rule_options(rule: str) -> list[str]:
    """The keyword arguments of rule ``rule``'s constructor (a name of :data:`RULES`)."""
    return [name for name in inspect.signature(RULES[rule].__init__).parameters if name != "self"]


def make_rule(rule: str | LearningRule, **kwargs) -> LearningRule:
    """A rule instance from its name (``kwargs`` go to its constructor), or ``rule`` itself."""
    if isinstance(rule, LearningRule):
        return rule
    if rule not in RULES:
        raise ValueError(f"unknown learning rule {rule!r}; choose from {', '.join(RULES)}")
    options = rule_options(rule)
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        # a network builder hands the rule every keyword it does not know itself
        raise TypeError(f"unknown option {', '.join(map(repr, unknown))}: not the network's, nor one of the {rule} rule's ({', '.join(options)})")
    return RULES[rule](**kwargs)


__all__ = ["BP", "DFA", "ED", "RULES", "LearningRule", "NodePerturbation", "deliver_error", "make_rule", "rule_options"]
