"""Basic contexts (gmix's BasicContexts): the bits and bytes just seen, and the byte history.

Predict (`basic_predict`, first thing every bit, before anything else reads a context) folds the bit perceived
last into `recent_bits`; at a byte boundary it shifts the byte into the rotating history and refreshes the
recent-byte slots.  Learn (`basic_learn`, first thing after each bit when learning) appends each completed byte to
the long-term history used by the match models, except while a long match is running (gmix's de-duplication).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from .._values import first_outside
from ..spec import BASIC_SLOTS, ROTATING_HISTORY

ALWAYS_ZERO, BIT_CONTEXT, LAST_BYTE, LAST_BYTE_PLUS_RECENT, SECOND_LAST_PLUS_RECENT, LONGEST_MATCH, \
    LSTM_PREDICTION_CONTEXT = range(7)
RECENT_BYTE_1 = 7  # slots RECENT_BYTE_1 .. RECENT_BYTE_1 + 8 hold recent_bytes[1..9]
assert BASIC_SLOTS[RECENT_BYTE_1] == "recent_byte_1"
assert BASIC_SLOTS[LSTM_PREDICTION_CONTEXT] == "lstm_prediction_context"


class BasicState(NamedTuple):  # short-term memory
    contexts: np.ndarray          # int64[n_slots], every context slot of the specification (spec.slots())
    first_prediction: np.ndarray  # int64[1], 1 until the first bit is predicted (then nothing is folded in)
    new_bit: np.ndarray           # int64[1], the bit perceived last
    recent_bits: np.ndarray       # int64[1], 1..255: bits of the current byte with a leading 1 (1 = none yet)
    bits_seen: np.ndarray         # int64[1], bits perceived so far
    rotating_history: np.ndarray  # uint8[1000], the last 1000 bytes, circular
    rotating_history_pos: np.ndarray  # int64[1], index of the last byte in rotating_history
    recent_bytes: np.ndarray      # int64[10], recent_bytes[i] = the byte i+1 bytes ago
    # Fields that change within a byte (see generate.py); the rotating history moves at byte boundaries only.
    PER_BIT = ("contexts", "first_prediction", "new_bit", "recent_bits", "bits_seen")


class HistoryMemory(NamedTuple):  # long-term memory: what the match models point into
    history: np.ndarray           # uint8[capacity], bytes seen (de-duplicated during long matches); grows
    history_length: np.ndarray    # int64[1], bytes of `history` in use
    bytes_learned: np.ndarray     # int64[1], bytes the model has learned from (training, compression)


def basic_new(n_slots: int, history_reserve: int) -> tuple[BasicState, HistoryMemory]:
    state = BasicState(
        contexts=np.zeros(n_slots, np.int64),
        first_prediction=np.ones(1, np.int64),
        new_bit=np.zeros(1, np.int64),
        recent_bits=np.ones(1, np.int64),
        bits_seen=np.zeros(1, np.int64),
        rotating_history=np.zeros(ROTATING_HISTORY, np.uint8),
        rotating_history_pos=np.zeros(1, np.int64),
        recent_bytes=np.zeros(10, np.int64),
    )
    memory = HistoryMemory(history=np.zeros(max(16, history_reserve), np.uint8),
                           history_length=np.zeros(1, np.int64), bytes_learned=np.zeros(1, np.int64))
    return state, memory


def basic_check(state: BasicState, memory: HistoryMemory) -> str | None:
    """The first stored value the kernels could not survive, or None.  Slots holding a byte index tables (the
    interval map, the LSTM's symbol rows), the rotating position indexes its buffer, recent_bits decides where a
    byte ends; the slots the kernels only hash or mask may hold anything."""
    c = state.contexts
    fixed = c[:RECENT_BYTE_1 + 9]  # ALWAYS_ZERO .. recent_byte_9; every specification has these slots first
    return first_outside([
        ("stm.basic.contexts", fixed[ALWAYS_ZERO:ALWAYS_ZERO + 1], 0, 0),
        ("stm.basic.contexts", fixed[BIT_CONTEXT:LAST_BYTE + 1], 0, 255),
        ("stm.basic.contexts", fixed[LAST_BYTE_PLUS_RECENT:SECOND_LAST_PLUS_RECENT + 1], 0, 0xFFFF),
        ("stm.basic.contexts", fixed[LONGEST_MATCH:LONGEST_MATCH + 1], 0, 255 // 32),
        ("stm.basic.contexts", fixed[LSTM_PREDICTION_CONTEXT:], 0, 255),
        ("stm.basic.first_prediction", state.first_prediction, 0, 1),
        ("stm.basic.new_bit", state.new_bit, 0, 1),
        ("stm.basic.recent_bits", state.recent_bits, 1, 255),
        ("stm.basic.bits_seen", state.bits_seen, 0, np.iinfo(np.int64).max),
        ("stm.basic.rotating_history_pos", state.rotating_history_pos, 0, ROTATING_HISTORY - 1),
        ("stm.basic.recent_bytes", state.recent_bytes, 0, 255),
        ("ltm.history.history_length", memory.history_length, 0, memory.history.shape[0]),
        ("ltm.history.bytes_learned", memory.bytes_learned, 0, np.iinfo(np.int64).max),
    ])


@njit(inline="always")
def hash3(a, b, c):
    """A 32-bit hash of three small non-negative integers (a murmur-style finaliser), for byte-level contexts."""
    h = (a * 0x9E3779B1 + b) & 0xFFFFFFFF
    h = ((h ^ (h >> 15)) * 0x85EBCA6B + c) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * 0xC2B2AE35) & 0xFFFFFFFF
    return h ^ (h >> 16)


@njit(inline="always")
def recent_byte(s, num_bytes_ago):
    """The byte `num_bytes_ago` + 1 bytes back (0 = last byte), from the rotating history."""
    pos = s.rotating_history_pos[0] - num_bytes_ago
    if pos < 0:
        pos += ROTATING_HISTORY
    return np.int64(s.rotating_history[pos])


@njit(inline="always")
def basic_predict(s):
    """Fold the last bit in; returns True at a byte boundary (when the byte-level contexts must be refreshed)."""
    c = s.contexts
    if s.first_prediction[0]:
        s.first_prediction[0] = 0  # gmix updates nothing on the very first prediction
    else:
        s.bits_seen[0] += 1
        s.recent_bits[0] += s.recent_bits[0] + s.new_bit[0]
        if s.recent_bits[0] >= 256:
            last = s.recent_bits[0] - 256
            c[LAST_BYTE] = last
            pos = s.rotating_history_pos[0] + 1
            if pos == ROTATING_HISTORY:
                pos = 0
            s.rotating_history_pos[0] = pos
            s.rotating_history[pos] = last
            for i in range(10):
                s.recent_bytes[i] = recent_byte(s, i)
            for i in range(9):
                c[RECENT_BYTE_1 + i] = s.recent_bytes[i + 1]
            s.recent_bits[0] = 1
    bit_context = s.recent_bits[0] - 1
    c[BIT_CONTEXT] = bit_context
    c[LAST_BYTE_PLUS_RECENT] = (c[LAST_BYTE] << 8) + bit_context
    c[SECOND_LAST_PLUS_RECENT] = (s.recent_bytes[1] << 8) + bit_context
    c[LONGEST_MATCH] = 0  # the match models raise it
    return s.recent_bits[0] == 1


@njit(inline="always")
def basic_learn(s, h):
    """Append the byte just completed to the history unless a long match is running.  The caller guarantees
    capacity (the chunk loop grows `history` between calls)."""
    current = s.recent_bits[0] * 2 + s.new_bit[0]
    if current >= 256:
        h.bytes_learned[0] += 1
        if s.contexts[LONGEST_MATCH] < 2:
            h.history[h.history_length[0]] = current - 256
            h.history_length[0] += 1
