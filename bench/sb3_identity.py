"""Stable-Baselines3's own identity tests (``tests/test_identity.py`` of its repository), run with
the package's policies in place of ``MlpPolicy``: how many of its A2C and PPO cases pass, at the
settings the tests use (no tuning), for each policy and for MlpPolicy itself.

The test file is SB3's, from a checkout of its repository (not copied here):

    python bench/sb3_identity.py PATH/TO/stable-baselines3/tests/test_identity.py

Last line: passed per policy, e.g. ``MlpPolicy 8/8, EDPolicy 8/8, DaleBPPolicy 8/8, DFAPolicy 8/8``.
"""

import argparse
import sys

import pytest
from stable_baselines3 import A2C, PPO

from sb3_ed import DaleBPPolicy, DFAPolicy, EDPolicy

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("test_file", help="SB3's tests/test_identity.py")
parser.add_argument("--policies", nargs="+", default=["MlpPolicy", "EDPolicy", "DaleBPPolicy", "DFAPolicy"])
args = parser.parse_args()
POLICIES = {"EDPolicy": EDPolicy, "DaleBPPolicy": DaleBPPolicy, "DFAPolicy": DFAPolicy}


class Outcomes:
    """A pytest plugin that serves ``policy`` for the name MlpPolicy and records each case."""

    def __init__(self, policy):
        self.policy, self.passed, self.failed = policy, [], []

    def pytest_configure(self, config):
        self.saved = {algo: dict(algo.policy_aliases) for algo in (A2C, PPO)}
        if self.policy != "MlpPolicy":
            for algo in (A2C, PPO):
                algo.policy_aliases["MlpPolicy"] = POLICIES[self.policy]

    def pytest_unconfigure(self, config):
        for algo, aliases in self.saved.items():
            algo.policy_aliases.clear()
            algo.policy_aliases.update(aliases)

    def pytest_runtest_logreport(self, report):
        if report.when == "call":
            (self.passed if report.passed else self.failed).append(report.nodeid.split("::")[-1])


results = {}
for policy in args.policies:
    outcomes = Outcomes(policy)
    # the actor-critic cases: the package's policies are ActorCriticPolicy subclasses
    pytest.main([args.test_file, "-q", "-p", "no:cacheprovider", "-k", "A2C or PPO"], plugins=[outcomes])
    results[policy] = outcomes
    print(f"{policy}: passed {sorted(outcomes.passed)}; failed {sorted(outcomes.failed)}", flush=True)
print(", ".join(f"{p} {len(o.passed)}/{len(o.passed) + len(o.failed)}" for p, o in results.items()))
sys.exit(0)
