"""Shared fixtures.  The whole suite uses the `tiny` preset (same models as gmix, small tables) so that it runs
in minutes on 2 cores; every preset shares one set of compiled kernels, which Numba caches on disk, so they are
compiled once per run (or never, with a warm cache)."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"


@pytest.fixture(scope="session", autouse=True)
def warm_kernels():
    """Compile (or load) every kernel the commands use once, before any test: then no test's timing, timeout or
    signal lands in the middle of a compilation (a cold cache on a fresh CI machine takes minutes), and the
    subprocesses the tests start find the kernels in the shared disk cache (named after the source hash)."""
    import gmixpy
    from gmixpy.chunks import evaluate, trace
    from gmixpy.generate import generate_bytes
    from gmixpy.model import Model

    gmixpy.decompress(gmixpy.compress(b"warm up " * 20, preset="tiny"))
    m = Model.new("tiny")
    evaluate(m, b"warm up", learn=True)
    trace(m, b"warm up", learn=True)
    generate_bytes(m, b"w", 2, 1.0, 0, False, lambda b: None)
    generate_bytes(m, b"w", 2, 1.0, 0, False, lambda b: None, top_k=2)
    from gmixpy.analysis import analyze

    analyze(m, b"warm up")


@pytest.fixture(scope="session")
def alice() -> bytes:
    return (DATA / "alice29.txt").read_bytes()


@pytest.fixture(scope="session")
def sample_text(alice) -> bytes:
    return alice[:6000]


@pytest.fixture(scope="session")
def binary_sample() -> bytes:
    # Deterministic structured binary: little-endian records with a counter, a float and noise.
    import numpy as np

    rng = np.random.default_rng(7)
    rec = np.zeros(500, dtype=[("i", "<u4"), ("f", "<f4"), ("b", "u1", 4)])
    rec["i"] = np.arange(500) * 3
    rec["f"] = np.sin(np.arange(500) / 10)
    rec["b"] = rng.integers(0, 4, size=(500, 4))
    return rec.tobytes()
