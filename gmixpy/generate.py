"""Text generation: read a prompt, then sample with learning disabled (gmix's -g mode).

The prompt is read with learning off unless `learn_prompt` (gmix learns from it), so by default the model's
long-term memory is bit-identical afterwards; the short-term memory (contexts, histories) evolves.  Sampling uses
splitmix64 seeded by `seed`, so the same model, prompt, seed and options give the same text on any machine.

Plain sampling is gmix's: bit by bit, each bit 1 with probability logistic(logit(p) / temperature).  With
`top_k` or `top_p` whole bytes are drawn instead, from the exact next-byte distribution: the product of the
tempered bit probabilities down the byte's bit tree (255 predictions per byte instead of 8), so that without a cut
it is exactly the distribution plain sampling draws from.  Between the branches of the tree the running state is
restored: only the short-term arrays that change within a byte, which each family declares in its state class as
PER_BIT (`per_bit_views`); everything that changes only at a byte boundary (PPMd's arena, the LSTM, the rotating
history) is never touched inside the tree, so nothing big is copied.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from . import engine
from .chunks import evaluate
from .model import Model
from .preprocess.dictionary import Decoder, Dictionary, encode

BLOCK = 16  # bytes per kernel call: small enough to stream to a terminal as it goes
BLOCK_TRUNCATED = 2  # the same with top-k / top-p, where a byte costs about 30 times more
CODES_PER_BYTE = 8  # with the dictionary transform, at most this many sampled bytes per byte of text asked for
PER_BIT_LIMIT = 1 << 20  # bytes: a family declaring more per-bit state than this has declared too much


def per_bit_views(stm) -> tuple[np.ndarray, ...]:
    """uint8 views of every short-term array that changes within a byte, as each family's state class declares in
    its PER_BIT class attribute (the names of its fields that a bit's predict and update can change; the others
    change only at byte boundaries).  A family without a declaration is an error, not a silent omission."""
    views = []
    for family, state in zip(stm._fields, stm):
        names = getattr(type(state), "PER_BIT", None)
        if names is None:
            raise TypeError(f"short-term memory family {family!r} ({type(state).__name__}) declares no PER_BIT "
                            "fields: top-k / top-p sampling cannot restore its state")
        for name in names:
            array = getattr(state, name)
            if not array.flags.c_contiguous:
                raise TypeError(f"stm.{family}.{name} is not contiguous")
            views.append(array.reshape(-1).view(np.uint8))
    if sum(v.size for v in views) > PER_BIT_LIMIT:
        raise ValueError("the per-bit state is larger than expected: a PER_BIT declaration names a big array")
    return tuple(views)


class ByteSampler:
    """The scratch arrays of the next-byte distribution for one model (see engine.generate_chunk_truncated)."""

    def __init__(self, model: Model):
        self.views = per_bit_views(model.stm)
        self.buf = np.zeros((7, sum(v.size for v in self.views)), np.uint8)
        self.tree = np.zeros(256, np.float32)
        self.tempered = np.zeros(256, np.float64)
        self.dist = np.zeros(256, np.float64)
        self.order = np.zeros(256, np.int64)


def next_byte_distribution(model: Model, prompt: bytes = b"", temperature: float = 1.0,
                           learn_prompt: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Feed `prompt`, then return (dist, tree) for the byte after it: dist float64[256], P(byte = b) as
    generation would sample it at `temperature`; tree float32[256], tree[node] the model's P(bit = 1) after the
    bits of node (node = those bits with a leading 1, 1..255; tree[0] unused).  Learning is off (unless
    learn_prompt), so long-term memory is unchanged; the short-term memory is left just before the byte's bits
    (where generation would continue), so use a copy of the model to go on otherwise.  The bytes are the model's:
    for a model of dictionary-coded text (Model.dictionary), `prompt` and the distribution are transformed bytes."""
    model.changed()
    if prompt:
        evaluate(model, prompt, learn_prompt)
    s = ByteSampler(model)
    prob = engine.generate_first(model.params, model.ltm, model.stm)
    engine.generate_chunk_truncated(model.params, model.ltm, model.stm, s.views, s.buf, s.tree, s.tempered, s.dist,
                                    s.order, np.zeros(1, np.uint64), max(float(temperature), 0.001), 0, 1.0,
                                    np.zeros(0, np.uint8), 0, prob)
    return s.dist.copy(), s.tree.copy()


def generate_bytes(model: Model, prompt: bytes, n: int, temperature: float, seed: int, learn_prompt: bool,
                   emit: Callable[[bytes], object], top_k: int = 0, top_p: float = 1.0, stop: bytes = b"",
                   echo_prompt: bool = False) -> int:
    """Feed `prompt`, then sample up to `n` bytes, passing them to `emit` in blocks.

    top_k > 0 keeps only the k most likely next bytes, top_p < 1 the smallest most likely set of them holding at
    least that share of their probability (applied after top_k); either samples whole bytes from the exact
    distribution (see the module docstring).  With `stop`, generation ends where the generated text first
    contains it; the stop string itself is not emitted.  With `echo_prompt` the prompt is emitted first.
    With a model of dictionary-coded text (Model.dictionary) the prompt is transformed for it and what it samples
    is decoded as it comes (leniently: a sampled byte that is no code is skipped), and `n` and `stop` count bytes
    of the decoded text.  Returns the number of generated bytes emitted (the prompt not counted)."""
    if not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0, not {temperature!r}")
    if n < 0:
        raise ValueError(f"n must be >= 0, not {n!r}")
    if not 0 <= seed < 1 << 64:
        raise ValueError(f"seed must be in [0, 2**64), not {seed!r}")
    if top_k < 0 or not 0.0 < top_p <= 1.0:
        raise ValueError("top-k must be at least 0 and top-p in (0, 1]")
    model.changed()
    decoder = None
    coded_prompt = prompt
    if model.dictionary:
        # The model continues the prompt's transform; the decoder reads the prompt's codes first, so that its
        # state (an uppercase word going on, say) is the one the sampled codes continue.
        words = Dictionary.english()  # one load for both (it is freed when nothing holds it)
        coded_prompt = encode(bytes(prompt), words)
        decoder = Decoder(words, lenient=True)
        decoder.feed(coded_prompt)
    if coded_prompt:
        evaluate(model, coded_prompt, learn_prompt)
    if echo_prompt and prompt:
        emit(bytes(prompt))
    temperature = max(float(temperature), 0.001)
    rng = np.array([seed], dtype=np.uint64)
    truncated = top_k > 0 or top_p < 1.0
    sampler = ByteSampler(model) if truncated else None
    block = BLOCK_TRUNCATED if truncated else BLOCK
    out = np.zeros(block, np.uint8)
    prob = engine.generate_first(model.params, model.ltm, model.stm)
    # Sampled bytes: n, or with the transform as many codes as n bytes of text take, within a bound (flags
    # decode to nothing, so a model could sample them for ever).
    limit = n if decoder is None else CODES_PER_BYTE * n + BLOCK
    done = emitted = 0
    held = b""  # generated bytes not emitted yet because they could be the start of the stop string
    finished = n == 0
    while not finished and done < limit:
        k = min(block, limit - done)
        if sampler is None:
            prob = engine.generate_chunk(model.params, model.ltm, model.stm, rng, temperature, out, k, prob)
        else:
            s = sampler
            prob = engine.generate_chunk_truncated(model.params, model.ltm, model.stm, s.views, s.buf, s.tree,
                                                   s.tempered, s.dist, s.order, rng, temperature, top_k, top_p,
                                                   out, k, prob)
        done += k
        new = out[:k].tobytes()
        text = (held + (new if decoder is None else decoder.feed(new)))[: n - emitted]
        held = b""
        finished = emitted + len(text) >= n
        if stop:
            at = text.find(stop)
            if at >= 0:
                text, finished = text[:at], True
            elif not finished:
                keep = min(len(text), len(stop) - 1)
                text, held = text[:len(text) - keep], text[len(text) - keep:]
        if text:
            emit(text)
            emitted += len(text)
    if held:
        emit(held)
        emitted += len(held)
    return emitted
