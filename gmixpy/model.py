"""A model: a specification with its params, long-term memory and short-term memory.

This is the handle every command works on (compress, train, generate, ...).  The memories are NamedTuples of
numpy arrays; the compiled kernels read and write them in place, and `room()` grows the buffers that grow
(the match history and the mixer weight pool) between kernel calls.

A model's identity is its content: `digest()` is a SHA-256 of the specification and of every array's used part
(state_digest), so two models with the same digest predict the same bits, whatever file, if any, they came from.
It is cached, and every code path that runs a kernel on the model calls `changed()` first, so the cache never
outlives the content it describes.  An archive compressed with a model records this digest.
"""
from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field, replace

import numpy as np

from . import presets
from .predictor import LongTermMemory, Params, ShortTermMemory, grow, new_model
from .spec import Specification


@dataclass
class Model:
    spec: Specification
    params: Params                 # built from spec, never written
    ltm: LongTermMemory            # written only by learning
    stm: ShortTermMemory           # the running state
    meta: dict = field(default_factory=dict)  # provenance read from its model file ({} for a new model)
    file_digest: bytes | None = None  # first 16 bytes of the SHA-256 of the file it was loaded from, while the
    #                                   model is unchanged since (what format-1 archives recorded); None otherwise
    _digest: bytes | None = field(default=None, repr=False)  # cached state_digest, None = not computed
    huge_pages: bool = True        # whether its tables, and copies of them, are allocated with huge pages (new)
    dictionary: str | None = None  # the coding of the bytes it models: None = bytes as they are, "english" = text
    #                                through gmix's dictionary transform (preprocess/dictionary.py), which every
    #                                command reading or writing text with it applies and undoes (saved in its file)

    @classmethod
    def new(cls, spec: Specification | str, huge_pages: bool = True, reserve: bool = False) -> "Model":
        """A model that has learned nothing, from a preset name ("default", "fast", "tiny", ...: see
        gmixpy.presets.PRESETS) or a Specification.  Its tables are allocated at once but cost physical memory
        only where they are written.  With `huge_pages` (NumPy's default on Linux) the kernel backs the big tables
        with 2 MB pages, which spares TLB misses on long inputs but makes every sparsely touched table resident
        in 2 MB steps; without, a short input pays only for the 4 KB pages it touches (see huge_pages_for).
        With `reserve`, its mixer weight pool never grows (see pool_reserve)."""
        if isinstance(spec, str):
            spec = presets.get(spec)
        with _huge_pages(huge_pages):
            params, ltm, stm = new_model(spec)
            if reserve:
                ltm = _with_pool(ltm, ltm.mixer.weights, pool_reserve(params, ltm))
        return cls(spec, params, ltm, stm, huge_pages=huge_pages)

    def room(self) -> None:
        """Grow the growing buffers so that at least one more byte can be learned (the content is unchanged)."""
        self.ltm = grow(self.ltm, self.params)

    def copy(self, huge_pages: bool | None = None, reserve: bool = False) -> "Model":
        """An independent copy in the same state (same digest): learning or reading with one leaves the other as
        it was.  The memories are copied (all-zero blocks cost nothing), the params shared (they are never
        written).  The copy's tables use huge pages as this model's do, unless `huge_pages` says otherwise (a
        copy made for a short input, see huge_pages_for).  Its mixer weight pool has this one's capacity, or with
        `reserve` at least pool_reserve's; only its used part is written."""
        if huge_pages is None:
            huge_pages = self.huge_pages
        pool = self.ltm.mixer
        capacity = max(pool.weights.shape[0], pool_reserve(self.params, self.ltm) if reserve else 0)
        with _huge_pages(huge_pages):
            ltm = deep_copy(_with_pool(self.ltm, pool.weights[:0]))  # the pool apart: a plain copy writes all of it
            ltm, stm = _with_pool(ltm, pool.weights, capacity), deep_copy(self.stm)
        return Model(self.spec, self.params, ltm, stm, dict(self.meta), self.file_digest, self._digest, huge_pages,
                     self.dictionary)

    def frozen_copy(self) -> "Model":
        """A model that shares this one's params and long-term memory and has a copy of its short-term memory: for
        reading with learning off (frozen evaluation, generation), which never writes long-term memory, so this
        model's state is left as it was without copying its tables."""
        return replace(self, stm=deep_copy(self.stm), meta=dict(self.meta), _digest=None)

    def digest(self) -> bytes:
        """16 bytes identifying this model's exact state (see state_digest), computed once per change."""
        if self._digest is None:
            self._digest = state_digest(self)
        return self._digest

    def changed(self) -> None:
        """Called before any kernel runs on the model: its content may no longer be what a digest said."""
        self._digest = None
        self.file_digest = None

    @property
    def bytes_learned(self) -> int:
        return int(self.ltm.history.bytes_learned[0])

    def history(self, start: int = 0) -> np.ndarray:
        """The match models' byte history from `start` to its end (a view).  Learning only ever appends to it, so
        a run can keep it in a file that grows by what is new (runs.py: a compression's checkpoints)."""
        return self.ltm.history.history[start:int(self.ltm.history.history_length[0])]


# Input bytes from which a model is allocated with huge pages.  Measured below it: alice29.txt with `default`
# peaks at 1,026 MB without them against 1,386 MB with, and ran no slower (23.6 against 25.2 CPU s); whether they
# pay above it, where TLB misses on random table reads grow, is not measured yet: this keeps NumPy's default there.
HUGE_PAGES_FROM = 1 << 24


def huge_pages_for(length: int | None) -> bool:
    """Whether a model for an input of `length` bytes (None: unknown, so possibly long) should use huge pages."""
    return length is None or length >= HUGE_PAGES_FROM


@contextlib.contextmanager
def _huge_pages(enabled: bool):
    """NumPy asks for transparent huge pages on large arrays (madvise) unless told not to; the switch is
    process-wide, so it is set around the allocation and restored.  Without the switch (another NumPy), the
    allocation is NumPy's default."""
    try:
        from numpy._core import multiarray
    except ImportError:  # NumPy 1
        from numpy.core import multiarray
    switch = getattr(multiarray, "_set_madvise_hugepage", None)
    if switch is None:
        yield
        return
    previous = switch(enabled)
    try:
        yield
    finally:
        switch(previous)


def pool_reserve(params: Params, ltm: LongTermMemory) -> int:
    """The mixer weight pool's capacity (floats) from which learning never has to grow it.

    The pool grows by doubling between chunks (predictor.grow), a copy during which the process holds both: ~80 MB
    more than ever after at alice29.txt with `default`, and its peak.  But a context's weight set is allocated
    once, when its table row is first learned, so the pool never holds more than one set per row of every mixer's
    table (421 MB with `default`, whatever the input); the kernels want room for one byte's sets (8 of the
    widest) beyond what is used.  Allocated at that size, as the hashed tables are, it costs only the pages
    written (it is used from its start) and never grows.  A model whose used part exceeds that (a crafted model
    file: only the offsets into the pool are checked) gets the room beyond its used part."""
    x = params.mixer
    rows = int((x.table_size * x.width).sum())
    return max(rows, int(ltm.mixer.weights_used[0])) + 8 * int(x.widest[0])


def _with_pool(ltm: LongTermMemory, weights: np.ndarray, capacity: int | None = None) -> LongTermMemory:
    """ltm with its mixer weight pool replaced: by `weights` itself, or by a zeroed pool of `capacity` floats
    holding the used part of `weights` (np.zeros: the pages past it cost nothing until written).  Past the used
    part a pool is all zeros (a new weight set is taken zeroed from there), so nothing else needs copying."""
    if capacity is not None:
        used = int(ltm.mixer.weights_used[0])
        pool = np.zeros(capacity, np.float32)
        pool[:used] = weights[:used]
        weights = pool
    return ltm._replace(mixer=ltm.mixer._replace(weights=weights))


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


# growing buffer -> the array holding its used length: only the used part is content (and is saved)
HISTORY = "ltm.history.history"
GROWING = {HISTORY: "ltm.history.history_length", "ltm.mixer.weights": "ltm.mixer.weights_used"}


def content_arrays(model: Model):
    """(dotted name, array) of the model's whole content in a fixed order, growing buffers cut to their used
    length: what a model file stores and what state_digest hashes."""
    items = list(walk(model.ltm, "ltm.")) + list(walk(model.stm, "stm."))
    lookup = dict(items)
    for name, array in items:
        if name in GROWING:
            array = array[: int(lookup[GROWING[name]][0])]
        yield name, array


def state_digest(model: Model) -> bytes:
    """First 16 bytes of a SHA-256 over the specification's digest and, for every content array, its name, dtype,
    shape and bytes.  All-zero 1 MiB blocks are hashed as their length only (reading them costs no memory: the
    pages were never written), so a fresh `default` model hashes in a fraction of a second."""
    sha = hashlib.sha256(b"gmixpy model state 1\0" + model.spec.digest())
    for name, array in content_arrays(model):
        sha.update(f"{name}:{array.dtype.str}:{array.shape}\0".encode())
        raw = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
        for start in range(0, raw.size, SPARSE_BLOCK):
            block = raw[start:start + SPARSE_BLOCK]
            sha.update(block.data if block.any() else b"\0%d\0" % block.size)
    return sha.digest()[:16]


def nbytes(tree) -> int:
    return sum(a.nbytes for _, a in walk(tree))
