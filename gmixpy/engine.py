"""Compiled chunk loops: the whole per-bit work for a run of bytes happens inside one kernel call.

Each kernel processes bytes until its range is done or a buffer needs to grow (history or mixer pool: checked
before each byte with `has_room`), then returns how far it got; the Python side grows the buffers, does I/O and
progress, and calls again.  No Python runs per byte.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._jit import njit
from .coder.arithmetic import MAX_BYTES_PER_BIT, decode_bit, decode_start, encode_bit, encode_flush
from .mixer.sigmoid import log64, logistic, logistic_many, logit
from .predictor import clamp_probability, has_room, predict, update

OUT_BYTES_PER_BYTE = 8 * MAX_BYTES_PER_BIT  # worst-case coded bytes per input byte
IN_BYTES_PER_BYTE = 8 * MAX_BYTES_PER_BIT   # worst-case stream bytes one decoded byte consumes
_LN2 = 0.6931471805599453


@njit(_nrt=False)
def compress_chunk(P, L, S, C, data, pos, end, out, out_pos):
    """Code data[pos:end] (learning as it goes); out must have OUT_BYTES_PER_BYTE bytes per byte to spare.
    Returns (pos reached, out_pos)."""
    while pos < end:
        if not has_room(P, L):
            break
        c = np.int64(data[pos])
        for j in range(7, -1, -1):
            bit = (c >> j) & 1
            p = predict(P, L, S)
            out_pos = encode_bit(C, bit, p, out, out_pos)
            update(P, L, S, bit, True)
        pos += 1
    return pos, out_pos


@njit(_nrt=False)
def compress_finish(C, out, out_pos):
    return encode_flush(C, out, out_pos)


@njit(_nrt=False)
def decompress_start(C, inp, in_pos, in_len):
    return decode_start(C, inp, in_pos, in_len)


@njit(_nrt=False)
def decompress_chunk(P, L, S, C, inp, in_pos, in_len, final, out, out_pos, out_end):
    """Decode bytes into out[out_pos:out_end].  Unless `final` (no more stream), stops while fewer than
    IN_BYTES_PER_BYTE stream bytes remain so the caller can refill.  Returns (in_pos, out_pos)."""
    while out_pos < out_end:
        if not final and in_pos + IN_BYTES_PER_BYTE > in_len:
            break
        if not has_room(P, L):
            break
        byte = 1
        while byte < 256:
            p = predict(P, L, S)
            bit, in_pos = decode_bit(C, p, inp, in_pos, in_len)
            update(P, L, S, bit, True)
            byte = byte * 2 + bit
        out[out_pos] = byte - 256
        out_pos += 1
    return in_pos, out_pos


@njit(_nrt=False)
def evaluate_chunk(P, L, S, data, pos, end, learn, probs, inputs):
    """Cross-entropy of data[pos:end] in bits, learning when `learn`.  Returns (pos reached, bits).

    Unless probs is empty, it also keeps every bit's prediction (a trace): probs[8 * pos + j] receives the float32
    that compress_chunk would code bit j (from the most significant) of data[pos] with; and unless inputs has no
    rows, inputs[8 * pos + j] receives the model inputs the mixers saw for that bit (the first inputs.shape[1]
    entries of the layer-0 input vector).  One kernel serves both, so the predictor is compiled into it once."""
    keep = probs.shape[0] > 0
    n_inputs = inputs.shape[1] if inputs.shape[0] > 0 else 0
    models = S.mixer.inputs0
    bits = 0.0
    while pos < end:
        if learn and not has_room(P, L):
            break
        c = np.int64(data[pos])
        for j in range(8):
            bit = (c >> (7 - j)) & 1
            p = predict(P, L, S)
            pf = np.float64(p)
            bits -= log64(pf if bit else 1.0 - pf) / _LN2
            if keep:
                k = 8 * pos + j
                probs[k] = p
                for i in range(n_inputs):
                    inputs[k, i] = models[i]
            update(P, L, S, bit, learn)
        pos += 1
    return pos, bits


@njit(inline="always")
def next_uniform(rng):
    """splitmix64 step on rng (uint64[1]); returns a float64 uniform in [0, 1) with 53 random bits."""
    z = rng[0] + np.uint64(0x9E3779B97F4A7C15)
    rng[0] = z
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.float64(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(_nrt=False)
def generate_first(P, L, S):
    """The prediction for the first bit after the prompt (call once, then pass the result to generate_chunk)."""
    return predict(P, L, S)


@njit(_nrt=False)
def generate_chunk(P, L, S, rng, temperature, out, n, prob):
    """Sample n bytes into out with learning disabled (long-term memory is not written), as gmix: each bit is
    1 with probability logistic(logit(p) / temperature).  `prob` is the current prediction (from
    generate_first or the previous call); returns the prediction for the next bit."""
    for i in range(n):
        byte = 1
        while byte < 256:
            q = logistic(logit(prob) / np.float32(temperature))
            bit = 1 if next_uniform(rng) < np.float64(q) else 0
            byte = byte * 2 + bit
            update(P, L, S, bit, False)
            prob = predict(P, L, S)
        out[i] = byte - 256
    return prob


# ---- analysis ---------------------------------------------------------------------------------------------------

class AnalysisSums(NamedTuple):
    """What analyze_chunk accumulates (gmixpy/analysis.py reads it).  Rows are the model inputs in
    Specification.input_names() order, then the mixers in specification order (the final mixer last)."""
    bits: np.ndarray           # float64[rows], bits each row's logit alone would have cost (see analyze_chunk)
    product: np.ndarray        # float64[rows], scratch: the current byte's probabilities multiplied so far
    logits: np.ndarray         # float32[rows rounded up to 8], scratch for logistic_many
    active: np.ndarray         # int64[rows], bits at which the row's logit was not 0
    weight0: np.ndarray        # float64[inputs], sum over bits and layer-0 mixers of |weight| on each input
    contribution0: np.ndarray  # float64[inputs], the same of |weight * input|
    weight_final: np.ndarray   # float64[final width], sum over bits of the final mixer's |weight| on each input
    contribution_final: np.ndarray  # float64[final width], the same of |weight * input|
    ensemble: np.ndarray       # float64[1], bits of the coded probabilities
    counted: np.ndarray        # int64[1], bits counted
    costs: np.ndarray          # float32[map bytes], bits of each of the first bytes (the surprise map)


@njit(inline="always")
def _analysis_bit(P, L, S, A, bit):
    """Add one bit's observations to A (after predict, before update: the weights the prediction used)."""
    x0 = S.mixer.inputs0
    x1 = S.mixer.inputs1
    n_in = A.weight0.shape[0]
    n_mix = P.mixer.slot.shape[0]
    n_rows = A.bits.shape[0]
    logits = A.logits
    for i in range(n_in):
        logits[i] = x0[i]
    for k in range(n_mix):
        layer = P.mixer.layer[k]
        if layer == 0:
            logits[n_in + k] = x0[P.mixer.output[k]]
        elif layer == 1:
            logits[n_in + k] = x1[P.mixer.output[k]]
        else:
            logits[n_in + k] = S.mixer.final[0]
    for i in range(n_rows):
        if logits[i] != np.float32(0.0):
            A.active[i] += 1
    logistic_many(logits, n_rows)
    for i in range(n_rows):
        q = clamp_probability(logits[i])  # as predict clamps the coded probability
        A.product[i] *= np.float64(q) if bit else 1.0 - np.float64(q)
    weights = L.mixer.weights
    for k in range(n_mix):
        if P.mixer.layer[k] != 0:
            break
        at = L.mixer.table[S.mixer.entry[k], 0] - 1
        if at >= 0:  # a weight set not allocated yet is all zeros
            for i in range(n_in):
                w = weights[at + i]
                A.weight0[i] += abs(np.float64(w))
                A.contribution0[i] += abs(np.float64(w * x0[i]))
    final = n_mix - 1
    at = L.mixer.table[S.mixer.entry[final], 0] - 1
    if at >= 0:
        for j in range(P.mixer.width[final]):
            w = weights[at + j]
            A.weight_final[j] += abs(np.float64(w))
            A.contribution_final[j] += abs(np.float64(w * x1[j]))
    A.counted[0] += 1


@njit(_nrt=False)
def analyze_chunk(P, L, S, C, A, data, pos, end, learn, out, out_pos, offset):
    """compress_chunk (learning when `learn`) that also accumulates the analysis sums A; the coded bytes are
    exactly compress_chunk's (the analysis only reads the state).  A row's cost is -log2 of the probability
    its logit gives the bit through logistic, clamped to [1e-4, 1 - 1e-4] as the coded probability is (an
    inactive input, 0, costs 1 bit); a byte's probabilities are multiplied in float64 and its cost taken once
    per byte.  data[0] is byte `offset` of the input (where its cost goes in A.costs).  Returns (pos reached,
    out_pos)."""
    n_rows = A.bits.shape[0]
    n_map = A.costs.shape[0]
    while pos < end:
        if learn and not has_room(P, L):
            break
        c = np.int64(data[pos])
        byte_bits = 0.0
        for j in range(7, -1, -1):
            bit = (c >> j) & 1
            p = predict(P, L, S)
            out_pos = encode_bit(C, bit, p, out, out_pos)
            pf = np.float64(p)
            cost = -log64(pf if bit else 1.0 - pf) / _LN2
            A.ensemble[0] += cost
            byte_bits += cost
            _analysis_bit(P, L, S, A, bit)
            update(P, L, S, bit, learn)
        for i in range(n_rows):
            A.bits[i] -= log64(A.product[i]) / _LN2
            A.product[i] = 1.0
        if offset + pos < n_map:
            A.costs[offset + pos] = byte_bits
        pos += 1
    return pos, out_pos


# ---- the next byte's exact distribution ----------------------------------------------------------------------
# Generation with top-k / top-p needs P(next byte = b) for all 256 b: the product of the bit predictions down the
# bit tree, 255 predictions per byte.  Each branch starts from its parent's state, so the state that changes
# within a byte (every family declares it as PER_BIT: generate.per_bit_views gathers uint8 views of those arrays)
# is saved per depth in `buf` (7 rows) and restored before the second child.  Inside the tree no byte is
# completed, so nothing that only changes at byte boundaries (PPMd's arena, the LSTM, the rotating history) is
# touched, and learning is off, so long-term memory is only read.

@njit(inline="always")
def _save(views, buf, row):
    at = 0
    for a in views:
        for i in range(a.shape[0]):
            buf[row, at + i] = a[i]
        at += a.shape[0]


@njit(inline="always")
def _restore(views, buf, row):
    at = 0
    for a in views:
        for i in range(a.shape[0]):
            a[i] = buf[row, at + i]
        at += a.shape[0]


@njit(inline="always")
def _byte_tree(P, L, S, views, buf, prob, tree):
    """tree[node] = P(bit = 1) at every node of the next byte's bit tree (node = the bits so far with a leading 1,
    1..255), from the state just after the byte's first prediction `prob`; that state is restored at the end.
    Depth first, 0 branch first; the predictor is called from one place so that it is compiled in once."""
    tree[1] = prob
    _save(views, buf, 0)
    node = 1
    depth = 0
    bit = 0
    while True:
        update(P, L, S, bit, False)
        node = 2 * node + bit
        depth += 1
        tree[node] = predict(P, L, S)
        if depth < 7:  # on down the 0 branch
            _save(views, buf, depth)
            bit = 0
            continue
        while depth > 0 and (node & 1) == 1:  # up past the 1 branches already done
            node >>= 1
            depth -= 1
        if depth == 0:
            break
        node >>= 1  # the parent of a 0 branch: now its 1 branch
        depth -= 1
        _restore(views, buf, depth)
        bit = 1
    _restore(views, buf, 0)


@njit(inline="always")
def _tree_distribution(tree, temperature, tempered, dist):
    """dist[b] = P(next byte = b): the product down the tree of the bit probabilities as generate_chunk samples
    them (logistic(logit(p) / temperature)), in float64."""
    for node in range(1, 256):
        tempered[node] = np.float64(logistic(logit(tree[node]) / np.float32(temperature)))
    for b in range(256):
        q = 1.0
        node = 1
        for j in range(7, -1, -1):
            bit = (b >> j) & 1
            q *= tempered[node] if bit else 1.0 - tempered[node]
            node = 2 * node + bit
        dist[b] = q


@njit(inline="always")
def _choose(dist, order, top_k, top_p, u):
    """A byte drawn with uniform u in [0, 1) from the top_k most likely bytes (0: all), cut further to the
    smallest most likely set whose mass is at least top_p of theirs; ties go to the smaller byte."""
    for i in range(256):
        order[i] = i
    for i in range(1, 256):  # insertion sort, most likely first; stable, so ties keep byte order
        b = order[i]
        j = i - 1
        while j >= 0 and dist[order[j]] < dist[b]:
            order[j + 1] = order[j]
            j -= 1
        order[j + 1] = b
    kept = 256 if top_k <= 0 or top_k >= 256 else top_k
    mass = 0.0
    for i in range(kept):
        mass += dist[order[i]]
    if top_p < 1.0:
        cum = 0.0
        for i in range(kept):
            cum += dist[order[i]]
            if cum >= top_p * mass:
                kept = i + 1
                mass = cum
                break
    target = u * mass
    cum = 0.0
    for i in range(kept):
        cum += dist[order[i]]
        if target < cum:
            return order[i]
    return order[kept - 1]


@njit(_nrt=False)
def generate_chunk_truncated(P, L, S, views, buf, tree, tempered, dist, order, rng, temperature, top_k, top_p, out,
                             n, prob):
    """generate_chunk that samples whole bytes from the exact next-byte distribution cut to top_k / top_p (one
    uniform per byte), learning disabled; then walks the chosen byte's bits as generate_chunk would.  Returns the
    prediction for the next bit.  With n = 0 it only fills the next byte's bit tree (tree) and distribution
    (dist) at temperature, and the state is left unchanged (one kernel serves both, so the predictor is compiled
    into it once for the tree and once for the walk)."""
    for i in range(max(n, 1)):
        _byte_tree(P, L, S, views, buf, prob, tree)
        _tree_distribution(tree, temperature, tempered, dist)
        if n == 0:
            break
        b = _choose(dist, order, top_k, top_p, next_uniform(rng))
        for j in range(7, -1, -1):
            update(P, L, S, (b >> j) & 1, False)
            prob = predict(P, L, S)
        out[i] = b
    return prob
