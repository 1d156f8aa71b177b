"""RL-Zoo training with the package's algorithms: ``python -m sb3_ed.train --algo ed_ppo --env HalfCheetah-v5``.

This is rl_zoo3's own trainer (every rl_zoo3 flag works: ``-n``, ``--seed``, ``-tb``,
``--eval-freq``, ``-optimize --n-trials --sampler tpe --storage --study-name``, ``--trial-id``,
``-i``, ``--progress`` ...) with ``ed_ppo``, ``ed_ppo_nondale``, ``dale_bp_ppo``, ``dfa_ppo`` and
``np_ppo`` added to its algorithm table and to its Optuna samplers (see :mod:`sb3_ed.zoo`). Hyperparameters
come from the package's ``zoo_configs/<algo>.yml`` unless ``--conf-file`` names another file;
``--algo ppo`` and ``--algo ars`` read the package's settings too, for comparisons on the same
settings.
"""

from __future__ import annotations

import rl_zoo3.train

from .allocator import retain_freed_memory
from .zoo import run_tool


def main(argv: list[str] | None = None) -> None:
    """Trains as ``python -m rl_zoo3.train`` would, on ``argv`` (default: ``sys.argv[1:]``).

    :raises SystemExit: an unknown ``--env`` or ``--algo`` (one line naming the valid ones),
        ``--trial-id`` without the study that holds it, a hyperparameter or policy option the
        model or env refuses (one line naming it), or a run that diverges (one line naming the
        learning rate)
    """
    retain_freed_memory()
    run_tool(rl_zoo3.train.train, argv, "python -m sb3_ed.train")


if __name__ == "__main__":
    main()
