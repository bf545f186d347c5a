"""Where compiled kernels are cached (see _jit.py).  Imported by the package before anything imports Numba."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


def _source_hash() -> str:
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def configure_cache() -> None:
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gmixpy" / "numba"
    target = base / _source_hash()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # Numba falls back to __pycache__ beside the sources
    os.environ["NUMBA_CACHE_DIR"] = str(target)


