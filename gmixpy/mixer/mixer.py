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

predict (`mixer_predict`, every bit, after all models): dot products in a fixed order (intrinsics.dot): the
    inputs known before the layer runs in 16 lanes with explicit vector instructions, then the outputs of the
    same layer's earlier mixers one by one, so each mixer waits only for those few terms.  The weight updates
    are vector instructions too (intrinsics.train).
learn (`mixer_learn`, after the bit, when learning): gradient step on the coding loss with gmix's decay
    0.9 / (1e-7 * steps + 0.8) ** 0.8 * (1.5 - context steps / most steps of any context of this mixer), and the
    weight decay (1 - 3e-6) every 1024 steps of a context.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from .._values import first_outside, within
from ..intrinsics import SCRATCH, dot, prefetch, scratch, train
from ..layout import table_offsets
from .sigmoid import exp64, log64, logistic_many


class MixerParams(NamedTuple):
    slot: np.ndarray           # int32[n], context slot selecting each mixer's weight set
    learning_rate: np.ndarray  # float32[n]
    layer: np.ndarray          # int32[n], 0, 1 or 2 (final)
    table_offset: np.ndarray   # int64[n], first entry of each mixer's context table in MixerMemory.table
    table_size: np.ndarray     # int64[n], contexts per mixer: 2**table_bits (reduced with a mask)
    width: np.ndarray          # int64[n], weights per weight set = length of the input prefix it mixes
    ready: np.ndarray          # int64[n], length of the prefix known before the mixer's layer runs; the rest are
    #                            outputs of mixers of the same layer (final mixer: of layer 1), the last one being
    #                            the output of the mixer just before
    output: np.ndarray         # int64[n], where the output goes: index into inputs0 (layer 0), inputs1 (layer 1);
    #                            -1 for the final mixer
    output1: np.ndarray        # int64[n], for layer 0 also its index in inputs1 (-1 otherwise)
    skip_index: np.ndarray     # int32[n_skip], model inputs copied into inputs1 (skip connections) ...
    skip_at: np.ndarray        # int64[n_skip], ... at these positions (n0 + k)
    widest: np.ndarray         # int64[1], sum of widths: the most weights one bit's learning can allocate
    warm_from: np.ndarray      # int64[n], the mixer whose current weight set a new weight set of this mixer starts
    #                            from (its common prefix; the rest zero), -1: new weight sets start at zero (gmix)
    sequential: np.ndarray     # int64[1], 1: every dot product adds its terms one at a time in gmix's order
    #                            (bit-exact with gmix's C++, slower); 0: in the 16-lane order of `dot` (faster)


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
    PER_BIT = ("inputs0", "inputs1", "final", "entry")  # fields that change within a byte (see generate.py)


def mixer_new(mixers, slots, n_inputs, skip_index, sequential=False, warm_start=False, weight_reserve=1 << 16):
    n = len(mixers)
    layer = np.array([m.layer for m in mixers], np.int32)
    n0, n1, n_skip = int((layer == 0).sum()), int((layer == 1).sum()), len(skip_index)
    width = np.zeros(n, np.int64)
    ready = np.zeros(n, np.int64)
    output = np.full(n, -1, np.int64)
    output1 = np.full(n, -1, np.int64)
    i0 = i1 = 0
    for k, m in enumerate(mixers):
        if m.layer == 0:
            width[k] = n_inputs + i0
            ready[k] = n_inputs
            output[k] = n_inputs + i0
            output1[k] = i0
            i0 += 1
        elif m.layer == 1:
            width[k] = n0 + n_skip + i1
            ready[k] = n0 + n_skip
            output[k] = n0 + n_skip + i1
            i1 += 1
        else:
            width[k] = n0 + n_skip + n1
            ready[k] = n0 + n_skip
    sizes = np.array([1 << m.table_bits for m in mixers], np.int64)
    offsets = table_offsets(sizes)
    params = MixerParams(
        slot=np.array([slots[m.context] for m in mixers], np.int32),
        learning_rate=np.array([m.learning_rate for m in mixers], np.float32),
        layer=layer,
        table_offset=offsets,
        table_size=sizes,
        width=width,
        ready=ready,
        output=output,
        output1=output1,
        skip_index=np.array(skip_index, np.int32),
        skip_at=np.arange(n0, n0 + n_skip, dtype=np.int64),
        widest=np.array([width.sum()], np.int64),
        warm_from=_warm_sources(mixers, slots) if warm_start else np.full(n, -1, np.int64),
        sequential=np.array([1 if sequential else 0], np.int64),
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
                       np.zeros(1, np.float32), np.zeros(n, np.int64))
    return params, memory, state


def _warm_sources(mixers, slots) -> np.ndarray:
    """For each mixer of layers 0 and 1, the first mixer of its layer without a context (always_zero), whose one
    weight set is trained on every bit: what a context seen for the first time knows best."""
    out = np.full(len(mixers), -1, np.int64)
    for k, m in enumerate(mixers):
        if m.layer < 2:
            source = next((j for j, o in enumerate(mixers) if o.layer == m.layer and o.context == "always_zero"), -1)
            out[k] = source if source != k else -1
    return out


def mixer_check(p: MixerParams, m: MixerMemory, s: MixerState) -> str | None:
    """The first stored value out of range, or None.  A context's weight offset (+1, 0 = unseen) must leave room
    for the mixer's whole weight set inside the used pool: the dot product and the update run unchecked over it.
    Steps never exceed their mixer's most steps (which divides them)."""
    used = int(m.weights_used[0]) if m.weights_used.size else 0
    problem = first_outside([
        ("ltm.mixer.weights_used", m.weights_used, 0, m.weights.shape[0]),
        ("ltm.mixer.max_steps", m.max_steps, 1, np.iinfo(np.int64).max),
        ("ltm.mixer.learn_steps", m.learn_steps, 0, np.iinfo(np.int64).max),
        ("ltm.mixer.contexts_seen", m.contexts_seen, 0, np.iinfo(np.int64).max),
        ("stm.mixer.entry", s.entry, 0, m.table.shape[0] - 1),
    ])
    if problem:
        return problem
    for k in range(p.slot.shape[0]):
        rows = m.table[p.table_offset[k]:p.table_offset[k] + p.table_size[k]]
        if not within(rows[:, 0], 0, max(used - int(p.width[k]) + 1, 0)):
            return "ltm.mixer.table (weight offset) out of range"
        if not within(rows[:, 1], 0, int(m.max_steps[k])):
            return "ltm.mixer.table (steps) out of range"
    return None


@njit(inline="always")
def mixer_predict(p, m, s, contexts, inputs_models):
    """Run every mixer in order; returns the final output (logit).  `inputs_models` aliases s.inputs0."""
    for k in range(p.skip_index.shape[0]):
        s.inputs1[p.skip_at[k]] = inputs_models[p.skip_index[k]]
    n = p.slot.shape[0]
    # Pass 1 finds every mixer's weight set and prefetches it.  Each dot product is longer than the processor
    # looks ahead, so without this the mixers' cache misses would be taken one after another.
    for k in range(n):
        entry = p.table_offset[k] + (contexts[p.slot[k]] & (p.table_size[k] - 1))
        s.entry[k] = entry
        prefetch(m.table, 2 * entry)
    for k in range(n):
        at = m.table[s.entry[k], 0] - 1
        if at >= 0:
            for i in range(0, p.width[k] + 15, 16):
                prefetch(m.weights, at + i)
    out = np.float32(0.0)
    weights = m.weights
    for k in range(n):
        at = m.table[s.entry[k], 0] - 1
        layer = p.layer[k]
        if at < 0:
            out = np.float32(0.0)
        elif p.sequential[0]:
            out = _gmix_dot(p, s, weights, at, k)
        elif layer == 0:
            out = dot(s.inputs0, weights, at, p.ready[k], p.width[k], out)
        else:
            out = dot(s.inputs1, weights, at, p.ready[k], p.width[k], out)
        if layer == 0:
            s.inputs0[p.output[k]] = out
            s.inputs1[p.output1[k]] = out
        elif layer == 1:
            s.inputs1[p.output[k]] = out
        else:
            s.final[0] = out
    return out


@njit(inline="always")
def _gmix_dot(p, s, w, at, k):
    """Mixer k's dot product with gmix's terms in gmix's order, one float32 multiply and add at a time: layer 0
    mixes the model inputs then the earlier layer-0 outputs (inputs0 is laid out so); layers 1 and 2 mix the
    layer-0 outputs, then the layer-1 outputs (the earlier ones, or all for the final mixer), then the
    skip-connected inputs, which inputs1 holds between the two."""
    total = np.float32(0.0)
    if p.layer[k] == 0:
        x = s.inputs0
        for i in range(p.width[k]):
            total = total + x[i] * w[at + i]
        return total
    x = s.inputs1
    n_skip = p.skip_index.shape[0]
    first_skip = p.ready[k] - n_skip
    for i in range(first_skip):
        total = total + x[i] * w[at + i]
    for i in range(p.ready[k], p.width[k]):
        total = total + x[i] * w[at + i]
    for i in range(first_skip, p.ready[k]):
        total = total + x[i] * w[at + i]
    return total


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
    probability = scratch()
    n = p.slot.shape[0]
    for first in range(0, n, SCRATCH):
        last = min(n, first + SCRATCH)
        # All the mixers' logistic(output) first, 8 at a time (`logistic_many`), then the updates.
        for k in range(first, last):
            layer = p.layer[k]
            if layer == 0:
                probability[k - first] = s.inputs0[p.output[k]]
            elif layer == 1:
                probability[k - first] = s.inputs1[p.output[k]]
            else:
                probability[k - first] = s.final[0]
        logistic_many(probability, last - first)
        for k in range(first, last):
            entry = s.entry[k]
            width = p.width[k]
            if m.table[entry, 0] == 0:  # first time this context learns: allocate a zeroed weight set
                m.table[entry, 0] = m.weights_used[0] + 1
                m.weights_used[0] += width
                m.contexts_seen[k] += 1
                source = p.warm_from[k]
                if source >= 0 and m.table[s.entry[source], 0] > 0:
                    src = m.table[s.entry[source], 0] - 1
                    dst = m.table[entry, 0] - 1
                    for i in range(min(width, p.width[source])):
                        m.weights[dst + i] = m.weights[src + i]
            at = m.table[entry, 0] - 1
            steps = m.table[entry, 1]
            decay = np.float32(np.float64(base_decay) * (1.5 - np.float64(steps) / np.float64(m.max_steps[k])))
            update = (decay * p.learning_rate[k]) * (probability[k - first] - fbit)
            steps += 1
            m.table[entry, 1] = steps
            if steps > m.max_steps[k]:
                m.max_steps[k] = steps
            if p.layer[k] == 0:
                train(s.inputs0, m.weights, at, update, width)
            else:
                train(s.inputs1, m.weights, at, update, width)
            if (steps & 1023) == 0:
                w = m.weights[at:at + width]
                for i in range(width):
                    w[i] *= shrink
