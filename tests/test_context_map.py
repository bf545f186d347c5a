"""The context-map family (models/context_map.py, paq8px's ContextMap2): the compiled kernels against a plain-Python
transcription, learning-off semantics, a compress/decompress round trip, model files and the value checks."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gmixpy._jit import njit
from gmixpy.models.context_map import (
    MAP_OFFSET,
    RECIPROCAL,
    RUN_LIMIT,
    STRETCH,
    _stretch_exact,
    context_map_check,
    context_map_learn,
    context_map_new,
    context_map_predict,
    initial_maps,
)
from gmixpy.models.paq_states import STATE_COUNTS, STATE_GROUP, STATE_NEXT, STATE_PRIORITY
from gmixpy.spec import ContextMap

M64 = (1 << 64) - 1
PHI64 = 0x9E3779B97F4A7C15
MUL64_1 = 0x993DDEFFB1462949
F = np.float32


class Reference:
    """ContextMap2 as models/context_map.py states it, one Python statement at a time (no Numba, no numpy arrays
    on the hot path), with explicit float32 rounding."""

    def __init__(self, item: ContextMap):
        self.item = item
        self.n = len(item.contexts)
        self.buckets = 1 << item.table_bits
        self.table = [[0] * 64 for _ in range(self.buckets)]
        p0, n0 = initial_maps()
        self.p = [[F(v) for v in p0] for _ in range(self.n)]
        self.count = [[int(v) for v in n0] for _ in range(self.n)]
        self.random = 0
        self.gain = F(item.gain)
        # short-term memory
        self.bucket0 = [0] * self.n
        self.bucket = [0] * self.n
        self.checksum = [1] * self.n
        self.history = [[0] * 5 for _ in range(self.n)]
        self.virtual = [0] * self.n
        self.rebuilt = [[0] * 7 for _ in range(self.n)]
        self.replayed = [0] * self.n
        self.cells = [[-1] * 4 for _ in range(self.n)]

    # -- paq8px's Random and StateTable ------------------------------------------------------------------------
    def draw(self, bits):
        self.random = ((self.random + 1) * PHI64) & M64
        return self.random >> (64 - bits)

    def next_state(self, state, bit):
        new = int(STATE_NEXT[state, bit])
        if new >= 205 and new >= state + 4 and self.draw(1):
            return state
        return new

    # -- the bucket --------------------------------------------------------------------------------------------
    def elements(self, row):
        t = self.table[row]
        return [(t[2 * e] | t[2 * e + 1] << 8, t[14 + 7 * e:21 + 7 * e]) for e in range(7)]

    def store(self, row, elements):
        t = self.table[row]
        for e, (c, states) in enumerate(elements):
            t[2 * e], t[2 * e + 1] = c & 255, c >> 8
            t[14 + 7 * e:21 + 7 * e] = states

    def find(self, row, checksum):
        for e, (c, _) in enumerate(self.elements(row)):
            if c == checksum:
                return e
            if c == 0:
                return -1
        return -1

    def claim(self, row, checksum):
        els = self.elements(row)
        for e, (c, _) in enumerate(els):
            if c == checksum:
                self.store(row, [els[e]] + els[:e] + els[e + 1:])
                return
            if c == 0:
                self.store(row, [(checksum, [0] * 7)] + els[:e] + els[e + 1:])
                return
        victim = 6
        r = self.draw(32)
        prio = [int(STATE_PRIORITY[s[0]]) for _, s in els]
        if (r & 63) >= 1:
            lowest = prio[6]
            if prio[5] < lowest:
                lowest, victim = prio[5], 5
            r >>= 6
            for place, threshold in ((4, 4), (3, 8), (2, 16)):
                if (r & 63) < threshold:
                    break
                if prio[place] < lowest:
                    lowest, victim = prio[place], place
                r >>= 6
        self.store(row, [(checksum, [0] * 7)] + els[:victim] + els[victim + 1:])

    # -- predict -----------------------------------------------------------------------------------------------
    @staticmethod
    def stretch(p):
        return STRETCH[min(int(p * F(4096.0)), 4095)]

    def rebuild(self, j, bpos, c0, three):
        h = self.history[j]
        out = [0] * 7
        if h[0]:
            if three:
                seen = [h[3], h[2], h[2]] if h[1] == 2 else [h[4], h[3], h[2]]
            elif h[0] >= 3:
                seen = [h[3], h[2]]
            else:
                seen = [h[2]]
            shift = 8 - bpos
            for byte in seen:
                if ((c0 ^ (byte >> shift)) & ((1 << bpos) - 1)) == 0:
                    x = byte >> (shift - 3)
                    b0, b1 = (x >> 2) & 1, (x >> 1) & 1
                    out[0] = int(STATE_NEXT[out[0], b0])
                    out[1 + b0] = int(STATE_NEXT[out[1 + b0], b1])
                    out[3 + ((x >> 1) & 3)] = int(STATE_NEXT[out[3 + ((x >> 1) & 3)], x & 1])
        self.rebuilt[j] = out

    def predict(self, values, c0):
        it = self.item
        bpos = c0.bit_length() - 1
        mask = self.buckets - 1
        hb = it.table_bits
        if bpos == 0:
            for j in range(self.n):
                h = ((values[j] + 1) * PHI64 + (j + 1) * MUL64_1) & M64
                self.bucket0[j] = self.bucket[j] = h >> (64 - hb)
                self.checksum[j] = ((h >> (48 - hb)) & 0xFFFF) or 1
                self.virtual[j] = self.replayed[j] = 0
                e = self.find(self.bucket0[j], self.checksum[j])
                if e >= 0:
                    st = self.elements(self.bucket0[j])[e][1]
                    self.history[j] = [st[0], st[3], st[4], st[5], st[6]]
                else:
                    self.history[j] = [0] * 5
        elif bpos in (2, 5):
            for j in range(self.n):
                self.bucket[j] = (self.bucket0[j] + c0) & mask
                self.virtual[j] = 0
                s0 = self.history[j][0]
                if it.deferred and s0 <= 6:
                    self.virtual[j] = 1
                    self.rebuild(j, bpos, c0, False)
                elif it.deferred and s0 <= 14 and not self.replayed[j]:
                    self.virtual[j] = 1
                    self.rebuild(j, bpos, c0, True)
        select = (0x31031010 >> (bpos << 2)) & 0xF
        loc = select + (c0 & select)
        bp = (0x33322210 >> (bpos << 2)) & 0xF
        out, order = [], 0
        for j in range(self.n):
            if self.virtual[j]:
                state = self.rebuilt[j][loc]
            else:
                e = self.find(self.bucket[j], self.checksum[j])
                state = self.elements(self.bucket[j])[e][1][loc] if e >= 0 else 0
            n0, n1 = int(STATE_COUNTS[state, 0]), int(STATE_COUNTS[state, 1])
            uncertain = int(n0 != 0 and n1 != 0)
            s0, run, b1, b2, b3 = self.history[j]
            c1, c2, c3 = s0 >= 1, s0 >= 3, s0 >= 7
            p = self.p[j]
            if it.run:
                cell, divisor = -1, F(1)
                if c1 and ((b1 + 256) >> (8 - bpos)) == c0:
                    doubtful = int(b2 != b1)
                    cell = run << 4 | bp << 2 | doubtful << 1 | ((b1 >> (7 - bpos)) & 1)
                    divisor = F(0.25) if doubtful else F(0.5)
                elif c2 and ((b2 + 256) >> (8 - bpos)) == c0:
                    cell = uncertain << 1 | ((b2 >> (7 - bpos)) & 1)
                    divisor = F(0.125) if b3 != b2 else F(0.25)
                self.cells[j][0] = cell
                out.append(self.stretch(p[cell]) * divisor * self.gain if cell >= 0 else F(0))
            if state == 0:
                self.cells[j][1] = -1
                out += [F(0)] * 4
            else:
                self.cells[j][1] = state
                p1 = p[4096 + state]
                st = self.stretch(p1) * F(0.25)
                out.append((st * F(0.5) if state <= 2 else st) * self.gain)
                out.append((p1 - F(0.5)) * F(2) * self.gain)
                out.append(F(0) if uncertain else st * self.gain)
                sure = F(0)
                if n0 == 0:
                    sure += p1
                if n1 == 0:
                    sure -= F(1) - p1
                out.append(sure * self.gain)
                order += 1
            if it.byte_history:
                sh = 7 - bpos
                bits = ((b1 >> sh) & 1) | ((b2 >> sh) & 1) << 1 | ((b3 >> sh) & 1) << 2
                bh = 8 | bits if c3 else 4 | (bits & 3) if c2 else 2 | (bits & 1) if c1 else 0
                c8 = uncertain << 7 | bh << 3 | bpos
                c12 = int(STATE_GROUP[state]) << 7 | bh << 3 | bpos
                self.cells[j][2], self.cells[j][3] = c8, c12
                out.append(self.stretch(p[4352 + c8]) * F(0.25) * self.gain)
                out.append(self.stretch(p[4608 + c12]) * F(0.25) * self.gain)
        return out, order * 8 + bpos

    # -- learn -------------------------------------------------------------------------------------------------
    def replay_stored(self, row, x):
        st = self.table[row]
        b0, b1 = (x >> 2) & 1, (x >> 1) & 1
        for i, bit in ((14, b0), (15 + b0, b1), (17 + ((x >> 1) & 3), x & 1)):
            st[i] = self.next_state(st[i], bit)

    def learn(self, c0, bit):
        it = self.item
        bpos = c0.bit_length() - 1
        mask = self.buckets - 1
        select = (0x31031010 >> (bpos << 2)) & 0xF
        loc = select + (c0 & select)
        y = F(bit)
        for j in range(self.n):
            for q in range(4):
                cell = self.cells[j][q]
                if cell >= 0:
                    col = int(MAP_OFFSET[q]) + cell
                    n, pr = self.count[j][col], self.p[j][col]
                    self.p[j][col] = pr + (y - pr) * RECIPROCAL[n]
                    if n < (RUN_LIMIT if q == 0 else it.limit):
                        self.count[j][col] = n + 1
            chk = self.checksum[j]
            row = -1
            if bpos == 0:
                h = self.history[j]
                if it.deferred and 7 <= h[0] <= 14:
                    seen = [h[3], h[2], h[2]] if h[1] == 2 else [h[4], h[3], h[2]]
                    for byte in seen:
                        x = byte + 256
                        r = (self.bucket0[j] + (x >> 6)) & mask
                        self.claim(r, chk)
                        self.replay_stored(r, x >> 3)
                        r = (self.bucket0[j] + (x >> 3)) & mask
                        self.claim(r, chk)
                        self.replay_stored(r, x)
                    self.replayed[j] = 1
                row = self.bucket0[j]
            elif bpos == 1:
                row = self.bucket0[j]
            elif not self.virtual[j]:
                row = self.bucket[j]
            if row >= 0:
                self.claim(row, chk)
                self.table[row][14 + loc] = self.next_state(self.table[row][14 + loc], bit)
            if bpos == 7:
                row = self.bucket0[j]
                self.claim(row, chk)
                t = self.table[row]
                byte = (c0 * 2 + bit) & 255
                if t[14] < 3:
                    t[17:21] = [1, byte, byte, byte]
                elif t[18] == byte:
                    t[17] = min(t[17] + 1, 255)
                else:
                    t[17:21] = [1, byte, t[18], t[19]]


@njit(cache=True)
def _step(p, m, s, contexts, c0, inputs, bit, learn):
    context_map_predict(p, m, s, contexts, c0, inputs)
    if learn:
        context_map_learn(p, m, s, c0, bit)


def _family(item):
    names = ["always_zero", "bit_context"] + list(item.contexts) + [item.order_slot()]
    slots = {n: i for i, n in enumerate(names)}
    p, m, s = context_map_new([item], slots, [0])
    return p, m, s, np.zeros(len(names), np.int64), np.zeros(item.inputs, np.float32)


def _context_values(data, i, n):
    """Contexts of the test: orders 1..n-1 as plain integers of the last bytes (and order 0)."""
    return [int.from_bytes(data[max(0, i - k):i], "little") & ((1 << 62) - 1) for k in range(n)]


ITEMS = [
    ContextMap("cm", ("o0", "o1", "o2", "o3", "o4"), 5),                      # small: evictions, every option on
    ContextMap("cm", ("o0", "o1", "o2"), 4, run=False, deferred=False, gain=1.5, limit=127),
    ContextMap("cm", ("o0", "o1", "o2", "o3"), 6, byte_history=False),
]


def test_stretch_table_is_exactly_rounded():
    """The table is computed with float64 arithmetic (fast, no libm); every entry equals the exactly rounded
    decimal logarithm, bit for bit."""
    assert np.array_equal(STRETCH.view(np.uint32), _stretch_exact().view(np.uint32))


@pytest.mark.parametrize("item", ITEMS, ids=["all", "plain", "no_bh"])
def test_kernel_matches_python_reference(alice, item):
    data = alice[:400]
    p, m, s, contexts, inputs = _family(item)
    ref = Reference(item)
    n = len(item.contexts)
    for i, byte in enumerate(data):
        values = _context_values(data, i, n)
        contexts[2:2 + n] = values
        c0 = 1
        for j in range(7, -1, -1):
            bit = (byte >> j) & 1
            contexts[1] = c0 - 1
            expected, order = ref.predict(values, c0)
            _step(p, m, s, contexts, c0, inputs, bit, True)
            assert inputs.tobytes() == np.array(expected, np.float32).tobytes(), (i, j)
            assert contexts[2 + n] == order
            ref.learn(c0, bit)
            c0 = c0 * 2 + bit
    assert np.array_equal(m.table, np.array(ref.table, np.uint8))
    assert np.array_equal(m.probability, np.array(ref.p, np.float32))
    assert np.array_equal(m.count, np.array(ref.count, np.uint16))
    assert int(m.generator[0]) & M64 == ref.random
    if item.table_bits <= 5:
        assert ref.random != 0  # the small table evicted


def _run(p, m, s, contexts, inputs, data, start, learn, item):
    """Inputs of every bit of data[start:], learning or not."""
    n = len(item.contexts)
    out = []
    for i in range(start, len(data)):
        contexts[2:2 + n] = _context_values(data, i, n)
        c0 = 1
        for j in range(7, -1, -1):
            bit = (data[i] >> j) & 1
            contexts[1] = c0 - 1
            _step(p, m, s, contexts, c0, inputs, bit, learn)
            out.append((inputs.copy(), bit))
            c0 = c0 * 2 + bit
    return out


def test_learning_off_leaves_long_term_memory_identical(alice):
    item = replace(ITEMS[0], table_bits=8)
    p, m, s, contexts, inputs = _family(item)
    data = alice[:3000]
    _run(p, m, s, contexts, inputs, data[:2000], 0, True, item)
    before = [a.copy() for a in m]
    frozen = _run(p, m, s, contexts, inputs, data, 2000, False, item)
    for a, b in zip(before, m):
        assert a.tobytes() == b.tobytes()
    values = np.array([x for x, _ in frozen])
    bits = np.array([b for _, b in frozen])
    assert np.isfinite(values).all()
    # Sensible: the contexts seen in training speak, and the bit-history stretch of the highest order that
    # speaks points the right way far more often than not.
    st = values[:, 1::7]  # each context's stretch input (after its run input)
    speaking = (st != 0).any(axis=1)
    assert speaking.mean() > 0.7
    last = np.array([row[np.nonzero(row)[0][-1]] for row in st[speaking]])
    assert ((last > 0) == (bits[speaking] == 1)).mean() > 0.75


def _tiny_spec():
    from gmixpy import presets

    return presets.stronger("tiny-cm", neural=False, shrink=10, history_reserve=1 << 12,
                            features=("words", "cm_orders", "cm_words", "cm_mixer", "apm"))


def test_round_trip_and_model_file(tmp_path, alice):
    import gmixpy
    from gmixpy import serialize
    from gmixpy.model import Model
    from gmixpy.runs import evaluate

    spec = _tiny_spec()
    data = alice[:3000]
    blob = gmixpy.compress(data, model=Model.new(spec))
    assert gmixpy.decompress(blob, model=Model.new(spec)) == data
    assert len(blob) < 0.5 * len(data)
    model = Model.new(spec)
    evaluate(model, data, learn=True)
    path = tmp_path / "cm.gmxm"
    serialize.save(str(path), model)
    loaded = serialize.load(str(path))
    assert loaded.digest() == model.digest()
    more = alice[3000:4000]
    assert evaluate(loaded, more, learn=False) == evaluate(model.copy(), more, learn=False)


def test_check_refuses_out_of_range_values():
    item = ITEMS[0]
    p, m, s, _, _ = _family(item)
    assert context_map_check(p, m, s) is None
    cases = [
        ("bucket0", lambda m, s: s.bucket0.__setitem__(0, m.table.shape[0])),
        ("bucket", lambda m, s: s.bucket.__setitem__(1, -1)),
        ("checksum", lambda m, s: s.checksum.__setitem__(0, 0)),
        ("probability", lambda m, s: m.probability.__setitem__((0, 5), 1.5)),
        ("count", lambda m, s: m.count.__setitem__((1, 7), 1024)),
        ("map_index", lambda m, s: s.map_index.__setitem__((0, 1), 256)),
        ("map_index", lambda m, s: s.map_index.__setitem__((0, 0), -2)),
    ]
    for field, spoil in cases:
        p, m, s, _, _ = _family(item)
        spoil(m, s)
        problem = context_map_check(p, m, s)
        assert problem is not None and field in problem, (field, problem)
