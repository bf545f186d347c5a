"""Start-up: the project's cached kernels load without Numba's refresh of its target context (gmixpy._jit), and
code exactly what they code when Numba loads them its own way."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO
from gmixpy import _jit

# Counts Numba's context refreshes in a new process, then compresses and decompresses with `tiny` (whose kernels
# the session has cached); `light` False makes the project's kernels load as Numba does.
_RUN = """
import sys
from numba.core import base
calls = []
stock = base.BaseContext.refresh
def counted(self):
    calls.append(1)
    return stock(self)
base.BaseContext.refresh = counted
import gmixpy._jit
gmixpy._jit._LIGHT = {light}
import gmixpy
data = b"start-up " * 50
blob = gmixpy.compress(data, preset="tiny")
assert gmixpy.decompress(blob) == data
sys.stdout.write(f"{{len(calls)}} {{blob.hex()}}")
"""


def _run(light: bool) -> tuple[int, str]:
    out = subprocess.run([sys.executable, "-c", _RUN.format(light=light)], cwd=REPO, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    calls, blob = out.stdout.split()
    return int(calls), blob


@pytest.mark.skipif(not _jit._LIGHT, reason="this Numba version loads kernels its own way (LIGHT_LOAD_NUMBA)")
def test_cached_kernels_load_without_a_context_refresh_and_code_the_same():
    light_calls, light_blob = _run(True)
    stock_calls, stock_blob = _run(False)
    assert light_calls == 0
    assert stock_calls >= 1  # the count sees the refresh the light load leaves out
    assert light_blob == stock_blob


def test_only_the_projects_kernels_load_the_light_way():
    from numba import njit

    from gmixpy import engine

    assert _jit._LIGHT == (tuple(int(p) for p in __import__("numba").__version__.split(".")[:2])
                           in _jit.LIGHT_LOAD_NUMBA)
    ours = engine.compress_chunk._cache
    assert ("load_overload" in vars(ours)) == _jit._LIGHT

    @njit(cache=False)
    def other(x):
        return x + 1

    assert "load_overload" not in vars(other._cache)
