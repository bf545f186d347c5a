"""Tests of the LSTM port (gmixpy/models/lstm.py); its deterministic math is tested in test_math.py.

A tiny LSTM (input 16, output 16, 8 cells, horizon 4) is checked against an independent float64 numpy
reference (forward, BPTT gradients, Adam), its gradients against finite differences, the long-term/short-term
memory split (prediction alone never writes LstmMemory) and determinism.
"""
from __future__ import annotations

import inspect
import math
import re

import numpy as np
import pytest

from gmixpy.models.lstm import (
    LstmMemory,
    LstmState,
    glibc_rand,
    lstm_learn,
    lstm_new,
    lstm_observe,
    lstm_predict,
)
from lstm_reference import lstm_gradients

I, O, C, H = 16, 16, 8, 4


def _copy(nt):
    return type(nt)(*[np.array(a, copy=True) for a in nt])


def _inputs(n, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.1, 1.0, (n, I)).astype(np.float32)
    return (x / x.sum(1, keepdims=True)).astype(np.float32)


def _bytes(n, seed=2):
    return np.random.default_rng(seed).integers(0, O, n).astype(np.int64)


def _run(params, memory, state, xs, data, last, learn=True):
    """Predict/learn over data; returns the predicted distributions."""
    out = np.zeros(O, np.float32)
    probs = np.zeros((len(data), O), np.float32)
    for t, b in enumerate(data):
        lstm_predict(params, memory, state, xs[t], last, out)
        probs[t] = out
        if learn:
            lstm_learn(params, memory, state, int(b))
        last = int(b)
    return probs


# ----------------------------------------------------------------------------------------------------------------
# Independent float64 reference of gmix's LSTM (one layer), written with whole-matrix numpy operations.
# Gate matrices use gmix's layout: W[g] is [cells, O + n] over z = [onehot(symbol), x, h_prev, 1].
# ----------------------------------------------------------------------------------------------------------------


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _ref_params(params, memory):
    n = int(params.layer_input_size[0])
    W = [memory.weights[0, : O + n, g * C : (g + 1) * C].T.astype(np.float64) for g in range(3)]
    return W, memory.gamma[0].astype(np.float64), memory.beta[0].astype(np.float64)


def _ref_window(W, gamma, beta, OW, xs, syms, targets, h0, c0):
    """Forward over a window and exact reverse-mode gradients of sum_t -log p_t[target_t]."""
    T = len(syms)
    h, c = h0.copy(), c0.copy()
    tape, probs, loss = [], [], 0.0
    for t in range(T):
        z = np.concatenate([np.eye(O)[syms[t]], xs[t].astype(np.float64), h, [1.0]])
        pre = [W[g] @ z for g in range(3)]
        ivar = [1.0 / np.sqrt(np.mean(p * p) + 1e-5) for p in pre]
        nrm = [pre[g] * ivar[g] for g in range(3)]
        s = [nrm[g] * gamma[g] + beta[g] for g in range(3)]
        f, a, o = _sigmoid(s[0]), np.tanh(s[1]), _sigmoid(s[2])
        c_prev = c
        c = f * c_prev + (1.0 - f) * a
        h = o * np.tanh(c)
        logits = OW[t] @ np.concatenate([h, [1.0]])
        p = np.exp(logits - logits.max())
        p /= p.sum()
        probs.append(p)
        loss -= math.log(p[targets[t]])
        tape.append((z, ivar, nrm, f, a, o, c_prev, c))
    h_end, c_end = h, c
    dW = [np.zeros_like(w) for w in W]
    dgamma, dbeta = np.zeros_like(gamma), np.zeros_like(beta)
    dh_next, dc_next = np.zeros(C), np.zeros(C)
    for t in range(T - 1, -1, -1):
        z, ivar, nrm, f, a, o, c_prev, c = tape[t]
        dlogits = probs[t].copy()
        dlogits[targets[t]] -= 1.0
        dh = OW[t][:, :C].T @ dlogits + dh_next
        tc = np.tanh(c)
        do = dh * tc
        dc = dc_next + dh * o * (1.0 - tc * tc)
        df = dc * (c_prev - a)
        da = dc * (1.0 - f)
        ds = [df * f * (1.0 - f), da * (1.0 - a * a), do * o * (1.0 - o)]
        dh_next = np.zeros(C)
        for g in range(3):
            dgamma[g] += ds[g] * nrm[g]
            dbeta[g] += ds[g]
            dn = ds[g] * gamma[g]
            dpre = ivar[g] * (dn - nrm[g] * np.mean(dn * nrm[g]))
            dW[g] += np.outer(dpre, z)
            dh_next += W[g][:, O + I : O + I + C].T @ dpre
        dc_next = dc * f
    return np.array(probs), loss, h_end, c_end, dW, dgamma, dbeta


def _ref_adam(w, m, v, g, t, lr=0.03, limit=3000):
    b1, b2, eps = 0.025, 0.9999, 1e-6
    t = min(t, limit)
    alpha = lr * 0.1 / math.sqrt(5e-5 * t + 1.0)
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    return w - alpha * (m / (1 - b1**t)) / np.sqrt(v / (1 - b2**t) + eps), m, v


@pytest.fixture(scope="module")
def window():
    """A tiny LSTM trained for 3 horizons, then one more horizon predicted (gradients not yet applied)."""
    params, memory, state = lstm_new(input_size=I, output_size=O, num_cells=C, horizon=H)
    data = _bytes(4 * H)
    xs = _inputs(4 * H)
    _run(params, memory, state, xs[: 3 * H], data[: 3 * H], 0)
    assert state.epoch[0] == 0
    start_state = _copy(state)
    start_memory = _copy(memory)
    last = int(data[3 * H - 1])
    out = np.zeros(O, np.float32)
    probs = []
    for t in range(3 * H, 4 * H):
        lstm_predict(params, memory, state, xs[t], last, out)
        probs.append(out.copy())
        if t < 4 * H - 1:  # the last byte is given to lstm_gradients / lstm_learn by the tests
            lstm_learn(params, memory, state, int(data[t]))
        last = int(data[t])
    syms = [int(data[3 * H - 1])] + [int(b) for b in data[3 * H : 4 * H - 1]]
    return dict(params=params, memory=memory, state=state, start_state=start_state, start_memory=start_memory,
                xs=xs[3 * H :], syms=syms, targets=[int(b) for b in data[3 * H :]], probs=np.array(probs))


def _reference_for(w):
    params, memory = w["params"], w["memory"]
    Wr, gamma, beta = _ref_params(params, memory)
    OW = [memory.output_layer[t].T.astype(np.float64) for t in range(H)]
    h0 = w["start_state"].hidden[:C].astype(np.float64)
    c0 = w["start_state"].cell[0].astype(np.float64)
    return _ref_window(Wr, gamma, beta, OW, w["xs"], w["syms"], w["targets"], h0, c0)


# (a) forward and backward against the float64 reference -----------------------------------------------------------


def test_forward_matches_reference(window):
    probs, _, h, c, *_ = _reference_for(window)
    np.testing.assert_allclose(window["probs"], probs, rtol=2e-5, atol=1e-7)
    state = window["state"]
    np.testing.assert_allclose(state.hidden[:C], h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state.cell[0], c, rtol=1e-5, atol=1e-6)
    assert state.hidden[C] == 1.0


def test_first_prediction_is_uniform():
    params, memory, state = lstm_new(input_size=I, output_size=O, num_cells=C, horizon=H)
    out = np.zeros(O, np.float32)
    lstm_predict(params, memory, state, _inputs(1)[0], 0, out)
    assert np.all(out == np.float32(1.0 / O))  # the output layer starts at zero
    assert state.epoch[0] == 1


def test_bptt_gradients_match_reference(window):
    memory, state = _copy(window["memory"]), _copy(window["state"])
    grad, ggrad, bgrad = lstm_gradients(window["params"], memory, state, window["targets"][-1])
    _, _, _, _, dW, dgamma, dbeta = _reference_for(window)
    n = int(window["params"].layer_input_size[0])
    for g in range(3):
        port = grad[0, : O + n, g * C : (g + 1) * C].T
        np.testing.assert_allclose(port, dW[g], rtol=1e-4, atol=2e-6)
    np.testing.assert_allclose(ggrad[0], dgamma, rtol=1e-4, atol=2e-6)
    np.testing.assert_allclose(bgrad[0], dbeta, rtol=1e-4, atol=2e-6)
    assert np.abs(grad).max() > 1e-3  # non-trivial


def test_learn_applies_adam_and_output_layer_step(window):
    params = window["params"]
    memory, state = _copy(window["memory"]), _copy(window["state"])
    before = _copy(memory)
    lstm_learn(params, memory, state, window["targets"][-1])
    _, _, _, _, dW, dgamma, dbeta = _reference_for(window)
    t = int(before.update_steps[0]) + 1
    assert memory.update_steps[0] == t
    n = int(params.layer_input_size[0])
    for g in range(3):
        sl = (0, slice(0, O + n), slice(g * C, (g + 1) * C))
        w, _, _ = _ref_adam(before.weights[sl].T.astype(np.float64), before.weights_m[sl].T, before.weights_v[sl].T,
                            dW[g], t)
        np.testing.assert_allclose(memory.weights[sl].T, w, rtol=0, atol=2e-5)
    gam, _, _ = _ref_adam(before.gamma[0].astype(np.float64), before.gamma_m[0], before.gamma_v[0], dgamma, t)
    np.testing.assert_allclose(memory.gamma[0], gam, rtol=0, atol=2e-5)
    bet, _, _ = _ref_adam(before.beta[0].astype(np.float64), before.beta_m[0], before.beta_v[0], dbeta, t)
    np.testing.assert_allclose(memory.beta[0], bet, rtol=0, atol=2e-5)
    # Output layer: copy 0 (next timestep) = copy H-1 - lr * (p - onehot) * hidden.
    err = window["probs"][-1].astype(np.float64)
    err[window["targets"][-1]] -= 1.0
    expect = before.output_layer[H - 1].astype(np.float64) - 0.03 * np.outer(state.hidden, err)
    np.testing.assert_allclose(memory.output_layer[0], expect, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(memory.output_layer[1:], before.output_layer[1:])


# (b) gradients by finite differences ------------------------------------------------------------------------------


def _port_window_loss(params, memory, state, w):
    """Cross-entropy (float64 sum) of the port's own forward pass over the window."""
    out = np.zeros(O, np.float32)
    loss = 0.0
    for t in range(H):
        lstm_predict(params, memory, state, w["xs"][t], w["syms"][t], out)
        loss -= math.log(float(out[w["targets"][t]]))
    return loss


def test_gradients_finite_differences_reference(window):
    """The float64 reference's BPTT gradient is the true gradient (tight central differences)."""
    Wr, gamma, beta = _ref_params(window["params"], window["memory"])
    memory = window["memory"]
    OW = [memory.output_layer[t].T.astype(np.float64) for t in range(H)]
    h0 = window["start_state"].hidden[:C].astype(np.float64)
    c0 = window["start_state"].cell[0].astype(np.float64)
    args = (OW, window["xs"], window["syms"], window["targets"], h0, c0)
    _, _, _, _, dW, dgamma, dbeta = _ref_window(Wr, gamma, beta, *args)
    rng = np.random.default_rng(5)
    eps = 1e-6
    for g in range(3):
        cols = list(rng.choice(Wr[g].shape[1], 12, replace=False)) + [window["syms"][0], Wr[g].shape[1] - 1]
        for i, j in zip(rng.integers(0, C, len(cols)), cols):
            Wp = [w.copy() for w in Wr]
            Wm = [w.copy() for w in Wr]
            Wp[g][i, j] += eps
            Wm[g][i, j] -= eps
            fd = (_ref_window(Wp, gamma, beta, *args)[1] - _ref_window(Wm, gamma, beta, *args)[1]) / (2 * eps)
            assert fd == pytest.approx(dW[g][i, j], rel=1e-5, abs=1e-8)
        for i in range(C):
            for param, grad in ((gamma, dgamma), (beta, dbeta)):
                pp, pm = param.copy(), param.copy()
                pp[g, i] += eps
                pm[g, i] -= eps
                lp = _ref_window(Wr, pp if param is gamma else gamma, pp if param is beta else beta, *args)[1]
                lm = _ref_window(Wr, pm if param is gamma else gamma, pm if param is beta else beta, *args)[1]
                assert (lp - lm) / (2 * eps) == pytest.approx(grad[g, i], rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("layers", [1, 2])
def test_gradients_finite_differences_port(layers):
    """The port's BPTT gradient against central differences of the port's own float32 forward pass."""
    params, memory, state = lstm_new(input_size=I, output_size=O, num_cells=C, num_layers=layers, horizon=H,
                                     independent_layer_init=True)
    data, xs = _bytes(3 * H, seed=7), _inputs(3 * H, seed=8)
    _run(params, memory, state, xs[: 2 * H], data[: 2 * H], 0)
    start_state = _copy(state)
    w = dict(xs=xs[2 * H :], syms=[int(data[2 * H - 1])] + [int(b) for b in data[2 * H : 3 * H - 1]],
             targets=[int(b) for b in data[2 * H :]])
    out = np.zeros(O, np.float32)
    for t in range(H):
        lstm_predict(params, memory, state, w["xs"][t], w["syms"][t], out)
        if t < H - 1:
            lstm_learn(params, memory, state, w["targets"][t])
    window_memory = _copy(memory)  # output-layer copies as used by the window; weights as at its start
    grad, ggrad, bgrad = lstm_gradients(params, _copy(memory), _copy(state), w["targets"][-1])
    h = np.float32(2e-3)
    checked = 0
    rng = np.random.default_rng(9)
    for layer in range(layers):
        rows = O + int(params.layer_input_size[layer])
        g_abs = np.abs(grad[layer, :rows])
        flat = np.argsort(g_abs, axis=None)[::-1][:6]  # the largest gradients: best signal-to-noise
        assert g_abs.max() > 2e-3  # well above the tolerance below
        picks = [np.unravel_index(k, g_abs.shape) for k in flat]
        picks += [(rng.integers(0, rows), rng.integers(0, 3 * C)) for _ in range(4)]
        for r, k in picks:
            losses = []
            for sign in (1, -1):
                m = _copy(window_memory)
                m.weights[layer, r, k] += sign * h
                losses.append(_port_window_loss(params, m, _copy(start_state), w))
            fd = (losses[0] - losses[1]) / (2 * float(h))
            # float32 forward: the difference quotient carries ~5e-5 of rounding noise
            assert fd == pytest.approx(float(grad[layer, r, k]), rel=2e-2, abs=1e-4)
            checked += 1
        for arr, garr in (("gamma", ggrad), ("beta", bgrad)):
            for g in range(3):
                i = int(np.argmax(np.abs(garr[layer, g])))
                losses = []
                for sign in (1, -1):
                    m = _copy(window_memory)
                    getattr(m, arr)[layer, g, i] += sign * h
                    losses.append(_port_window_loss(params, m, _copy(start_state), w))
                fd = (losses[0] - losses[1]) / (2 * float(h))
                assert fd == pytest.approx(float(garr[layer, g, i]), rel=2e-2, abs=1e-4)
    assert checked >= 10


# (c) prediction without learning leaves the long-term memory untouched --------------------------------------------


def test_prediction_alone_keeps_memory_bit_identical():
    params, memory, state = lstm_new(input_size=I, output_size=O, num_cells=C, horizon=H)
    _run(params, memory, state, _inputs(3 * H + 1), _bytes(3 * H + 1), 0)  # trained, mid-horizon
    frozen = _copy(memory)
    state_before = _copy(state)
    data = _bytes(200, seed=3)
    probs = _run(params, memory, state, _inputs(200, seed=4), data, int(data[0]), learn=False)
    for name, a, b in zip(LstmMemory._fields, memory, frozen):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
    assert not np.array_equal(state.hidden, state_before.hidden)  # the short-term state did move
    assert len({p.tobytes() for p in probs}) > 100  # and predictions vary
    lstm_observe(params, state, 5)  # recording a byte without learning writes state only
    assert all(a.tobytes() == b.tobytes() for a, b in zip(memory, frozen))


def test_every_field_is_an_array_its_comment_describes():
    """Each field of the three NamedTuples is an array, and its comment in lstm.py starts with its dtype and as
    many dimensions as it has, e.g. `weights: np.ndarray  # float32[L, O + N, 3*C]`."""
    params, memory, state = lstm_new(input_size=I, output_size=O, num_cells=C, horizon=H)
    for nt in (params, memory, state):
        source = inspect.getsource(type(nt))
        for name, value in zip(nt._fields, nt):
            assert isinstance(value, np.ndarray) and value.ndim >= 1, name
            doc = re.search(rf"^ +{name}: np\.ndarray +# (\w+)\[([^\]]*)\]", source, re.M)
            assert doc, f"{type(nt).__name__}.{name} has no comment giving its dtype and shape"
            assert doc.group(1) == value.dtype.name, name
            assert len(doc.group(2).split(",")) == value.ndim, name
    assert set(LstmMemory._fields).isdisjoint(LstmState._fields)


# (d) determinism ----------------------------------------------------------------------------------------------------


def test_two_fresh_models_agree_bit_for_bit():
    data, xs = _bytes(10 * H + 3, seed=11), _inputs(10 * H + 3, seed=12)
    runs = []
    for _ in range(2):
        params, memory, state = lstm_new(input_size=I, output_size=O, num_cells=C, horizon=H)
        runs.append((_run(params, memory, state, xs, data, 0), memory, state))
    assert runs[0][0].tobytes() == runs[1][0].tobytes()
    for a, b in zip(runs[0][1], runs[1][1]):
        assert a.tobytes() == b.tobytes()
    for a, b in zip(runs[0][2], runs[1][2]):
        assert a.tobytes() == b.tobytes()


def test_initialisation_follows_glibc_rand():
    # srand(0xDEADBEEF); rand() with glibc: values checked against a C program.
    r = glibc_rand(0xDEADBEEF, 100000)
    assert list(r[:5]) == [352217057, 918588210, 499345174, 513054021, 248820349]
    assert r[99999] == 940848361
    params, memory, _ = lstm_new(input_size=I, output_size=O, num_cells=C, horizon=H)
    n = int(params.layer_input_size[0])
    val = np.sqrt(np.float32(6.0) / np.float32(I + O))
    first = -val + (np.float32(r[0]) / np.float32(2147483647)) * (np.float32(2) * val)
    assert memory.weights[0, 0, 0] == first  # cell 0, column 0, forget gate: the first draw
    assert np.all(memory.weights[0, O + n - 1, :C] == 1.0)  # forget-gate bias column
    assert np.all(np.abs(memory.weights[0, : O + n - 1]) <= val)
