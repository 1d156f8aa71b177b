"""What every results report of the package shares: Welch's t-test tables and learning-curve plots."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def read_record(path: Path, remedy: str, keys: Sequence[str] = ()) -> dict:
    """The JSON object a report reads back from ``path`` (a run's record, a folder's settings).

    :param remedy: what the user can do about a bad file, for the message
    :param keys: keys the object must have
    :raises SystemExit: one line naming ``path``, where it is not a JSON object with ``keys``
    """
    try:
        record = json.loads(path.read_text())
        why = f"no {', '.join(keys)} in it"
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        record, why = None, str(err)
    if not isinstance(record, dict) or not all(key in record for key in keys):
        raise SystemExit(f"error: cannot read {path} ({why}); {remedy}")
    return record


def welch_p(values: Sequence[float], baseline: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances) of ``values`` against ``baseline``;
    NaN where either has fewer than two values or both have no spread."""
    from scipy import stats

    a, b = np.asarray(values, dtype=float), np.asarray(baseline, dtype=float)
    if len(a) < 2 or len(b) < 2 or (a.std() == 0 and b.std() == 0):
        return math.nan
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def decimals(values: Sequence[float], significant: int = 3) -> int:
    """Decimals that show the largest of ``values`` with ``significant`` figures (at least 0): returns
    in the thousands print whole, Craftax's returns of a few achievements keep their tenths
    (rounding 2.9 and 3.4 to "3" would hide the difference a table is for)."""
    largest = float(np.max(np.abs(values))) if len(values) else 0.0
    if largest == 0 or not math.isfinite(largest):
        return significant - 1
    return max(0, significant - 1 - math.floor(math.log10(largest)))


def mean_std(values: Sequence[float], digits: int) -> str:
    """``mean ± std`` (sample std; the mean alone for one value)."""
    a = np.asarray(values, dtype=float)
    return f"{a.mean():.{digits}f}" + (f" ± {a.std(ddof=1):.{digits}f}" if len(a) > 1 else "")


def format_p(p: float) -> str:
    return "n/a" if math.isnan(p) else f"{p:.2g}"


def welch_table(
    groups: Mapping[str, Sequence[float]],
    baseline: str,
    *,
    label: str,
    value_name: str,
    digits: int = 2,
    extra: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """A Markdown table: one row per group (first column headed ``label``) with its mean ± std, the difference of means to the
    ``baseline`` group, Welch's p against it, the number of values, and ``extra`` columns
    (``extra[column][group]``)."""
    extra = extra or {}
    base = np.asarray(groups[baseline], dtype=float)
    head = [label, f"{value_name} (mean ± std)", f"Δ vs {baseline}", f"Welch p vs {baseline}", "n", *extra]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, values in groups.items():
        if name == baseline:
            delta = p = "—"
        else:
            delta = f"{np.mean(values) - base.mean():+.{digits}f}"
            p = format_p(welch_p(values, base))
        cells = [name, mean_std(values, digits), delta, p, str(len(values)), *(column.get(name, "") for column in extra.values())]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_band(ax, x: Sequence[float], runs: Sequence[Sequence[float]], label: str) -> None:
    """The mean over runs as a line, their min-max as a band (runs of unequal length are cut to the
    shortest)."""
    length = min(len(r) for r in runs)
    values = np.array([r[:length] for r in runs], dtype=float)
    x = np.asarray(x[:length])
    ax.plot(x, values.mean(0), label=label)
    ax.fill_between(x, values.min(0), values.max(0), alpha=0.2)
