"""The families added beyond gmix, each kernel against a plain-Python version (tests/families_reference.py): the
APM stage, word, record, text and signal contexts, the Indirect model's count-based rate (`limit`) and the mixer's
warm start; then, per family, that a whole model using it leaves long-term memory bit-identical when learning is
off while the family's running state keeps following the data."""
from __future__ import annotations

import numpy as np
import pytest

from families_reference import (
    F,
    ReferenceAdaptiveIndirect,
    ReferenceApm,
    ReferenceRecord,
    active_slot,
    apm_row,
    byte_class,
    match_slot,
    misses_after,
    text_slots,
    word_hash,
    word_slot,
    words_before,
)
from gmixpy._jit import njit
from gmixpy.contexts.basic import BIT_CONTEXT, basic_new, basic_predict
from gmixpy.contexts.record import record_new, record_update
from gmixpy.contexts.signals import signals_after_models, signals_new, signals_update
from gmixpy.contexts.states import NONSTATIONARY, RUN_MAP
from gmixpy.contexts.text import text_new, text_update
from gmixpy.contexts.word import MAX_WORDS, word_new, word_update
from gmixpy.mixer.mixer import mixer_learn, mixer_new, mixer_predict
from gmixpy.mixer.sigmoid import logistic
from gmixpy.models.apm import BUCKETS, apm_learn, apm_new, apm_predict
from gmixpy.models.indirect import indirect_learn, indirect_new, indirect_predict
from gmixpy.models.match import match_new
from gmixpy.spec import (
    BASIC_SLOTS,
    Active,
    Apm,
    Indirect,
    Match,
    Misses,
    Mixer,
    Record,
    Skip,
    Specification,
    Text,
    Word,
)
from gmixpy.spec import MatchState as MatchStateContext


def _bits(data: bytes):
    for byte in data:
        for j in range(7, -1, -1):
            yield (byte >> j) & 1


# ---- the byte-level contexts, driven by the real basic_predict ----------------------------------------------------
# Each harness feeds `data` bit by bit through basic_predict and, at every byte boundary (the first prediction
# included: the stream the contexts see is [0] + data), refreshes the family and records its slots: row t of
# `out` holds the slots after stream[t].

@njit(cache=True)
def _run_word(p, s, b, data, out, registers):
    row = 0
    for i in range(data.shape[0] + 1):
        for j in range(8):
            if basic_predict(b):
                word_update(p, s, b, b.contexts[2])
                for k in range(p.slot.shape[0]):
                    out[row, k] = b.contexts[p.slot[k]]
                registers[row, :] = s.words
                row += 1
            if i == data.shape[0]:
                return
            b.new_bit[0] = (data[i] >> (7 - j)) & 1


@njit(cache=True)
def _run_record(p, s, b, data, out, lengths):
    row = 0
    for i in range(data.shape[0] + 1):
        for j in range(8):
            if basic_predict(b):
                record_update(p, s, b)
                for k in range(p.slot.shape[0]):
                    out[row, k] = b.contexts[p.slot[k]]
                lengths[row] = s.length[0]
                row += 1
            if i == data.shape[0]:
                return
            b.new_bit[0] = (data[i] >> (7 - j)) & 1


@njit(cache=True)
def _run_text(p, s, b, data, out):
    row = 0
    for i in range(data.shape[0] + 1):
        for j in range(8):
            if basic_predict(b):
                text_update(p, s, b)
                for k in range(p.slot.shape[0]):
                    out[row, k] = b.contexts[p.slot[k]]
                row += 1
            if i == data.shape[0]:
                return
            b.new_bit[0] = (data[i] >> (7 - j)) & 1


def _slots(items):
    names = list(BASIC_SLOTS) + [c.name for c in items]  # basic_predict writes every basic slot
    return {n: i for i, n in enumerate(names)}, len(names)


def _drive(new, run, items, data, *extra):
    slots, n_slots = _slots(items)
    p, s = new(items, slots)
    b, _ = basic_new(n_slots, 16)
    out = np.zeros((len(data) + 1, len(items)), np.int64)
    run(p, s, b, np.frombuffer(data, np.uint8), out, *extra)
    return p, s, out


# ---- word --------------------------------------------------------------------------------------------------------

WORDS = [Word("w0", 0, 1), Word("w01", 0, 2), Word("w1", 1, 1), Word("w0_b2", 0, 1, 2), Word("w2_3", 2, 3),
         Word("b3", 0, 0, 3), Word("w0_again", 0, 1)]


def _word_run(data):
    registers = np.zeros((len(data) + 1, MAX_WORDS), np.int64)
    _, s, out = _drive(word_new, _run_word, WORDS, data, registers)
    return s, out, registers


def test_word_contexts_match_reference(alice):
    data = alice[:1500] + "Ça déjà vu, ÉTÉ été; naïve NAÏVE 3d 42nd x1y2 — Straße STRASSE".encode() + bytes(range(256))
    s, out, registers = _word_run(data)
    stream = b"\0" + data
    for t in range(len(stream)):
        words = words_before(stream, t, MAX_WORDS)
        assert list(registers[t]) == words, t
        assert list(out[t]) == [word_slot(i, w, words, stream, t) for i, w in enumerate(WORDS)], t


def test_word_case_folding_boundaries_and_high_bytes():
    text = "The the THE tHe. théâtre, THÉÂTRE Привет привет x".encode()
    s, out, registers = _word_run(text)
    ends = {}  # word -> register rows right after each of its occurrences' last byte
    at = 0
    for token in text.split(b" "):
        word = token.rstrip(b".,")
        ends.setdefault(word.lower() if word.isascii() else word, []).append(at + len(word))
        at += len(token) + 1
    the = [registers[t, 0] for t in ends[b"the"]]
    assert len(the) == 4 and len(set(the)) == 1 and the[0] == word_hash(b"the") != 0  # case folded
    # Bytes >= 128 are letters: "théâtre" is one word, which case folding of ASCII letters makes equal to
    # "THÉÂTRE" only in its ASCII letters (É is not é), and Cyrillic words are words too.
    th1, th2 = (registers[t, 0] for t in (ends["théâtre".encode()][0], ends["THÉÂTRE".encode()][0]))
    assert th1 == word_hash("théâtre".encode()) and th1 != th2 and th1 != 0
    assert registers[ends["Привет".encode()][0], 0] == word_hash("Привет".encode()) != 0
    # A non-letter ends the word: words[0] is 0 and the word moved to words[1]; a second non-letter moves nothing.
    dot = text.index(b".") + 1  # row after the "."
    assert registers[dot, 0] == 0 and registers[dot, 1] == the[0]
    assert list(registers[dot + 1]) == list(registers[dot])  # the space after "."
    # Identical words give identical slots wherever they occur: "the the" after "The" (w01 hashes words 0 and 1).
    w01 = WORDS.index(Word("w01", 0, 2))
    assert out[ends[b"the"][1], w01] == out[ends[b"the"][2], w01]
    # Two word contexts with the same words still write different slots (each hashes its own index first).
    assert out[ends[b"the"][0], 0] != out[ends[b"the"][0], WORDS.index(Word("w0_again", 0, 1))]


# ---- record ------------------------------------------------------------------------------------------------------

RECORDS = [Record(f"r_{k}", k) for k in ("above", "above_left", "column", "distance")]


def _table(rows: int, seed: int) -> bytes:
    """A table of 23-byte rows, 'NNNNN|letters10;ddddd\\n' with random letters and digits: '|', ';' and LF recur at
    the period 23."""
    rng = np.random.default_rng(seed)
    out = bytearray()
    for i in range(rows):
        letters = bytes(rng.integers(97, 123, 10).tolist())
        digits = bytes(rng.integers(48, 58, 5).tolist())
        out += b"%05d|" % i + letters + b";" + digits + b"\n"
    return bytes(out)


def _record_run(data):
    lengths = np.zeros(len(data) + 1, np.int64)
    p, s, out = _drive(record_new, _run_record, RECORDS, data, lengths)
    return s, out, lengths


def _record_reference(data):
    ref = ReferenceRecord()
    stream = b"\0" + data
    rows, lengths = [], []
    for t in range(len(stream)):
        rows.append(ref.see(stream, t, [r.kind for r in RECORDS]))
        lengths.append(ref.length)
    return ref, rows, lengths


def test_record_detects_a_23_byte_table_and_matches_reference(alice):
    head = alice[:300]  # text first: its periods must not stop the table's from taking over
    table = _table(60, 1)
    assert len(table) == 60 * 23
    data = head + table
    s, out, lengths = _record_run(data)
    ref, rows, ref_lengths = _record_reference(data)
    assert out.tolist() == rows
    assert lengths.tolist() == ref_lengths
    assert int(s.length[0]) == ref.length == 23
    assert [list(c) for c in s.candidates] == ref.candidates
    # Detected within the table's first rows, and the column then counts 0..22 with the rows.
    position, length = ref.detected_at[-1]
    assert length == 23 and len(head) + 4 * 23 < position < len(head) + 12 * 23
    # Once the period is known, the column context after each row's LF is the same (column 0, the byte above a
    # row number's first digit, '0'), and differs from the one after the '|' (column 6 above a letter or so).
    column = RECORDS.index(Record("r_column", "column"))
    last = len(data)  # row after the final LF
    assert out[last, column] == out[last - 23, column] == out[last - 46, column]
    assert out[last - 17, column] != out[last, column]


def test_record_switches_to_a_new_period(alice):
    # a second table with 31-byte rows: each 23-byte row with 8 more random letters
    rng = np.random.default_rng(4)
    second = b"".join(r + bytes(rng.integers(97, 123, 8).tolist()) + b"\n" for r in _table(40, 4).split(b"\n")[:-1])
    data = _table(40, 2) + second
    s, out, lengths = _record_run(data)
    ref, rows, ref_lengths = _record_reference(data)
    assert out.tolist() == rows and lengths.tolist() == ref_lengths
    assert [x for _, x in ref.detected_at][:1] == [23] and ref.length == 31 == int(s.length[0])


# ---- text --------------------------------------------------------------------------------------------------------

TEXTS = [Text("c1", "classes", 1), Text("c6", "classes", 6), Text("c21", "classes", 21),
         Text("col", "column_above"), Text("abl", "above_last")]


def test_byte_classes():
    p, _ = text_new(TEXTS, _slots(TEXTS)[0])
    assert [int(x) for x in p.classes] == [byte_class(c) for c in range(256)]
    assert [byte_class(ord(c)) for c in "\0\t \n\r09azAZ!~\x7f"] == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 0]
    assert byte_class(200) == 7


def test_text_contexts_match_reference(alice):
    rng = np.random.default_rng(5)
    lines = b"\n".join(bytes(rng.integers(32, 127, int(n)).tolist()) for n in rng.integers(0, 60, 40))
    # the byte above is L + 1 bytes back under a line of L bytes: in the 1000-byte history up to L = 998
    tail = b"\n" + b"a" * 998 + b"\nbbbbb\n" + b"c" * 999 + b"\nddddd\r\n\n\nab"
    data = alice[:1200] + lines + tail
    _, _, out = _drive(text_new, _run_text, TEXTS, data)
    stream = b"\0" + data
    found, lfs = [], []
    for t in range(len(stream)):
        if stream[t] == 10:
            lfs.append(t)
        expected, column, above = text_slots(stream, t, TEXTS, lfs)
        assert list(out[t]) == expected, t
        found.append((column, above))
    # The column counts from 0 after each LF, and the byte above is the previous line's byte at that column: row
    # t is after stream[t] = data[t - 1].
    lf2 = data.index(b"\n", data.index(b"\n") + 1)  # the second LF: its line is all in the data
    lf3 = data.index(b"\n", lf2 + 1)
    previous = data[data.index(b"\n") + 1:lf2]
    assert [c for c, _ in found[lf2 + 1:lf3 + 1]] == list(range(lf3 - lf2))
    for k in range(lf3 - lf2 - 1):
        assert found[lf2 + 1 + k][1] == (previous[k] + 256 if k <= len(previous) - 1 else
                                          (10 + 256 if k == len(previous) else 0))
    b_row = len(data) - len(tail) + 1 + 998 + 1  # row after the LF ending the 998 a's
    assert [a for _, a in found[b_row:b_row + 5]] == [ord("a") + 256] * 5
    d_row = b_row + 6 + 999 + 1
    assert [c for c, _ in found[d_row:d_row + 5]] == [0, 1, 2, 3, 4]
    assert [a for _, a in found[d_row:d_row + 5]] == [0] * 5


# ---- signals -----------------------------------------------------------------------------------------------------

@njit(cache=True)
def _signals_predict(p, s, contexts, inputs, match_state, rows):
    signals_after_models(p, s, contexts, inputs, match_state, rows)


@njit(cache=True)
def _signals_update(p, s, bit):
    signals_update(p, s, bit)


def test_signals_match_reference():
    names = [f"in{i}" for i in range(40)]
    items = [Active("a", ("in3", "in0", "in7", "in8")), Active("b", tuple(names[:32])), MatchStateContext("ms"),
             Misses("mi"), Active("none", ())]
    slots = {"always_zero": 0, "bit_context": 1, **{c.name: 2 + i for i, c in enumerate(items)}}
    p, s = signals_new(items, slots, names)
    _, _, match_state = match_new([Match("always_zero", 4, name=f"m{i}") for i in range(3)], {"always_zero": 0},
                                  [0, 1, 2])
    rng = np.random.default_rng(11)
    contexts = np.zeros(len(slots), np.int64)
    misses = 0
    for _ in range(3000):
        inputs = rng.normal(0, 1, 40).astype(np.float32)
        inputs[rng.uniform(size=40) < 0.5] = 0.0
        inputs[rng.uniform(size=40) < 0.05] = -0.0
        inputs[rng.uniform(size=40) < 0.02] = np.float32(1e-45)  # a denormal is not 0
        contexts[BIT_CONTEXT] = bit_context = int(rng.integers(0, 255))
        match_state.match_length[:] = rng.integers(0, 40, 3) * (rng.uniform(size=3) < 0.5)
        match_state.cur_byte[:] = rng.integers(0, 256, 3)
        _signals_predict(p, s, contexts, inputs, match_state, 3)
        assert contexts[2] == active_slot(inputs, [3, 0, 7, 8], bit_context)
        assert contexts[3] == active_slot(inputs, range(32), bit_context)
        assert contexts[4] == match_slot(match_state.match_length, match_state.cur_byte)
        assert contexts[5] == misses
        assert contexts[6] == active_slot(inputs, [], bit_context) == (bit_context + 1).bit_length() - 1
        probability = F(rng.choice([0.5, np.nextafter(F(0.5), F(0)), rng.uniform()]))
        bit = int(rng.integers(0, 2))
        s.last_p[0] = probability
        _signals_update(p, s, bit)
        misses = misses_after(misses, probability, bit)
        assert s.misses[0] == misses
    # crafted: 1/2 counts as predicting a 1
    s.misses[0], s.last_p[0] = 0, 0.5
    _signals_update(p, s, 1)
    _signals_update(p, s, 0)
    assert s.misses[0] == 0b01


# ---- APM ---------------------------------------------------------------------------------------------------------

@njit(cache=True)
def _apm_step(p, m, s, contexts, logit, probability, bit, learn):
    out = apm_predict(p, m, s, contexts, logit, probability)
    if learn:
        apm_learn(p, m, s, bit)
    return out


APMS = [Apm("k0", 4, True, 0.02, "small, hashed", 0), Apm("k1", 6, False, 0.05, "no bits", 5),
        Apm("k0", 9, True, 0.01, "limit", 127)]


def _apm_family(items):
    slots = {"always_zero": 0, "bit_context": 1, "k0": 2, "k1": 3}
    p, m, s = apm_new(items, slots)
    return p, m, s, np.zeros(4, np.int64)


def test_apm_identity_curve():
    p, m, s, _ = _apm_family(APMS)
    xs = np.arange(BUCKETS) * 0.5 - 8.0
    assert np.allclose(m.curves[0], 1 / (1 + np.exp(-xs)), rtol=0, atol=1e-7)
    assert (m.curves == m.curves[0]).all() and (m.counts == 0).all()
    assert [apm_row(k, 16) for k in range(16)] == list(range(16))  # small keys are their own rows


def test_apm_matches_reference():
    p, m, s, contexts = _apm_family(APMS)
    ref = ReferenceApm(APMS, m.curves[0])
    rng = np.random.default_rng(2)
    crafted = [-8.0, 8.0, -9.0, 9.0, 7.9999, 7.99995, 0.0, -0.0, 0.25, -7.75, 1e-9, 40.0, -40.0, np.inf, -np.inf]
    for step in range(4000):
        logit = F(crafted[step] if step < len(crafted) else rng.normal(0, 4))
        keys = [int(rng.integers(0, 12)) if rng.uniform() < 0.7 else int(rng.integers(0, 1 << 32)),
                int(rng.integers(0, 80))]
        bit_context = int(rng.integers(0, 255))
        contexts[1:4] = [bit_context, keys[0], keys[1]]
        probability = logistic(logit)
        bit = int(rng.uniform() < 0.3 + 0.4 * (keys[0] & 1))
        expected, outputs = ref.predict([keys[0], keys[1], keys[0]], bit_context, logit, probability)
        got = _apm_step(p, m, s, contexts, logit, F(probability), bit, True)  # float32, as in predict
        assert F(got).tobytes() == expected.tobytes(), step
        assert s.outputs.tobytes() == np.array(outputs, np.float32).tobytes()
        assert (s.bucket[0], s.weight[0]) == (ref.j, ref.w)
        assert list(s.row) == [int(p.table_offset[i]) + ref.rows[i] for i in range(len(APMS))]
        ref.learn(bit)
    for i, item in enumerate(APMS):
        size = 1 << item.table_bits
        curves = m.curves[p.table_offset[i]:p.table_offset[i] + size]
        counts = m.counts[p.table_offset[i]:p.table_offset[i] + size]
        expected = np.array([ref.tables[i].get(r, ref.identity) for r in range(size)], np.float32)
        assert curves.tobytes() == expected.tobytes()
        assert counts.tolist() == [ref.counts[i].get(r, 0) for r in range(size)]
        assert counts.max() <= item.limit  # the counts saturate at the limit (0: never counted)
        if item.limit <= 5:
            assert counts.max() == item.limit


def test_apm_crafted_update():
    item = Apm("k1", 2, False, 0.02, "one", 3)
    p, m, s, contexts = _apm_family([item])
    contexts[3] = 1
    # logit 0.25: position (0.25 + 8) * 2 = 16.5, buckets 16 and 17 with weight 1/2 each
    identity = m.curves[0].copy()
    out = _apm_step(p, m, s, contexts, F(0.25), F(0.5), 1, True)
    assert (s.bucket[0], s.weight[0], s.row[0]) == (16, F(0.5), 1)
    assert F(out) == (F(0.5) + (identity[16] * F(0.5) + identity[17] * F(0.5))) / F(2)
    rate = F(1) / F(1.5)  # first update: 1 / (0 + 1.5)
    for j in (16, 17):
        assert m.curves[1, j] == identity[j] + (F(1) - identity[j]) * (rate * F(0.5))
    assert (m.curves[1, :16] == identity[:16]).all() and (m.curves[1, 18:] == identity[18:]).all()
    assert m.counts.tolist() == [0, 1, 0, 0]
    for _ in range(5):  # the limit (3) reached, the rate is 0.02
        before = m.curves[1, 16]
        _apm_step(p, m, s, contexts, F(0.25), F(0.5), 0, True)
    assert m.counts[1] == 3
    assert m.curves[1, 16] == before + (F(0) - before) * (F(0.02) * F(0.5))
    # NaN and huge logits use the end buckets
    _apm_step(p, m, s, contexts, F(np.nan), F(0.5), 0, False)
    assert (s.bucket[0], s.weight[0]) == (0, 0)
    _apm_step(p, m, s, contexts, F(1e30), F(0.5), 0, False)
    assert s.bucket[0] == BUCKETS - 2 and F(0.999) < s.weight[0] < F(1)


# ---- Indirect with limit -----------------------------------------------------------------------------------------

@njit(cache=True)
def _indirect_step(p, m, s, contexts, inputs, bit):
    indirect_predict(p, m, s, contexts, inputs)
    out0, out1 = inputs[0], inputs[1]
    indirect_learn(p, m, s, bit)
    return out0, out1


@pytest.mark.parametrize("limit", [0, 5, 100, 1023])
def test_indirect_limit_matches_reference(limit):
    item = Indirect("ctx", table_bits=2, learning_rate=0.02, name="t", limit=limit)
    p, m, s = indirect_new([item], {"ctx": 2, "bit_context": 1}, [0])
    ref = ReferenceAdaptiveIndirect(2, 0.02, limit, lambda x: F(logistic(F(x))), NONSTATIONARY, RUN_MAP)
    rng = np.random.default_rng(limit)
    contexts = np.zeros(4, np.int64)
    inputs = np.zeros(2, np.float32)
    for byte in (b"abracadabra, the indirect model learns bit histories " * 8):
        ctx = int(rng.integers(0, 1 << 32)) if rng.uniform() < 0.1 else byte * 7919
        partial = 1
        for j in range(7, -1, -1):
            bit = (byte >> j) & 1
            contexts[2], contexts[1] = ctx, partial - 1
            expected = ref.predict(ctx, partial - 1)
            got = _indirect_step(p, m, s, contexts, inputs, bit)
            ref.learn(bit)
            assert np.array(got, np.float32).tobytes() == np.array(expected, np.float32).tobytes()
            partial = partial * 2 + bit
    assert m.logits[0].tobytes() == np.array(ref.logits, np.float32).tobytes()
    assert m.counts[0].tolist() == ref.counts
    assert (m.counts <= limit).all()
    if limit in (5, 100):
        assert (m.counts[0] == limit).any()


def test_indirect_limit_first_update():
    p, m, s = indirect_new([Indirect("ctx", 2, 0.02, "t", limit=10)], {"ctx": 2, "bit_context": 1}, [0])
    contexts, inputs = np.zeros(4, np.int64), np.zeros(2, np.float32)
    _indirect_step(p, m, s, contexts, inputs, 1)
    # a fresh logit 0 predicts 1/2; its first rate is 1 / 1.5
    assert m.logits[0, 0, 0] == m.logits[0, 1, 0] == F(0.5) * (F(1) / F(1.5))
    assert m.counts[0, 0, 0] == m.counts[0, 1, 0] == 1


# ---- mixer warm start --------------------------------------------------------------------------------------------

@njit(cache=True)
def _mixer_predict(p, m, s, contexts):
    return mixer_predict(p, m, s, contexts, s.inputs0)


@njit(cache=True)
def _mixer_learn(p, m, s, bit):
    mixer_learn(p, m, s, bit)


MIXERS = [Mixer("always_zero", 0.02, 0, 0), Mixer("ca", 0.02, 0, 4), Mixer("cb", 0.01, 0, 3),
          Mixer("always_zero", 0.005, 1, 0), Mixer("ca", 0.005, 1, 3), Mixer("always_zero", 0.005, 2, 0)]


def test_mixer_warm_start_copies_the_context_free_mixer():
    slots = {"always_zero": 0, "bit_context": 1, "ca": 2, "cb": 3}
    n_inputs = 7
    p, m, s = mixer_new(MIXERS, slots, n_inputs, [], warm_start=True)
    assert p.warm_from.tolist() == [-1, 0, 0, -1, 3, -1]
    cold_p = p._replace(warm_from=np.full(len(MIXERS), -1, np.int64))
    rng = np.random.default_rng(9)
    contexts = np.zeros(4, np.int64)
    warmed = 0
    for step in range(600):
        s.inputs0[:n_inputs] = rng.normal(0, 2, n_inputs).astype(np.float32)
        contexts[2:4] = rng.integers(0, 64, 2) if step > 20 else 0
        _mixer_predict(p, m, s, contexts)
        before = [a.copy() for a in m]
        cold = [a.copy() for a in m]
        bit = int(rng.integers(0, 2))
        _mixer_learn(p, m, s, bit)
        cold = type(m)(*cold)
        _mixer_learn(cold_p, cold, s, bit)
        assert m.table.tobytes() == cold.table.tobytes() and m.weights_used[0] == cold.weights_used[0]
        expected = cold.weights.copy()
        for k in range(len(MIXERS)):
            entry, source = s.entry[k], p.warm_from[k]
            if before[0][entry, 0] or source < 0 or not m.table[s.entry[source], 0]:
                continue
            dst, src = m.table[entry, 0] - 1, m.table[s.entry[source], 0] - 1
            n = min(p.width[k], p.width[source])
            # new weights = the source's (after its own update this bit) + this bit's update of a zero set
            expected[dst:dst + n] = cold.weights[src:src + n] + cold.weights[dst:dst + n]
            warmed += step > 0
        assert m.weights.tobytes() == expected.tobytes(), step
    assert warmed > 20
    assert m.contexts_seen.tolist()[1:3] == [16, 8]


# ---- learning off, per family, in whole models ------------------------------------------------------------------

def _spec(name, contexts=(), models=(), mixers0=(), mixers1=(), apms=(), warm_start=False):
    base = [Skip("o2", (0, 1)), Skip("o4", (0, 1, 2, 3))]
    return Specification(
        name=name,
        contexts=tuple(base) + tuple(contexts),
        models=(Indirect("last_byte", 6, 0.02, "I(o1)"), Indirect("o2", 6, 0.02, "I(o2)"),
                Match("o4", 10, name="M(o4)")) + tuple(models),
        mixers=(Mixer("always_zero", 0.02, 0, 0), Mixer("last_byte", 0.02, 0, 8)) + tuple(mixers0)
        + (Mixer("always_zero", 0.005, 1, 0),) + tuple(mixers1) + (Mixer("always_zero", 0.005, 2, 0),),
        history_reserve=1 << 12, apms=tuple(apms), warm_start=warm_start)


def _family_specs():
    words = (Word("w0", 0, 1), Word("w01_b1", 0, 2, 1))
    records = tuple(Record(f"r_{k}", k) for k in ("above", "above_left", "column", "distance"))
    texts = (Text("c6", "classes", 6), Text("col", "column_above"), Text("abl", "above_last"))
    signals = (Active("seen", ("I(o1)-indirect", "I(o2)-indirect", "M(o4)")), MatchStateContext("ms"),
               Misses("misses"))
    return {
        "word": (_spec("t-word", words, [Indirect(c.name, 6, 0.02, f"I({c.name})") for c in words],
                       [Mixer("w0", 0.01, 0, 8)]), "word"),
        "record": (_spec("t-record", records, [Indirect(c.name, 6, 0.02, f"I({c.name})") for c in records],
                         [Mixer("r_column", 0.01, 0, 8)]), "record"),
        "text": (_spec("t-text", texts, [Indirect(c.name, 6, 0.02, f"I({c.name})") for c in texts],
                       [Mixer("c6", 0.01, 0, 8)]), "text"),
        "signals": (_spec("t-signals", signals, (), [Mixer("seen", 0.01, 0, 6), Mixer("ms", 0.01, 0, 10)],
                          [Mixer("misses", 0.005, 1, 8)], [Apm("misses", 8, True, 0.02, "A(misses)", 127)]),
                    "signals"),
        "apm": (_spec("t-apm", apms=[Apm("bit_context", 8, False, 0.02, "A0", 127),
                                     Apm("o2", 10, True, 0.02, "A2", 127)]), None),
        "indirect_limit": (_spec("t-limit", models=[Indirect("o4", 6, 0.02, "I(o4)", limit=255)]), None),
        "warm_start": (_spec("t-warm", mixers0=[Mixer("o2", 0.01, 0, 8)], mixers1=[Mixer("last_byte", 0.005, 1, 8)],
                             warm_start=True), None),
    }


def _arrays(tree):
    if isinstance(tree, np.ndarray):
        return [tree]
    return [a for x in tree for a in _arrays(x)]


@pytest.mark.parametrize("family", list(_family_specs()))
def test_learning_off_leaves_long_term_memory_identical(alice, family):
    from gmixpy.chunks import evaluate
    from gmixpy.model import Model

    spec, running = _family_specs()[family]
    # the record family learns from a table, and is measured frozen on more rows of it
    data = alice[:1000] + _table(120, 6) if family == "record" else alice[:4000]
    model = Model.new(spec)
    fresh = [a.copy() for a in _arrays(model.ltm)]
    evaluate(model, data[:-1000], learn=True)
    learned = _arrays(model.ltm)
    assert any(a.shape != b.shape or a.tobytes() != b.tobytes() for a, b in zip(fresh, learned))
    if family == "apm":
        assert (model.ltm.apm.counts > 0).sum() > 100
    if family == "indirect_limit":
        assert model.ltm.indirect.counts[2].max() == 255 and (model.ltm.indirect.counts[:2] == 0).all()
    before = [a.copy() for a in learned]
    stm_before = [a.copy() for a in _arrays(getattr(model.stm, running))] if running else []
    frozen = model.copy()
    bits = evaluate(model, data[-1000:], learn=False)
    after = _arrays(model.ltm)
    assert [a.tobytes() for a in after] == [a.tobytes() for a in before]
    if running:  # the family's running state kept following the data
        assert any(a.tobytes() != b.tobytes() for a, b in zip(stm_before, _arrays(getattr(model.stm, running))))
    assert 0 < bits < 8 * 1000 * 0.7
    assert evaluate(frozen, data[-1000:], learn=False) == bits
