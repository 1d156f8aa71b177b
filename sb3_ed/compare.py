"""The paper's RL comparison in one command: every env x algo x seed as an ordinary rl_zoo3 run, then
the table, the learning curves and a check of the paper's findings::

    python -m sb3_ed.compare --envs HalfCheetah-v5 Ant-v5 Humanoid-v5 Craftax-Classic-Symbolic-v1 \\
        --algos ed_ppo ed_ppo_nondale dale_bp_ppo dfa_ppo ppo ars --seeds 3 --out runs/compare --jobs 2

Each run is ``python -m sb3_ed.train`` with the package's zoo settings, in a folder of its own,
``OUT/runs/<algo>/<env>/seed<k>/`` (rl_zoo3's layout inside: ``<algo>/<env>_1/`` with its model,
``evaluations.npz`` and ``config.yml``); ``OUT/logs/`` links them all as one rl_zoo3 log folder
(``<algo>/<env>_<k+1>``), so that rl_zoo3's plotting scripts read every seed. A finished run (its
``run.json``) is never run again; an interrupted one is started again from scratch. The settings
of a results folder are kept in ``OUT/compare.json``: a later call with other settings is refused.
``--jobs N`` runs N runs at a time as local processes; ``--ray ADDRESS`` sends each run to a Ray
cluster as one task (``pip install 'sb3-ed[ray]'``; OUT must then be on storage every node sees).

``OUT/report.md``: final evaluation return (mean ± std, per seed) per env and algo, Welch's p
against ``ed_ppo``, wall time and env steps, ``learning_curves_<env>.png``, ``summary.png``, and the
paper's qualitative findings checked one by one.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
from rl_zoo3 import utils as zoo_utils
from rl_zoo3.exp_manager import ExperimentManager
from rl_zoo3.utils import ALGOS

from .cli import output_folder, positive
from .reporting import decimals, format_p, mean_std, plot_band, read_record, welch_p, welch_table
from .zoo import ED_ALGOS, check_hyperparams, check_zoo_entries, zoo_config, zoo_entry

SETTINGS_FILE, RUN_FILE = "compare.json", "run.json"
BASELINE = "ed_ppo"
# The paper's qualitative findings (Diffusing Blame, arXiv 2606.31700), as (task, relation, a, b):
# "beats" / "trails": a's mean final return is significantly above / below b's (Welch p < 0.05);
# "on par": no significant difference; "weakest": a has the lowest mean of every algo on the task.
# BP-PPO is dale_bp_ppo (backprop on the same Dale networks); ES is ARS.
FINDINGS = [
    ("HalfCheetah", "beats", "ed_ppo", "dale_bp_ppo"),
    ("HalfCheetah", "beats", "ed_ppo", "ed_ppo_nondale"),
    ("HalfCheetah", "beats", "ed_ppo", "ars"),
    ("HalfCheetah", "on par", "ed_ppo", "dfa_ppo"),
    ("Ant", "on par", "ed_ppo", "dale_bp_ppo"),
    ("Ant", "on par", "ed_ppo", "ed_ppo_nondale"),
    ("Ant", "beats", "ed_ppo", "ars"),
    ("Humanoid", "trails", "ed_ppo", "dale_bp_ppo"),
    ("Humanoid", "trails", "ed_ppo", "ed_ppo_nondale"),
    ("Craftax", "trails", "ed_ppo", "dale_bp_ppo"),
    ("Craftax", "trails", "ed_ppo", "ed_ppo_nondale"),
    ("Craftax", "weakest", "dfa_ppo", None),
]
SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class Settings:
    """What must be equal for runs to sit in one results folder (the grid itself may grow)."""

    steps: int | None  # env steps per run (None: each zoo entry's n_timesteps)
    eval_freq: int
    eval_episodes: int
    hyperparams: tuple[str, ...]  # rl_zoo3 --hyperparams overrides, as typed


@dataclass(frozen=True)
class Run:
    algo: str
    env: str
    seed: int

    def folder(self, out: Path) -> Path:
        return out / "runs" / self.algo / self.env / f"seed{self.seed}"

    def zoo_folder(self, out: Path) -> Path:
        """The rl_zoo3 run folder inside (one run per log folder, so always id 1)."""
        return self.folder(out) / self.algo / f"{self.env}_1"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sb3_ed.compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", nargs="+", required=True, help="gymnasium or JAX env ids")
    p.add_argument("--algos", nargs="+", required=True, help="rl_zoo3 algo ids with a zoo config in the package (ed_ppo, ed_ppo_nondale, dale_bp_ppo, dfa_ppo, ppo, ars ...)")
    p.add_argument("--seeds", type=positive(int), default=3, help="seeds 0..N-1 per env and algo (default: %(default)s)")
    p.add_argument("--out", type=output_folder, required=True, help="results folder; finished runs in it are reused")
    p.add_argument("--steps", type=positive(int), help="env steps per run (default: the zoo entry's n_timesteps)")
    p.add_argument("--eval-freq", type=positive(int), default=50_000, help="env steps between evaluations (default: %(default)s)")
    p.add_argument("--eval-episodes", type=positive(int), default=10, help="deterministic episodes per evaluation (default: %(default)s)")
    p.add_argument("--hyperparams", nargs="+", default=[], metavar="KEY:VALUE", help="rl_zoo3 --hyperparams overrides for every run (e.g. n_envs:2)")
    p.add_argument("--skip", nargs="+", default=[], metavar="ALGO:ENV", help="pairs not to run (e.g. ars:Craftax-Classic-Symbolic-v1: ARS on Craftax, left out as in the paper)")
    p.add_argument("--threads", type=positive(int), default=1, help="torch threads per run (default: %(default)s; one run per core)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=positive(int), default=1, help="runs at a time, as local processes (default: %(default)s)")
    where.add_argument("--ray", metavar="ADDRESS", help="send each run to this Ray cluster as one task ('auto', 'local', or ray://host:port)")
    p.add_argument("--report-only", action="store_true", help="write the report from the finished runs, run nothing")
    return p


def check_grid(args: argparse.Namespace) -> list[Run]:
    """The runs asked for; exits with one line where an env, algo or skip entry is unknown."""
    from . import envs  # noqa: F401  (registers the JAX ids)

    algos = sorted(a for a in {*ED_ALGOS, "ppo", "ars", "a2c"} if zoo_config(a) is not None)
    for flag, names in (("--envs", args.envs), ("--algos", args.algos)):
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            # a name given twice would count each of its runs twice in the means and the p-values
            sys.exit(f"error: {flag} names {', '.join(twice)} more than once")
    if args.steps is not None and args.steps < args.eval_freq:
        sys.exit(f"error: --steps {args.steps} < --eval-freq {args.eval_freq}: no evaluation would fall within a run, and its final return is the last evaluation's")
    for algo in args.algos:
        if algo not in algos:
            sys.exit(f"error: unknown algo {algo!r}; valid: {', '.join(algos)}")
    check_overrides(args.hyperparams, args.algos, args.envs)
    for env in args.envs:
        if env not in gym.envs.registry:
            sys.exit(f"error: unknown env {env!r}; valid: registered gymnasium ids, e.g. HalfCheetah-v5, Ant-v5, Humanoid-v5, Craftax-Classic-Symbolic-v1")
    skips = set()
    for entry in args.skip:
        algo, _, env = entry.partition(":")
        if algo not in args.algos or env not in args.envs:
            sys.exit(f"error: --skip {entry!r} is not one of the ALGO:ENV pairs asked for")
        skips.add((algo, env))
    runs = [Run(a, e, s) for e in args.envs for a in args.algos if (a, e) not in skips for s in range(args.seeds)]
    if not runs:
        sys.exit("error: --skip leaves none of the ALGO:ENV pairs asked for")
    return runs


def _comparable(key: str, value):
    # overrides as rl_zoo3 applies them (the last of a key wins): another order, the same settings
    return {k: v for k, _, v in (item.partition(":") for item in value or [])} if key == "hyperparams" else value


# entries of a zoo config that rl_zoo3 takes out before it builds the model (the rest are the
# algorithm's constructor arguments)
ZOO_ONLY_KEYS = {"n_envs", "normalize", "monitor_kwargs", "env_kwargs", "frame_stack", "env_wrapper", "vec_env_wrapper", "callback", "noise_type", "noise_std"}


def check_overrides(items: list[str], algos: list[str], envs: list[str]) -> None:
    """Exits with one line where a ``--hyperparams`` override would fail every run of the grid, one
    by one after it started: not ``KEY:VALUE``, a value rl_zoo3 cannot read as Python, a key that is
    neither a zoo entry nor an argument of an algo's constructor, ``n_timesteps`` (the budget is
    ``--steps``, which the evaluation schedule is checked against), or a value the trainer refuses
    in an algo's zoo entry of an env (:func:`~sb3_ed.zoo.check_zoo_entries`,
    :func:`~sb3_ed.zoo.check_hyperparams`, the names of wrappers and callbacks)."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition(":")
        if not sep or not key.isidentifier():
            sys.exit(f"error: --hyperparams {item!r}: expected KEY:VALUE")
        if key == "n_timesteps":
            sys.exit("error: --hyperparams n_timesteps: give the budget as --steps")
        try:
            overrides[key] = eval(value)  # as rl_zoo3 reads it
        except Exception as err:
            sys.exit(f"error: --hyperparams {item!r}: {type(err).__name__}: {err} (each VALUE is read as Python: 3e-4, 'lin_3e-4', dict(net_arch=[64]))")
        for algo in algos:
            model = {**ALGOS, **ED_ALGOS}[algo]
            if key not in ZOO_ONLY_KEYS and key not in inspect.signature(model).parameters:
                sys.exit(f"error: --hyperparams {key}: not a setting of {algo} ({model.__name__})")
    if not overrides:
        return
    for algo in algos:
        for env in envs:
            entry = {**zoo_entry(algo, env), **overrides}
            try:
                check_zoo_entries(entry, algo, budget_given=True)
                check_hyperparams({**ExperimentManager._preprocess_schedules(dict(entry)), "n_envs": entry.get("n_envs", 1)})
                for key in ("env_wrapper", "vec_env_wrapper"):
                    zoo_utils.get_wrapper_class(entry, key)
                zoo_utils.get_callback_list(entry)
            except (ValueError, TypeError, ImportError, AttributeError) as err:
                sys.exit(f"error: --hyperparams for {algo} on {env}: {err}")


def check_settings(out: Path, settings: Settings) -> None:
    """Keeps the settings of ``out``; exits naming the setting that differs from those it holds,
    unless no run there has finished (then there is nothing to mix with, and the new ones are kept)."""
    path = out / SETTINGS_FILE
    new = asdict(settings)
    new["hyperparams"] = list(new["hyperparams"])
    if path.is_file():
        old = read_record(path, f"it records the settings of the runs in {out}: restore it, or use another --out")
        differ = [key for key, value in new.items() if _comparable(key, old.get(key)) != _comparable(key, value)]
        if not differ:
            return
        if any(out.glob(f"runs/*/*/*/{RUN_FILE}")):
            key = differ[0]
            sys.exit(f"error: {out} holds runs made with {key} {old.get(key)!r}, not {new[key]!r}: use another --out or the same {key}")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(new, indent=1) + "\n")


def train_argv(run: Run, out: Path, settings: Settings, threads: int) -> list[str]:
    argv = ["--algo", run.algo, "--env", run.env, "--seed", str(run.seed), "-f", str(run.folder(out)),
            "--eval-freq", str(settings.eval_freq), "--eval-episodes", str(settings.eval_episodes), "--num-threads", str(threads)]
    if settings.steps is not None:
        argv += ["-n", str(settings.steps)]
    if settings.hyperparams:
        argv += ["--hyperparams", *settings.hyperparams]
    return argv


def execute(run: Run, out: Path, settings: Settings, threads: int) -> dict:
    """Trains one run in a process of its own (from scratch: a half-finished folder is removed) and
    writes its ``run.json``. Also the body of a Ray task."""
    folder = run.folder(out)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    started = time.time()
    with open(folder / "train.log", "w") as log:
        code = subprocess.run([sys.executable, "-m", "sb3_ed.train", *train_argv(run, out, settings, threads)], stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    if code != 0:
        raise RuntimeError(f"{run.algo} on {run.env}, seed {run.seed}: training failed (exit {code}); see {folder / 'train.log'}")
    try:
        evaluations = np.load(run.zoo_folder(out) / "evaluations.npz")
    except OSError as err:
        raise RuntimeError(f"{run.algo} on {run.env}, seed {run.seed}: trained, but no evaluation was saved ({err}); see {folder / 'train.log'}") from err
    record = {**asdict(run), "wall_time": time.time() - started, "env_steps": int(evaluations["timesteps"][-1]), "threads": threads}
    (folder / RUN_FILE).write_text(json.dumps(record, indent=1) + "\n")
    return record


def finished(run: Run, out: Path) -> bool:
    return (run.folder(out) / RUN_FILE).is_file()


def run_all(runs: list[Run], out: Path, settings: Settings, args: argparse.Namespace) -> list[str]:
    """Runs what is not finished; returns one line per run that failed (the others go on)."""
    todo = [r for r in runs if not finished(r, out)]
    print(f"{len(runs) - len(todo)} of {len(runs)} runs already finished; {len(todo)} to run", flush=True)
    failures = []

    def report(run: Run, outcome) -> None:
        if isinstance(outcome, Exception):
            failures.append(str(outcome))
            print(f"FAILED {outcome}", flush=True)
        else:
            print(f"finished {run.algo} on {run.env}, seed {run.seed}: {outcome['wall_time'] / 60:.1f} min", flush=True)

    if not todo:
        return failures
    if args.ray:
        try:
            import ray
        except ImportError:
            sys.exit("error: --ray needs Ray: pip install 'sb3-ed[ray]'")
        ray.init(address=None if args.ray == "local" else args.ray, ignore_reinit_error=True)
        task = ray.remote(num_cpus=args.threads)(execute)
        pending = {task.remote(r, out.resolve(), settings, args.threads): r for r in todo}
        while pending:
            (done,), _ = ray.wait(list(pending))
            run = pending.pop(done)
            try:
                report(run, ray.get(done))
            except ray.exceptions.RayTaskError as err:
                report(run, RuntimeError(str(err.cause)))
        return failures
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(execute, r, out, settings, args.threads): r for r in todo}
        for future in as_completed(futures):
            try:
                report(futures[future], future.result())
            except RuntimeError as err:
                report(futures[future], err)
    return failures


def link_logs(runs: list[Run], out: Path) -> None:
    """``OUT/logs/<algo>/<env>_<seed+1>`` -> each finished run: one rl_zoo3 log folder of all seeds."""
    for run in runs:
        if not finished(run, out):
            continue
        link = out / "logs" / run.algo / f"{run.env}_{run.seed + 1}"
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(run.zoo_folder(out), link.parent), target_is_directory=True)


def read_evaluations(path: Path, remedy: str) -> dict[str, np.ndarray]:
    """The ``timesteps`` and ``results`` of an SB3 ``evaluations.npz``.

    :raises SystemExit: one line naming ``path``, where it is missing, unreadable or lacks them
    """
    try:
        with np.load(path) as evaluations:
            return {key: evaluations[key] for key in ("timesteps", "results")}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise SystemExit(f"error: cannot read {path} ({err}); {remedy}") from err


def load_results(runs: list[Run], out: Path) -> dict[str, dict[str, list[dict]]]:
    """``results[env][algo]``: per finished seed, its curve, final return, wall time and steps."""
    results: dict[str, dict[str, list[dict]]] = {}
    for run in runs:
        if not finished(run, out):
            continue
        remedy = f"delete {run.folder(out)} to run it again"
        record = read_record(run.folder(out) / RUN_FILE, remedy)
        evaluations = read_evaluations(run.zoo_folder(out) / "evaluations.npz", remedy)
        curve = evaluations["results"].mean(axis=1)
        results.setdefault(run.env, {}).setdefault(run.algo, []).append(
            {"seed": run.seed, "steps": evaluations["timesteps"], "returns": curve, "final": float(curve[-1]), **record}
        )
    return results


def describe(finding: tuple) -> str:
    """A finding in words: ``ed_ppo beats ars``, ``ed_ppo is on par with dfa_ppo``, ``dfa_ppo is the
    weakest method``."""
    _, relation, a, b = finding
    return {"weakest": f"{a} is the weakest method", "on par": f"{a} is on par with {b}"}.get(relation, f"{a} {relation} {b}")


# where Welch's test has no p-value, "no significant difference" would read as "on par"
TOO_FEW = "not testable (Welch's test needs two or more seeds per algo, not all equal)"


def check_finding(finding: tuple, table: dict[str, list[dict]]) -> str | None:
    """One line judging a finding against one env's results (None where its algos did not run)."""
    task, relation, a, b = finding
    finals = {algo: [s["final"] for s in seeds] for algo, seeds in table.items()}
    if a not in finals or (b is not None and b not in finals):
        return None
    d = decimals([v for values in finals.values() for v in values])
    if relation == "weakest":
        means = {algo: np.mean(v) for algo, v in finals.items()}
        others = sorted((m, algo) for algo, m in means.items() if algo != a)
        if not others:
            return None
        runner_up = others[0][1]
        p = welch_p(finals[a], finals[runner_up])
        lowest = means[a] < others[0][0]
        verdict = TOO_FEW if math.isnan(p) else "reproduced" if lowest and p < SIGNIFICANCE else "not significant" if lowest else "not reproduced"
        return (f"{task}: {describe(finding)} — **{verdict}**: {a} {np.mean(finals[a]):.{d}f}, "
                f"next lowest {runner_up} {means[runner_up]:.{d}f} (Welch p {format_p(p)})")
    p = welch_p(finals[a], finals[b])
    diff = np.mean(finals[a]) - np.mean(finals[b])
    significant = p < SIGNIFICANCE
    if math.isnan(p):
        verdict = TOO_FEW
    elif relation == "on par":
        verdict = "reproduced (no significant difference)" if not significant else "not reproduced"
    else:
        wanted = diff > 0 if relation == "beats" else diff < 0
        verdict = "reproduced" if wanted and significant else "not reproduced" if significant else "not significant"
    return (f"{task}: {describe(finding)} — **{verdict}**: {np.mean(finals[a]):.{d}f} vs {np.mean(finals[b]):.{d}f} "
            f"(difference {diff:+.{d}f}, Welch p {format_p(p)})")


def write_report(results: dict[str, dict[str, list[dict]]], out: Path, settings: Settings, command: str, pending: list[Run] = ()) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [f"# RL comparison: {', '.join(results)}", "", f"Command: `{command}`", "",
             f"Settings: {json.dumps(asdict(settings))}. Final return: the mean of the last evaluation "
             f"({settings.eval_episodes} deterministic episodes) of each run.", ""]
    if pending:
        todo = ", ".join(f"{algo} on {env} ({n})" for (algo, env), n in Counter((r.algo, r.env) for r in pending).items())
        lines += [f"**Partial**: {len(pending)} runs not finished yet: {todo}. The same command runs them.", ""]
    fig, axes = plt.subplots(1, max(1, len(results)), figsize=(5 * max(1, len(results)), 4), squeeze=False)
    for (env, table), summary_ax in zip(results.items(), axes[0]):
        finals = {algo: [s["final"] for s in seeds] for algo, seeds in table.items()}
        d = decimals([v for values in finals.values() for v in values])
        minutes = {algo: np.mean([s["wall_time"] for s in seeds]) / 60 for algo, seeds in table.items()}
        extra = {
            "per seed": {algo: ", ".join(f"{s['final']:.{d}f}" for s in sorted(seeds, key=lambda s: s["seed"])) for algo, seeds in table.items()},
            # two figures: a tiny run's 0.1 minutes would print as 0
            "wall time / run (min)": {algo: f"{m:.{decimals([m], 2)}f}" for algo, m in minutes.items()},
            "env steps": {algo: f"{int(np.mean([s['env_steps'] for s in seeds])):,}" for algo, seeds in table.items()},
        }
        lines += [f"## {env}", ""]
        if BASELINE in finals:
            lines.append(welch_table(finals, BASELINE, label="algo", value_name="final return", digits=d, extra=extra))
        else:
            # no ED-PPO to test against: the same table without the Welch columns
            lines += ["| algo | final return (mean ± std) | n | " + " | ".join(extra) + " |", "| --- " * (3 + len(extra)) + "|"]
            lines += [f"| {algo} | {mean_std(v, d)} | {len(v)} | " + " | ".join(column[algo] for column in extra.values()) + " |" for algo, v in finals.items()]
        curve_file = f"learning_curves_{env}.png"
        lines += ["", f"![{env}]({curve_file})", ""]
        fig_env, ax = plt.subplots(figsize=(7, 4.5))
        for algo, seeds in table.items():
            plot_band(ax, seeds[0]["steps"], [s["returns"] for s in seeds], algo)
        ax.set(xlabel="env steps", ylabel="evaluation return", title=f"{env} (mean; band: min-max over seeds)")
        ax.legend()
        ax.grid(alpha=0.3)
        fig_env.tight_layout()
        fig_env.savefig(out / curve_file, dpi=110)
        plt.close(fig_env)
        names = list(finals)
        summary_ax.bar(names, [np.mean(v) for v in finals.values()], yerr=[np.std(v, ddof=1) if len(v) > 1 else 0 for v in finals.values()], capsize=3)
        summary_ax.set_title(env)
        summary_ax.tick_params(axis="x", rotation=60)
    axes[0][0].set_ylabel("final return (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(out / "summary.png", dpi=110)
    plt.close(fig)
    lines += ["![summary](summary.png)", ""]
    if (out / "NOTES.md").is_file():
        lines += ["The budget, how the runs are kept, and the history of these measurements: [NOTES.md](NOTES.md).", ""]
    lines += ["## The paper's findings, one by one", ""]
    for finding in FINDINGS:
        envs = [env for env in results if env.startswith(finding[0]) or f"-{finding[0]}" in env]
        checks = [check_finding(finding, results[env]) for env in envs]
        for env, check in zip(envs, checks):
            if check is not None:
                lines.append(f"- {check} ({env})")
        if not any(checks):
            lines.append(f"- {finding[0]}: {describe(finding)} — not run here")
    text = "\n".join(lines) + "\n"
    (out / "report.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    """Runs the comparison (what is not finished yet), then writes the report.

    :raises SystemExit: an unknown env or algo, one named twice, a grid that ``--skip`` empties,
        ``--steps`` below ``--eval-freq``, a results folder of other settings (or none, under
        ``--report-only``), ``--ray`` without Ray (each one line)
    """
    args = parser().parse_args(argv)
    runs = check_grid(args)
    settings = Settings(args.steps, args.eval_freq, args.eval_episodes, tuple(args.hyperparams))
    if args.report_only and not (args.out / SETTINGS_FILE).is_file():
        sys.exit(f"error: no finished runs in {args.out} yet (it holds no {SETTINGS_FILE})")
    check_settings(args.out, settings)
    failures = [] if args.report_only else run_all(runs, args.out, settings, args)
    link_logs(runs, args.out)
    results = load_results(runs, args.out)
    if not results:
        sys.exit(f"error: no finished runs in {args.out} yet")
    # the command that makes these runs: "the same command runs them" must not name --report-only
    shown = [a for a in (argv if argv is not None else sys.argv[1:]) if not (len(a) > 3 and "--report-only".startswith(a))]
    command = "python -m sb3_ed.compare " + " ".join(shown)
    print(write_report(results, args.out, settings, command, [r for r in runs if not finished(r, args.out)]))
    print(f"report written to {args.out / 'report.md'}")
    if failures:
        sys.exit(f"error: {len(failures)} run(s) failed: " + "; ".join(failures))


if __name__ == "__main__":
    main()
