"""What the JAX simulators' VecEnvs share: a jitted step over all envs, SB3's VecEnv bookkeeping."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

try:
    import jax
    import jax.numpy as jnp
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError("the JAX environments need JAX, Craftax and Brax: pip install 'sb3-ed[jax]'") from err


class JaxVecEnv(VecEnv):
    """A VecEnv over ``num_envs`` copies of a JAX env, stepped by one jitted, vmapped function.

    Subclasses give ``_initial_states(key, n) -> (obs, states)``, ``n`` new episodes' first
    observations and states, and ``_env_step(states, actions, key) -> (obs, states, reward,
    terminated, truncated, extras)`` for all envs at once, without resets.

    **Every episode starts fresh.** A finished env takes the next unused start from a pool of
    ``pool_size`` starts made ahead, each from its own key, and each handed out once; when the pool
    holds fewer unused starts than envs finish in a step, the whole pool is made again first.
    Making starts is often far dearer than a step (a Craftax world), and done this way it costs one
    start per episode, in batches. The host, which reads the done flags of every step anyway,
    decides: a step in which no episode ends runs the env step alone, and one in which ``k`` end
    writes only those ``k`` envs' states (scatters into the donated states, 16 envs a call).

    This class adds the rest of SB3's contract: ``terminal_observation`` and
    ``TimeLimit.truncated`` in the infos of finished envs, their ``episode`` return and length
    (Monitor format, so SB3's logger shows ``ep_rew_mean`` without a VecMonitor), ``seed()``,
    action checks.

    :param pool_size: starts made ahead, >= ``num_envs`` (default ``num_envs``), so that one refill
        always covers a step in which every env finishes
    :raises ValueError: ``num_envs < 1`` or ``pool_size < num_envs``
    """

    def __init__(
        self,
        num_envs: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        seed: int,
        device=None,
        pool_size: int | None = None,
    ):
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        self.pool_size = num_envs if pool_size is None else pool_size
        if not isinstance(self.pool_size, (int, np.integer)) or self.pool_size < num_envs:
            raise ValueError(f"pool_size must be an integer >= num_envs ({num_envs}), got {pool_size!r}")
        self.render_mode = None  # SB3 asks every env for it (and warns where it is missing): these do not render
        super().__init__(num_envs, observation_space, action_space)
        self.device = jax.devices()[0] if device is None else jax.devices(device)[0] if isinstance(device, str) else device
        self._key = jax.random.PRNGKey(seed)
        # one compiled function each for all envs; jit caches the trace per instance (and per n)
        self._starts_jit = jax.jit(self._initial_states, static_argnums=1)
        # the states are donated: updated in place, not copied every step
        self._step_jit = jax.jit(self._step, donate_argnums=0)
        self._restart_jit = jax.jit(self._restart, donate_argnums=0)
        self._states = self._pool = self._key_steps = None
        self._head = self._unused = 0
        self._actions = None
        self._episode_return = np.zeros(num_envs, dtype=np.float64)
        self._episode_length = np.zeros(num_envs, dtype=np.int64)

    # --- for subclasses ---
    def _initial_states(self, key, n: int):
        raise NotImplementedError

    def _env_step(self, states, actions, key):
        raise NotImplementedError

    # --- the jitted functions ---
    def _step(self, states, key, actions):
        key, k_step = jax.random.split(key)
        obs, states, reward, terminated, truncated, extras = self._env_step(states, actions, k_step)
        return states, key, obs, reward, terminated, truncated, extras

    @staticmethod
    def _restart(states, obs, pool, envs, slots):
        # envs[k] takes pool start slots[k]; padding entries name env num_envs, which the scatter drops
        pool_obs, pool_states = jax.tree.map(lambda p: p[slots], pool)
        states = jax.tree.map(lambda s, start: s.at[envs].set(start, mode="drop"), states, pool_states)
        return states, obs.at[envs].set(pool_obs, mode="drop")

    @property
    def _restart_chunk(self) -> int:
        # envs restarted per call: one compiled shape, a small gather from the pool
        return min(self.num_envs, 16)

    def _start_finished_envs(self, obs, done: np.ndarray):
        """Hands the finished envs (``done``, on the host) the next unused starts, remaking the pool
        first where too few are left; returns the observations the envs now show."""
        finished = np.flatnonzero(done).astype(np.int32)
        if self._unused < finished.size:
            self._key_steps, k_pool = jax.random.split(self._key_steps)
            self._pool = self._starts_jit(k_pool, self.pool_size)
            self._head, self._unused = 0, self.pool_size
        # the k-th finished env (in env order) takes the unused start head + k
        slots = ((self._head + np.arange(finished.size)) % self.pool_size).astype(np.int32)
        self._head, self._unused = (self._head + finished.size) % self.pool_size, self._unused - finished.size
        chunk = self._restart_chunk
        for first in range(0, finished.size, chunk):
            envs = np.full(chunk, self.num_envs, dtype=np.int32)
            part = finished[first : first + chunk]
            envs[: part.size] = part
            self._states, obs = self._restart_jit(self._states, obs, self._pool, envs, np.resize(slots[first : first + chunk], chunk))
        return obs

    def _extra_infos(self, extras, index: int) -> dict[str, Any]:
        """What a finished env reports besides its return and length (e.g. achievements);
        ``extras`` is the step's last output, as numpy arrays."""
        return {}

    # --- SB3's VecEnv ---
    def _next_key(self):
        self._key, key = jax.random.split(self._key)
        return key

    def seed(self, seed: int | None = None):
        if seed is not None:
            self._key = jax.random.PRNGKey(seed)
        return [seed] * self.num_envs

    def reset(self):
        with jax.default_device(self.device):
            k_envs, k_pool, self._key_steps = jax.random.split(self._next_key(), 3)
            obs, self._states = self._starts_jit(k_envs, self.num_envs)
            self._pool = self._starts_jit(k_pool, self.pool_size)
            self._head, self._unused = 0, self.pool_size
            # compiled now, with every index dropped, so that no step later waits for it
            self._states, obs = self._restart_jit(self._states, obs, self._pool, np.full(self._restart_chunk, self.num_envs, np.int32), np.zeros(self._restart_chunk, np.int32))
        self._episode_return[:] = 0
        self._episode_length[:] = 0
        return np.array(obs)  # a writable copy: SB3 writes into observations

    def _check_actions(self, shape) -> None:
        expected = (self.num_envs, *self.action_space.shape)
        if tuple(shape) != expected:
            raise ValueError(f"{type(self).__name__}: actions must have shape {expected}, got {tuple(shape)}")

    @property
    def _discrete(self) -> bool:
        return isinstance(self.action_space, spaces.Discrete)

    def _jit_step(self, actions):
        if self._states is None:
            raise RuntimeError(f"{type(self).__name__}: call reset() before step()")
        with jax.default_device(self.device):
            self._states, self._key_steps, obs, reward, terminated, truncated, extras = self._step_jit(self._states, self._key_steps, actions)
            # the done flags cross to the host in any case (SB3 wants them there); deciding the
            # restarts there keeps any selection or branch over the envs' states out of most steps
            next_obs = self._start_finished_envs(obs, np.asarray(terminated | truncated))
        return next_obs, reward, terminated, truncated, obs, extras

    def step_async(self, actions) -> None:
        actions = np.asarray(actions)
        self._check_actions(actions.shape)
        # jax computes in 32 bits unless told otherwise
        self._actions = jnp.asarray(actions, dtype=jnp.int32 if self._discrete else jnp.float32)

    def step_torch(self, actions):
        """One step for a torch training loop that keeps its data on the device.

        ``actions`` is a torch tensor; ``(obs, reward, terminated, truncated)`` come back as torch
        tensors sharing the JAX buffers through DLPack: on a GPU only the done flags cross to the
        host (``num_envs`` booleans per step, to decide the restarts). Finished envs are reset as
        in ``step()``, but no infos and no episode statistics are kept. SB3's own algorithms use
        ``step()``: their rollout buffers are numpy.
        """
        self._check_actions(actions.shape)
        actions = actions.detach().to(torch.int32 if self._discrete else torch.float32).contiguous()
        obs, reward, terminated, truncated, _, _ = self._jit_step(jnp.from_dlpack(actions))
        return tuple(torch.from_dlpack(x) for x in (obs, reward, terminated, truncated))

    def step_wait(self):
        obs, reward, terminated, truncated, terminal_obs, extras = self._jit_step(self._actions)
        obs, reward = np.array(obs), np.array(reward, dtype=np.float32)  # writable, as SB3 needs
        terminated, truncated = np.asarray(terminated, dtype=bool), np.asarray(truncated, dtype=bool)
        dones = terminated | truncated
        self._episode_return += reward
        self._episode_length += 1
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        finished = np.flatnonzero(dones)
        if finished.size:
            # one transfer each, not one per finished env and field
            terminal_obs, extras = np.asarray(terminal_obs), jax.device_get(extras)
            for i in finished:
                infos[i] = {
                    "terminal_observation": terminal_obs[i],
                    "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                    "episode": {"r": float(self._episode_return[i]), "l": int(self._episode_length[i])},
                    **self._extra_infos(extras, i),
                }
            self._episode_return[finished] = 0
            self._episode_length[finished] = 0
        return obs, reward, dones, infos

    def close(self) -> None:
        self._states = self._pool = None

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result] * len(self._get_indices(indices))

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * len(self._get_indices(indices))
