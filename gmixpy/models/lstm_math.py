"""Deterministic expm1 / tanh / logistic / integer power for the LSTM, identical on every machine.

gmix's LSTM calls libm's expf, tanhf and powf.  libm implementations differ between platforms and library
versions, and one differing bit changes every later prediction.  The functions here use only IEEE 754
+, -, *, /, comparisons and exact scaling by a power of two, evaluated in a fixed order, so they round identically
everywhere.  No fastmath: the compiler may not reassociate or contract them.  The exponential is the mixer's
(mixer/sigmoid.py exp64, which says why one serves both).

float64 kernels (accuracy measured against math.expm1 / math.tanh in tests/test_math.py):

* `expm1_64(x)`    x >= 0 only (what tanh needs): |rel err| < 5e-16.
* `tanh64(x)`      |rel err| < 1e-15 everywhere (4.5 ulp bound, typically <= 2 ulp); exact +-1 for |x| > 22.
* `logistic64(x)`  1 / (1 + exp(-x)), |rel err| < 1e-15.
* `powi64(b, n)`   b**n for an integer n >= 0 by binary exponentiation; each squaring doubles the relative
  error, so |rel err| < 2 * n ulp (< 7e-13 for the n <= 3000 Adam uses: far below a float32 ulp).

float32 wrappers used by the LSTM (gmix computes these in float32):

* `exp_f32(x)`       float32(exp64(x)): correctly rounded float32 except in (very rare) near-ties.
* `tanh_f32(x)`      float32(tanh64(x)).
* `logistic_f32(p)`  1 / (1 + exp_f32(-p)) with float32 operations, as gmix's Sigmoid::Logistic.
* `powf_int(b, t)`   float32(powi64(b, t)) for integer-valued t, replacing powf(beta, t) in Adam.
"""
from __future__ import annotations

import math

import numpy as np

from .._jit import njit
from ..mixer.sigmoid import LN2_HI, LN2_LO, POW2, exp64

INV_LN2 = 1.44269504088896338700e00
EXP_OVERFLOW = 709.782712893383973096  # largest x with exp(x) finite


@njit(inline="always")
def _expm1_poly(r):
    """expm1(r) for |r| <= ln2/2 by its Taylor series to degree 14 in Horner form.

    Truncation error: r**15/15! < 1.1e-19 * |r| for |r| <= 0.3466, far below half an ulp.
    """
    p = 1.0 / 1307674368000.0  # 1/15!
    p = p * r + 1.0 / 87178291200.0  # 1/14!
    p = p * r + 1.0 / 6227020800.0  # 1/13!
    p = p * r + 1.0 / 479001600.0  # 1/12!
    p = p * r + 1.0 / 39916800.0  # 1/11!
    p = p * r + 1.0 / 3628800.0  # 1/10!
    p = p * r + 1.0 / 362880.0  # 1/9!
    p = p * r + 1.0 / 40320.0  # 1/8!
    p = p * r + 1.0 / 5040.0  # 1/7!
    p = p * r + 1.0 / 720.0  # 1/6!
    p = p * r + 1.0 / 120.0  # 1/5!
    p = p * r + 1.0 / 24.0  # 1/4!
    p = p * r + 1.0 / 6.0  # 1/3!
    p = p * r + 0.5  # 1/2!
    # r + r*r*(1/2 + r/6 + ...): adding r last keeps the relative error near 1 ulp for small r.
    return r + (r * r) * p


@njit(inline="always")
def _reduce(x):
    """x = k*ln2 + r with k integer (float64-valued) and |r| <= ln2/2 (+ tiny)."""
    k = math.floor(x * INV_LN2 + 0.5)
    r = (x - k * LN2_HI) - k * LN2_LO
    return k, r


@njit(cache=True)
def expm1_64(x):
    """e**x - 1 in float64 for x >= 0 (no cancellation: 2**k*expm1(r) + (2**k - 1) has positive terms
    when k >= 1, and k = 0 uses the polynomial directly)."""
    x = np.float64(x)
    if x > EXP_OVERFLOW:
        return np.inf
    k, r = _reduce(x)
    ki = np.int32(k)
    if ki == 0:
        return _expm1_poly(r)
    em = _expm1_poly(r)
    if ki > 60:
        return math.ldexp(1.0 + em, ki) - 1.0
    s = POW2[ki + 1074]  # 2**k, exact (1 <= k <= 60)
    return s * em + (s - 1.0)  # s - 1 exact for k <= 53; for 53 < k <= 60 the -1 is below an ulp anyway


@njit(cache=True)
def tanh64(x):
    """tanh(x) = sign(x) * e / (e + 2) with e = expm1(2|x|); exact +-1 for |x| > 22, x for |x| < 2**-28."""
    x = np.float64(x)
    if x != x:
        return x
    a = abs(x)
    if a > 22.0:
        t = 1.0
    elif a < 3.725290298461914e-09:  # 2**-28: tanh(x) = x - x**3/3 rounds to x
        return x
    else:
        e = expm1_64(2.0 * a)
        t = e / (e + 2.0)
    return t if x >= 0.0 else -t


@njit(cache=True)
def logistic64(x):
    """1 / (1 + e**-x) in float64."""
    return 1.0 / (1.0 + exp64(-np.float64(x)))


@njit(cache=True)
def powi64(b, n):
    """b**n in float64 for an integer n >= 0 by binary exponentiation (square-and-multiply, low bit first)."""
    b = np.float64(b)
    n = np.int64(n)
    result = 1.0
    while n > 0:
        if n & 1:
            result = result * b
        b = b * b
        n >>= 1
    return result


@njit(cache=True)
def exp_f32(x):
    """float32 e**x (replaces expf)."""
    return np.float32(exp64(np.float64(x)))


@njit(cache=True)
def tanh_f32(x):
    """float32 tanh (replaces tanhf)."""
    return np.float32(tanh64(np.float64(x)))


@njit(cache=True)
def logistic_f32(p):
    """gmix's Sigmoid::Logistic in float32: 1 / (1 + expf(-p)), every step rounded to float32."""
    one = np.float32(1.0)
    return one / (one + exp_f32(-np.float32(p)))


@njit(cache=True)
def powf_int(b, t):
    """float32 b**t for float32 b and an integer-valued t >= 0 (replaces powf(beta, t) in Adam)."""
    return np.float32(powi64(np.float64(b), np.int64(t)))
