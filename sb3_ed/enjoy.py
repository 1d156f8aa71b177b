"""Watch or evaluate a trained agent: rl_zoo3's ``enjoy`` with the package's algorithms::

    python -m sb3_ed.enjoy --algo ed_ppo --env CartPole-v1 -f logs --no-render -n 1000

Every rl_zoo3 flag works (``--no-render``, ``-n``, ``--load-best``, ``--load-checkpoint``,
``--exp-id``, ``--deterministic`` ...), also for models trained on the JAX simulators' ids (with
``--no-render``: they do not render).
"""

from __future__ import annotations

import rl_zoo3.enjoy

from .zoo import run_tool


def main(argv: list[str] | None = None) -> None:
    """Runs ``python -m rl_zoo3.enjoy`` on ``argv`` (default: ``sys.argv[1:]``).

    :raises SystemExit: an unknown ``--env`` or ``--algo``, no trained model of ``--algo`` in the
        folder, an unreadable model file, a model trained by another algorithm's policy, or a JAX env without ``--no-render``
        (each one line saying what was found and what was expected)
    """
    run_tool(rl_zoo3.enjoy.enjoy, argv, "python -m sb3_ed.enjoy")


if __name__ == "__main__":
    main()
