"""The dictionary transform (gmixpy/preprocess/dictionary.py): byte for byte gmix's `dictionary-prep -e` on the
references it wrote (tests/reference/dictionary), reversible on any input, the same in chunks of any size, and a
decoder that rejects what the encoder cannot have written with DictionaryError and nothing else.  Pure Python: no
compiled kernel is involved."""
from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

import pytest

from gmixpy.preprocess.dictionary import Decoder, Dictionary, DictionaryError, Encoder, decode, encode

REPO = Path(__file__).resolve().parent.parent
REFERENCE = json.loads((REPO / "tests" / "reference" / "dictionary" / "english.json").read_text())
CASES = {name: (bytes.fromhex(case["input"]), bytes.fromhex(case["encoded"]))
         for name, case in REFERENCE["cases"].items()}


@pytest.fixture(scope="module")
def alice() -> bytes:
    return (REPO / "data" / "alice29.txt").read_bytes()


@pytest.fixture(scope="module")
def english() -> Dictionary:
    return Dictionary.english()


def random_text(rng: random.Random, words: list[bytes], pieces: int) -> bytes:
    """A mix of listed words in every case, runs of letters, quotes, flag and high bytes, punctuation and long runs
    of capitals (where words are cut at 59 letters)."""
    out = []
    for _ in range(pieces):
        r = rng.random()
        if r < 0.35:
            word = rng.choice(words)
            shape = rng.random()
            if shape < 0.3:
                word = word.capitalize()
            elif shape < 0.45:
                word = word.upper()
            elif shape < 0.5:
                word = bytes(c - 32 if rng.random() < 0.5 else c for c in word)
            out.append(word)
        elif r < 0.45:
            out.append(rng.choice([b"&quot;", b"&quo", b"&", b";", b"quot", b"&&quot;", b"\0", b"\0" * 6]))
        elif r < 0.55:
            out.append(bytes([rng.choice(b"\x06\x07\x08\x0c@\x80\xcf\xd0\xf0\xff")]))
        elif r < 0.6:
            out.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5))))
        elif r < 0.63:
            out.append(rng.choice(b"AaZq").to_bytes(1, "little") * rng.choice([58, 59, 60, 61, 118, 119, 120]))
        elif r < 0.68:
            out.append(bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
                             for _ in range(rng.randrange(1, 80))))
        else:
            out.append(rng.choice([b" ", b"  ", b"\n", b", ", b". ", b"1", b"42", b"-", b"'"]))
    return b"".join(out)


def in_chunks(coder: Encoder | Decoder, data: bytes, rng: random.Random, most: int) -> bytes:
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, most)
        out.append(coder.feed(data[i:i + n]))
        i += n
    return b"".join(out) + coder.finish()


def decodes_or_rejects(data: bytes) -> bytes | None:
    """decode(data), or None where it raises DictionaryError (any other exception fails the test)."""
    try:
        return decode(data)
    except DictionaryError as e:
        assert "\n" not in str(e) and str(e).startswith("dictionary decoder: "), str(e)
        return None


# ---- gmix's encodings ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(CASES))
def test_crafted_inputs_encode_as_gmix_does(name):
    data, expected = CASES[name]
    assert encode(data).hex() == expected.hex()
    assert decode(expected) == data


def test_alice_encodes_as_gmix_does(alice):
    coded = encode(alice)
    assert len(coded) == REFERENCE["alice29.txt"]["size"]
    assert hashlib.sha256(coded).hexdigest() == REFERENCE["alice29.txt"]["sha256"]
    assert decode(coded) == alice


def test_english_word_list(english):
    assert Dictionary.english() is english
    assert len(english.codes) == len(english.words) == 44515 and english.longest == 58
    assert english.codes[b"will"] == b"\x80" and english.words[b"\x80"] == b"will"
    # ranks 80 and 3,920 are the first of two and three bytes
    ranked = sorted(english.codes.items(), key=lambda item: (len(item[1]), item[1]))
    assert [code for _, code in ranked[79:81]] == [b"\xcf", b"\xd0\x80"]
    assert [code for _, code in ranked[3919:3921]] == [b"\xff\xcf", b"\xf0\xd0\x80"]
    assert all(english.words[code] == word for word, code in english.codes.items())


def test_a_word_list_of_its_own():
    """As in gmix, a word is ended by any byte other than a-z (the last one too: without it, it is not listed)."""
    small = Dictionary(b"the\nQuick,brown\r\nfox")
    assert small.codes == {b"the": b"\x80", b"uick": b"\x81", b"brown": b"\x82"} and small.longest == 5
    assert encode(b"The brownie quick fox", small) == b"@\x80 brownie quick fox"
    assert decode(b"@\x80 brownie quick fox", small) == b"The brownie quick fox"
    # no word of more than longest + 1 letters: each capital a capitalised word of its own
    empty = Dictionary(b"")
    assert empty.longest == 0 and encode(b"Hi THERE", empty) == b"@hi @t@h@e@r@e"
    assert decode(b"@hi @t@h@e@r@e", empty) == b"Hi THERE"


# ---- reversibility ------------------------------------------------------------------------------------------

def test_round_trip_of_random_inputs(english):
    rng = random.Random(1)
    words = list(english.codes)
    for _ in range(2000):
        data = random_text(rng, words, rng.randrange(0, 25))
        assert decode(encode(data)) == data, data
    for _ in range(1000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 60)))
        assert decode(encode(data)) == data, data


def test_round_trip_where_gmix_decodes_wrongly():
    """gmix keeps an uppercase word going through a capital flag: a run of 59k+1 capitals (k >= 1) that ends in a
    capitalised word, or in A or S (listed words), came back wrong from its decoder ("A" * 59 + "!" here)."""
    for data in (b"A" * 60, b"A" * 59 + b"Bc", b"S" * 119 + b".", b"Q" * 178 + b"rst", b"A" * 60 + b"bc" * 40):
        assert decode(encode(data)) == data


# ---- streaming ----------------------------------------------------------------------------------------------

def test_chunks_of_any_size_give_the_same_bytes(english, alice):
    rng = random.Random(2)
    words = list(english.codes)
    for _ in range(1500):
        data = random_text(rng, words, rng.randrange(0, 25))
        coded = encode(data)
        assert in_chunks(Encoder(english), data, rng, rng.choice([1, 2, 3, 8, 64])) == coded, data
        assert in_chunks(Decoder(english), coded, rng, rng.choice([1, 2, 3, 8, 64])) == data, data
    coded = encode(alice)
    assert in_chunks(Encoder(english), alice, rng, 64) == coded
    assert in_chunks(Decoder(english), coded, rng, 64) == alice
    for name, (data, expected) in CASES.items():
        assert in_chunks(Encoder(english), data, rng, 1) == expected, name
        assert in_chunks(Decoder(english), expected, rng, 1) == data, name


def test_a_quote_across_chunks(english):
    encoder = Encoder(english)
    out = encoder.feed(b"say &") + encoder.feed(b"qu") + encoder.feed(b"ot") + encoder.feed(b";") + encoder.finish()
    assert out == encode(b"say &quot;") and out.endswith(b"&\x08")


def test_coders_start_afresh_after_finish(english):
    encoder, decoder = Encoder(english), Decoder(english)
    for data in (b"ABC &quo", b"t; Hello", b"WORLD"):
        coded = encoder.feed(data) + encoder.finish()
        assert coded == encode(data)
        assert decoder.feed(coded) + decoder.finish() == data


# ---- malformed input ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, message", [
    (b"a\x0c", "ends inside an escape"),
    (b"\xd0", "ends inside a word code"),
    (b"ab \xf0\xd0", "ends inside a word code"),
    (b"\xff\xef\xcf", "unknown word code ffefcf"),  # past the last word's code
    (b"\xd0A", "unknown word code d041"),
    (b"x @", "ends after a capital flag"),
    (b"@1", "capital flag not followed by a word (byte 1)"),
    (b"@\x0c\x80", "capital flag not followed by a word"),
    (b"@@a", "capital flag not followed by a word"),
    (b"@\x07a", "capital flag not followed by a word"),
    (b"@A", "capital flag not followed by a word"),
    (b"\x07aB", "raw capital letter in an uppercase word (byte 2)"),
])
def test_malformed_input_is_rejected(data, message):
    with pytest.raises(DictionaryError, match=re.escape(message)):
        decode(data)
    rng = random.Random(len(data))
    with pytest.raises(DictionaryError, match=re.escape(message.split(" (")[0])):
        in_chunks(Decoder(Dictionary.english()), data, rng, 1)


def test_decoder_on_random_bytes_rejects_or_decodes():
    rng = random.Random(3)
    rejected = 0
    for _ in range(3000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
        whole = decodes_or_rejects(data)
        rejected += whole is None
        try:
            chunked = in_chunks(Decoder(Dictionary.english()), data, rng, 5)
        except DictionaryError:
            chunked = None
        assert chunked == whole, data
    assert 1000 < rejected < 3000


def test_truncated_encodings_decode_to_a_prefix_or_are_rejected(english, alice):
    rng = random.Random(4)
    words = list(english.codes)
    samples = [random_text(rng, words, rng.randrange(1, 20)) for _ in range(300)] + [alice[:3000]]
    for data in samples:
        coded = encode(data)
        for cut in range(len(coded)):
            part = decodes_or_rejects(coded[:cut])
            assert part is None or data.startswith(part), (data, cut)


def test_unknown_codes_are_rejected(english):
    rng = random.Random(5)
    unknown = 0
    for _ in range(2000):
        first = rng.randrange(0xD0, 0x100)
        if rng.random() < 0.5:
            code = bytes((first, rng.randrange(0xD0)))
        else:
            code = bytes((first, rng.randrange(0xD0, 0x100), rng.randrange(256)))
        if code in english.words:
            assert decode(b"x " + code) == b"x " + english.words[code]
        else:
            unknown += 1
            with pytest.raises(DictionaryError, match="unknown word code"):
                decode(b"x " + code)
    assert unknown > 500


def test_codes_in_bulk_are_the_codes_by_rank():
    from gmixpy.preprocess.dictionary import _code, _codes

    for n in (0, 1, 80, 81, 3920, 3921, 44880, 44881, 50000, 126800):
        assert _codes(n) == [_code(rank) for rank in range(n)], n
