"""MurmurHash3_x86_32 (Austin Appleby, public domain) for the two key sizes gmix hashes.

gmix hashes a little-endian 8-byte integer (skip and outer contexts) or a 4-byte one (inner contexts) with seed
0xDEADBEEF.  Keys here are passed as their 32-bit words, so the hash is the same on any byte order.
All arithmetic is on int64 masked to 32 bits, which is how uint32 wraps in C.
"""
from __future__ import annotations

from .._jit import njit

SEED = 0xDEADBEEF
_M32 = 0xFFFFFFFF
_C1 = 0xCC9E2D51
_C2 = 0x1B873593


@njit(inline="always")
def _rotl32(x, r):
    return ((x << r) | (x >> (32 - r))) & _M32


@njit(inline="always")
def _mix_block(h, k):
    k = (k * _C1) & _M32
    k = _rotl32(k, 15)
    k = (k * _C2) & _M32
    h ^= k
    h = _rotl32(h, 13)
    return (h * 5 + 0xE6546B64) & _M32


@njit(inline="always")
def _fmix32(h, length):
    h ^= length
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M32
    h ^= h >> 16
    return h


@njit(inline="always")
def murmur_u64(key):
    """Hash of the 8 little-endian bytes of `key` (int64 holding a value < 2**63)."""
    h = _mix_block(SEED, key & _M32)
    h = _mix_block(h, (key >> 32) & _M32)
    return _fmix32(h, 8)


@njit(inline="always")
def murmur_u32(key):
    """Hash of the 4 little-endian bytes of `key` (a value < 2**32)."""
    return _fmix32(_mix_block(SEED, key & _M32), 4)
