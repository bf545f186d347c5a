"""Logistic and logit, bit-identical on every machine.

gmix's Sigmoid uses libm's exp and log.  libm may round differently on another platform or glibc version, and a
single differing bit in a coded probability makes an archive undecodable elsewhere.  These functions use only
+, -, *, / and exact power-of-two scaling, which IEEE 754 defines exactly, so the results are the same everywhere.
Accuracy: exp64 and log64 are within 2 ulp of the true value over their whole range (tests/test_sigmoid.py).
"""
from __future__ import annotations

import math

import numpy as np

from .._jit import njit

_LN2_HI = 6.93147180369123816490e-01  # high bits of ln 2, exact product with small integers
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_SQRT_HALF = 0.7071067811865476
# 2**k for k in [-1074, 1023], exact: scaling by a table entry is one multiplication instead of a libm call.
_POW2 = np.array([math.ldexp(1.0, k) for k in range(-1074, 1024)], dtype=np.float64)


@njit(inline="always")
def exp64(x):
    """e**x in float64 from a Taylor polynomial on |r| <= ln2/2 and exact scaling by 2**k."""
    x = np.float64(x)
    if x > 709.0:
        return np.inf
    if x < -745.0:
        return 0.0
    k = math.floor(x * _INV_LN2 + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    # Horner form of sum r**n/n! for n <= 13: truncation error < 2e-17 for |r| <= 0.347.
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    k = np.int64(k)
    if k < -1022:  # the result is subnormal: scale in two exact steps so only the last rounds
        return (p * _POW2[k + 1074 + 60]) * _POW2[-60 + 1074]
    return p * _POW2[k + 1074]


@njit(inline="always")
def log64(x):
    """Natural log in float64 for x > 0: x = m * 2**e with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s)."""
    x = np.float64(x)
    if x <= 0.0:
        return -np.inf
    m, e = math.frexp(x)  # x = m * 2**e, m in [0.5, 1)
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
    return e * _LN2_HI + (e * _LN2_LO + 2.0 * s * p)


@njit(inline="always")
def logistic(p):
    """float32 logit -> float32 probability, as gmix's Sigmoid::Logistic: 1 / (1 + exp(-p)) in float32."""
    e = np.float32(exp64(-np.float64(p)))
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
