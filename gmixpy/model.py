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


def deep_copy(tree):
    """Copy a NamedTuple of NamedTuples of arrays."""
    if isinstance(tree, np.ndarray):
        return tree.copy()
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
