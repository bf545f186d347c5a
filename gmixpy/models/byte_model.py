"""Byte-level models as bit predictors (gmix's ModPPMD and LstmModel wrappers).

PPMd and the LSTM predict a distribution over the 256 next bytes once per byte.  Within the byte the range of
still-possible bytes [bot, top] halves with every bit, and the model's input is P(bit = 1) = mass of the upper
half / mass of the range, as logit(p) (inactive when the range has no mass or p is exactly 0.5, as gmix).

Order per bit (predict, at the very start of gmix's model list): at a byte boundary PPMd is updated with the
byte just completed and its distribution recomputed; the LSTM reads that distribution as its input vector, runs
forward on the byte just completed and sets `lstm_prediction_context` to its most likely next byte.

PPMd is short-term memory, as in gmix: it is updated with every byte it sees, also when learning is off
(generation, frozen evaluation), because its statistics are also its position in the text.  The LSTM's weights
are long-term memory and change only when learning (`lstm_learn`); with learning off it only records the byte.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from .._values import first_outside
from ..contexts.basic import LSTM_PREDICTION_CONTEXT
from ..mixer.sigmoid import logit
from .lstm import lstm_learn, lstm_new, lstm_observe, lstm_predict
from .ppmd import ppmd_bit_probability, ppmd_new, ppmd_update


class ByteModelParams(NamedTuple):
    ppmd_input: np.ndarray     # int64[1], mixer input of PPMd, -1 = no PPMd in this specification
    lstm_input: np.ndarray     # int64[1], mixer input of the LSTM, -1 = no LSTM


class ByteModelState(NamedTuple):  # short-term memory of the byte -> bit conversion
    lstm_probs: np.ndarray       # float32[256], the LSTM's distribution for the current byte
    ranges: np.ndarray           # int64[2, 2], [model][bot, top] of bytes still possible (0 = PPMd, 1 = LSTM)
    PER_BIT = ("ranges",)  # fields that change within a byte (see generate.py)


def byte_models_new(ppmd_index, lstm_index, ppmd, lstm):
    """(params, ppmd params, ppmd state, lstm params, lstm memory, lstm state, state).  A specification without
    PPMd or LSTM still gets minimal ones (never run), so every specification has the same types."""
    if ppmd is not None:
        pp, ps = ppmd_new(ppmd.order, ppmd.memory_mb)
    else:
        pp, ps = ppmd_new(2, memory_bytes=1 << 14)
    if lstm is not None:
        lp, lm, ls = lstm_new(256, 256, lstm.cells, lstm.layers, lstm.horizon, lstm.learning_rate,
                              lstm.gradient_clip)
    else:
        lp, lm, ls = lstm_new(256, 256, 1, 1, 1, 0.0, 1.0)
    params = ByteModelParams(np.array([ppmd_index], np.int64), np.array([lstm_index], np.int64))
    ranges = np.zeros((2, 2), np.int64)
    ranges[:, 1] = 255
    state = ByteModelState(np.full(256, 1.0 / 256, np.float32), ranges)
    return params, pp, ps, lp, lm, ls, state


def byte_models_check(s: ByteModelState) -> str | None:
    """The first stored value out of range, or None: each [bot, top] range indexes a 256-entry distribution."""
    bot, top = s.ranges[:, 0], s.ranges[:, 1]
    return first_outside([("stm.byte_models.ranges", s.ranges, 0, 255),
                          ("stm.byte_models.ranges", top - bot, 0, 255)])


@njit(inline="always")
def _bit_input(probs, ranges, k, byte_boundary, new_bit, inputs, index):
    if byte_boundary:
        ranges[k, 0] = 0
        ranges[k, 1] = 255
    else:
        bot, top = ranges[k, 0], ranges[k, 1]
        mid = bot + (top - bot) // 2
        if new_bit:
            ranges[k, 0] = mid + 1
        else:
            ranges[k, 1] = mid
    p = ppmd_bit_probability(probs, ranges[k, 0], ranges[k, 1])
    # p < 0: no mass left (gmix keeps the stale input but marks it inactive); p == 0.5: logit 0, inactive.
    inputs[index] = logit(p) if p >= np.float32(0.0) else np.float32(0.0)


@njit(inline="always")
def byte_models_predict(bp, pp, ps, lp, lm, ls, s, contexts, byte_boundary, new_bit, last_byte, inputs):
    if bp.ppmd_input[0] >= 0:
        if byte_boundary:
            ppmd_update(pp, ps, last_byte)  # leaves the next byte's distribution in ps.pred
        _bit_input(ps.pred, s.ranges, 0, byte_boundary, new_bit, inputs, bp.ppmd_input[0])
    if bp.lstm_input[0] >= 0:
        if byte_boundary:
            lstm_predict(lp, lm, ls, ps.pred, last_byte, s.lstm_probs)
            best = np.float32(0.0)
            choice = 0
            for i in range(256):
                if s.lstm_probs[i] > best:
                    best = s.lstm_probs[i]
                    choice = i
            contexts[LSTM_PREDICTION_CONTEXT] = choice
        _bit_input(s.lstm_probs, s.ranges, 1, byte_boundary, new_bit, inputs, bp.lstm_input[0])


@njit(inline="always")
def byte_models_update(bp, lp, lm, ls, recent_bits, bit, learn):
    """After each bit: at the end of a byte, the LSTM learns it (or, with learning off, only records it)."""
    current = recent_bits * 2 + bit
    if bp.lstm_input[0] >= 0 and current >= 256:
        if learn:
            lstm_learn(lp, lm, ls, current - 256)
        else:
            lstm_observe(lp, ls, current - 256)
