"""The compiled chunk loops driven from Python: the input in CHUNK-byte blocks, buffers grown between kernel calls.

Everything that reads bytes through the model learning or not (compression, training, evaluation, a generation
prompt) goes through here.  Nothing here reads or writes files of its own; the layers above (codec, generate,
runs) do.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import engine
from .model import Model

CHUNK = 1 << 14
Progress = Callable[[int], None]  # called with the number of input bytes just done


def no_progress(_: int) -> None:
    pass


def next_multiple(pos: int, every: int) -> int:
    """The first multiple of `every` after `pos` (never, in effect, when every is 0)."""
    return (pos // every + 1) * every if every > 0 else 1 << 62


def evaluate(model: Model, data: bytes | np.ndarray, learn: bool) -> float:
    """Bits needed for `data` under `model`, learning as it reads when `learn` (the model is modified)."""
    arr = np.frombuffer(bytes(data), np.uint8) if not isinstance(data, np.ndarray) else data
    model.changed()
    pos, bits = 0, 0.0
    none, no_inputs = np.zeros(0, np.float32), np.zeros((0, 0), np.float32)
    while pos < len(arr):
        end = min(len(arr), pos + CHUNK)
        while pos < end:
            pos, b = engine.evaluate_chunk(model.params, model.ltm, model.stm, arr, pos, end, learn, none, no_inputs)
            bits += b
            if pos < end:
                model.room()
    return bits


def trace(model: Model, data: bytes | np.ndarray, learn: bool = True, inputs: np.ndarray | None = None
          ) -> np.ndarray:
    """Every bit's prediction for `data` under `model`: float32[8 * len(data)], P(bit = 1) for each byte's bits
    from the most significant, the very values compression codes with.  Learns as it reads when `learn` (the model
    is modified).

    With `inputs` (float32[8 * len(data), n], C-contiguous, n at most len(model.spec.input_names())), row i also
    receives what each model told the mixers for bit i: the first n model inputs, in input_names() order, as
    logits (0 for a model with nothing to say)."""
    arr = np.frombuffer(bytes(data), np.uint8) if not isinstance(data, np.ndarray) else data
    probs = np.empty(8 * len(arr), np.float32)
    if inputs is None:
        inputs = np.zeros((0, 0), np.float32)
    elif (inputs.dtype != np.float32 or inputs.ndim != 2 or not inputs.flags.c_contiguous
          or inputs.shape[0] != len(probs) or inputs.shape[1] > len(model.spec.input_names())):
        raise ValueError(f"inputs must be a C-contiguous float32[{len(probs)}, n] array with n <= "
                         f"{len(model.spec.input_names())}")
    model.changed()
    pos = 0
    while pos < len(arr):
        end = min(len(arr), pos + CHUNK)
        while pos < end:
            pos, _ = engine.evaluate_chunk(model.params, model.ltm, model.stm, arr, pos, end, learn, probs, inputs)
            if pos < end:
                model.room()
    return probs
