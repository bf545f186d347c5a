"""Hand-written LLVM IR for the compiled kernels: explicit vector loops, prefetches, a stack buffer, bit casts.

Everything here is code generation; the algorithms that use it live with their families (the mixer's dot product
and update, the indirect models' prefetches, the vectorised logistic).  LLVM never vectorises a float reduction on
its own (that would reorder the sum), so the loops that must be vectorised and still add in a fixed order are
written as LLVM vector instructions.  Vector float operations are lane-wise IEEE operations, so the results are
the same on any instruction set (machines without 512-bit registers split the vectors; without AVX the masked
loads become scalar loads).

Builder helpers (used inside a codegen function): `counted_loop` (a `for i in range(start, stop, step)` loop
carrying values), `when` (a conditional update of values), `either` (two branches joined), `lane_blocks` (full
16-lane blocks, then one partial block under a mask), `splat`, `tail_mask`, `masked_load`, `masked_store`.
"""
from __future__ import annotations

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

LANES = 16
F32 = ir.FloatType()
F64 = ir.DoubleType()
I1 = ir.IntType(1)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
VEC = ir.VectorType(F32, LANES)
MASK = ir.VectorType(I1, LANES)


# ---- builder helpers -------------------------------------------------------------------------------------------

def counted_loop(builder, start, stop, step, initial, body):
    """for i in range(start, stop, step) (step > 0, signed int64 bounds): values = body(builder, i, values),
    starting from `initial` (a list of LLVM values).  Returns (i after the loop, values after the loop), with the
    builder positioned after the loop."""
    fn = builder.function
    before = builder.block
    head = fn.append_basic_block("loop.head")
    block = fn.append_basic_block("loop.body")
    after = fn.append_basic_block("loop.end")
    builder.branch(head)
    builder.position_at_end(head)
    i = builder.phi(I64)
    i.add_incoming(start, before)
    carried = [builder.phi(v.type) for v in initial]
    for phi, v in zip(carried, initial):
        phi.add_incoming(v, before)
    builder.cbranch(builder.icmp_signed("<", i, stop), block, after)
    builder.position_at_end(block)
    new = body(builder, i, list(carried))
    i.add_incoming(builder.add(i, ir.Constant(I64, step)), builder.block)
    for phi, v in zip(carried, new):
        phi.add_incoming(v, builder.block)
    builder.branch(head)
    builder.position_at_end(after)
    return i, list(carried)


def either(builder, condition, then, otherwise):
    """then(builder) if condition else otherwise(builder), each returning a list of values; returns the joined
    values (phis), with the builder positioned after both branches."""
    fn = builder.function
    yes = fn.append_basic_block("either.then")
    no = fn.append_basic_block("either.else")
    join = fn.append_basic_block("either.join")
    builder.cbranch(condition, yes, no)
    results = []
    for block, branch in ((yes, then), (no, otherwise)):
        builder.position_at_end(block)
        values = branch(builder)
        results.append((values, builder.block))
        builder.branch(join)
    builder.position_at_end(join)
    out = []
    for k in range(len(results[0][0])):
        phi = builder.phi(results[0][0][k].type)
        for values, block in results:
            phi.add_incoming(values[k], block)
        out.append(phi)
    return out


def when(builder, condition, values, then):
    """values = then(builder, values) if condition, else unchanged; returns the joined values."""
    fn = builder.function
    before = builder.block
    yes = fn.append_basic_block("when.then")
    join = fn.append_basic_block("when.join")
    builder.cbranch(condition, yes, join)
    builder.position_at_end(yes)
    new = then(builder, list(values))
    end = builder.block
    builder.branch(join)
    builder.position_at_end(join)
    out = []
    for old, v in zip(values, new):
        phi = builder.phi(old.type)
        phi.add_incoming(old, before)
        phi.add_incoming(v, end)
        out.append(phi)
    return out


def lane_blocks(builder, n, initial, full_block, last_block):
    """for i = 0, 16, ... while i + 16 <= n: values = full_block(builder, i, values); then, when 0 < n - i:
    values = last_block(builder, i, n - i, values).  Returns the values."""
    i, values = counted_loop(builder, ir.Constant(I64, 0), builder.sub(n, ir.Constant(I64, LANES - 1)), LANES,
                             initial, full_block)
    remaining = builder.sub(n, i)
    return when(builder, builder.icmp_signed(">", remaining, ir.Constant(I64, 0)), values,
                lambda b, v: last_block(b, i, remaining, v))


def splat(builder, value, lanes=LANES):
    """A vector with `value` (an LLVM value) in every lane."""
    vector = ir.VectorType(value.type, lanes)
    v = builder.insert_element(ir.Constant(vector, None), value, ir.Constant(I32, 0))
    return builder.shuffle_vector(v, ir.Constant(vector, None), ir.Constant(ir.VectorType(I32, lanes), [0] * lanes))


def constant_vector(value_type, value, lanes):
    return ir.Constant(ir.VectorType(value_type, lanes), [value] * lanes)


def vector_at(builder, base, i):
    """Pointer to the LANES floats at base[i]."""
    return builder.bitcast(builder.gep(base, [i]), VEC.as_pointer())


def tail_mask(builder, remaining):
    """Lanes 0 .. remaining-1 on (remaining < LANES)."""
    r = splat(builder, builder.trunc(remaining, I32))
    return builder.icmp_signed("<", ir.Constant(ir.VectorType(I32, LANES), list(range(LANES))), r)


def masked_load(builder, ptr, mask):
    fnty = ir.FunctionType(VEC, [VEC.as_pointer(), I32, MASK, VEC])
    fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.masked.load.v16f32.p0")
    return builder.call(fn, [ptr, ir.Constant(I32, 4), mask, ir.Constant(VEC, [0.0] * LANES)])


def masked_store(builder, value, ptr, mask):
    fnty = ir.FunctionType(ir.VoidType(), [VEC, VEC.as_pointer(), I32, MASK])
    fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.masked.store.v16f32.p0")
    builder.call(fn, [value, ptr, ir.Constant(I32, 4), mask])


def _data(context, builder, array_type, array):
    return context.make_array(array_type)(context, builder, array).data


# ---- the mixer's dot product and update ------------------------------------------------------------------------

@intrinsic
def dot(typingctx, x, weights, at, ready, n, last):
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
        xp = _data(context, builder, signature.args[0], args[0])
        wp = builder.gep(_data(context, builder, signature.args[1], args[1]), [args[2]])
        n = args[4]
        r = builder.select(builder.icmp_signed("<", args[3], n), args[3], n)
        zero = ir.Constant(VEC, [0.0] * LANES)

        def full(b, i, values):
            xv = b.load(vector_at(b, xp, i), align=4)
            wv = b.load(vector_at(b, wp, i), align=4)
            return [b.fadd(values[0], b.fmul(xv, wv))]

        def last_block(b, i, remaining, values):
            def small(b):
                mask = tail_mask(b, remaining)
                xv = masked_load(b, vector_at(b, xp, i), mask)
                wv = masked_load(b, vector_at(b, wp, i), mask)
                return [b.fadd(values[0], b.fmul(xv, wv))]

            def overlap(b):
                # The 16 terms ending at r, the ones already added masked out: no load reaches past r, where the
                # outputs of this layer's mixers are being written (a wider load would wait for those stores).
                start = b.sub(r, ir.Constant(I64, LANES))
                xv = b.load(vector_at(b, xp, start), align=4)
                wv = b.load(vector_at(b, wp, start), align=4)
                keep = b.not_(tail_mask(b, b.sub(ir.Constant(I64, LANES), remaining)))
                return [b.fadd(values[0], b.select(keep, b.fmul(xv, wv), zero))]

            return either(b, b.icmp_signed("<", r, ir.Constant(I64, LANES)), small, overlap)

        (v,) = lane_blocks(builder, r, [zero], full, last_block)
        width = LANES
        while width > 1:
            half = width // 2
            lo = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(I32, half), list(range(half))))
            hi = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(I32, half), list(range(half, width))))
            v = builder.fadd(lo, hi)
            width = half
        total = builder.extract_element(v, ir.Constant(I32, 0))

        def term(b, i, acc):
            return b.fadd(acc, b.fmul(b.load(b.gep(xp, [i]), align=4), b.load(b.gep(wp, [i]), align=4)))

        def rest(b, values):
            end = b.sub(n, ir.Constant(I64, 1))

            def four(b, i, sums):
                return [term(b, b.add(i, ir.Constant(I64, j)), sums[j]) for j in range(4)]

            i, sums = counted_loop(b, r, b.sub(end, ir.Constant(I64, 3)), 4, [ir.Constant(F32, 0.0)] * 4, four)
            for j in range(3):  # at most 3 remaining terms, to a0, a1, a2
                at = b.add(i, ir.Constant(I64, j))
                (sums[j],) = when(b, b.icmp_signed("<", at, end), [sums[j]],
                                  lambda b, s, at=at: [term(b, at, s[0])])
            part = b.fadd(b.fadd(sums[0], sums[1]), b.fadd(sums[2], sums[3]))
            lastw = b.load(b.gep(wp, [end]), align=4)
            return [b.fadd(b.fadd(values[0], part), b.fmul(args[5], lastw))]

        (result,) = when(builder, builder.icmp_signed("<", r, n), [total], rest)
        return result

    return sig, codegen


@intrinsic
def train(typingctx, x, weights, at, update, n):
    """weights[at + i] -= update * x[i] for i < n (element-wise: the order does not matter).  No bounds checks."""
    sig = types.void(x, weights, types.int64, types.float32, types.int64)

    def codegen(context, builder, signature, args):
        xp = _data(context, builder, signature.args[0], args[0])
        wp = builder.gep(_data(context, builder, signature.args[1], args[1]), [args[2]])
        u = splat(builder, args[3])

        def full(b, i, values):
            xv = b.load(vector_at(b, xp, i), align=4)
            where = vector_at(b, wp, i)
            b.store(b.fsub(b.load(where, align=4), b.fmul(u, xv)), where, align=4)
            return []

        def last(b, i, remaining, values):
            mask = tail_mask(b, remaining)
            xv = masked_load(b, vector_at(b, xp, i), mask)
            where = vector_at(b, wp, i)
            masked_store(b, b.fsub(masked_load(b, where, mask), b.fmul(u, xv)), where, mask)
            return []

        lane_blocks(builder, args[4], [], full, last)
        return context.get_dummy_value()

    return sig, codegen


# ---- memory -----------------------------------------------------------------------------------------------------

@intrinsic
def prefetch(typingctx, array, index):
    """Hint the processor to fetch the cache line of array[index] (no bounds check: a prefetch never faults and
    changes no value).  Unlike a load, it does not hold up the instructions behind it while the line comes."""
    sig = types.void(array, types.int64)

    def codegen(context, builder, signature, args):
        data = _data(context, builder, signature.args[0], args[0])
        ptr = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(8).as_pointer())
        fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer(), I32, I32, I32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [ptr, ir.Constant(I32, 0), ir.Constant(I32, 3), ir.Constant(I32, 1)])
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
        ptr = cgutils.alloca_once(builder, F32, size=ir.Constant(I64, SCRATCH))
        ptr.align = 64
        array = context.make_array(arrty)(context, builder)
        intp = context.get_value_type(types.intp)
        context.populate_array(array, data=ptr, shape=[ir.Constant(intp, SCRATCH)], strides=[ir.Constant(intp, 4)],
                               itemsize=ir.Constant(intp, 4), meminfo=None)
        return array._getvalue()

    return sig, codegen


# ---- floats as bits ---------------------------------------------------------------------------------------------

@intrinsic
def f64_bits(typingctx, x):
    """The IEEE 754 bits of a float64, as int64."""
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], I64)

    return sig, codegen


@intrinsic
def f64_from_bits(typingctx, bits):
    """The float64 with these IEEE 754 bits."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], F64)

    return sig, codegen


# ---- the vectorised logistic ------------------------------------------------------------------------------------

def vector_logistic(over_ln2_64, round_constant, ln2_64_hi, ln2_64_lo, lanes=8):
    """An intrinsic logistic_lanes(values, table, n): values[i] = logistic(values[i]) for i < n, `lanes` at a
    time, with the exp reduction's constants (64 / ln 2, the rounding constant, ln 2 / 64 in two parts) and a
    table of 2**(j/64) given by the algorithm (mixer/sigmoid.py), which states what is computed."""
    f64v = ir.VectorType(F64, lanes)
    f32v = ir.VectorType(F32, lanes)
    i64v = ir.VectorType(I64, lanes)

    def const(value_type, value):
        return constant_vector(value_type, value, lanes)

    @intrinsic
    def logistic_lanes(typingctx, values, table, n):
        sig = types.void(values, table, types.int64)

        def codegen(context, builder, signature, args):
            vp = _data(context, builder, signature.args[0], args[0])
            tp = _data(context, builder, signature.args[1], args[1])

            def body(b, i, _):
                where = b.bitcast(b.gep(vp, [i]), f32v.as_pointer())
                p = b.load(where, align=4)
                x = b.fsub(const(F64, -0.0), b.fpext(p, f64v))  # exact negation
                x = b.select(b.fcmp_ordered(">=", x, const(F64, -120.0)), x, const(F64, -120.0))
                x = b.select(b.fcmp_ordered(">", x, const(F64, 120.0)), const(F64, 120.0), x)
                kf = b.fsub(b.fadd(b.fmul(x, const(F64, over_ln2_64)), const(F64, round_constant)),
                            const(F64, round_constant))
                r = b.fsub(b.fsub(x, b.fmul(kf, const(F64, ln2_64_hi))), b.fmul(kf, const(F64, ln2_64_lo)))
                q = const(F64, 1.0 / 120.0)
                for c in (1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0):
                    q = b.fadd(b.fmul(q, r), const(F64, c))
                q = b.fmul(q, r)
                k = b.fptosi(kf, i64v)
                j = b.and_(k, const(I64, 63))
                m = b.ashr(k, const(I64, 6))
                base = splat(b, b.ptrtoint(tp, I64), lanes)
                ptrs = b.inttoptr(b.add(base, b.shl(j, const(I64, 3))), ir.VectorType(F64.as_pointer(), lanes))
                gty = ir.FunctionType(f64v, [ir.VectorType(F64.as_pointer(), lanes), I32, ir.VectorType(I1, lanes),
                                             f64v])
                gather = cgutils.get_or_insert_function(b.module, gty, f"llvm.masked.gather.v{lanes}f64.v{lanes}p0")
                hi = b.call(gather, [ptrs, ir.Constant(I32, 8), const(I1, 1), ir.Constant(f64v, None)])
                scale = b.bitcast(b.shl(b.add(m, const(I64, 1023)), const(I64, 52)), f64v)  # 2**m, exactly
                e = b.fptrunc(b.fmul(b.fadd(hi, b.fmul(hi, q)), scale), f32v)
                one = const(F32, 1.0)
                b.store(b.fdiv(one, b.fadd(one, e)), where, align=4)
                return []

            counted_loop(builder, ir.Constant(I64, 0), args[2], lanes, [], body)
            return context.get_dummy_value()

        return sig, codegen

    return logistic_lanes
