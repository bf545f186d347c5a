"""Signal contexts: what the ensemble itself knows at this bit, as context slots for mixers and APMs.

Three kinds, each writing one slot every bit:
- Active(models): how many of the listed mixer inputs are active (non-zero) at this bit, times 8, plus the bit's
  position in the byte.  Over the order-n models it says how long a context has been seen before (paq8's
  "order"), which is the best single selector of how far to trust the high orders.
- MatchState: the byte the longest current match expects, with its length in 4 steps (0 = no match) above it.
- Misses: the last 8 bits' prediction errors (1 = the final probability was on the wrong side of 1/2), the
  paq8 SSE context for "the model is in a surprising stretch".

Active and MatchState are computed in predict after the models ran (`signals_after_models`), before the mixers
read them; Misses in update (`signals_update`), from the bit and the probability predict returned.  All running
state: none of it is learned.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from .._values import first_outside
from .basic import BIT_CONTEXT

KIND_ACTIVE, KIND_MATCH, KIND_MISSES = 0, 1, 2
MAX_MEMBERS = 32  # inputs an Active signal may count


class SignalParams(NamedTuple):
    slot: np.ndarray      # int32[n], context slot each signal writes
    kind: np.ndarray      # int32[n], KIND_ACTIVE, KIND_MATCH or KIND_MISSES
    members: np.ndarray   # int32[n, MAX_MEMBERS], mixer inputs an Active signal counts
    count: np.ndarray     # int32[n], how many members


class SignalState(NamedTuple):  # short-term memory
    misses: np.ndarray    # int64[1], the last 8 prediction errors, newest in bit 0
    last_p: np.ndarray    # float32[1], the final probability of the bit being predicted (0.5 before the first)
    PER_BIT = ("misses", "last_p")  # fields that change within a byte (see generate.py)


def signals_new(signals, slots, input_names) -> tuple[SignalParams, SignalState]:
    from ..spec import Active, MatchState

    n = len(signals)
    params = SignalParams(np.zeros(n, np.int32), np.zeros(n, np.int32), np.zeros((n, MAX_MEMBERS), np.int32),
                          np.zeros(n, np.int32))
    for i, sig in enumerate(signals):
        params.slot[i] = slots[sig.name]
        if isinstance(sig, Active):
            params.kind[i] = KIND_ACTIVE
            index = [input_names.index(m) for m in sig.inputs]
            params.members[i, :len(index)] = index
            params.count[i] = len(index)
        elif isinstance(sig, MatchState):
            params.kind[i] = KIND_MATCH
        else:
            params.kind[i] = KIND_MISSES
    return params, SignalState(np.zeros(1, np.int64), np.full(1, 0.5, np.float32))


def signals_check(s: SignalState) -> str | None:
    return first_outside([("stm.signals.misses", s.misses, 0, 255), ("stm.signals.last_p", s.last_p, 0.0, 1.0)])


@njit(inline="always")
def signals_after_models(p, s, contexts, inputs, match_state, match_table_rows):
    """Active and MatchState slots, from the model inputs and the match models' state of this bit."""
    bit_position = 0
    bits = contexts[BIT_CONTEXT] + 1
    while bits > 1:
        bits >>= 1
        bit_position += 1
    for i in range(p.slot.shape[0]):
        kind = p.kind[i]
        if kind == KIND_ACTIVE:
            active = 0
            for k in range(p.count[i]):
                if inputs[p.members[i, k]] != np.float32(0.0):
                    active += 1
            contexts[p.slot[i]] = active * 8 + bit_position
        elif kind == KIND_MATCH:
            best = 0
            expected = 0
            for k in range(match_table_rows):
                length = match_state.match_length[k]
                if length > best:
                    best = length
                    expected = match_state.cur_byte[k]
            if best == 0:
                contexts[p.slot[i]] = 0
            else:
                step = 1 if best < 16 else (2 if best < 32 else 3)
                contexts[p.slot[i]] = (step << 8) | expected
        else:
            contexts[p.slot[i]] = s.misses[0]


@njit(inline="always")
def signals_update(p, s, bit):
    """After each bit: shift the prediction error of the probability predict returned into `misses`."""
    wrong = 1 if (s.last_p[0] >= np.float32(0.5)) != (bit == 1) else 0
    s.misses[0] = ((s.misses[0] << 1) | wrong) & 255
