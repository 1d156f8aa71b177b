"""RL-Zoo training with the ED algorithms: ``python -m sb3_ed.train --algo ed_ppo --env HalfCheetah-v5``.

This is rl_zoo3's own trainer (every rl_zoo3 flag works: ``-n``, ``--seed``, ``-tb``,
``--eval-freq``, ``-optimize --n-trials --sampler tpe``, ``--progress`` ...) with ``ed_ppo``,
``dfa_ppo`` and ``dale_bp_ppo`` added to its algorithm table and to its Optuna samplers.
Hyperparameters come from ``zoo_configs/<algo>.yml`` unless ``--conf-file`` names another file;
``--algo ppo`` and ``--algo ars`` read ``zoo_configs/`` too, for comparisons on the same settings.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml
import rl_zoo3.train
from rl_zoo3 import hyperparams_opt
from rl_zoo3.exp_manager import ExperimentManager
from rl_zoo3.utils import ALGOS
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from . import policies  # noqa: F401  (registers the policy names with PPO)
from .allocator import retain_freed_memory
from .envs import JAX_ENV_IDS, make_jax_vec_env

ZOO_CONFIGS = Path(__file__).resolve().parent.parent / "zoo_configs"
ED_ALGOS = {"ed_ppo": PPO, "dfa_ppo": PPO, "dale_bp_ppo": PPO}
PPO_KEYS = ("n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "learning_rate", "clip_range", "ent_coef", "vf_coef", "max_grad_norm")


def zoo_ppo_settings(algo: str, env_id: str) -> tuple[int, dict[str, Any]]:
    """``(n_envs, PPO keyword arguments)`` of one entry of ``zoo_configs/<algo>.yml``, for scripts
    that build ``PPO`` themselves. Schedules such as ``lin_3e-4`` are read by rl_zoo3's own parser,
    so such a script trains as the zoo does."""
    settings = yaml.safe_load((ZOO_CONFIGS / f"{algo}.yml").read_text())[env_id]
    return settings["n_envs"], ExperimentManager._preprocess_schedules({k: settings[k] for k in PPO_KEYS})


def sample_feedback_ppo_params(trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """rl_zoo3's PPO search space (learning rate included) plus the Dale networks' own: activation
    (relu or sigmoid) and sigmoid width, E/I init scales, output-layer init scale, floor."""
    hyperparams = hyperparams_opt.sample_ppo_params(trial, n_actions, n_envs, additional_args)
    hyperparams["policy_kwargs"].update(
        activation_fn=trial.suggest_categorical("dale_activation", ["relu", "sigmoid"]),
        widths=trial.suggest_float("width", 0.25, 4.0, log=True),
        exc_scale=trial.suggest_float("exc_scale", 0.1, 3.0, log=True),
        inh_scale=trial.suggest_float("inh_scale", 0.1, 3.0, log=True),
        output_scale=trial.suggest_float("output_scale", 1e-3, 1.0, log=True),
        floor=trial.suggest_float("floor", 1e-8, 1e-3, log=True),
    )
    return hyperparams


class JaxAwareExperimentManager(ExperimentManager):
    """rl_zoo3's ExperimentManager; for the ids of JAX simulators it builds their VecEnv (all envs in
    one jitted step) instead of ``n_envs`` gymnasium envs, then wraps it as rl_zoo3 would."""

    def create_envs(self, n_envs: int, eval_env: bool = False, no_log: bool = False) -> VecEnv:
        if self.env_name.gym_id not in JAX_ENV_IDS:
            return super().create_envs(n_envs, eval_env, no_log)
        env_kwargs = self.eval_env_kwargs if eval_env else self.env_kwargs
        env = make_jax_vec_env(self.env_name.gym_id, n_envs, seed=self.seed or 0, **(env_kwargs or {}))
        env = VecMonitor(env, None if eval_env or no_log else self.save_path)
        if self.vec_env_wrapper is not None:
            env = self.vec_env_wrapper(env)
        return self._maybe_normalize(env, eval_env)


def register() -> None:
    """Adds the ED algorithms to rl_zoo3's tables and its trainer (idempotent)."""
    rl_zoo3.train.ExperimentManager = JaxAwareExperimentManager
    ALGOS.update(ED_ALGOS)
    samplers = {"ed_ppo": sample_feedback_ppo_params, "dale_bp_ppo": sample_feedback_ppo_params}
    for algo in ED_ALGOS:
        # DFA's single-stream networks have none of the Dale parameters: PPO's own space
        hyperparams_opt.HYPERPARAMS_SAMPLER[algo] = samplers.get(algo, hyperparams_opt.sample_ppo_params)
        hyperparams_opt.HYPERPARAMS_CONVERTER[algo] = hyperparams_opt.HYPERPARAMS_CONVERTER["ppo"]


def with_zoo_config(argv: list[str]) -> list[str]:
    """``argv`` plus ``--conf-file zoo_configs/<algo>.yml`` when it names none and that file exists."""
    if "--conf-file" in argv or "-conf" in argv:
        return argv
    algo = argv[argv.index("--algo") + 1] if "--algo" in argv[:-1] else "ppo"
    config = ZOO_CONFIGS / f"{algo}.yml"
    return [*argv, "--conf-file", str(config)] if config.is_file() else argv


def check_env(argv: list[str]) -> None:
    """Exits with one line listing the valid ids if ``--env`` names no registered environment."""
    if "--env" not in argv[:-1]:
        return
    env_id = argv[argv.index("--env") + 1]
    for module in argv[argv.index("--gym-packages") + 1 :] if "--gym-packages" in argv else []:
        if module.startswith("-"):
            break
        importlib.import_module(module)
    if env_id in gym.envs.registry:
        return
    algo = argv[argv.index("--algo") + 1] if "--algo" in argv[:-1] else "ppo"
    config = ZOO_CONFIGS / f"{algo}.yml"
    tuned = ", ".join(k for k in yaml.safe_load(config.read_text()) if k != "default") if config.is_file() else "none"
    near = difflib.get_close_matches(env_id, gym.envs.registry, n=3)
    sys.exit(
        f"error: unknown env {env_id!r}; zoo_configs/{algo}.yml has settings for: {tuned}; "
        f"other registered gymnasium ids use its default entry"
        + (f" (closest: {', '.join(near)})" if near else "")
    )


def main(argv: list[str] | None = None) -> None:
    retain_freed_memory()
    register()
    argv = list(sys.argv[1:] if argv is None else argv)
    check_env(argv)
    sys.argv = [sys.argv[0], *with_zoo_config(argv)]
    rl_zoo3.train.train()


if __name__ == "__main__":
    main()
