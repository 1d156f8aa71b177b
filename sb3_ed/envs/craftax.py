"""Craftax as an SB3 VecEnv: every episode in a world of its own, generated ahead in batches."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from .base import JaxVecEnv, jax

CRAFTAX_ENVS = ("Craftax-Symbolic-v1", "Craftax-Classic-Symbolic-v1")


class CraftaxVecEnv(JaxVecEnv):
    """``num_envs`` Craftax worlds stepped together by one jitted, vmapped step.

    Craftax's own auto-reset generates a new world for every env on every step (then keeps it only
    where the episode ended), which costs many times a step. Here every finished episode starts in
    a world of its own, generated from its own key in batches ahead of use (see
    :class:`~sb3_ed.envs.base.JaxVecEnv`): one world per episode. Finished envs report their
    achievements (``infos[i]["achievements"]``, 0 or 1 each).

    :param num_envs: worlds stepped together
    :param env_name: ``"Craftax-Symbolic-v1"`` (default) or ``"Craftax-Classic-Symbolic-v1"``
    :param seed: seed of the JAX key from which every world and step draws (default 0)
    :param device: JAX device (or its platform name); default JAX's first device
    :param pool_size: worlds generated ahead, >= ``num_envs`` (default ``num_envs``)
    :param max_timesteps: overrides Craftax's episode limit (reaching it is a truncation)
    :raises ValueError: an unknown ``env_name``, ``num_envs < 1`` or ``pool_size < num_envs``
    """

    def __init__(
        self,
        num_envs: int,
        env_name: str = "Craftax-Symbolic-v1",
        seed: int = 0,
        device=None,
        pool_size: int | None = None,
        max_timesteps: int | None = None,
    ):
        if env_name not in CRAFTAX_ENVS:
            raise ValueError(f"unknown Craftax env {env_name!r}; choose from {', '.join(CRAFTAX_ENVS)}")
        from craftax.craftax_env import make_craftax_env_from_name

        self.env_name = env_name
        self.env = make_craftax_env_from_name(env_name, auto_reset=False)
        self.params = self.env.default_params
        if max_timesteps is not None:
            self.params = self.params.replace(max_timesteps=max_timesteps)
        observation_space = spaces.Box(-np.inf, np.inf, self.env.observation_space(self.params).shape, np.float32)
        action_space = spaces.Discrete(self.env.action_space(self.params).n)
        super().__init__(num_envs, observation_space, action_space, seed, device, pool_size)

    def _initial_states(self, key, n):
        return jax.vmap(self.env.reset, in_axes=(0, None))(jax.random.split(key, n), self.params)

    def _env_step(self, states, actions, key):
        keys = jax.random.split(key, self.num_envs)
        obs, states, reward, done, info = jax.vmap(self.env.step, in_axes=(0, 0, 0, None))(keys, states, actions, self.params)
        truncated = done & (states.timestep >= self.params.max_timesteps)
        achievements = {k.split("/", 1)[1]: v for k, v in info.items() if k.startswith("Achievements/")}
        return obs, states, reward, done & ~truncated, truncated, achievements

    def _extra_infos(self, extras, index):
        return {"achievements": {name: float(value[index]) for name, value in extras.items()}}
