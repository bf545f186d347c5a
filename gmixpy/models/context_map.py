"""Context maps (paq8px's ContextMap2): per-context bit histories, run and byte histories -> mixer inputs.

A ContextMap item hashes each of its contexts (context slots, each salted with its index in the item) into one
hash table shared by the item's contexts.  The table is a uint8 array of buckets of 64 bytes (one cache line):
7 elements, each a 16-bit checksum (bytes 0-13; 0 = empty) and 7 state bytes (bytes 14 + 7e .. 20 + 7e).  A
context's byte is spread over three elements found at bits 0, 2 and 5 of the byte, in buckets h, h + c0:
    slot 0 (bits 0-1):  [bit-0 state, bit-1 states after 0 and after 1, run count, byte1, byte2, byte3]
    slot 1 (bits 2-4) and slot 2 (bits 5-7): [first bit's state, 2 second-bit states, 4 third-bit states]
where byte1..3 are the last three distinct bytes seen in the context (byte1 the latest) and the run count is how
many times in a row byte1 was seen.  A found element moves to the front of its bucket; a new one evicts, among
the last elements, one of low priority (paq8px's probabilistic choice; the two most recent are always kept).

States are paq8px's (models/paq_states.py).  Each context has its own four adaptive maps (long-term memory):
    run map (4096):        (run count, bit position group, byte1 doubtful, predicted bit) -> p
    bit-history map (256): state -> p, initialised from the counts the state stands for
    byte-history maps:     (state uncertain, what byte1..3 say of this bit, bpos) -> p (256)
                           (state group, what byte1..3 say of this bit, bpos) -> p (4096)
Each map cell holds p (float32) and a count n; learning moves p by (bit - p) / (n + 2) and counts n up to a limit.

Mixer inputs per context (paq8px's ContextMap2::mix at paq8px's scale 64, divided by 256 to the logit domain,
times the item's gain; 0 = inactive):
    [run]            stretch(p_run) / 2 (byte1 sure) or / 4, when byte1 or byte2 agrees with the bits so far
    st               stretch(p) / 4, halved while the context is young (state <= 2); 0 when the state is 0
    (p - 1/2) * 2
    st when the state has seen only one bit value, else 0
    p when no zero was seen - (1 - p) when no one was seen
    [byte history]   stretch(p_bh8) / 4, stretch(p_bh12) / 4
The item also writes its confidence, (contexts whose state is not 0) * 8 + bpos, into its context slot
"<name>.order" for mixers to select on (paq8px's NormalModel mixes with it).

Deferred mode (paq8px's CM_DEFERRED, an option): while a context has been seen fewer than 3 times its slots 1 and
2 are not stored; their states are rebuilt in short-term memory from byte1 and byte2.  When it is seen the fourth
time, learning replays the three bytes into real slots 1 and 2.

predict (`context_map_predict`, every bit, after the contexts): at bit 0 hash every context and snapshot its
    slot 0 (state, run count, bytes); at bits 2 and 5 move to slot 1 or 2; read the states and write the inputs.
    It only reads long-term memory: an element not found reads as state 0 (inactive inputs).
learn (`context_map_learn`, after the bit, only when learning): update the maps cells read, find-or-insert the
    element (move to front or evict), step its state; after bit 7 update slot 0's run count and bytes.
The random generator (probabilistic state increments, eviction) is long-term memory: it advances only when
learning.
"""
from __future__ import annotations

from decimal import Decimal, localcontext
from typing import NamedTuple

import numpy as np

from .._jit import njit
from .._values import first_outside
from ..intrinsics import prefetch
from ..layout import table_offsets
from .paq_states import PHI64, STATE_COUNTS, STATE_GROUP, STATE_NEXT, STATE_PRIORITY, paq_next, random_bits

BUCKET_BYTES = 64
ELEMENTS = 7
STATES = 14                         # first state byte of element 0 (bytes 0-13 hold the 7 checksums)
MUL64_1 = 0x993DDEFFB1462949 - (1 << 64)  # paq8px's second hash multiplier, as a signed 64-bit value
RUN_LIMIT = 127                     # count limit of the run map (paq8px)
# The four maps of a context side by side in one row: run (4096), bit history (256), byte history (256, 4096).
MAP_OFFSET = np.array([0, 4096, 4352, 4608], np.int64)
MAP_SIZE = np.array([4096, 256, 256, 4096], np.int64)
MAP_COLUMNS = 8704
STRETCH_LIMIT = 2047.0 / 256.0      # paq8px's stretch saturates at +-2047 / 256
BPOS = np.array([0] + [c.bit_length() - 1 for c in range(1, 256)], np.int64)  # c0 (1..255) -> bits seen


def _stretch_table() -> np.ndarray:
    """float32[4096]: ln(p / (1 - p)) at p = (i + 1/2) / 4096, within +-2047/256, half of it by symmetry.

    The logarithm is computed here, not by libm (whose last bit differs between machines), from IEEE float64
    additions, multiplications and divisions only, which round the same everywhere: ln x = e ln 2 + 2 atanh(s)
    with x = m 2**e, m in [sqrt(1/2), sqrt(2)), s = (m - 1) / (m + 1), |s| < 0.172, and 14 terms of atanh's series
    (the next is below 1e-24).  Its error (about 1e-15) is far below a float32's half step, and
    tests/test_context_map.py checks every entry against exactly rounded decimal arithmetic (_stretch_exact)."""
    i = np.arange(2048, 4096, dtype=np.float64)
    x = (2.0 * i + 1.0) / (8191.0 - 2.0 * i)
    m, e = np.frexp(x)                      # exact: x = m * 2**e, m in [1/2, 1)
    low = m < 0.7071067811865476
    m = np.where(low, 2.0 * m, m)           # exact scaling into [sqrt(1/2), sqrt(2))
    e = np.where(low, e - 1, e).astype(np.float64)
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    series = np.zeros_like(s)
    for k in range(27, -1, -2):             # Horner, from s**27 / 27 down to s
        series = series * s2 + 1.0 / k
    ln_x = e * 0.6931471805599453 + 2.0 * s * series
    out = np.empty(4096, np.float32)
    out[2048:] = np.minimum(ln_x, STRETCH_LIMIT).astype(np.float32)
    out[:2048] = -out[2048:][::-1]
    return out


def _stretch_exact() -> np.ndarray:
    """_stretch_table by exactly rounded decimal arithmetic (slow: a tenth of a second), the reference it is
    tested against."""
    out = np.empty(4096, np.float32)
    with localcontext() as ctx:
        ctx.prec = 25
        for i in range(2048, 4096):
            v = float((Decimal(2 * i + 1) / Decimal(8191 - 2 * i)).ln())
            out[i] = np.float32(min(v, STRETCH_LIMIT))
            out[4095 - i] = -out[i]
    return out


STRETCH = _stretch_table()
RECIPROCAL = (1.0 / (np.arange(1024, dtype=np.float64) + 2.0)).astype(np.float32)  # n -> 1 / (n + 2)


class ContextMapParams(NamedTuple):
    # per item (n items)
    table_offset: np.ndarray  # int64[n], first bucket of each item's table in ContextMapMemory.table
    table_mask: np.ndarray    # int64[n], buckets of the item's table - 1 (a power of two - 1)
    hash_bits: np.ndarray     # int64[n], log2 of the buckets (4..32)
    run: np.ndarray           # int32[n], 1: each context gives the run input
    byte_history: np.ndarray  # int32[n], 1: each context gives the two byte-history inputs
    deferred: np.ndarray      # int32[n], 1: paq8px's deferred mode for young contexts
    gain: np.ndarray          # float32[n], factor on every input
    limit: np.ndarray         # int64[n], count limit of the bit- and byte-history maps (1..1023)
    order_slot: np.ndarray    # int32[n], context slot written with the item's confidence
    first: np.ndarray         # int32[n], first context of the item; its contexts are first[k] .. last[k] - 1
    last: np.ndarray          # int32[n]
    # per context (m contexts over all items)
    slot: np.ndarray          # int32[m], context slot hashed
    salt: np.ndarray          # int64[m], (index of the context in its item + 1) * MUL64_1, added to the hash
    input_index: np.ndarray   # int32[m], first mixer input of the context


class ContextMapMemory(NamedTuple):  # long-term memory
    table: np.ndarray         # uint8[sum of buckets, 64], the items' hash tables (layout in the docstring)
    probability: np.ndarray   # float32[m, MAP_COLUMNS], each context's maps: run, bit history, byte histories
    count: np.ndarray         # uint16[m, MAP_COLUMNS], each cell's count (0..1023)
    generator: np.ndarray     # int64[n], each item's random generator (paq_states.random_bits)


class ContextMapState(NamedTuple):  # short-term memory
    bucket0: np.ndarray       # int64[m], row of the context's slot-0 bucket this byte
    bucket: np.ndarray        # int64[m], row of the bucket of the slot in use (0, 1 or 2)
    checksum: np.ndarray      # int64[m], the context's 16-bit checksum this byte, 1..65535
    history: np.ndarray       # uint8[m, 5], slot 0 at the start of the byte: [bit-0 state, run count, byte1,
    #                           byte2, byte3]; all 0 when the context was not found
    virtual: np.ndarray       # uint8[m], 1: the states of the slot in use are `rebuilt` (deferred mode)
    rebuilt: np.ndarray       # uint8[m, 7], the slot's states rebuilt from the bytes seen (when virtual)
    replayed: np.ndarray      # uint8[m], 1: learning replayed the three bytes seen into real slots this byte
    map_index: np.ndarray     # int64[m, 4], cell of the run, bit-history and two byte-history maps each context
    #                           read this bit (column within that map), -1 = none (learn updates these)
    PER_BIT = ("bucket0", "bucket", "checksum", "history", "virtual", "rebuilt", "replayed", "map_index")  # all: small


def context_map_new(items, slots, input_index) -> tuple[ContextMapParams, ContextMapMemory, ContextMapState]:
    n = len(items)
    m = sum(len(c.contexts) for c in items)
    sizes = np.array([1 << c.table_bits for c in items], np.int64)
    first, salt, slot, inputs = [], [], [], []
    at = 0
    for item, start in zip(items, input_index):
        first.append(at)
        per = item.inputs // len(item.contexts)
        for i, name in enumerate(item.contexts):
            slot.append(slots[name])
            salt.append(((i + 1) * MUL64_1 + (1 << 63)) % (1 << 64) - (1 << 63))
            inputs.append(start + i * per)
        at += len(item.contexts)
    params = ContextMapParams(
        table_offset=table_offsets(sizes),
        table_mask=sizes - 1,
        hash_bits=np.array([c.table_bits for c in items], np.int64),
        run=np.array([int(c.run) for c in items], np.int32),
        byte_history=np.array([int(c.byte_history) for c in items], np.int32),
        deferred=np.array([int(c.deferred) for c in items], np.int32),
        gain=np.array([c.gain for c in items], np.float32),
        limit=np.array([c.limit for c in items], np.int64),
        order_slot=np.array([slots[c.order_slot()] for c in items], np.int32),
        first=np.array(first, np.int32),
        last=np.array(first[1:] + [at] if first else [], np.int32),
        slot=np.array(slot, np.int32),
        salt=np.array(salt, np.int64),
        input_index=np.array(inputs, np.int32),
    )
    memory = ContextMapMemory(
        table=np.zeros((int(sizes.sum()), BUCKET_BYTES), np.uint8),
        probability=np.empty((m, MAP_COLUMNS), np.float32),
        count=np.zeros((m, MAP_COLUMNS), np.uint16),
        generator=np.zeros(n, np.int64),
    )
    p0, n0 = initial_maps()
    memory.probability[:] = p0
    memory.count[:] = n0
    state = ContextMapState(
        bucket0=np.zeros(m, np.int64),
        bucket=np.zeros(m, np.int64),
        checksum=np.ones(m, np.int64),
        history=np.zeros((m, 5), np.uint8),
        virtual=np.zeros(m, np.uint8),
        rebuilt=np.zeros((m, 7), np.uint8),
        replayed=np.zeros(m, np.uint8),
        map_index=np.full((m, 4), -1, np.int64),
    )
    return params, memory, state


def initial_maps() -> tuple[np.ndarray, np.ndarray]:
    """One context's maps before learning (paq8px's StateMap priors): float32[MAP_COLUMNS], uint16[MAP_COLUMNS].
    Probabilities are quotients of small integers, exactly rounded by IEEE division."""
    p = np.full(MAP_COLUMNS, 0.5, np.float64)
    n = np.zeros(MAP_COLUMNS, np.int64)
    # run map: a run of r bytes predicts its bit with odds 12 (r + 1) : (1 + doubtful); the count starts at the
    # limit, so the rate is fixed from the start
    for cx in range(4096):
        predicted, doubtful, run = cx & 1, (cx >> 1) & 1, cx >> 4
        n0, n1 = doubtful + 1, (run + 1) * 12
        if predicted == 0:
            n0, n1 = n1, n0
        p[cx] = n1 / (n0 + n1)
        n[cx] = RUN_LIMIT
    # bit-history map: the counts the state stands for, (3 n + 1) each; the exponential run states count more
    for state in range(256):
        n0, n1 = int(STATE_COUNTS[state, 0]), int(STATE_COUNTS[state, 1])
        at = MAP_OFFSET[1] + state
        if state < 205:
            n0, n1 = 3 * n0 + 1, 3 * n1 + 1
            p[at] = n1 / (n0 + n1)
        elif state < 253:
            step = (state - 205) >> 2
            if ((state - 205) & 3) <= 1:
                n0 = 29 + (1 << step)
            else:
                n1 = 29 + (1 << step)
            n0, n1 = 3 * n0 + 1, 3 * n1 + 1
            p[at] = n1 / (n0 + n1)
            n[at] = min((n0 + n1) >> 3, 1023)
    return p.astype(np.float32), n.astype(np.uint16)


def context_map_check(p: ContextMapParams, m: ContextMapMemory, s: ContextMapState) -> str | None:
    """The first stored value out of range, or None.  Bucket rows index the table; map cells index their map;
    counts index the reciprocal table; probabilities stay in [0, 1].  Table bytes are all valid: every byte is a
    state (253-255 lead back to the start), a run count, a byte or half a checksum."""
    rows = m.table.shape[0]
    problem = first_outside([
        ("stm.context_map.bucket0", s.bucket0, 0, max(rows - 1, 0)),
        ("stm.context_map.bucket", s.bucket, 0, max(rows - 1, 0)),
        ("stm.context_map.checksum", s.checksum, 1, 0xFFFF),
        ("ltm.context_map.probability", m.probability, 0.0, 1.0),
        ("ltm.context_map.count", m.count, 0, 1023),
    ])
    if problem:
        return problem
    for q in range(4):
        if not (s.map_index[:, q].size == 0 or (s.map_index[:, q].min() >= -1
                                                 and s.map_index[:, q].max() < MAP_SIZE[q])):
            return "stm.context_map.map_index out of range"
    return None


@njit(inline="always")
def _find(table, row, checksum):
    """Position of the element with `checksum` in bucket `row`, or -1.  Elements fill a bucket from the front,
    so an empty one ends the search."""
    for e in range(ELEMENTS):
        c = np.int64(table[row, 2 * e]) | (np.int64(table[row, 2 * e + 1]) << 8)
        if c == checksum:
            return e
        if c == 0:
            return -1
    return -1


@njit(inline="always")
def _shift_right(table, row, e):
    """Elements 0 .. e-1 move one place back, over element e (element 0 is then free to be written)."""
    for q in range(e, 0, -1):
        table[row, 2 * q] = table[row, 2 * q - 2]
        table[row, 2 * q + 1] = table[row, 2 * q - 1]
        for b in range(7):
            table[row, STATES + 7 * q + b] = table[row, STATES + 7 * q - 7 + b]


@njit(inline="always")
def _to_front(table, row, e):
    """Element e moves to the front of bucket `row`; elements 0 .. e-1 move one place back."""
    for b in range(2):
        saved = table[row, b + 2 * e]
        for q in range(e, 0, -1):
            table[row, b + 2 * q] = table[row, b + 2 * q - 2]
        table[row, b] = saved
    for b in range(7):
        saved = table[row, STATES + 7 * e + b]
        for q in range(e, 0, -1):
            table[row, STATES + 7 * q + b] = table[row, STATES + 7 * q - 7 + b]
        table[row, STATES + b] = saved


@njit(inline="always")
def _claim(table, row, checksum, generator, k):
    """Make the element with `checksum` the front element of bucket `row` (learning only): found elements move to
    the front; a new element (all states 0) goes to the front, into an empty place or over an evicted one."""
    victim = -1
    for e in range(ELEMENTS):
        c = np.int64(table[row, 2 * e]) | (np.int64(table[row, 2 * e + 1]) << 8)
        if c == checksum:
            if e > 0:
                _to_front(table, row, e)
            return
        if c == 0:
            victim = e
            break
    if victim < 0:
        # Full: evict the lowest priority among the last 2 elements, or with falling chances among the last
        # 3, 4 or 5; 1 time in 64 simply the last one.
        victim = ELEMENTS - 1
        lowest = np.int64(STATE_PRIORITY[table[row, STATES + 7 * victim]])
        r = random_bits(generator, k, 32)
        threshold = 1  # out of 64: then 4, 8, 16 for the elements further forward
        for e in range(ELEMENTS - 2, 1, -1):
            if (r & 63) < threshold:
                break
            pr = np.int64(STATE_PRIORITY[table[row, STATES + 7 * e]])
            if pr < lowest:
                lowest, victim = pr, e
            r >>= 6
            threshold = max(4, 2 * threshold)
    # The victim (or the empty place) is overwritten: the elements before it move back, the new one goes first.
    _to_front(table, row, victim)
    table[row, 0] = checksum & 255
    table[row, 1] = checksum >> 8
    for b in range(7):
        table[row, STATES + b] = 0


@njit(inline="always")
def _location(bpos, c0):
    """Index (0..6) within its slot of the state of the bit at `bpos` given the bits so far c0 (paq8px's
    getStateByteLocation): 0 for the slot's first bit, 1 + last bit for its second, 3 + last two for its third."""
    select = (0x31031010 >> (bpos << 2)) & 0xF
    return select + (c0 & select)


@njit(inline="always")
def _replay_stored(table, row, x, generator, k):
    """Step the front element's slot states of bucket `row` along the three bits x (the slot's first bit is
    bit 2 of x): paq8px's updatePendingContextsInSlot, with its random increments."""
    b0, b1 = (x >> 2) & 1, (x >> 1) & 1
    i = STATES
    table[row, i] = paq_next(table[row, i], b0, generator, k)
    i = STATES + 1 + b0
    table[row, i] = paq_next(table[row, i], b1, generator, k)
    i = STATES + 3 + ((x >> 1) & 3)
    table[row, i] = paq_next(table[row, i], x & 1, generator, k)


@njit(inline="always")
def _replay_rebuilt(rebuilt, j, x):
    """The same on context j's rebuilt slot (short-term memory).  At most three steps from state 0 never reach
    the states with random increments, so no random draw is needed."""
    b0, b1 = (x >> 2) & 1, (x >> 1) & 1
    i = 0
    rebuilt[j, i] = STATE_NEXT[rebuilt[j, i], b0]
    i = 1 + b0
    rebuilt[j, i] = STATE_NEXT[rebuilt[j, i], b1]
    i = 3 + ((x >> 1) & 3)
    rebuilt[j, i] = STATE_NEXT[rebuilt[j, i], x & 1]


@njit(inline="always")
def _seen_bytes(h, j, q):
    """The q-th (0 = oldest) of the three bytes a context seen three times saw, from its slot-0 history: byte3,
    byte2, byte1, or byte2, byte1, byte1 when byte1 came twice in a row."""
    if h[j, 1] == 2:
        return np.int64(h[j, 3]) if q == 0 else np.int64(h[j, 2])
    return np.int64(h[j, 4 - q])


@njit(inline="always")
def _rebuild(s, j, bpos, c0, three):
    """Rebuild context j's slot 1 or 2 (at bpos 2 or 5) in short-term memory from the bytes it saw, replaying
    the bytes that agree with the bits so far.  paq8px's rule (deferred mode): byte2 and byte1 when it saw two
    bytes, byte1 when it saw one.  With `three` (seen three times, but learning did not replay them into real
    slots): the three bytes, as that replay would have."""
    for b in range(7):
        s.rebuilt[j, b] = 0
    state0 = s.history[j, 0]
    if state0 == 0:
        return
    shift = 8 - bpos
    mask = (1 << bpos) - 1
    count = 3 if three else (2 if state0 >= 3 else 1)
    for q in range(count):
        if three:
            byte = _seen_bytes(s.history, j, q)
        elif count == 2:
            byte = np.int64(s.history[j, 3 - q])
        else:
            byte = np.int64(s.history[j, 2])
        if ((c0 ^ (byte >> shift)) & mask) == 0:
            _replay_rebuilt(s.rebuilt, j, byte >> (shift - 3))


@njit(inline="always")
def context_map_predict(p, m, s, contexts, c0, inputs):
    n_items = p.first.shape[0]
    if n_items == 0:
        return
    table = m.table
    bpos = BPOS[c0]
    if bpos == 0:
        # Pass 1: hash every context and prefetch its slot-0 bucket, so that the misses overlap.
        for k in range(n_items):
            shift = 64 - p.hash_bits[k]
            for j in range(p.first[k], p.last[k]):
                h = (contexts[p.slot[j]] + 1) * PHI64 + p.salt[j]
                row = p.table_offset[k] + ((h >> shift) & p.table_mask[k])
                checksum = (h >> (shift - 16)) & 0xFFFF
                s.bucket0[j] = row
                s.bucket[j] = row
                s.checksum[j] = checksum if checksum != 0 else 1
                s.virtual[j] = 0
                s.replayed[j] = 0
                prefetch(table, row * BUCKET_BYTES)
        for j in range(p.slot.shape[0]):
            row = s.bucket0[j]
            e = _find(table, row, s.checksum[j])
            if e >= 0:
                at = STATES + 7 * e
                s.history[j, 0] = table[row, at]
                for b in range(4):
                    s.history[j, 1 + b] = table[row, at + 3 + b]
            else:
                for b in range(5):
                    s.history[j, b] = 0
    elif bpos == 2 or bpos == 5:
        for k in range(n_items):
            for j in range(p.first[k], p.last[k]):
                rel = s.bucket0[j] - p.table_offset[k]
                row = p.table_offset[k] + ((rel + c0) & p.table_mask[k])
                s.bucket[j] = row
                state0 = s.history[j, 0]
                s.virtual[j] = 0
                if p.deferred[k] and state0 <= 6:
                    s.virtual[j] = 1
                    _rebuild(s, j, bpos, c0, False)
                elif p.deferred[k] and state0 <= 14 and not s.replayed[j]:
                    # Seen three times, but learning did not replay the bytes into real slots (it was off).
                    s.virtual[j] = 1
                    _rebuild(s, j, bpos, c0, True)
                else:
                    prefetch(table, row * BUCKET_BYTES)
    elif bpos == 1 or bpos == 4:
        # The next bit moves to slot 1 or 2, in one of two buckets: fetch both a bit ahead.
        for k in range(n_items):
            for j in range(p.first[k], p.last[k]):
                if not (p.deferred[k] and s.history[j, 0] <= 6):
                    rel = s.bucket0[j] - p.table_offset[k]
                    prefetch(table, (p.table_offset[k] + ((rel + 2 * c0) & p.table_mask[k])) * BUCKET_BYTES)
                    prefetch(table, (p.table_offset[k] + ((rel + 2 * c0 + 1) & p.table_mask[k])) * BUCKET_BYTES)

    location = _location(bpos, c0)
    bp = (0x33322210 >> (bpos << 2)) & 0xF
    for k in range(n_items):
        gain = p.gain[k]
        order = 0
        for j in range(p.first[k], p.last[k]):
            # this bit's state
            if s.virtual[j]:
                state = np.int64(s.rebuilt[j, location])
            else:
                row = s.bucket[j]
                e = _find(table, row, s.checksum[j])
                state = np.int64(table[row, STATES + 7 * e + location]) if e >= 0 else np.int64(0)
            n0 = STATE_COUNTS[state, 0]
            n1 = STATE_COUNTS[state, 1]
            uncertain = 1 if (n0 != 0 and n1 != 0) else 0
            state0 = s.history[j, 0]
            run_count = np.int64(s.history[j, 1])
            byte1 = np.int64(s.history[j, 2])
            byte2 = np.int64(s.history[j, 3])
            byte3 = np.int64(s.history[j, 4])
            complete1 = state0 >= 1
            complete2 = state0 >= 3
            complete3 = state0 >= 7
            at = p.input_index[j]
            if p.run[k]:
                cell = -1
                divisor = np.float32(1.0)
                if complete1 and ((byte1 + 256) >> (8 - bpos)) == c0:
                    predicted = (byte1 >> (7 - bpos)) & 1
                    doubtful = 1 if byte2 != byte1 else 0
                    cell = (run_count << 4) | (bp << 2) | (doubtful << 1) | predicted
                    divisor = np.float32(0.25) if doubtful else np.float32(0.5)
                elif complete2 and ((byte2 + 256) >> (8 - bpos)) == c0:
                    predicted = (byte2 >> (7 - bpos)) & 1
                    cell = (uncertain << 1) | predicted
                    divisor = np.float32(0.125) if byte3 != byte2 else np.float32(0.25)
                s.map_index[j, 0] = cell
                if cell >= 0:
                    x = STRETCH[_cell(m.probability[j, cell])]
                    inputs[at] = x * divisor * gain
                else:
                    inputs[at] = np.float32(0.0)
                at += 1
            if state == 0:
                s.map_index[j, 1] = -1
                for q in range(4):
                    inputs[at + q] = np.float32(0.0)
            else:
                s.map_index[j, 1] = state
                p1 = m.probability[j, MAP_OFFSET[1] + state]
                st = STRETCH[_cell(p1)] * np.float32(0.25)
                inputs[at] = (st * np.float32(0.5) if state <= 2 else st) * gain
                inputs[at + 1] = (p1 - np.float32(0.5)) * np.float32(2.0) * gain
                inputs[at + 2] = np.float32(0.0) if uncertain else st * gain
                sure = np.float32(0.0)
                if n0 == 0:
                    sure += p1
                if n1 == 0:
                    sure -= np.float32(1.0) - p1
                inputs[at + 3] = sure * gain
                order += 1
            at += 4
            if p.byte_history[k]:
                shift = 7 - bpos
                bits = ((byte1 >> shift) & 1) | (((byte2 >> shift) & 1) << 1) | (((byte3 >> shift) & 1) << 2)
                if complete3:
                    bh = 8 | bits
                elif complete2:
                    bh = 4 | (bits & 3)
                elif complete1:
                    bh = 2 | (bits & 1)
                else:
                    bh = 0
                cell8 = (uncertain << 7) | (bh << 3) | bpos
                cell12 = (np.int64(STATE_GROUP[state]) << 7) | (bh << 3) | bpos
                s.map_index[j, 2] = cell8
                s.map_index[j, 3] = cell12
                x8 = STRETCH[_cell(m.probability[j, MAP_OFFSET[2] + cell8])]
                x12 = STRETCH[_cell(m.probability[j, MAP_OFFSET[3] + cell12])]
                inputs[at] = x8 * np.float32(0.25) * gain
                inputs[at + 1] = x12 * np.float32(0.25) * gain
        contexts[p.order_slot[k]] = order * 8 + bpos


@njit(inline="always")
def _cell(probability):
    """STRETCH index of a probability: its 12-bit bucket."""
    i = np.int64(probability * np.float32(4096.0))
    return i if i < 4095 else 4095


@njit(inline="always")
def _adapt(m, j, column, y, limit):
    n = m.count[j, column]
    pr = m.probability[j, column]
    m.probability[j, column] = pr + (y - pr) * RECIPROCAL[n]
    if n < limit:
        m.count[j, column] = n + 1


@njit(inline="always")
def context_map_learn(p, m, s, c0, bit):
    n_items = p.first.shape[0]
    if n_items == 0:
        return
    table = m.table
    g = m.generator
    bpos = BPOS[c0]
    y = np.float32(bit)
    location = _location(bpos, c0)
    for k in range(n_items):
        limit = p.limit[k]
        for j in range(p.first[k], p.last[k]):
            for q in range(4):
                cell = s.map_index[j, q]
                if cell >= 0:
                    _adapt(m, j, MAP_OFFSET[q] + cell, y, RUN_LIMIT if q == 0 else limit)
            checksum = s.checksum[j]
            if bpos == 0:
                state0 = s.history[j, 0]
                if p.deferred[k] and 7 <= state0 <= 14:
                    # Seen for the fourth time: replay the three bytes it saw into real slots 1 and 2.
                    rel = s.bucket0[j] - p.table_offset[k]
                    for q in range(3):
                        x = _seen_bytes(s.history, j, q) + 256
                        row = p.table_offset[k] + ((rel + (x >> 6)) & p.table_mask[k])
                        _claim(table, row, checksum, g, k)
                        _replay_stored(table, row, x >> 3, g, k)
                        row = p.table_offset[k] + ((rel + (x >> 3)) & p.table_mask[k])
                        _claim(table, row, checksum, g, k)
                        _replay_stored(table, row, x, g, k)
                    s.replayed[j] = 1
                row = s.bucket0[j]
            elif bpos == 1:
                row = s.bucket0[j]
            elif s.virtual[j]:
                row = -1
            else:
                row = s.bucket[j]
            if row >= 0:
                _claim(table, row, checksum, g, k)
                table[row, STATES + location] = paq_next(table[row, STATES + location], bit, g, k)
            if bpos == 7:
                # The byte is complete: slot 0's run count and last bytes.
                row = s.bucket0[j]
                _claim(table, row, checksum, g, k)
                byte = (c0 * 2 + bit) & 255
                if table[row, STATES] < 3:
                    table[row, STATES + 3] = 1
                    table[row, STATES + 4] = byte
                    table[row, STATES + 5] = byte
                    table[row, STATES + 6] = byte
                elif table[row, STATES + 4] == byte:
                    if table[row, STATES + 3] < 255:
                        table[row, STATES + 3] += 1
                else:
                    table[row, STATES + 3] = 1
                    table[row, STATES + 6] = table[row, STATES + 5]
                    table[row, STATES + 5] = table[row, STATES + 4]
                    table[row, STATES + 4] = byte
