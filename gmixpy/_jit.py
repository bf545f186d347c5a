"""Numba set-up shared by every compiled kernel.

Kernels are compiled once and cached on disk (`cache=True`).  Numba keys its cache on the source file of each
entry point only, so an edited helper in another module could leave a stale kernel behind; the cache directory is
therefore named after a hash of every module the kernels are built from (_cache.kernel_sources), and a change
to any of them selects a fresh directory.
Set NUMBA_CACHE_DIR yourself to override this.

Start-up: before it loads a cached kernel Numba refreshes its whole target context, importing and registering
every implementation it could need to compile (about 0.2 s: a 4 KB file took 1.31 s with it, 1.09 s without).
A cached kernel needs none of that to run, only Numba's runtime (NRT), whose symbols its machine code calls: so
the project's kernels load with just the runtime initialised (_load_cached), on the Numba versions this was run
on (LIGHT_LOAD_NUMBA).  A kernel that is not in the cache is compiled as always, and the compiler refreshes the
context itself first.  Other packages' Numba functions in the same process are left alone.

Determinism: no kernel uses fastmath or parallel reductions, so every float operation is IEEE round-to-nearest
in program order and the coded probability is the same on every machine.
"""
from __future__ import annotations

import functools
import os

import numba  # the package's __init__ has configured the cache directory before anything imports this module

numba.config.CACHE_DIR = os.environ.get("NUMBA_CACHE_DIR", numba.config.CACHE_DIR)


# Numba versions (major, minor) whose Cache.load_overload is "refresh the context, then _load_overload", for which
# _load_cached was run through the whole test suite; any other version loads as Numba does.
LIGHT_LOAD_NUMBA = ((0, 68),)
_LIGHT = tuple(int(part) for part in numba.__version__.split(".")[:2]) in LIGHT_LOAD_NUMBA


def _load_cached(cache, sig, target_context):
    """Cache.load_overload without the context refresh: only the runtime the machine code links against."""
    from numba.core.runtime import rtsys
    rtsys.initialize(target_context)
    with cache._guard_against_spurious_io_errors():
        return cache._load_overload(sig, target_context)


def _jitted(dispatcher):
    cache = getattr(dispatcher, "_cache", None)
    if _LIGHT and cache is not None and hasattr(cache, "_load_overload"):
        cache.load_overload = functools.partial(_load_cached, cache)
    return dispatcher


def njit(*args, **kwargs):
    """numba.njit with the project's fixed options: cached, no fastmath, no error model surprises."""
    kwargs.setdefault("cache", True)
    kwargs.setdefault("nogil", True)
    kwargs.setdefault("error_model", "numpy")
    if args and callable(args[0]):
        return _jitted(numba.njit(**kwargs)(args[0]))
    decorate = numba.njit(*args, **kwargs)
    return lambda fn: _jitted(decorate(fn))
