"""Plain-Python versions of the families added beyond gmix (APM, word, record, text and signal contexts, the
Indirect model's count-based rate), written from their docstrings and paq8/lpaq's definitions, for
tests/test_families.py.  No Numba and no numpy arrays on the hot path: Python integers, and numpy float32 scalars
wherever the kernels compute in float32 (each operation rounds to float32, as the kernels' do without fastmath).

The byte-level contexts are refreshed at every byte boundary, including the very first prediction, when the last
byte is the 0 the rotating history starts with: the references see the stream [0] + data, so stream index t is
the (t + 1)-th byte the kernels count."""
from __future__ import annotations

import numpy as np

F = np.float32
M32 = 0xFFFFFFFF


# ---- APM (models/apm.py) ----------------------------------------------------------------------------------------

def apm_row(key: int, size: int) -> int:
    """The row of a context key in a table of `size` rows: the key when it fits, else a 32-bit hash of it."""
    if key < size:
        return key
    h = (key ^ (key >> 29)) & M32
    h = (h * 0x85EBCA6B) & M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & M32
    h ^= h >> 16
    return h & (size - 1)


class ReferenceApm:
    """n APMs: per context row a curve of 33 probabilities at logits -8, -7.5, ..., 8, interpolated linearly at
    the network's logit; learning moves the two neighbouring points towards the bit, each by the rate times its
    interpolation weight; the rate is max(rate, 1 / (updates + 1.5)) for a row's first `limit` updates."""

    def __init__(self, items, identity):
        self.items = items
        self.identity = [F(v) for v in identity]
        self.tables = [{} for _ in items]      # row -> list of 33 float32 (absent = the identity curve)
        self.counts = [{} for _ in items]      # row -> updates

    def curve(self, i, row):
        return self.tables[i].setdefault(row, list(self.identity))

    def predict(self, keys, bit_context, logit, probability):
        x = F(logit)
        if np.isnan(x) or x <= F(-8.0):
            x = F(-8.0)
        elif x > F(8.0 - 0.0001):
            x = F(8.0 - 0.0001)
        position = (x + F(8.0)) * F(2.0)
        j = int(position)
        w = position - F(j)
        self.j, self.w, self.rows = j, w, []
        total = F(probability)
        outputs = []
        for i, item in enumerate(self.items):
            key = (keys[i] << 8) | bit_context if item.with_bits else keys[i]
            row = apm_row(key, 1 << item.table_bits)
            self.rows.append(row)
            c = self.curve(i, row)
            q = c[j] * (F(1.0) - w) + c[j + 1] * w
            outputs.append(q)
            total = total + q
        return total / F(len(self.items) + 1), outputs

    def learn(self, bit):
        j, w, y = self.j, self.w, F(bit)
        for i, item in enumerate(self.items):
            row = self.rows[i]
            rate = F(item.rate)
            n = self.counts[i].get(row, 0)
            if n < item.limit:
                self.counts[i][row] = n + 1
                rate = max(rate, F(1.0) / (F(n) + F(1.5)))
            c = self.curve(i, row)
            c[j] = c[j] + (y - c[j]) * (rate * (F(1.0) - w))
            c[j + 1] = c[j + 1] + (y - c[j + 1]) * (rate * w)


# ---- word contexts (contexts/word.py) ---------------------------------------------------------------------------

def combine(h: int, x: int) -> int:
    """The family's 32-bit hash step of (h, x): a MurmurHash3 block, then the finaliser's avalanche."""
    k = (x * 0xCC9E2D51) & M32
    k = ((k << 15) | (k >> 17)) & M32
    k = (k * 0x1B873593) & M32
    h = (h ^ k) & M32
    h = ((h << 13) | (h >> 19)) & M32
    h = (h * 5 + 0xE6546B64) & M32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & M32
    h ^= h >> 13
    return h


def is_letter(byte: int) -> bool:
    return chr(byte).isascii() and chr(byte).isalpha() or byte >= 128


def fold(byte: int) -> int:
    return ord(chr(byte).lower()) if byte < 128 else byte


def word_hash(word: bytes) -> int:
    """Hash of one word, from 0 (= no word) one letter at a time."""
    h = 0
    for c in word:
        h = combine(h + 1, fold(c))
    return h


def words_before(stream: bytes, t: int, depth: int) -> list[int]:
    """words[0..depth-1] after stream[t]: the word being read (0 if stream[t] is not a letter), then the words
    before it, newest first, found by splitting the stream instead of keeping a register (0 when fewer)."""
    seen, current = [], b""
    for c in stream[:t + 1]:
        if is_letter(c):
            current += bytes([c])
        elif current:
            seen.append(current)
            current = b""
    out = [word_hash(current) if current else 0] + [word_hash(w) for w in reversed(seen)]
    return (out + [0] * depth)[:depth]


def word_slot(index: int, item, words: list[int], stream: bytes, t: int) -> int:
    h = index + 1
    for k in range(item.first, item.first + item.count):
        h = combine(h, words[k])
    for k in range(item.bytes):
        h = combine(h, stream[t - k] if t - k >= 0 else 0)
    return h


# ---- record contexts (contexts/record.py) -----------------------------------------------------------------------

def hash3(a: int, b: int, c: int) -> int:
    h = (a * 0x9E3779B1 + b) & M32
    h = ((h ^ (h >> 15)) * 0x85EBCA6B + c) & M32
    h = ((h ^ (h >> 13)) * 0xC2B2AE35) & M32
    return h ^ (h >> 16)


class ReferenceRecord:
    """paq8's record detector: a byte value seen at five positions equally spaced r apart (r in 2..499) confirms
    the period r; of two candidate periods the weaker is replaced by a new one; a candidate confirmed more than
    16 times (without a reset) becomes the record length and the column restarts at 0 with the next byte."""

    CONFIRMATIONS = 16
    MAX_RECORD = 499

    def __init__(self):
        self.occurrences = {}                # byte -> its positions (bytes seen when it was the last byte)
        self.candidates = [[0, 0], [0, 0]]
        self.length = 2
        self.start = 0
        self.detected_at = []                # (position, length) of each change of the record length

    def see(self, stream: bytes, t: int, kinds) -> list[int]:
        """The slots after stream[t] (position t + 1), for each kind."""
        c, pos = stream[t], t + 1
        occ = self.occurrences.setdefault(c, [])
        if len(occ) >= 4:
            r = pos - occ[-1]
            gaps = [occ[-1] - occ[-2], occ[-2] - occ[-3], occ[-3] - occ[-4]]
            if 1 < r <= self.MAX_RECORD and gaps == [r, r, r]:
                cand = self.candidates
                if r == cand[0][0]:
                    cand[0][1] += 1
                elif r == cand[1][0]:
                    cand[1][1] += 1
                elif cand[0][1] > cand[1][1]:
                    cand[1] = [r, 1]
                else:
                    cand[0] = [r, 1]
                for k in range(2):
                    if cand[k][1] > self.CONFIRMATIONS and self.length != cand[k][0]:
                        self.length, self.start = cand[k][0], pos
                        self.detected_at.append((pos, self.length))
                        cand[0][1] = cand[1][1] = 0
        previous = occ[-1] if occ else 0
        occ.append(pos)
        length = self.length
        column = (pos - self.start) % length

        def back(n):  # the byte n bytes before the next one (0 before the stream)
            return stream[t + 1 - n] if t + 1 - n >= 0 else 0

        above = back(length)
        out = []
        for kind in kinds:
            if kind == "above":
                out.append(hash3(length, above, back(2 * length) + 256))
            elif kind == "above_left":
                out.append(hash3(length + 1024, above, c))
            elif kind == "column":
                out.append(hash3(length + 2048, column, above))
            else:
                distance = pos - previous if previous else 0
                out.append(hash3(3072, c, min(255, distance) // 4))
        return out


# ---- text contexts (contexts/text.py) ---------------------------------------------------------------------------

def byte_class(c: int) -> int:
    """0 control, 1 space or tab, 2 LF or CR, 3 digit, 4 lower case, 5 upper case, 6 other printable, 7 >= 128."""
    if c >= 128:
        return 7
    ch = chr(c)
    if ch in " \t":
        return 1
    if ch in "\n\r":
        return 2
    if ch.isdigit():
        return 3
    if ch.islower():
        return 4
    if ch.isupper():
        return 5
    return 6 if ch.isprintable() else 0


def text_slots(stream: bytes, t: int, items, lfs: list[int], history: int = 1000) -> tuple[list[int], int, int]:
    """(slots, column, above) after stream[t], from the stream and `lfs`, the indices of its LFs up to t: the
    column of the next byte is the number of bytes since the last LF (or since the stream began); the byte above
    is the byte at that column of the line before (its LF included), + 256, or 0 when there is no line before,
    it is shorter, or the byte is `history` or more bytes back."""
    begin = lfs[-1] + 1 if lfs else 0
    column = t + 1 - begin
    above = 0
    if lfs:
        prev_begin = lfs[-2] + 1 if len(lfs) >= 2 else 0
        at = prev_begin + column
        if at <= lfs[-1] and t + 1 - at < history:
            above = stream[at] + 256
    out = []
    for item in items:
        if item.kind == "classes":
            mask = (1 << 3 * item.length) - 1
            h = 0
            for k in range(min(item.length, t + 1)):
                h |= byte_class(stream[t - k]) << 3 * k
            out.append(hash3(1, h, mask))
        elif item.kind == "column_above":
            out.append(hash3(2, min(column, 255), above))
        else:
            out.append(hash3(3, above, stream[t]))
    return out, column, above


# ---- signals (contexts/signals.py) ------------------------------------------------------------------------------

def active_slot(inputs, members, bit_context: int) -> int:
    """8 * (members with a non-zero input) + bits of the current byte seen so far."""
    active = sum(1 for k in members if float(inputs[k]) != 0.0)
    return 8 * active + (bit_context + 1).bit_length() - 1


def match_slot(lengths, expected_bytes) -> int:
    """The longest match's expected byte, its length in steps 1 (< 16), 2 (< 32), 3 above it; 0 without a match
    (the first of equally long matches wins)."""
    best, byte = 0, 0
    for length, b in zip(lengths, expected_bytes):
        if length > best:
            best, byte = length, b
    if best == 0:
        return 0
    return (1 if best < 16 else 2 if best < 32 else 3) << 8 | byte


def misses_after(misses: int, probability, bit: int) -> int:
    return ((misses << 1) | int((float(probability) >= 0.5) != (bit == 1))) & 255


# ---- Indirect with a count-based rate (models/indirect.py) -----------------------------------------------------

class ReferenceAdaptiveIndirect:
    """gmix's Indirect (context and partial byte -> two bit-history states -> two logits), where a logit's rate
    is max(learning_rate, 1 / (updates + 1.5)) during its first `limit` updates (0: always learning_rate)."""

    def __init__(self, table_bits, learning_rate, limit, logistic, nonstationary, run_map):
        self.size = (1 << table_bits) * 256 + 1
        self.states = {}                                  # entry -> [nonstationary (255 = unseen), run map]
        self.logits = [[F(0)] * 256, [F(0)] * 256]
        self.counts = [[0] * 256, [0] * 256]
        self.rate, self.limit = F(learning_rate), limit
        self.logistic, self.next_ns, self.next_run = logistic, nonstationary, run_map

    def predict(self, context, bit_context):
        self.entry = (((context << 8) & M32) + bit_context) % self.size
        ns, run = self.states.get(self.entry, [255, 0])
        return (self.logits[0][ns] if ns != 255 else F(0), self.logits[1][run] if run != 0 else F(0))

    def rate_of(self, k, state):
        n = self.counts[k][state]
        if n < self.limit:
            self.counts[k][state] = n + 1
            return max(self.rate, F(1.0) / (F(n) + F(1.5)))
        return self.rate

    def learn(self, bit):
        ns, run = self.states.get(self.entry, [255, 0])
        ns = 0 if ns == 255 else ns
        y = F(bit)
        for k, state in ((0, ns), (1, run)):
            logit = self.logits[k][state]
            p = self.logistic(logit)
            self.logits[k][state] = logit + (y - p) * self.rate_of(k, state)
        self.states[self.entry] = [int(self.next_ns[ns, bit]), int(self.next_run[run * 2 + bit])]
