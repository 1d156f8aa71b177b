"""Brax MuJoCo-style tasks as an SB3 VecEnv."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from .base import JaxVecEnv, jax, jnp, where_done

BRAX_ENVS = ("ant", "halfcheetah", "humanoid")


class BraxVecEnv(JaxVecEnv):
    """``num_envs`` copies of a Brax task (``ant``, ``halfcheetah``, ``humanoid``) stepped together.

    Episodes last ``episode_length`` steps unless they terminate earlier (Brax's EpisodeWrapper:
    time-outs are reported as truncation). A finished env restarts from its own first state, as
    Brax's AutoResetWrapper does, which costs nothing; here the terminal observation is kept for
    SB3 first. ``backend``: any of Brax's (``"generalized"``, ``"positional"``, ``"spring"``,
    ``"mjx"``).
    """

    def __init__(self, env_name: str, num_envs: int, backend: str = "generalized", episode_length: int = 1000, seed: int = 0, device=None):
        if env_name not in BRAX_ENVS:
            raise ValueError(f"unknown Brax env {env_name!r}; choose from {', '.join(BRAX_ENVS)}")
        from brax import envs
        from brax.envs.wrappers.training import EpisodeWrapper

        self.env_name, self.backend = env_name, backend
        self.env = EpisodeWrapper(envs.get_environment(env_name, backend=backend), episode_length, 1)
        observation_space = spaces.Box(-np.inf, np.inf, (self.env.observation_size,), np.float32)
        action_space = spaces.Box(-1.0, 1.0, (self.env.action_size,), np.float32)
        super().__init__(num_envs, observation_space, action_space, seed, device)

    def _reset(self, key):
        state = jax.vmap(self.env.reset)(jax.random.split(key, self.num_envs))
        return (state, state), state.obs

    def _step(self, carry, actions, key):
        state, first = carry
        state = jax.vmap(self.env.step)(state, actions)
        done = state.done > 0
        truncated = done & (state.info["truncation"] > 0)
        restarted = state.replace(
            pipeline_state=where_done(done, first.pipeline_state, state.pipeline_state),
            obs=jnp.where(done[:, None], first.obs, state.obs),
            done=jnp.zeros_like(state.done),
            info={**state.info, "steps": jnp.where(done, 0, state.info["steps"])},
        )
        return (restarted, first), restarted.obs, state.reward, done & ~truncated, truncated, state.obs, {}
