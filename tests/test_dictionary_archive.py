"""The dictionary transform in archives (codec.use_dictionary, archive format 5): `auto` uses it for English-like
text and for nothing else, and every way of compressing and decompressing gives the original bytes back, with the
same archive whichever way it was made."""
from __future__ import annotations

import io

import pytest

import gmixpy
from gmixpy.archive import FLAG_BLOCKS, FLAG_DICTIONARY, ArchiveError, decode_header
from gmixpy.codec import _Untransformed
from gmixpy.preprocess.dictionary import encode
from helpers import run, save_trained_tiny, usage_error

RUSSIAN = ("Все счастливые семьи похожи друг на друга, каждая несчастливая семья несчастлива по-своему. "
           * 40).encode()


def test_auto_uses_it_for_english_text(alice):
    text = alice[:20000]
    blob = gmixpy.compress(text, preset="tiny")
    h = decode_header(blob)
    assert h.with_dictionary and h.version >= 5
    assert (h.length, h.coded_length) == (len(text), len(encode(text)))
    assert h.coded_length < 0.7 * len(text)
    assert gmixpy.decompress(blob) == text
    plain = gmixpy.compress(text, preset="tiny", dictionary="off")
    assert not decode_header(plain).with_dictionary and gmixpy.decompress(plain) == text
    assert len(blob) < len(plain)


@pytest.mark.parametrize("kind", ["binary", "russian", "empty", "all bytes"])
def test_auto_leaves_other_data_alone(kind, binary_sample):
    data = {"binary": binary_sample[:5000], "russian": RUSSIAN, "empty": b"", "all bytes": bytes(range(256)) * 4}[kind]
    blob = gmixpy.compress(data, preset="tiny")
    assert not decode_header(blob).with_dictionary
    assert gmixpy.decompress(blob) == data


def test_forced_on_any_bytes_round_trips(binary_sample):
    for data in (binary_sample[:3000], RUSSIAN[:2000], b"", b"\x0c", b"ABc&quot;\x07\x06\x08@\xff"):
        blob = gmixpy.compress(data, preset="tiny", dictionary="on")
        assert decode_header(blob).with_dictionary
        assert gmixpy.decompress(blob) == data


def test_only_for_the_stronger_presets_without_a_model(alice, tmp_path):
    text = alice[:3000]
    assert not decode_header(gmixpy.compress(text, preset="gmix-tiny")).with_dictionary
    with pytest.raises(ValueError, match="dictionary transform"):
        gmixpy.compress(text, preset="gmix-tiny", dictionary="on")
    from gmixpy import serialize

    model = serialize.load(str(save_trained_tiny(tmp_path / "m.gmxm", alice[5000:8000])))
    blob = gmixpy.compress(text, model=model)
    assert not decode_header(blob).with_dictionary
    assert gmixpy.decompress(blob, model=model) == text
    with pytest.raises(ValueError, match="does not fit the model"):
        gmixpy.compress(text, model=model, dictionary="on")


def test_blocks_cut_the_transformed_bytes(alice):
    text = alice[:30000]
    one = gmixpy.compress(text, preset="tiny", block_size=4096)
    h = decode_header(one)
    assert h.flags & (FLAG_DICTIONARY | FLAG_BLOCKS) == FLAG_DICTIONARY | FLAG_BLOCKS
    assert gmixpy.compress(text, preset="tiny", block_size=4096, threads=2) == one
    assert gmixpy.decompress(one, threads=2) == gmixpy.decompress(one) == text


def test_command_line_file_stdin_info(alice, tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(alice[:12000])
    assert run("compress", src, "-p", "tiny", "-o", tmp_path / "a.gmx", "-q").returncode == 0
    piped = run("compress", "-", "-p", "tiny", "-c", "-q", input=alice[:12000])
    assert piped.returncode == 0 and piped.stdout == (tmp_path / "a.gmx").read_bytes()
    info = run("info", tmp_path / "a.gmx")
    assert "dictionary transform:  English" in info.stdout.decode()
    assert "original length:       12,000 bytes" in info.stdout.decode()
    assert run("decompress", tmp_path / "a.gmx", "-o", tmp_path / "back.txt").returncode == 0
    assert (tmp_path / "back.txt").read_bytes() == alice[:12000]
    assert run("compress", src, "-p", "tiny", "--dictionary", "off", "-o", tmp_path / "b.gmx", "-q").returncode == 0
    assert "dictionary transform:  none" in run("info", tmp_path / "b.gmx").stdout.decode()
    usage_error(run("compress", src, "-p", "gmix-tiny", "--dictionary", "on", "-o", tmp_path / "c.gmx"),
                "--dictionary on")
    usage_error(run("compress", src, "--dictionary", "maybe", "-o", tmp_path / "c.gmx"), "--dictionary")


def test_a_damaged_transform_is_an_archive_error():
    out = _Untransformed(io.BytesIO())
    out.write(b"plain")
    out.write(b"\x0c")  # an escape with nothing after it
    with pytest.raises(ArchiveError, match="dictionary transform"):
        out.finish()


def test_one_block_notice_counts_the_transformed_bytes(alice, tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(alice[:5000])  # two blocks of 4 KiB as it is, one once transformed
    proc = run("compress", src, "-p", "tiny", "--block-size", "4K", "-T", "2", "-o", tmp_path / "a.gmx")
    assert proc.returncode == 0, proc.stderr
    coded = decode_header((tmp_path / "a.gmx").read_bytes()).coded_length
    assert f"one block of at most 4,096 bytes after the dictionary transform ({coded:,} bytes)" in proc.stderr.decode()
