"""Model files and checkpoints with a valid checksum but crafted VALUES: refused at load, or run cleanly.

The compiled kernels run without bounds checks, so the loader checks every stored index, pointer, loop bound and
float (predictor.check_model).  (a) Targeted cases: a handful of out-of-range fields are refused by
serialize.load with ModelFileError naming the field, and by the command line with one line and exit status 1.
(b) Value fuzz: one field of a trained tiny model (or checkpoint) gets a crafted value in one or a few elements,
and compress / decompress / generate / continued training run on it in a subprocess with a timeout.  Allowed
outcomes: refused at load, or ran to completion (an in-range value may change the output; that is fine).  A crash
or a hang is a missing check.  The workers inherit the environment and run the normally compiled kernels, where
an out-of-bounds read may go unnoticed; `NUMBA_BOUNDSCHECK=1 NUMBA_CACHE_DIR=/tmp/gmixpy-bc make fuzz` compiles
them with bounds checks (minutes, once), so that every out-of-bounds access raises an IndexError, also counted as
a missing check.

A few cases run in the normal suite; GMIXPY_FUZZ_CASES (`make fuzz`) runs more.  This file is also the worker:
`python tests/test_model_values.py run FILE model|checkpoint` runs the operations on one file.
"""
from __future__ import annotations

import collections
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_one_line_error, run, trained_tiny

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "alice29.txt"
CASES = int(os.environ.get("GMIXPY_FUZZ_CASES", "0")) // 10 or 6  # `make fuzz` (5000): 500 mutated files
CASE_SECONDS = 120.0  # a hang, not a slow machine: a case takes a few seconds even under NUMBA_BOUNDSCHECK
EXIT_REFUSED, EXIT_INDEX, EXIT_OTHER, EXIT_MISMATCH = 3, 4, 5, 6
OUTCOMES = {0: "ran", EXIT_REFUSED: "refused", EXIT_INDEX: "IndexError", EXIT_OTHER: "exception",
            EXIT_MISMATCH: "round trip mismatch"}


# ---- the worker (runs in a subprocess) ---------------------------------------------------------------------------

def _work(path: str, kind: str) -> int:
    """Load `path` and run every command's kernels on it; the exit status says what happened."""
    import gmixpy
    from gmixpy import engine, serialize
    from gmixpy.chunks import evaluate
    from gmixpy.coder.arithmetic import coder_new
    from gmixpy.generate import generate_bytes

    data = DATA.read_bytes()[5000:6500]
    try:
        if kind == "checkpoint":
            model, _, run = serialize.load_checkpoint(path, {"coder": coder_new, "output": serialize.BYTES})
        else:
            model, run = serialize.load(path), None
    except serialize.ModelFileError as e:
        print(e, file=sys.stderr)
        return EXIT_REFUSED
    try:
        blob = gmixpy.compress(data[:600], model=model)
        if gmixpy.decompress(blob, model=model) != data[:600]:
            return EXIT_MISMATCH
        generate_bytes(model.copy(), b"the ", 48, 0.8, 1, False, lambda _: None)
        generate_bytes(model.copy(), b"", 16, 1.0, 2, True, lambda _: None)
        evaluate(model.copy(), data[600:900], learn=False)
        work = model.copy()
        if run is not None:  # continue the checkpointed compression with its coder registers
            out = np.zeros(len(data) * engine.OUT_BYTES_PER_BYTE + 16, np.uint8)
            arr = np.frombuffer(data, np.uint8)
            pos = 0
            while pos < len(arr):
                pos, n = engine.compress_chunk(work.params, work.ltm, work.stm, run["coder"], arr, pos, len(arr), out,
                                               0)
                work.room()
        else:
            evaluate(work, data, learn=True)
    except IndexError as e:
        print(f"IndexError: {e}", file=sys.stderr)
        return EXIT_INDEX
    except Exception as e:  # noqa: BLE001 - any other exception is a finding too
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_OTHER
    return 0


# ---- crafted values ----------------------------------------------------------------------------------------------

def _base_files(directory: Path) -> tuple[Path, Path]:
    """A tiny model trained on a few KB of text (tables, history, PPMd arena and mixer pool populated) and a
    compression checkpoint taken in the middle of a byte stream."""
    from gmixpy import engine, serialize
    from gmixpy.coder.arithmetic import coder_new

    text = DATA.read_bytes()
    model = trained_tiny(text[:4000])
    model_path = directory / "base.gmxm"
    serialize.save(str(model_path), model, force=True)
    coder = coder_new()
    out = np.zeros(2000 * engine.OUT_BYTES_PER_BYTE, np.uint8)
    arr = np.frombuffer(text[4000:5000], np.uint8)
    pos = 0
    while pos < len(arr):
        pos, _ = engine.compress_chunk(model.params, model.ltm, model.stm, coder, arr, pos, len(arr), out, 0)
        model.room()
    ckpt_path = directory / "base.ckpt"
    serialize.save_checkpoint(str(ckpt_path), model, {"coder": coder, "output": np.zeros(3, np.uint8)},
                              {"command": "compress"})
    return model_path, ckpt_path


def _candidates(array: np.ndarray, rng: random.Random) -> list:
    """Values worth writing into `array`: the edges of its dtype, 0 and -1, 2**40, just past its current
    extremes and its length (the usual off-by-one), NaN and infinities for floats, and a random one."""
    if array.dtype.kind == "f":
        return [np.nan, np.inf, -np.inf, 3e38, -3e38, 1e30, 0.0, -1.0, rng.uniform(-1e6, 1e6)]
    info = np.iinfo(array.dtype)
    values = {0, -1, info.max, info.min, 1 << 40, 1 << 31, 1 << 32, rng.randint(info.min, info.max)}
    if array.size:
        values |= {int(array.max()) + 1, int(array.min()) - 1, int(array.max()) * 2 + 1}
    values |= {array.shape[0], array.shape[0] + 1, array.size}
    return [v for v in sorted(values) if info.min <= v <= info.max]


def _cases(count: int, seed: int) -> list[tuple[str, str, int, object, int]]:
    """(file kind, array name, elements to change, value, random seed) for `count` cases: every array of the
    model in turn, so that a small count still reaches every family."""
    from gmixpy.model import Model, walk

    rng = random.Random(seed)
    model = Model.new("tiny")
    arrays = [("ltm." + n, a) for n, a in walk(model.ltm)] + [("stm." + n, a) for n, a in walk(model.stm)]
    arrays = [(n, a) for n, a in arrays if a.size]
    out = []
    order = list(range(len(arrays)))
    rng.shuffle(order)
    i = 0
    while len(out) < count:
        name, array = arrays[order[i % len(order)]]
        i += 1
        kind = "checkpoint" if rng.random() < 0.3 else "model"
        if name == "stm.ppmd.arena":  # bytes: any value is valid, so craft pointers (cycles) instead
            out.append((kind, name, rng.choice([1, 2, 8]), "pointer", rng.randrange(1 << 30)))
            continue
        value = rng.choice(_candidates(array, rng))
        out.append((kind, name, rng.choice([1, 1, 2, 5]), value, rng.randrange(1 << 30)))
    return out


def _mutate(source: Path, target: Path, kind: str, name: str, elements: int, value, seed: int) -> None:
    """Copy of the file at `source` with `elements` elements of array `name` set to `value` (or, for the PPMd
    arena, little-endian pointers into the arena written at random aligned places), checksum recomputed."""
    from gmixpy import serialize
    from gmixpy.coder.arithmetic import coder_new
    from gmixpy.model import walk

    rng = np.random.default_rng(seed)
    if kind == "checkpoint":
        model, meta, run = serialize.load_checkpoint(str(source), {"coder": coder_new, "output": serialize.BYTES})
    else:
        model, meta, run = serialize.load(str(source)), {}, None
    array = dict([("ltm." + n, a) for n, a in walk(model.ltm)] + [("stm." + n, a) for n, a in walk(model.stm)])[name]
    flat = array.reshape(-1)
    if value == "pointer":
        used = max(16, int(np.flatnonzero(flat).max(initial=16)) + 1)
        for _ in range(elements):
            at = int(rng.integers(0, used - 4)) & ~1
            flat[at:at + 4] = np.frombuffer(int(rng.integers(0, used)).to_bytes(4, "little"), np.uint8)
    else:
        used = flat.size  # growing buffers: only their used part is saved
        if name == "ltm.history.history":
            used = max(1, int(model.ltm.history.history_length[0]))
        elif name == "ltm.mixer.weights":
            used = max(1, int(model.ltm.mixer.weights_used[0]))
        picks = rng.integers(0, used, size=elements)
        flat[picks] = value
    if kind == "checkpoint":
        serialize.save_checkpoint(str(target), model, run, meta)
    else:
        serialize.save(str(target), model, force=True)


def _run_case(directory: Path, index: int, case, bases) -> tuple[str, str]:
    kind, name, elements, value, seed = case
    path = directory / f"case{index}.{'ckpt' if kind == 'checkpoint' else 'gmxm'}"
    _mutate(bases[kind], path, kind, name, elements, value, seed)
    try:
        proc = subprocess.run([sys.executable, __file__, "run", str(path), kind], capture_output=True,
                              timeout=CASE_SECONDS, env=dict(os.environ, PYTHONPATH=str(REPO)))
        code, err = proc.returncode, proc.stderr.decode(errors="replace").strip().splitlines()
        outcome = OUTCOMES.get(code, f"crash (status {code})")
        detail = err[-1] if err else ""
    except subprocess.TimeoutExpired:
        outcome, detail = "hang", ""
    path.unlink()
    return outcome, f"{kind} {name} x{elements} = {value!r}: {detail}"


def fuzz(directory: Path, count: int, seed: int = 1, workers: int = 2) -> tuple[collections.Counter, list]:
    """Run `count` cases; returns (outcome counts by file kind, descriptions of the bad ones)."""
    bases = dict(zip(("model", "checkpoint"), _base_files(directory)))
    cases = _cases(count, seed)
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda ic: _run_case(directory, ic[0], ic[1], bases), enumerate(cases)))
    counts = collections.Counter((case[0], outcome) for case, (outcome, _) in zip(cases, results))
    bad = [detail for outcome, detail in results if outcome not in ("ran", "refused")]
    return counts, bad


def test_value_fuzz(tmp_path):
    counts, bad = fuzz(tmp_path, CASES)
    print("\n== model values: " + "; ".join(f"{n} x {k} {o}" for (k, o), n in sorted(counts.items())))
    assert not bad, bad[:10]


# ---- targeted cases ----------------------------------------------------------------------------------------------

def _set(name, index, value):
    def change(model):
        from gmixpy.model import walk

        arrays = dict([("ltm." + n, a) for n, a in walk(model.ltm)] + [("stm." + n, a) for n, a in walk(model.stm)])
        arrays[name].reshape(-1)[index] = value
    return change


def _mixer_offset(model):
    table = model.ltm.mixer.table
    row = int(np.flatnonzero(table[:, 0])[0])
    table[row, 0] = int(model.ltm.mixer.weights_used[0])  # a whole weight set past the end of the used pool


def _match_position(model):
    table = model.ltm.match.table
    table[int(np.flatnonzero(table)[0])] = int(model.ltm.history.history_length[0]) + 5


TARGETED = [
    ("stm.basic.rotating_history_pos", _set("stm.basic.rotating_history_pos", 0, 10 ** 12)),
    ("ltm.mixer.table", _mixer_offset),
    ("ltm.match.table", _match_position),
    ("stm.indirect.entry", _set("stm.indirect.entry", 0, -3)),
    ("stm.ppmd.regs", _set("stm.ppmd.regs", 8, 1 << 40)),  # R_MAX_CONTEXT far outside the arena
    ("ltm.mixer.weights", _set("ltm.mixer.weights", 3, np.nan)),
    ("stm.match.match_length", _set("stm.match.match_length", 0, 256)),
    ("stm.lstm.epoch", _set("stm.lstm.epoch", 0, 1 << 20)),
]


@pytest.fixture(scope="module")
def trained():
    return trained_tiny(DATA.read_bytes()[:3000])


@pytest.mark.parametrize("field,change", TARGETED, ids=[t[0] for t in TARGETED])
def test_out_of_range_refused(trained, tmp_path, field, change):
    from gmixpy import serialize

    model = trained.copy()
    change(model)
    path = tmp_path / "bad.gmxm"
    serialize.save(str(path), model)
    with pytest.raises(serialize.ModelFileError) as e:
        serialize.load(str(path))
    assert str(e.value).startswith(f"{path}: damaged model file ({field}")


def test_out_of_range_cli(trained, tmp_path):
    """`gmixpy compress --model BAD`: one line on stderr, exit status 1, no output file."""
    from gmixpy import serialize

    model = trained.copy()
    TARGETED[0][1](model)
    bad = tmp_path / "bad.gmxm"
    serialize.save(str(bad), model)
    src = tmp_path / "in.txt"
    src.write_bytes(b"hello world " * 100)
    out = tmp_path / "out.gmx"
    proc = run("compress", src, "--model", bad, "-o", out, env={"PYTHONPATH": str(REPO)})
    assert_one_line_error(proc, "damaged model file (stm.basic.rotating_history_pos out of range)")
    assert set(tmp_path.iterdir()) == {bad, src}


def test_ppmd_suffix_cycle_ends(trained, tmp_path):
    """The arena is not checked (any bytes are valid), so a context that is its own suffix loads; the bounded
    suffix walks make the run end (gmix's unbounded ones would spin forever)."""
    import gmixpy
    from gmixpy import serialize
    from gmixpy.models.ppmd import R_MAX_CONTEXT, _w32

    model = trained.copy()
    mc = int(model.stm.ppmd.regs[R_MAX_CONTEXT])
    _w32(model.stm.ppmd.arena, mc + 8, mc)
    path = tmp_path / "cycle.gmxm"
    serialize.save(str(path), model)
    loaded = serialize.load(str(path))
    data = b"to be or not to be " * 20
    assert gmixpy.decompress(gmixpy.compress(data, model=loaded), model=loaded) == data


def test_valid_models_pass(trained):
    """The checks accept what gmixpy itself writes: fresh, trained, and after PPMd ran out of arena."""
    import dataclasses

    from gmixpy import presets
    from gmixpy.chunks import evaluate
    from gmixpy.model import Model
    from gmixpy.models.ppmd import R_RESTORES
    from gmixpy.predictor import check_model
    from gmixpy.spec import Ppmd

    fresh = Model.new("tiny")
    assert check_model(fresh.params, fresh.ltm, fresh.stm) is None
    assert check_model(trained.params, trained.ltm, trained.stm) is None
    tiny = presets.get("tiny")  # with a 32 KiB PPMd arena, which 20 KB of text fills several times over
    small = dataclasses.replace(tiny, name="tiny-small-ppmd", models=tuple(
        dataclasses.replace(m, memory_mb=1 / 32) if isinstance(m, Ppmd) else m for m in tiny.models))
    full = Model.new(small)
    evaluate(full, DATA.read_bytes()[:20000], learn=True)
    assert full.stm.ppmd.regs[R_RESTORES] >= 1
    assert check_model(full.params, full.ltm, full.stm) is None


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "run":
    sys.exit(_work(sys.argv[2], sys.argv[3]))


def test_checkpoint_coder_out_of_range_refused(tmp_path):
    from gmixpy import serialize
    from gmixpy.coder.arithmetic import coder_new

    _, ckpt = _base_files(tmp_path)
    template = {"coder": coder_new, "output": serialize.BYTES}
    model, meta, run = serialize.load_checkpoint(str(ckpt), template)
    run["coder"].x1[0] = run["coder"].x2[0] + 1   # an empty interval: the coder would divide it by nothing
    bad = tmp_path / "bad.ckpt"
    serialize.save_checkpoint(str(bad), model, run, meta)
    with pytest.raises(serialize.ModelFileError) as e:
        serialize.load_checkpoint(str(bad), template)
    assert str(e.value).startswith(f"{bad}: damaged checkpoint (coder.")
