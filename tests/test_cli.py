"""The command line, run as users run it: real processes, exit codes, one-line errors, nothing left behind."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gmixpy.cli import main
from helpers import assert_one_line_error, no_temporaries, run


def test_help_and_version():
    runner = CliRunner()
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0 and "compress" in result.output and "decompress" in result.output
    for cmd in ["compress", "decompress", "info"]:
        result = runner.invoke(main, [cmd, "-h"])
        assert result.exit_code == 0 and "Usage" in result.output
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0 and "gmixpy" in result.output


def test_compress_decompress_files(tmp_path, sample_text):
    src = tmp_path / "sample.txt"
    src.write_bytes(sample_text)
    proc = run("compress", src, "--preset", "tiny")
    assert proc.returncode == 0, proc.stderr
    archive = tmp_path / "sample.txt.gmx"
    assert archive.exists()
    assert "bits per byte" in proc.stderr.decode() and "KB/s" in proc.stderr.decode()
    out = tmp_path / "copy.txt"
    proc = run("decompress", archive, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == sample_text
    proc = run("info", archive)
    assert proc.returncode == 0
    text = proc.stdout.decode()
    assert f"{len(sample_text):,} bytes" in text and "tiny" in text
    assert no_temporaries(tmp_path)


def test_default_output_names(tmp_path):
    src = tmp_path / "a.bin"
    src.write_bytes(b"hello hello hello")
    assert run("compress", src, "-p", "tiny", "-q").returncode == 0
    src.unlink()
    assert run("decompress", tmp_path / "a.bin.gmx", "-q").returncode == 0
    assert src.read_bytes() == b"hello hello hello"


def test_stdin_stdout(tmp_path):
    data = b"streamed through pipes " * 50
    proc = run("compress", "-", "-o", "-", "-p", "tiny", "-q", input=data)
    assert proc.returncode == 0, proc.stderr
    archive = proc.stdout
    assert archive[:4] == b"GMXP"
    proc = run("decompress", "-", "-o", "-", "-q", input=archive)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == data


def test_missing_input(tmp_path):
    proc = run("compress", tmp_path / "nope.txt", "-p", "tiny")
    assert_one_line_error(proc, "no such file")
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_without_force(tmp_path):
    src = tmp_path / "x.txt"
    src.write_bytes(b"some data")
    target = tmp_path / "x.txt.gmx"
    target.write_bytes(b"precious")
    proc = run("compress", src, "-p", "tiny")
    assert_one_line_error(proc, "already exists")
    assert target.read_bytes() == b"precious"
    proc = run("compress", src, "-p", "tiny", "--force", "-q")
    assert proc.returncode == 0
    assert target.read_bytes()[:4] == b"GMXP"
    assert no_temporaries(tmp_path)


def test_checkpoint_path_without_interval_is_left_alone(tmp_path):
    """--checkpoint names where checkpoints would go; without --checkpoint-every none is written, so a file
    already at that path is not this run's checkpoint and must survive the run."""
    src = tmp_path / "in.txt"
    src.write_bytes(b"some text " * 50)
    keep = tmp_path / "notes.txt"
    keep.write_bytes(b"the user's own file")
    assert run("compress", src, "-p", "tiny", "-q", "--checkpoint", keep).returncode == 0
    assert run("train", src, "-p", "tiny", "-q", "-o", tmp_path / "m.gmxm", "--checkpoint", keep).returncode == 0
    assert keep.read_bytes() == b"the user's own file"


def test_same_input_and_output_refused(tmp_path):
    src = tmp_path / "x.gmx"
    src.write_bytes(b"GMXP")
    assert_one_line_error(run("decompress", src, "-o", src, "--force"), "same file")
    assert src.read_bytes() == b"GMXP"


@pytest.fixture(scope="module")
def archive_bytes(tmp_path_factory):
    import gmixpy

    data = (Path(__file__).resolve().parent.parent / "data" / "alice29.txt").read_bytes()[:5000]
    return data, gmixpy.compress(data, preset="tiny")


def test_corrupt_archive(tmp_path, archive_bytes):
    data, blob = archive_bytes
    bad = bytearray(blob)
    bad[len(bad) // 2] ^= 0x40
    path = tmp_path / "bad.gmx"
    path.write_bytes(bytes(bad))
    out = tmp_path / "bad.out"
    proc = run("decompress", path, "-o", out)
    assert_one_line_error(proc, "corrupt")
    assert not out.exists()
    assert no_temporaries(tmp_path)


def test_truncated_archive(tmp_path, archive_bytes):
    data, blob = archive_bytes
    for cut in [3, 20, 60, len(blob) // 2, len(blob) - 1]:
        path = tmp_path / "cut.gmx"
        path.write_bytes(blob[:cut])
        out = tmp_path / "cut.out"
        proc = run("decompress", path, "-o", out)
        assert_one_line_error(proc, "archive")
        assert not out.exists()
        assert no_temporaries(tmp_path)


def test_not_an_archive(tmp_path):
    path = tmp_path / "plain.gmx"
    path.write_bytes(b"just some text, not an archive")
    assert_one_line_error(run("decompress", path, "-o", tmp_path / "o"), "not a gmixpy archive")
    assert_one_line_error(run("info", path), "not a gmixpy archive")


def test_unknown_preset_is_a_usage_error(tmp_path):
    src = tmp_path / "x"
    src.write_bytes(b"x")
    proc = run("compress", src, "--preset", "enormous")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr.decode()


def test_unwritable_output_directory(tmp_path):
    src = tmp_path / "x"
    src.write_bytes(b"abc")
    proc = run("compress", src, "-o", tmp_path / "missing-dir" / "x.gmx", "-p", "tiny")
    assert_one_line_error(proc, "no such file")
