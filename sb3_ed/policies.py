"""Stable-Baselines3 actor-critic policies whose policy and value MLPs learn by ED, DFA, learned
feedback (np) or BP.

``PPO(EDPolicy, env)`` trains with SB3's own ``train()``: PPO's loss reaches the end of each network
as ``dL/d(distribution parameters)`` (the Gaussian mean, or the logits) and ``dL/dV``; the rule
turns these into the hidden layers' errors. Importing this module also registers the policies by
name with PPO and A2C, so ``PPO("EDPolicy", env)`` works.
"""

from __future__ import annotations

import functools
import inspect
import numbers
from typing import Any

import torch
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.distributions import StateDependentNoiseDistribution
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import nn

from .checks import SEED_RANGE, check_flag, check_number, positive_finite
from .layers import DEFAULT_FLOOR
from .network import FeedbackNetwork, dale_mlp, mlp

# options of the Dale networks that a single-stream policy (DFAPolicy) has no use for
DUAL_STREAM_ONLY = ("rms_norm", "widths", "exc_scale", "inh_scale", "init", "bias_init", "centered", "floor", "dale", "output_scale")
ACTIVATION_NAMES = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.Identity: "identity"}


def check_finite(features: torch.Tensor) -> None:
    # every rollout step and every minibatch passes here: the place to stop a silent divergence
    if not torch.isfinite(features).all():
        raise ValueError("NaN or inf in the observations (VecCheckNan can find the step that made them)")


def split_architecture(net_arch) -> tuple[list[int], list[int]]:
    """The hidden sizes of the policy and of the value network, from SB3's ``net_arch``: ``None``
    (``[64, 64]`` for both), a list of sizes for both, or ``dict(pi=[...], vf=[...])`` (a missing
    key: no hidden layer, as SB3's).

    :raises ValueError: anything else (a bare number, a size that is not an integer >= 1, SB3's old
        list-with-a-dict format, a key other than ``pi`` and ``vf``), naming ``net_arch``
    """
    if net_arch is None:
        return [64, 64], [64, 64]
    expected = "a list of hidden sizes (integers >= 1) or dict(pi=[...], vf=[...])"
    if isinstance(net_arch, dict):
        unknown = sorted(map(str, set(net_arch) - {"pi", "vf"}))
        if unknown:
            raise ValueError(f"net_arch: unknown key(s) {', '.join(unknown)}; it must be {expected}")
        arches = [net_arch.get("pi", []), net_arch.get("vf", [])]
    else:
        arches = [net_arch, net_arch]
    for arch in arches:
        if not isinstance(arch, (list, tuple)) or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1 for n in arch):
            raise ValueError(f"net_arch must be {expected}, got {net_arch!r}")
    return list(arches[0]), list(arches[1])


class DaleMlpExtractor(nn.Module):
    """Separate policy and value networks, each ending in its own output layer.

    In SB3's terms its latents are already the distribution parameters (``latent_dim_pi``) and the
    value (``latent_dim_vf = 1``): a rule can only hand the error to hidden layers from the output
    it wraps, so the heads belong to the networks, not on top of them.
    """

    def __init__(self, policy_net: FeedbackNetwork, value_net: FeedbackNetwork, latent_dim_pi: int):
        super().__init__()
        self.policy_net, self.value_net = policy_net, value_net
        self.latent_dim_pi, self.latent_dim_vf = latent_dim_pi, 1

    def forward(self, features):
        check_finite(features)  # once for both networks: this is every rollout step's path
        return self.policy_net(features), self.value_net(features)

    def forward_actor(self, features):
        check_finite(features)
        return self.policy_net(features)

    def forward_critic(self, features):
        check_finite(features)
        return self.value_net(features)


class FeedbackPolicy(ActorCriticPolicy):
    """An actor-critic policy whose policy and value MLPs learn by a :mod:`~sb3_ed.rules` rule;
    subclasses fix the rule (``rule``) and the kind of network (``dual_stream``).

    The policy network ends in the distribution parameters (the Gaussian mean for Box actions, the
    logits otherwise) and the value network in ``V``: PPO's loss reaches them as ``dL/d(mean or
    logits)`` and ``dL/dV``, from which the rule makes the hidden layers' errors. Besides SB3's own
    keyword arguments (``net_arch``, ``log_std_init``, ``optimizer_class`` ...):

    :param activation_fn: hidden activation, an ``nn`` class or its name: ``nn.ReLU`` (default),
        ``nn.Sigmoid``, ``nn.Tanh``, ``nn.Identity``
    :param ortho_init: SB3's init of ``MlpPolicy``: orthogonal weights of gain sqrt(2) in the hidden
        layers, 0.01 in the policy network's output layer and 1 in the value network's (SB3's
        action and value heads), zero biases. It touches ``nn.Linear`` layers only: default False
        for the dual-stream networks (Dale weights are non-negative and have their own init,
        ``init`` and ``output_scale``), True for DFAPolicy
    :param rms_norm: divide each hidden stream by its root-mean-square activity (default: True for
        dual-stream networks)
    :param widths: sigmoid width ``w`` of ``sigmoid(a / w)`` (default 1.0); with any other
        activation a width other than 1.0 is refused (ValueError), not ignored
    :param exc_scale: init scale of ``W_pp``, ``W_nn`` (default 1.0)
    :param inh_scale: init scale of ``W_pn``, ``W_np`` (default 1.0)
    :param init: ``"abs_normal"`` (default) or ``"uniform"``: the non-negative init, scaled by
        ``1/sqrt(fan_in)``
    :param bias_init: the hidden layers' bias init: ``"uniform"`` (default, ``torch.nn.Linear``'s
        U(-1/sqrt(fan_in), 1/sqrt(fan_in))) or ``"zeros"``. With zero biases a hidden stream after
        RMS norm loses the scale of a low-dimensional input (one input: only its sign is left)
    :param centered: centre the gradient factors of every Dale layer (default True; False for NPPolicy): each weight's
        update sees its input minus the batch mean, the bias takes the mean's share (Schraudolph
        1998). Non-negative activity into non-negative weights otherwise turns most of each Adam
        step into a shift of every output alike (see docs/rl.md)
    :param floor: the smallest Dale weight (default 1e-6)
    :param dale: False gives the non-Dalean variant of the same networks (default True)
    :param output_scale: extra init scale of the policy network's output layer (default 0.01, as
        SB3's action head); dual-stream networks only, as are ``rms_norm``, ``widths``, the
        ``*_scale``, ``init``, ``bias_init``, ``centered``, ``floor`` and ``dale`` (DFAPolicy's
        ``nn.Linear`` layers take ``ortho_init``'s gains instead)
    :param feedback_seed: seed of the rule's random feedback (DFA, np), 0 to 2**32 - 2: the value
        network uses ``feedback_seed + 1`` (default 0)
    :param rule_kwargs: options of the rule (e.g. ``dict(sigma=1e-3)`` for ``np``; default none)
    :raises ValueError: an activation the networks do not know, gSDE, (for direct rules) a
        features extractor with trainable parameters, a numeric option (``output_scale``,
        ``exc_scale``, ``inh_scale``, ``widths``, ``floor``, ``feedback_seed``, ``log_std_init``)
        that is not a finite number in its range, a ``net_arch`` that is not a list of sizes >= 1
        or ``dict(pi=[...], vf=[...])``, or ``estimator='exact'`` for ``np`` (it needs per-example
        losses)
    :raises TypeError: ``ortho_init`` (or another on/off option) not a bool, ``rule_kwargs`` not a dict
    """

    rule = "ed"
    dual_stream = True

    def __init__(
        self,
        *args,
        activation_fn: type[nn.Module] | str = nn.ReLU,
        ortho_init: bool = False,
        rms_norm: bool | None = None,
        widths: float = 1.0,
        exc_scale: float = 1.0,
        inh_scale: float = 1.0,
        init: str = "abs_normal",
        bias_init: str = "uniform",
        centered: bool = True,
        floor: float = DEFAULT_FLOOR,
        dale: bool = True,
        output_scale: float = 0.01,
        feedback_seed: int = 0,
        rule_kwargs: dict[str, Any] | None = None,
        **kwargs,
    ):
        # checked here: the policy multiplies the scales before the layers see them, and a ReLU network
        # builds no sigmoid that would name widths' range
        for option, value in (("output_scale", output_scale), ("exc_scale", exc_scale), ("inh_scale", inh_scale), ("widths", widths)):
            check_number(option, value, "> 0 and finite", positive_finite)
        # the value network's rule takes feedback_seed + 1, which must stay a seed too
        check_number("feedback_seed", feedback_seed, "an integer from 0 to 2**32 - 2", lambda v: v >= 0 and v + 1 in SEED_RANGE, integer=True)
        check_flag("ortho_init", ortho_init)
        if rule_kwargs is not None and not isinstance(rule_kwargs, dict):
            raise TypeError(f"{type(self).__name__}: rule_kwargs must be a dict of the rule's options, got {rule_kwargs!r}")
        if "log_std_init" in kwargs:
            check_number("log_std_init", kwargs["log_std_init"], "a finite number (the log of the Gaussian's initial std)")
        split_architecture(kwargs.get("net_arch"))
        if self.rule == "np" and (rule_kwargs or {}).get("estimator") == "exact":
            raise ValueError(
                f"{type(self).__name__}: rule_kwargs estimator='exact' needs each example's loss at the perturbed outputs, "
                f"which PPO's loss does not give a policy; use estimator='first_order' (the default)"
            )
        name = ACTIVATION_NAMES.get(activation_fn, activation_fn)
        if not isinstance(name, str):
            raise ValueError(f"{type(self).__name__}: activation_fn must be one of {', '.join(ACTIVATION_NAMES.values())} (or its nn class), got {activation_fn!r}")
        self.network_kwargs: dict[str, Any] = {
            "activation_fn": name,
            "rms_norm": self.dual_stream if rms_norm is None else rms_norm,
            "widths": widths,
            "exc_scale": exc_scale,
            "inh_scale": inh_scale,
            "init": init,
            "bias_init": bias_init,
            "centered": centered,
            "floor": floor,
            "dale": dale,
            "output_scale": output_scale,
            "feedback_seed": feedback_seed,
            "rule_kwargs": dict(rule_kwargs or {}),
        }
        if not self.dual_stream:
            defaults = inspect.signature(FeedbackPolicy.__init__).parameters
            # a reloaded model passes its saved rms_norm=False back
            given = {**self.network_kwargs, "rms_norm": rms_norm or None}
            # by type too: dale=1 or rms_norm=0 equal the defaults, but were typed as options
            ignored = [k for k in DUAL_STREAM_ONLY if type(given[k]) is not type(defaults[k].default) or given[k] != defaults[k].default]
            if ignored:
                raise ValueError(
                    f"{type(self).__name__}: {', '.join(ignored)}: options of dual-stream networks only; its networks are "
                    f"single-stream nn.Linear MLPs (EDPolicy, DaleBPPolicy and NPPolicy are dual-stream)"
                )
        super().__init__(*args, activation_fn=nn.Identity, ortho_init=ortho_init, **kwargs)

    def _network(self, in_features: int, hidden: list[int], out_features: int, output_scale: float, seed: int) -> FeedbackNetwork:
        k = self.network_kwargs
        if not self.dual_stream:
            return mlp(in_features, hidden, out_features, rule=self.rule, activation_fn=k["activation_fn"], seed=seed, **k["rule_kwargs"])
        layers = len(hidden) + 1
        exc = [k["exc_scale"]] * (layers - 1) + [k["exc_scale"] * output_scale]
        inh = [k["inh_scale"]] * (layers - 1) + [k["inh_scale"] * output_scale]
        return dale_mlp(
            in_features,
            hidden,
            out_features,
            rule=self.rule,
            activation_fn=k["activation_fn"],
            widths=k["widths"],
            rms_norm=k["rms_norm"],
            dale=k["dale"],
            floor=k["floor"],
            exc_scale=exc,
            inh_scale=inh,
            init=k["init"],
            bias_init=k["bias_init"],
            centered=k["centered"],
            seed=seed,
            **k["rule_kwargs"],
        )

    def _build_mlp_extractor(self) -> None:
        if isinstance(self.action_dist, StateDependentNoiseDistribution):
            raise ValueError(f"{type(self).__name__} does not support gSDE (use_sde=True)")
        if self.rule != "bp" and any(p.requires_grad for p in self.features_extractor.parameters()):
            raise ValueError(
                f"{type(self).__name__}: the features extractor has trainable parameters, which only backprop "
                f"could train; use a parameter-free one (the default FlattenExtractor) or DaleBPPolicy"
            )
        pi_arch, vf_arch = split_architecture(self.net_arch)
        # the number of distribution parameters the policy network outputs (mean, or logits)
        head = self.action_dist.proba_distribution_net(latent_dim=1)
        out_features = (head[0] if isinstance(head, tuple) else head).out_features
        seed = self.network_kwargs["feedback_seed"]
        self.mlp_extractor = DaleMlpExtractor(
            self._network(self.features_dim, pi_arch, out_features, self.network_kwargs["output_scale"], seed),
            self._network(self.features_dim, vf_arch, 1, 1.0, seed + 1),
            out_features,
        )

    def _build(self, lr_schedule) -> None:
        super()._build(lr_schedule)
        # The networks end in their own output layers (see DaleMlpExtractor): no linear heads on top.
        self.action_net, self.value_net = nn.Identity(), nn.Identity()
        if self.ortho_init:
            # SB3 gave the whole extractor the hidden layers' gain; its heads' gains belong to the
            # output layers here. A policy that starts near-uniform explores: DFA with PyTorch's
            # default init passed 46 of SB3's 80 identity cases (10 seeds), with these gains 70
            # (MlpPolicy: 62; docs/benchmarks.md)
            for net, gain in ((self.mlp_extractor.policy_net, 0.01), (self.mlp_extractor.value_net, 1.0)):
                net.output.apply(functools.partial(self.init_weights, gain=gain))
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), **self.network_kwargs}


class EDPolicy(FeedbackPolicy):
    """Dual-stream Dale policy and value MLPs trained by Error Diffusion (ReLU + per-stream RMS norm)."""

    rule = "ed"


class DaleBPPolicy(FeedbackPolicy):
    """The same dual-stream Dale networks trained by exact backprop: the control."""

    rule = "bp"


class DFAPolicy(FeedbackPolicy):
    """Single-stream, unconstrained MLPs trained by Direct Feedback Alignment (tanh and SB3's
    orthogonal init by default, as ``MlpPolicy``)."""

    rule = "dfa"
    dual_stream = False

    def __init__(self, *args, activation_fn: type[nn.Module] | str = nn.Tanh, ortho_init: bool = True, **kwargs):
        super().__init__(*args, activation_fn=activation_fn, ortho_init=ortho_init, **kwargs)


class NPPolicy(FeedbackPolicy):
    """The dual-stream Dale networks of EDPolicy, trained by learned direct feedback: node
    perturbation fits each hidden layer's ``B_l`` to backprop's ``dL/dh_l`` (rule ``np``; its
    options through ``rule_kwargs``)."""

    rule = "np"

    def __init__(self, *args, centered: bool = False, **kwargs):
        # measured: CartPole-v1, 40k steps (the medium test), seed 0: 500 without centring, 166 with
        # it; ED and BP gain from it (docs/benchmarks.md), np is not shown to yet
        super().__init__(*args, centered=centered, **kwargs)


POLICIES = {cls.__name__: cls for cls in (EDPolicy, DFAPolicy, DaleBPPolicy, NPPolicy)}
for _algo in (PPO, A2C):
    _algo.policy_aliases.update(POLICIES)
