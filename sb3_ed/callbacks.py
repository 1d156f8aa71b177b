"""A Stable-Baselines3 callback that logs what the learning rule does, layer by layer."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from .diagnostics import cosine, dale_layers, hidden_error_alignment, weight_stats
from .network import FeedbackNetwork
from .rules import BP


class DaleDiagnosticsCallback(BaseCallback):
    """Logs, at the end of every rollout, to SB3's logger (and so TensorBoard), per layer:

    - ``dale/<layer>/ei_ratio`` and ``dale/<layer>/floor_W_pp`` ...: E/I weight ratio, fraction of
      each sub-matrix at the floor;
    - ``dale/<net>/routed_error_<l>``: mean ``|error|`` the rule handed to hidden layer ``l`` in the
      last minibatch of the last ``train()``;
    - every ``cosine_every`` rollouts (0: never, the default), on ``batch_size`` samples of the new
      rollout, not yet trained on: ``dale/<layer>/cosine_to_bp``, the cosine between the rule's
      weight update and the exact backprop gradient of PPO's loss, and
      ``dale/<net>_net.hidden.<l>/alignment_to_bp``, the cosine between the error the rule hands
      to hidden block ``l`` and backprop's ``dL/dh_l`` (1 under BP; comparable across rules).

    :param cosine_every: rollouts between the two cosines (default 0: never)
    :param batch_size: samples they are measured on (default 256)
    :param verbose: SB3's verbosity (default 0)
    :raises ValueError: a policy that is not one of the package's, or ``cosine_every`` without
        PPO, whose loss they differentiate
    """

    def __init__(self, cosine_every: int = 0, batch_size: int = 256, verbose: int = 0):
        super().__init__(verbose)
        self.cosine_every, self.batch_size = cosine_every, batch_size
        self.rollouts = 0

    def networks(self) -> dict[str, FeedbackNetwork]:
        extractor = self.model.policy.mlp_extractor
        return {name: getattr(extractor, f"{name}_net") for name in ("policy", "value")}

    def _init_callback(self) -> None:
        if not all(isinstance(net, FeedbackNetwork) for net in self.networks().values()):
            raise ValueError("DaleDiagnosticsCallback needs a policy from sb3_ed (EDPolicy, DFAPolicy, DaleBPPolicy, NPPolicy)")
        if self.cosine_every and not isinstance(self.model, PPO):
            raise ValueError("cosine_every needs PPO, whose loss it differentiates")
        for net in self.networks().values():
            net.rule.track_errors = True

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.rollouts += 1
        for layer, stats in weight_stats(self.model.policy.mlp_extractor).items():
            for key, value in stats.items():
                self.logger.record(f"dale/{layer}/{key}", value)
        for name, net in self.networks().items():
            for i, value in enumerate(net.rule.error_magnitudes):
                self.logger.record(f"dale/{name}/routed_error_{i}", value)
        if self.cosine_every and self.rollouts % self.cosine_every == 0:
            batch = next(self.model.rollout_buffer.get(self.batch_size))
            for layer, cosine in self.cosine_to_bp(batch).items():
                self.logger.record(f"dale/{layer}/cosine_to_bp", cosine)
            with self.frozen_rules():
                for name, net in self.networks().items():
                    for block, cosine in hidden_error_alignment(net, lambda: self.ppo_loss(batch)).items():
                        self.logger.record(f"dale/{name}_net.{block}/alignment_to_bp", cosine)
            self.model.policy.optimizer.zero_grad(set_to_none=True)

    @contextlib.contextmanager
    def frozen_rules(self):
        """The rules of both networks frozen: a probe is not a training step (np keeps its B_l)."""
        with contextlib.ExitStack() as stack:
            for net in self.networks().values():
                stack.enter_context(net.rule.frozen())
            yield

    def ppo_loss(self, batch) -> torch.Tensor:
        """PPO's loss on one minibatch, as stable_baselines3's PPO.train computes it."""
        model, policy = self.model, self.model.policy
        actions = batch.actions.long().flatten() if isinstance(model.action_space, spaces.Discrete) else batch.actions
        values, log_prob, entropy = policy.evaluate_actions(batch.observations, actions)
        advantages = batch.advantages
        if model.normalize_advantage and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        ratio = torch.exp(log_prob - batch.old_log_prob)
        clip = model.clip_range(model._current_progress_remaining)
        policy_loss = -torch.min(advantages * ratio, advantages * torch.clamp(ratio, 1 - clip, 1 + clip)).mean()
        values = values.flatten()
        if model.clip_range_vf is not None:
            clip_vf = model.clip_range_vf(model._current_progress_remaining)
            values = batch.old_values + torch.clamp(values - batch.old_values, -clip_vf, clip_vf)
        value_loss = F.mse_loss(batch.returns, values)
        entropy_loss = -torch.mean(-log_prob if entropy is None else entropy)
        return policy_loss + model.ent_coef * entropy_loss + model.vf_coef * value_loss

    def weight_gradients(self, batch) -> dict[str, torch.Tensor]:
        policy = self.model.policy
        policy.optimizer.zero_grad(set_to_none=True)
        with self.frozen_rules():
            self.ppo_loss(batch).backward()
        grads = {name: layer.weight.grad.flatten().clone() for name, layer in dale_layers(policy.mlp_extractor).items()}
        policy.optimizer.zero_grad(set_to_none=True)
        return grads

    def cosine_to_bp(self, batch) -> dict[str, float]:
        rule_grads = self.weight_gradients(batch)
        rules = {name: net.rule for name, net in self.networks().items()}
        try:
            for net in self.networks().values():
                net.rule = BP()
            bp_grads = self.weight_gradients(batch)
        finally:
            for name, net in self.networks().items():
                net.rule = rules[name]
        return {name: cosine(rule_grads[name], bp_grads[name]) for name in rule_grads}
