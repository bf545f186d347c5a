"""Test-only drivers of the PPMd port (gmixpy/models/ppmd.py): feed many bytes in one compiled call and record
what the model predicts after each, as the reference digests in test_ppmd.py need."""
from __future__ import annotations

from gmixpy._jit import njit
from gmixpy.models import ppmd as P


@njit
def ppmd_feed(params, state, data):
    """Feed every byte of `data` (uint8 array) through ppmd_update."""
    for i in range(data.shape[0]):
        P.ppmd_update(params, state, data[i])


@njit
def ppmd_run(params, state, data, pred_out, sqp_out):
    """Feed `data` (uint8[n]) and record what the model predicts after each byte: row i of `pred_out`
    (float32[n, 256]) receives state.pred after ppmd_update(params, state, data[i]), the distribution of the byte
    that follows data[i]; `sqp_out` (int64[m, 256]) receives state.sqp for rows i < m (an empty (0, 256) array
    records none).  PPMd depends on nothing but the byte history, so data = [0] + file[:-1] gives the predictions
    of a whole file."""
    for i in range(data.shape[0]):
        P.ppmd_update(params, state, data[i])
        for k in range(256):
            pred_out[i, k] = state.pred[k]
        if i < sqp_out.shape[0]:
            for k in range(256):
                sqp_out[i, k] = state.sqp[k]


@njit
def ppmd_next_byte(params, state, byte, out):
    """ppmd_update(params, state, byte), then state.pred copied to `out`."""
    P.ppmd_update(params, state, byte)
    for i in range(256):
        out[i] = state.pred[i]


def ppmd_memory_used(params, state) -> int:
    """gmix's GetUsedMemory() in bytes (ModPPMD::GetMemoryUsage adds 16)."""
    return int(P._get_used_memory(params, state)) % (1 << 64)
