"""Skip contexts (gmix's SkipContext): a hash of the recent bytes at chosen distances.

Refreshed at each byte boundary, before any model reads them.  Bytes are packed most-distant-last
(offsets (0, 1) -> last_byte << 8 | second_last) into a 64-bit key and hashed with MurmurHash3 as gmix does.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from .basic import recent_byte
from .murmur import murmur_u64


class SkipParams(NamedTuple):
    slot: np.ndarray     # int32[n], context slot each skip context writes
    offsets: np.ndarray  # int32[n, 7], distances (0 = last byte); only the first count[i] are used
    count: np.ndarray    # int32[n], how many offsets each context hashes (1..7)


def skip_new(contexts, slots) -> SkipParams:
    n = len(contexts)
    params = SkipParams(np.zeros(n, np.int32), np.zeros((n, 7), np.int32), np.zeros(n, np.int32))
    for i, c in enumerate(contexts):
        params.slot[i] = slots[c.name]
        params.offsets[i, : len(c.offsets)] = c.offsets
        params.count[i] = len(c.offsets)
    return params


@njit(inline="always")
def skip_update(p, s):
    for i in range(p.slot.shape[0]):
        key = np.int64(0)
        for j in range(p.count[i]):
            key = (key << 8) + recent_byte(s, p.offsets[i, j])
        s.contexts[p.slot[i]] = murmur_u64(key)
