"""What the package's command lines share."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from .checks import positive_finite


def positive(kind: type = int) -> Callable[[str], int | float]:
    """An argparse ``type``: the text read as ``kind`` (``int`` or ``float``), refused unless it is
    finite and > 0, so a count, a budget or a step size of 0, below 0, NaN or inf stops with
    argparse's one-line error instead of being read as "the default" or failing deep inside."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None
        if not positive_finite(value):
            raise argparse.ArgumentTypeError(f"must be finite and > 0, got {text}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse
