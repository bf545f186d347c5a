"""The compiled arithmetic coder against a plain-Python transcription of gmix's Encoder and Decoder."""
from __future__ import annotations

import numpy as np

from gmixpy.coder.arithmetic import coder_new, decode_bit, decode_start, encode_bit, encode_flush


def reference_encode(bits, probs):
    """gmix's src/coder/encoder.cpp, in Python integers (uint32 arithmetic by masking)."""
    x1, x2, out = 0, 0xFFFFFFFF, bytearray()
    for bit, p in zip(bits, probs):
        q = int(np.float32(1) + np.float32(65534) * np.float32(p))
        xmid = x1 + ((x2 - x1) >> 16) * q + ((((x2 - x1) & 0xFFFF) * q) >> 16)
        if bit:
            x2 = xmid
        else:
            x1 = xmid + 1
        while ((x1 ^ x2) & 0xFF000000) == 0:
            out.append(x2 >> 24)
            x1 = (x1 << 8) & 0xFFFFFFFF
            x2 = ((x2 << 8) & 0xFFFFFFFF) | 255
    out.append(x2 >> 24)
    return bytes(out)


def compiled_encode(bits, probs):
    c = coder_new()
    out = np.zeros(len(bits) * 4 + 8, np.uint8)
    pos = 0
    for bit, p in zip(bits, probs):
        pos = encode_bit(c, int(bit), np.float32(p), out, pos)
    pos = encode_flush(c, out, pos)
    return out[:pos].tobytes()


def compiled_decode(stream, probs):
    c = coder_new()
    inp = np.frombuffer(stream, np.uint8)
    pos = decode_start(c, inp, 0, len(inp))
    bits = []
    for p in probs:
        bit, pos = decode_bit(c, np.float32(p), inp, pos, len(inp))
        bits.append(bit)
    return bits, pos


def test_coder_matches_reference_and_round_trips():
    rng = np.random.default_rng(1)
    for n, kind in [(1, "uniform"), (500, "uniform"), (3000, "skewed"), (3000, "extreme")]:
        if kind == "uniform":
            probs = rng.uniform(0, 1, n).astype(np.float32)
        elif kind == "skewed":
            probs = rng.beta(0.3, 0.3, n).astype(np.float32)
        else:
            probs = rng.choice(np.array([0.0001, 0.9999, 0.5, 0.0, 1.0], np.float32), n)
        bits = (rng.uniform(0, 1, n) < probs).astype(np.int64)
        stream = compiled_encode(bits, probs)
        assert stream == reference_encode(bits, probs)
        decoded, pos = compiled_decode(stream, probs)
        assert decoded == list(bits)
        assert pos <= len(stream) + 3  # never reads more than 3 bytes past the end


def test_discretisation_keeps_both_bits_codable():
    for p in [0.0, 1.0]:
        for bit in (0, 1):
            stream = compiled_encode([bit] * 50, [p] * 50)
            assert compiled_decode(stream, [p] * 50)[0] == [bit] * 50
