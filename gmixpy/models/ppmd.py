"""PPMd (gmix's ModPPMD, src/models/mod_ppmd.cpp): the next byte's distribution from contexts of up to `order` bytes.

Port of Dmitry Shkarin's PPMd var.I as adapted by Eugene Shelwien's mod_ppmd_v3 and by the paq8/cmix/gmix
authors; gmix instantiates it as ModPPMD(..., order=20, memory=2000 /*MB*/, ...) with CutOff = 1.

predict (`ppmd_update`, at every byte boundary, with the byte just seen): gmix's UpdateByte(byte); PrepareByte().
    gmix's ModPPMD::Predict runs them whenever recent_bits == 1, which is also true before the very first byte,
    where last_byte is still 0: so the engine feeds a byte 0 before predicting byte 0, then bytes 0..n-2 before
    predicting bytes 1..n-1.  PPMd's escape-chained symbol probabilities start from the longest context: every
    symbol of a context receives escape_mass_so_far * freq / total (SEE for masked contexts, a binary SEE table
    for single-symbol contexts).  The resulting integers `sqp` (uint32, +1 per seen symbol) become the float32
    distribution `pred` as ModPPMD::Predict makes it (`ppmd_byte_predictions`): each entry converted to float32,
    floored at 1, divided by the float32 sum accumulated in index order.  Inside a byte, gmix turns `pred` into one
    bit probability per bit over a [bot, top] symbol range (`ppmd_bit_probability`, called by byte_model.py).
learn: inside `ppmd_update`: PPMd's statistics are also its position in the text, so it learns from every byte
    it sees, also when the other models are frozen (gmix counts it as running state).

State: everything mutable is in PpmdState (numpy arrays only): the sub-allocator arena (uint8[memory_bytes]; C
pointers become 32-bit byte offsets into it, 0 meaning NULL; multi-byte fields are little-endian at the same byte
offsets as in gmix's #pragma pack(1) structs, so the arena is laid out exactly like gmix's heap), the registers,
the free lists, the SEE tables, the probability outputs and three scratch arrays (`stack`, `count`, `cut_stack`:
no information survives in them between calls).  regs[R_RESTORES], regs[R_RESTARTS] and regs[R_BYTES] are
diagnostic counters that gmix does not have; they never influence the model.  PpmdParams holds the configuration
and the constant tables.  `ppmd_new` returns the model just after gmix's Init; its `pred` holds 1/256 everywhere
(gmix's initial ppm_predictions), a value gmix never uses.

Memory full: when the arena is exhausted (the text area reaches the units area, or a unit allocation fails) gmix's
RestoreModelRare runs (cutoff = 1, gmix's setting): the text area is reset, all successor links into the text are
cut, binary contexts of order >= 9 without a successor are freed, and this repeats until at most 75% of the arena
is in use.  This is ported verbatim.  One guard is added: for very small arenas (gmix itself hangs there, e.g.
64-100 KiB on English text) the 75% target can be unreachable and the loop makes no progress; after 16 passes
without a new minimum the port starts a fresh model (StartModelRare, as gmix does with cutoff = 0) and counts it
in regs[R_RESTARTS].  Arenas from 16 KiB up therefore work on inputs of any length; at 1 MiB and above, on the
inputs tested, the guard never fires and the results are gmix's.

Determinism: all integer arithmetic is done in int64 with explicit masks reproducing the C++ byte/word/uint
wrap-around and C's truncating signed division.  Every arena access is bounds-checked (reads outside the arena
return 0, writes are dropped), every table index is clamped, divisions by zero give 0, and the symbol searches and
pointer walks that gmix leaves unbounded are bounded, so no state can make the kernels touch memory outside their
arrays; these guards only matter where gmix itself would read out of bounds or crash.  The float32 sums follow the
index order of the C++ source compiled without fast-math (g++ -O2); gmix's release build uses -Ofast, which may
reassociate those sums and change the last bits (relative ~1e-6).  NUMBA_DISABLE_JIT=1 runs the same source as
plain Python (about 1-2 ms per byte), with identical results (tests/test_ppmd.py checks it).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from .._values import first_outside

# ---- constants (from mod_ppmd.cpp) -------------------------------------------------------------------------------

M8 = 0xFF
M16 = 0xFFFF
M32 = 0xFFFFFFFF

UNIT_SIZE = 12  # bytes per allocation unit (= sizeof(PPM_CONTEXT))
N1, N2, N3 = 4, 4, 4
N4 = (128 + 3 - 1 * N1 - 2 * N2 - 3 * N3) // 4
N_INDEXES = N1 + N2 + N3 + N4  # 38 block-size classes
MAX_O = 256  # maximum model order supported by the CreateSuccessors stack
MAX_FREQ = 124
O_BOUND = 9
UP_FREQ = 5
PERIOD_BITS = 7
INT_BITS = 7
TOT_BITS = INT_BITS + PERIOD_BITS
INTERVAL = 1 << INT_BITS
BIN_SCALE = 1 << TOT_BITS
SCALE = 1 << 15
LOW_UNITS = 128 * 1024  # FreeUnit / MoveUnitsUp threshold above UnitsStart
RESTORE_STALL_PASSES = 16  # guard, see _restore_model

SEE_ROWS = 23
SEE_COLS = 32
SEE_DUMMY = SEE_ROWS * SEE_COLS  # index of DummySEE2Cont in the see2 table
SQ_SIZE = 1024
STACK_SIZE = MAX_O + 4
CUT_STACK_SIZE = MAX_O + 4

ESC_COEF = (16, -10, 1, 51, 14, 89, 23, 35, 64, 26, -42, 43)
EXP_ESCAPE = (51, 43, 18, 12, 11, 9, 8, 7, 6, 5, 4, 3, 3, 2, 2, 2)

# Register indices into PpmdState.regs (int64 array).  C type in brackets.
R_PTEXT = 0  # [byte*] next free byte of the text area (offset)
R_UNITS_START = 1  # [byte*] start of the units area (offset)
R_LO_UNIT = 2  # [byte*] low end of the never-used gap (offset)
R_HI_UNIT = 3  # [byte*] high end of the never-used gap (offset)
R_AUX_UNIT = 4  # [byte*] scratch unit used during cut-off (offset)
R_GLUE_COUNT = 5  # [uint] allocations until next GlueFreeBlocks
R_GLUE_COUNT1 = 6  # [uint] number of glue passes since restore
R_FOUND_STATE = 7  # [STATE*] state of the last coded symbol (offset, 0=NULL)
R_MAX_CONTEXT = 8  # [PPM_CONTEXT*] current longest context (offset)
R_SAVED_PC = 9  # [PPM_CONTEXT*] context where the last UpdateModel failed
R_ORDER_FALL = 10  # [int] PPMd OrderFall
R_ESC_COUNT = 11  # [uint] CharMask generation counter
R_BSUMM = 12  # [int] last binary-SEE value read (BSumm)
R_RUN_LENGTH = 13  # [int] RunLength
R_INIT_RL = 14  # [int] InitRL = -min(order, 13)
R_NUM_MASKED = 15  # [int] NumMasked
R_PREV_SUCCESS = 16  # [int] PrevSuccess (0/1)
R_SQ_PTR = 17  # [uint] number of valid entries in sq
R_CXT = 18  # [uint] gmix's unused bit context register (always 0)
R_Y = 19  # [uint] gmix's unused previous-bit register (always 1)
R_RESTORES = 20  # diagnostic (not gmix state): RestoreModelRare calls
R_RESTARTS = 21  # diagnostic (not gmix state): StartModelRare calls after init
R_BYTES = 22  # diagnostic (not gmix state): ppmd_update calls
N_REGS = 23

# Handles for free-list heads living outside the arena (BList[] and the temporary list head s0 of GlueFreeBlocks):
# -(row+1); heap nodes use their (non-negative) arena offset.
S0_ROW = N_INDEXES + 1


# ---- containers --------------------------------------------------------------------------------------------------


class PpmdParams(NamedTuple):
    """Immutable configuration and constant tables."""

    order: np.ndarray  # int64[1], maximum context order (gmix: 20), 2..255
    memory_bytes: np.ndarray  # int64[1], arena size in bytes (gmix: 2000 << 20)
    cutoff: np.ndarray  # int64[1], 1 = RestoreModelRare when full (gmix), 0 = restart model
    indx2units: np.ndarray  # int64[38], Indx2Units: units of block-size class i
    units2indx: np.ndarray  # int64[129], Units2Indx: class for (units-1); [128]=0 (C array overrun alias)
    ns2bsindx: np.ndarray  # int64[256], NS2BSIndx: binary-SEE column offset by suffix NumStats
    qtable: np.ndarray  # int64[260], QTable: frequency quantiser
    exp_escape: np.ndarray  # int64[16], ExpEscape: initial escape for newly non-binary contexts


class PpmdState(NamedTuple):
    """Entire mutable PPMd state (numpy arrays only)."""

    arena: np.ndarray  # uint8[memory_bytes], gmix's HeapStart[]: text area + units; pointers are offsets (0 = NULL)
    regs: np.ndarray  # int64[N_REGS], scalar registers, see R_* constants (C unsigned values kept in [0, 2**32))
    blist: np.ndarray  # int64[N_INDEXES + 2, 2], free-list heads [Stamp (uint, count), NextIndx (offset)];
    #                    row 39 = GlueFreeBlocks' s0
    char_mask: np.ndarray  # int64[256], CharMask (uint): symbol masked iff char_mask[c] == regs[R_ESC_COUNT]
    bin_summ: np.ndarray  # int64[25, 64], BinSumm (word): binary-context SEE probabilities, scale 2**14
    see2: np.ndarray  # int64[737, 3], SEE2Cont[23][32] flattened + DummySEE2Cont at row 736;
    #                   cols [Summ (word), Shift (byte), Count (byte)]
    sq: np.ndarray  # int64[1024, 3], SQ: [sym (256 = escape), freq, total] (words), first regs[R_SQ_PTR] valid
    sqp: np.ndarray  # int64[256], sqp (uint): integer symbol probabilities of the next byte (scale ~2**32)
    tr_f: np.ndarray  # int64[256], trF (uint): binary tree of sqp, sum of the left (0-bit) subtree at node j
    tr_t: np.ndarray  # int64[256], trT (uint): binary tree of sqp, total of the subtree at node j
    pred: np.ndarray  # float32[256], gmix's ppm_predictions: next-byte distribution (1/256 before the first update)
    stack: np.ndarray  # int64[260], scratch for CreateSuccessors' ps[] (contents meaningless between calls)
    count: np.ndarray  # int64[38], scratch for ExpandTextArea's Count[] (contents meaningless between calls)
    cut_stack: np.ndarray  # int64[260, 7], scratch frame stack of the (de-recursed) cutOff traversal
    PER_BIT = ()  # updated once per byte, at the byte boundary: the arena is never copied (see generate.py)


_POINTER_REGS = (R_PTEXT, R_UNITS_START, R_LO_UNIT, R_HI_UNIT, R_AUX_UNIT, R_FOUND_STATE, R_MAX_CONTEXT, R_SAVED_PC)
_U32_REGS = (R_GLUE_COUNT, R_GLUE_COUNT1, R_ESC_COUNT)


def ppmd_check(params: PpmdParams, state: PpmdState) -> str | None:
    """The first stored value out of range, or None.  The arena itself may hold any bytes (every access to it is
    bounds-checked and every pointer walk bounded), but the registers and free-list heads must point into it,
    the SEE and probability tables must hold the C widths they stand for, and list handles must not be negative
    (a negative handle names a row of `blist`)."""
    size = int(params.memory_bytes[0])
    regs = state.regs
    return first_outside([
        ("stm.ppmd.regs (pointer)", regs[list(_POINTER_REGS)], 0, size),
        ("stm.ppmd.regs (counter)", regs[list(_U32_REGS)], 0, M32),
        ("stm.ppmd.regs (sq_ptr)", regs[R_SQ_PTR:R_SQ_PTR + 1], 0, SQ_SIZE),
        ("stm.ppmd.regs (num_masked)", regs[R_NUM_MASKED:R_NUM_MASKED + 1], 0, 255),
        ("stm.ppmd.regs (prev_success)", regs[R_PREV_SUCCESS:R_PREV_SUCCESS + 1], 0, 1),
        ("stm.ppmd.regs (bsumm)", regs[R_BSUMM:R_BSUMM + 1], 0, M16),
        ("stm.ppmd.regs (init_rl)", regs[R_INIT_RL:R_INIT_RL + 1], -13, 0),
        ("stm.ppmd.regs (run_length)", regs[R_RUN_LENGTH:R_RUN_LENGTH + 1], -(1 << 31), (1 << 31) - 1),
        ("stm.ppmd.regs (order_fall)", regs[R_ORDER_FALL:R_ORDER_FALL + 1], -(1 << 31), (1 << 31) - 1),
        ("stm.ppmd.regs (diagnostic)", regs[R_RESTORES:], 0, np.iinfo(np.int64).max),
        ("stm.ppmd.blist (stamp)", state.blist[:, 0], 0, M32),
        ("stm.ppmd.blist (next)", state.blist[:, 1], 0, size),
        ("stm.ppmd.char_mask", state.char_mask, 0, M32),
        ("stm.ppmd.bin_summ", state.bin_summ, 0, M16),
        ("stm.ppmd.see2", state.see2[:, 0], 0, M16),
        ("stm.ppmd.see2", state.see2[:, 1:], 0, M8),
        ("stm.ppmd.sq", state.sq[:, 0], 0, 256),
        ("stm.ppmd.sq", state.sq[:, 1:], 0, M16),
        ("stm.ppmd.sqp", state.sqp, 0, M32),
        ("stm.ppmd.tr_f", state.tr_f, 0, M32),
        ("stm.ppmd.tr_t", state.tr_t, 0, M32),
        ("stm.ppmd.pred", state.pred, 0.0, 1.0),
    ])


# ---- arena access (little-endian, bounds-checked) ----------------------------------------------------------------


@njit
def _r8(a, o):
    if o >= 0 and o < a.shape[0]:
        return np.int64(a[o])
    return 0


@njit
def _r16(a, o):
    if o >= 0 and o + 2 <= a.shape[0]:
        return np.int64(a[o]) | (np.int64(a[o + 1]) << 8)
    return 0


@njit
def _r32(a, o):
    if o >= 0 and o + 4 <= a.shape[0]:
        return np.int64(a[o]) | (np.int64(a[o + 1]) << 8) | (np.int64(a[o + 2]) << 16) | (np.int64(a[o + 3]) << 24)
    return 0


@njit
def _w8(a, o, v):
    if o >= 0 and o < a.shape[0]:
        a[o] = v & 0xFF


@njit
def _w16(a, o, v):
    if o >= 0 and o + 2 <= a.shape[0]:
        a[o] = v & 0xFF
        a[o + 1] = (v >> 8) & 0xFF


@njit
def _w32(a, o, v):
    if o >= 0 and o + 4 <= a.shape[0]:
        a[o] = v & 0xFF
        a[o + 1] = (v >> 8) & 0xFF
        a[o + 2] = (v >> 16) & 0xFF
        a[o + 3] = (v >> 24) & 0xFF


@njit
def _copy(a, dst, src, n):
    """memcpy of n bytes inside the arena (regions never overlap in PPMd)."""
    if dst >= 0 and src >= 0 and dst + n <= a.shape[0] and src + n <= a.shape[0]:
        for k in range(n):
            a[dst + k] = a[src + k]


@njit
def _swap_states(a, s1, s2):
    """Swap two 6-byte STATE records."""
    for k in range(6):
        if s1 + k >= 0 and s1 + k < a.shape[0] and s2 + k >= 0 and s2 + k < a.shape[0]:
            t = a[s1 + k]
            a[s1 + k] = a[s2 + k]
            a[s2 + k] = t


@njit
def _cdiv(x, y):
    """C signed integer division (truncates toward zero); y == 0 -> 0 (C: SIGFPE)."""
    if y == 0:
        return 0
    q = abs(x) // abs(y)
    if (x < 0) != (y < 0):
        return -q
    return q


@njit
def _udiv(x, y):
    """Unsigned division of already-masked values; y == 0 -> 0 (C: SIGFPE)."""
    if y == 0:
        return 0
    return x // y


@njit(inline="always")
def _u2i(pr, nu):
    """Units2Indx[nu - 1] with the index clamped into the table."""
    k = nu - 1
    if k < 0:
        k = 0
    elif k > 128:
        k = 128
    return pr.units2indx[k]


@njit(inline="always")
def _qt(pr, i):
    if i < 0:
        i = 0
    elif i > 259:
        i = 259
    return pr.qtable[i]


# ---- sub-allocator -----------------------------------------------------------------------------------------------


@njit(inline="always")
def _node_next(st, h):
    if h < 0:
        if -h - 1 <= S0_ROW:  # guard: a list head, never a pointer that went below 0 in a damaged model
            return st.blist[-h - 1, 1]
        return 0
    return _r32(st.arena, h + 4)


@njit(inline="always")
def _node_set_next(st, h, v):
    if h < 0:
        if -h - 1 <= S0_ROW:
            st.blist[-h - 1, 1] = v
    else:
        _w32(st.arena, h + 4, v)


@njit(inline="always")
def _walk_limit(pr):
    """More steps than any walk over distinct blocks or contexts can take (each is at least a unit, and a walk
    counts at most two steps per block: a look and a move): the bound that makes a cycle in a damaged arena end
    instead of spinning forever.  Never reached by a model that gmixpy itself wrote."""
    return 2 * (pr.memory_bytes[0] // UNIT_SIZE) + 2 * N_INDEXES + 4


@njit(inline="always")
def _bl_remove(st, row):
    """remove(&BList[row]): pop the first block of a list."""
    p = st.blist[row, 1]
    st.blist[row, 1] = _r32(st.arena, p + 4)
    st.blist[row, 0] = (st.blist[row, 0] - 1) & M32
    return p


@njit(inline="always")
def _bl_insert(st, row, p, nu):
    """insert(&BList[row], p, nu): push a free block of nu units."""
    a = st.arena
    _w32(a, p + 4, st.blist[row, 1])
    st.blist[row, 1] = p
    _w32(a, p, M32)
    _w32(a, p + 8, nu)
    st.blist[row, 0] = (st.blist[row, 0] + 1) & M32


@njit
def _init_suballocator(pr, st):
    st.blist[:, :] = 0
    size = pr.memory_bytes[0]
    r = st.regs
    r[R_PTEXT] = 0
    r[R_HI_UNIT] = size
    diff = size // 8 // UNIT_SIZE * 7 * UNIT_SIZE
    r[R_UNITS_START] = size - diff
    r[R_LO_UNIT] = size - diff
    r[R_GLUE_COUNT] = 0
    r[R_GLUE_COUNT1] = 0


@njit
def _get_used_memory(pr, st):
    """GetUsedMemory (signed; negative means the C qword wrapped)."""
    r = st.regs
    used = pr.memory_bytes[0] - (r[R_HI_UNIT] - r[R_LO_UNIT]) - (r[R_UNITS_START] - r[R_PTEXT])
    for i in range(N_INDEXES):
        used -= ((pr.indx2units[i] * st.blist[i, 0]) & M32) * 12
    return used


@njit
def _glue_free_blocks(pr, st):
    a = st.arena
    r = st.regs
    if r[R_LO_UNIT] != r[R_HI_UNIT]:
        _w8(a, r[R_LO_UNIT], 0)
    s0 = -(S0_ROW + 1)
    st.blist[S0_ROW, 1] = 0
    p0 = s0
    limit = _walk_limit(pr)
    steps = 0
    for i in range(N_INDEXES + 1):
        while st.blist[i, 1] != 0:
            steps += 1
            if steps > limit:  # guard: a cycle in a damaged free list
                st.blist[i, 1] = 0
                break
            p = _bl_remove(st, i)
            nu = _r32(a, p + 8)
            if nu != 0:
                while True:
                    p1 = p + UNIT_SIZE * nu
                    if _r32(a, p1) != M32:
                        break
                    nu1 = _r32(a, p1 + 8)
                    if nu1 == 0:  # guard: C would spin forever here
                        break
                    nu = (nu + nu1) & M32
                    _w32(a, p + 8, nu)
                    _w32(a, p1 + 8, 0)
                # link(p0, p)
                _w32(a, p + 4, _node_next(st, p0))
                _node_set_next(st, p0, p)
                p0 = p
    steps = 0
    while st.blist[S0_ROW, 1] != 0:
        steps += 1
        if steps > limit:  # guard, as above
            st.blist[S0_ROW, 1] = 0
            break
        p = _bl_remove(st, S0_ROW)
        sz = _r32(a, p + 8)
        if sz != 0:
            while sz > 128:
                _bl_insert(st, N_INDEXES - 1, p, 128)
                sz -= 128
                p += 128 * UNIT_SIZE
            i = _u2i(pr, sz)
            if pr.indx2units[i] != sz:
                i -= 1
                k = sz - pr.indx2units[i]
                _bl_insert(st, k - 1, p + (sz - k) * UNIT_SIZE, k)
            _bl_insert(st, i, p, pr.indx2units[i])
    g1 = r[R_GLUE_COUNT1]
    r[R_GLUE_COUNT] = (1 << ((13 + g1) & 31)) & M32
    r[R_GLUE_COUNT1] = (g1 + 1) & M32


@njit
def _split_block(pr, st, pv, old_indx, new_indx):
    udiff = pr.indx2units[old_indx] - pr.indx2units[new_indx]
    p = pv + UNIT_SIZE * pr.indx2units[new_indx]
    i = _u2i(pr, udiff)
    if pr.indx2units[i] != udiff:
        i -= 1
        k = pr.indx2units[i]
        _bl_insert(st, i, p, k)
        p += UNIT_SIZE * k
        udiff -= k
    _bl_insert(st, _u2i(pr, udiff), p, udiff)


@njit
def _alloc_units_rare(pr, st, indx):
    r = st.regs
    i = indx
    while True:
        i += 1
        if i == N_INDEXES:
            gc = r[R_GLUE_COUNT]
            r[R_GLUE_COUNT] = (gc - 1) & M32
            if gc == 0:
                _glue_free_blocks(pr, st)
                i = indx
                if st.blist[i, 1] != 0:
                    return _bl_remove(st, i)
            else:
                nbytes = UNIT_SIZE * pr.indx2units[indx]
                if r[R_UNITS_START] - r[R_PTEXT] > nbytes:
                    r[R_UNITS_START] -= nbytes
                    return r[R_UNITS_START]
                return 0
        if i > N_INDEXES:  # unreachable guard
            return 0
        if st.blist[i, 1] != 0:
            break
    ret = _bl_remove(st, i)
    _split_block(pr, st, ret, i, indx)
    return ret


@njit
def _alloc_units(pr, st, nu):
    r = st.regs
    indx = _u2i(pr, nu)
    if st.blist[indx, 1] != 0:
        return _bl_remove(st, indx)
    ret = r[R_LO_UNIT]
    nb = UNIT_SIZE * pr.indx2units[indx]
    if ret + nb <= r[R_HI_UNIT]:
        r[R_LO_UNIT] = ret + nb
        return ret
    return _alloc_units_rare(pr, st, indx)


@njit
def _alloc_context(pr, st):
    r = st.regs
    if r[R_HI_UNIT] != r[R_LO_UNIT]:
        r[R_HI_UNIT] -= UNIT_SIZE
        return r[R_HI_UNIT]
    if st.blist[0, 1] != 0:
        return _bl_remove(st, 0)
    return _alloc_units_rare(pr, st, 0)


@njit(inline="always")
def _free_units(pr, st, ptr, nu):
    indx = _u2i(pr, nu)
    _bl_insert(st, indx, ptr, pr.indx2units[indx])


@njit(inline="always")
def _free_unit(pr, st, ptr):
    row = 0 if ptr > st.regs[R_UNITS_START] + LOW_UNITS else N_INDEXES
    _bl_insert(st, row, ptr, 1)


@njit
def _expand_units(pr, st, old_ptr, old_nu):
    i0 = _u2i(pr, old_nu)
    i1 = _u2i(pr, old_nu + 1)
    if i0 == i1:
        return old_ptr
    ptr = _alloc_units(pr, st, old_nu + 1)
    if ptr != 0:
        _copy(st.arena, ptr, old_ptr, UNIT_SIZE * old_nu)
        _bl_insert(st, i0, old_ptr, old_nu)
    return ptr


@njit
def _shrink_units(pr, st, old_ptr, old_nu, new_nu):
    i0 = _u2i(pr, old_nu)
    i1 = _u2i(pr, new_nu)
    if i0 == i1:
        return old_ptr
    if st.blist[i1, 1] != 0:
        ptr = _bl_remove(st, i1)
        _copy(st.arena, ptr, old_ptr, UNIT_SIZE * new_nu)
        _bl_insert(st, i0, old_ptr, pr.indx2units[i0])
        return ptr
    _split_block(pr, st, old_ptr, i0, i1)
    return old_ptr


@njit
def _move_units_up(pr, st, old_ptr, nu):
    indx = _u2i(pr, nu)
    if old_ptr > st.regs[R_UNITS_START] + LOW_UNITS or old_ptr > st.blist[indx, 1]:
        return old_ptr
    ptr = _bl_remove(st, indx)
    _copy(st.arena, ptr, old_ptr, UNIT_SIZE * nu)
    _bl_insert(st, N_INDEXES, old_ptr, pr.indx2units[indx])
    return ptr


@njit
def _prepare_text_area(pr, st):
    r = st.regs
    aux = _alloc_context(pr, st)
    if aux == 0:
        aux = r[R_UNITS_START]
    elif aux == r[R_UNITS_START]:
        r[R_UNITS_START] += UNIT_SIZE
        aux = r[R_UNITS_START]
    r[R_AUX_UNIT] = aux


@njit
def _expand_text_area(pr, st):
    a = st.arena
    r = st.regs
    cnt = st.count
    cnt[:] = 0
    if r[R_AUX_UNIT] != r[R_UNITS_START]:
        if _r32(a, r[R_AUX_UNIT]) != M32:
            r[R_UNITS_START] += UNIT_SIZE
        else:
            _bl_insert(st, 0, r[R_AUX_UNIT], 1)
    nfound = 0
    us = r[R_UNITS_START]
    while _r32(a, us) == M32:
        nu = _r32(a, us + 8)
        if nu == 0:  # guard: C would spin forever here
            break
        cnt[_u2i(pr, nu)] += 1
        nfound += 1
        _w32(a, us, 0)
        us = us + UNIT_SIZE * nu
    r[R_UNITS_START] = us
    if nfound == 0:
        return
    # drop the swallowed blocks from the low-address list BList[N_INDEXES]
    h = -(N_INDEXES + 1)
    limit = _walk_limit(pr)
    steps = 0
    while _node_next(st, h) != 0 and steps <= limit:  # guard: a cycle in a damaged free list
        steps += 1
        while steps <= limit:
            steps += 1
            n = _node_next(st, h)
            if n == 0 or _r32(a, n) != 0:
                break
            k = _u2i(pr, _r32(a, n + 8))
            cnt[k] = (cnt[k] - 1) & M32
            _node_set_next(st, h, _r32(a, n + 4))
            st.blist[N_INDEXES, 0] = (st.blist[N_INDEXES, 0] - 1) & M32
        n = _node_next(st, h)
        if n == 0:
            break
        h = n
    # ... and from the size-class lists
    for i in range(N_INDEXES):
        h = -(i + 1)
        steps = 0
        while cnt[i] != 0 and steps <= limit:  # guard, as above
            steps += 1
            while steps <= limit:
                steps += 1
                n = _node_next(st, h)
                if n == 0 or _r32(a, n) != 0:
                    break
                _node_set_next(st, h, _r32(a, n + 4))
                st.blist[i, 0] = (st.blist[i, 0] - 1) & M32
                cnt[i] = (cnt[i] - 1) & M32
                if cnt[i] == 0:
                    break
            n = _node_next(st, h)
            if n == 0:  # guard: list exhausted (C would walk into garbage)
                cnt[i] = 0
                break
            h = n


# ---- model -------------------------------------------------------------------------------------------------------
# Records in the arena:
#   PPM_CONTEXT (12 bytes): +0 NumStats u8, +1 Flags u8, +2 SummFreq u16, +4 iStats u32, +8 iSuffix u32; oneState at +2.
#   STATE (6 bytes):        +0 Symbol u8, +1 Freq u8, +2 iSuccessor u32.
#   free block (12 bytes):  +0 Stamp u32, +4 NextIndx u32, +8 NU u32.


@njit
def _see_init(st, i, init_val):
    st.see2[i, 1] = PERIOD_BITS - 4
    st.see2[i, 0] = (init_val << (PERIOD_BITS - 4)) & M16
    st.see2[i, 2] = 7


@njit(inline="always")
def _see_update(st, i):
    c = (st.see2[i, 2] - 1) & M8
    st.see2[i, 2] = c
    if c == 0:
        summ = st.see2[i, 0]
        shift = st.see2[i, 1]
        m = summ >> shift
        k = PERIOD_BITS - (1 if m > 40 else 0) - (1 if m > 280 else 0) - (1 if m > 1020 else 0)
        if k < shift:
            summ >>= 1
            shift -= 1
        elif k > shift:
            summ = (summ << 1) & M16
            shift += 1
        st.see2[i, 0] = summ
        st.see2[i, 1] = shift & M8
        st.see2[i, 2] = (5 << (shift & M8)) & M8


@njit(inline="always")
def _see_index(pr, st, q, cnum):
    """Row of SEE2Cont used by a masked context with cnum+1 symbols."""
    a = st.arena
    if cnum == 0xFF:
        return SEE_DUMMY
    idx = (_qt(pr, cnum + 3) - 4) * SEE_COLS
    if _r16(a, q + 2) > 10 * (cnum + 1):
        idx += 1
    if 2 * cnum < _r8(a, _r32(a, q + 8)) + st.regs[R_NUM_MASKED]:
        idx += 2
    idx += _r8(a, q + 1)
    if idx < 0:
        idx = 0
    elif idx >= SEE_DUMMY:
        idx = SEE_DUMMY - 1
    return idx


@njit
def _start_model(pr, st):
    """StartModelRare (order >= 2)."""
    a = st.arena
    r = st.regs
    st.char_mask[:] = 0
    r[R_ESC_COUNT] = 1
    order = pr.order[0]
    r[R_ORDER_FALL] = order
    _init_suballocator(pr, st)
    r[R_INIT_RL] = -(order if order < 13 else 13)
    r[R_RUN_LENGTH] = r[R_INIT_RL]
    mc = _alloc_context(pr, st)
    _w8(a, mc, 255)
    _w16(a, mc + 2, 255 + 2)
    stats = _alloc_units(pr, st, 256 // 2)
    _w32(a, mc + 4, stats)
    _w8(a, mc + 1, 0)
    _w32(a, mc + 8, 0)
    r[R_MAX_CONTEXT] = mc
    r[R_PREV_SUCCESS] = 0
    for i in range(256):
        s = stats + 6 * i
        _w8(a, s, i)
        _w8(a, s + 1, 1)
        _w32(a, s + 2, 0)
    # i2f: quantised frequency -> representative frequency
    i2f = np.zeros(25, np.int64)
    k = 0
    for i in range(25):
        while pr.qtable[k] == i:
            k += 1
        i2f[i] = k + 1
    for k in range(64):
        s = 0
        for i in range(6):
            s += ESC_COEF[2 * i + ((k >> i) & 1)]
        if s < 32:
            s = 32
        elif s > 256 - 32:
            s = 256 - 32
        s = 128 * s
        for i in range(25):
            st.bin_summ[i, k] = (BIN_SCALE - s // i2f[i]) & M16
    for i in range(SEE_ROWS):
        for k in range(SEE_COLS):
            _see_init(st, i * SEE_COLS + k, 8 * i + 5)


@njit
def _rescale(pr, st, q, fs):
    """rescale(q, OrderFall, FoundState); returns the new FoundState."""
    a = st.arena
    r = st.regs
    flags = _r8(a, q + 1) & 0x14
    stats = _r32(a, q + 4)
    t_sym = _r8(a, fs)
    t_freq = _r8(a, fs + 1)
    t_succ = _r32(a, fs + 2)
    p = fs
    if p - stats > 6 * 255:  # guard: a damaged FoundState far from its context's states (at most 256 of them)
        p = stats
    while p > stats:
        _copy(a, p, p - 6, 6)
        p -= 6
    p = stats
    _w8(a, p, t_sym)
    _w8(a, p + 1, t_freq)
    _w32(a, p + 2, t_succ)
    of = 1 if r[R_ORDER_FALL] != 0 else 0
    f0 = t_freq
    sf = _r16(a, q + 2)
    esc = sf - f0
    v = ((f0 + of) >> 1) & M8
    _w8(a, p + 1, v)
    summ = v
    ns = _r8(a, q)
    for _i in range(ns):
        p += 6
        f = _r8(a, p + 1)
        esc -= f
        f = (f + of) >> 1
        _w8(a, p + 1, f)
        summ = (summ + f) & M16
        if f != 0 and _r8(a, p) >= 0x40:
            flags |= 0x08
        if f > _r8(a, p - 6 + 1):
            s_sym = _r8(a, p)
            s_freq = _r8(a, p + 1)
            s_succ = _r32(a, p + 2)
            p1 = p
            while p1 > stats and s_freq > _r8(a, p1 - 6 + 1):
                _copy(a, p1, p1 - 6, 6)
                p1 -= 6
            _w8(a, p1, s_sym)
            _w8(a, p1 + 1, s_freq)
            _w32(a, p1 + 2, s_succ)
    if _r8(a, p + 1) == 0:
        i = 0
        while p >= stats and _r8(a, p + 1) == 0:
            i += 1
            p -= 6
        esc += i
        nu = (ns + 2) >> 1
        ns = (ns - i) & M8
        _w8(a, q, ns)
        if ns == 0:
            t_sym = _r8(a, stats)
            t_freq = _r8(a, stats + 1)
            t_succ = _r32(a, stats + 2)
            nf = _cdiv(2 * t_freq + esc - 1, esc)
            if nf > MAX_FREQ // 3:
                nf = MAX_FREQ // 3
            flags &= 0x18
            _free_units(pr, st, stats, nu)
            _w8(a, q + 1, flags)
            _w16(a, q + 2, summ)
            _w8(a, q + 2, t_sym)
            _w8(a, q + 3, nf)
            _w32(a, q + 4, t_succ)
            return q + 2
        stats = _shrink_units(pr, st, stats, nu, (ns + 2) >> 1)
        _w32(a, q + 4, stats)
    summ = (summ + ((esc + 1) >> 1)) & M16
    if r[R_ORDER_FALL] != 0 or (flags & 0x04) == 0:
        sf -= esc
        d = sf - f0
        num = f0 * summ - sf * _r8(a, stats + 1) + d - 1
        inc = _cdiv(num, d) & M32
        if inc < 2:
            inc = 2
        elif inc > MAX_FREQ // 2 - 18:
            inc = MAX_FREQ // 2 - 18
    else:
        inc = 2
    fs = stats
    _w8(a, fs + 1, _r8(a, fs + 1) + inc)
    summ = (summ + inc) & M16
    flags |= 0x04
    _w16(a, q + 2, summ)
    _w8(a, q + 1, flags)
    return fs


# cutOff frame layout (rows of PpmdState.cut_stack) and resume points.
CF_Q, CF_ORDER, CF_PHASE, CF_P0, CF_I, CF_P, CF_NU = 0, 1, 2, 3, 4, 5, 6
PH_START, PH_BIN_RET, PH_LOOP, PH_LOOP_RET = 0, 1, 2, 3


@njit
def _cut_off(pr, st, root, max_order):
    """cutOff(root, 0, max_order); returns the new offset of root (or 0).  gmix's cutOff recurses into every
    successor context; this is the same traversal with an explicit frame stack (Numba cannot cache recursive
    functions), so all side effects happen in exactly the same order."""
    a = st.arena
    r = st.regs
    fr = st.cut_stack
    pushes = 0
    limit = _walk_limit(pr)  # guard: a damaged tree sharing or looping successors is cut, not walked forever
    depth = 1
    fr[0, CF_Q] = root
    fr[0, CF_ORDER] = 0
    fr[0, CF_PHASE] = PH_START
    ret = 0
    while depth > 0:
        f = depth - 1
        q = fr[f, CF_Q]
        order = fr[f, CF_ORDER]
        phase = fr[f, CF_PHASE]
        us = r[R_UNITS_START]
        # outcome of this step: 0 = pushed a child, 1 = return `value`, 2 = continue with the common tail (root /
        # suffix fix-up)
        outcome = 2
        value = 0
        if phase == PH_START and _r8(a, q) == 0:
            p = q + 2
            if _r32(a, p + 2) >= us:
                if order < max_order and depth < CUT_STACK_SIZE and pushes < limit:
                    pushes += 1
                    fr[f, CF_PHASE] = PH_BIN_RET
                    fr[depth, CF_Q] = _r32(a, p + 2)
                    fr[depth, CF_ORDER] = order + 1
                    fr[depth, CF_PHASE] = PH_START
                    depth += 1
                    continue
                _w32(a, p + 2, 0)
                if order >= O_BOUND:
                    _free_unit(pr, st, q)
                    outcome = 1
            else:
                _free_unit(pr, st, q)
                outcome = 1
        elif phase == PH_BIN_RET:
            _w32(a, q + 4, ret)
            if ret == 0 and order >= O_BOUND:
                _free_unit(pr, st, q)
                outcome = 1
        else:
            if phase == PH_START:
                nu = (_r8(a, q) + 2) >> 1
                p0 = _move_units_up(pr, st, _r32(a, q + 4), nu)
                _w32(a, q + 4, p0)
                i = _r8(a, q)
                p = p0 + 6 * i
            else:
                nu = fr[f, CF_NU]
                p0 = fr[f, CF_P0]
                i = fr[f, CF_I]
                p = fr[f, CF_P]
                if phase == PH_LOOP_RET:
                    _w32(a, p + 2, ret)
                    p -= 6
            pushed = False
            while p >= p0:
                if _r32(a, p + 2) < us:
                    _w32(a, p + 2, 0)
                    _swap_states(a, p, p0 + 6 * i)
                    i -= 1
                elif order < max_order and depth < CUT_STACK_SIZE and pushes < limit:
                    pushes += 1
                    fr[f, CF_PHASE] = PH_LOOP_RET
                    fr[f, CF_NU] = nu
                    fr[f, CF_P0] = p0
                    fr[f, CF_I] = i
                    fr[f, CF_P] = p
                    fr[depth, CF_Q] = _r32(a, p + 2)
                    fr[depth, CF_ORDER] = order + 1
                    fr[depth, CF_PHASE] = PH_START
                    depth += 1
                    pushed = True
                    break
                else:
                    _w32(a, p + 2, 0)
                p -= 6
            if pushed:
                continue
            ns = _r8(a, q)
            if i != ns and order > 0:
                _w8(a, q, i)
                p = p0
                if i < 0:
                    _free_units(pr, st, p, nu)
                    _free_unit(pr, st, q)
                    outcome = 1
                elif i == 0:
                    fl = (_r8(a, q + 1) & 0x10) + (0x08 if _r8(a, p) >= 0x40 else 0)
                    _w8(a, q + 1, fl)
                    fq = _r8(a, p + 1)
                    _w8(a, p + 1, 1 + _cdiv(2 * (fq - 1), _r16(a, q + 2) - fq))
                    _copy(a, q + 2, p, 6)
                    _free_units(pr, st, p, nu)
                else:
                    p = _shrink_units(pr, st, p0, nu, (i + 2) >> 1)
                    _w32(a, q + 4, p)
                    summ = _r16(a, q + 2)
                    scale = summ > 16 * i
                    fl = _r8(a, q + 1) & (0x14 if scale else 0x10)
                    if scale:
                        esc = summ
                        summ = 0
                        for k in range(i + 1):
                            s = p + 6 * k
                            fq = _r8(a, s + 1)
                            esc -= fq
                            fq = (fq + 1) >> 1
                            _w8(a, s + 1, fq)
                            summ += fq
                            if _r8(a, s) >= 0x40:
                                fl |= 0x08
                        esc = (esc + 1) >> 1
                        summ += esc
                        _w16(a, q + 2, summ)
                    else:
                        for k in range(i + 1):
                            if _r8(a, p + 6 * k) >= 0x40:
                                fl |= 0x08
                    _w8(a, q + 1, fl)
        if outcome == 2:
            if q == r[R_UNITS_START]:
                _copy(a, r[R_AUX_UNIT], q, UNIT_SIZE)
                value = r[R_AUX_UNIT]
            else:
                if _r32(a, q + 8) == r[R_UNITS_START]:
                    _w32(a, q + 8, r[R_AUX_UNIT])
                value = q
        ret = value
        depth -= 1
    return ret


@njit
def _restore_model(pr, st):
    """RestoreModelRare: free ~25% of the arena by cutting text links."""
    a = st.arena
    r = st.regs
    r[R_RESTORES] += 1
    r[R_PTEXT] = 0
    pc = r[R_SAVED_PC]
    mc = r[R_MAX_CONTEXT]
    guard = 0
    while guard <= MAX_O:
        guard += 1
        if _r8(a, mc) == 1 and mc != pc:
            p = _r32(a, mc + 4)
            if _r32(a, p + 6 + 2) >= r[R_UNITS_START]:
                break
        else:
            break
        fl = (_r8(a, mc + 1) & 0x10) + (0x08 if _r8(a, p) >= 0x40 else 0)
        _w8(a, mc + 1, fl)
        _w8(a, p + 1, (_r8(a, p + 1) + 1) >> 1)
        _copy(a, mc + 2, p, 6)
        _w8(a, mc, 0)
        _free_units(pr, st, p, 1)
        mc = _r32(a, mc + 8)
    guard = 0
    while _r32(a, mc + 8) != 0 and guard <= MAX_O:
        mc = _r32(a, mc + 8)
        guard += 1
    r[R_MAX_CONTEXT] = mc
    r[R_AUX_UNIT] = r[R_UNITS_START]
    _expand_text_area(pr, st)
    limit = 3 * (pr.memory_bytes[0] >> 2)
    best = -1
    stall = 0
    while True:
        _prepare_text_area(pr, st)
        _cut_off(pr, st, mc, pr.order[0])
        _expand_text_area(pr, st)
        used = _get_used_memory(pr, st)
        if used >= 0 and used <= limit:
            break
        # Guard (not in gmix): once the tree has no more text links to cut, gmix repeats this loop forever (observed
        # with arenas <= ~100 KiB on text).  After RESTORE_STALL_PASSES passes without a new minimum of the used
        # memory, start a fresh model instead.
        if used >= 0 and (best < 0 or used < best):
            best = used
            stall = 0
        else:
            stall += 1
            if stall >= RESTORE_STALL_PASSES:
                _start_model(pr, st)
                r[R_RESTARTS] += 1
                return
    r[R_GLUE_COUNT] = 0
    r[R_GLUE_COUNT1] = 0
    r[R_ORDER_FALL] = pr.order[0]


@njit
def _create_successors(pr, st, skip, p, pc):
    a = st.arena
    r = st.regs
    ps = st.stack
    fs = r[R_FOUND_STATE]
    sym = _r8(a, fs)
    up_branch = _r32(a, fs + 2)
    n = 0
    run_loop = True
    if skip == 0:
        ps[n] = fs
        n += 1
        if _r32(a, pc + 8) == 0:
            run_loop = False
    if run_loop:
        entry = p != 0
        if entry:
            pc = _r32(a, pc + 8)
        while True:
            if not entry:
                pc = _r32(a, pc + 8)
                if _r8(a, pc) != 0:
                    p = _r32(a, pc + 4)
                    last = p + 6 * _r8(a, pc)
                    while p < last and _r8(a, p) != sym:
                        p += 6
                    f = _r8(a, p + 1)
                    inc = 2 if f < MAX_FREQ - 1 else 0
                    _w8(a, p + 1, f + inc)
                    _w16(a, pc + 2, _r16(a, pc + 2) + inc)
                else:
                    p = pc + 2
                    f = _r8(a, p + 1)
                    if _r8(a, _r32(a, pc + 8)) == 0 and f < 16:
                        _w8(a, p + 1, f + 1)
            entry = False
            if _r32(a, p + 2) != up_branch:
                pc = _r32(a, p + 2)
                break
            if n >= STACK_SIZE:  # unreachable for order <= 255
                return 0
            ps[n] = p
            n += 1
            if _r32(a, pc + 8) == 0:
                break
    if n == 0:
        return pc
    flags = 0x10 if sym >= 0x40 else 0
    sym = _r8(a, up_branch)
    succ = up_branch + 1
    if sym >= 0x40:
        flags |= 0x08
    if _r8(a, pc) != 0:
        p = _r32(a, pc + 4)
        last = p + 6 * _r8(a, pc)
        while p < last and _r8(a, p) != sym:
            p += 6
        cf = (_r8(a, p + 1) - 1) & M32
        s0 = (_r16(a, pc + 2) - _r8(a, pc) - cf) & M32
        if ((2 * cf) & M32) < s0:
            cf = 1 + (1 if ((12 * cf) & M32) > s0 else 0)
        else:
            cf = (3 + _udiv(cf, s0)) & M32
        freq = cf if cf < 7 else 7
    else:
        freq = _r8(a, pc + 3)
    while True:
        pc1 = _alloc_context(pr, st)
        if pc1 == 0:
            return 0
        _w8(a, pc1, 0)
        _w8(a, pc1 + 1, flags)
        _w8(a, pc1 + 2, sym)
        _w8(a, pc1 + 3, freq)
        _w32(a, pc1 + 4, succ)
        _w32(a, pc1 + 8, pc)
        pc = pc1
        n -= 1
        _w32(a, ps[n] + 2, pc)
        if n == 0:
            break
    return pc


@njit
def _reduce_order(pr, st, p, pc):
    a = st.arena
    r = st.regs
    pc1 = pc
    fs = r[R_FOUND_STATE]
    _w32(a, fs + 2, r[R_PTEXT])
    sym = _r8(a, fs)
    up_branch = _r32(a, fs + 2)
    r[R_ORDER_FALL] += 1
    entry = p != 0
    if entry:
        pc = _r32(a, pc + 8)
    steps = 0
    while True:
        steps += 1
        if steps > MAX_O + 2:  # guard: a suffix chain longer than any order is a cycle in a damaged arena
            return 0
        if not entry:
            if _r32(a, pc + 8) == 0:
                return pc
            pc = _r32(a, pc + 8)
            if _r8(a, pc) != 0:
                p = _r32(a, pc + 4)
                last = p + 6 * _r8(a, pc)
                while p < last and _r8(a, p) != sym:
                    p += 6
                f = _r8(a, p + 1)
                inc = 2 if f < MAX_FREQ - 3 else 0
                _w8(a, p + 1, f + inc)
                _w16(a, pc + 2, _r16(a, pc + 2) + inc)
            else:
                p = pc + 2
                f = _r8(a, p + 1)
                if f < 11:
                    _w8(a, p + 1, f + 1)
        entry = False
        if _r32(a, p + 2) != 0:
            break
        _w32(a, p + 2, up_branch)
        r[R_ORDER_FALL] += 1
    if _r32(a, p + 2) <= up_branch:
        saved = r[R_FOUND_STATE]
        r[R_FOUND_STATE] = p
        v = _create_successors(pr, st, 0, 0, pc)
        _w32(a, p + 2, v)
        r[R_FOUND_STATE] = saved
    if r[R_ORDER_FALL] == 1 and pc1 == r[R_MAX_CONTEXT]:
        _w32(a, r[R_FOUND_STATE] + 2, _r32(a, p + 2))
        r[R_PTEXT] -= 1
    return _r32(a, p + 2)


@njit
def _update_model(pr, st, min_ctx):
    a = st.arena
    r = st.regs
    fs = r[R_FOUND_STATE]
    fsym = _r8(a, fs)
    ffreq = _r8(a, fs + 1)
    ifsucc = _r32(a, fs + 2)
    p = 0
    suf = _r32(a, min_ctx + 8)
    if suf != 0:
        pc = suf
        if _r8(a, pc) != 0:
            p = _r32(a, pc + 4)
            if _r8(a, p) != fsym:
                last = p + 6 * _r8(a, pc)
                p += 6
                while p < last and _r8(a, p) != fsym:
                    p += 6
                if _r8(a, p + 1) >= _r8(a, p - 6 + 1):
                    _swap_states(a, p, p - 6)
                    p -= 6
            f = _r8(a, p + 1)
            if f < MAX_FREQ - 3:
                cf = 2 + (1 if ffreq < 28 else 0)
                _w8(a, p + 1, f + cf)
                _w16(a, pc + 2, _r16(a, pc + 2) + cf)
        else:
            p = pc + 2
            f = _r8(a, p + 1)
            if f < 14:
                _w8(a, p + 1, f + 1)
    pc = r[R_MAX_CONTEXT]
    if r[R_ORDER_FALL] == 0 and ifsucc != 0:
        v = _create_successors(pr, st, 1, p, min_ctx)
        _w32(a, fs + 2, v)
        if v == 0:
            r[R_SAVED_PC] = pc
            return 0
        r[R_MAX_CONTEXT] = v
        return v
    _w8(a, r[R_PTEXT], fsym)
    r[R_PTEXT] += 1
    isucc = r[R_PTEXT]
    if r[R_PTEXT] >= r[R_UNITS_START]:
        r[R_SAVED_PC] = pc
        return 0
    if ifsucc != 0:
        if ifsucc < r[R_UNITS_START]:
            ifsucc = _create_successors(pr, st, 0, p, min_ctx)
    else:
        ifsucc = _reduce_order(pr, st, p, min_ctx)
    if ifsucc == 0:
        r[R_SAVED_PC] = pc
        return 0
    r[R_ORDER_FALL] -= 1
    if r[R_ORDER_FALL] == 0:
        isucc = ifsucc
        if r[R_MAX_CONTEXT] != min_ctx:
            r[R_PTEXT] -= 1
    s0 = (_r16(a, min_ctx + 2) - ffreq) & M32
    ns = _r8(a, min_ctx)
    flag = 0x08 if fsym >= 0x40 else 0
    pc = r[R_MAX_CONTEXT]
    guard = 0
    while pc != min_ctx and guard <= MAX_O:
        guard += 1
        ns1 = _r8(a, pc)
        if ns1 != 0:
            if ns1 & 1:
                p = _expand_units(pr, st, _r32(a, pc + 4), (ns1 + 1) >> 1)
                if p == 0:
                    r[R_SAVED_PC] = pc
                    return 0
                _w32(a, pc + 4, p)
            _w16(a, pc + 2, _r16(a, pc + 2) + (_qt(pr, ns + 4) >> 3))
        else:
            p = _alloc_units(pr, st, 1)
            if p == 0:
                r[R_SAVED_PC] = pc
                return 0
            _copy(a, p, pc + 2, 6)
            _w32(a, pc + 4, p)
            f = _r8(a, p + 1)
            f = (2 * f - 1) if f <= MAX_FREQ // 3 else (MAX_FREQ - 15)
            f &= M8
            _w8(a, p + 1, f)
            e = _qt(pr, r[R_BSUMM] >> 8)
            if e > 15:
                e = 15
            elif e < 0:
                e = 0
            _w16(a, pc + 2, f + (1 if ns > 1 else 0) + pr.exp_escape[e])
        summ = _r16(a, pc + 2)
        cf = ((ffreq - 1) * (5 + summ)) & M32
        sf = (s0 + summ) & M32
        if cf <= ((3 * sf) & M32):
            cf = 1 + (1 if ((2 * cf) & M32) > sf else 0) + (1 if ((2 * cf) & M32) > ((3 * sf) & M32) else 0)
            summ += 4
        else:
            cf = (
                5
                + (1 if cf > ((5 * sf) & M32) else 0)
                + (1 if cf > ((6 * sf) & M32) else 0)
                + (1 if cf > ((8 * sf) & M32) else 0)
                + (1 if cf > ((10 * sf) & M32) else 0)
                + (1 if cf > ((12 * sf) & M32) else 0)
            )
            summ += cf
        _w16(a, pc + 2, summ)
        ns1 = (_r8(a, pc) + 1) & M8
        _w8(a, pc, ns1)
        p = _r32(a, pc + 4) + 6 * ns1
        _w32(a, p + 2, isucc)
        _w8(a, p, fsym)
        _w8(a, p + 1, cf)
        _w8(a, pc + 1, _r8(a, pc + 1) | flag)
        pc = _r32(a, pc + 8)
    r[R_MAX_CONTEXT] = ifsucc
    return ifsucc


# ---- symbol coding (ProcMode 0: encoder side, symbol known) ------------------------------------------------------


@njit(inline="always")
def _bin_summ_index(pr, st, q):
    """Flat index into bin_summ for the binary context q."""
    a = st.arena
    r = st.regs
    col = (
        pr.ns2bsindx[_r8(a, _r32(a, q + 8))]
        + r[R_PREV_SUCCESS]
        + _r8(a, q + 1)
        + ((r[R_RUN_LENGTH] >> 26) & 0x20)
    )
    row = _qt(pr, _r8(a, q + 3) - 1)
    if row > 24:
        row = 24
    if col < 0:
        col = 0
    elif col > 63:
        col = 63
    return row * 64 + col


@njit
def _process_bin_symbol(pr, st, q, symbol):
    a = st.arena
    r = st.regs
    cm = st.char_mask
    k = _bin_summ_index(pr, st, q)
    row = k // 64
    col = k % 64
    bsumm = st.bin_summ[row, col]
    r[R_BSUMM] = bsumm
    bs = bsumm - ((bsumm + 64) >> PERIOD_BITS)
    rs = q + 2
    rsym = _r8(a, rs)
    if rsym != symbol:
        cm[rsym] = r[R_ESC_COUNT]
        r[R_NUM_MASKED] = 0
        r[R_PREV_SUCCESS] = 0
        r[R_FOUND_STATE] = 0
    else:
        bs += INTERVAL
        f = _r8(a, rs + 1)
        if f < 196:
            _w8(a, rs + 1, f + 1)
        rl = (r[R_RUN_LENGTH] + 1) & M32
        r[R_RUN_LENGTH] = rl - (1 << 32) if rl >= (1 << 31) else rl
        r[R_PREV_SUCCESS] = 1
        r[R_FOUND_STATE] = rs
    st.bin_summ[row, col] = bs & M16


@njit
def _process_symbol1(pr, st, q, symbol):
    a = st.arena
    r = st.regs
    cm = st.char_mask
    p = _r32(a, q + 4)
    cnum = _r8(a, q)
    r[R_PREV_SUCCESS] = 0
    if _r8(a, p) == symbol:
        _w8(a, p + 1, _r8(a, p + 1) + 4)
        _w16(a, q + 2, _r16(a, q + 2) + 4)
    else:
        found = False
        i = 1
        while i <= cnum:
            if _r8(a, p + 6 * i) == symbol:
                found = True
                break
            i += 1
        if found:
            s = p + 6 * i
            _w8(a, s + 1, _r8(a, s + 1) + 4)
            _w16(a, q + 2, _r16(a, q + 2) + 4)
            if _r8(a, s + 1) > _r8(a, s - 6 + 1):
                _swap_states(a, s, s - 6)
                i -= 1
            p = p + 6 * i
        else:
            r[R_NUM_MASKED] = cnum
            esc = r[R_ESC_COUNT]
            for k in range(cnum + 1):
                cm[_r8(a, p + 6 * k)] = esc
            p = 0
    r[R_FOUND_STATE] = p
    if p != 0 and _r8(a, p + 1) > MAX_FREQ:
        r[R_FOUND_STATE] = _rescale(pr, st, q, p)


@njit
def _process_symbol2(pr, st, q, symbol):
    a = st.arena
    r = st.regs
    cm = st.char_mask
    p = _r32(a, q + 4)
    cnum = _r8(a, q)
    see = _see_index(pr, st, q, cnum)
    if see == SEE_DUMMY:
        see_freq = 1
    else:
        see_freq = (st.see2[see, 0] >> st.see2[see, 1]) + 1
    esc = r[R_ESC_COUNT]
    low = 0
    j = -1
    for i in range(cnum + 1):
        c = _r8(a, p + 6 * i)
        if cm[c] != esc:
            cm[c] = esc
            low += _r8(a, p + 6 * i + 1)
            if c == symbol:
                j = i
    total = see_freq + low
    if j >= 0:
        p += 6 * j
        if see_freq > 2:
            st.see2[see, 0] = (st.see2[see, 0] - see_freq) & M16
        _see_update(st, see)
        r[R_FOUND_STATE] = p
        _w8(a, p + 1, _r8(a, p + 1) + 4)
        _w16(a, q + 2, _r16(a, q + 2) + 4)
        if _r8(a, p + 1) > MAX_FREQ:
            r[R_FOUND_STATE] = _rescale(pr, st, q, p)
        r[R_RUN_LENGTH] = r[R_INIT_RL]
        r[R_ESC_COUNT] = (esc + 1) & M32
    else:
        r[R_NUM_MASKED] = cnum
        st.see2[see, 0] = (st.see2[see, 0] + total - see_freq) & M16


@njit
def _update_byte(pr, st, c):
    """ppmd_UpdateByte(c): code symbol c, update statistics and the tree."""
    a = st.arena
    r = st.regs
    mc = r[R_MAX_CONTEXT]
    if _r8(a, mc) != 0:
        _process_symbol1(pr, st, mc, c)
    else:
        _process_bin_symbol(pr, st, mc, c)
    steps = 0
    while r[R_FOUND_STATE] == 0:
        while True:
            r[R_ORDER_FALL] += 1
            suf = _r32(a, mc + 8)
            steps += 1
            if suf == 0 or steps > MAX_O + 2:  # (steps: a suffix cycle in a damaged arena)
                # guard: symbol missing from the order-0 context (cannot happen in PPMd; gmix would dereference
                # NULL).  Restart.
                _start_model(pr, st)
                r[R_RESTARTS] += 1
                return
            mc = suf
            if _r8(a, mc) != r[R_NUM_MASKED]:
                break
        _process_symbol2(pr, st, mc, c)
    fs = r[R_FOUND_STATE]
    if r[R_ORDER_FALL] != 0 or _r32(a, fs + 2) < r[R_UNITS_START]:
        p = _update_model(pr, st, mc)
        if p != 0:
            r[R_MAX_CONTEXT] = p
    else:
        p = _r32(a, fs + 2)
        r[R_MAX_CONTEXT] = p
    if p == 0:
        if pr.cutoff[0] != 0:
            _restore_model(pr, st)
        else:
            _start_model(pr, st)
            r[R_RESTARTS] += 1


# ---- probability extraction (gmix's *_T functions) ---------------------------------------------------------------


@njit(inline="always")
def _sq_store(sq, regs, sym, freq, total):
    k = regs[R_SQ_PTR]
    if k < SQ_SIZE:
        sq[k, 0] = sym & M16
        sq[k, 1] = freq & M16
        sq[k, 2] = total & M16
        regs[R_SQ_PTR] = k + 1


@njit
def _process_bin_symbol_t(pr, st, q):
    a = st.arena
    r = st.regs
    sq = st.sq
    cm = st.char_mask
    k = _bin_summ_index(pr, st, q)
    bsumm = st.bin_summ[k // 64, k % 64]
    r[R_BSUMM] = bsumm
    rsym = _r8(a, q + 2)
    _sq_store(sq, r, rsym, bsumm + bsumm, SCALE)
    _sq_store(sq, r, 256, SCALE - bsumm - bsumm, SCALE)
    cm[rsym] = r[R_ESC_COUNT]
    r[R_NUM_MASKED] = 0


@njit
def _process_symbol1_t(pr, st, q):
    a = st.arena
    r = st.regs
    sq = st.sq
    cm = st.char_mask
    p = _r32(a, q + 4)
    cnum = _r8(a, q)
    total = _r16(a, q + 2)
    low = 0
    for i in range(cnum + 1):
        f = _r8(a, p + 6 * i + 1)
        _sq_store(sq, r, _r8(a, p + 6 * i), f, total)
        low += f
    r[R_NUM_MASKED] = cnum
    esc = r[R_ESC_COUNT]
    for i in range(cnum + 1):
        cm[_r8(a, p + 6 * i)] = esc
    _sq_store(sq, r, 256, total - low, total)


@njit
def _process_symbol2_t(pr, st, q):
    a = st.arena
    r = st.regs
    sq = st.sq
    cm = st.char_mask
    p = _r32(a, q + 4)
    cnum = _r8(a, q)
    see = _see_index(pr, st, q, cnum)
    if see == SEE_DUMMY:
        see_freq = 1
    else:
        see_freq = (st.see2[see, 0] >> st.see2[see, 1]) + 1
    esc = r[R_ESC_COUNT]
    low = 0
    for i in range(cnum + 1):
        if cm[_r8(a, p + 6 * i)] != esc:
            low += _r8(a, p + 6 * i + 1)
    total = see_freq + low
    for i in range(cnum + 1):
        c = _r8(a, p + 6 * i)
        if cm[c] != esc:
            _sq_store(sq, r, c, _r8(a, p + 6 * i + 1), total)
            cm[c] = esc
    _sq_store(sq, r, 256, see_freq, total)
    r[R_NUM_MASKED] = cnum


@njit
def _convert_sq(st):
    sqp = st.sqp
    sq = st.sq
    n = st.regs[R_SQ_PTR]
    sqp[:] = 0
    cum = 0xFFFFFF00
    for i in range(n):
        c = sq[i, 0]
        prob = _udiv(cum * sq[i, 1], sq[i, 2]) & M32
        if c < 256:
            sqp[c] = (prob + 1) & M32
        else:
            cum = prob
    # binary tree over sqp: node j (1..255) covers leaves below it; trF[j] = total of the left subtree, trT[j] =
    # total of the subtree.
    tf = st.tr_f
    tt = st.tr_t
    tf[0] = 0
    tt[0] = 0
    for j in range(255, 0, -1):
        if j >= 128:
            left = sqp[2 * j - 256]
            right = sqp[2 * j + 1 - 256]
        else:
            left = tt[2 * j]
            right = tt[2 * j + 1]
        tf[j] = left
        tt[j] = (left + right) & M32


@njit
def _prepare_byte(pr, st):
    """ppmd_PrepareByte: fill sq/sqp/tr_f/tr_t for the next byte."""
    a = st.arena
    r = st.regs
    r[R_SQ_PTR] = 0
    r[R_NUM_MASKED] = 0
    mc = r[R_MAX_CONTEXT]
    if _r8(a, mc) != 0:
        _process_symbol1_t(pr, st, mc)
    else:
        _process_bin_symbol_t(pr, st, mc)
    # (gmix bumps OrderFall while escaping here and restores it afterwards.)
    guard = 0
    steps = 0
    while guard <= MAX_O:
        guard += 1
        done = False
        while True:
            suf = _r32(a, mc + 8)
            steps += 1
            if suf == 0 or steps > MAX_O + 2:  # (steps: a suffix cycle in a damaged arena)
                done = True
                break
            mc = suf
            if _r8(a, mc) != r[R_NUM_MASKED]:
                break
        if done:
            break
        _process_symbol2_t(pr, st, mc)
    r[R_ESC_COUNT] = (r[R_ESC_COUNT] + 1) & M32
    r[R_NUM_MASKED] = 0
    _convert_sq(st)


# ---- kernels -----------------------------------------------------------------------------------------------------

@njit
def ppmd_byte_predictions(params, state, out):
    """Write the next byte's distribution (float32[256]) into `out`, exactly as ModPPMD::Predict: out[i] =
    max(float32(sqp[i]), 1), then every entry divided by the float32 sum accumulated in index order."""
    sqp = state.sqp
    s = np.float32(0.0)
    for i in range(256):
        v = np.float32(sqp[i])
        if v < np.float32(1.0):
            v = np.float32(1.0)
        out[i] = v
        s = np.float32(s + v)
    for i in range(256):
        out[i] = np.float32(out[i] / s)


@njit
def ppmd_update(params, state, byte):
    """Feed one byte (gmix's UpdateByte(byte); PrepareByte()), at every byte boundary, starting with byte 0 before
    the first prediction (see the module docstring).  Afterwards state.pred holds the next byte's distribution and
    state.sqp its integer form."""
    _update_byte(params, state, int(byte) & 0xFF)
    _prepare_byte(params, state)
    ppmd_byte_predictions(params, state, state.pred)
    state.regs[R_BYTES] += 1


@njit
def ppmd_bit_probability(pred, bot, top):
    """P(next bit = 1) for the symbols bot..top (gmix's bit step).  gmix starts a byte with bot = 0, top = 255,
    takes mid = bot + (top - bot) // 2, and after a bit b sets bot = mid + 1 (b = 1) or top = mid (b = 0).  The
    probability is num / denom with num = sum(pred[mid+1..top]) and denom = num + sum(pred[bot..mid]), both added
    in float32 in index order.  Returns -1.0 when denom == 0 (gmix then leaves the model's previous input as it
    was); never for a distribution made here, whose entries are all > 0."""
    mid = bot + (top - bot) // 2
    num = np.float32(0.0)
    for i in range(mid + 1, top + 1):
        num = np.float32(num + pred[i])
    den = num
    for i in range(bot, mid + 1):
        den = np.float32(den + pred[i])
    if den == np.float32(0.0):
        return np.float32(-1.0)
    return np.float32(num / den)


# ---- construction (plain Python) ---------------------------------------------------------------------------------


def _tables():
    indx2units = np.zeros(N_INDEXES, np.int64)
    i, k = 0, 1
    while i < N1:
        indx2units[i] = k
        i += 1
        k += 1
    k += 1
    while i < N1 + N2:
        indx2units[i] = k
        i += 1
        k += 2
    k += 1
    while i < N1 + N2 + N3:
        indx2units[i] = k
        i += 1
        k += 3
    k += 1
    while i < N_INDEXES:
        indx2units[i] = k
        i += 1
        k += 4
    units2indx = np.zeros(129, np.int64)
    i = 0
    for k in range(128):
        if indx2units[i] < k + 1:
            i += 1
        units2indx[k] = i
    units2indx[128] = 0  # C reads NS2BSIndx[0] there
    ns2bsindx = np.empty(256, np.int64)
    ns2bsindx[0] = 0
    ns2bsindx[1] = 2
    ns2bsindx[2] = 2
    ns2bsindx[3:29] = 4
    ns2bsindx[29:] = 6
    qtable = np.zeros(260, np.int64)
    for i in range(UP_FREQ):
        qtable[i] = i
    m = UP_FREQ
    k = step = 1
    for i in range(UP_FREQ, 260):
        qtable[i] = m
        k -= 1
        if k == 0:
            step += 1
            k = step
            m += 1
    return indx2units, units2indx, ns2bsindx, qtable, np.array(EXP_ESCAPE, np.int64)


def ppmd_new(order: int = 20, memory_mb: float = 2000, *, memory_bytes: int | None = None,
             cutoff: bool = True) -> tuple[PpmdParams, PpmdState]:
    """A model as gmix's ppmd_Model::Init(order, memory, cutoff, 0) makes it.  `memory_mb` is in MiB (gmix: 2000);
    `memory_bytes` overrides it.  The arena is allocated with np.zeros (pages are committed when first written), so
    a 2000 MiB model costs only what it touches.  The state has not seen any byte yet: call ppmd_update(params,
    state, 0) before the first prediction, as gmix does."""
    order = int(order)
    if not 2 <= order <= MAX_O - 1:
        raise ValueError(f"order must be in [2, {MAX_O - 1}], got {order}")
    if memory_bytes is None:
        memory_bytes = int(round(float(memory_mb) * (1 << 20)))
    memory_bytes = int(memory_bytes)
    if memory_bytes < 16 * 1024:
        raise ValueError(f"memory must be at least 16 KiB, got {memory_bytes} bytes")
    if memory_bytes > 0xFFFFFFFF:
        raise ValueError("memory must be below 4 GiB (offsets are 32-bit)")
    indx2units, units2indx, ns2bsindx, qtable, exp_escape = _tables()
    params = PpmdParams(
        order=np.array([order], np.int64),
        memory_bytes=np.array([memory_bytes], np.int64),
        cutoff=np.array([1 if cutoff else 0], np.int64),
        indx2units=indx2units,
        units2indx=units2indx,
        ns2bsindx=ns2bsindx,
        qtable=qtable,
        exp_escape=exp_escape,
    )
    state = PpmdState(
        arena=np.zeros(memory_bytes, np.uint8),
        regs=np.zeros(N_REGS, np.int64),
        blist=np.zeros((N_INDEXES + 2, 2), np.int64),
        char_mask=np.zeros(256, np.int64),
        bin_summ=np.zeros((25, 64), np.int64),
        see2=np.zeros((SEE_DUMMY + 1, 3), np.int64),
        sq=np.zeros((SQ_SIZE, 3), np.int64),
        sqp=np.zeros(256, np.int64),
        tr_f=np.zeros(256, np.int64),
        tr_t=np.zeros(256, np.int64),
        pred=np.full(256, 1.0 / 256, np.float32),
        stack=np.zeros(STACK_SIZE, np.int64),
        count=np.zeros(N_INDEXES, np.int64),
        cut_stack=np.zeros((CUT_STACK_SIZE, 7), np.int64),
    )
    _start_model(params, state)
    state.regs[R_CXT] = 0
    state.regs[R_Y] = 1
    return params, state

