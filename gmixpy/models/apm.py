"""Adaptive probability maps (APM, also called SSE): the final stage after the mixer network.

An APM refines the network's probability in a context: per context it keeps a curve of 33 probabilities over
the network's output logit (buckets 0.5 apart on [-8, 8]); the output is the curve interpolated at the logit.
Contexts that the network alone treats alike (the partial byte, the last bytes) get their own correction, which
is where an APM earns its keep: it fixes the network's systematic over- and under-confidence per context.

predict (`apm_predict`, every bit, after the mixers): each APM's output from its context's curve, then the final
    probability = the mean of the network's probability and every APM's output (as lpaq and paq8 average them).
learn (`apm_learn`, after the bit, when learning): move the two buckets the logit fell between towards the bit,
    each in proportion to its interpolation weight.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from .._values import first_outside
from ..contexts.basic import BIT_CONTEXT
from ..layout import table_offsets
from ..mixer.sigmoid import logistic

BUCKETS = 33        # curve points per context, at logits -8, -7.5, ..., 8
_HALF_RANGE = 8.0   # logits outside [-8, 8] use the end buckets
_M32 = 0xFFFFFFFF


class ApmParams(NamedTuple):
    slot: np.ndarray          # int32[n], context slot each APM reads
    with_bits: np.ndarray     # int32[n], 1: the slot value is combined with the bits of the current byte
    table_offset: np.ndarray  # int64[n], first row of each APM's table in ApmMemory.curves
    table_size: np.ndarray    # int64[n], rows (contexts) per APM, a power of two
    rate: np.ndarray          # float32[n], learning rate once a row has been updated `limit` times
    limit: np.ndarray         # int64[n], updates after which a row's rate stops falling (1/(count + 1.5))


class ApmMemory(NamedTuple):  # long-term memory
    curves: np.ndarray        # float32[sum(table_size), BUCKETS], context -> P(1) at each bucket's logit
    counts: np.ndarray        # uint16[sum(table_size)], updates of each row, saturating at its APM's limit


class ApmState(NamedTuple):  # short-term memory
    row: np.ndarray           # int64[n], the row each APM used this bit (learn updates the same one)
    bucket: np.ndarray        # int64[1], lower bucket of this bit's logit: 0 .. BUCKETS - 2
    weight: np.ndarray        # float32[1], interpolation weight of the upper bucket, 0 .. 1
    outputs: np.ndarray       # float32[n], each APM's probability this bit
    PER_BIT = ("row", "bucket", "weight", "outputs")  # fields that change within a byte (see generate.py)


def apm_new(apms, slots) -> tuple[ApmParams, ApmMemory, ApmState]:
    n = len(apms)
    sizes = np.array([1 << a.table_bits for a in apms], np.int64)
    offsets = table_offsets(sizes)
    params = ApmParams(
        slot=np.array([slots[a.context] for a in apms], np.int32),
        with_bits=np.array([1 if a.with_bits else 0 for a in apms], np.int32),
        table_offset=offsets,
        table_size=sizes,
        rate=np.array([a.rate for a in apms], np.float32),
        limit=np.array([a.limit for a in apms], np.int64),
    )
    # Every curve starts as the identity: bucket j holds logistic(its own logit), so a new APM changes nothing
    # (computed with the package's logistic, not libm's exp, so that every machine starts from the same bits).
    identity = np.array([logistic(np.float32(j * 0.5 - _HALF_RANGE)) for j in range(BUCKETS)], np.float32)
    curves = np.empty((int(sizes.sum()), BUCKETS), np.float32)
    curves[:] = identity
    state = ApmState(np.zeros(n, np.int64), np.zeros(1, np.int64), np.zeros(1, np.float32),
                     np.zeros(n, np.float32))
    return params, ApmMemory(curves, np.zeros(int(sizes.sum()), np.uint16)), state


def apm_check(m: ApmMemory, s: ApmState) -> str | None:
    """The first stored value out of range, or None: the row and bucket index the curves; probabilities and the
    weight stay in [0, 1]."""
    return first_outside([
        ("stm.apm.row", s.row, 0, max(m.curves.shape[0] - 1, 0)),
        ("stm.apm.bucket", s.bucket, 0, BUCKETS - 2),
        ("stm.apm.weight", s.weight, 0.0, 1.0),
        ("ltm.apm.curves", m.curves, 0.0, 1.0),
    ])


@njit(inline="always")
def _row(key, size):
    """A row for a 64-bit context key: the key itself when it fits, else a 32-bit hash of it."""
    if key < size:
        return key
    h = (key ^ (key >> 29)) & _M32
    h = (h * 0x85EBCA6B) & _M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M32
    h ^= h >> 16
    return h & (size - 1)


@njit(inline="always")
def apm_predict(p, m, s, contexts, logit, probability):
    """The final probability: the mean of `probability` (the network's, = logistic(logit)) and every APM's."""
    n = p.slot.shape[0]
    if n == 0:
        return probability
    x = np.float32(logit)
    if not x > np.float32(-_HALF_RANGE):  # also NaN
        x = np.float32(-_HALF_RANGE)
    elif x > np.float32(_HALF_RANGE - 0.0001):
        x = np.float32(_HALF_RANGE - 0.0001)
    position = (x + np.float32(_HALF_RANGE)) * np.float32(2.0)
    j = np.int64(position)
    w = position - np.float32(j)
    s.bucket[0] = j
    s.weight[0] = w
    bits = contexts[BIT_CONTEXT]
    total = probability
    for i in range(n):
        key = contexts[p.slot[i]]
        if p.with_bits[i]:
            key = (key << 8) | bits
        row = p.table_offset[i] + _row(key, p.table_size[i])
        s.row[i] = row
        q = m.curves[row, j] * (np.float32(1.0) - w) + m.curves[row, j + 1] * w
        s.outputs[i] = q
        total += q
    return total / np.float32(n + 1)


@njit(inline="always")
def apm_learn(p, m, s, bit):
    j = s.bucket[0]
    w = s.weight[0]
    target = np.float32(bit)
    for i in range(p.slot.shape[0]):
        row = s.row[i]
        rate = p.rate[i]
        count = np.int64(m.counts[row])
        if count < p.limit[i]:
            m.counts[row] = count + 1
            adaptive = np.float32(1.0) / (np.float32(count) + np.float32(1.5))
            if adaptive > rate:
                rate = adaptive
        lower = m.curves[row, j]
        m.curves[row, j] = lower + (target - lower) * (rate * (np.float32(1.0) - w))
        upper = m.curves[row, j + 1]
        m.curves[row, j + 1] = upper + (target - upper) * (rate * w)
