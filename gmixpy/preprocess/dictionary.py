"""gmix's dictionary transform: a reversible rewriting of English-like text into fewer, more predictable bytes.

Ported from gmix (src/preprocess/dictionary.cpp, GPL-3.0), whose models compress the transformed bytes better than
the text itself: a frequent word becomes one to three bytes that say the same thing, and the models see more of
the text in the same context.

The transform, byte for byte as gmix's `dictionary-prep -e`:

* A word list (the bundled english.dic: lowercase words, most frequent first) gives each word a code by its rank:
  one byte 0x80-0xCF for the first 80 words, two bytes (0xD0-0xFF, then 0x80-0xCF) for the next 3,840, three bytes
  (0xF0-0xFF, 0xD0-0xEF, 0x80-0xCF) for the next 40,960.
* The input is cut into words of letters a-z/A-Z: all lowercase, capitalised ("Word": one uppercase letter, then
  lowercase) or all uppercase ("WORD"), and never longer than the longest listed word plus one letter (a longer run
  of letters is cut into several words).  A capitalised word is preceded by the flag byte 0x40 ('@'), an uppercase
  one by 0x07, and an uppercase word directly followed by a lowercase letter is closed by 0x06.  The word itself
  (lowercased) becomes its code, or, when it is not listed and is longer than 7 letters, its longest listed suffix
  or else prefix of at least 7 letters becomes a code and the rest stays letters; else it stays letters.
* Any other byte stays as it is, except the flag bytes 0x06, 0x07, 0x08, 0x0C, 0x40 and bytes >= 0x80, which are
  escaped by 0x0C.
* `&quot;` (HTML's double quote) becomes "&" and the byte 0x08, except directly after another `&quot;` or a
  cut-short one such as `&qu` (gmix's matching does not start again at the "&" that breaks a match).

The decoder reverses that.  It differs from gmix's in two respects, both only on streams gmix decodes wrongly:
malformed input (an unknown code, an escape or a code cut off by the end, a capital flag not followed by a word, a
raw capital letter in an uppercase word) raises DictionaryError where gmix writes an empty word or garbage; and a
capital flag ends an uppercase word.  gmix keeps uppercasing there, so that a run of 59k+1 capitals (k >= 1)
followed by a lowercase letter, or ending in A or S (listed words), comes back wrong from its decoder (e.g. "A" *
60 as "A" * 59 + "!"): a run of capitals is cut into words of 59, the last one here a capitalised word.
"""
from __future__ import annotations

import contextlib
import re
import weakref
from importlib.resources import files

CAPITALIZED = 0x40  # the next word is capitalised
UPPERCASE = 0x07  # the next word is in capitals ...
END_UPPER = 0x06  # ... up to here (only needed before a lowercase letter)
ESCAPE = 0x0C  # the next byte is itself
QUOTE = 0x08  # "quot;" after an "&"

# Ranks where codes grow by a byte (gmix's kBoundary1..4).  The fourth range's codes collide with the third's and a
# longer list leaves gmix's code undefined: gmix's lists stay within the third (english.dic has 44,515 words).
_BOUNDARIES = (80, 80 + 3840, 80 + 3840 + 40960, 80 + 3840 + 40960 + 81920)
_LETTERS = bytes(range(ord("A"), ord("Z") + 1)) + bytes(range(ord("a"), ord("z") + 1))
_ESCAPED = re.compile(rb"[\x06\x07\x08\x0c@\x80-\xff]")
# The encoder recognises "&quot;" by comparing each byte with this string at its match state, as gmix does with
# its C string: after a match it compares the next byte with the string's terminating NUL and, if the input goes on
# with NULs, with the bytes after it in memory (four NULs of padding in the reference build, then unrelated text that no
# input is taken to match here).  A mismatching byte is not compared again: it never starts a new match.
_QUOTE_MATCH = b"&quot;" + bytes(5)
_QUOTE_DONE = 6
_MAX_CACHE = 1 << 16

# The decoder's input, in tokens: 1 letters of a word that is not listed, 2 bytes as they are, 3 a code, 4 an
# escaped byte, 5-8 the flags, 9 raw capitals (which the encoder never writes), 10 an escape or a code cut off by the
# end of what has arrived so far.  Every byte belongs to one of them.
_DECODE_TOKEN = re.compile(
    rb"([a-z]+)"
    rb"|([^A-Za-z\x06-\x08\x0c@\x80-\xff]+)"
    rb"|([\x80-\xcf]|[\xd0-\xff][\x00-\xcf]|[\xd0-\xff][\xd0-\xff][\x00-\xff])"
    rb"|\x0c([\x00-\xff])"
    rb"|(@)|(\x07)|(\x06)|(\x08)"
    rb"|([A-Z]+)"
    rb"|(\x0c|[\xd0-\xff][\xd0-\xff]?)\Z"
)


_english: weakref.ref[Dictionary] | None = None  # the English list while something holds it (Dictionary.english)
_sharing = 0  # Dictionary.shared() blocks open
_shared: list = []  # the English list, held while a Dictionary.shared() block is open and it was loaded in it


class DictionaryError(ValueError):
    """Input the dictionary decoder cannot undo (not written by the encoder, or damaged), or an unusable word list."""


def _code(rank: int) -> bytes:
    """The code of the word at `rank` in the list (gmix's Dictionary constructor, in the order the bytes are
    written)."""
    b1, b2, b3, b4 = _BOUNDARIES
    if rank < b1:
        return bytes((0x80 + rank,))
    if rank < b2:
        return bytes((0xD0 + (rank - b1) // 80, 0x80 + (rank - b1) % 80))
    if rank < b4:
        block = (rank - b2) // 80
        first = 0xF0 + block // 32 if rank < b3 else 0xD0 + block // 32
        return bytes((first, 0xD0 + block % 32, 0x80 + (rank - b2) % 80))
    raise DictionaryError(f"the word list has more than {b4:,} words")


def _codes(n: int) -> list[bytes]:
    """The codes of ranks 0..n-1, _code's in bulk: the first three ranges as products of their byte ranges (a
    word list is loaded at every start-up, so this is on the path of compressing a small file)."""
    b1, b2, b3, _ = _BOUNDARIES
    codes = [bytes((0x80 + i,)) for i in range(min(n, b1))]
    if n > b1:
        codes += [bytes((a, b)) for a in range(0xD0, 0xD0 + (b2 - b1) // 80) for b in range(0x80, 0xD0)][:n - b1]
    if n > b2:
        codes += [bytes((a, b, c)) for a in range(0xF0, 0x100) for b in range(0xD0, 0xF0)
                  for c in range(0x80, 0xD0)][:n - b2]
    return codes + [_code(rank) for rank in range(b3, n)]


class Dictionary:
    """A word list and its codes.

    `codes` maps each listed word (lowercase bytes) to its code (1 to 3 bytes), `words` each code to its word, and
    `longest` is the length of the longest word.  As in gmix, a word is a run of bytes a-z ended by any other byte
    (a last word without one is not listed), and a word listed twice keeps its last rank.  A list whose longest word
    has fewer than 3 letters cuts the "quot" of `&quot;` into several words, and gmix's encoding of it then does not
    decode back (english.dic's longest word has 58 letters).  DictionaryError for more than 126,800 words, where
    gmix's codes run out.
    """

    def __init__(self, words: bytes):
        listed = re.findall(rb"[a-z]+", words)
        if words and words[-1:].islower():
            listed.pop()
        codes = _codes(len(listed))
        self.codes: dict[bytes, bytes] = dict(zip(listed, codes))  # a word listed twice: its last rank
        self.words: dict[bytes, bytes] = dict(zip(codes, listed))
        self.longest = max(map(len, listed), default=0)
        most = self.longest + 1
        # The encoder's words, as gmix's Encode cuts them: capitals (2 or more), a capital and lowercase letters, or
        # lowercase letters, at most longest + 1 letters; then any other bytes, in runs.
        capitals = rb"[A-Z]{2,%d}" % most if most >= 2 else rb"(?!)"
        self._tokens = re.compile(rb"(%s)|([A-Z][a-z]{0,%d})|([a-z]{1,%d})|[^A-Za-z]+" % (capitals, most - 1, most))
        # How many of the letters of "quot" are in the encoder's last word when "&quot;" completes (all 4 unless
        # a word holds fewer than 4 letters): gmix drops that word and writes QUOTE.
        self._quot_word = 4 - most * (3 // most)
        self._cache: dict[bytes, bytes] = {}

    @classmethod
    def english(cls) -> Dictionary:
        """gmix's English word list (english.dic, bundled): one instance while anything holds it, loaded again
        (30-60 ms) once nothing does.  Not kept for the process: its ~10 MB would stay beside the model that codes
        the transformed input, at the peak of the run."""
        global _english
        dictionary = _english() if _english is not None else None
        if dictionary is None:
            dictionary = cls((files("gmixpy") / "data" / "english.dic").read_bytes())
            _english = weakref.ref(dictionary)
        if _sharing and not _shared:
            _shared.append(dictionary)
        return dictionary

    @staticmethod
    @contextlib.contextmanager
    def shared():
        """Within the block, the English list stays loaded once loaded, so that steps which each ask for it (the
        choice of the transform, then the transform) share one load; it is let go at the end of the block."""
        global _sharing
        _sharing += 1
        try:
            yield
        finally:
            _sharing -= 1
            if not _sharing:
                _shared.clear()

    def _body(self, word: bytes) -> bytes:
        """A lowercase word's encoding without its flags (gmix's EncodeWord and EncodeSubstring)."""
        code = self.codes.get(word)
        if code is not None:
            return code
        if len(word) > 7:
            size = min(len(word) - 1, self.longest)
            for start in range(len(word) - size, len(word) - 6):
                code = self.codes.get(word[start:])
                if code is not None:
                    return word[:start] + code
            for end in range(size, 6, -1):
                code = self.codes.get(word[:end])
                if code is not None:
                    return code + word[end:]
        return word

    def _encode_token(self, token: bytes, group: int | None) -> bytes:
        """The encoding of one of the encoder's tokens (a word without END_UPPER, or a run of other bytes), kept:
        text repeats its words and its spaces and punctuation."""
        if group is None:
            out = _ESCAPED.sub(b"\x0c\\g<0>", token)
        elif group == 1:
            out = bytes((UPPERCASE,)) + self._body(token.lower())
        elif group == 2:
            out = bytes((CAPITALIZED,)) + self._body(token.lower())
        else:
            out = self._body(token)
        if len(self._cache) >= _MAX_CACHE:  # binary data rarely repeats its runs: keep the memory bounded
            self._cache.clear()
        self._cache[token] = out
        return out


def _scan_quotes(buf: bytes, end: int, state: int) -> tuple[list[int], int]:
    """Where "&quot;" completes in buf[:end] (the positions of its ";"), given the match state before buf, and the
    state after buf[:end] (gmix's quote_state)."""
    done = []
    i = 0
    while True:
        if state == 0:
            i = buf.find(b"&", i, end)
            if i < 0:
                return done, 0
            state, i = 1, i + 1
        while i < end:
            c = buf[i]
            i += 1
            if state < len(_QUOTE_MATCH) and c == _QUOTE_MATCH[state]:
                state += 1
                if state == _QUOTE_DONE:
                    done.append(i - 1)
            else:
                state = 0
                break
        else:
            return done, state


class Encoder:
    """The transform, streaming: `feed` returns what the bytes given so far determine, `finish` the rest.

    The concatenated output is gmix's `dictionary-prep -e` of the concatenated input, however it was cut.  The
    last word of the input so far is held back until a byte ends it (or finish), since more letters may extend it.
    """

    def __init__(self, dictionary: Dictionary):
        self.dictionary = dictionary
        self._pending = b""  # the held-back word: letters that start a word of gmix's
        self._quote = 0  # the "&quot;" match state after the bytes before _pending

    def feed(self, data: bytes) -> bytes:
        buf = self._pending + bytes(data)
        n = len(buf)
        letters = n - len(buf.rstrip(_LETTERS))
        held = n
        if letters:
            for m in self.dictionary._tokens.finditer(buf, n - letters):
                held = m.start()
        out: list[bytes] = []
        self._encode(buf, held, buf[held] if held < n else None, out)
        self._pending = buf[held:]
        return b"".join(out)

    def finish(self) -> bytes:
        """The encoding of the held-back word (gmix writes the last word of its input as at any other end); the
        encoder is then ready for a new input."""
        out: list[bytes] = []
        self._encode(self._pending, len(self._pending), None, out)
        self._pending, self._quote = b"", 0
        return b"".join(out)

    def _encode(self, buf: bytes, end: int, after: int | None, out: list[bytes]) -> None:
        """Encode buf[:end], which starts and ends where a word may start; `after` is the byte after it (None: the
        end of the input)."""
        done, self._quote = _scan_quotes(buf, end, self._quote)
        start = 0
        for semicolon in done:
            # The "&" was written as itself; the word of "quot" (or its last part) is dropped for QUOTE.
            word = semicolon - self.dictionary._quot_word
            self._encode_range(buf, start, word, buf[word], out)
            out.append(bytes((QUOTE,)))
            start = semicolon + 1
        self._encode_range(buf, start, end, after, out)

    def _encode_range(self, buf: bytes, start: int, end: int, after: int | None, out: list[bytes]) -> None:
        cache = self.dictionary._cache
        encode_token = self.dictionary._encode_token
        for m in self.dictionary._tokens.finditer(buf, start, end):
            token = m.group()
            group = m.lastindex
            coded = cache.get(token)
            out.append(encode_token(token, group) if coded is None else coded)
            if group == 1:
                stop = m.end()
                following = buf[stop] if stop < end else after
                if following is not None and 0x61 <= following <= 0x7A:
                    out.append(bytes((END_UPPER,)))


class Decoder:
    """The inverse transform, streaming: `feed` returns what the bytes given so far decode to (a code or an escape
    cut by the end of a chunk waits for the next), `finish` checks that the input did not stop in the middle of one.

    Raises DictionaryError, with the position in the encoded input, on anything the encoder cannot have written
    where gmix's decoder would write an empty word or a wrong byte: an unknown code, an escape or a code cut off by
    the end, a capital flag not directly followed by a word, a raw capital letter in an uppercase word.
    """

    def __init__(self, dictionary: Dictionary, lenient: bool = False):
        self.dictionary = dictionary
        self.lenient = lenient  # skip what cannot be undone instead of raising: for text a model generates, where
        #                         a sampled byte may be an unknown code or a flag before a non-word
        self._tail = b""  # an escape or a code that has not arrived in full
        self._pos = 0  # the input position of the start of _tail
        self._upper = False
        self._capital = False

    def feed(self, data: bytes) -> bytes:
        buf = self._tail + bytes(data)
        self._tail = b""
        words = self.dictionary.words
        upper, capital = self._upper, self._capital
        out: list[bytes] = []
        for m in _DECODE_TOKEN.finditer(buf):
            kind = m.lastindex
            if kind == 1 or kind == 3:
                if kind == 1:
                    word = m.group()
                else:
                    word = words.get(m.group())
                    if word is None:
                        if self.lenient:
                            continue
                        raise self._error(m.start(), f"unknown word code {m.group().hex()}")
                # A capital flag turns an uppercase word off (see the module's docstring), so never both.
                if capital:
                    word = word.capitalize()
                    capital = False
                elif upper:
                    word = word.upper()
                out.append(word)
                continue
            if kind == 10:
                self._tail = m.group()
                break
            if capital:
                if not self.lenient:
                    raise self._error(m.start(), "capital flag not followed by a word")
                capital = False
            if kind == 2:
                upper = False
                out.append(m.group())
            elif kind == 4:
                upper = False
                out.append(m.group(4))
            elif kind == 5:
                capital, upper = True, False
            elif kind == 6:
                upper = True
            elif kind == 7:
                upper = False
            elif kind == 8:
                out.append(b"quot;")
            elif kind == 9:
                if upper and not self.lenient:
                    raise self._error(m.start(), "raw capital letter in an uppercase word")
                out.append(m.group())
        self._upper, self._capital = upper, capital
        self._pos += len(buf) - len(self._tail)
        return b"".join(out)

    def finish(self) -> bytes:
        """Nothing more to write (gmix writes words as their codes arrive): raises DictionaryError if the input was
        cut off; the decoder is then ready for a new input."""
        tail, capital, pos = self._tail, self._capital, self._pos
        self._tail, self._pos, self._upper, self._capital = b"", 0, False, False
        if self.lenient:
            return b""
        if tail:
            what = "an escape" if tail[0] == ESCAPE else "a word code"
            raise DictionaryError(f"dictionary decoder: the input ends inside {what} (byte {pos:,})")
        if capital:
            raise DictionaryError(f"dictionary decoder: the input ends after a capital flag (byte {pos - 1:,})")
        return b""

    def _error(self, start: int, message: str) -> DictionaryError:
        return DictionaryError(f"dictionary decoder: {message} (byte {self._pos + start:,})")


class EncodingReader:
    """A reader of the transform of what `src` holds: read(n) returns n encoded bytes (fewer only at its end), read
    from src in blocks of `block` bytes; `consumed` counts the bytes of src read so far.  For streaming text to a
    model that learned the transformed bytes (training, evaluation) without a temporary file."""

    def __init__(self, src, dictionary: Dictionary | None = None, block: int = 1 << 16):
        self.src, self.block = src, block
        self.encoder = Encoder(Dictionary.english() if dictionary is None else dictionary)
        self.buffer = b""
        self.consumed = 0
        self.ended = False

    def read(self, n: int = -1) -> bytes:
        while (n is None or n < 0 or len(self.buffer) < n) and not self.ended:
            data = self.src.read(self.block)
            if data:
                self.consumed += len(data)
                self.buffer += self.encoder.feed(data)
            else:
                self.buffer += self.encoder.finish()
                self.ended = True
        if n is None or n < 0:
            n = len(self.buffer)
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out


def encode(data: bytes, dictionary: Dictionary | None = None) -> bytes:
    """The transform of `data` (gmix's `dictionary-prep -e`); `dictionary`: the English list if None."""
    encoder = Encoder(Dictionary.english() if dictionary is None else dictionary)
    return encoder.feed(data) + encoder.finish()


def decode(data: bytes, dictionary: Dictionary | None = None) -> bytes:
    """The inverse of `encode`; DictionaryError if `data` is not an encoding."""
    decoder = Decoder(Dictionary.english() if dictionary is None else dictionary)
    return decoder.feed(data) + decoder.finish()
