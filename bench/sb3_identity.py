"""Stable-Baselines3's own identity tests (``tests/test_identity.py`` of its repository), run with
the package's policies in place of ``MlpPolicy``: how many of its A2C and PPO cases pass, at the
settings the tests use (no tuning), for each policy and for MlpPolicy itself.

The test file is SB3's, from a checkout of its repository (not copied here):

    python bench/sb3_identity.py PATH/TO/stable-baselines3/tests/test_identity.py

Last line: passed per policy, e.g. ``MlpPolicy 8/8, EDPolicy 8/8, DaleBPPolicy 8/8, DFAPolicy 8/8``.

One fixed seed per case decides much of the outcome (MlpPolicy passes the MultiBinary cases at 2 of
10 seeds): ``--seeds 0 1 2 ...`` runs the file once per seed, with that seed in place of the one the
file gives each model, and counts the passes over all of them.
"""

import argparse
import functools
import sys

import pytest
from stable_baselines3 import A2C, PPO

from sb3_ed import DaleBPPolicy, DFAPolicy, EDPolicy

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("test_file", help="SB3's tests/test_identity.py")
parser.add_argument("--policies", nargs="+", default=["MlpPolicy", "EDPolicy", "DaleBPPolicy", "DFAPolicy"])
parser.add_argument("--seeds", nargs="+", type=int, help="run every case at each of these seeds (default: the file's own)")
args = parser.parse_args()
POLICIES = {"EDPolicy": EDPolicy, "DaleBPPolicy": DaleBPPolicy, "DFAPolicy": DFAPolicy}


def seeded(init, seed):
    @functools.wraps(init)
    def init_with_seed(self, *args, **kwargs):
        init(self, *args, **{**kwargs, "seed": seed})

    return init_with_seed


class Outcomes:
    """A pytest plugin that serves ``policy`` for the name MlpPolicy (and ``seed``, where given, to
    every model) and records each case."""

    def __init__(self, policy, seed=None):
        self.policy, self.seed, self.passed, self.failed = policy, seed, [], []

    def pytest_configure(self, config):
        self.saved = {algo: (dict(algo.policy_aliases), algo.__init__) for algo in (A2C, PPO)}
        for algo in (A2C, PPO):
            if self.policy != "MlpPolicy":
                algo.policy_aliases["MlpPolicy"] = POLICIES[self.policy]
            if self.seed is not None:
                algo.__init__ = seeded(algo.__init__, self.seed)

    def pytest_unconfigure(self, config):
        for algo, (aliases, init) in self.saved.items():
            algo.policy_aliases.clear()
            algo.policy_aliases.update(aliases)
            algo.__init__ = init

    def pytest_runtest_logreport(self, report):
        if report.when == "call":
            (self.passed if report.passed else self.failed).append(report.nodeid.split("::")[-1])


results = {}
for policy in args.policies:
    passed, failed = [], []
    for seed in args.seeds or [None]:
        outcomes = Outcomes(policy, seed)
        # the actor-critic cases: the package's policies are ActorCriticPolicy subclasses
        pytest.main([args.test_file, "-q", "-p", "no:cacheprovider", "-k", "A2C or PPO"], plugins=[outcomes])
        passed += outcomes.passed
        failed += outcomes.failed
        at = "" if seed is None else f" (seed {seed})"
        print(f"{policy}{at}: passed {sorted(outcomes.passed)}; failed {sorted(outcomes.failed)}", flush=True)
    results[policy] = passed, failed
print(", ".join(f"{p} {len(passed)}/{len(passed) + len(failed)}" for p, (passed, failed) in results.items()))
sys.exit(0)
