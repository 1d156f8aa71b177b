"""Craftax as an SB3 VecEnv, with resets from a pool of worlds generated in the background."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from .base import JaxVecEnv, jax, jnp, where_done

CRAFTAX_ENVS = ("Craftax-Symbolic-v1", "Craftax-Classic-Symbolic-v1")


class CraftaxVecEnv(JaxVecEnv):
    """``num_envs`` Craftax worlds stepped together by one jitted, vmapped step.

    Craftax's own auto-reset generates a new world for every env on every step (then keeps it only
    where the episode ended), which costs many times a step. Here a finished episode instead takes
    the next world from a pool of ``pool_size`` ready reset states, and each step regenerates
    ``refresh`` pool entries inside the same jitted function, so world generation costs a small,
    fixed fraction of a step. Finished envs report their achievements (``infos[i]["achievements"]``).
    ``max_timesteps`` overrides Craftax's episode limit (reached: a truncation).
    """

    def __init__(
        self,
        num_envs: int,
        env_name: str = "Craftax-Symbolic-v1",
        seed: int = 0,
        device=None,
        pool_size: int | None = None,
        refresh: int | None = None,
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
        self.pool_size = pool_size or max(16, num_envs // 4)
        self.refresh = refresh or max(1, num_envs // 128)
        observation_space = spaces.Box(-np.inf, np.inf, self.env.observation_space(self.params).shape, np.float32)
        action_space = spaces.Discrete(self.env.action_space(self.params).n)
        super().__init__(num_envs, observation_space, action_space, seed, device)

    def _generate(self, key, n):
        return jax.vmap(self.env.reset, in_axes=(0, None))(jax.random.split(key, n), self.params)

    def _reset(self, key):
        k_envs, k_pool = jax.random.split(key)
        obs, state = self._generate(k_envs, self.num_envs)
        pool = self._generate(k_pool, self.pool_size)
        return (state, pool, jnp.int32(0), jnp.int32(0)), obs

    def _step(self, carry, actions, key):
        state, (pool_obs, pool_state), take, fill = carry
        k_step, k_fill = jax.random.split(key)
        keys = jax.random.split(k_step, self.num_envs)
        obs, state, reward, done, info = jax.vmap(self.env.step, in_axes=(0, 0, 0, None))(keys, state, actions, self.params)
        truncated = done & (state.timestep >= self.params.max_timesteps)
        achievements = {k.split("/", 1)[1]: v for k, v in info.items() if k.startswith("Achievements/")}
        # finished envs take the next worlds of the pool, in order
        slot = (take + jnp.cumsum(done) - 1) % self.pool_size
        fresh_obs, fresh_state = jax.tree.map(lambda p: p[slot], (pool_obs, pool_state))
        next_obs, next_state = where_done(done, (fresh_obs, fresh_state), (obs, state))
        take = (take + done.sum()) % self.pool_size
        # and the pool regenerates `refresh` of its oldest worlds
        new_obs, new_state = self._generate(k_fill, self.refresh)
        rows = (fill + jnp.arange(self.refresh)) % self.pool_size
        pool = jax.tree.map(lambda p, n: p.at[rows].set(n), (pool_obs, pool_state), (new_obs, new_state))
        fill = (fill + self.refresh) % self.pool_size
        return (next_state, pool, take, fill), next_obs, reward, done & ~truncated, truncated, obs, achievements

    def _extra_infos(self, extras, index):
        return {"achievements": {name: float(value[index]) for name, value in extras.items()}}
