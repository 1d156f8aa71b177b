"""python -m sb3_ed.compare on tiny runs: the table, the figures, reuse, resumption, bad input."""

import json

import pytest

from sb3_ed.compare import FINDINGS, Settings, check_finding, check_settings, main, write_report
from sb3_ed.reporting import decimals

pytestmark = pytest.mark.medium

TINY = ["--envs", "CartPole-v1", "--algos", "ed_ppo", "ppo", "--seeds", "2", "--steps", "256", "--eval-freq", "128",
        "--eval-episodes", "2", "--hyperparams", "n_envs:1", "n_steps:64", "batch_size:64", "n_epochs:1"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    main([*TINY, "--out", str(out), "--jobs", "2"])
    return out


def test_writes_the_table_curves_and_rl_zoo_layout(results):
    text = (results / "report.md").read_text()
    rows = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ed_ppo") or line.startswith("| ppo")]
    assert rows == ["ed_ppo", "ppo"]
    for png in ("learning_curves_CartPole-v1.png", "summary.png"):
        assert (results / png).read_bytes()[:4] == b"\x89PNG"
    # every run is an rl_zoo3 run, and OUT/logs is one rl_zoo3 log folder of all seeds
    for algo in ("ed_ppo", "ppo"):
        for seed in (0, 1):
            run = results / "logs" / algo / f"CartPole-v1_{seed + 1}"
            assert (run / "CartPole-v1.zip").is_file() and (run / "evaluations.npz").is_file()
            assert (run / "CartPole-v1" / "config.yml").is_file()
    record = json.loads((results / "runs" / "ed_ppo" / "CartPole-v1" / "seed1" / "run.json").read_text())
    assert record["env_steps"] == 256 and record["seed"] == 1 and record["wall_time"] > 0
    # a run of seconds: its minutes keep two figures instead of printing as 0
    minutes = [line.split("|")[7].strip() for line in text.splitlines() if line.startswith("| ed_ppo")]
    assert float(minutes[0]) > 0, minutes


def test_a_second_call_reuses_finished_runs_and_reruns_an_interrupted_one(results, capsys):
    model = results / "runs" / "ppo" / "CartPole-v1" / "seed0" / "ppo" / "CartPole-v1_1" / "CartPole-v1.zip"
    before = model.stat().st_mtime_ns
    interrupted = results / "runs" / "ed_ppo" / "CartPole-v1" / "seed1"
    (interrupted / "run.json").unlink()  # as a run killed before it finished leaves it
    main([*TINY, "--out", str(results)])
    out = capsys.readouterr().out
    assert "3 of 4 runs already finished; 1 to run" in out
    assert model.stat().st_mtime_ns == before  # not run again
    assert (interrupted / "run.json").is_file() and list((interrupted / "ed_ppo").iterdir()) == [interrupted / "ed_ppo" / "CartPole-v1_1"]
    assert "**Partial**" not in (results / "report.md").read_text()


def test_report_only_runs_nothing_and_says_what_is_unfinished(results, capsys):
    unfinished = results / "runs" / "ppo" / "CartPole-v1" / "seed1" / "run.json"
    saved = unfinished.read_text()
    unfinished.unlink()
    try:
        main([*TINY, "--out", str(results), "--report-only"])
    finally:
        unfinished.write_text(saved)
    text = (results / "report.md").read_text()
    assert "already finished" not in capsys.readouterr().out  # nothing was run
    assert "**Partial**: 1 runs not finished yet: ppo on CartPole-v1 (1)." in text
    # the command it names is the one that runs them
    assert f"Command: `python -m sb3_ed.compare {' '.join(TINY)} --out {results}`" in text
    rows = {line.split("|")[1].strip(): line.split("|")[5].strip() for line in text.splitlines() if line.startswith(("| ed_ppo", "| ppo"))}
    assert rows == {"ed_ppo": "2", "ppo": "1"}  # the n column: seeds finished


@pytest.mark.parametrize(
    "change, message",
    [
        (["--steps", "512"], "holds runs made with steps 256, not 512"),
        (["--algos", "ed_ppq"], "unknown algo 'ed_ppq'; valid: "),
        (["--envs", "CartPole-v0x"], "unknown env 'CartPole-v0x'"),
        # each of ppo's runs counted twice: n 4, and a p-value of 0.015 where two seeds give 0.21
        (["--algos", "ppo"], "--algos names ppo more than once"),
        # the runs trained, then the report found no evaluations.npz: a traceback
        (["--eval-freq", "512"], "--steps 256 < --eval-freq 512: no evaluation would fall within a run"),
    ],
)
def test_bad_input_and_mixed_settings_are_refused_in_one_line(results, change, message):
    argv = list(TINY)
    for flag, value in zip(change[::2], change[1::2]):
        argv[argv.index(flag) + 1] = value
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--out", str(results)])
    assert message in str(exit_info.value) and "\n" not in str(exit_info.value)


def test_a_call_that_can_run_nothing_writes_nothing(tmp_path, capsys):
    out = tmp_path / "new"
    with pytest.raises(SystemExit, match=r"^error: no finished runs in .*new yet \(it holds no compare.json\)$"):
        main([*TINY, "--out", str(out), "--report-only"])
    with pytest.raises(SystemExit, match="^error: --skip leaves none of the ALGO:ENV pairs asked for$"):
        main([*TINY, "--out", str(out), "--skip", "ed_ppo:CartPole-v1", "ppo:CartPole-v1"])
    assert not out.exists()  # no compare.json to lock the folder to settings that ran nothing
    # an unset shell variable: Path("") is the current folder
    with pytest.raises(SystemExit):
        main([*TINY, "--out", ""])
    assert "argument --out: an empty path; name the folder" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["compare.json", "runs/ppo/CartPole-v1/seed0/run.json", "runs/ppo/CartPole-v1/seed0/ppo/CartPole-v1_1/evaluations.npz"])
def test_a_corrupt_record_is_one_line_naming_the_file(results, name):
    path = results / name
    saved = path.read_bytes()
    path.write_bytes(saved[: len(saved) // 2])  # as a disk that filled up leaves it
    try:
        with pytest.raises(SystemExit, match=r"^error: cannot read .*; (.*: restore it, or use another --out|delete .* to run it again)$") as exit_info:
            main([*TINY, "--out", str(results), "--report-only"])
    finally:
        path.write_bytes(saved)
    assert str(path) in str(exit_info.value) and "\n" not in str(exit_info.value)


def test_an_out_that_is_a_file_is_argparses_one_line(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(SystemExit):
        main([*TINY, "--out", str(tmp_path / "notes.txt" / "compare")])
    assert f"argument --out: {tmp_path / 'notes.txt'} is a file, not a folder" in capsys.readouterr().err


def test_ray_runs_each_run_as_a_task(tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        main([*TINY[:6], "1", *TINY[7:], "--out", str(tmp_path), "--ray", "local"])
    finally:
        ray.shutdown()
    assert len(list((tmp_path / "runs").glob("*/CartPole-v1/seed0/run.json"))) == 2


def test_ray_missing_says_what_to_install(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(SystemExit, match=r"--ray needs Ray: pip install 'sb3-ed\[ray\]'"):
        main([*TINY, "--out", str(tmp_path), "--ray", "auto"])


def seeds(*finals):
    return [{"final": f, "seed": i} for i, f in enumerate(finals)]


def test_findings_are_judged_by_welch_test():
    beats = next(f for f in FINDINGS if f[:2] == ("HalfCheetah", "beats") and f[3] == "dale_bp_ppo")
    assert "**reproduced**" in check_finding(beats, {"ed_ppo": seeds(5000, 5100, 4900), "dale_bp_ppo": seeds(3000, 3100, 2900)})
    assert "**not reproduced**" in check_finding(beats, {"ed_ppo": seeds(3000, 3100, 2900), "dale_bp_ppo": seeds(5000, 5100, 4900)})
    assert "**not significant**" in check_finding(beats, {"ed_ppo": seeds(5000, 1000, 4000), "dale_bp_ppo": seeds(3000, 4100, 2900)})
    weakest = next(f for f in FINDINGS if f[1] == "weakest")
    table = {"dfa_ppo": seeds(1, 2, 1.5), "ed_ppo": seeds(10, 11, 10.5), "ppo": seeds(20, 21, 20.5)}
    assert "**reproduced**" in check_finding(weakest, table)
    assert "**not reproduced**" in check_finding(weakest, {**table, "dfa_ppo": seeds(30, 31, 30)})
    assert check_finding(beats, {"ed_ppo": seeds(1, 2)}) is None  # dale_bp_ppo did not run
    # one seed has no Welch p: "on par" must not be read off a missing test
    on_par = ("Ant", "on par", "ed_ppo", "dale_bp_ppo")
    one_seed = {"ed_ppo": seeds(5000), "dale_bp_ppo": seeds(3000, 3100)}
    for finding, results in [(on_par, one_seed), (beats, one_seed), (weakest, {**table, "dfa_ppo": seeds(3)})]:
        line = check_finding(finding, results)
        assert "**not testable (Welch's test needs two or more seeds per algo, not all equal)**" in line and "Welch p n/a" in line


def test_returns_keep_the_figures_that_tell_them_apart():
    # Craftax's returns count achievements: 2.9 and 3.4 must not both print as "3"
    assert [decimals(v) for v in ([4751, 5013], [-41, 559, 1943], [-41, -16], [2.9, 3.4], [0.0], [])] == [0, 0, 1, 2, 2, 2]
    weakest = next(f for f in FINDINGS if f[1] == "weakest")
    line = check_finding(weakest, {"dfa_ppo": seeds(2.9, 3.4, 3.0), "ed_ppo": seeds(3.1, 3.3, 3.2)})
    assert "dfa_ppo 3.10, next lowest ed_ppo 3.20" in line
    beats = ("Craftax", "beats", "ed_ppo", "dfa_ppo")
    assert "3.20 vs 3.10 (difference +0.10," in check_finding(beats, {"dfa_ppo": seeds(2.9, 3.4, 3.0), "ed_ppo": seeds(3.1, 3.3, 3.2)})


@pytest.mark.parametrize("flag, value", [("--steps", "-5"), ("--steps", "0"), ("--seeds", "0"), ("--eval-episodes", "0"), ("--jobs", "-1"), ("--threads", "x")])
def test_counts_and_budgets_must_be_positive(tmp_path, capsys, flag, value):
    argv = ["--envs", "CartPole-v1", "--algos", "ppo", "--out", str(tmp_path), flag, value]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and not list(tmp_path.iterdir())  # refused before anything was written
    expected = "invalid int value: 'x'" if value == "x" else f"must be finite and > 0, got {value}"
    assert f"argument {flag}: {expected}" in capsys.readouterr().err


def test_a_table_without_ed_ppo_keeps_the_seed_count_wall_time_and_steps(tmp_path):
    def seed(k, final):
        return {"seed": k, "final": final, "wall_time": 90.0, "env_steps": 2048, "steps": [1024, 2048], "returns": [final / 2, final]}

    results = {"CartPole-v1": {"ppo": [seed(0, 93.0), seed(1, 32.0)], "a2c": [seed(0, 50.0)]}}
    text = write_report(results, tmp_path, Settings(2048, 1024, 2, ()), "python -m sb3_ed.compare ...")
    assert "| algo | final return (mean ± std) | n | per seed | wall time / run (min) | env steps |" in text
    assert "| ppo | 62.5 ± 43.1 | 2 | 93.0, 32.0 | 1.5 | 2,048 |" in text
    assert "| a2c | 50.0 | 1 | 50.0 | 1.5 | 2,048 |" in text


@pytest.mark.parametrize(
    "override, message",
    [
        ("foo:1", "--hyperparams foo: not a setting of ed_ppo (PPO)"),
        ("n_epochs:2", "--hyperparams n_epochs: not a setting of ars (ARS)"),
        # the budget check against --eval-freq reads --steps: n_timesteps:256 with the default
        # --eval-freq trained every run, then found no evaluation
        ("n_timesteps:256", "--hyperparams n_timesteps: give the budget as --steps"),
        ("learning_rate:nan", "--hyperparams 'learning_rate:nan': NameError: name 'nan' is not defined"),
        ("gamma", "--hyperparams 'gamma': expected KEY:VALUE"),
        # values the trainer refuses: each run failed on its own, after compare.json locked the folder
        ("learning_rate:-1", "--hyperparams for ed_ppo on CartPole-v1: learning_rate must be finite and > 0, got -1"),
        ("policy:'MlpPolicy'", "--hyperparams for ed_ppo on CartPole-v1: policy MlpPolicy, but --algo ed_ppo trains EDPolicy"),
        ("env_wrapper:'nomodule.Wrapper'", "--hyperparams for ed_ppo on CartPole-v1: No module named 'nomodule'"),
    ],
)
def test_an_override_that_would_fail_every_run_is_refused_before_any(tmp_path, override, message):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["--envs", "CartPole-v1", "--algos", "ed_ppo", "ars", "--steps", "256", "--eval-freq", "128", "--hyperparams", override, "--out", str(out)])
    assert str(exit_info.value) == f"error: {message}" or str(exit_info.value).startswith(f"error: {message}")
    assert not out.exists()


def test_settings_are_compared_as_rl_zoo3_applies_them(results, tmp_path):
    # the same overrides in another order: the same settings, not "runs made with other hyperparams"
    report = (results / "report.md").read_text()
    hyperparams = TINY.index("--hyperparams") + 1
    reordered = [*TINY[:hyperparams], *reversed(TINY[hyperparams:])]
    try:
        main([*reordered, "--out", str(results), "--report-only"])
    finally:
        (results / "report.md").write_text(report)
    # settings under which no run finished (every run failed) lock nothing: the new ones replace them
    (tmp_path / "compare.json").write_text(json.dumps({"steps": 512, "eval_freq": 128, "eval_episodes": 2, "hyperparams": ["foo:1"]}))
    check_settings(tmp_path, Settings(256, 128, 2, ("n_envs:1",)))
    assert json.loads((tmp_path / "compare.json").read_text()) == {"steps": 256, "eval_freq": 128, "eval_episodes": 2, "hyperparams": ["n_envs:1"]}
