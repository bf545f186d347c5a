"""A model: a specification with its params, long-term memory and short-term memory.

This is the handle every command works on (compress, train, generate, ...).  The memories are NamedTuples of
numpy arrays; the compiled kernels read and write them in place, and `room()` grows the buffers that grow
(the match history and the mixer weight pool) between kernel calls.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import presets
from .predictor import LongTermMemory, Params, ShortTermMemory, grow, new_model
from .spec import Specification


@dataclass
class Model:
    spec: Specification
    params: Params
    ltm: LongTermMemory
    stm: ShortTermMemory

    @classmethod
    def new(cls, spec: Specification | str) -> "Model":
        if isinstance(spec, str):
            spec = presets.get(spec)
        params, ltm, stm = new_model(spec)
        return cls(spec, params, ltm, stm)

    def room(self) -> None:
        """Grow the growing buffers so that at least one more byte can be learned."""
        self.ltm = grow(self.ltm, self.params)

    def copy(self) -> "Model":
        """A deep copy of the memories (params are shared: they are never written)."""
        return Model(self.spec, self.params, deep_copy(self.ltm), deep_copy(self.stm))

    @property
    def bytes_learned(self) -> int:
        return int(self.ltm.history.bytes_learned[0])


SPARSE_BLOCK = 1 << 20  # bytes: big arrays are copied block by block, skipping blocks that are all zero


def copy_array(a: np.ndarray) -> np.ndarray:
    """A copy of `a` that touches no memory for all-zero blocks.

    PPMd's arena (2000 MB in `default`) and the big hash tables are allocated zeroed and mostly never written;
    the kernel gives such pages to the process only when they are written.  A plain copy would write every page
    of the copy, doubling the resident memory of a held-out evaluation or of a compression with a loaded model.
    """
    if a.nbytes < 64 * SPARSE_BLOCK or not a.flags.c_contiguous:
        return a.copy()
    out = np.zeros(a.shape, a.dtype)  # calloc: untouched pages cost nothing (zeros_like would write them)
    src, dst = a.reshape(-1).view(np.uint8), out.reshape(-1).view(np.uint8)
    for start in range(0, src.size, SPARSE_BLOCK):
        block = src[start:start + SPARSE_BLOCK]
        if block.any():
            dst[start:start + SPARSE_BLOCK] = block
    return out


def deep_copy(tree):
    """Copy a NamedTuple of NamedTuples of arrays."""
    if isinstance(tree, np.ndarray):
        return copy_array(tree)
    return type(tree)(*(deep_copy(x) for x in tree))


def walk(tree, prefix=""):
    """(dotted name, array) for every array in a NamedTuple tree, in field order."""
    for name, value in zip(tree._fields, tree):
        path = f"{prefix}{name}"
        if isinstance(value, np.ndarray):
            yield path, value
        else:
            yield from walk(value, path + ".")


def nbytes(tree) -> int:
    return sum(a.nbytes for _, a in walk(tree))
