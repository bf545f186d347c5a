"""gmix's 32-bit binary arithmetic coder (carry-less, paq style), as compiled kernels.

The probability that the next bit is 1 is discretised to 16 bits as gmix does, 1 + 65534 * p in float32 and
truncated, so p = 0 and p = 1 still leave both bits codable.  The interval [x1, x2] is split at xmid; a 1 keeps
the lower part.  Whenever x1 and x2 agree in their top byte, that byte is final and is shifted out.

Each coded bit emits (or consumes) at most 4 bytes; the chunk loops rely on that bound to size their buffers.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from .._values import first_outside

_M32 = 0xFFFFFFFF
MAX_BYTES_PER_BIT = 4


class CoderState(NamedTuple):
    x1: np.ndarray  # int64[1], low end of the interval (uint32 value)
    x2: np.ndarray  # int64[1], high end of the interval (uint32 value)
    x: np.ndarray   # int64[1], decoder only: the 32 bits of the stream under the window


def coder_new() -> CoderState:
    return CoderState(np.zeros(1, np.int64), np.full(1, _M32, np.int64), np.zeros(1, np.int64))


def coder_check(c: CoderState) -> str | None:
    """The first register out of range in a checkpoint's coder, or None: 32-bit values, x1 <= x2."""
    return first_outside([("coder.x1", c.x1, 0, _M32), ("coder.x2", c.x2, 0, _M32), ("coder.x", c.x, 0, _M32),
                          ("coder.x2 - coder.x1", c.x2 - c.x1, 0, _M32)])


@njit(inline="always")
def discretize(p):
    return np.int64(np.float32(1.0) + np.float32(65534.0) * np.float32(p))


@njit(inline="always")
def _split(x1, x2, q):
    r = x2 - x1
    return x1 + (r >> 16) * q + (((r & 0xFFFF) * q) >> 16)


@njit(inline="always")
def encode_bit(c, bit, p, out, out_pos):
    """Code `bit` with probability `p` (float32, of a 1); bytes go to out[out_pos:]; returns the new out_pos."""
    x1 = c.x1[0]
    x2 = c.x2[0]
    xmid = _split(x1, x2, discretize(p))
    if bit:
        x2 = xmid
    else:
        x1 = xmid + 1
    while ((x1 ^ x2) & 0xFF000000) == 0:
        out[out_pos] = x2 >> 24
        out_pos += 1
        x1 = (x1 << 8) & _M32
        x2 = ((x2 << 8) & _M32) | 255
    c.x1[0] = x1
    c.x2[0] = x2
    return out_pos


@njit(inline="always")
def encode_flush(c, out, out_pos):
    """Finish the stream: one byte inside the interval (the decoder reads zeros past the end)."""
    out[out_pos] = c.x2[0] >> 24
    return out_pos + 1


@njit(inline="always")
def _next_byte(inp, in_pos, in_len):
    return np.int64(inp[in_pos]) if in_pos < in_len else np.int64(0)


@njit(inline="always")
def decode_start(c, inp, in_pos, in_len):
    """Read the first 4 bytes of the stream; returns the new in_pos."""
    x = np.int64(0)
    for _ in range(4):
        x = (x << 8) + _next_byte(inp, in_pos, in_len)
        in_pos += 1
    c.x[0] = x
    return in_pos


@njit(inline="always")
def decode_bit(c, p, inp, in_pos, in_len):
    """Decode one bit coded with probability `p`; returns (bit, new in_pos).  Past in_len the stream reads as
    zeros, which is how the encoder's final byte is completed."""
    x1 = c.x1[0]
    x2 = c.x2[0]
    x = c.x[0]
    xmid = _split(x1, x2, discretize(p))
    bit = 0
    if x <= xmid:
        bit = 1
        x2 = xmid
    else:
        x1 = xmid + 1
    while ((x1 ^ x2) & 0xFF000000) == 0:
        x1 = (x1 << 8) & _M32
        x2 = ((x2 << 8) & _M32) | 255
        x = ((x << 8) & _M32) + _next_byte(inp, in_pos, in_len)
        in_pos += 1
    c.x1[0] = x1
    c.x2[0] = x2
    c.x[0] = x
    return bit, in_pos
