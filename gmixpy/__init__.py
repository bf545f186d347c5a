"""gmixpy: a byte-level language model built from context-mixing compression (a port of gmix)."""
__version__ = "0.1.0"

from ._cache import configure_cache as _configure_cache

_configure_cache()  # before any module imports Numba: the kernel cache is keyed by this source tree

from io import BytesIO as _BytesIO  # noqa: E402 - after the cache is configured

__all__ = ["compress", "decompress", "Model", "ArchiveError", "__version__"]


def compress(data: bytes, preset: str = "default", model=None) -> bytes:
    """Compress `data` into a gmixpy archive (bytes), from scratch with `preset` or starting from a loaded
    `model` (which is not modified)."""
    from .codec import compress_file

    out = _BytesIO()
    compress_file(_BytesIO(bytes(data)), out, preset=preset, model=model)
    return out.getvalue()


def decompress(blob: bytes, model=None) -> bytes:
    """Decompress a gmixpy archive.  Raises ArchiveError when it is damaged or needs another model."""
    from .codec import decompress_file

    out = _BytesIO()
    decompress_file(_BytesIO(bytes(blob)), out, len(blob), model=model)
    return out.getvalue()


def __getattr__(name):
    if name == "Model":
        from .model import Model

        return Model
    if name == "ArchiveError":
        from .archive import ArchiveError

        return ArchiveError
    raise AttributeError(name)
