"""JAX simulators as Stable-Baselines3 VecEnvs (needs the extra: ``pip install 'sb3-ed[jax]'``).

``CraftaxVecEnv(num_envs, env_name="Craftax-Symbolic-v1")`` and ``BraxVecEnv(env_name, num_envs)``
are imported on first use, so ``import sb3_ed`` never needs JAX.
"""

from __future__ import annotations

import gymnasium as gym

_EXPORTS = {"CraftaxVecEnv": "craftax", "BraxVecEnv": "brax", "JaxVecEnv": "base"}

# Ids for the command line and zoo_configs: env id -> (VecEnv class name, its env name)
JAX_ENV_IDS = {
    "Craftax-Symbolic-v1": ("CraftaxVecEnv", "Craftax-Symbolic-v1"),
    "Craftax-Classic-Symbolic-v1": ("CraftaxVecEnv", "Craftax-Classic-Symbolic-v1"),
    "Brax-Ant-v0": ("BraxVecEnv", "ant"),
    "Brax-HalfCheetah-v0": ("BraxVecEnv", "halfcheetah"),
    "Brax-Humanoid-v0": ("BraxVecEnv", "humanoid"),
}


def make_jax_vec_env(env_id: str, num_envs: int, seed: int = 0, **kwargs):
    """The VecEnv behind one of ``JAX_ENV_IDS``."""
    class_name, name = JAX_ENV_IDS[env_id]
    if class_name == "CraftaxVecEnv":
        return __getattr__(class_name)(num_envs, env_name=name, seed=seed, **kwargs)
    return __getattr__(class_name)(name, num_envs, seed=seed, **kwargs)


def _vectorised_only(**_kwargs):
    raise TypeError("this id names a vectorised JAX env: use make_jax_vec_env(id, num_envs) or python -m sb3_ed.train")


# Registered so that rl_zoo3 (and gymnasium's registry checks) know the ids; gym.make cannot build them.
for _env_id in JAX_ENV_IDS:
    if _env_id not in gym.registry:
        gym.register(_env_id, entry_point=_vectorised_only)


def __getattr__(name):
    if name in _EXPORTS:
        from importlib import import_module

        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'sb3_ed.envs' has no attribute {name!r}")


__all__ = [*_EXPORTS, "JAX_ENV_IDS", "make_jax_vec_env"]
