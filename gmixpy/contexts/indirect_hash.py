"""Indirect-hash contexts (gmix's IndirectHash, the double-indirect contexts).

outer context: the last `outer_order` bytes.  The table maps its hash to the last `inner_order` bytes that came
after that outer context the previous times it occurred; the context is a hash of those inner bytes, i.e. a
prediction of what follows, used as a context by an Indirect model and a mixer.

Updated at each byte boundary during predict, also when learning is off: gmix keeps the table with the model's
running state, so it is short-term memory here too.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from .._values import first_outside
from ..layout import table_offsets
from .basic import LAST_BYTE
from .murmur import murmur_u32, murmur_u64


class IndirectHashParams(NamedTuple):
    slot: np.ndarray          # int32[n], context slot written
    outer_mod: np.ndarray     # int64[n], 256 ** (outer_order - 1): keeps outer_order bytes in the register
    inner_mod: np.ndarray     # int64[n], 256 ** (inner_order - 1)
    table_offset: np.ndarray  # int64[n], start of each context's table in IndirectHashState.table
    table_size: np.ndarray    # int64[n], entries in each table


class IndirectHashState(NamedTuple):  # short-term memory (gmix keeps it in the model, not in LongTermMemory)
    table: np.ndarray         # uint32[sum(table_size)], outer hash -> inner bytes, 0 = never seen
    outer_context: np.ndarray  # int64[n], the last outer_order bytes
    outer_hash: np.ndarray    # int64[n], MurmurHash3 of outer_context
    PER_BIT = ()  # updated at byte boundaries only (see generate.py)


def indirect_hash_new(contexts, slots) -> tuple[IndirectHashParams, IndirectHashState]:
    n = len(contexts)
    sizes = np.array([1 << c.table_bits for c in contexts], np.int64)
    offsets = table_offsets(sizes)
    params = IndirectHashParams(
        slot=np.array([slots[c.name] for c in contexts], np.int32),
        outer_mod=np.array([1 << (8 * (c.outer_order - 1)) for c in contexts], np.int64),
        inner_mod=np.array([1 << (8 * (c.inner_order - 1)) for c in contexts], np.int64),
        table_offset=offsets,
        table_size=sizes,
    )
    state = IndirectHashState(np.zeros(int(sizes.sum()), np.uint32), np.zeros(n, np.int64), np.zeros(n, np.int64))
    return params, state


def indirect_hash_check(p: IndirectHashParams, s: IndirectHashState) -> str | None:
    """The first stored value out of range, or None: outer_hash picks the table entry (it is a 32-bit hash), and
    outer_context holds outer_order bytes."""
    rows = [("stm.indirect_hash.outer_hash", s.outer_hash, 0, 0xFFFFFFFF)]
    for i in range(p.slot.shape[0]):
        rows.append(("stm.indirect_hash.outer_context", s.outer_context[i:i + 1], 0, int(p.outer_mod[i]) * 256 - 1))
    return first_outside(rows)


@njit(inline="always")
def indirect_hash_update(p, s, contexts):
    last = contexts[LAST_BYTE]
    for i in range(p.slot.shape[0]):
        base = p.table_offset[i]
        size = p.table_size[i]
        # The inner bytes seen after the previous outer context gain the byte just seen.
        at = base + s.outer_hash[i] % size
        s.table[at] = ((np.int64(s.table[at]) % p.inner_mod[i]) << 8) + last
        s.outer_context[i] = ((s.outer_context[i] % p.outer_mod[i]) << 8) + last
        s.outer_hash[i] = murmur_u64(s.outer_context[i])
        contexts[p.slot[i]] = murmur_u32(np.int64(s.table[base + s.outer_hash[i] % size]))
