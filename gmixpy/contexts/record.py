"""Record contexts: structure with a fixed period (table rows, fixed-size records, image rows), found in the data.

A detector (paq8's RecordModel) watches, for every byte value, the distances between its last occurrences: when
one value recurs at the same distance r four times in a row, r is a candidate period, and a candidate that keeps
being confirmed becomes the record length.  Nothing is assumed about what the bytes mean, so it finds the row
width of a bitmap as well as the record size of a table.

Each Record context writes one slot from the record length r and the recent bytes, by its kind:
    above       the bytes one and two records back (the "pixels above")
    above_left  the byte one record back and the last byte
    column      the position within the record and the byte above
    distance    the last byte and how long ago it was seen before (paq8's c << 8 | distance / 4)
All are refreshed at each byte boundary, after the detector has seen the byte just completed.  The detector is
running state: it follows the data whether or not the model learns.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from .._values import first_outside
from ..spec import ROTATING_HISTORY
from .basic import LAST_BYTE, hash3, recent_byte

KINDS = ("above", "above_left", "column", "distance")
MAX_RECORD = ROTATING_HISTORY // 2 - 1  # records longer than this cannot look two records back
_CONFIRMATIONS = 16  # a candidate period becomes the record length once confirmed more than this many times


class RecordParams(NamedTuple):
    slot: np.ndarray     # int32[n], context slot each record context writes
    kind: np.ndarray     # int32[n], index into KINDS


class RecordState(NamedTuple):  # short-term memory
    positions: np.ndarray  # int64[256, 4], the last 4 positions (bytes seen) of each byte value, newest first
    candidates: np.ndarray  # int64[2, 2], two candidate periods: [period, confirmations]
    length: np.ndarray     # int64[1], the record length in use (2 until one is found)
    start: np.ndarray      # int64[1], position where the current record began (for the column)
    seen: np.ndarray       # int64[1], bytes seen
    PER_BIT = ()  # updated at byte boundaries only (see generate.py)


def record_new(contexts, slots) -> tuple[RecordParams, RecordState]:
    params = RecordParams(np.array([slots[c.name] for c in contexts], np.int32),
                          np.array([KINDS.index(c.kind) for c in contexts], np.int32))
    state = RecordState(np.zeros((256, 4), np.int64), np.zeros((2, 2), np.int64), np.full(1, 2, np.int64),
                        np.zeros(1, np.int64), np.zeros(1, np.int64))
    return params, state


def record_check(s: RecordState) -> str | None:
    """The record length is a distance into the rotating history (twice: two records back)."""
    seen = int(s.seen[0]) if s.seen.size else 0
    return first_outside([("stm.record.length", s.length, 2, MAX_RECORD),
                          ("stm.record.seen", s.seen, 0, np.iinfo(np.int64).max),
                          ("stm.record.positions", s.positions, 0, seen),
                          ("stm.record.start", s.start, 0, seen),
                          ("stm.record.candidates", s.candidates, 0, np.iinfo(np.int64).max)])


@njit(inline="always")
def record_update(p, s, b):
    """At a byte boundary: the detector sees the byte just completed, then every record slot is refreshed."""
    if p.slot.shape[0] == 0:
        return
    c = b.contexts[LAST_BYTE]
    s.seen[0] += 1
    pos = s.seen[0]
    last = s.positions[c]
    r = pos - last[0]
    if (last[3] > 0 and 1 < r <= MAX_RECORD and r == last[0] - last[1] and r == last[1] - last[2]
            and r == last[2] - last[3]):
        cand = s.candidates
        if r == cand[0, 0]:
            cand[0, 1] += 1
        elif r == cand[1, 0]:
            cand[1, 1] += 1
        elif cand[0, 1] > cand[1, 1]:
            cand[1, 0] = r
            cand[1, 1] = 1
        else:
            cand[0, 0] = r
            cand[0, 1] = 1
        for k in range(2):
            if cand[k, 1] > _CONFIRMATIONS and s.length[0] != cand[k, 0]:
                s.length[0] = cand[k, 0]
                s.start[0] = pos
                cand[0, 1] = 0
                cand[1, 1] = 0
    last[3] = last[2]
    last[2] = last[1]
    last[1] = last[0]
    last[0] = pos
    length = s.length[0]
    column = (pos - s.start[0]) % length
    above = recent_byte(b, length - 1)
    for i in range(p.slot.shape[0]):
        kind = p.kind[i]
        if kind == 0:
            v = hash3(length, above, recent_byte(b, 2 * length - 1) + 256)
        elif kind == 1:
            v = hash3(length + 1024, above, c)
        elif kind == 2:
            v = hash3(length + 2048, column, above)
        else:
            distance = pos - last[1] if last[1] > 0 else 0
            v = hash3(3072, c, min(255, distance) // 4)
        b.contexts[p.slot[i]] = v
