"""gmix's byte-level LSTM (models/lstm*.cpp), ported to Numba.

Contract
--------
What it predicts: a probability distribution over the next byte (``output_size`` = 256 symbols).

From what: at every byte boundary it reads
  * ``input_vector`` -- float32[input_size], PPMd's 256 byte probabilities for the next byte (gmix's
    ``SetInput(short_term_memory.ppm_predictions)``; any fixed vector works too),
  * ``last_byte``    -- the byte just seen (0 before the first byte, as gmix's ``last_byte``), fed to the first
    layer as a one-hot "input symbol" (it indexes a weight column, so it must be < output_size),
  * its own recurrent state (hidden vector, cell states) in ``LstmState``.

Network (per layer, gmix's variant): three gates computed from [one-hot symbol, input vector, own previous
hidden, (hidden of the layer below), 1]; each gate's pre-activation is layer-normalised (RMS normalisation
with learned gain ``gamma`` and bias ``beta``), forget gate f = logistic, input node a = tanh, output gate
o = logistic, input gate = 1 - f (coupled), c = c*f + a*(1-f), h = o*tanh(c).  A softmax output layer reads
[h of every layer, 1].  The output layer has one copy per timestep of the horizon (the copy a timestep used is
kept for back-propagation; the next copy is the previous one after an SGD step).

Call order (once per byte):
  1. ``lstm_predict(params, memory, state, input_vector, last_byte, out_probs)`` at the byte boundary, before
     the byte is known (gmix: LstmModel::Predict when recent_bits == 1 -> Lstm::SetInput + Lstm::Predict).
     Forward pass + softmax; writes ``out_probs`` and advances the epoch counter.  Writes only ``state``.
  2. ``lstm_learn(params, memory, state, byte)`` once the byte is known, only when learning is enabled
     (gmix: LstmModel::Learn -> Lstm::Perceive).  Every byte: SGD step of the output layer copy.  When the
     epoch counter has just wrapped to 0 (every ``horizon`` bytes): truncated BPTT over the whole horizon,
     gradient clipping, Adam updates of all gate weights and layer-norm gains/biases.
     If learning is disabled, call ``lstm_observe(params, state, byte)`` instead (optional; state only): it
     records the byte in the history that a later BPTT uses as targets.
  The very first call is ``lstm_predict(..., last_byte=0, ...)`` before byte 0 (gmix's initial last_byte).

Memory split: ``LstmMemory`` (long-term) is written only by ``lstm_learn``; ``LstmState`` (short-term) is
everything ``lstm_predict`` writes (plus the byte history).  Prediction with learning disabled leaves
``LstmMemory`` bit-identical.  (With learning disabled, timestep e keeps using output-layer copy e as last
trained, exactly as gmix would if Perceive were skipped.)

Numerics: float32 throughout, every operation in the same order as gmix's C++ (including libstdc++'s
valarray expression ``sum()``, which adds from the last element to the first), so with the same weights a C++
build (-O2, no fast-math) and this port agree bit for bit except where libm's expf/tanhf/powf round
differently from the deterministic replacements in ``lstm_math`` (the port is identical on every machine).
The long dot products are evaluated as "for each input j: acc[k] += x[j] * W[j, k]" over a contiguous
row of the (transposed) weight matrix: each acc[k] is still summed in gmix's order j = 0, 1, ..., so the
compiler vectorises across k without reassociating any sum.  No fastmath, no parallel.

Initialisation reproduces gmix: C ``rand()`` after ``srand(0xDEADBEEF)``, i.e. glibc's TYPE_3 additive
feedback generator (``glibc_rand``), drawn in gmix's order; weights uniform in +-sqrt(6/(input+output)), the
forget gate's bias column set to 1.  With num_layers > 1 gmix's constructor re-randomises layer 0 for every
layer and leaves the upper layers' weights at zero (except their forget bias); ``lstm_new`` reproduces this
by default, ``independent_layer_init=True`` gives every layer its own random weights instead.

Ported from gmix (GPL-3.0) by the gmixpy authors; algorithms and constants follow gmix, the code is new.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from .._values import first_outside
from .lstm_math import exp_f32, logistic_f32, powf_int, powi64, tanh_f32

NUM_GATES = 3  # gate blocks in every weight row, in gmix's order: forget gate, input node, output gate


class LstmParams(NamedTuple):
    """Sizes and hyper-parameters (never written after lstm_new)."""

    input_size: np.ndarray  # int64[1]: I, length of the external input vector (256 PPMd probabilities)
    output_size: np.ndarray  # int64[1]: O, number of output symbols; also the width of the one-hot input symbol
    num_cells: np.ndarray  # int64[1]: C, LSTM cells per layer (50)
    num_layers: np.ndarray  # int64[1]: L, stacked layers (1)
    horizon: np.ndarray  # int64[1]: H, BPTT window / number of timesteps stored (100)
    hidden_size: np.ndarray  # int64[1]: C*L + 1, output-layer input (all layers' hidden + bias 1)
    layer_input_size: np.ndarray  # int64[L]: n_l, layer l's input length: I + C + 1 (l = 0), I + 2C + 1 (l > 0)
    max_layer_input: np.ndarray  # int64[1]: N = max(n_l), padded width of per-layer arrays
    recurrent_rows: np.ndarray  # int64[1]: R = C (L = 1) or 2C, hidden rows kept in the BPTT transpose
    learning_rate: np.ndarray  # float32[1]: output-layer SGD rate; Adam uses learning_rate * 0.1 (0.03)
    gradient_clip: np.ndarray  # float32[1]: clip for back-propagated errors (10)
    update_limit: np.ndarray  # int64[1]: Adam step count after which the step size stops decaying (3000)
    adam_beta1: np.ndarray  # float32[1]: Adam first-moment decay (0.025)
    adam_beta2: np.ndarray  # float32[1]: Adam second-moment decay (0.9999)
    adam_eps: np.ndarray  # float32[1]: Adam epsilon, added inside the square root (1e-6)
    norm_eps: np.ndarray  # float32[1]: layer-norm epsilon (1e-5)


class LstmMemory(NamedTuple):
    """LONG-TERM memory: written only by lstm_learn (never by lstm_predict)."""

    # Gate weights, transposed from gmix (row = input position, column = gate*C + cell, contiguous):
    # rows 0..O-1 are the one-hot input-symbol weights, row O + j multiplies layer input j (the last used row,
    # O + n_l - 1, is the bias).  Rows past O + n_l of a shorter layer stay zero.
    weights: np.ndarray  # float32[L, O + N, 3*C]
    weights_m: np.ndarray  # float32[L, O + N, 3*C]: Adam first moments of weights
    weights_v: np.ndarray  # float32[L, O + N, 3*C]: Adam second moments of weights
    gamma: np.ndarray  # float32[L, 3, C]: layer-norm gains (start at 1)
    gamma_m: np.ndarray  # float32[L, 3, C]: Adam first moments of gamma
    gamma_v: np.ndarray  # float32[L, 3, C]: Adam second moments of gamma
    beta: np.ndarray  # float32[L, 3, C]: layer-norm biases (start at 0)
    beta_m: np.ndarray  # float32[L, 3, C]: Adam first moments of beta
    beta_v: np.ndarray  # float32[L, 3, C]: Adam second moments of beta
    # Output layer, one copy per timestep e (transposed: [e, hidden index j, symbol i]); timestep e's forward pass
    # reads copy e; lstm_learn writes copy e+1 = copy e - lr * error * hidden.
    output_layer: np.ndarray  # float32[H, C*L + 1, O]
    update_steps: np.ndarray  # int64[L]: Adam step counter per layer, saturates at update_limit
    # Learning scratch: reset at the start of every BPTT; between calls it carries no information (kept here
    # because only learning writes it, like gmix's update_/error_ members).
    grad: np.ndarray  # float32[L, O + N, 3*C]: accumulated weight gradient of the last BPTT (gmix update_)
    gamma_grad: np.ndarray  # float32[L, 3, C]: accumulated gamma gradient of the last BPTT
    beta_grad: np.ndarray  # float32[L, 3, C]: accumulated beta gradient of the last BPTT
    transpose: np.ndarray  # float32[L, 3, C, R]: snapshot of the recurrent weights, [gate, cell, hidden row]
    gate_error: np.ndarray  # float32[3*C]: errors at the gates' pre-activations, current step
    state_error: np.ndarray  # float32[L, C]: error of the cell state, carried backwards through time
    stored_error: np.ndarray  # float32[L, C]: error of the hidden vector, carried backwards through time
    hidden_error: np.ndarray  # float32[C]: error entering a layer's hidden output (from output layer / above)
    out_error: np.ndarray  # float32[O]: softmax error (p - onehot), or lr * error in the output-layer update
    recur_acc: np.ndarray  # float32[R]: partial sums of one gate's recurrent back-propagation


class LstmState(NamedTuple):
    """SHORT-TERM memory: everything lstm_predict writes (plus the byte history written by learn/observe)."""

    epoch: np.ndarray  # int64[1]: timestep index in the horizon of the next lstm_predict, 0..H-1
    hidden: np.ndarray  # float32[C*L + 1]: hidden outputs of all layers, then a constant 1 (output bias)
    cell: np.ndarray  # float32[L, C]: cell states
    # Per-timestep copies read by BPTT (index e = timestep in the horizon):
    layer_input: np.ndarray  # float32[H, L, N]: [input vector (I), own previous hidden (C), (hidden below), 1]
    norm: np.ndarray  # float32[H, L, 3*C]: layer-normalised gate pre-activations
    ivar: np.ndarray  # float32[H, L, 3]: 1/RMS of each gate's raw pre-activation
    gate: np.ndarray  # float32[H, L, 3*C]: activations [forget (logistic) | input node (tanh) | output (logistic)]
    input_gate: np.ndarray  # float32[H, L, C]: 1 - forget gate
    tanh_cell: np.ndarray  # float32[H, L, C]: tanh of the new cell state
    last_cell: np.ndarray  # float32[H, L, C]: cell state before the timestep
    output: np.ndarray  # float32[H, O]: softmax output of every timestep (starts at 1/O)
    input_history: np.ndarray  # int64[H]: byte that followed timestep e (the training target; written by learn)
    preact: np.ndarray  # float32[3*C]: scratch, raw gate pre-activations of the layer being computed
    PER_BIT = ()  # runs once per byte (see generate.py)


# ---------------------------------------------------------------------------------------------------------------
# Initialisation (plain Python)
# ---------------------------------------------------------------------------------------------------------------


def lstm_check(p: LstmParams, m: LstmMemory, s: LstmState) -> str | None:
    """The first stored value out of range, or None: the epoch indexes the per-timestep copies, the byte history
    indexes the symbol rows of the weights, the Adam step count is bounded by its limit."""
    return first_outside([
        ("stm.lstm.epoch", s.epoch, 0, int(p.horizon[0]) - 1),
        ("stm.lstm.input_history", s.input_history, 0, int(p.output_size[0]) - 1),
        ("ltm.lstm.update_steps", m.update_steps, 0, int(p.update_limit[0])),
    ])


def glibc_rand(seed: int, count: int) -> np.ndarray:
    """The first ``count`` values of C ``rand()`` after ``srand(seed)`` with glibc (TYPE_3, degree 31, sep 3).

    srandom fills 31 words with 16807 * w mod (2**31 - 1) (Schrage's method on the seed read as int32), then the
    additive lagged-Fibonacci recurrence w[i] = w[i-31] + w[i-3] mod 2**32 runs; the first 310 outputs are
    discarded and each output is the word shifted right by one bit.  Returns int64[count] in [0, 2**31 - 1].
    """
    seed &= 0xFFFFFFFF
    if seed == 0:
        seed = 1
    word = seed - (1 << 32) if seed >= (1 << 31) else seed
    words = [word]
    for _ in range(1, 31):
        hi = abs(word) // 127773 * (1 if word >= 0 else -1)  # C division truncates towards zero
        lo = word - hi * 127773
        word = 16807 * lo - 2836 * hi
        if word < 0:
            word += 2147483647
        words.append(word)
    r = [w & 0xFFFFFFFF for w in words]
    r.extend(r[0:3])
    append = r.append
    for i in range(34, 344 + count):
        append((r[i - 31] + r[i - 3]) & 0xFFFFFFFF)
    return np.array(r[344:], dtype=np.int64) >> 1


def lstm_new(
    input_size: int = 256,
    output_size: int = 256,
    num_cells: int = 50,
    num_layers: int = 1,
    horizon: int = 100,
    learning_rate: float = 0.03,
    gradient_clip: float = 10.0,
    seed: int = 0xDEADBEEF,
    independent_layer_init: bool = False,
) -> tuple[LstmParams, LstmMemory, LstmState]:
    """A fresh LSTM initialised exactly as gmix's Lstm constructor (with glibc rand() seeded by ``seed``)."""
    I, O, C, L, H = int(input_size), int(output_size), int(num_cells), int(num_layers), int(horizon)
    if min(I, O, C, L, H) < 1:
        raise ValueError("all sizes must be positive")
    f32 = np.float32
    n = np.array([I + C + 1] + [I + 2 * C + 1] * (L - 1), dtype=np.int64)
    N = int(n.max())
    R = C if L == 1 else 2 * C
    G = NUM_GATES * C
    params = LstmParams(
        input_size=np.array([I], np.int64),
        output_size=np.array([O], np.int64),
        num_cells=np.array([C], np.int64),
        num_layers=np.array([L], np.int64),
        horizon=np.array([H], np.int64),
        hidden_size=np.array([C * L + 1], np.int64),
        layer_input_size=n,
        max_layer_input=np.array([N], np.int64),
        recurrent_rows=np.array([R], np.int64),
        learning_rate=np.array([learning_rate], np.float32),
        gradient_clip=np.array([gradient_clip], np.float32),
        update_limit=np.array([3000], np.int64),
        adam_beta1=np.array([0.025], np.float32),
        adam_beta2=np.array([0.9999], np.float32),
        adam_eps=np.array([1e-6], np.float32),
        norm_eps=np.array([1e-5], np.float32),
    )

    weights = np.zeros((L, O + N, G), np.float32)
    # gmix: val = sqrt(6 / (input + output)) in float32; w = -val + Rand() * 2 * val, Rand() = rand() / RAND_MAX.
    val = np.sqrt(f32(6.0) / f32(I + O))
    low, span = -val, f32(2.0) * val
    rand_max = f32(2147483647)  # RAND_MAX converted to float (= 2**31)
    counts = []
    for k in range(L):
        cols = O + int(n[k] if independent_layer_init else n[0])
        counts.append(cols)
    stream = glibc_rand(seed, NUM_GATES * C * sum(counts))
    pos = 0
    for k in range(L):
        # Draw order: for cell i, for column j: forget, input node, output gate.
        cols = counts[k]
        draws = stream[pos : pos + NUM_GATES * C * cols].reshape(C, cols, NUM_GATES)
        pos += draws.size
        w = low + (draws.astype(np.float32) / rand_max) * span  # float32 [cell, column, gate]
        target = k if independent_layer_init else 0  # gmix writes neuron_layer_weights[0..2] for every layer
        weights[target, :cols, :] = w.transpose(1, 2, 0).reshape(cols, G)
        weights[k, O + n[k] - 1, 0:C] = 1.0  # forget gate bias column
    memory = LstmMemory(
        weights=weights,
        weights_m=np.zeros_like(weights),
        weights_v=np.zeros_like(weights),
        gamma=np.ones((L, NUM_GATES, C), np.float32),
        gamma_m=np.zeros((L, NUM_GATES, C), np.float32),
        gamma_v=np.zeros((L, NUM_GATES, C), np.float32),
        beta=np.zeros((L, NUM_GATES, C), np.float32),
        beta_m=np.zeros((L, NUM_GATES, C), np.float32),
        beta_v=np.zeros((L, NUM_GATES, C), np.float32),
        output_layer=np.zeros((H, C * L + 1, O), np.float32),
        update_steps=np.zeros(L, np.int64),
        grad=np.zeros_like(weights),
        gamma_grad=np.zeros((L, NUM_GATES, C), np.float32),
        beta_grad=np.zeros((L, NUM_GATES, C), np.float32),
        transpose=np.zeros((L, NUM_GATES, C, R), np.float32),
        gate_error=np.zeros(G, np.float32),
        state_error=np.zeros((L, C), np.float32),
        stored_error=np.zeros((L, C), np.float32),
        hidden_error=np.zeros(C, np.float32),
        out_error=np.zeros(O, np.float32),
        recur_acc=np.zeros(R, np.float32),
    )
    hidden = np.zeros(C * L + 1, np.float32)
    hidden[-1] = 1.0
    layer_input = np.zeros((H, L, N), np.float32)
    for k in range(L):
        layer_input[:, k, n[k] - 1] = 1.0
    state = LstmState(
        epoch=np.zeros(1, np.int64),
        hidden=hidden,
        cell=np.zeros((L, C), np.float32),
        layer_input=layer_input,
        norm=np.zeros((H, L, G), np.float32),
        ivar=np.zeros((H, L, NUM_GATES), np.float32),
        gate=np.zeros((H, L, G), np.float32),
        input_gate=np.zeros((H, L, C), np.float32),
        tanh_cell=np.zeros((H, L, C), np.float32),
        last_cell=np.zeros((H, L, C), np.float32),
        output=np.full((H, O), np.float32(1.0 / O), np.float32),
        input_history=np.zeros(H, np.int64),
        preact=np.zeros(G, np.float32),
    )
    return params, memory, state


# ---------------------------------------------------------------------------------------------------------------
# Forward pass
# ---------------------------------------------------------------------------------------------------------------


@njit(cache=True)
def _layer_forward(params, memory, state, e, layer, symbol):
    """One layer at timestep e (gmix LstmLayer::ForwardPass): gates, layer norm, activations, cell, hidden."""
    O = params.output_size[0]
    C = params.num_cells[0]
    G = NUM_GATES * C
    n = params.layer_input_size[layer]
    one = np.float32(1.0)
    cells_f = np.float32(C)
    norm_eps = params.norm_eps[0]
    W = memory.weights[layer]
    x = state.layer_input[e, layer]
    acc = state.preact
    # Raw pre-activations of all 3*C gate units: f = W[symbol] + sum_j x[j] * W[O + j], summed j = 0, 1, ...
    for k in range(G):
        acc[k] = W[symbol, k]
    # Four input rows per pass over acc (fewer loads/stores of acc); each acc[k] still adds x[j] * W[O + j, k]
    # one term at a time in the order j, j+1, j+2, j+3.
    j = 0
    while j + 4 <= n:
        x0 = x[j]
        x1 = x[j + 1]
        x2 = x[j + 2]
        x3 = x[j + 3]
        r = O + j
        for k in range(G):
            a = acc[k] + x0 * W[r, k]
            a = a + x1 * W[r + 1, k]
            a = a + x2 * W[r + 2, k]
            acc[k] = a + x3 * W[r + 3, k]
        j += 4
    while j < n:
        xj = x[j]
        r = O + j
        for k in range(G):
            acc[k] += xj * W[r, k]
        j += 1
    # Layer norm per gate: ivar = 1 / sqrt(sum(f*f) / C + eps) (valarray expression sum: last element first).
    norm = state.norm[e, layer]
    gamma = memory.gamma[layer]
    beta = memory.beta[layer]
    gate = state.gate[e, layer]
    for g in range(NUM_GATES):
        base = g * C
        s = acc[base + C - 1] * acc[base + C - 1]
        for i in range(C - 2, -1, -1):
            s += acc[base + i] * acc[base + i]
        iv = one / np.sqrt(s / cells_f + norm_eps)
        state.ivar[e, layer, g] = iv
        for i in range(C):
            v = acc[base + i] * iv
            norm[base + i] = v
            gate[base + i] = v * gamma[g, i] + beta[g, i]
    for i in range(C):
        gate[i] = logistic_f32(gate[i])
        gate[C + i] = tanh_f32(gate[C + i])
        gate[2 * C + i] = logistic_f32(gate[2 * C + i])
    cell = state.cell[layer]
    hidden = state.hidden
    hstart = layer * C
    for i in range(C):
        state.last_cell[e, layer, i] = cell[i]
        ig = one - gate[i]
        state.input_gate[e, layer, i] = ig
        c = cell[i] * gate[i]
        c = c + gate[C + i] * ig
        cell[i] = c
        tc = tanh_f32(c)
        state.tanh_cell[e, layer, i] = tc
        hidden[hstart + i] = gate[2 * C + i] * tc


@njit(cache=True)
def lstm_predict(params, memory, state, input_vector, last_byte, out_probs):
    """gmix Lstm::SetInput + Lstm::Predict: forward pass and softmax for the next byte.

    input_vector: float32[input_size]; last_byte: the byte just seen (< output_size; 0 before the first byte);
    out_probs: float32[output_size], receives the distribution.  Writes only ``state`` and ``out_probs``.
    """
    I = params.input_size[0]
    O = params.output_size[0]
    C = params.num_cells[0]
    L = params.num_layers[0]
    H = params.horizon[0]
    hid = params.hidden_size[0]
    e = state.epoch[0]
    symbol = np.int64(last_byte)
    for layer in range(L):
        li = state.layer_input[e, layer]
        for j in range(I):
            li[j] = np.float32(input_vector[j])
    hidden = state.hidden
    for layer in range(L):
        li = state.layer_input[e, layer]
        for i in range(C):
            li[I + i] = hidden[layer * C + i]
        _layer_forward(params, memory, state, e, layer, symbol)
        if layer < L - 1:
            above = state.layer_input[e, layer + 1]
            for i in range(C):
                above[I + C + i] = hidden[layer * C + i]
    # Output layer: logits[i] = sum_j hidden[j] * OW[j, i], j = 0, 1, ... (vectorised across i).
    out = state.output[e]
    OW = memory.output_layer[e]
    for i in range(O):
        out[i] = np.float32(0.0)
    j = 0
    while j + 4 <= hid:  # four hidden rows per pass, each out[i] still summed one term at a time in order j
        h0 = hidden[j]
        h1 = hidden[j + 1]
        h2 = hidden[j + 2]
        h3 = hidden[j + 3]
        for i in range(O):
            a = out[i] + h0 * OW[j, i]
            a = a + h1 * OW[j + 1, i]
            a = a + h2 * OW[j + 2, i]
            out[i] = a + h3 * OW[j + 3, i]
        j += 4
    while j < hid:
        hj = hidden[j]
        for i in range(O):
            out[i] += hj * OW[j, i]
        j += 1
    top = np.float32(0.0)  # gmix starts the running max at 0
    for i in range(O):
        if not (out[i] < top):
            top = out[i]
    for i in range(O):
        out[i] = exp_f32(out[i] - top)
    total = out[0]  # valarray sum(): first element, then the rest in order
    for i in range(1, O):
        total += out[i]
    for i in range(O):
        out[i] = out[i] / total
        out_probs[i] = out[i]
    e += 1
    if e == H:
        e = 0
    state.epoch[0] = e


# ---------------------------------------------------------------------------------------------------------------
# Learning
# ---------------------------------------------------------------------------------------------------------------


@njit(cache=True)
def _clip(arr, clip):
    for i in range(arr.shape[0]):
        if arr[i] < -clip:
            arr[i] = -clip
        elif arr[i] > clip:
            arr[i] = clip


@njit(cache=True)
def _layer_backward(params, memory, state, e, layer, symbol):
    """gmix LstmLayer::BackwardPass for one layer at timestep e (errors, layer-norm backward, gradients).

    gmix applies Adam inside the timestep-0 call; here Adam runs after the whole BPTT (``_adam``), which is
    equivalent: nothing the remaining backward steps read is changed by those updates.
    """
    O = params.output_size[0]
    C = params.num_cells[0]
    H = params.horizon[0]
    G = NUM_GATES * C
    n = params.layer_input_size[layer]
    clip = params.gradient_clip[0]
    one = np.float32(1.0)
    cells_f = np.float32(C)
    he = memory.hidden_error
    stored = memory.stored_error[layer]
    serr = memory.state_error[layer]
    err = memory.gate_error
    if e == H - 1:
        for i in range(C):
            stored[i] = he[i]
            serr[i] = np.float32(0.0)
    else:
        for i in range(C):
            stored[i] = stored[i] + he[i]
    gate = state.gate[e, layer]
    tc = state.tanh_cell[e, layer]
    ig = state.input_gate[e, layer]
    lc = state.last_cell[e, layer]
    for i in range(C):
        f = gate[i]
        a = gate[C + i]
        o = gate[2 * C + i]
        err[2 * C + i] = ((tc[i] * stored[i]) * o) * (one - o)
        serr[i] = serr[i] + (stored[i] * o) * (one - tc[i] * tc[i])
        err[C + i] = (serr[i] * ig[i]) * (one - a * a)
        err[i] = (((lc[i] - a) * serr[i]) * f) * ig[i]
    for i in range(C):
        he[i] = np.float32(0.0)
    if e > 0:
        for i in range(C):
            serr[i] = serr[i] * gate[i]
            stored[i] = np.float32(0.0)
    else:
        if memory.update_steps[layer] < params.update_limit[0]:
            memory.update_steps[layer] += 1
    # Per gate (forget, input node, output gate, in gmix's order): layer-norm backward and recurrent errors.
    norm = state.norm[e, layer]
    gamma = memory.gamma[layer]
    acc = memory.recur_acc
    for g in range(NUM_GATES):
        base = g * C
        iv = state.ivar[e, layer, g]
        bg = memory.beta_grad[layer, g]
        gg = memory.gamma_grad[layer, g]
        for i in range(C):
            bg[i] = bg[i] + err[base + i]
            gg[i] = gg[i] + err[base + i] * norm[base + i]
        for i in range(C):
            err[base + i] = err[base + i] * (gamma[g, i] * iv)
        s = err[base + C - 1] * norm[base + C - 1]  # valarray expression sum: last element first
        for i in range(C - 2, -1, -1):
            s += err[base + i] * norm[base + i]
        s = s / cells_f
        for i in range(C):
            err[base + i] = err[base + i] - s * norm[base + i]
        T = memory.transpose[layer, g]
        if layer > 0:  # error for the hidden output of the layer below (rows C..2C-1 of the recurrent block)
            for r in range(C):
                acc[r] = np.float32(0.0)
            for j in range(C):
                ej = err[base + j]
                for r in range(C):
                    acc[r] += ej * T[j, C + r]
            for r in range(C):
                he[r] = he[r] + acc[r]
        if e > 0:  # error for this layer's hidden output at timestep e-1
            for r in range(C):
                acc[r] = np.float32(0.0)
            for j in range(C):
                ej = err[base + j]
                for r in range(C):
                    acc[r] += ej * T[j, r]
            for r in range(C):
                stored[r] = stored[r] + acc[r]
    # Weight gradients of all three gates: grad[O + j, k] += err[k] * x[j]; grad[symbol, k] += err[k].
    U = memory.grad[layer]
    x = state.layer_input[e, layer]
    for j in range(n):
        xj = x[j]
        r = O + j
        for k in range(G):
            U[r, k] += err[k] * xj
    for k in range(G):
        U[symbol, k] += err[k]
    _clip(serr, clip)
    _clip(stored, clip)
    _clip(he, clip)


@njit(cache=True)
def _bptt(params, memory, state, old_input):
    """Truncated BPTT over the whole horizon (gmix Lstm::Perceive when epoch_ == 0), gradients only."""
    I = params.input_size[0]
    O = params.output_size[0]
    C = params.num_cells[0]
    L = params.num_layers[0]
    H = params.horizon[0]
    one = np.float32(1.0)
    # Reset the accumulators and snapshot the recurrent weights (gmix does this at timestep H-1).
    for layer in range(L):
        rows = C if layer == 0 else 2 * C
        W = memory.weights[layer]
        for g in range(NUM_GATES):
            T = memory.transpose[layer, g]
            for j in range(C):
                for r in range(rows):
                    T[j, r] = W[O + I + r, g * C + j]
        memory.grad[layer, :, :] = 0.0
        memory.gamma_grad[layer, :, :] = 0.0
        memory.beta_grad[layer, :, :] = 0.0
    he = memory.hidden_error
    oe = memory.out_error
    hist = state.input_history
    for e in range(H - 1, -1, -1):
        target = hist[e]
        out = state.output[e]
        for i in range(O):
            oe[i] = out[i] - one if i == target else out[i]
        OW = memory.output_layer[e]
        for layer in range(L - 1, -1, -1):
            off = layer * C
            # hidden_error[j] += sum_i OW[off + j, i] * error[i], i = 0, 1, ... (8 rows at a time for ILP).
            j = 0
            while j + 8 <= C:
                s0 = he[j]
                s1 = he[j + 1]
                s2 = he[j + 2]
                s3 = he[j + 3]
                s4 = he[j + 4]
                s5 = he[j + 5]
                s6 = he[j + 6]
                s7 = he[j + 7]
                r = off + j
                for i in range(O):
                    ei = oe[i]
                    s0 += OW[r, i] * ei
                    s1 += OW[r + 1, i] * ei
                    s2 += OW[r + 2, i] * ei
                    s3 += OW[r + 3, i] * ei
                    s4 += OW[r + 4, i] * ei
                    s5 += OW[r + 5, i] * ei
                    s6 += OW[r + 6, i] * ei
                    s7 += OW[r + 7, i] * ei
                he[j] = s0
                he[j + 1] = s1
                he[j + 2] = s2
                he[j + 3] = s3
                he[j + 4] = s4
                he[j + 5] = s5
                he[j + 6] = s6
                he[j + 7] = s7
                j += 8
            while j < C:
                s0 = he[j]
                for i in range(O):
                    s0 += OW[off + j, i] * oe[i]
                he[j] = s0
                j += 1
            if e > 0:
                symbol = hist[e - 1]
            else:
                symbol = old_input
            _layer_backward(params, memory, state, e, layer, symbol)


@njit(cache=True)
def _adam_block(g, m, v, w, rows, cols, alpha, bc1, bc2, beta1, beta2, eps):
    one = np.float32(1.0)
    a1 = one - beta1
    a2 = one - beta2
    for r in range(rows):
        for k in range(cols):
            gk = g[r, k]
            mk = m[r, k] * beta1
            mk = mk + a1 * gk
            vk = v[r, k] * beta2
            vk = vk + (a2 * gk) * gk
            m[r, k] = mk
            v[r, k] = vk
            w[r, k] = w[r, k] - alpha * ((mk / bc1) / np.sqrt(vk / bc2 + eps))


@njit(cache=True)
def _adam(params, memory):
    """gmix's Adam (beta1 0.025, beta2 0.9999, eps 1e-6 inside the sqrt, step size lr*0.1/sqrt(5e-5 t + 1),
    frozen once t reaches update_limit) on every layer's weights, gammas and betas."""
    O = params.output_size[0]
    C = params.num_cells[0]
    L = params.num_layers[0]
    limit = params.update_limit[0]
    lr = params.learning_rate[0]
    beta1 = params.adam_beta1[0]
    beta2 = params.adam_beta2[0]
    eps = params.adam_eps[0]
    one = np.float32(1.0)
    for layer in range(L):
        steps = memory.update_steps[layer]
        t = np.float32(steps)
        if t < np.float32(limit):
            alpha = (lr * np.float32(0.1)) / np.sqrt(np.float32(5e-5) * t + one)
            bc1 = one - powf_int(beta1, steps)  # powf(beta, t) in float32
            bc2 = one - powf_int(beta2, steps)
        else:
            alpha = (lr * np.float32(0.1)) / np.sqrt(np.float32(5e-5) * np.float32(limit) + one)
            bc1 = np.float32(1.0 - powi64(np.float64(beta1), limit))  # pow(float, integer) is double in C++
            bc2 = np.float32(1.0 - powi64(np.float64(beta2), limit))
        rows = O + params.layer_input_size[layer]
        _adam_block(memory.grad[layer], memory.weights_m[layer], memory.weights_v[layer], memory.weights[layer],
                    rows, NUM_GATES * C, alpha, bc1, bc2, beta1, beta2, eps)
        _adam_block(memory.gamma_grad[layer], memory.gamma_m[layer], memory.gamma_v[layer], memory.gamma[layer],
                    NUM_GATES, C, alpha, bc1, bc2, beta1, beta2, eps)
        _adam_block(memory.beta_grad[layer], memory.beta_m[layer], memory.beta_v[layer], memory.beta[layer],
                    NUM_GATES, C, alpha, bc1, bc2, beta1, beta2, eps)


@njit(cache=True)
def _record(params, state, byte):
    """Store ``byte`` as the target of the timestep just predicted; returns the value it replaced."""
    H = params.horizon[0]
    last = state.epoch[0] - 1
    if last < 0:
        last = H - 1
    old = state.input_history[last]
    state.input_history[last] = np.int64(byte)
    return old


@njit(cache=True)
def lstm_observe(params, state, byte):
    """Record the byte that followed the last prediction without learning (writes only ``state``).

    Optional: call it instead of lstm_learn when learning is disabled, so that a later BPTT sees the right
    targets for these timesteps.
    """
    _record(params, state, byte)


@njit(cache=True)
def lstm_learn(params, memory, state, byte):
    """gmix Lstm::Perceive: learn from the byte that followed the last lstm_predict.

    Every byte: output-layer SGD (copy for the next timestep = this timestep's copy - lr * error * hidden).
    When the epoch counter has wrapped to 0: BPTT over the horizon, then Adam on all gate parameters.
    """
    O = params.output_size[0]
    H = params.horizon[0]
    hid = params.hidden_size[0]
    e = state.epoch[0]
    last = e - 1
    if last < 0:
        last = H - 1
    old_input = _record(params, state, byte)
    if e == 0:
        _bptt(params, memory, state, old_input)
        _adam(params, memory)
    lr = params.learning_rate[0]
    one = np.float32(1.0)
    out = state.output[last]
    c = memory.out_error
    target = np.int64(byte)
    for i in range(O):
        err = out[i] - one if i == target else out[i]
        c[i] = lr * err
    src = memory.output_layer[last]
    dst = memory.output_layer[e]
    hidden = state.hidden
    for j in range(hid):
        hj = hidden[j]
        for i in range(O):
            dst[j, i] = src[j, i] - c[i] * hj

