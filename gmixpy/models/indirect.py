"""Indirect models (gmix's Indirect): context -> bit-history states -> learned logits.

Each model hashes its context slot with the bits of the current byte seen so far into a table of
2**table_bits * 256 + 1 entries (the +1 spreads byte-aligned contexts, as gmix).  An entry holds two one-byte
states: a nonstationary bit-history state and a run-map state (contexts/states.py).  Each state selects a learned
logit, and those two logits are the model's two mixer inputs.

predict (`indirect_predict`, every bit, after the contexts are refreshed): an input is active only when its
    entry has been seen and its logit is not exactly 0, as gmix (inactive inputs are 0 and so add nothing).
learn (`indirect_learn`, after the bit, only when learning): nudge both logits towards the bit, then step both
    states.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from .._values import first_outside
from ..contexts.basic import BIT_CONTEXT
from ..contexts.states import NONSTATIONARY, RUN_MAP
from ..intrinsics import SCRATCH, prefetch, scratch
from ..layout import table_offsets
from ..mixer.sigmoid import logistic_many

_M32 = 0xFFFFFFFF


@njit(inline="always")
def mod32(a, d, inverse):
    """a % d for 0 <= a < 2**32 and 0 < d < 2**32, given inverse = 1.0 / d (float64).  Integer division costs
    tens of cycles; a float64 quotient (within one of the true one for these ranges: its relative error is below
    2**-51) and a correction cost a few, and the result is exact."""
    q = np.int64(np.float64(a) * inverse)
    r = a - q * d
    if r < 0:
        r += d
    elif r >= d:
        r -= d
    return r


class IndirectParams(NamedTuple):
    slot: np.ndarray           # int32[n], context slot read by each model
    table_offset: np.ndarray   # int64[n], first entry of each model's table in IndirectMemory.states
    table_size: np.ndarray     # int64[n], entries per table: 2**table_bits * 256 + 1
    inverse_size: np.ndarray   # float64[n], 1.0 / table_size
    learning_rate: np.ndarray  # float32[n], the rate a logit settles at
    limit: np.ndarray          # int64[n], updates of a logit during which its rate is 1/(updates + 1.5) if larger
    input_index: np.ndarray    # int32[n], mixer input of the nonstationary logit; the run-map logit is the next


class IndirectMemory(NamedTuple):  # long-term memory
    states: np.ndarray         # uint8[sum(table_size), 2]: [nonstationary ^ 255, run_map]; 0 in both = never seen
    # (the nonstationary state is stored xor 255 so that an untouched entry is 0 and costs no resident memory)
    logits: np.ndarray         # float32[n, 2, 256], per model: nonstationary state -> logit, run-map state -> logit
    counts: np.ndarray         # uint16[n, 2, 256], updates of each logit, saturating at the model's limit (all 0
    #                            for gmix's models, whose limit is 0)


class IndirectState(NamedTuple):  # short-term memory
    entry: np.ndarray          # int64[n], table entry each model read this bit (learn updates the same entry)
    PER_BIT = ("entry",)  # fields that change within a byte (see generate.py)


def indirect_new(models, slots, input_index) -> tuple[IndirectParams, IndirectMemory, IndirectState]:
    n = len(models)
    sizes = np.array([(1 << m.table_bits) * 256 + 1 for m in models], np.int64)
    offsets = table_offsets(sizes)
    params = IndirectParams(
        slot=np.array([slots[m.context] for m in models], np.int32),
        table_offset=offsets,
        table_size=sizes,
        inverse_size=1.0 / sizes.astype(np.float64),
        learning_rate=np.array([m.learning_rate for m in models], np.float32),
        limit=np.array([m.limit for m in models], np.int64),
        input_index=np.array(input_index, np.int32),
    )
    memory = IndirectMemory(np.zeros((int(sizes.sum()), 2), np.uint8), np.zeros((n, 2, 256), np.float32),
                            np.zeros((n, 2, 256), np.uint16))
    return params, memory, IndirectState(np.zeros(n, np.int64))


def indirect_check(m: IndirectMemory, s: IndirectState) -> str | None:
    """The first stored value out of range, or None.  Any byte is a valid pair of states (both tables have 256
    rows); the entry read this bit is an index into the shared table."""
    return first_outside([("stm.indirect.entry", s.entry, 0, m.states.shape[0] - 1)])


@njit(inline="always")
def indirect_predict(p, m, s, contexts, inputs):
    bit_context = contexts[BIT_CONTEXT]
    n = p.slot.shape[0]
    # Pass 1 only computes the entries and prefetches them: its iterations are short and independent, so the
    # cache misses of all models are in flight together instead of one after another.  Within a byte, the
    # next bit's entry is bit_context + 1 or + 2 entries further (the same cache line, or the next): it is
    # prefetched now, a whole bit ahead.
    ahead = 2 * (bit_context + 1) if bit_context < 127 else 0
    for i in range(n):
        entry = p.table_offset[i] + mod32(((contexts[p.slot[i]] << 8) & _M32) + bit_context, p.table_size[i],
                                          p.inverse_size[i])
        s.entry[i] = entry
        prefetch(m.states, 2 * entry)
        if ahead:
            prefetch(m.states, 2 * entry + ahead)
    for i in range(n):
        entry = s.entry[i]
        k = p.input_index[i]
        nonstationary = m.states[entry, 0] ^ 255
        inputs[k] = m.logits[i, 0, nonstationary] if nonstationary != 255 else np.float32(0.0)
        run = m.states[entry, 1]
        inputs[k + 1] = m.logits[i, 1, run] if run != 0 else np.float32(0.0)


@njit(inline="always")
def _learned_state(m, entry):
    """The nonstationary state learning updates at `entry` (stored xor 255, so that a zeroed table reads 255,
    "never seen"; a first visit starts from state 0)."""
    state = m.states[entry, 0] ^ 255
    return 0 if state == 255 else state


@njit(inline="always")
def _adaptive(m, i, k, state, rate, limit):
    """The rate for logit (i, k, state) this update: 1/(updates + 1.5) while that is above `rate` and the logit
    has had fewer than `limit` updates (counted here), else `rate`."""
    count = np.int64(m.counts[i, k, state])
    if count < limit:
        m.counts[i, k, state] = count + 1
        adaptive = np.float32(1.0) / (np.float32(count) + np.float32(1.5))
        if adaptive > rate:
            return adaptive
    return rate


@njit(inline="always")
def indirect_learn(p, m, s, bit):
    fbit = np.float32(bit)
    probability = scratch()
    n = p.slot.shape[0]
    half = SCRATCH // 2
    for first in range(0, n, half):
        last = min(n, first + half)
        # Every logit's logistic first, 8 at a time (`logistic_many`), then the updates.  No two logits read
        # here are the same (each model has its own), so this is the same as updating model by model.
        for i in range(first, last):
            entry = s.entry[i]
            probability[2 * (i - first)] = m.logits[i, 0, _learned_state(m, entry)]
            probability[2 * (i - first) + 1] = m.logits[i, 1, m.states[entry, 1]]
        logistic_many(probability, 2 * (last - first))
        for i in range(first, last):
            entry = s.entry[i]
            rate = p.learning_rate[i]
            nonstationary = _learned_state(m, entry)
            run = m.states[entry, 1]
            rate0 = rate
            rate1 = rate
            if p.limit[i]:
                rate0 = _adaptive(m, i, 0, nonstationary, rate, p.limit[i])
                rate1 = _adaptive(m, i, 1, run, rate, p.limit[i])
            logit = m.logits[i, 0, nonstationary]
            m.logits[i, 0, nonstationary] = logit + (fbit - probability[2 * (i - first)]) * rate0
            m.states[entry, 0] = NONSTATIONARY[nonstationary, bit] ^ 255
            logit = m.logits[i, 1, run]
            m.logits[i, 1, run] = logit + (fbit - probability[2 * (i - first) + 1]) * rate1
            m.states[entry, 1] = RUN_MAP[run * 2 + bit]
