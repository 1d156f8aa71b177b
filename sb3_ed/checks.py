"""Checks of the options a user types: each refuses a bad value with one error that names the
option, before anything is built from it."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable


def check_flag(name: str, value) -> None:
    """Refuses anything but True or False for an on/off option (a string such as ``"no"`` would
    count as on).

    :raises TypeError: ``value`` is not a bool
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")


def check_number(name: str, value, expected: str, ok: Callable[[float], bool] = math.isfinite, integer: bool = False) -> None:
    """Refuses ``value`` unless it is a real number (an integer where ``integer``) for which ``ok``
    holds. True and False are refused although Python counts them as 1 and 0, and so is a string
    such as ``"0.1"``, which would otherwise fail later with an error that does not name the option,
    or be repeated (``"0.1" * 3``).

    :param name: the option, for the message
    :param expected: what the option must be, for the message (e.g. ``"finite and > 0"``)
    :param ok: the range test, called on a real number (default: finite)
    :raises ValueError: ``value`` is not a number of the kind, or fails ``ok``
    """
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not ok(value):
        raise ValueError(f"{name} must be {expected}, got {value!r}")


# The seeds SB3 and numpy take (torch's generators take more, but a rule derives per-layer seeds
# from its own, which must stay within torch's 64 bits)
SEED_RANGE = range(2**32)


def positive_finite(value: float) -> bool:
    return 0 < value < math.inf


def non_negative_finite(value: float) -> bool:
    return 0 <= value < math.inf
