"""rl_zoo3 with the package's algorithms: the glue behind ``python -m sb3_ed.train`` and its siblings.

rl_zoo3's own tools do the work (its trainer, Optuna search, ``enjoy``, ``record_video``); this
module adds the algorithms to its tables (:func:`register`), gives each algorithm its zoo settings
from the package's ``zoo_configs/`` (:func:`zoo_config`), builds the JAX simulators' VecEnvs where
``gym.make`` cannot, and checks the parsed arguments before a tool runs (:func:`run_tool`).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import importlib.resources
import shutil
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
import yaml
from rl_zoo3 import hyperparams_opt
from rl_zoo3 import utils as zoo_utils
from rl_zoo3.exp_manager import ExperimentManager
from rl_zoo3.utils import ALGOS
from stable_baselines3 import PPO
from stable_baselines3.common.save_util import json_to_data
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from . import policies  # also registers the policy names with PPO
from .checks import SEED_RANGE, check_number, non_negative_finite, positive_finite
from .cli import output_folder
from .envs import JAX_ENV_IDS, make_jax_vec_env

# algo id -> SB3 class; each is PPO with the policy its zoo config names
ED_ALGOS = {"ed_ppo": PPO, "ed_ppo_nondale": PPO, "dfa_ppo": PPO, "dale_bp_ppo": PPO, "np_ppo": PPO}
PPO_KEYS = ("n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "learning_rate", "clip_range", "ent_coef", "vf_coef", "max_grad_norm")
# Optuna parameter of the Dale networks' search space -> the policy keyword it sets
DALE_TRIAL_PARAMS = {
    "dale_activation": "activation_fn",
    "width": "widths",
    "exc_scale": "exc_scale",
    "inh_scale": "inh_scale",
    "output_scale": "output_scale",
    "floor": "floor",
}


def zoo_config(algo: str) -> Path | None:
    """The package's RL Zoo settings file of ``algo`` (``sb3_ed/zoo_configs/<algo>.yml``, shipped as
    package data), or None where it has none."""
    path = Path(str(importlib.resources.files(__package__) / "zoo_configs" / f"{algo}.yml"))
    return path if path.is_file() else None


def zoo_entry(algo: str, env_id: str) -> dict[str, Any]:
    """The settings the package's zoo config of ``algo`` gives ``env_id``: its entry, or the
    ``default`` one (as rl_zoo3 reads the package's files), before rl_zoo3's preprocessing.

    :raises KeyError: ``algo`` has no zoo config
    """
    path = zoo_config(algo)
    if path is None:
        raise KeyError(f"no zoo config for algo {algo!r}")
    entries = yaml.safe_load(path.read_text())
    return entries.get(env_id, entries["default"])


def zoo_ppo_settings(algo: str, env_id: str) -> tuple[int, dict[str, Any]]:
    """``(n_envs, PPO keyword arguments)`` of one entry of the package's zoo config of ``algo``, for
    scripts that build ``PPO`` themselves. Schedules such as ``lin_3e-4`` are read by rl_zoo3's own
    parser, so such a script trains as the zoo does.

    :raises KeyError: ``algo`` has no zoo config, or it has no entry for ``env_id``
    """
    path = zoo_config(algo)
    if path is None:
        raise KeyError(f"no zoo config for algo {algo!r}")
    settings = yaml.safe_load(path.read_text())[env_id]
    return settings["n_envs"], ExperimentManager._preprocess_schedules({k: settings[k] for k in PPO_KEYS if k in settings})


def sample_feedback_ppo_params(trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """rl_zoo3's PPO search space (learning rate included) plus the Dale networks' own: activation
    (relu or sigmoid), the sigmoid's width (sampled for sigmoid trials only: a ReLU has none), E/I
    init scales, output-layer init scale, floor."""
    hyperparams = hyperparams_opt.sample_ppo_params(trial, n_actions, n_envs, additional_args)
    activation = trial.suggest_categorical("dale_activation", ["relu", "sigmoid"])
    sampled = {
        "dale_activation": activation,
        **({"width": trial.suggest_float("width", 0.25, 4.0, log=True)} if activation == "sigmoid" else {}),
        "exc_scale": trial.suggest_float("exc_scale", 0.1, 3.0, log=True),
        "inh_scale": trial.suggest_float("inh_scale", 0.1, 3.0, log=True),
        "output_scale": trial.suggest_float("output_scale", 1e-3, 1.0, log=True),
        "floor": trial.suggest_float("floor", 1e-8, 1e-3, log=True),
    }
    hyperparams["policy_kwargs"].update({DALE_TRIAL_PARAMS[k]: v for k, v in sampled.items()})
    return hyperparams


def convert_feedback_ppo_params(params: dict[str, Any]) -> dict[str, Any]:
    """A stored trial's parameters (``--trial-id``) as hyperparameters: rl_zoo3's PPO conversion,
    with the Dale networks' parameters moved into ``policy_kwargs``, as the sampler sets them."""
    params = dict(params)
    dale = {DALE_TRIAL_PARAMS[k]: params.pop(k) for k in list(params) if k in DALE_TRIAL_PARAMS}
    hyperparams = hyperparams_opt.convert_onpolicy_params(params)
    hyperparams["policy_kwargs"].update(dale)
    return hyperparams


# torch's refusal of an optimizer step whose size does not fit the parameters' dtype (Adam's first
# step is 10x the learning rate): the step, not the input, names the problem
_STEP_OVERFLOW = "cannot be converted to type float without overflow"
# torch.distributions' refusal of non-finite or out-of-range parameters (a scale of inf)
_INVALID_DISTRIBUTION = "but found invalid values"


def _unit_interval(value: float) -> bool:
    return 0 <= value <= 1


def _above_zero(value: float) -> bool:  # inf allowed: no clipping
    return value > 0


# hyperparameter -> (range test, what it must be, integer); SB3 takes values outside these without a
# word (gamma 2, clip_range -1, max_grad_norm 0 train to nonsense) or fails deep inside (n_epochs 0)
_COUNT = (positive_finite, "an integer >= 1", True)
_FRACTION = (_unit_interval, "from 0 to 1", False)
_POSITIVE = (positive_finite, "finite and > 0", False)
_POSITIVE_OR_NONE = (positive_finite, "finite and > 0, or None", False)
_NON_NEGATIVE = (non_negative_finite, "finite and >= 0", False)
HYPERPARAM_RANGES: dict[str, tuple[Callable[[float], bool], str, bool]] = {
    **dict.fromkeys(["n_envs", "n_steps", "batch_size", "n_epochs"], _COUNT),
    **dict.fromkeys(["gamma", "gae_lambda"], _FRACTION),
    **dict.fromkeys(["learning_rate", "clip_range"], _POSITIVE),
    **dict.fromkeys(["clip_range_vf", "target_kl"], _POSITIVE_OR_NONE),
    **dict.fromkeys(["ent_coef", "vf_coef"], _NON_NEGATIVE),
    "max_grad_norm": (_above_zero, "> 0", False),
}


def check_hyperparams(hyperparams: dict[str, Any]) -> None:
    """Refuses a hyperparameter outside the range of :data:`HYPERPARAM_RANGES`. A schedule (a
    callable of the remaining progress) is checked at its start value.

    :param hyperparams: rl_zoo3's preprocessed hyperparameters (schedules already callables)
    :raises ValueError: one line naming the hyperparameter, its range and the value
    """
    for key, (ok, expected, integer) in HYPERPARAM_RANGES.items():
        value = hyperparams.get(key)
        if value is None or (key == "ent_coef" and isinstance(value, str) and value.startswith("auto")):
            continue  # None: the option is off; "auto...": SAC's learned entropy coefficient
        name = key
        if callable(value):
            name, value = f"{key} (a schedule, at its start)", value(1.0)
        check_number(name, value, expected, ok, integer)


def _diverged(model) -> bool:
    """Whether the policy's parameters, or the value loss of its last rollout's observations, hold
    NaN or inf."""
    policy = model.policy
    if not all(p.isfinite().all() for p in policy.parameters()):
        return True
    buffer = getattr(model, "rollout_buffer", None)
    if buffer is None or isinstance(buffer.observations, dict) or not hasattr(policy, "predict_values"):
        return False
    # all of it: after training, SB3 keeps the buffer flattened to (steps x envs, ...)
    obs = buffer.to_torch(buffer.observations.reshape(-1, *buffer.obs_shape))
    with torch.no_grad():
        values = policy.predict_values(obs)
    # squared, as in the value loss: weights of 1e30 can leave values finite but their loss inf
    return not (values * values).isfinite().all()


# rl_zoo3's schedule strings: "lin_<start value>" (it reads any "<word>_<value>" as linear)
_SCHEDULE_KEYS = ("learning_rate", "clip_range", "clip_range_vf", "delta_std")


def check_zoo_entries(hyperparams: dict[str, Any], algo: str, budget_given: bool) -> None:
    """Refuses the entries of a zoo config (after ``--hyperparams``) that rl_zoo3 reads without a
    check: a schedule string other than ``lin_<value>`` (read as linear whatever its word),
    ``n_timesteps`` missing or not > 0 where ``-n`` does not set the budget (0 trained nothing and
    saved the model), ``frame_stack`` below 1, ``normalize`` other than a bool, a dict or a
    ``"dict(...)"`` string (2 counted as on; a bare word failed in ``eval``), and, for the
    package's algorithms, a policy other than the one the algo trains (``policy: MlpPolicy`` under
    ``ed_ppo`` trained plain PPO, saved as ed_ppo).

    :param hyperparams: the entry of one env, before rl_zoo3's preprocessing
    :param algo: the ``--algo`` id
    :param budget_given: ``-n`` was given (it overrides ``n_timesteps``)
    :raises ValueError: one line naming the entry, what it must be and the value
    """
    for key in _SCHEDULE_KEYS:
        value = hyperparams.get(key)
        if isinstance(value, str) and not value.startswith("lin_"):
            raise ValueError(f"{key} must be a number or a linear schedule 'lin_<start value>', got {value!r}")
    if not budget_given:
        if "n_timesteps" not in hyperparams:
            raise ValueError("the settings have no n_timesteps: add it or pass -n")
        check_number("n_timesteps", hyperparams["n_timesteps"], "> 0", lambda v: v >= 1)
    if "frame_stack" in hyperparams:
        check_number("frame_stack", hyperparams["frame_stack"], "an integer >= 1", lambda v: v >= 1, integer=True)
    normalize = hyperparams.get("normalize")
    if isinstance(normalize, str):
        try:
            normalize = eval(normalize)  # as rl_zoo3 reads it
        except Exception as err:
            raise ValueError(f"normalize must be True, False or a 'dict(...)' of VecNormalize's options, got {hyperparams['normalize']!r} ({type(err).__name__}: {err})") from None
    if normalize is not None and not isinstance(normalize, (bool, dict)):
        raise ValueError(f"normalize must be True, False or a 'dict(...)' of VecNormalize's options, got {hyperparams['normalize']!r}")
    kwargs = hyperparams.get("policy_kwargs")
    if kwargs is not None and not isinstance(kwargs, (dict, str)):
        raise ValueError(f"policy_kwargs must be a dict, or a 'dict(...)' string, got {kwargs!r}")
    expected = _expected_policy(algo) if algo in ED_ALGOS else None
    if expected is not None:
        found = (hyperparams.get("policy"), _dale(hyperparams.get("policy_kwargs")))
        if found != expected:
            raise ValueError(
                f"policy {found[0]}{'' if found[1] else ' (dale=False)'}, but --algo {algo} trains {expected[0]}"
                f"{'' if expected[1] else ' (dale=False)'}: use the algo of that policy (ppo for SB3's own)"
            )


class ZooExperimentManager(ExperimentManager):
    """rl_zoo3's ExperimentManager. For the ids of JAX simulators it builds their VecEnv (all envs in
    one jitted step) instead of ``n_envs`` gymnasium envs, then wraps it as rl_zoo3 would; it
    applies ``--trial-id 0`` (rl_zoo3 skips a trial id of 0, silently training on the defaults); and
    a hyperparameter out of range (:func:`check_hyperparams`), an option the model or env refuses,
    or a run that diverges, stops with one line instead of a traceback."""

    def setup_experiment(self):
        existed = Path(self.save_path).exists()
        try:
            result = super().setup_experiment()
        except (ValueError, TypeError, AssertionError) as err:  # what the policies, rules, envs and SB3's own checks raise for a bad option
            if not existed:  # a run folder without a model would be the newest run enjoy picks
                shutil.rmtree(self.save_path, ignore_errors=True)
            sys.exit(f"error: {self.algo} on {self.env_name.gym_id}: {err or type(err).__name__}")
        if result is not None and self.continue_training:
            # -i loads whatever the zip holds: a DFA model would go on training, and be saved, as
            # ed_ppo. What this run's config (the zoo's or --conf-file's) trains:
            model, config = result
            name, dale = config["policy"], _dale(config.get("policy_kwargs"))
            policy = model.policy
            found_dale = getattr(policy, "network_kwargs", {}).get("dale", True)
            if type(policy) is not ALGOS[self.algo].policy_aliases.get(name, name) or found_dale != dale:
                sys.exit(
                    f"error: -i {self.trained_agent}: its policy is {type(policy).__name__}{'' if found_dale else ' (dale=False)'}, "
                    f"but --algo {self.algo} trains {name}{'' if dale else ' (dale=False)'}; pass the algo it was trained with"
                )
        return result

    def learn(self, model) -> None:
        overflow = False
        try:
            super().learn(model)
        except (ValueError, RuntimeError, FloatingPointError) as err:  # FloatingPointError: the rules' refusal of a non-finite error
            overflow = _STEP_OVERFLOW in str(err)
            if not (overflow or isinstance(err, FloatingPointError) or _INVALID_DISTRIBUTION in str(err) or _diverged(model)):
                raise
        else:
            if not _diverged(model):  # a diverged model is not saved as a trained one
                return
        why = "a step size beyond float32's range" if overflow else "the policy's parameters, outputs or value loss hold NaN or inf"
        sys.exit(f"error: {self.algo} on {self.env_name.gym_id}: training diverged ({why}); lower learning_rate (now {model.lr_schedule(1.0):g} at the start)")

    def _preprocess_hyperparams(self, hyperparams: dict[str, Any]):
        check_zoo_entries(hyperparams, self.algo, self.n_timesteps > 0)
        try:
            processed = super()._preprocess_hyperparams(hyperparams)
        except (ImportError, AttributeError) as err:  # rl_zoo3 imports these names as they come
            raise ValueError(f"{err} (policy, env_wrapper, vec_env_wrapper and callback name a class as 'module.Class')") from err
        check_hyperparams({**processed[0], "n_envs": self.n_envs})  # rl_zoo3 moved n_envs out of the dict
        return processed

    def create_envs(self, n_envs: int, eval_env: bool = False, no_log: bool = False) -> VecEnv:
        if self.env_name.gym_id not in JAX_ENV_IDS:
            return super().create_envs(n_envs, eval_env, no_log)
        env_kwargs = self.eval_env_kwargs if eval_env else self.env_kwargs
        env = make_jax_vec_env(self.env_name.gym_id, n_envs, seed=self.seed or 0, **(env_kwargs or {}))
        env = VecMonitor(env, None if eval_env or no_log else self.save_path)
        if self.vec_env_wrapper is not None:
            env = self.vec_env_wrapper(env)
        return self._maybe_normalize(env, eval_env)

    def read_hyperparameters(self) -> tuple[dict[str, Any], dict[str, Any]]:
        if self.trial_id != 0:
            return super().read_hyperparameters()
        # rl_zoo3 applies a trial only where `self.trial_id` is truthy: stand in for trial 0
        self.trial_id = True
        try:
            return super().read_hyperparameters()
        finally:
            self.trial_id = 0

    def load_trial(self, storage: str, study_name: str, trial_id: int | None = None, convert: bool = True) -> dict[str, Any]:
        trial_id = 0 if trial_id is True else trial_id
        try:
            return super().load_trial(storage, study_name, trial_id, convert)
        except IndexError:
            sys.exit(f"error: --trial-id {trial_id}: study {study_name!r} in {storage} has fewer trials")
        except KeyError as err:
            sys.exit(f"error: --trial-id {trial_id}: {err} (is study {study_name!r} in {storage}?)")


def register() -> None:
    """Adds the package's algorithms to rl_zoo3's tables, samplers and converters, and its
    experiment manager to the trainer (idempotent)."""
    import rl_zoo3
    import rl_zoo3.train

    rl_zoo3.train.ExperimentManager = ZooExperimentManager
    # enjoy binds the package's name at import, record_video the utils module's when run
    for module in (rl_zoo3, zoo_utils, sys.modules.get("rl_zoo3.enjoy")):
        if module is not None:
            module.create_test_env = make_test_env
    ALGOS.update(ED_ALGOS)
    for algo in ED_ALGOS:
        # DFA's single-stream networks have none of the Dale parameters: PPO's own space
        dale = algo != "dfa_ppo"
        hyperparams_opt.HYPERPARAMS_SAMPLER[algo] = sample_feedback_ppo_params if dale else hyperparams_opt.sample_ppo_params
        hyperparams_opt.HYPERPARAMS_CONVERTER[algo] = convert_feedback_ppo_params if dale else hyperparams_opt.convert_onpolicy_params


def make_test_env(env_id, n_envs: int = 1, **kwargs) -> VecEnv:
    """rl_zoo3's ``create_test_env`` (used by enjoy and record_video), which also builds the JAX
    simulators' ids: their VecEnv stands in for ``make_vec_env``'s gymnasium envs, the rest
    (VecNormalize statistics, frame stacking, wrappers) is rl_zoo3's.

    :raises SystemExit: the env refuses its ``env_kwargs`` (one line naming them)
    """
    gym_id = getattr(env_id, "gym_id", env_id)
    if gym_id not in JAX_ENV_IDS:
        try:
            return _CREATE_TEST_ENV(env_id, n_envs, **kwargs)
        except (TypeError, ValueError) as err:  # what gym.make raises for env_kwargs the env refuses
            sys.exit(f"error: cannot make {gym_id} with env_kwargs {kwargs.get('env_kwargs') or {}}: {err}")

    def jax_vec_env(_make_env, n_envs, monitor_dir=None, seed=0, env_kwargs=None, **_ignored):
        options = {k: v for k, v in (env_kwargs or {}).items() if k != "render_mode"}
        return VecMonitor(make_jax_vec_env(gym_id, n_envs, seed=seed or 0, **options), monitor_dir)

    original, zoo_utils.make_vec_env = zoo_utils.make_vec_env, jax_vec_env
    try:
        return _CREATE_TEST_ENV(env_id, n_envs, **kwargs)
    finally:
        zoo_utils.make_vec_env = original


_CREATE_TEST_ENV = zoo_utils.create_test_env


def check_env_id(env_id: str, algo: str) -> None:
    """Exits with one line listing the valid ids if ``env_id`` names no registered environment."""
    if env_id in gym.envs.registry:
        return
    config = zoo_config(algo)
    tuned = ", ".join(k for k in yaml.safe_load(config.read_text()) if k != "default") if config else "none"
    near = difflib.get_close_matches(env_id, gym.envs.registry, n=3)
    sys.exit(
        f"error: unknown env {env_id!r}; the zoo config of {algo} has settings for: {tuned}; "
        f"other registered gymnasium ids use its default entry" + (f" (closest: {', '.join(near)})" if near else "")
    )


def _expected_policy(algo: str) -> tuple[str, bool] | None:
    """``(policy class name, dale)`` that the package's zoo config of ``algo`` trains, if it has one."""
    if zoo_config(algo) is None:
        return None
    default = zoo_entry(algo, "default")
    return default["policy"], _dale(default.get("policy_kwargs"))


def _dale(policy_kwargs: dict | str | None) -> bool:
    """The ``dale`` option in a run's ``policy_kwargs``: a dict, or the zoo files' ``"dict(...)"``."""
    kwargs = policy_kwargs or {}
    return kwargs.get("dale", True) if isinstance(kwargs, dict) else "dale=False" not in kwargs


def _recorded_algo(args_file: Path) -> str | None:
    """The ``--algo`` that a run's ``args.yml`` (rl_zoo3's record of the train command) names; None
    where the run has none (copied or pruned).

    :raises SystemExit: one line, where the file cannot be read or names no algorithm rl_zoo3 knows
    """
    if not args_file.exists() and not args_file.is_symlink():
        return None
    remedy = "rl_zoo3 writes it as the record of a train run: restore or delete it"
    try:
        # the loader rl_zoo3's enjoy reads the file with: it holds an OrderedDict
        algo = yaml.load(args_file.read_text(), Loader=yaml.UnsafeLoader)["algo"]
    except (OSError, ValueError, yaml.YAMLError, TypeError, KeyError) as err:  # ValueError: not UTF-8
        reason = str(err).splitlines()[0] if str(err) else "no message"  # YAML's errors run over lines
        sys.exit(f"error: cannot read {args_file} ({type(err).__name__}: {reason}); {remedy}")
    if not isinstance(algo, str) or algo not in ALGOS:
        sys.exit(f"error: {args_file} names algo {algo!r}, which is none of rl_zoo3's ({', '.join(sorted(ALGOS))}); {remedy}")
    return algo


def check_trained_model(args: argparse.Namespace) -> None:
    """For the tools that load a trained model (enjoy, record_video): exits with one line where
    rl_zoo3 finds no model of ``--algo`` for ``--env`` under ``--folder``, where the model file
    cannot be read, or where the model or its run says it was trained by another algorithm (the run's
    ``args.yml``) or another algorithm's policy (the model's own record)."""
    env_id = str(getattr(args.env, "gym_id", args.env))
    if args.folder == "rl-trained-agents" and args.algo not in ED_ALGOS:
        return  # rl_zoo3 downloads the pretrained agents of its own algorithms into that folder
    try:
        with contextlib.redirect_stdout(None):  # the tool itself says which run it loads
            _, model_path, log_path = zoo_utils.get_model_path(
                args.exp_id, args.folder, args.algo, args.env, args.load_best, args.load_checkpoint, args.load_last_checkpoint
            )
    except (AssertionError, ValueError) as err:
        folder = Path(args.folder)
        models = sorted(str(p.parent.relative_to(folder)) for p in folder.glob(f"*/{env_id}_*/{env_id}.zip")) if folder.is_dir() else []
        found = f"models of {env_id} there: {', '.join(models)} (--algo ALGO --exp-id N picks ALGO/{env_id}_N)" if models else f"no model of {env_id} there"
        sys.exit(f"error: no trained {args.algo} model for {env_id} in {folder} ({err}); {found}")
    if env_id in JAX_ENV_IDS and (hasattr(args, "output_folder") or not args.no_render):
        sys.exit(f"error: {env_id} is a vectorised JAX env, which does not render: enjoy it with --no-render")
    # SB3's model file does not name its algorithm (a PPO model loads as A2C and plays), but the
    # run's args.yml, which rl_zoo3 writes beside it, does
    trained_by = _recorded_algo(Path(log_path) / env_id / "args.yml")
    if trained_by not in (None, args.algo):
        sys.exit(f"error: {model_path} was trained by --algo {trained_by} (its run's args.yml says so), not {args.algo}; pass --algo {trained_by}")
    expected = _expected_policy(args.algo)
    if expected is None:
        return
    # the model's own record, not the run's config.yml, which a copied or pruned run may lack; its
    # data entry alone: the tool loads the weights itself
    try:
        with zipfile.ZipFile(model_path) as archive:
            data = json_to_data(archive.read("data").decode())
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as err:
        sys.exit(f"error: cannot read the model {model_path} ({err}); train it again or pass another --exp-id")
    policy = getattr(data.get("policy_class"), "__name__", None)
    dale = _dale(data.get("policy_kwargs"))
    # an SB3 algo (ppo) may train any of SB3's own policies (saved under class names such as
    # ActorCriticPolicy), but none of this package's
    wrong = (policy, dale) != expected if expected[0] in policies.POLICIES else policy in policies.POLICIES
    if wrong:
        sys.exit(
            f"error: {model_path} was trained with policy {policy}"
            f"{'' if dale else ' (dale=False)'}, but --algo {args.algo} trains {expected[0]}"
            f"{'' if expected[1] else ' (dale=False)'}; pass the algo it was trained with"
        )


_ABOVE_ZERO = ((lambda v: v > 0), "> 0", {})
# rl_zoo3's count flags (train, enjoy, record_video, -optimize) -> (test, what it must be, the
# special values it also takes); the tool's own default (-1: "the config's", None: "derived") is
# allowed too. rl_zoo3 takes other values without a check: -n 0 is read as "the config's budget",
# --log-interval 0 divides by zero, --n-trials 0 or --n-evaluations 0 fail after the setup
_COUNT_FLAGS: dict[str, tuple[Callable[[int], bool], str, dict[int, str]]] = {
    **dict.fromkeys(["n_timesteps", "n_envs", "eval_episodes", "n_eval_envs", "num_threads", "n_trials", "max_total_trials", "n_evaluations"], _ABOVE_ZERO),
    "log_interval": (*_ABOVE_ZERO[:2], {-2: "no logging"}),
    "n_jobs": (*_ABOVE_ZERO[:2], {-1: "one per CPU"}),
    "seed": ((lambda v: v in SEED_RANGE), "from 0 to 2**32 - 1", {}),
}
# the folders the tools write into (train's -f and -tb, record_video's -o)
_OUTPUT_FLAGS = ("log_folder", "tensorboard_log", "output_folder")


def check_tool_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Refuses what rl_zoo3 takes without a check: the counts of :data:`_COUNT_FLAGS` out of range
    (``-n 0``, ``--log-interval 0``, ``--n-envs 0``, ``--n-trials 0`` ...), a seed outside
    :data:`~sb3_ed.checks.SEED_RANGE` (the tool's own default, e.g. ``-1``, stays allowed), a
    ``--device`` torch does not know, and an output folder that is a file or lies in one
    (:func:`~sb3_ed.cli.output_folder`).

    :raises SystemExit: argparse's one-line error naming the flag
    """
    flags = {action.dest: "/".join(action.option_strings) for action in parser._actions}
    for dest, (ok, expected, specials) in _COUNT_FLAGS.items():
        value, default = getattr(args, dest, None), parser.get_default(dest)
        if value is None or value == default or value in specials or ok(value):
            continue
        specials = {**specials, **({default: "the default"} if default is not None and not ok(default) else {})}
        special = f" (or {', '.join(f'{k}: {v}' for k, v in sorted(specials.items()))})" if specials else ""
        parser.error(f"argument {flags[dest]}: must be {expected}{special}, got {value}")
    if getattr(args, "device", "auto") != "auto":
        try:
            torch.device(args.device)
        except RuntimeError:
            parser.error(f"argument {flags['device']}: not a torch device: {args.device!r} (auto, cpu, cuda, cuda:0 ...)")
    for dest in _OUTPUT_FLAGS:
        if getattr(args, dest, None):
            try:
                output_folder(getattr(args, dest))
            except argparse.ArgumentTypeError as err:
                parser.error(f"argument {flags[dest]}: {err}")


def check_conf_file(conf: str, parser: argparse.ArgumentParser) -> None:
    """Refuses a ``--conf-file`` that rl_zoo3 cannot read: a ``.yml`` / ``.yaml`` file that is missing
    or does not parse into a mapping of env ids, or another name that is no importable Python module
    with a ``hyperparams`` dict (rl_zoo3 imports such names; it raised FileNotFoundError, yaml's
    ParserError or ModuleNotFoundError).

    :raises SystemExit: argparse's one-line error naming the file or module
    """
    flag = "argument -conf/--conf-file"
    if not conf.endswith((".yml", ".yaml")):
        try:
            module = importlib.import_module(conf)
        except Exception as err:
            parser.error(f"{flag}: {conf} is neither a .yml/.yaml file nor a Python module that imports ({type(err).__name__}: {err})")
        if not isinstance(getattr(module, "hyperparams", None), dict):
            parser.error(f"{flag}: module {conf} has no hyperparams dict (rl_zoo3 reads its settings from it)")
        return
    if not Path(conf).is_file():
        parser.error(f"{flag}: no such file: {conf}")
    try:
        entries = yaml.safe_load(Path(conf).read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        parser.error(f"{flag}: {conf} is not valid YAML ({str(err).splitlines()[0]})")
    if not isinstance(entries, dict):
        parser.error(f"{flag}: {conf} holds no settings (expected env ids, each with its hyperparameters)")


def complete_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """What the package adds to a tool's parsed arguments, whatever form they were typed in
    (``--algo=ed_ppo``, a unique prefix such as ``--conf``, ``-conf``): counts, seeds and output
    folders are checked (:func:`check_tool_arguments`), the env id is checked, and a trainer without ``--conf-file`` reads the
    package's zoo config of its algo."""
    check_tool_arguments(args, parser)
    for module in getattr(args, "gym_packages", []) or []:
        importlib.import_module(module)
    algo = getattr(args, "algo", "ppo")
    if hasattr(args, "env"):
        check_env_id(str(getattr(args.env, "gym_id", args.env)), algo)
    agent = getattr(args, "trained_agent", "")
    if agent and not (agent.endswith(".zip") and Path(agent).is_file()):
        parser.error(f"argument -i/--trained-agent: {agent} is not a model file (a .zip that train saved)")
    if getattr(args, "conf_file", None) is not None:
        check_conf_file(args.conf_file, parser)
    elif hasattr(args, "conf_file") and zoo_config(algo) is not None:
        args.conf_file = str(zoo_config(algo))
    if getattr(args, "trial_id", None) is not None and not (args.storage and args.study_name):
        sys.exit("error: --trial-id needs --storage and --study-name (the Optuna study holding the trial)")
    if hasattr(args, "folder") and hasattr(args, "load_best"):
        check_trained_model(args)
    return args


@contextlib.contextmanager
def _completed_arguments(complete: Callable[[argparse.Namespace, argparse.ArgumentParser], argparse.Namespace]) -> Iterator[None]:
    # rl_zoo3 builds each tool's parser inside the tool: checking what that parser parsed is the one
    # way to read the arguments by argparse's own rules (`=` forms, prefixes, aliases)
    original, store_dict = argparse.ArgumentParser.parse_args, zoo_utils.StoreDict.__call__

    def parse_args(parser, args=None, namespace=None):
        return complete(original(parser, args, namespace), parser)

    def read_key_values(action, parser, namespace, values, option_string=None):
        # rl_zoo3 evaluates each KEY:VALUE's value as Python: a NameError or SyntaxError traceback
        # for `learning_rate:nan` or `n_steps:`
        for item in values:
            try:
                store_dict(action, parser, argparse.Namespace(), [item], option_string)
            except Exception as err:
                parser.error(f"argument {option_string}: {item}: {type(err).__name__}: {err} (rl_zoo3 reads each VALUE as a Python expression: 3e-4, 'lin_3e-4', dict(net_arch=[64]))")
        store_dict(action, parser, namespace, values, option_string)

    argparse.ArgumentParser.parse_args, zoo_utils.StoreDict.__call__ = parse_args, read_key_values
    try:
        yield
    finally:
        argparse.ArgumentParser.parse_args, zoo_utils.StoreDict.__call__ = original, store_dict


def run_tool(entry: Callable[[], Any], argv: list[str] | None, prog: str) -> None:
    """Runs one of rl_zoo3's tools (``entry`` reads ``sys.argv``) with the package's algorithms
    registered, on ``argv`` (default: this process's arguments)."""
    register()
    saved = sys.argv
    sys.argv = [prog, *(sys.argv[1:] if argv is None else argv)]
    try:
        with _completed_arguments(complete_args):
            entry()
    finally:
        sys.argv = saved
