"""Value checks for memories read from a file: the shared vocabulary of every family's `*_check` function.

A model file's checksum proves that it was not damaged by accident, not that its values make sense: the compiled
kernels run without bounds checks, so a stored index, pointer or loop bound out of its range would make them read
or write outside their arrays.  Every family therefore states the invariants of its memories as rows
(name, array, lowest, highest) and `first_outside` reports the first row broken.  min() and max() are two
vectorised passes with no temporary array, so a 2000 MB table checks in about a second.
"""
from __future__ import annotations

import numpy as np


def within(array: np.ndarray, low, high) -> bool:
    """True when low <= every element <= high (inclusive; an empty array is within anything)."""
    if array.size == 0:
        return True
    return bool(array.min() >= low) and bool(array.max() <= high)


def first_outside(rows) -> str | None:
    """The first problem among rows of (dotted name, array, low, high), or None when all are within range."""
    for name, array, low, high in rows:
        if not within(array, low, high):
            return f"{name} out of range"
    return None


def first_not_finite(tree, prefix: str) -> str | None:
    """The dotted name of the first float array in a NamedTuple tree holding NaN or an infinity, or None.  The
    kernels' logistic and logit are NaN-safe, but such a value would spread through every later prediction."""
    for name, value in zip(tree._fields, tree):
        path = f"{prefix}.{name}"
        if isinstance(value, np.ndarray):
            if value.dtype.kind == "f" and value.size and not np.isfinite(value).all():
                return f"{path} not finite"
        else:
            found = first_not_finite(value, path)
            if found:
                return found
    return None
