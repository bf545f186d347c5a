"""Numba set-up shared by every compiled kernel.

Kernels are compiled once and cached on disk (`cache=True`).  Numba keys its cache on the source file of each
entry point only, so an edited helper in another module could leave a stale kernel behind; the cache directory is
therefore named after a hash of every module the kernels are built from (_cache.kernel_sources), and a change
to any of them selects a fresh directory.
Set NUMBA_CACHE_DIR yourself to override this.

Determinism: no kernel uses fastmath or parallel reductions, so every float operation is IEEE round-to-nearest
in program order and the coded probability is the same on every machine.
"""
from __future__ import annotations

import os

import numba  # the package's __init__ has configured the cache directory before anything imports this module

numba.config.CACHE_DIR = os.environ.get("NUMBA_CACHE_DIR", numba.config.CACHE_DIR)


def njit(*args, **kwargs):
    """numba.njit with the project's fixed options: cached, no fastmath, no error model surprises."""
    kwargs.setdefault("cache", True)
    kwargs.setdefault("nogil", True)
    kwargs.setdefault("error_model", "numpy")
    if args and callable(args[0]):
        return numba.njit(**kwargs)(args[0])
    return numba.njit(*args, **kwargs)
