"""Streaming: compression and decompression read and write in chunks, so peak memory does not follow the input
size beyond what the model itself grows (the match history, at most one byte per input byte, and the mixer weight
pool).  Measured on real processes (ru_maxrss from wait4).

By default the test compares 0.1 MB with 0.4 MB (about half a minute with the tiny preset); GMIXPY_STREAM_MB="1,8"
compares the sizes quoted in the README (about ten minutes).  Results go to streaming.json in the test's temporary
directory, or in $GMIXPY_RESULTS when that is set."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from helpers import GMIXPY, results_dir

SIZES_MB = [float(x) for x in os.environ.get("GMIXPY_STREAM_MB", "0.1,0.4").split(",")]


def _text(alice: bytes, n: int, seed: int = 5) -> bytes:
    """n bytes of text-like data that does not repeat (random sequences of alice's words), so the match history
    really grows with the input."""
    words = np.array(alice.split(), dtype=object)
    rng = np.random.default_rng(seed)
    out, size = [], 0
    while size < n:
        chunk = b" ".join(words[rng.integers(0, len(words), 20000)])
        out.append(chunk)
        size += len(chunk) + 1
    return b"\n".join(out)[:n]


# Runs the command line and writes the process's own peak RSS (VmHWM) at exit.  ru_maxrss from wait4 is no good
# here: Linux carries the parent's (pytest's) high-water mark over fork and exec into the child's.
_WRAPPER = """
import atexit, runpy, sys
def hwm(path=sys.argv[1]):
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(path, "w").write(line.split()[1])
atexit.register(hwm)
sys.argv = ["gmixpy"] + sys.argv[2:]
runpy.run_module("gmixpy", run_name="__main__")
"""


def _measure(args) -> tuple[int, float, float]:
    """(exit status, peak RSS in MB, seconds) of one gmixpy process."""
    start = time.perf_counter()
    out = Path(str(args[1]) + ".hwm")
    proc = subprocess.run([sys.executable, "-c", _WRAPPER, str(out)] + [str(a) for a in args],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=3600)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.returncode, int(out.read_text()) / 1024, time.perf_counter() - start


def test_peak_memory_does_not_follow_input_size(tmp_path, alice):
    # warm the kernel cache first, so that no measurement includes a compilation
    warm = tmp_path / "warm"
    warm.write_bytes(alice[:2000])
    assert subprocess.run(GMIXPY + ["compress", warm, "-p", "tiny", "-q"], timeout=600).returncode == 0
    assert subprocess.run(GMIXPY + ["decompress", f"{warm}.gmx", "-o", f"{warm}.out", "-q"],
                          timeout=600).returncode == 0
    files = []
    for mb in SIZES_MB:
        path = tmp_path / f"in{mb}"
        path.write_bytes(_text(alice, int(mb * 1_000_000)))
        files.append(path)

    def compress(path):
        return _measure(["compress", path, "-p", "tiny", "-q", "-o", f"{path}.gmx"])

    def decompress(path):
        return _measure(["decompress", f"{path}.gmx", "-q", "-o", f"{path}.out"])

    with ThreadPoolExecutor(max_workers=2) as pool:
        comp = list(pool.map(compress, files))
        dec = list(pool.map(decompress, files))
    results = {}
    for mb, path, c, d in zip(SIZES_MB, files, comp, dec):
        assert c[0] == 0 and d[0] == 0
        assert Path(f"{path}.out").read_bytes() == path.read_bytes()
        results[f"{mb} MB"] = {"compress_peak_rss_mb": round(c[1], 1), "compress_seconds": round(c[2], 1),
                               "decompress_peak_rss_mb": round(d[1], 1), "decompress_seconds": round(d[2], 1),
                               "archive_bytes": Path(f"{path}.gmx").stat().st_size}
    print("\n" + json.dumps(results, indent=1))
    (results_dir(tmp_path) / "streaming.json").write_text(json.dumps(results, indent=1) + "\n")
    small, big = SIZES_MB[0], SIZES_MB[-1]
    # what the model may legitimately grow by: the match history (one byte per input byte, doubling: at most
    # 2 bytes per byte of capacity) plus a margin for the mixer pool and allocator noise
    allowance = 1.25 * 2 * (big - small) + 40
    for key in ("compress_peak_rss_mb", "decompress_peak_rss_mb"):
        a, b = results[f"{small} MB"][key], results[f"{big} MB"][key]
        assert b <= a * 1.25 + allowance, (key, a, b)
