"""Memory that follows the data: a preset's hashed tables sized to the input (presets.sized), recorded in the
archive as its size class so that decompression rebuilds the same model; huge pages only for long inputs; a mixer
weight pool reserved up front rather than grown (and copied) while coding; the dictionary transform's word list
not kept beside the model."""
from __future__ import annotations

import gc
import io
from dataclasses import fields

import numpy as np
import pytest

import gmixpy
from gmixpy import presets
from gmixpy.archive import FORMAT_VERSION, decode_header
from gmixpy.chunks import evaluate
from gmixpy.codec import compress_file, compress_stream, model_for_header, start_archive, transform_input
from gmixpy.model import HUGE_PAGES_FROM, Model, huge_pages_for, nbytes, pool_reserve
from gmixpy.preprocess import dictionary
from gmixpy.spec import Apm, ContextMap, Indirect, IndirectHash, Match


def _tables(spec):
    """name -> table_bits of every hashed table of spec."""
    out = {}
    for group in (spec.contexts, spec.models, spec.apms):
        for item in group:
            if isinstance(item, (Indirect, Match, IndirectHash, ContextMap, Apm)):
                out[(type(item).__name__, item.name, getattr(item, "context", ""))] = item.table_bits
    return out


@pytest.mark.parametrize("name", presets.SIZED)
def test_sizing_never_enlarges_and_large_inputs_keep_the_declared_tables(name):
    spec = presets.get(name)
    declared = _tables(spec)
    previous = None
    for k in range(presets.MIN_SIZE_CLASS, 40):
        small = presets.sized(spec, k)
        bits = _tables(small)
        assert bits.keys() == declared.keys()
        assert all(bits[t] <= declared[t] for t in bits)
        if previous is not None:  # a larger input never gets smaller tables
            assert all(bits[t] >= previous[t] for t in bits)
        previous = bits
        assert presets.sized(spec, k) == small  # a pure function of (spec, k): decompression rebuilds it
        # everything but the table sizes is the declared specification
        assert [f.name for f in fields(small)] == [f.name for f in fields(spec)]
        assert small.input_names() == spec.input_names() and small.mixers == spec.mixers
    assert presets.sized(spec, 40) == spec
    assert presets.for_length(name, 1 << 40) == (spec, 0)
    assert presets.for_length(name, None) == (spec, 0)


def test_format_6_keeps_fewer_indirect_rows_and_a_format_5_archive_decodes_with_its_rule():
    from pathlib import Path

    spec = presets.get("default")
    old, new = presets.sized(spec, 12, 5), presets.sized(spec, 12, 6)
    indirect = [(a.table_bits, b.table_bits) for a, b in zip(old.models, new.models) if isinstance(a, Indirect)]
    assert indirect and all(a == 13 and b == 10 for a, b in indirect)  # 2n rows then, n/4 now (k = 12)
    assert [m for m in old.models if not isinstance(m, Indirect)] == [m for m in new.models if not isinstance(
        m, Indirect)]
    assert presets.sized(spec, 30, 5) == presets.sized(spec, 30, 6) == spec  # large inputs: the declared tables
    repo = Path(__file__).resolve().parent
    blob = (repo / "reference" / "archives" / "sample.default.v5.gmx").read_bytes()
    h = decode_header(blob)
    assert (h.version, h.preset, h.size_class) == (5, "default", 12)
    assert gmixpy.decompress(blob) == (repo.parent / "data" / "alice29.txt").read_bytes()[:3000]


def test_format_7_gives_a_small_size_class_a_smaller_lstm_and_a_format_6_archive_decodes_with_its_rule():
    """From format 7 the LSTM of `default` has 10 cells up to size class 13, 20 in 14 and 50 in 15 and 16, the
    preset's 100 above (presets.LSTM_CELLS); format 6 kept 100 everywhere, and its archives decode with that."""
    from pathlib import Path

    from gmixpy.spec import Lstm

    spec = presets.get("default")

    def cells(s):
        return [m.cells for m in s.models if isinstance(m, Lstm)]

    assert cells(spec) == [100]
    assert {k: cells(presets.sized(spec, k, 7)) for k in range(12, 19)} == {
        12: [10], 13: [10], 14: [20], 15: [50], 16: [50], 17: [100], 18: [100]}
    assert all(cells(presets.sized(spec, k, 6)) == [100] for k in range(12, 19))
    for k in (12, 14, 16):  # only the cells: the tables are format 6's
        old, new = presets.sized(spec, k, 6), presets.sized(spec, k, 7)
        assert [m for m in old.models if not isinstance(m, Lstm)] == [m for m in new.models if not isinstance(m, Lstm)]
    tiny = presets.get("tiny")
    assert cells(presets.sized(tiny, 12, 7)) == cells(tiny) == [4]  # never enlarged
    repo = Path(__file__).resolve().parent
    blob = (repo / "reference" / "archives" / "sample.default.v6.gmx").read_bytes()
    h = decode_header(blob)
    assert (h.version, h.preset, h.size_class) == (6, "default", 12)
    text = (repo.parent / "data" / "alice29.txt").read_bytes()[:3000]
    assert gmixpy.decompress(blob) == text
    now = gmixpy.compress(text, preset="default")
    assert decode_header(now).version == 7 and now != blob and gmixpy.decompress(now) == text


def test_the_gmix_ports_are_never_sized():
    for name in ("gmix", "gmix-fast", "gmix-tiny"):
        assert presets.for_length(name, 100) == (presets.get(name), 0)
        assert presets.for_size_class(presets.get(name), name, 12) is None


def test_size_class_of_a_length():
    assert presets.size_class(0) == presets.size_class(1) == presets.size_class(4096) == presets.MIN_SIZE_CLASS
    assert presets.size_class(4097) == 13
    assert presets.size_class(152_089) == 18
    assert presets.size_class(1 << 20) == 20 and presets.size_class((1 << 20) + 1) == 21


def test_a_small_input_is_coded_with_sized_tables_and_decodes(sample_text):
    data = sample_text[:3000]
    blob = gmixpy.compress(data, preset="tiny")
    header = decode_header(blob)
    assert header.version == FORMAT_VERSION and header.size_class == presets.MIN_SIZE_CLASS
    assert gmixpy.decompress(blob) == data
    # the archive is what a model sized by hand codes, and not what the declared tables code
    spec = presets.sized(presets.get("tiny"), header.size_class)
    assert spec != presets.get("tiny")
    work, _ = start_archive("tiny", None, len(data))
    assert work.spec == spec


def test_unknown_length_keeps_the_declared_tables_or_sizes_for_a_block(sample_text):
    data = sample_text[:3000]
    out = io.BytesIO()
    compress_file(io.BytesIO(data), out, preset="tiny", block_size=0, dictionary="off")  # unknown length, one
    assert decode_header(out.getvalue()).size_class == 0                                 # stream: as declared
    assert gmixpy.decompress(out.getvalue()) == data
    # with the dictionary transform the transformed length is known before coding starts, pipe or not
    compress_file(io.BytesIO(data), out := io.BytesIO(), preset="tiny", block_size=0)
    assert decode_header(out.getvalue()).size_class == presets.MIN_SIZE_CLASS
    # with blocks, a pipe is sized for a block, so it codes as the same bytes in a file do
    piped, known = io.BytesIO(), io.BytesIO()
    compress_file(io.BytesIO(data * 3), piped, preset="tiny", block_size=4096, dictionary="off")
    compress_file(io.BytesIO(data * 3), known, preset="tiny", block_size=4096, size=3 * len(data), dictionary="off")
    assert decode_header(piped.getvalue()).size_class == presets.MIN_SIZE_CLASS
    assert piped.getvalue() == known.getvalue()
    assert gmixpy.decompress(piped.getvalue()) == data * 3


def _sized_bytes(model: Model) -> int:
    """Bytes of the model's arrays but PPMd's arena and the mixer weight pool, which are not sized: they are used
    from their ends, so untouched pages cost nothing (the pool is reserved at its most, see pool_reserve)."""
    return nbytes(model.ltm) + nbytes(model.stm) - nbytes(model.stm.ppmd) - model.ltm.mixer.weights.nbytes


def test_default_on_a_4_kb_input_allocates_a_small_fraction_of_its_tables(sample_text):
    data = sample_text[:4000]
    full = Model.new("default")
    small, header = start_archive("default", None, len(data))
    assert _sized_bytes(small) < _sized_bytes(full) / 5
    del full
    blob = gmixpy.compress(data, preset="default")
    assert decode_header(blob).size_class == header.size_class == presets.MIN_SIZE_CLASS
    assert gmixpy.decompress(blob) == data


def test_huge_pages_only_for_long_or_unknown_inputs():
    assert huge_pages_for(None) and huge_pages_for(HUGE_PAGES_FROM)
    assert not huge_pages_for(4096) and not huge_pages_for(HUGE_PAGES_FROM - 1)
    # the switch is restored after the allocation
    from numpy._core import multiarray

    before = multiarray._set_madvise_hugepage(True)
    try:
        Model.new("tiny", huge_pages=False)
        assert multiarray._set_madvise_hugepage(True) is True
    finally:
        multiarray._set_madvise_hugepage(before)


def test_copies_follow_the_huge_page_choice():
    """A block's model is a copy of the starting model: it is allocated as the starting model was, unless told."""
    small = Model.new("tiny", huge_pages=False)
    assert small.copy().huge_pages is False and small.copy(True).huge_pages is True
    assert Model.new("tiny").copy().huge_pages is True
    work, _ = start_archive("tiny", small, 4096)
    assert work.huge_pages is False and work.digest() == small.digest()


def test_a_model_that_codes_has_its_weight_pool_reserved_and_never_grows_it(sample_text):
    """Growing the pool copies it (the old and the new one held at once: the peak of alice29.txt with `default`),
    so a model made to code, or to decode, an archive reserves the most it can hold; the reserve is not content."""
    data = sample_text[:3000]
    work, header = start_archive("tiny", None, len(data))
    spec = presets.sized(presets.get("tiny"), header.size_class)
    plain = Model.new(spec, huge_pages=False)
    x = plain.params.mixer
    limit = int((x.table_size * x.width).sum()) + 8 * int(x.widest[0])  # a weight set at most per table row
    assert work.ltm.mixer.weights.shape[0] == pool_reserve(work.params, work.ltm) == limit
    initial = plain.ltm.mixer.weights.shape[0]
    assert initial < limit  # without the reserve, as before: grown by doubling
    assert work.digest() == plain.digest()
    streams = []
    for model in (work, plain):
        compress_stream(model, io.BytesIO(data), out := io.BytesIO())
        streams.append(out.getvalue())
    assert streams[0] == streams[1] and work.digest() == plain.digest()  # the reserve changes nothing coded
    assert plain.ltm.mixer.weights.shape[0] > initial  # grown
    assert work.ltm.mixer.weights.shape[0] == limit  # never grown
    blob = gmixpy.compress(data, preset="tiny", dictionary="off")
    assert model_for_header(decode_header(blob), None).ltm.mixer.weights.shape[0] == limit
    assert gmixpy.decompress(blob) == data
    # an archive made with a model file reserves a copy of it, on both sides
    trained = Model.new("tiny", huge_pages=False)
    evaluate(trained, data[:1000], learn=True)
    blob = gmixpy.compress(data[1000:], model=trained)
    assert gmixpy.decompress(blob, model=trained) == data[1000:]
    start = model_for_header(decode_header(blob), trained)
    assert start.ltm.mixer.weights.shape[0] == pool_reserve(trained.params, trained.ltm)


def test_copies_keep_the_pool_used_part_and_capacity_with_zeros_past_it(sample_text):
    model = Model.new("tiny", huge_pages=False)
    evaluate(model, sample_text[:2000], learn=True)
    used = int(model.ltm.mixer.weights_used[0])
    for copy in (model.copy(), model.copy(reserve=True)):
        pool = copy.ltm.mixer.weights
        assert copy.digest() == model.digest()
        assert np.array_equal(pool[:used], model.ltm.mixer.weights[:used]) and not pool[used:].any()
    assert model.copy().ltm.mixer.weights.shape == model.ltm.mixer.weights.shape
    assert model.copy(reserve=True).ltm.mixer.weights.shape[0] == pool_reserve(model.params, model.ltm)
    reserved = model.copy(reserve=True)
    assert reserved.copy().ltm.mixer.weights.shape == reserved.ltm.mixer.weights.shape  # a block's copy


def test_a_loaded_model_has_its_pool_reserved(sample_text, tmp_path):
    """A model file or a checkpoint goes on learning (a resumed run, --model) without growing its pool."""
    from gmixpy import serialize

    model = Model.new("tiny", huge_pages=False)
    evaluate(model, sample_text[:2000], learn=True)
    serialize.save(str(tmp_path / "m.gmxm"), model)
    loaded = serialize.load(str(tmp_path / "m.gmxm"))
    assert loaded.digest() == model.digest()
    assert loaded.ltm.mixer.weights.shape[0] == pool_reserve(model.params, model.ltm)


def test_the_word_list_is_shared_while_held_and_not_kept_beside_the_model(sample_text):
    """The dictionary transform's English list (~10 MB) is loaded for the transform, not for the process: coding
    the transformed input, the peak of a run, does without it."""
    held = dictionary.Dictionary.english()
    assert dictionary.Dictionary.english() is held
    del held
    coded, length, *_ = transform_input(io.BytesIO(sample_text[:3000]), None)
    with coded:
        assert len(coded.read()) == length
    gc.collect()
    assert dictionary._english is not None and dictionary._english() is None


def test_steps_inside_a_shared_block_load_the_word_list_once(sample_text, monkeypatch):
    """Compression asks for the list to choose the transform and again to apply it: inside Dictionary.shared() the
    second request finds it loaded; after the block it is let go as before."""
    loads = []
    real = dictionary.Dictionary.__init__

    def counted(self, data):
        loads.append(len(data))
        real(self, data)

    monkeypatch.setattr(dictionary.Dictionary, "__init__", counted)
    gc.collect()
    assert gmixpy.decompress(gmixpy.compress(sample_text[:3000], preset="tiny")) == sample_text[:3000]
    assert len(loads) == 2  # one to compress (the choice and the transform), one to decompress
    with dictionary.Dictionary.shared():
        first = id(dictionary.Dictionary.english())
        gc.collect()
        assert id(dictionary.Dictionary.english()) == first and len(loads) == 3
    gc.collect()
    assert dictionary._english() is None
