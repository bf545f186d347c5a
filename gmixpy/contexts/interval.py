"""Interval contexts (gmix's IntervalContext): the last few bytes, each reduced to a few bits.

A byte maps to byte // divisor (16 -> 4 bits, 32 -> 3 bits, 64 -> 2 bits); the reduced symbols are shifted into
a register masked to `bits` bits.  Refreshed at each byte boundary.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from .basic import LAST_BYTE


class IntervalParams(NamedTuple):
    slot: np.ndarray   # int32[n], context slot each interval context writes (and keeps its register in)
    map: np.ndarray    # int64[n, 256], byte -> reduced symbol
    shift: np.ndarray  # int64[n], bits per symbol
    mask: np.ndarray   # int64[n], (1 << bits) - 1


def interval_new(contexts, slots) -> IntervalParams:
    n = len(contexts)
    params = IntervalParams(np.zeros(n, np.int32), np.zeros((n, 256), np.int64), np.zeros(n, np.int64),
                            np.zeros(n, np.int64))
    for i, c in enumerate(contexts):
        symbols = np.arange(256) // c.divisor
        shift = 1
        while (1 << shift) <= symbols.max():
            shift += 1
        params.slot[i] = slots[c.name]
        params.map[i] = symbols
        params.shift[i] = shift
        params.mask[i] = (1 << c.bits) - 1
    return params


@njit(inline="always")
def interval_update(p, s):
    c = s.contexts
    last = c[LAST_BYTE]
    for i in range(p.slot.shape[0]):
        slot = p.slot[i]
        c[slot] = p.mask[i] & ((c[slot] << p.shift[i]) + p.map[i, last])
