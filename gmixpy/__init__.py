"""gmixpy: a byte-level language model built from context-mixing compression (a port of gmix).

The Python API, all on bytes:

* `compress(data, preset=...)` / `compress(data, model=...)` and `decompress(blob, model=...)`: archives;
* `generate(model, prompt, n=..., temperature=..., seed=...)`: text sampled from a model;
* `bits_per_byte(model, data, learn=...)`: how well a model predicts data (and, with learn=True, training);
* `Model.new(preset)` and `gmixpy.serialize.load` / `save`: models and model files;
* `ArchiveError` (damaged archives, the wrong model) and `ModelFileError` (damaged model files).
"""
from __future__ import annotations

__version__ = "0.1.0"

from ._cache import configure_cache as _configure_cache

_configure_cache()  # before any module imports Numba: the kernel cache is keyed by this source tree

import sys as _sys  # noqa: E402 - after the cache is configured
from io import BytesIO as _BytesIO  # noqa: E402
from types import ModuleType as _ModuleType  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover
    from .archive import ArchiveError
    from .model import Model
    from .serialize import ModelFileError

__all__ = ["compress", "decompress", "generate", "bits_per_byte", "Model", "ArchiveError", "ModelFileError",
           "__version__"]


def compress(data: bytes, preset: str = "default", model: Model | None = None, *, threads: int = 1,
             block_size: int | None = None, dictionary: str = "auto") -> bytes:
    """Compress `data` into a gmixpy archive.

    Either from scratch with `preset` ("default", "fast", "tiny", ...; see the README for their memory: "default"
    and "fast" allocate well over 1 GB, "tiny" a few MB), or starting from `model` (for example one loaded with
    `gmixpy.serialize.load`), which is not modified.  The archive records the preset, or the exact state of
    `model`: decompressing it needs a model in that same state.

    Data longer than `block_size` bytes (default: 16 MiB, as `gmixpy compress`; 0: one stream whatever the size)
    is cut into blocks coded independently, each from the same starting model, in `threads` worker processes
    forked from this one (0: one per core; 1: here, one block after the other).  The bytes are the same whatever
    `threads`, and the same as `gmixpy compress --block-size` gives.

    `dictionary`: "auto" codes English-like text through the dictionary transform (words replaced by codes from
    a bundled English word list, undone by `decompress`) when that shortens it by a tenth or more, with the presets
    default, fast and tiny; "off" never, "on" always (where it is available).  With `model`, the coding the model
    learned (`model.dictionary`) is used, and a setting asking for the other raises ValueError.
    """
    from .codec import compress_file

    data = bytes(data)
    out = _BytesIO()
    compress_file(_BytesIO(data), out, preset=preset, model=model, size=len(data), dictionary=dictionary,
                  **_blocks(threads, block_size))
    return out.getvalue()


def decompress(blob: bytes, model: Model | None = None, *, threads: int = 1) -> bytes:
    """The original bytes of a gmixpy archive.  Pass the `model` it was compressed with, if any (it is not
    modified).  An archive with blocks is decoded in `threads` worker processes (0: one per core).  Raises
    ArchiveError when the archive is damaged or needs another model (or none)."""
    from .codec import decompress_file

    out = _BytesIO()
    decompress_file(_BytesIO(bytes(blob)), out, len(blob), model=model, **_blocks(threads, None))
    return out.getvalue()


def _blocks(threads: int, block_size: int | None) -> dict:
    """compress_file's and decompress_file's arguments for `threads` and `block_size` (None: the default)."""
    from .parallel import Workers

    options = {"workers": Workers(threads)}
    if block_size is not None:
        if block_size < 0:
            raise ValueError(f"block_size must be 0 (one stream) or more, not {block_size}")
        options["block_size"] = block_size
    return options


def generate(model: Model, prompt: bytes | str = b"", n: int = 500, temperature: float = 1.0, seed: int = 0,
             learn_prompt: bool = False) -> bytes:
    """`n` bytes sampled from `model` after it has read `prompt` (a str is encoded as UTF-8): the same bytes that
    `gmixpy generate` writes for the model file, prompt, n, temperature and seed.

    Sampling is bit by bit with learning disabled; `temperature` divides the bit logits (0 is greedy: values below
    0.001 count as 0.001; it must be a finite number >= 0), `seed` (0 <= seed < 2**64) fixes the random choices.
    With `learn_prompt` the model learns from the prompt first, as gmix does.  `model` itself is not modified:
    generation runs on a copy of its running state (and of its long-term memory with learn_prompt), so the same
    call gives the same text again.  Raises ValueError for an invalid n, temperature or seed.
    """
    from .generate import generate_bytes
    text = prompt.encode() if isinstance(prompt, str) else bytes(prompt)
    work = model.copy() if learn_prompt else model.frozen_copy()
    out: list[bytes] = []
    generate_bytes(work, text, n, temperature, seed, learn_prompt, out.append)
    return b"".join(out)


def bits_per_byte(model: Model, data: bytes, *, learn: bool) -> float:
    """The bits per byte `model` needs for `data` (its cross-entropy: about what an archive of `data` would cost
    per byte, coded from the model's current state), 0.0 for empty data.

    `model` reads `data` and is changed by it.  With learn=True it learns as it reads (the compression setting,
    `gmixpy eval`): this is also how to train a model from Python.  With learn=False its long-term memory (tables
    and weights) is only read (`gmixpy eval --frozen`, like a validation loss), while its running state (contexts,
    PPMd) moves on to the end of `data`.  Pass `model.copy()` to leave `model` as it was.  A model of
    dictionary-coded text (`model.dictionary == "english"`, as `gmixpy train` makes for English-like text) reads
    the transform of `data`, and the result is still per byte of `data`.
    """
    from .chunks import evaluate
    from .preprocess.dictionary import encode

    data = bytes(data)
    coded = encode(data) if model.dictionary else data
    return evaluate(model, coded, learn) / len(data) if data else 0.0


class _Package(_ModuleType):
    """The package's module type.  It keeps `gmixpy.generate` the function above although the submodule
    gmixpy/generate.py has the same name: importing a submodule sets it as an attribute of its package, which here
    is ignored.  The submodule is still sys.modules["gmixpy.generate"], so `from gmixpy.generate import ...` works
    (`import gmixpy.generate as m` would give the function)."""

    @property
    def generate(self):
        return _generate

    @generate.setter
    def generate(self, value):
        pass


_generate = generate
_sys.modules[__name__].__class__ = _Package


def __getattr__(name):
    if name == "Model":
        from .model import Model

        return Model
    if name == "ArchiveError":
        from .archive import ArchiveError

        return ArchiveError
    if name == "ModelFileError":
        from .serialize import ModelFileError

        return ModelFileError
    raise AttributeError(name)
