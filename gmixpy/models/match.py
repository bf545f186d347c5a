"""Match models (gmix's Match): context -> the last position in the byte history where that context occurred.

While the bytes since that position keep matching the input, the model predicts the next bit of the history,
with a confidence learned per match length (in bits, 0..255).  A new position is looked up at each byte
boundary unless the last 8 bits matched, in which case the match simply moves on by a byte.

predict (`match_predict`, every bit): extend or reset the match length with the bit just seen, follow the history
    at byte boundaries, emit logit(p) for lengths > 2 (else input 0 = inactive), and raise the `longest_match`
    context (length // 32, max over the models).
learn (`match_learn`, after the bit, when learning): adapt the confidence for the current length (rate
    1/count until `limit` observations, then 1/limit); at the last bit of a byte, point the table entry for the
    context at the newest history byte (skipped during long matches, when the history is not extended).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from .._values import first_outside
from ..contexts.basic import LONGEST_MATCH
from ..layout import table_offsets
from ..mixer.sigmoid import logit


class MatchParams(NamedTuple):
    slot: np.ndarray           # int32[n], context slot read by each model
    table_offset: np.ndarray   # int64[n], first entry of each model's table in MatchMemory.table
    table_size: np.ndarray     # int64[n], 2**table_bits (a power of two: contexts are reduced with a mask)
    limit: np.ndarray          # int64[n], observations after which the learning rate stops decaying
    learning_rate: np.ndarray  # float32[n], 1 / limit
    input_index: np.ndarray    # int32[n], mixer input written


class MatchMemory(NamedTuple):  # long-term memory
    table: np.ndarray          # int64[sum(table_size)], context -> history position (0 also = never seen)
    predictions: np.ndarray    # float32[n, 256], match length -> probability that the history's bit is right
    counts: np.ndarray         # int32[n, 256], observations per match length, saturating at limit


class MatchState(NamedTuple):  # short-term memory
    cur_match: np.ndarray      # int64[n], position in the history of the byte being matched
    cur_byte: np.ndarray       # int64[n], that history byte
    bit_pos: np.ndarray        # int64[n], mask of the bit being predicted: 128 .. 1
    match_length: np.ndarray   # int64[n], consecutive matching bits, 0..255
    PER_BIT = ("bit_pos", "match_length")  # fields that change within a byte; the match moves at boundaries


def match_new(models, slots, input_index) -> tuple[MatchParams, MatchMemory, MatchState]:
    n = len(models)
    sizes = np.array([1 << m.table_bits for m in models], np.int64)
    offsets = table_offsets(sizes)
    params = MatchParams(
        slot=np.array([slots[m.context] for m in models], np.int32),
        table_offset=offsets,
        table_size=sizes,
        limit=np.array([m.limit for m in models], np.int64),
        learning_rate=np.array([np.float32(1.0 / m.limit) for m in models], np.float32),
        input_index=np.array(input_index, np.int32),
    )
    lengths = np.arange(256, dtype=np.float64)
    memory = MatchMemory(
        table=np.zeros(int(sizes.sum()), np.int64),
        predictions=np.tile((0.5 + (lengths + 0.5) / 512).astype(np.float32), (n, 1)),
        counts=np.ones((n, 256), np.int32),
    )
    state = MatchState(np.zeros(n, np.int64), np.zeros(n, np.int64), np.full(n, 128, np.int64),
                       np.zeros(n, np.int64))
    return params, memory, state


def match_check(p: MatchParams, m: MatchMemory, s: MatchState, history_length: int) -> str | None:
    """The first stored value out of range, or None.  Table entries and the current match are positions in the
    history (the kernel only guards the upper end); the match length indexes the 256 learned predictions; counts
    are divisors."""
    rows = [
        ("ltm.match.table", m.table, 0, max(history_length - 1, 0)),
        ("stm.match.cur_match", s.cur_match, 0, history_length),
        ("stm.match.cur_byte", s.cur_byte, 0, 255),
        ("stm.match.bit_pos", s.bit_pos, 0, 128),
        ("stm.match.match_length", s.match_length, 0, 255),
    ]
    for i in range(p.slot.shape[0]):
        rows.append(("ltm.match.counts", m.counts[i], 1, int(p.limit[i])))
    return first_outside(rows)


@njit(inline="always")
def match_predict(p, m, s, h, contexts, new_bit, byte_boundary, inputs):
    history_length = h.history_length[0]
    for i in range(p.slot.shape[0]):
        length = s.match_length[i]
        if new_bit == (1 if (s.cur_byte[i] & s.bit_pos[i]) != 0 else 0):
            if length < 255:
                length += 1
        else:
            length = 0
        s.bit_pos[i] >>= 1
        if byte_boundary:
            if s.cur_match[i] == history_length - 1:
                length = 0  # the match reached the end of the history
            if length < 8:
                s.cur_match[i] = m.table[p.table_offset[i] + (contexts[p.slot[i]] & (p.table_size[i] - 1))]
            else:
                s.cur_match[i] += 1
            if history_length > 0 and s.cur_match[i] < history_length:
                s.cur_byte[i] = h.history[s.cur_match[i]]
            s.bit_pos[i] = 128
        s.match_length[i] = length
        k = p.input_index[i]
        if length > 2:
            q = m.predictions[i, length]
            if (s.cur_byte[i] & s.bit_pos[i]) == 0:
                q = np.float32(1.0) - q
            # gmix leaves an input of exactly 0.5 inactive; logit(0.5) is 0, which is the same thing.
            inputs[k] = logit(q) if q != np.float32(0.5) else np.float32(0.0)
        else:
            inputs[k] = np.float32(0.0)
        if length // 32 > contexts[LONGEST_MATCH]:
            contexts[LONGEST_MATCH] = length // 32


@njit(inline="always")
def match_learn(p, m, s, h, contexts, recent_bits, bit):
    for i in range(p.slot.shape[0]):
        length = s.match_length[i]
        if length > 2:
            hit = 1.0 if bit == (1 if (s.cur_byte[i] & s.bit_pos[i]) != 0 else 0) else 0.0
            rate = p.learning_rate[i]
            if m.counts[i, length] < p.limit[i]:
                m.counts[i, length] += 1
                rate = np.float32(1.0 / m.counts[i, length])
            q = m.predictions[i, length]
            m.predictions[i, length] = q + (np.float32(hit) - q) * rate
        if recent_bits >= 128 and contexts[LONGEST_MATCH] < 2:
            # Last bit of a byte: basic_learn has just appended it to the history.
            m.table[p.table_offset[i] + (contexts[p.slot[i]] & (p.table_size[i] - 1))] = h.history_length[0] - 1
