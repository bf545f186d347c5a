"""Skip contexts (gmix's SkipContext): a hash of the recent bytes at chosen distances.

Refreshed at each byte boundary, before any model reads them.  Bytes are packed most-distant-last
(offsets (0, 1) -> last_byte << 8 | second_last) into a 64-bit key and hashed with MurmurHash3 as gmix does.
Contexts of more than 7 bytes (high orders, which gmix does not have) hash each group of 7 bytes the same way and
chain the group hashes.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from .basic import recent_byte
from .murmur import murmur_u64


class SkipParams(NamedTuple):
    slot: np.ndarray     # int32[n], context slot each skip context writes
    offsets: np.ndarray  # int32[n, MAX_OFFSETS], distances (0 = last byte); only the first count[i] are used
    count: np.ndarray    # int32[n], how many offsets each context hashes (1..MAX_OFFSETS)


MAX_OFFSETS = 32


def skip_new(contexts, slots) -> SkipParams:
    n = len(contexts)
    params = SkipParams(np.zeros(n, np.int32), np.zeros((n, MAX_OFFSETS), np.int32), np.zeros(n, np.int32))
    for i, c in enumerate(contexts):
        params.slot[i] = slots[c.name]
        params.offsets[i, : len(c.offsets)] = c.offsets
        params.count[i] = len(c.offsets)
    return params


@njit(inline="always")
def skip_update(p, s):
    for i in range(p.slot.shape[0]):
        key = np.int64(0)
        h = np.int64(0)
        for j in range(p.count[i]):
            key = (key << 8) + recent_byte(s, p.offsets[i, j])
            if j % 7 == 6 and j + 1 < p.count[i]:  # a full group with more to come: chain its hash
                h = murmur_u64(((h & 0xFFFFFF) << 32) ^ murmur_u64(key))
                key = np.int64(0)
        s.contexts[p.slot[i]] = murmur_u64(key) if p.count[i] <= 7 else murmur_u64(((h & 0xFFFFFF) << 32)
                                                                                     ^ murmur_u64(key))
