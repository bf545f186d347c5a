"""Text-shape contexts: the classes of the recent bytes, and where the current line stands against the one above.

Byte classes (a rough shape of the text, as paq8's text masks): 0 control, 1 space or tab, 2 line end (LF, CR),
3 digit, 4 lower-case letter, 5 upper-case letter, 6 other printable ASCII, 7 bytes >= 128.  They name common
ASCII groups but assume nothing of the data: in a binary file they are one more hash of the recent bytes.

Kinds, each writing one slot at byte boundaries:
    classes       the classes of the last `length` bytes (3 bits each)
    column_above  the position in the line (bytes since the last LF, at most 255) and the byte at that position in
                  the line above
    above_last    the byte above (as in column_above) and the last byte
The line register is running state (short-term memory).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from .._values import first_outside
from ..spec import ROTATING_HISTORY
from .basic import LAST_BYTE, hash3, recent_byte

KINDS = ("classes", "column_above", "above_last")


def _class_table() -> np.ndarray:
    table = np.full(256, 6, np.int64)
    table[:32] = 0
    table[[9, 32]] = 1
    table[[10, 13]] = 2
    table[ord("0"):ord("9") + 1] = 3
    table[ord("a"):ord("z") + 1] = 4
    table[ord("A"):ord("Z") + 1] = 5
    table[127] = 0
    table[128:] = 7
    return table


class TextParams(NamedTuple):
    slot: np.ndarray     # int32[n], context slot each text context writes
    kind: np.ndarray     # int32[n], index into KINDS
    mask: np.ndarray     # int64[n], for `classes`: (1 << 3 * length) - 1
    classes: np.ndarray  # int64[256], byte -> class 0..7


class TextState(NamedTuple):  # short-term memory
    class_history: np.ndarray  # int64[1], the classes of the last 21 bytes, 3 bits each, newest lowest
    line_start: np.ndarray     # int64[2], bytes seen when the current line and the one before it began
    seen: np.ndarray           # int64[1], bytes seen
    PER_BIT = ()  # updated at byte boundaries only (see generate.py)


def text_new(contexts, slots) -> tuple[TextParams, TextState]:
    params = TextParams(np.array([slots[c.name] for c in contexts], np.int32),
                        np.array([KINDS.index(c.kind) for c in contexts], np.int32),
                        np.array([(1 << (3 * c.length)) - 1 for c in contexts], np.int64),
                        _class_table())
    return params, TextState(np.zeros(1, np.int64), np.zeros(2, np.int64), np.zeros(1, np.int64))


def text_check(s: TextState) -> str | None:
    seen = int(s.seen[0]) if s.seen.size else 0
    return first_outside([("stm.text.class_history", s.class_history, 0, (1 << 63) - 1),
                          ("stm.text.seen", s.seen, 0, np.iinfo(np.int64).max),
                          ("stm.text.line_start", s.line_start, 0, seen)])


@njit(inline="always")
def text_update(p, s, b):
    """At a byte boundary: fold the byte just seen into the registers, then refresh every text slot."""
    if p.slot.shape[0] == 0:
        return
    c = b.contexts[LAST_BYTE]
    s.seen[0] += 1
    s.class_history[0] = ((s.class_history[0] << 3) | p.classes[c]) & ((1 << 63) - 1)
    if c == 10:
        s.line_start[1] = s.line_start[0]
        s.line_start[0] = s.seen[0]
    column = s.seen[0] - s.line_start[0]
    # The byte above: `column` bytes into the line before, when that line is that long and still in the history.
    above = 0
    above_at = s.line_start[1] + column  # position (in bytes seen) of the byte above the next one
    if above_at < s.line_start[0] and s.seen[0] - above_at < ROTATING_HISTORY:
        above = recent_byte(b, s.seen[0] - above_at - 1) + 256
    for i in range(p.slot.shape[0]):
        kind = p.kind[i]
        if kind == 0:
            v = hash3(1, s.class_history[0] & p.mask[i], p.mask[i])
        elif kind == 1:
            v = hash3(2, min(column, 255), above)
        else:
            v = hash3(3, above, c)
        b.contexts[p.slot[i]] = v
