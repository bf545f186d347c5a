"""gmixpy against gmix itself: what gmix, built outside this repository, predicted for the start of alice29.txt.

tests/reference holds data produced by running gmix (tests/reference/README.md says exactly how): for the `gmix`
and `gmix-fast` ensembles, the float32 probability gmix coded each bit of the first 2,000 bytes with, and for the
first 20,000 bytes digests of the probabilities, of every model's input to the mixers and of the coded stream,
plus the cost in bits of each 1,000-byte block.  Unlike the golden files, none of it comes from this code, so a
wrong port of any model, context or mixer shows up here even though encoder and decoder agree with each other.

What holds today:
* every model input (each Indirect, Match, PPMd and LSTM prediction, hence every context and hash they read) is
  gmix's, bit for bit, for all 160,000 bits;
* the final probabilities are not: the mixers add their terms in another order than gmix (`_dot` in
  gmixpy/mixer/mixer.py: 16 lanes, then partial sums; and the skip-connected LSTM input before the layer-1
  outputs where gmix adds it last), so they differ in the last bits of float32 from bit 124 (`gmix`) or 172
  (`gmix-fast`) on.  The bit-for-bit tests of the probabilities and the coded stream are therefore expected
  failures (strict: they report when they start to pass), and the mixers are checked with tolerances 5 to 7
  times the differences the summation order makes and 4 times smaller than what a weight decay of 4e-6
  instead of 3e-6 makes to the cost of a block.
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

# The summation order alone moves a probability by at most 1.8e-7 over the first 2,000 bytes and a block's cost by
# at most 2.8e-5 bits; a weight decay of 4e-6 instead of 3e-6 moves them by up to 1.5e-6 and 8.3e-4 bits, a 2%
# change of one mixer's learning rate by 1e-3 and 0.1 bits.
PROBABILITY_TOLERANCE = 1e-6
BLOCK_TOLERANCE = 2e-4  # bits per block

mixer_order = pytest.mark.xfail(strict=True, reason="gmixpy's mixers add their terms in another order than gmix "
                                                    "(see the module docstring)")


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


def block_bits(probs: np.ndarray, data: bytes) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(data, np.uint8)).astype(bool)
    p = probs.astype(np.float64)
    return (-np.log2(np.where(bits, p, 1.0 - p))).reshape(-1, 8 * BLOCK).sum(axis=1)


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


def test_probabilities_close_to_gmix(run, prefix):
    """The mixers' output within tolerance: every bit of the first 2,000 bytes, and the cost of every block."""
    preset, probs, _ = run
    expected = reference_trace(preset)
    mine = probs[:len(expected)]
    far = np.nonzero(np.abs(mine.astype(np.float64) - expected) > PROBABILITY_TOLERANCE)[0]
    assert len(far) == 0, f"{preset}: {len(far)} probabilities differ from gmix's by more than " \
                          f"{PROBABILITY_TOLERANCE}; the first at {where(far[0])}: gmixpy {mine[far[0]]!r}, " \
                          f"gmix {expected[far[0]]!r}"
    cost = block_bits(probs, prefix)
    ref_cost = np.array(REF["ensembles"][preset]["block_bits"])
    off = np.nonzero(np.abs(cost - ref_cost) > BLOCK_TOLERANCE)[0]
    assert len(off) == 0, (
        f"{preset}: the cost of {len(off)} blocks of {BLOCK} bytes differs from gmix's by more than "
        f"{BLOCK_TOLERANCE} bits; the first, bytes {off[0] * BLOCK}..{(off[0] + 1) * BLOCK - 1}: "
        f"gmixpy {cost[off[0]]:.6f} bits, gmix {ref_cost[off[0]]:.6f} bits")


@mixer_order
def test_probabilities_match_gmix_bit_for_bit(run):
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


@mixer_order
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
