"""Text generation: read a prompt, then sample bit by bit with learning disabled (gmix's -g mode).

The prompt is read with learning off unless `learn_prompt` (gmix learns from it), so by default the model's
long-term memory is bit-identical afterwards; the short-term memory (contexts, histories) evolves.  Sampling uses
splitmix64 seeded by `seed`, so the same model, prompt and seed give the same text on any machine.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from . import engine
from .chunks import evaluate
from .model import Model

BLOCK = 16  # bytes per kernel call: small enough to stream to a terminal as it goes


def generate_bytes(model: Model, prompt: bytes, n: int, temperature: float, seed: int, learn_prompt: bool,
                   emit: Callable[[bytes], object]) -> int:
    """Feed `prompt`, then sample `n` bytes, passing them to `emit` in blocks.  Returns n.  Raises ValueError for
    a temperature that is not a finite number >= 0, a negative n or a seed outside [0, 2**64)."""
    if not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0, not {temperature!r}")
    if n < 0:
        raise ValueError(f"n must be >= 0, not {n!r}")
    if not 0 <= seed < 1 << 64:
        raise ValueError(f"seed must be in [0, 2**64), not {seed!r}")
    model.changed()
    if prompt:
        evaluate(model, prompt, learn_prompt)
    temperature = max(float(temperature), 0.001)
    rng = np.array([seed], dtype=np.uint64)
    out = np.zeros(BLOCK, np.uint8)
    prob = engine.generate_first(model.params, model.ltm, model.stm)
    done = 0
    while done < n:
        k = min(BLOCK, n - done)
        prob = engine.generate_chunk(model.params, model.ltm, model.stm, rng, temperature, out, k, prob)
        emit(out[:k].tobytes())
        done += k
    return done
