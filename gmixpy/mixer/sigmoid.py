"""Logistic and logit, bit-identical on every machine.

gmix's Sigmoid uses libm's exp and log.  libm may round differently on another platform or glibc version, and a
single differing bit in a coded probability makes an archive undecodable elsewhere.  These functions use only
+, -, *, / and exact power-of-two scaling, which IEEE 754 defines exactly, so the results are the same everywhere.
Accuracy: exp64 and log64 are within 2 ulp of the true value over their whole range (tests/test_math.py).

exp64 is also the LSTM's exponential (models/lstm_math.py): the LSTM only needs float32(exp(x)) for float32 x, and
it once had its own float64 exp (range reduction by ln 2 and a degree-14 Taylor polynomial).  The two differ in
the last bit of the float64 result for about one input in ten, but rounded to float32 they agree on all 2**32
float32 inputs (checked exhaustively when they were merged), so the merge changed no LSTM result.
"""
from __future__ import annotations

import math

import numpy as np

from .._jit import njit
from ..intrinsics import f64_bits, f64_from_bits, vector_logistic

LN2_HI = 6.93147180369123816490e-01  # high bits of ln 2, exact product with small integers
LN2_LO = 1.90821492927058770002e-10
_SQRT_HALF = 0.7071067811865476
# POW2[k + 1074] = 2**k for k in [-1074, 1023], exact: scaling by an entry is one multiplication, not a libm call.
POW2 = np.array([math.ldexp(1.0, k) for k in range(-1074, 1024)], dtype=np.float64)


# exp: x = k ln2/64 + r with |r| <= ln2/128, e**x = 2**(k // 64) * 2**((k % 64) / 64) * e**r.  The 64 values
# 2**(j/64) are stored as float64 pairs (hi + lo, 106 bits), computed here exactly with decimal arithmetic.
def _two_to_j64():
    from decimal import Decimal, getcontext

    getcontext().prec = 60
    hi, lo = [], []
    for j in range(64):
        d = Decimal(2) ** (Decimal(j) / Decimal(64))
        h = float(d)
        hi.append(h)
        lo.append(float(d - Decimal(h)))
    return np.array(hi, np.float64), np.array(lo, np.float64)


_EXP_HI, _EXP_LO = _two_to_j64()
_64_OVER_LN2 = 92.33248261689365446  # 64 / ln 2
_LN2_64_HI = LN2_HI / 64.0  # exact: LN2_HI has 32 significant bits, so k * _LN2_64_HI is exact for |k| < 2**21
_LN2_64_LO = LN2_LO / 64.0
_ROUND = 6755399441055744.0  # 1.5 * 2**52: (t + _ROUND) - _ROUND rounds t to the nearest integer, for |t| < 2**51


@njit(inline="always")
def _exp_parts(x):
    """For |x| <= 745.2: (m, hi, lo, q) with e**x = 2**m * (hi + lo) * (1 + q), hi + lo = 2**(j/64) to 106
    bits and q = e**r - 1 from a degree-5 polynomial (truncation error < r**6/720 < 4e-17 relative).
    Only +, -, * and an exact rounding to an integer."""
    kf = (x * _64_OVER_LN2 + _ROUND) - _ROUND
    r = (x - kf * _LN2_64_HI) - kf * _LN2_64_LO  # |r| <= ln2/128 + tiny
    q = 1.0 / 120.0
    q = q * r + 1.0 / 24.0
    q = q * r + 1.0 / 6.0
    q = q * r + 0.5
    q = q * r + 1.0
    q = q * r
    k = np.int64(kf)
    j = k & 63
    return k >> 6, _EXP_HI[j], _EXP_LO[j], q


@njit(inline="always")
def exp64(x):
    """e**x in float64 (within 1 ulp), from a table of 2**(j/64), a short polynomial and exact scaling."""
    x = np.float64(x)
    if x > 709.8:
        return np.inf
    if not x >= -745.2:
        return 0.0 if x < -745.2 else x  # x < -745.2, or NaN
    m, hi, lo, q = _exp_parts(x)
    y = hi + (lo + hi * q)  # within 1 ulp of e**x / 2**m
    if m > 1000:  # 2**m may not be representable: scale by 2**(m - 1), then exactly (or to inf) by 2
        return (y * POW2[m - 1 + 1074]) * 2.0
    if m < -1021:  # the result is subnormal: scale in two exact steps so only the last rounds
        return (y * POW2[m + 1074 + 60]) * POW2[-60 + 1074]
    return y * POW2[m + 1074]


_SMALLEST_NORMAL = 2.2250738585072014e-308


@njit(inline="always")
def _frexp_positive(x):
    """math.frexp for finite x > 0, from the bits (math.frexp is a call into a C helper)."""
    shift = 0
    if x < _SMALLEST_NORMAL:  # subnormal: scale into the normal range, exactly
        x = x * 18014398509481984.0  # 2**54
        shift = 54
    bits = f64_bits(x)
    e = ((bits >> 52) & 0x7FF) - 1022 - shift
    return f64_from_bits((bits & -0x7FF0000000000001) | 0x3FE0000000000000), e


@njit(inline="always")
def log64(x):
    """Natural log in float64 for x > 0: x = m * 2**e with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s)."""
    x = np.float64(x)
    if x <= 0.0:
        return -np.inf
    m, e = _frexp_positive(x)  # x = m * 2**e, m in [0.5, 1)
    if m < _SQRT_HALF:
        m = m * 2.0
        e = e - 1
    s = (m - 1.0) / (m + 1.0)  # |s| <= 0.1716
    s2 = s * s
    # atanh(s)/s = sum s**(2n)/(2n+1), n <= 11: truncation error < 1e-19.
    p = 1.0 / 23.0
    p = p * s2 + 1.0 / 21.0
    p = p * s2 + 1.0 / 19.0
    p = p * s2 + 1.0 / 17.0
    p = p * s2 + 1.0 / 15.0
    p = p * s2 + 1.0 / 13.0
    p = p * s2 + 1.0 / 11.0
    p = p * s2 + 1.0 / 9.0
    p = p * s2 + 1.0 / 7.0
    p = p * s2 + 1.0 / 5.0
    p = p * s2 + 1.0 / 3.0
    p = p * s2 + 1.0
    return e * LN2_HI + (e * LN2_LO + 2.0 * s * p)


@njit(inline="always")
def logistic(p):
    """float32 logit -> float32 probability, as gmix's Sigmoid::Logistic: 1 / (1 + exp(-p)) in float32.
    exp(-p) is computed in float64 (`_exp_parts`) and rounded once to float32.  For |p| >= 120 the float32
    of exp(-p) is inf or 0 either way, so p is clamped there and the scaling never leaves the normal range."""
    x = -np.float64(p)
    if not x >= -120.0:  # also NaN
        x = -120.0
    elif x > 120.0:
        x = 120.0
    m, hi, lo, q = _exp_parts(x)
    # Within 2e-16 relative of exp(-p) before the final rounding to float32, so that rounding almost always
    # gives the float32 nearest to the true value.
    e = np.float32((hi + hi * q) * POW2[m + 1074])
    return np.float32(1.0) / (np.float32(1.0) + e)


@njit(inline="always")
def logit(p):
    """float32 probability -> float32 logit, as gmix's Sigmoid::Logit: clamp to [1e-4, 1 - 1e-4], log(p / (1-p))."""
    p = np.float32(p)
    if p < np.float32(0.0001):
        p = np.float32(0.0001)
    elif p > np.float32(0.9999):
        p = np.float32(0.9999)
    return np.float32(log64(np.float64(p / (np.float32(1.0) - p))))


# logistic_many's vector loop (intrinsics.py), 8 lanes: the same operations in the same order as `logistic`, lane by
# lane, so the results are identical.  values must have room for n rounded up to a multiple of 8 (the lanes past n
# compute garbage, harmlessly).
_logistic_lanes = vector_logistic(_64_OVER_LN2, _ROUND, _LN2_64_HI, _LN2_64_LO, lanes=8)


@njit(inline="always")
def logistic_many(values, n):
    """values[i] = logistic(values[i]) for i < n (bit-identical to `logistic`); values must have room for n
    rounded up to a multiple of 8."""
    _logistic_lanes(values, _EXP_HI, n)
