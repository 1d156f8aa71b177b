import re

import pytest
import yaml
from rl_zoo3 import hyperparams_opt

from sb3_ed.train import main


def saved_config(folder, algo, env_id):
    return dict(yaml.unsafe_load((folder / algo / f"{env_id}_1" / env_id / "config.yml").read_text()))


TINY = ["-n", "64", "--eval-freq", "-1", "--hyperparams", "n_envs:1", "n_steps:32", "batch_size:32", "n_epochs:1"]


@pytest.mark.parametrize(
    "form",
    [
        ["--algo=ed_ppo", "--env=CartPole-v1"],
        ["--al", "ed_ppo", "--env", "CartPole-v1"],  # a unique prefix, as argparse allows
        ["--env", "CartPole-v1", "--algo", "ed_ppo"],
    ],
    ids=["equals", "prefix", "reordered"],
)
def test_every_form_argparse_accepts_trains_the_named_algo_on_its_zoo_settings(form, tmp_path):
    main([*form, "-f", str(tmp_path), *TINY])
    config = saved_config(tmp_path, "ed_ppo", "CartPole-v1")
    # the package's ed_ppo entry for CartPole-v1 (not rl_zoo3's ppo settings with MlpPolicy)
    assert config["policy"] == "EDPolicy" and config["gae_lambda"] == 0.8


@pytest.mark.parametrize("flag", ["--conf-file={}", "--conf={}", "-conf {}"], ids=["equals", "prefix", "short"])
def test_a_users_conf_file_is_read_in_every_form(flag, tmp_path):
    mine = tmp_path / "mine.yml"
    mine.write_text("CartPole-v1:\n  policy: 'EDPolicy'\n  n_timesteps: 64\n  gamma: 0.5\n  policy_kwargs: 'dict(net_arch=[8])'\n")
    main(["--algo", "ed_ppo", "--env", "CartPole-v1", *flag.format(mine).split(), "-f", str(tmp_path), *TINY])
    config = saved_config(tmp_path, "ed_ppo", "CartPole-v1")
    assert config["gamma"] == 0.5 and config["policy_kwargs"] == "dict(net_arch=[8])"


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "argument -conf/--conf-file: no such file: {path}"),
        ("CartPole-v1: [policy: x", "argument -conf/--conf-file: {path} is not valid YAML (while parsing a flow sequence)"),
        ("just words", "argument -conf/--conf-file: {path} holds no settings (expected env ids, each with its hyperparameters)"),
    ],
    ids=["missing", "not_yaml", "not_a_mapping"],
)
def test_a_conf_file_that_is_missing_or_not_settings_is_argparses_one_line(text, message, tmp_path, capsys):
    path = tmp_path / "mine.yml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(SystemExit) as exit_info:
        main(["--algo", "ed_ppo", "--env", "CartPole-v1", "-conf", str(path), "-f", str(tmp_path)])
    assert exit_info.value.code == 2 and capsys.readouterr().err.strip().splitlines()[-1].endswith(message.format(path=path))


def test_a_conf_module_that_does_not_import_and_a_missing_model_to_continue_are_argparses_one_line(tmp_path, capsys):
    # rl_zoo3 imports a --conf-file not named .yml/.yaml as a Python module: a traceback
    for argv, message in [(["-conf", "no_such_module"], "argument -conf/--conf-file: no_such_module is neither a .yml/.yaml file nor a Python module that imports (ModuleNotFoundError"),
                          (["-conf", "json"], "argument -conf/--conf-file: module json has no hyperparams dict"),
                          (["-i", str(tmp_path / "gone.zip")], f"argument -i/--trained-agent: {tmp_path / 'gone.zip'} is not a model file")]:  # rl_zoo3: an AssertionError
        with pytest.raises(SystemExit) as exit_info:
            main(["--algo", "ed_ppo", "--env", "CartPole-v1", "-f", str(tmp_path), *argv])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err.strip().splitlines()[-1]


def test_a_conf_entry_without_a_budget_is_one_line(tmp_path):
    mine = tmp_path / "mine.yml"
    mine.write_text("CartPole-v1:\n  policy: 'EDPolicy'\n")
    with pytest.raises(SystemExit, match="^error: ed_ppo on CartPole-v1: the settings have no n_timesteps: add it or pass -n$"):
        main(["--algo", "ed_ppo", "--env", "CartPole-v1", "-conf", str(mine), "-f", str(tmp_path)])
    # n_timesteps 0 trained nothing and saved the untrained model
    with pytest.raises(SystemExit, match="^error: ed_ppo on CartPole-v1: n_timesteps must be > 0, got 0$"):
        main(["--algo", "ed_ppo", "--env", "CartPole-v1", "-f", str(tmp_path), "--hyperparams", "n_timesteps:0"])
    assert not list(tmp_path.glob("ed_ppo/*"))


def cheap_ppo_space(monkeypatch):
    # rl_zoo3's own PPO space can draw rollouts of 32k steps with minibatches of 4: minutes per
    # trial. Here it is pinned to a cheap point; the Dale parameters are still drawn by our sampler.
    cheap = {"n_steps": 64, "batch_size": 32, "n_epochs": 1, "learning_rate": 3e-4, "policy_kwargs": {"net_arch": [16]}}

    def sample(trial, *args):
        # the trial records rl_zoo3's PPO parameters, as the real sampler would
        for name, value in {"one_minus_gamma": 0.02, "one_minus_gae_lambda": 0.05, "net_arch": "tiny", "activation_fn": "tanh"}.items():
            trial.suggest_categorical(name, [value])
        return {**cheap, "policy_kwargs": dict(cheap["policy_kwargs"])}

    monkeypatch.setattr(hyperparams_opt, "sample_ppo_params", sample)


@pytest.mark.medium
def test_cli_trains_halfcheetah_and_writes_model_and_config(tmp_path):
    argv = ["--algo", "ed_ppo", "--env", "HalfCheetah-v5", "-n", "2048", "-f", str(tmp_path), "--seed", "3"]
    main([*argv, "--eval-freq", "-1", "--hyperparams", "n_envs:2", "n_steps:512", "batch_size:128", "n_epochs:2"])
    run = tmp_path / "ed_ppo" / "HalfCheetah-v5_1"
    assert (run / "HalfCheetah-v5.zip").stat().st_size > 0
    config = dict(yaml.unsafe_load((run / "HalfCheetah-v5" / "config.yml").read_text()))
    assert config["policy"] == "EDPolicy" and config["n_envs"] == 2
    assert (run / "HalfCheetah-v5" / "vecnormalize.pkl").is_file()


@pytest.mark.medium
def test_cli_optimizes_ed_hyperparameters_with_optuna_and_trains_a_stored_trial(tmp_path, capsys, monkeypatch):
    cheap_ppo_space(monkeypatch)
    study = ["--storage", f"sqlite:///{tmp_path / 's.db'}", "--study-name", "s1"]
    argv = ["--algo", "ed_ppo", "--env", "CartPole-v1", "-n", "256", "-f", str(tmp_path / "opt"), "-optimize", "--n-trials", "2", *study]
    main([*argv, "--n-jobs", "1", "--sampler", "tpe", "--pruner", "median", "--n-evaluations", "1", "--eval-episodes", "2"])
    out = capsys.readouterr().out
    import optuna

    trials = optuna.load_study(study_name="s1", storage=study[1]).trials
    for trial in trials:
        # a ReLU has no width: it is sampled for sigmoid trials only
        expected = {"exc_scale", "inh_scale", "output_scale", "floor", "dale_activation"} | ({"width"} if trial.params["dale_activation"] == "sigmoid" else set())
        assert expected <= set(trial.params) and ("width" in trial.params) == (trial.params["dale_activation"] == "sigmoid")
    for name in ("exc_scale", "inh_scale", "output_scale", "floor", "dale_activation"):
        assert f"{name}:" in out
    # trial 0 too: rl_zoo3 itself skips a trial id of 0 and trains on the defaults
    for trial_id in (0, 1):
        folder = tmp_path / f"trial{trial_id}"
        main(["--algo", "ed_ppo", "--env", "CartPole-v1", *study, "--trial-id", str(trial_id), "-f", str(folder), *TINY])
        kwargs = saved_config(folder, "ed_ppo", "CartPole-v1")["policy_kwargs"]
        params = trials[trial_id].params
        assert kwargs["exc_scale"] == params["exc_scale"] and kwargs.get("widths") == params.get("width")
        assert kwargs["activation_fn"] == params["dale_activation"]


def test_an_option_the_policy_refuses_is_one_line(tmp_path):
    argv = ["--algo", "ed_ppo", "--env", "CartPole-v1", "-n", "64", "-f", str(tmp_path)]
    for kwargs, message in [("dict(widths=2.0)", "widths: 2.0 is a sigmoid width, but this layer's activation is relu, which has none"),
                            ("dict(output_scale='0.01')", "output_scale must be > 0 and finite, got '0.01'"),
                            ("dict(fan_out=3)", "unexpected keyword argument 'fan_out'")]:
        with pytest.raises(SystemExit, match=f"^error: ed_ppo on CartPole-v1: .*{re.escape(message)}"):
            main([*argv, "-params", f"policy_kwargs:{kwargs}"])
    with pytest.raises(SystemExit, match=r"^error: np_ppo on CartPole-v1: NPPolicy: rule_kwargs estimator='exact' needs each example's loss"):
        main([*argv[:1], "np_ppo", *argv[2:], "-params", "policy_kwargs:dict(rule_kwargs=dict(estimator='exact'))"])


@pytest.mark.parametrize(
    "hyperparam, message",
    [
        ("n_steps:0", "n_steps must be an integer >= 1, got 0"),
        ("n_epochs:0", "n_epochs must be an integer >= 1, got 0"),  # SB3: an UnboundLocalError after the first rollout
        ("n_envs:0", "n_envs must be an integer >= 1, got 0"),  # rl_zoo3: an IndexError
        ("gamma:2", "gamma must be from 0 to 1, got 2"),  # SB3 trains on it
        ("gae_lambda:-0.5", "gae_lambda must be from 0 to 1, got -0.5"),
        ("clip_range:-1", "clip_range must be finite and > 0, got -1"),
        ("max_grad_norm:0", "max_grad_norm must be > 0, got 0"),  # every update scaled to nothing
        ("ent_coef:-1", "ent_coef must be finite and >= 0, got -1"),
        ("learning_rate:'lin_-1e-3'", "learning_rate (a schedule, at its start) must be finite and > 0, got -0.001"),
        ("batch_size:1", "`batch_size` must be greater than 1"),  # SB3's own assertion, as one line
        # rl_zoo3 read any "<word>_<value>" as a linear schedule
        ("learning_rate:'const_1e-3'", "learning_rate must be a number or a linear schedule 'lin_<start value>', got 'const_1e-3'"),
        ("frame_stack:0", "frame_stack must be an integer >= 1, got 0"),  # an AssertionError without a message
        ("normalize:2", "normalize must be True, False or a 'dict(...)' of VecNormalize's options, got 2"),  # counted as on
        ("normalize:'yes'", "normalize must be True, False or a 'dict(...)' of VecNormalize's options, got 'yes' (NameError"),
        # plain PPO was trained and saved as ed_ppo
        ("policy:'MlpPolicy'", "policy MlpPolicy, but --algo ed_ppo trains EDPolicy: use the algo of that policy (ppo for SB3's own)"),
        ("policy_kwargs:dict(dale=False)", "policy EDPolicy (dale=False), but --algo ed_ppo trains EDPolicy: use the algo"),
        ("policy_kwargs:1", "policy_kwargs must be a dict, or a 'dict(...)' string, got 1"),
        ("env_wrapper:'nomodule.Wrapper'", "No module named 'nomodule' (policy, env_wrapper, vec_env_wrapper and callback name a class as 'module.Class')"),
    ],
)
def test_a_hyperparameter_out_of_range_is_one_line_naming_it(hyperparam, message, tmp_path):
    with pytest.raises(SystemExit, match=f"^error: ed_ppo on CartPole-v1: {re.escape(message)}"):
        main(["--algo", "ed_ppo", "--env", "CartPole-v1", "-n", "64", "-f", str(tmp_path), "--hyperparams", hyperparam])
    # no run folder either: enjoy would pick it as the newest run, and find no model in it
    assert not list(tmp_path.glob("ed_ppo/*"))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["-n", "0"], "argument -n/--n-timesteps: must be > 0 (or -1: the default), got 0"),  # rl_zoo3: the config's budget
        (["--log-interval", "0"], "argument --log-interval: must be > 0 (or -2: no logging, -1: the default), got 0"),
        (["--seed", str(2**32)], f"argument --seed: must be from 0 to 2**32 - 1 (or -1: the default), got {2**32}"),
        (["--eval-episodes", "0"], "argument --eval-episodes: must be > 0, got 0"),
        (["--num-threads", "-3"], "argument --num-threads: must be > 0 (or -1: the default), got -3"),
        (["-optimize", "--n-trials", "0"], "argument --n-trials: must be > 0, got 0"),  # Optuna: "No trials are completed yet"
        (["-optimize", "--n-evaluations", "0"], "argument --n-evaluations: must be > 0, got 0"),  # a ZeroDivisionError
        (["-optimize", "--n-jobs", "0"], "argument --n-jobs: must be > 0 (or -1: one per CPU), got 0"),
        (["--device", "foo"], "argument --device: not a torch device: 'foo' (auto, cpu, cuda, cuda:0 ...)"),
        (["--hyperparams", "learning_rate:nan"], "argument --hyperparams: learning_rate:nan: NameError: name 'nan' is not defined"),
        (["--hyperparams", "n_steps:"], "argument --hyperparams: n_steps:: SyntaxError"),
    ],
)
def test_a_count_a_seed_or_an_unreadable_hyperparameter_is_argparses_one_line(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["--algo", "ed_ppo", "--env", "CartPole-v1", "-f", str(tmp_path), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and err[-1].startswith(f"python -m sb3_ed.train: error: {message}")


NON_FINITE = "the policy's parameters, outputs or value loss hold NaN or inf"


@pytest.mark.parametrize(
    "algo, env_id, learning_rate, why",
    [
        ("ed_ppo", "CartPole-v1", "1e38", "a step size beyond float32's range"),  # Adam's first step is 10x the rate
        ("ed_ppo", "CartPole-v1", "1e30", NON_FINITE),  # NaN logits: torch.distributions refuses them
        ("ppo", "CartPole-v1", "1e30", NON_FINITE),
        ("np_ppo", "CartPole-v1", "1e30", NON_FINITE),  # the rule's FloatingPointError on a non-finite dL/dy
        ("dfa_ppo", "CartPole-v1", "1e30", NON_FINITE),  # finite weights, values of ~1e20: an infinite value loss
        ("ed_ppo", "Pendulum-v1", "1e3", NON_FINITE),  # an infinite Normal scale
    ],
)
def test_a_diverging_run_stops_with_one_line_naming_the_learning_rate(algo, env_id, learning_rate, why, tmp_path):
    rate = f"{float(learning_rate):g}"
    message = f"^error: {algo} on {env_id}: training diverged \\({re.escape(why)}\\); lower learning_rate \\(now {re.escape(rate)} at the start\\)$"
    with pytest.raises(SystemExit, match=message):
        main(["--algo", algo, "--env", env_id, "-f", str(tmp_path), *TINY, f"learning_rate:{learning_rate}", "-n", "320"])
    assert not list(tmp_path.glob(f"{algo}/*/{env_id}.zip"))  # a diverged model is not saved as trained


def test_a_trial_id_without_its_study_or_out_of_range_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match="--trial-id needs --storage and --study-name"):
        main(["--algo", "ed_ppo", "--env", "CartPole-v1", "--trial-id", "0"])


def test_unknown_env_is_one_line_listing_the_valid_ones():
    with pytest.raises(SystemExit) as exit_info:
        main(["--algo", "ed_ppo", "--env", "HalfCheeta-v5"])
    message = str(exit_info.value)
    assert "\n" not in message
    assert "unknown env 'HalfCheeta-v5'" in message and "HalfCheetah-v5, Ant-v5, Humanoid-v5" in message


def test_unknown_algo_lists_the_valid_ones(capsys):
    with pytest.raises(SystemExit):
        main(["--algo", "ed_ppq", "--env", "CartPole-v1"])
    err = capsys.readouterr().err
    assert "invalid choice: 'ed_ppq'" in err and "'ed_ppo', 'ed_ppo_nondale', 'dfa_ppo', 'dale_bp_ppo'" in err


@pytest.mark.medium
def test_two_processes_optimizing_at_once_share_one_optuna_study(tmp_path):
    import subprocess
    import sys

    import optuna

    journal = tmp_path / "study.log"  # Optuna's journal file: safe for processes writing at once
    argv = [sys.executable, "-m", "sb3_ed.train", "--algo", "ed_ppo", "--env", "CartPole-v1", "-n", "128", "-optimize", "--n-trials", "1",
            "--storage", str(journal), "--study-name", "shared", "--n-evaluations", "1", "--eval-episodes", "1", "--n-jobs", "1",
            "--sampler", "random", "--pruner", "none", "--hyperparams", "n_steps:64", "batch_size:64", "n_epochs:1", "--no-optim-plots"]
    workers = [subprocess.Popen([*argv, "--seed", str(seed), "-f", str(tmp_path / f"logs{seed}")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    for worker in workers:
        assert worker.wait(timeout=600) == 0, worker.stderr.read()[-2000:]
    study = optuna.load_study(study_name="shared", storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal))))
    assert len(study.trials) == 2 and all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_continuing_a_model_of_another_algos_policy_is_one_line(tmp_path):
    main(["--algo", "dfa_ppo", "--env", "CartPole-v1", "-f", str(tmp_path), *TINY])
    dfa_model = tmp_path / "dfa_ppo" / "CartPole-v1_1" / "CartPole-v1.zip"
    with pytest.raises(SystemExit, match=rf"^error: -i {re.escape(str(dfa_model))}: its policy is DFAPolicy, but --algo ed_ppo trains EDPolicy; pass the algo it was trained with$"):
        main(["--algo", "ed_ppo", "--env", "CartPole-v1", "-f", str(tmp_path), *TINY, "-i", str(dfa_model)])
    main(["--algo", "dfa_ppo", "--env", "CartPole-v1", "-f", str(tmp_path), *TINY, "-i", str(dfa_model)])  # its own algo goes on
    assert (tmp_path / "dfa_ppo" / "CartPole-v1_2" / "CartPole-v1.zip").is_file()
