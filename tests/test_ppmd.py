"""Tests for gmixpy.models.ppmd (the port of gmix's mod_ppmd), with reference digests made by gmix's own C++.

How the reference digests below were made (the data is committed here; the harness and gmix's code are not):
  * Source: gmix (https://github.com/byronknoll/gmix, GPL-3.0), src/models/mod_ppmd.cpp and mod_ppmd.h.  Which
    commit was used is not recorded; mod_ppmd.cpp last changed in 19d9aed (2024-10-29, "optional analysis") and is
    the same up to 352b31d (2024-12-01), so any commit from 19d9aed on gives the same digests.
  * Harness: a small C++ program compiled with g++ -O2 (not gmix's -Ofast, which may reassociate the float32
    sums), linking mod_ppmd.cpp.  It drives the model exactly as gmix's ModPPMD::Predict does at a byte boundary:
    ppmd_Model::Init(order = 20, MMAX = arena in MiB, CutOff = 1, filesize = 0) (what ModPPMD's constructor
    calls), with the arena (HeapStart, which gmix allocates uninitialised with new byte[]) zero-filled, as the
    port's np.zeros arena is; then for t = 0, 1, ...: ppmd_UpdateByte(byte[t - 1]) (byte[-1] = 0, gmix's initial
    last_byte) and ppmd_PrepareByte(), then ppm_predictions[i] = max(float(sqp[i]), 1) divided by their float sum
    (valarray sum(), index order), as in ModPPMD::Predict.
  * Digest: SHA-256 over rows, row t being sqp (256 x uint32, little-endian) followed by ppm_predictions
    (256 x float32, little-endian) as they stand when byte t is about to be predicted (after the update with
    byte[t - 1]); `_digest_rows` below computes the same from the port.
  * Runs: GOLDEN_ALICE_3000_ALL_ROWS: rows 0..2999 of the 1 MiB run below; GOLDEN_ALICE2_300K_ORDER20_1MB_EVERY16:
    the first 300,000 bytes of data/alice29.txt twice over (its 152,089 bytes, then again), 1 MiB arena, rows with
    t % 16 == 0 (the arena fills up and RestoreModelRare runs several times); GOLDEN_ALICE_FULL_ORDER20_2000MB_EVERY16:
    all of data/alice29.txt with gmix's 2000 MiB arena, rows with t % 16 == 0.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from gmixpy.models import ppmd as P
from ppmd_reference import ppmd_feed, ppmd_memory_used, ppmd_next_byte, ppmd_run

ROOT = Path(__file__).resolve().parents[1]
ALICE = ROOT / "data" / "alice29.txt"

# sha256 over per-byte rows [sqp as <u4 | pred as <f4] (see module docstring):
# all rows of the first 3000 bytes of alice29.txt, order 20, 1 MiB arena ...
GOLDEN_ALICE_3000_ALL_ROWS = "a21218b0b5801b4cb621b38a7e29f1e6c4f6b93d3a61daba59df21bbf2251aa2"
# ... and every 16th row (t % 16 == 0) of longer runs.
GOLDEN_ALICE2_300K_ORDER20_1MB_EVERY16 = "fe22d20e75be73178eec705e0ab1690673501f83a9094a465ca6e1049b21b84d"
GOLDEN_ALICE_FULL_ORDER20_2000MB_EVERY16 = "bbe007f5fdf547bfa8c47163d732e2619c48e3db2b8502eefebe8363c210441f"

NO_SQP = np.zeros((0, 256), np.int64)


def _alice() -> np.ndarray:
    return np.frombuffer(ALICE.read_bytes(), np.uint8)


def _shifted(data: np.ndarray) -> np.ndarray:
    """Bytes to feed so that row t of the output predicts data[t] (gmix feeds 0 first)."""
    return np.concatenate([np.zeros(1, np.uint8), data[:-1]]).astype(np.uint8)


def _check_distributions(pred: np.ndarray) -> None:
    assert pred.dtype == np.float32
    assert np.isfinite(pred).all()
    assert (pred > 0).all()
    sums = pred.astype(np.float64).sum(axis=1)
    assert np.abs(sums - 1.0).max() < 1e-4


def _digest_rows(h, sqp: np.ndarray, pred: np.ndarray) -> None:
    rows = np.concatenate(
        [sqp.astype("<u4").view(np.uint8).reshape(len(sqp), 1024),
         pred.astype("<f4").view(np.uint8).reshape(len(pred), 1024)],
        axis=1,
    )
    h.update(rows.tobytes())


# --------------------------------------------------------------------------
# (a) valid distributions
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["text", "random"])
def test_predictions_are_distributions(kind):
    if kind == "text":
        data = _alice()[:3000]
    else:
        data = np.random.default_rng(7).integers(0, 256, 3000).astype(np.uint8)
    params, state = P.ppmd_new(20, 1)
    # before any update: gmix's initial ppm_predictions
    assert np.array_equal(state.pred, np.full(256, 1 / 256, np.float32))
    pred = np.zeros((len(data), 256), np.float32)
    ppmd_run(params, state, _shifted(data), pred, NO_SQP)
    _check_distributions(pred)
    # the other entry points agree with state.pred
    out = np.zeros(256, np.float32)
    P.ppmd_byte_predictions(params, state, out)
    assert np.array_equal(out, state.pred)
    ppmd_next_byte(params, state, int(data[-1]), out)
    assert np.array_equal(out, state.pred)
    _check_distributions(out[None, :])


def test_bit_probabilities_follow_byte_distribution():
    data = _alice()[:500]
    params, state = P.ppmd_new(20, 1)
    last = 0
    for b in data:
        P.ppmd_update(params, state, last)
        last = int(b)
        bot, top = 0, 255
        prob = 1.0
        for j in range(7, -1, -1):
            p1 = float(P.ppmd_bit_probability(state.pred, bot, top))
            assert 0.0 < p1 < 1.0
            mid = bot + (top - bot) // 2
            if (b >> j) & 1:
                prob *= p1
                bot = mid + 1
            else:
                prob *= 1.0 - p1
                top = mid
        assert prob == pytest.approx(float(state.pred[b]), rel=1e-4)


# --------------------------------------------------------------------------
# (b) compiled kernels == plain-Python execution of the same source
# --------------------------------------------------------------------------

def scenarios():
    """(name, bytes to feed, arena bytes): each hits a memory-full event early.

    * random bytes, 16 KiB: RestoreModelRare succeeds at byte 1335;
    * text, 16 KiB: RestoreModelRare stalls at byte 694 (gmix would loop
      forever there) and the port's guard restarts the model.
    """
    rnd = np.random.default_rng(3).integers(0, 256, 1360).astype(np.uint8)
    txt = _alice()[:720].copy()
    return [("random16k", rnd, 16 * 1024), ("text16k", txt, 16 * 1024)]


# Runs in a subprocess with NUMBA_DISABLE_JIT=1: this test module is imported there, so `T.P` is the same source
# executed by the Python interpreter.
_REFERENCE_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    import numba
    import test_ppmd as T
    assert numba.config.DISABLE_JIT and not hasattr(T.P.ppmd_update, "py_func")
    out = {}
    for name, data, nbytes in T.scenarios():
        params, state = T.P.ppmd_new(20, memory_bytes=nbytes)
        preds = np.zeros((len(data), 256), np.float32)
        sqps = np.zeros((len(data), 256), np.int64)
        for i, b in enumerate(data):
            T.P.ppmd_update(params, state, int(b))
            preds[i] = state.pred
            sqps[i] = state.sqp
        out[name + "/pred"] = preds
        out[name + "/sqp"] = sqps
        for field, arr in zip(state._fields, state):
            out[name + "/state/" + field] = arr
    np.savez(sys.argv[2], **out)
    """
)


def test_jit_matches_plain_python(tmp_path):
    out_file = tmp_path / "reference.npz"
    env = dict(os.environ)
    env["NUMBA_DISABLE_JIT"] = "1"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    subprocess.run(
        [sys.executable, "-c", _REFERENCE_SCRIPT, str(Path(__file__).resolve().parent), str(out_file)],
        check=True,
        env=env,
        cwd=str(ROOT),
        timeout=600,
    )
    ref = np.load(out_file)
    assert hasattr(P.ppmd_update, "py_func")  # compiled here
    for name, data, nbytes in scenarios():
        params, state = P.ppmd_new(20, memory_bytes=nbytes)
        preds = np.zeros((len(data), 256), np.float32)
        sqps = np.zeros((len(data), 256), np.int64)
        ppmd_run(params, state, data, preds, sqps)
        assert np.array_equal(preds.view(np.uint32), ref[name + "/pred"].view(np.uint32)), name
        assert np.array_equal(sqps, ref[name + "/sqp"]), name
        for field, arr in zip(state._fields, state):
            if field in ("stack", "count", "cut_stack"):  # scratch
                continue
            assert np.array_equal(arr, ref[name + "/state/" + field]), (name, field)
        assert state.regs[P.R_RESTORES] >= 1, name
    # the text scenario goes through the stall guard, the random one does not
    ref_regs = {name: ref[name + "/state/regs"] for name, _, _ in scenarios()}
    assert ref_regs["text16k"][P.R_RESTARTS] >= 1
    assert ref_regs["random16k"][P.R_RESTARTS] == 0


# --------------------------------------------------------------------------
# (c) small arena on long input, bit-exact against gmix's C++
# --------------------------------------------------------------------------


def _run_and_digest(params, state, feed, chunk=16_000, check=None):
    """Feed in chunks; return (sha256 of every 16th row, sha256 of rows < 3000)."""
    assert chunk % 16 == 0 and chunk >= 3000
    h16 = hashlib.sha256()
    h3000 = hashlib.sha256()
    pred = np.zeros((chunk, 256), np.float32)
    sqp = np.zeros((chunk, 256), np.int64)
    for start in range(0, len(feed), chunk):
        part = feed[start : start + chunk]
        n = len(part)
        ppmd_run(params, state, part, pred[:n], sqp[:n])
        _check_distributions(pred[:n])
        _digest_rows(h16, sqp[:n:16], pred[:n:16])
        if start == 0:
            _digest_rows(h3000, sqp[:3000], pred[:3000])
        if check is not None:
            check()
    return h16.hexdigest(), h3000.hexdigest()


def test_1mb_arena_300kb_matches_gmix():
    data = np.concatenate([_alice(), _alice()])[:300_000]
    params, state = P.ppmd_new(20, 1)

    def check():
        used = ppmd_memory_used(params, state)
        assert 0 < used <= params.memory_bytes[0]

    every16, first3000 = _run_and_digest(params, state, _shifted(data), check=check)
    assert state.regs[P.R_RESTORES] >= 5  # the arena filled up repeatedly
    assert state.regs[P.R_RESTARTS] == 0  # ... and gmix's cut-off handled it
    assert first3000 == GOLDEN_ALICE_3000_ALL_ROWS
    assert every16 == GOLDEN_ALICE2_300K_ORDER20_1MB_EVERY16


def test_gmix_default_config_matches_gmix():
    data = _alice()
    try:
        params, state = P.ppmd_new(20, 2000)  # lazily committed 2000 MiB arena
    except MemoryError:  # pragma: no cover - strict overcommit
        pytest.skip("cannot reserve a 2000 MiB arena here")
    every16, _ = _run_and_digest(params, state, _shifted(data))
    assert every16 == GOLDEN_ALICE_FULL_ORDER20_2000MB_EVERY16
    assert state.regs[P.R_RESTORES] == 0
    del state


def test_tiny_arena_survives():
    # 16 KiB: gmix's RestoreModelRare would spin forever here; the port restarts.
    data = _alice()[:40_000]
    params, state = P.ppmd_new(20, memory_bytes=16 * 1024)
    pred = np.zeros((len(data), 256), np.float32)
    ppmd_run(params, state, _shifted(data), pred, NO_SQP)
    _check_distributions(pred)
    assert state.regs[P.R_RESTARTS] >= 1
    assert ppmd_memory_used(params, state) <= 16 * 1024


# --------------------------------------------------------------------------
# (d) layout / API contract
# --------------------------------------------------------------------------


def test_state_and_params_layout():
    params, state = P.ppmd_new(20, memory_bytes=300_000)
    expected_params = {
        "order": (np.int64, (1,)),
        "memory_bytes": (np.int64, (1,)),
        "cutoff": (np.int64, (1,)),
        "indx2units": (np.int64, (P.N_INDEXES,)),
        "units2indx": (np.int64, (129,)),
        "ns2bsindx": (np.int64, (256,)),
        "qtable": (np.int64, (260,)),
        "exp_escape": (np.int64, (16,)),
    }
    expected_state = {
        "arena": (np.uint8, (300_000,)),
        "regs": (np.int64, (P.N_REGS,)),
        "blist": (np.int64, (P.N_INDEXES + 2, 2)),
        "char_mask": (np.int64, (256,)),
        "bin_summ": (np.int64, (25, 64)),
        "see2": (np.int64, (23 * 32 + 1, 3)),
        "sq": (np.int64, (1024, 3)),
        "sqp": (np.int64, (256,)),
        "tr_f": (np.int64, (256,)),
        "tr_t": (np.int64, (256,)),
        "pred": (np.float32, (256,)),
        "stack": (np.int64, (P.STACK_SIZE,)),
        "count": (np.int64, (P.N_INDEXES,)),
        "cut_stack": (np.int64, (P.CUT_STACK_SIZE, 7)),
    }
    for tup, expected in ((params, expected_params), (state, expected_state)):
        assert tuple(tup._fields) == tuple(expected)
        for field, arr in zip(tup._fields, tup):
            dtype, shape = expected[field]
            assert isinstance(arr, np.ndarray), field
            assert arr.dtype == dtype, field
            assert arr.shape == shape, field
            assert arr.flags.c_contiguous, field
    assert params.order[0] == 20 and params.cutoff[0] == 1
    assert params.memory_bytes[0] == 300_000
    assert P.ppmd_new(20, 2)[0].memory_bytes[0] == 2 << 20
    # gmix's constant tables
    assert list(params.indx2units[:12]) == [1, 2, 3, 4, 6, 8, 10, 12, 15, 18, 21, 24]
    assert params.indx2units[-1] == 128
    assert list(params.qtable[:12]) == [0, 1, 2, 3, 4, 5, 6, 6, 7, 7, 7, 8]
    # fresh model: root context of 256 symbols at the top of the arena
    assert state.regs[P.R_MAX_CONTEXT] == 300_000 - P.UNIT_SIZE
    assert state.regs[P.R_ESC_COUNT] == 1
    assert state.regs[P.R_Y] == 1


def test_snapshot_captures_whole_state():
    data = _shifted(_alice()[:6000])
    params, state = P.ppmd_new(20, memory_bytes=200_000)
    ppmd_feed(params, state, data[:3000])
    snap = P.PpmdState(*[a.copy() for a in state])
    pred_a = np.zeros((3000, 256), np.float32)
    pred_b = np.zeros((3000, 256), np.float32)
    ppmd_run(params, state, data[3000:], pred_a, NO_SQP)
    ppmd_run(params, snap, data[3000:], pred_b, NO_SQP)
    assert np.array_equal(pred_a, pred_b)
    assert np.array_equal(state.arena, snap.arena)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        P.ppmd_new(1, 1)
    with pytest.raises(ValueError):
        P.ppmd_new(256, 1)
    with pytest.raises(ValueError):
        P.ppmd_new(20, memory_bytes=1024)
    with pytest.raises(ValueError):
        P.ppmd_new(20, memory_bytes=1 << 32)
