"""Brax MuJoCo-style tasks as an SB3 VecEnv."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from .base import JaxVecEnv, jax

BRAX_ENVS = ("ant", "halfcheetah", "humanoid")


class BraxVecEnv(JaxVecEnv):
    """``num_envs`` copies of a Brax task (``ant``, ``halfcheetah``, ``humanoid``) stepped together.

    Episodes last ``episode_length`` steps unless they terminate earlier (Brax's EpisodeWrapper:
    time-outs are reported as truncation). Every episode starts from its own random initial state
    (Brax's ``reset`` with the episode's own key), made ahead in batches (see
    :class:`~sb3_ed.envs.base.JaxVecEnv`); Brax's AutoResetWrapper would restart each env from its
    first state, so that deterministic evaluation episodes of one env would all be the same.

    :param env_name: ``"ant"``, ``"halfcheetah"`` or ``"humanoid"``
    :param num_envs: copies stepped together
    :param backend: any of Brax's (``"generalized"``, the default, ``"positional"``, ``"spring"``,
        ``"mjx"``)
    :param episode_length: steps after which an episode is truncated (default 1000)
    :param seed: seed of the JAX key (default 0)
    :param device: JAX device (or its platform name); default JAX's first device
    :param pool_size: initial states made ahead, >= ``num_envs`` (default ``num_envs``)
    :raises ValueError: an unknown ``env_name``, ``num_envs < 1`` or ``pool_size < num_envs``
    """

    def __init__(
        self,
        env_name: str,
        num_envs: int,
        backend: str = "generalized",
        episode_length: int = 1000,
        seed: int = 0,
        device=None,
        pool_size: int | None = None,
    ):
        if env_name not in BRAX_ENVS:
            raise ValueError(f"unknown Brax env {env_name!r}; choose from {', '.join(BRAX_ENVS)}")
        from brax import envs
        from brax.envs.wrappers.training import EpisodeWrapper

        self.env_name, self.backend = env_name, backend
        self.env = EpisodeWrapper(envs.get_environment(env_name, backend=backend), episode_length, 1)
        observation_space = spaces.Box(-np.inf, np.inf, (self.env.observation_size,), np.float32)
        action_space = spaces.Box(-1.0, 1.0, (self.env.action_size,), np.float32)
        super().__init__(num_envs, observation_space, action_space, seed, device, pool_size)

    def _initial_states(self, key, n):
        states = jax.vmap(self.env.reset)(jax.random.split(key, n))
        return states.obs, states

    def _env_step(self, states, actions, key):
        states = jax.vmap(self.env.step)(states, actions)
        done = states.done > 0
        truncated = done & (states.info["truncation"] > 0)
        return states.obs, states, states.reward, done & ~truncated, truncated, {}
