"""Word contexts: hashes of the last few words, for the models and mixers that read them as context slots.

A word is a run of letters: a-z and A-Z (case-folded) and every byte >= 128, so that UTF-8 text in any script
counts; any other byte ends the word.  words[0] is the hash of the word being read (0 between words), words[1]
the word before it, and so on.  A Word context hashes words[first .. first + count - 1], optionally with the last
`bytes` bytes, into its slot.

Refreshed at each byte boundary, before any model reads its slots (like the skip contexts).  The word register
is running state (short-term memory): it follows the text whether or not the model learns.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from .._values import first_outside
from .basic import recent_byte

MAX_WORDS = 6  # words kept in the register: Word contexts may reach back to words[MAX_WORDS - 1]
_M32 = 0xFFFFFFFF


class WordParams(NamedTuple):
    slot: np.ndarray    # int32[n], context slot each word context writes
    first: np.ndarray   # int32[n], first word hashed (0 = the word being read)
    count: np.ndarray   # int32[n], words hashed (first + count <= MAX_WORDS)
    bytes: np.ndarray   # int32[n], last bytes hashed in too (0..4)


class WordState(NamedTuple):  # short-term memory
    words: np.ndarray   # int64[MAX_WORDS], 32-bit word hashes, words[0] = the word being read (0 = none)
    PER_BIT = ()  # updated at byte boundaries only (see generate.py)


def word_new(contexts, slots) -> tuple[WordParams, WordState]:
    params = WordParams(
        slot=np.array([slots[c.name] for c in contexts], np.int32),
        first=np.array([c.first for c in contexts], np.int32),
        count=np.array([c.count for c in contexts], np.int32),
        bytes=np.array([c.bytes for c in contexts], np.int32),
    )
    return params, WordState(np.zeros(MAX_WORDS, np.int64))


def word_check(s: WordState) -> str | None:
    """The first stored value out of range, or None: word hashes are 32-bit values (they are only hashed)."""
    return first_outside([("stm.word.words", s.words, 0, _M32)])


@njit(inline="always")
def _combine(h, x):
    """A 32-bit hash of (h, x): one MurmurHash3 block step, then its finaliser's avalanche."""
    k = (x * 0xCC9E2D51) & _M32
    k = ((k << 15) | (k >> 17)) & _M32
    k = (k * 0x1B873593) & _M32
    h = (h ^ k) & _M32
    h = ((h << 13) | (h >> 19)) & _M32
    h = (h * 5 + 0xE6546B64) & _M32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M32
    h ^= h >> 13
    return h


@njit(inline="always")
def word_update(p, s, b, last):
    """At a byte boundary: fold the byte just seen into the word register, then refresh every word slot."""
    w = s.words
    if 65 <= last <= 90:
        last += 32
    if (97 <= last <= 122) or last >= 128:
        w[0] = _combine(w[0] + 1, last)
    elif w[0] != 0:
        for k in range(MAX_WORDS - 1, 0, -1):
            w[k] = w[k - 1]
        w[0] = 0
    for i in range(p.slot.shape[0]):
        h = np.int64(i + 1)
        for k in range(p.first[i], p.first[i] + p.count[i]):
            h = _combine(h, w[k])
        for k in range(p.bytes[i]):
            h = _combine(h, recent_byte(b, k))
        b.contexts[p.slot[i]] = h
