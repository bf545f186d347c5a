"""gmixpy against gmix itself: what gmix, built outside this repository, predicted for the start of alice29.txt.

tests/reference holds data produced by running gmix (tests/reference/README.md says exactly how): for the `gmix`
and `gmix-fast` ensembles, the float32 probability gmix coded each bit of the first 2,000 bytes with, and for the
first 20,000 bytes digests of the probabilities, of every model's input to the mixers and of the coded stream,
plus the cost in bits of each 1,000-byte block.  Unlike the golden files, none of it comes from this code, so a
wrong port of any model, context or mixer shows up here even though encoder and decoder agree with each other.

The `gmix` and `gmix-fast` presets reproduce all of it bit for bit: every model input (each Indirect, Match, PPMd
and LSTM prediction, hence every context and hash they read), every final probability and the coded stream.
Their mixers add their terms one at a time in gmix's order (Specification.sequential_mixing); the other presets
add in 16 lanes, which is faster and moves a probability by at most about 2e-7.

The reference gmix is built with -ffp-contract=off and float exp/log/tanh/pow that round the double result once,
so that its own arithmetic is the portable IEEE arithmetic gmixpy uses (tests/reference/README.md).
"""
from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import gmixpy
from gmixpy.archive import decode_header
from gmixpy.chunks import trace
from gmixpy.model import Model
from gmixpy.presets import get as preset_spec
from test_coder import compiled_encode

REFERENCE = Path(__file__).resolve().parent / "reference"
REF = json.loads((REFERENCE / "gmix.json").read_text())
PRESETS = list(REF["ensembles"])
BLOCK = REF["block_bytes"]

def sha256(data) -> str:
    return hashlib.sha256(bytes(data)).hexdigest()


def where(bit: int) -> str:
    return f"bit {bit} (byte {bit // 8}, bit index {bit % 8}, 0 = most significant)"


@pytest.fixture(scope="module")
def prefix(alice) -> bytes:
    data = alice[:REF["prefix_bytes"]]
    assert sha256(data) == REF["prefix_sha256"], f"{REF['input']} changed: the reference no longer describes it"
    return data


@pytest.fixture(scope="module", params=PRESETS)
def run(request, prefix):
    """(preset, probabilities, model inputs) of a fresh model of the preset over the whole prefix."""
    preset = request.param
    model = Model.new(preset)
    count = REF["ensembles"][preset]["inputs"]["count"]
    assert len(model.spec.input_names()) == count, f"{preset} has {len(model.spec.input_names())} model inputs, " \
                                                   f"gmix {count}"
    inputs = np.zeros((8 * len(prefix), count), np.float32)
    probs = trace(model, prefix, inputs=inputs)
    return preset, probs, inputs


def reference_trace(preset: str) -> np.ndarray:
    raw = gzip.decompress((REFERENCE / REF["ensembles"][preset]["trace_file"]).read_bytes())
    return np.frombuffer(raw, "<f4")


def test_model_inputs_match_gmix(run):
    """Every model's input to the mixers, every bit, bit for bit; a mismatch names the inputs and the first block."""
    preset, _, inputs = run
    ref = REF["ensembles"][preset]["inputs"]
    if sha256(inputs.astype("<f4")) == ref["sha256"]:
        return
    names = preset_spec(preset).input_names()
    differ = [names[c] for c in range(inputs.shape[1])
              if sha256(np.ascontiguousarray(inputs[:, c]).astype("<f4"))[:16] != ref["columns"][c]]
    blocks = [b for b, i in enumerate(range(0, len(inputs), 8 * BLOCK))
              if sha256(inputs[i:i + 8 * BLOCK].astype("<f4"))[:16] != ref["blocks"][b]]
    first = f"; first in bytes {blocks[0] * BLOCK}..{(blocks[0] + 1) * BLOCK - 1}" if blocks else ""
    pytest.fail(f"{preset}: {len(differ)} model inputs differ from gmix's ({', '.join(differ)}){first}")


def test_probabilities_match_gmix_bit_for_bit(run):
    """Every final probability, bit for bit: the first 2,000 bytes compared one by one, 20,000 by digest."""
    preset, probs, _ = run
    expected = reference_trace(preset)
    mine = probs[:len(expected)]
    differ = np.nonzero(mine.view(np.uint32) != expected.view(np.uint32))[0]
    assert len(differ) == 0, f"{preset}: {len(differ)} of the first {len(expected)} probabilities differ from " \
                             f"gmix's; the first at {where(differ[0])}: gmixpy {mine[differ[0]]!r}, gmix " \
                             f"{expected[differ[0]]!r}"
    assert sha256(probs.astype("<f4")) == REF["ensembles"][preset]["trace_sha256"], \
        f"{preset}: the first {len(expected) // 8} bytes match, the probabilities of the first " \
        f"{REF['prefix_bytes']} bytes do not"


@pytest.mark.parametrize("preset", PRESETS)
def test_coded_stream_matches_gmix(preset, prefix):
    archive = gmixpy.compress(prefix, preset=preset)
    stream = archive[decode_header(archive).size:]
    ref = REF["ensembles"][preset]
    assert (len(stream), sha256(stream)) == (ref["stream_length"], ref["stream_sha256"]), \
        f"{preset}: the coded stream ({len(stream)} bytes) is not gmix's ({ref['stream_length']} bytes)"


@pytest.mark.parametrize("preset", PRESETS)
def test_coder_turns_gmix_probabilities_into_gmix_stream(preset, prefix):
    """gmixpy's arithmetic coder, given gmix's own probabilities, writes gmix's own stream."""
    probs = reference_trace(preset)
    bits = np.unpackbits(np.frombuffer(prefix[:len(probs) // 8], np.uint8))
    stream = compiled_encode(bits, probs)
    ref = REF["ensembles"][preset]
    assert (len(stream), sha256(stream)) == (ref["short_stream_length"], ref["short_stream_sha256"])
