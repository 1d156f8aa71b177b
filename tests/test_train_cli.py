import pytest
import yaml
from rl_zoo3 import hyperparams_opt

from sb3_ed.train import main


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
def test_cli_optimizes_ed_hyperparameters_with_optuna(tmp_path, capsys, monkeypatch):
    # rl_zoo3's own PPO space can draw rollouts of 32k steps with minibatches of 4: minutes per
    # trial. Here it is pinned to a cheap point; the Dale parameters are still drawn by our sampler.
    cheap = {"n_steps": 64, "batch_size": 32, "n_epochs": 1, "learning_rate": 3e-4, "policy_kwargs": {"net_arch": [16]}}
    monkeypatch.setattr(hyperparams_opt, "sample_ppo_params", lambda trial, *args: {**cheap, "policy_kwargs": dict(cheap["policy_kwargs"])})
    argv = ["--algo", "ed_ppo", "--env", "CartPole-v1", "-n", "256", "-f", str(tmp_path), "-optimize", "--n-trials", "2"]
    main([*argv, "--n-jobs", "1", "--sampler", "tpe", "--pruner", "median", "--n-evaluations", "1", "--eval-episodes", "2"])
    out = capsys.readouterr().out
    for name in ("exc_scale", "inh_scale", "output_scale", "floor", "width", "dale_activation"):
        assert f"{name}:" in out


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
    assert "invalid choice: 'ed_ppq'" in err and "'ed_ppo', 'dfa_ppo', 'dale_bp_ppo'" in err
