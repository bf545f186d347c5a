"""Shared fixtures.  The whole suite uses the `tiny` preset (same models as gmix, small tables) so that it runs
in minutes on 2 cores; every preset shares one set of compiled kernels, which Numba caches on disk, so they are
compiled once per run (or never, with a warm cache)."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"


# Every compiled kernel, in two groups of about equal compile time, compiled side by side on a cold cache.
_WARM_GROUPS = (
    """
import gmixpy
from gmixpy.chunks import evaluate, trace
from gmixpy.generate import generate_bytes
from gmixpy.model import Model
gmixpy.decompress(gmixpy.compress(b"warm up " * 20, preset="tiny"))
m = Model.new("tiny")
evaluate(m, b"warm up", learn=True)
trace(m, b"warm up", learn=True)
generate_bytes(m, b"w", 2, 1.0, 0, False, lambda b: None)
""",
    """
from gmixpy.analysis import analyze
from gmixpy.generate import generate_bytes, next_byte_distribution
from gmixpy.model import Model
m = Model.new("tiny")
analyze(m, b"warm up")
generate_bytes(m, b"w", 2, 1.0, 0, False, lambda b: None, top_k=2)
next_byte_distribution(m)
import sys
import numpy as np
from numba import typeof
sys.path.insert(0, "tests")
from test_sampling import _bits  # a test's own kernel over the whole predictor: compiled here, not serially later
_bits.compile(tuple(typeof(x) for x in (m.params, m.ltm, m.stm, np.zeros(1, np.int64))))
""",
)


@pytest.fixture(scope="session", autouse=True)
def warm_kernels():
    """Compile (or load) every kernel the commands use once, before any test: then no test's timing, timeout or
    signal lands in the middle of a compilation (a cold cache on a fresh CI machine takes many minutes), and the
    subprocesses the tests start find the kernels in the shared disk cache (named after the kernels' sources).
    Two processes compile half the kernels each, side by side (Numba compiles on one core); then this process
    loads them all from the cache."""
    import subprocess
    import sys

    workers = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO) for code in _WARM_GROUPS]
    for w in workers:
        w.wait()  # a failure shows itself again below, in this process, with its traceback
    for code in _WARM_GROUPS:
        exec(compile(code, "<warm>", "exec"), {})


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
