"""Keeping the pictures and tables of big layers readable (NumPy only, no matplotlib).

A report of an LSTM(128) on 40 steps would otherwise draw 128 tangled lines, label 40
ticks on a panel two inches wide and print 60-number input vectors in one table cell.
These pure functions decide what to show instead; the plots and the report use them.

``tick_step(lo, hi, max_ticks)``
    the smallest step ``s`` of the series 1, 2, 5, 10, 20, 50, ... whose multiples in
    ``[lo, hi]`` number at most ``max_ticks``;
``max_ticks(axis_inches, lo, hi, vertical)``
    how many labels fit on an axis that long: a horizontal label takes
    ``6.5 pt * characters + 12 pt`` (10-point digits are about 0.64 em wide, plus a gap), a
    vertical one ``16 pt`` (its 10-point line plus a gap); never fewer than 2, never more
    than ``cap`` (10, as before);
``tick_values(lo, hi, axis_inches, vertical)``
    the multiples of that step in ``[lo, hi]``: the integer positions to label (none when
    the range holds no integer);
``top_units(values, k)``
    for ``values`` of shape ``(T, units)``, the ``k`` units with the largest
    ``max_t |values[t, unit]|``, largest first (ties: lower index first; a unit holding a
    NaN counts as the largest); all units in index order when there are at most ``k``;
``units_caption(shown, total, quantity)``
    "all 8 units" or "top 8 of 128 units by max |h|";
``elide(v, digits, limit)``
    a vector written as ``[0.1234, ...]``, cut after ``limit`` values with the count of
    the rest, so one input vector does not fill a page width.
"""
import math

import numpy as np

TOP_UNITS = 8          # lines drawn in a "per unit" panel
MAX_TICKS = 10
SHOWN_VALUES = 12      # values of a long input vector written out in the report


def tick_step(lo, hi, max_ticks):
    """The smallest 1-2-5 step whose multiples in ``[lo, hi]`` are at most ``max_ticks``."""
    if isinstance(max_ticks, bool) or not isinstance(max_ticks, (int, np.integer)) or max_ticks < 1:
        raise ValueError(f"max_ticks={max_ticks!r} must be at least 1.")
    lo, hi = math.ceil(lo), math.floor(hi)
    step = 1
    for decade in range(0, 19):
        for m in (1, 2, 5):
            step = m * 10 ** decade
            if _count(lo, hi, step) <= max_ticks:
                return step
    return step


def _count(lo, hi, step):
    """How many multiples of ``step`` lie in the integer range ``[lo, hi]``."""
    return max(0, hi // step - (-(-lo // step)) + 1)


def _label_chars(lo, hi):
    return max(len(str(int(v))) for v in (math.ceil(lo), math.floor(hi)))


def max_ticks(axis_inches, lo, hi, vertical=False, cap=MAX_TICKS):
    """How many tick labels fit on an axis ``axis_inches`` long whose values run lo..hi."""
    per_label = 16.0 if vertical else 6.5 * _label_chars(lo, hi) + 12.0    # points
    return int(max(2, min(cap, (72.0 * axis_inches) // per_label)))


def tick_values(lo, hi, axis_inches, vertical=False, cap=MAX_TICKS):
    """The integer positions to label on an axis from ``lo`` to ``hi``, ``axis_inches`` long."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or math.ceil(lo) > math.floor(hi):
        return np.zeros(0, dtype=int)                # no integer to label
    step = tick_step(lo, hi, max_ticks(axis_inches, lo, hi, vertical, cap))
    first = -(-math.ceil(lo) // step) * step
    return np.arange(first, math.floor(hi) + 1, step, dtype=int)


def top_units(values, k=TOP_UNITS):
    """Indices of the ``k`` units of ``values`` ``(T, units)`` with the largest max ``|value|``."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"top_units expects values of shape (steps, units); received {values.shape}.")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"top={k!r} must be a positive integer: how many units to draw.")
    n = values.shape[1]
    if n <= k:
        return np.arange(n)
    peak = np.abs(values).max(axis=0) if values.shape[0] else np.zeros(n)
    peak = np.where(np.isnan(peak), np.inf, peak)
    return np.argsort(-peak, kind="stable")[:k]


def units_caption(shown, total, quantity):
    """How a plot says which units it draws."""
    if shown >= total:
        return f"all {total} unit{'s' if total != 1 else ''}"
    return f"top {shown} of {total} units by max |{quantity}|"


def elide(v, digits=4, limit=SHOWN_VALUES):
    """``[a, b, ...]``: all values when there are at most ``limit``, else the first ``limit``
    and how many there are, e.g. ``[0.1000, 0.2000, ...] (60 values)``."""
    v = np.atleast_1d(np.asarray(v, dtype=float)).ravel()
    head = ", ".join(f"{a:.{digits}f}" for a in v[:limit])
    if v.size <= limit:
        return f"[{head}]"
    return f"[{head}, ...] ({v.size} values, the first {limit} shown)"
