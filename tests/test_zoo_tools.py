"""rl_zoo3's tools that take --algo, run through the package's entry points."""

import shutil

import pytest

from sb3_ed.enjoy import main as enjoy
from sb3_ed.train import main as train

TINY = ["-n", "256", "--eval-freq", "-1", "--hyperparams", "n_envs:1", "n_steps:64", "batch_size:64", "n_epochs:1"]


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("logs")
    train(["--algo", "ed_ppo", "--env", "CartPole-v1", "-f", str(folder), "--seed", "0", *TINY])
    return folder


def test_enjoy_evaluates_a_trained_ed_ppo_model(logs, capsys):
    # 1000 steps: at least one whole episode (CartPole stops at 500), which the mean reward needs
    enjoy(["--algo", "ed_ppo", "--env", "CartPole-v1", "-f", str(logs), "--no-render", "-n", "1000", "--deterministic"])
    out = capsys.readouterr().out
    assert f"Loading {logs / 'ed_ppo' / 'CartPole-v1_1' / 'CartPole-v1.zip'}" in out and "Mean reward" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--algo", "dfa_ppo"], "no trained dfa_ppo model for CartPole-v1 in {logs} (The {logs}/dfa_ppo folder was not found); "
                                "models of CartPole-v1 there: ed_ppo/CartPole-v1_1 (--algo ALGO --exp-id N picks ALGO/CartPole-v1_N)"),
        (["--algo", "ed_ppo", "--load-best"], "no trained ed_ppo model for CartPole-v1 in {logs} (No model found for ed_ppo on CartPole-v1"),
        (["--algo", "ed_ppo", "--env", "CartPole-v2"], "unknown env 'CartPole-v2'"),
    ],
    ids=["other_algo", "no_best_model", "unknown_env"],
)
def test_enjoy_without_the_model_it_asks_for_is_one_line(logs, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        enjoy(["--env", "CartPole-v1", *argv, "-f", str(logs), "--no-render"])
    assert str(exit_info.value).startswith("error: " + message.format(logs=logs)) and "\n" not in str(exit_info.value)


def test_enjoy_with_env_kwargs_the_env_refuses_is_one_line(logs):
    with pytest.raises(SystemExit, match=r"^error: cannot make CartPole-v1 with env_kwargs \{'foo': 1\}: .*'foo'"):
        enjoy(["--algo", "ed_ppo", "--env", "CartPole-v1", "-f", str(logs), "--no-render", "--env-kwargs", "foo:1"])


@pytest.mark.parametrize(
    "argv, message",
    [(["--n-envs", "0"], "argument --n-envs: must be > 0, got 0"), (["--seed", "-1"], "argument --seed: must be from 0 to 2**32 - 1, got -1")],
)
def test_enjoy_refuses_no_envs_and_a_seed_out_of_range_in_one_line(logs, argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        enjoy(["--algo", "ed_ppo", "--env", "CartPole-v1", "-f", str(logs), "--no-render", *argv])
    assert exit_info.value.code == 2 and capsys.readouterr().err.strip().endswith(f"error: {message}")


@pytest.mark.parametrize("algo, expected", [("ed_ppo_nondale", r"EDPolicy \(dale=False\)"), ("dfa_ppo", "DFAPolicy"), ("ppo", "MlpPolicy")])
@pytest.mark.parametrize("with_config", [True, False])
def test_enjoy_refuses_a_model_of_another_algos_policy(logs, tmp_path, algo, expected, with_config):
    # a run of ed_ppo filed under another algo: its args.yml names the algo; where the run's records
    # were not copied with it, the model itself says which policy it holds
    shutil.copytree(logs / "ed_ppo", tmp_path / algo)
    if not with_config:
        shutil.rmtree(tmp_path / algo / "CartPole-v1_1" / "CartPole-v1")
    by_run = "was trained by --algo ed_ppo \\(its run's args.yml says so\\), not {algo}; pass --algo ed_ppo$"
    by_model = "was trained with policy EDPolicy, but --algo {algo} trains {expected}; pass the algo"
    message = by_run if with_config else by_model
    with pytest.raises(SystemExit, match=message.format(algo=algo, expected=expected)):
        enjoy(["--algo", algo, "--env", "CartPole-v1", "-f", str(tmp_path), "--no-render"])


def test_enjoy_on_a_corrupt_model_is_one_line(logs, tmp_path):
    shutil.copytree(logs / "ed_ppo", tmp_path / "ed_ppo")
    model = tmp_path / "ed_ppo" / "CartPole-v1_1" / "CartPole-v1.zip"
    model.write_bytes(model.read_bytes()[:100])  # as a disk that filled up leaves it
    with pytest.raises(SystemExit, match=rf"^error: cannot read the model {model} \(.*\); train it again or pass another --exp-id$"):
        enjoy(["--algo", "ed_ppo", "--env", "CartPole-v1", "-f", str(tmp_path), "--no-render"])


def test_enjoy_takes_sb3s_own_policy_under_ppo_and_refuses_its_model_under_a2c(tmp_path, capsys):
    train(["--algo", "ppo", "--env", "CartPole-v1", "-f", str(tmp_path), *TINY])
    enjoy(["--algo", "ppo", "--env", "CartPole-v1", "-f", str(tmp_path), "--no-render", "-n", "50"])
    assert "Loading" in capsys.readouterr().out
    # the same policy class under both: only the run's args.yml tells the algos apart
    shutil.copytree(tmp_path / "ppo", tmp_path / "a2c")
    model = tmp_path / "a2c" / "CartPole-v1_1" / "CartPole-v1.zip"
    with pytest.raises(SystemExit, match=rf"^error: {model} was trained by --algo ppo \(its run's args.yml says so\), not a2c; pass --algo ppo$"):
        enjoy(["--algo", "a2c", "--env", "CartPole-v1", "-f", str(tmp_path), "--no-render", "-n", "50"])
    args_file = tmp_path / "a2c" / "CartPole-v1_1" / "CartPole-v1" / "args.yml"
    for content, why in [
        ("algo: [unclosed", r"cannot read .*args.yml \(ParserError: .*\)"),
        (b"\xff\xfe", r"cannot read .*args.yml \(UnicodeDecodeError: .*\)"),
        ("- algo", r"cannot read .*args.yml \(TypeError: .*\)"),
        ("algo: null", r".*args.yml names algo None, which is none of rl_zoo3's \(a2c, .*\)"),
        ("algo: PPO", r".*args.yml names algo 'PPO', which is none of rl_zoo3's \(.*ppo.*\)"),
        (None, r"cannot read .*args.yml \(IsADirectoryError: .*\)"),
    ]:
        if content is None:
            args_file.unlink()
            args_file.mkdir()
        elif isinstance(content, bytes):
            args_file.write_bytes(content)
        else:
            args_file.write_text(content)
        with pytest.raises(SystemExit, match=rf"^error: {why}; rl_zoo3 writes it as the record of a train run: restore or delete it$"):
            enjoy(["--algo", "a2c", "--env", "CartPole-v1", "-f", str(tmp_path), "--no-render", "-n", "50"])


def test_the_ppo_family_configs_differ_only_in_policy_activation_and_dale():
    import yaml
    from torch import nn

    from sb3_ed.zoo import zoo_config

    def comparable(entry):
        entry = dict(entry)
        kwargs = eval(entry.pop("policy_kwargs", "dict()"), {"nn": nn})
        entry.pop("policy")
        return entry, {k: v for k, v in kwargs.items() if k not in ("activation_fn", "dale", *PINNED)}

    def pinned(entry):
        kwargs = eval(entry.get("policy_kwargs", "dict()"), {"nn": nn})
        return {k: kwargs[k] for k in PINNED if k in kwargs}

    PINNED = ("bias_init", "centered")  # options of the dual-stream policies only
    configs = {algo: yaml.safe_load(zoo_config(algo).read_text()) for algo in ("ppo", "ed_ppo", "ed_ppo_nondale", "dale_bp_ppo", "dfa_ppo", "np_ppo")}
    for env_id, entry in configs["ed_ppo"].items():
        for algo, config in configs.items():
            assert comparable(config[env_id]) == comparable(entry), (algo, env_id)
            if algo in ("ed_ppo_nondale", "dale_bp_ppo", "np_ppo"):
                assert pinned(config[env_id]) == pinned(entry), (algo, env_id)
    assert all("dale=False" in e["policy_kwargs"] for e in configs["ed_ppo_nondale"].values())
