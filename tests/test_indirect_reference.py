"""The compiled indirect model against a plain-Python transcription of gmix's Indirect (models/indirect.cpp),
and the deterministic logistic/logit against libm."""
from __future__ import annotations

import math

import numpy as np

from gmixpy._jit import njit
from gmixpy.contexts.states import NONSTATIONARY, RUN_MAP
from gmixpy.mixer.sigmoid import exp64, log64, logistic, logit
from gmixpy.models.indirect import indirect_learn, indirect_new, indirect_predict
from gmixpy.spec import Indirect


class ReferenceIndirect:
    """gmix's Indirect, line by line, in Python with explicit float32 rounding."""

    def __init__(self, table_bits, learning_rate):
        size = (1 << table_bits) * 256 + 1
        self.nonstationary = [255] * size
        self.run_map = [0] * size
        self.ns_pred = [np.float32(0)] * 256
        self.rm_pred = [np.float32(0)] * 256
        self.lr = np.float32(learning_rate)

    @staticmethod
    def logistic(p):
        return np.float32(1) / (np.float32(1) + np.float32(math.exp(-float(p))))

    def predict(self, context, bit_context):
        self.index = (((context << 8) & 0xFFFFFFFF) + bit_context) % len(self.nonstationary)
        ns, rm = self.nonstationary[self.index], self.run_map[self.index]
        return (self.ns_pred[ns] if ns != 255 else np.float32(0), self.rm_pred[rm] if rm != 0 else np.float32(0))

    def learn(self, bit):
        i = self.index
        ns = self.nonstationary[i]
        if ns == 255:
            ns = 0
        self.ns_pred[ns] = np.float32(self.ns_pred[ns] + (np.float32(bit) - self.logistic(self.ns_pred[ns])) * self.lr)
        self.nonstationary[i] = int(NONSTATIONARY[ns, bit])
        rm = self.run_map[i]
        self.rm_pred[rm] = np.float32(self.rm_pred[rm] + (np.float32(bit) - self.logistic(self.rm_pred[rm])) * self.lr)
        self.run_map[i] = int(RUN_MAP[rm * 2 + bit])


@njit(cache=True)
def _step(p, m, s, contexts, inputs, bit):
    indirect_predict(p, m, s, contexts, inputs)
    out0, out1 = inputs[0], inputs[1]
    indirect_learn(p, m, s, bit)
    return out0, out1


def test_indirect_matches_gmix_reference():
    spec = Indirect("ctx", table_bits=4, learning_rate=0.02, name="t")
    slots = {"ctx": 2, "bit_context": 1}
    p, m, s = indirect_new([spec], slots, [0])
    ref = ReferenceIndirect(4, 0.02)
    rng = np.random.default_rng(3)
    contexts = np.zeros(8, np.int64)
    inputs = np.zeros(2, np.float32)
    text = (b"abracadabra, the indirect model learns bit histories " * 20)
    for byte in text:
        ctx = int(rng.integers(0, 1 << 32)) if rng.uniform() < 0.1 else byte * 7919
        partial = 1
        for j in range(7, -1, -1):
            bit = (byte >> j) & 1
            contexts[2] = ctx
            contexts[1] = partial - 1
            expected = ref.predict(ctx, partial - 1)
            got = _step(p, m, s, contexts, inputs, bit)
            ref.learn(bit)
            # libm's exp and ours may differ in the last bit of a float64, which can move a float32 by one ulp.
            assert np.allclose(got, expected, rtol=1e-5, atol=1e-6)
            partial = partial * 2 + bit
    stored = m.states[:, 0] ^ 255
    assert list(stored) == ref.nonstationary
    assert list(m.states[:, 1]) == ref.run_map


@njit(cache=True)
def _exp(x):
    return exp64(x)


@njit(cache=True)
def _log(x):
    return log64(x)


@njit(cache=True)
def _logistic_logit(x):
    return logistic(np.float32(x)), logit(np.float32(x))


def test_deterministic_math_accuracy():
    xs = np.concatenate([np.linspace(-740, 705, 4001), np.random.default_rng(5).normal(0, 20, 2000)])
    for x in xs:
        want = math.exp(x)
        if want > 1e-300:
            assert abs(_exp(x) - want) <= 4e-16 * want
    for x in np.exp(np.random.default_rng(6).uniform(-700, 700, 3000)):
        assert abs(_log(x) - math.log(x)) <= 4e-16 * max(1.0, abs(math.log(x)))
    assert _exp(0.0) == 1.0 and _log(1.0) == 0.0
    for x in np.linspace(-30, 30, 601):
        p, _ = _logistic_logit(x)
        assert abs(float(p) - 1 / (1 + math.exp(-float(np.float32(x))))) < 1e-7
    for q in np.linspace(0.001, 0.999, 99):
        _, lg = _logistic_logit(q)
        qq = float(np.float32(q))
        assert abs(float(lg) - math.log(qq / (1 - qq))) < 1e-5
