"""What the package's command lines share."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from .checks import SEED_RANGE, positive_finite


def _number(kind: type, ok: Callable[[float], bool], expected: str, name: str) -> Callable[[str], int | float]:
    """An argparse ``type``: the text read as ``kind``, refused with argparse's one-line error
    unless ``ok`` holds for it (``expected`` says what it must be)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text}")
        return value

    parse.__name__ = name
    return parse


def positive(kind: type = int) -> Callable[[str], int | float]:
    """An argparse ``type``: the text read as ``kind`` (``int`` or ``float``), refused unless it is
    finite and > 0, so a count, a budget or a step size of 0, below 0, NaN or inf stops with
    argparse's one-line error instead of being read as "the default" or failing deep inside."""
    return _number(kind, positive_finite, "finite and > 0", f"positive {kind.__name__}")


# An argparse ``type``: an integer seed in :data:`~sb3_ed.checks.SEED_RANGE`
seed = _number(int, lambda value: value in SEED_RANGE, "from 0 to 2**32 - 1", "seed")


def output_folder(text: str) -> Path:
    """An argparse ``type``: a folder to write into, which need not exist yet. Refused with argparse's
    one-line error where the path is empty, or where it, or the nearest existing path above it, is a file or a
    symbolic link that cannot be followed (``mkdir`` would fail half-way, after the command had started) or a
    folder this user cannot write into."""
    if not text.strip():
        # Path("") is the current folder: an empty --out (an unset shell variable) would write there
        raise argparse.ArgumentTypeError("an empty path; name the folder")
    path = Path(text)
    existing = next(p for p in (path, *path.parents) if os.path.lexists(p))
    try:
        os.stat(existing)
    except OSError as err:  # a broken symbolic link, or a loop of them: mkdir would fail on it
        raise argparse.ArgumentTypeError(f"{existing}: a symbolic link that cannot be followed ({err.strerror})" + ("" if existing == path else f" (in {text})")) from None
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{existing} is a file, not a folder" + ("" if existing == path else f" (in {text})"))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write into {existing}" + ("" if existing == path else f" (to create {text})"))
    return path
