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

predict (`mixer_predict`, every bit, after all models): dot products in a fixed order (see `_dot`): the inputs
    known before the layer runs in 16 lanes with explicit vector instructions, then the outputs of the same
    layer's earlier mixers one by one, so each mixer waits only for those few terms.
learn (`mixer_learn`, after the bit, when learning): gradient step on the coding loss with gmix's decay
    0.9 / (1e-7 * steps + 0.8) ** 0.8 * (1.5 - context steps / most steps of any context of this mixer), and the
    weight decay (1 - 3e-6) every 1024 steps of a context.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from .._jit import njit
from .._values import first_outside, within
from ..spec import table_offsets
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


def mixer_new(mixers, slots, n_inputs, skip_index, weight_reserve=1 << 16):
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


# Explicit SIMD: LLVM never vectorises a float reduction on its own (that would reorder the sum), so the blocked
# dot product and the weight update are written as LLVM vector instructions.  Vector float operations are
# lane-wise IEEE operations, so the results are the same on any instruction set (machines without 512-bit
# registers split the vectors; without AVX the masked loads become scalar loads).
LANES = 16
_F32 = ir.FloatType()
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_VEC = ir.VectorType(_F32, LANES)
_MASK = ir.VectorType(ir.IntType(1), LANES)


def _vector_at(builder, base, i):
    return builder.bitcast(builder.gep(base, [i]), _VEC.as_pointer())


def _tail_mask(builder, remaining):
    """Lanes 0 .. remaining-1 on (remaining < LANES)."""
    r = builder.trunc(remaining, _I32)
    rv = builder.insert_element(ir.Constant(ir.VectorType(_I32, LANES), None), r, ir.Constant(_I32, 0))
    rv = builder.shuffle_vector(rv, ir.Constant(ir.VectorType(_I32, LANES), None),
                                ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))
    return builder.icmp_signed("<", ir.Constant(ir.VectorType(_I32, LANES), list(range(LANES))), rv)


def _masked_load(builder, ptr, mask):
    fnty = ir.FunctionType(_VEC, [_VEC.as_pointer(), _I32, _MASK, _VEC])
    fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.masked.load.v16f32.p0")
    return builder.call(fn, [ptr, ir.Constant(_I32, 4), mask, ir.Constant(_VEC, [0.0] * LANES)])


def _masked_store(builder, value, ptr, mask):
    fnty = ir.FunctionType(ir.VoidType(), [_VEC, _VEC.as_pointer(), _I32, _MASK])
    fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.masked.store.v16f32.p0")
    builder.call(fn, [value, ptr, ir.Constant(_I32, 4), mask])


def _blocks(builder, n, full_block, last_block):
    """for i in 0, 16, ... while i + 16 <= n: full_block(i); then last_block(i, remaining) if 0 < remaining."""
    fn = builder.function
    before = builder.block
    loop = fn.append_basic_block("simd.loop")
    body = fn.append_basic_block("simd.body")
    tail = fn.append_basic_block("simd.tail")
    partial = fn.append_basic_block("simd.partial")
    done = fn.append_basic_block("simd.done")
    builder.branch(loop)
    builder.position_at_end(loop)
    i = builder.phi(_I64)
    i.add_incoming(ir.Constant(_I64, 0), before)
    state = full_block.start
    carried = [builder.phi(v.type) for v in state]
    for c, v in zip(carried, state):
        c.add_incoming(v, before)
    following = builder.add(i, ir.Constant(_I64, LANES))
    builder.cbranch(builder.icmp_signed("<=", following, n), body, tail)
    builder.position_at_end(body)
    new = full_block(builder, i, carried)
    i.add_incoming(following, builder.block)
    for c, v in zip(carried, new):
        c.add_incoming(v, builder.block)
    builder.branch(loop)
    builder.position_at_end(tail)
    remaining = builder.sub(n, i)
    tail_block = builder.block
    builder.cbranch(builder.icmp_signed(">", remaining, ir.Constant(_I64, 0)), partial, done)
    builder.position_at_end(partial)
    last = last_block(builder, i, remaining, carried)
    partial_block = builder.block
    builder.branch(done)
    builder.position_at_end(done)
    result = []
    for c, v in zip(carried, last):
        phi = builder.phi(c.type)
        phi.add_incoming(c, tail_block)
        phi.add_incoming(v, partial_block)
        result.append(phi)
    return result


@intrinsic
def _dot(typingctx, x, weights, at, ready, n, last):
    """sum(x[i] * weights[at + i] for i < n) in float32, in a fixed order whatever the instruction set.
    With r = min(ready, n):
      V: the terms i < r in 16 lanes: the full blocks i < 16 * (r // 16), lane j adding the products with
         i % 16 == j in increasing i; then, if r % 16 != 0, one more block: when r >= 16 the 16 terms ending at
         r (lane j: term r - 16 + j) with the terms already added replaced by +0, else (r < 16) lane j: term j
         for j < r and +0 for the others; then the lanes are halved pairwise: lane j += lane j + 8, then
         j += j + 4, j += j + 2, j += j + 1;
      if r == n the result is V.  Otherwise the terms r <= i < n - 1 go to 4 partial sums (term i to sum
      (i - r) % 4, in increasing i, each starting at +0), P = (a0 + a1) + (a2 + a3), and the result is
      (V + P) + last * weights[at + n - 1], where `last` is x[n - 1] passed in a register: it is the output of
      the mixer just computed, so the next mixer waits for one multiply-add only.
    No bounds checks: the caller guarantees 0 <= at, at + n <= len(weights) and n <= len(x)."""
    sig = types.float32(x, weights, types.int64, types.int64, types.int64, types.float32)

    def codegen(context, builder, signature, args):
        xp = context.make_array(signature.args[0])(context, builder, args[0]).data
        wp = context.make_array(signature.args[1])(context, builder, args[1]).data
        wp = builder.gep(wp, [args[2]])
        n = args[4]
        r = builder.select(builder.icmp_signed("<", args[3], n), args[3], n)

        def full(b, i, carried):
            xv = b.load(_vector_at(b, xp, i), align=4)
            wv = b.load(_vector_at(b, wp, i), align=4)
            return [b.fadd(carried[0], b.fmul(xv, wv))]

        def last_block(b, i, remaining, carried):
            fn = b.function
            small = fn.append_basic_block("dot.small")
            overlap = fn.append_basic_block("dot.overlap")
            join = fn.append_basic_block("dot.join")
            b.cbranch(b.icmp_signed("<", r, ir.Constant(_I64, LANES)), small, overlap)
            b.position_at_end(small)
            mask = _tail_mask(b, remaining)
            xv = _masked_load(b, _vector_at(b, xp, i), mask)
            wv = _masked_load(b, _vector_at(b, wp, i), mask)
            from_small = b.fadd(carried[0], b.fmul(xv, wv))
            b.branch(join)
            b.position_at_end(overlap)
            # The 16 terms ending at r, the ones already added masked out: no load reaches past r, where the
            # outputs of this layer's mixers are being written (a wider load would wait for those stores).
            start = b.sub(r, ir.Constant(_I64, LANES))
            xv = b.load(_vector_at(b, xp, start), align=4)
            wv = b.load(_vector_at(b, wp, start), align=4)
            keep = b.not_(_tail_mask(b, b.sub(ir.Constant(_I64, LANES), remaining)))
            product = b.select(keep, b.fmul(xv, wv), ir.Constant(_VEC, [0.0] * LANES))
            from_overlap = b.fadd(carried[0], product)
            b.branch(join)
            b.position_at_end(join)
            phi = b.phi(_VEC)
            phi.add_incoming(from_small, small)
            phi.add_incoming(from_overlap, overlap)
            return [phi]

        full.start = [ir.Constant(_VEC, [0.0] * LANES)]
        (v,) = _blocks(builder, r, full, last_block)
        width = LANES
        while width > 1:
            half = width // 2
            lo = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, half), list(range(half))))
            hi = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, half), list(range(half, width))))
            v = builder.fadd(lo, hi)
            width = half
        total = builder.extract_element(v, ir.Constant(_I32, 0))

        fn = builder.function
        before = builder.block
        rest = fn.append_basic_block("dot.rest")
        done = fn.append_basic_block("dot.done")
        builder.cbranch(builder.icmp_signed("<", r, n), rest, done)
        builder.position_at_end(rest)
        end = builder.sub(n, ir.Constant(_I64, 1))

        def term(b, i, acc):
            return b.fadd(acc, b.fmul(b.load(b.gep(xp, [i]), align=4), b.load(b.gep(wp, [i]), align=4)))

        def four(b, i, carried):
            return [term(b, b.add(i, ir.Constant(_I64, j)), carried[j]) for j in range(4)]

        zero = ir.Constant(_F32, 0.0)
        count = builder.sub(end, r)
        fours = builder.sub(count, builder.and_(count, ir.Constant(_I64, 3)))
        # i runs over r, r + 4, ... below r + fours
        loop = fn.append_basic_block("dot.four")
        body = fn.append_basic_block("dot.fourbody")
        after = fn.append_basic_block("dot.remainder")
        entry = builder.block
        builder.branch(loop)
        builder.position_at_end(loop)
        i = builder.phi(_I64)
        i.add_incoming(r, entry)
        acc = [builder.phi(_F32) for _ in range(4)]
        for a_ in acc:
            a_.add_incoming(zero, entry)
        limit = builder.add(r, fours)
        builder.cbranch(builder.icmp_signed("<", i, limit), body, after)
        builder.position_at_end(body)
        new = four(builder, i, acc)
        i.add_incoming(builder.add(i, ir.Constant(_I64, 4)), body)
        for a_, v_ in zip(acc, new):
            a_.add_incoming(v_, body)
        builder.branch(loop)
        builder.position_at_end(after)
        # at most 3 remaining terms, to a0, a1, a2
        sums = list(acc)
        for j in range(3):
            cur = builder.block
            take = fn.append_basic_block(f"dot.rem{j}")
            join = fn.append_basic_block(f"dot.remjoin{j}")
            at_ = builder.add(limit, ir.Constant(_I64, j))
            builder.cbranch(builder.icmp_signed("<", at_, end), take, join)
            builder.position_at_end(take)
            taken = term(builder, at_, sums[j])
            builder.branch(join)
            builder.position_at_end(join)
            phi = builder.phi(_F32)
            phi.add_incoming(sums[j], cur)
            phi.add_incoming(taken, take)
            sums[j] = phi
        part = builder.fadd(builder.fadd(sums[0], sums[1]), builder.fadd(sums[2], sums[3]))
        lastw = builder.load(builder.gep(wp, [end]), align=4)
        with_rest = builder.fadd(builder.fadd(total, part), builder.fmul(args[5], lastw))
        rest_end = builder.block
        builder.branch(done)
        builder.position_at_end(done)
        result = builder.phi(_F32)
        result.add_incoming(total, before)
        result.add_incoming(with_rest, rest_end)
        return result

    return sig, codegen


@intrinsic
def _train(typingctx, x, weights, at, update, n):
    """weights[at + i] -= update * x[i] for i < n (element-wise: the order does not matter).  No bounds checks."""
    sig = types.void(x, weights, types.int64, types.float32, types.int64)

    def codegen(context, builder, signature, args):
        xp = context.make_array(signature.args[0])(context, builder, args[0]).data
        wp = context.make_array(signature.args[1])(context, builder, args[1]).data
        wp = builder.gep(wp, [args[2]])
        u = builder.insert_element(ir.Constant(_VEC, None), args[3], ir.Constant(_I32, 0))
        u = builder.shuffle_vector(u, ir.Constant(_VEC, None), ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))

        def full(b, i, carried):
            xv = b.load(_vector_at(b, xp, i), align=4)
            where = _vector_at(b, wp, i)
            b.store(b.fsub(b.load(where, align=4), b.fmul(u, xv)), where, align=4)
            return []

        def last(b, i, remaining, carried):
            mask = _tail_mask(b, remaining)
            xv = _masked_load(b, _vector_at(b, xp, i), mask)
            where = _vector_at(b, wp, i)
            _masked_store(b, b.fsub(_masked_load(b, where, mask), b.fmul(u, xv)), where, mask)
            return []

        full.start = []
        _blocks(builder, args[4], full, last)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def prefetch(typingctx, array, index):
    """Hint the processor to fetch the cache line of array[index] (no bounds check: a prefetch never faults and
    changes no value).  Unlike a load, it does not hold up the instructions behind it while the line comes."""
    sig = types.void(array, types.int64)

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        ptr = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(8).as_pointer())
        fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer(), _I32, _I32, _I32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [ptr, ir.Constant(_I32, 0), ir.Constant(_I32, 3), ir.Constant(_I32, 1)])
        return context.get_dummy_value()

    return sig, codegen


SCRATCH = 128  # floats in a `scratch` buffer


@intrinsic
def scratch(typingctx):
    """A float32[SCRATCH] work buffer on the stack of the compiled loop (no allocation, no reference count;
    contents undefined).  Call it in the kernel that uses the buffer, not in a function that returns it."""
    arrty = types.Array(types.float32, 1, "C")
    sig = arrty()

    def codegen(context, builder, signature, args):
        ptr = cgutils.alloca_once(builder, _F32, size=ir.Constant(_I64, SCRATCH))
        ptr.align = 64
        array = context.make_array(arrty)(context, builder)
        intp = context.get_value_type(types.intp)
        context.populate_array(array, data=ptr, shape=[ir.Constant(intp, SCRATCH)], strides=[ir.Constant(intp, 4)],
                               itemsize=ir.Constant(intp, 4), meminfo=None)
        return array._getvalue()

    return sig, codegen


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
        elif layer == 0:
            out = _dot(s.inputs0, weights, at, p.ready[k], p.width[k], out)
        else:
            out = _dot(s.inputs1, weights, at, p.ready[k], p.width[k], out)
        if layer == 0:
            s.inputs0[p.output[k]] = out
            s.inputs1[p.output1[k]] = out
        elif layer == 1:
            s.inputs1[p.output[k]] = out
        else:
            s.final[0] = out
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
            at = m.table[entry, 0] - 1
            steps = m.table[entry, 1]
            decay = np.float32(np.float64(base_decay) * (1.5 - np.float64(steps) / np.float64(m.max_steps[k])))
            update = (decay * p.learning_rate[k]) * (probability[k - first] - fbit)
            steps += 1
            m.table[entry, 1] = steps
            if steps > m.max_steps[k]:
                m.max_steps[k] = steps
            if p.layer[k] == 0:
                _train(s.inputs0, m.weights, at, update, width)
            else:
                _train(s.inputs1, m.weights, at, update, width)
            if (steps & 1023) == 0:
                w = m.weights[at:at + width]
                for i in range(width):
                    w[i] *= shrink
