"""The mixer network (gmix's Mixer): three layers of context-selected linear mixers in the logit domain.

Layer 0 mixer i mixes every model input and the outputs of layer-0 mixers 0..i-1.  Layer 1 mixer j mixes every
layer-0 output, the skip-connected model inputs (gmix: the LSTM) and layer-1 mixers 0..j-1.  The final mixer
mixes all of layer 0, the skip-connected inputs and all of layer 1.  So each layer's inputs sit in one vector and
every mixer reads a prefix of it:
    inputs0 = [model inputs (n_inputs) | layer-0 outputs (n0)]
    inputs1 = [layer-0 outputs (n0) | skip-connected inputs (n_skip) | layer-1 outputs (n1)]
(gmix orders layer 1's weights differently; the order of a mixer's weights carries no meaning.)

Each mixer selects a weight set by its context.  A weight set is allocated, zeroed, from a growing pool the first
time learning sees its context, so memory follows the data; an unseen context predicts 0.

predict (`mixer_predict`, every bit, after all models): dot products in a fixed blocked order (8 partial sums
    combined pairwise), so the result is the same whether or not the compiler vectorises.
learn (`mixer_learn`, after the bit, when learning): gradient step on the coding loss with gmix's decay
    0.9 / (1e-7 * steps + 0.8) ** 0.8 * (1.5 - context steps / most steps of any context of this mixer), and the
    weight decay (1 - 3e-6) every 1024 steps of a context.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from .sigmoid import exp64, log64, logistic


class MixerParams(NamedTuple):
    slot: np.ndarray           # int32[n], context slot selecting each mixer's weight set
    learning_rate: np.ndarray  # float32[n]
    layer: np.ndarray          # int32[n], 0, 1 or 2 (final)
    table_offset: np.ndarray   # int64[n], first entry of each mixer's context table in MixerMemory.table
    table_size: np.ndarray     # int64[n], contexts per mixer: 2**table_bits (reduced with a mask)
    width: np.ndarray          # int64[n], weights per weight set = length of the input prefix it mixes
    output: np.ndarray         # int64[n], where the output goes: index into inputs0 (layer 0), inputs1 (layer 1);
    #                            -1 for the final mixer
    output1: np.ndarray        # int64[n], for layer 0 also its index in inputs1 (-1 otherwise)
    skip_index: np.ndarray     # int32[n_skip], model inputs copied into inputs1 (skip connections) ...
    skip_at: np.ndarray        # int64[n_skip], ... at these positions (n0 + k)
    widest: np.ndarray         # int64[1], sum of widths: the most weights one bit's learning can allocate


class MixerMemory(NamedTuple):  # long-term memory
    table: np.ndarray          # int64[sum(table_size), 2], per context: [weight offset + 1 in `weights` (0 = never
    #                            seen), learning steps of its weight set]; one row = one cache miss
    max_steps: np.ndarray      # int64[n], most steps of any context of each mixer (starts at 1, as gmix)
    learn_steps: np.ndarray    # int64[1], learning steps of the network (gmix's per-mixer steps_, all equal)
    contexts_seen: np.ndarray  # int64[n], weight sets allocated per mixer
    weights: np.ndarray        # float32[capacity], the weight-set pool; grows between chunks
    weights_used: np.ndarray   # int64[1], floats of `weights` in use


class MixerState(NamedTuple):  # short-term memory
    inputs0: np.ndarray        # float32[n_inputs + n0], model inputs (0 = inactive) then layer-0 outputs
    inputs1: np.ndarray        # float32[n0 + n_skip + n1], layer-0 outputs, skip inputs, layer-1 outputs
    final: np.ndarray          # float32[1], final mixer output (logit)
    entry: np.ndarray          # int64[n], context-table entry each mixer used this bit
    touch: np.ndarray          # float32[1], sink for the prefetch pass, so the compiler keeps its loads


def mixer_new(mixers, slots, n_inputs, skip_index, weight_reserve=1 << 16):
    n = len(mixers)
    layer = np.array([m.layer for m in mixers], np.int32)
    n0, n1, n_skip = int((layer == 0).sum()), int((layer == 1).sum()), len(skip_index)
    width = np.zeros(n, np.int64)
    output = np.full(n, -1, np.int64)
    output1 = np.full(n, -1, np.int64)
    i0 = i1 = 0
    for k, m in enumerate(mixers):
        if m.layer == 0:
            width[k] = n_inputs + i0
            output[k] = n_inputs + i0
            output1[k] = i0
            i0 += 1
        elif m.layer == 1:
            width[k] = n0 + n_skip + i1
            output[k] = n0 + n_skip + i1
            i1 += 1
        else:
            width[k] = n0 + n_skip + n1
    sizes = np.array([1 << m.table_bits for m in mixers], np.int64)
    offsets = np.zeros(n, np.int64)
    offsets[1:] = np.cumsum(sizes)[:-1]
    params = MixerParams(
        slot=np.array([slots[m.context] for m in mixers], np.int32),
        learning_rate=np.array([m.learning_rate for m in mixers], np.float32),
        layer=layer,
        table_offset=offsets,
        table_size=sizes,
        width=width,
        output=output,
        output1=output1,
        skip_index=np.array(skip_index, np.int32),
        skip_at=np.arange(n0, n0 + n_skip, dtype=np.int64),
        widest=np.array([width.sum()], np.int64),
    )
    total = int(sizes.sum())
    memory = MixerMemory(
        table=np.zeros((total, 2), np.int64),
        max_steps=np.ones(n, np.int64),
        learn_steps=np.zeros(1, np.int64),
        contexts_seen=np.zeros(n, np.int64),
        weights=np.zeros(max(weight_reserve, 8 * int(width.sum())), np.float32),
        weights_used=np.zeros(1, np.int64),
    )
    state = MixerState(np.zeros(n_inputs + n0, np.float32), np.zeros(n0 + n_skip + n1, np.float32),
                       np.zeros(1, np.float32), np.zeros(n, np.int64), np.zeros(1, np.float32))
    return params, memory, state


@njit(inline="always")
def dot(x, w):
    """sum(x[i] * w[i]) over w's length in float32, as 8 interleaved partial sums combined pairwise: a fixed
    order, so the result does not depend on whether or how the compiler vectorises."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = np.float32(0.0)
    n = w.shape[0]
    end8 = n - n % 8
    for i in range(0, end8, 8):
        s0 += x[i] * w[i]
        s1 += x[i + 1] * w[i + 1]
        s2 += x[i + 2] * w[i + 2]
        s3 += x[i + 3] * w[i + 3]
        s4 += x[i + 4] * w[i + 4]
        s5 += x[i + 5] * w[i + 5]
        s6 += x[i + 6] * w[i + 6]
        s7 += x[i + 7] * w[i + 7]
    for i in range(end8, n):
        s0 += x[i] * w[i]
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@njit(inline="always")
def train(x, w, update):
    for i in range(w.shape[0]):
        w[i] -= update * x[i]


@njit(inline="always")
def mixer_predict(p, m, s, contexts, inputs_models):
    """Run every mixer in order; returns the final output (logit).  `inputs_models` aliases s.inputs0."""
    for k in range(p.skip_index.shape[0]):
        s.inputs1[p.skip_at[k]] = inputs_models[p.skip_index[k]]
    n = p.slot.shape[0]
    # Pass 1 finds every mixer's weight set and touches its first cache lines.  Each dot product is longer than
    # the processor looks ahead, so without this the mixers' cache misses would be taken one after another.
    touched = np.float32(0.0)
    for k in range(n):
        entry = p.table_offset[k] + (contexts[p.slot[k]] & (p.table_size[k] - 1))
        s.entry[k] = entry
    for k in range(n):
        at = m.table[s.entry[k], 0] - 1
        if at >= 0:
            touched += m.weights[at] + m.weights[at + p.width[k] - 1]
    out = np.float32(0.0)
    weights = m.weights
    for k in range(n):
        at = m.table[s.entry[k], 0] - 1
        layer = p.layer[k]
        if at < 0:
            out = np.float32(0.0)
        elif layer == 0:
            out = dot(s.inputs0, weights[at:at + p.width[k]])
        else:
            out = dot(s.inputs1, weights[at:at + p.width[k]])
        if layer == 0:
            s.inputs0[p.output[k]] = out
            s.inputs1[p.output1[k]] = out
        elif layer == 1:
            s.inputs1[p.output[k]] = out
        else:
            s.final[0] = out
    s.touch[0] = touched
    return out


@njit(inline="always")
def mixer_base_decay(learn_steps):
    """gmix's 0.9 / pow(1e-7 * steps + 0.8, 0.8), in float64 then float32 as gmix stores it."""
    return np.float32(0.9 / exp64(0.8 * log64(0.0000001 * learn_steps + 0.8)))


@njit(inline="always")
def mixer_learn(p, m, s, bit):
    base_decay = mixer_base_decay(m.learn_steps[0])
    m.learn_steps[0] += 1
    fbit = np.float32(bit)
    shrink = np.float32(1.0) - np.float32(3.0e-6)
    for k in range(p.slot.shape[0]):
        entry = s.entry[k]
        width = p.width[k]
        if m.table[entry, 0] == 0:  # first time this context learns: allocate a zeroed weight set
            m.table[entry, 0] = m.weights_used[0] + 1
            m.weights_used[0] += width
            m.contexts_seen[k] += 1
        at = m.table[entry, 0] - 1
        steps = m.table[entry, 1]
        decay = np.float32(np.float64(base_decay) * (1.5 - np.float64(steps) / np.float64(m.max_steps[k])))
        layer = p.layer[k]
        if layer == 0:
            out = s.inputs0[p.output[k]]
        elif layer == 1:
            out = s.inputs1[p.output[k]]
        else:
            out = s.final[0]
        update = (decay * p.learning_rate[k]) * (logistic(out) - fbit)
        steps += 1
        m.table[entry, 1] = steps
        if steps > m.max_steps[k]:
            m.max_steps[k] = steps
        w = m.weights[at:at + width]
        if layer == 0:
            train(s.inputs0, w, update)
        else:
            train(s.inputs1, w, update)
        if (steps & 1023) == 0:
            for i in range(width):
                w[i] *= shrink
