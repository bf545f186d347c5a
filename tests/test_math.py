"""The deterministic math kernels (gmixpy/mixer/sigmoid.py, gmixpy/models/lstm_math.py) against libm: the same
results on every machine, and within a few ulp of the true values."""
from __future__ import annotations

import math

import numpy as np

from gmixpy.mixer.sigmoid import exp64, log64
from gmixpy.models.lstm_math import (
    exp_f32,
    expm1_64,
    logistic64,
    logistic_f32,
    powf_int,
    powi64,
    tanh64,
    tanh_f32,
)

# ---- the LSTM's functions ------------------------------------------------------------------------------


def _sweep():
    rng = np.random.default_rng(13)
    return np.concatenate([
        np.linspace(-745.0, 709.7, 20001), rng.uniform(-40, 40, 20000), rng.uniform(-1, 1, 5000),
        rng.uniform(-1e-6, 1e-6, 1000), [0.0, -0.0, 1e-300, -1e-300, 2.0**-30],
    ])


def _rel(a, b):
    return abs(a - b) / abs(b) if b != 0 else abs(a)


def test_exp64_matches_math_exp():
    worst = max(_rel(exp64(x), math.exp(x)) for x in _sweep() if math.exp(x) > 1e-300)
    assert worst < 1e-15
    assert exp64(710.0) == math.inf and exp64(-746.0) == 0.0 and exp64(0.0) == 1.0


def test_expm1_tanh_logistic_match_libm():
    xs = _sweep()
    assert max(_rel(expm1_64(x), math.expm1(x)) for x in xs if 0 <= x < 700) < 1e-15
    assert max(_rel(tanh64(x), math.tanh(x)) for x in xs if abs(x) < 50) < 1e-15
    assert tanh64(30.0) == 1.0 and tanh64(-30.0) == -1.0 and tanh64(1e-20) == 1e-20
    assert max(_rel(logistic64(x), 1.0 / (1.0 + math.exp(-x))) for x in xs if x > -700) < 1e-15
    assert max(_rel(powi64(0.9999, n), 0.9999**n) for n in range(0, 3001, 7)) < 1e-12


def test_float32_wrappers_round_correctly():
    xs = np.random.default_rng(14).uniform(-20, 20, 20000).astype(np.float32)
    for x in xs:
        assert exp_f32(x) == np.float32(math.exp(float(x)))
        assert tanh_f32(x) == np.float32(math.tanh(float(x)))
        e = np.float32(math.exp(-float(x)))
        assert logistic_f32(x) == np.float32(1) / (np.float32(1) + e)
    for t in (1, 2, 17, 3000):
        assert powf_int(np.float32(0.9999), t) == np.float32(float(np.float32(0.9999)) ** t)


def test_log64_matches_math_log():
    rng = np.random.default_rng(15)
    xs = np.concatenate([np.exp(rng.uniform(-700, 700, 20000)), rng.uniform(0.5, 2.0, 20000), [5e-324, 1e-310, 1.0]])
    assert max(_rel(log64(x), math.log(x)) for x in xs if x != 1.0) < 5e-16
    assert log64(1.0) == 0.0 and log64(0.0) == -math.inf
