"""Record a video of a trained agent: rl_zoo3's ``record_video`` with the package's algorithms::

    python -m sb3_ed.record_video --algo ed_ppo --env CartPole-v1 -f logs -n 500 -o videos

Needs moviepy (as rl_zoo3's own tool does) and an env that renders RGB frames.
"""

from __future__ import annotations

import runpy

from .zoo import run_tool


def main(argv: list[str] | None = None) -> None:
    """Runs ``python -m rl_zoo3.record_video`` on ``argv`` (default: ``sys.argv[1:]``).

    :raises SystemExit: as :func:`sb3_ed.enjoy.main`
    """
    # rl_zoo3's record_video is a script (its work is under `if __name__ == "__main__"`)
    run_tool(lambda: runpy.run_module("rl_zoo3.record_video", run_name="__main__"), argv, "python -m sb3_ed.record_video")


if __name__ == "__main__":
    main()
