"""Faults: SIGINT and SIGTERM in the middle of every long command, and a full disk.  Each must leave no partial
output (no *.tmp either; a compression with checkpoints keeps the partial archive its checkpoint names, for the
resume), keep the input and any previous output intact, exit with 130 / 143 and say in one line what was kept."""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import time

import pytest
from click.testing import CliRunner

from gmixpy import serialize
from gmixpy.cli import main
from gmixpy.runs import read_checkpoint
from helpers import GMIXPY, Terminal, no_temporaries, one_line, run, save_trained_tiny


def _default_sigint():
    """A job started in the background by a non-interactive shell (as CI may run us) inherits SIGINT ignored,
    and Python then never raises KeyboardInterrupt; give the child the default disposition, as a terminal would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt(args, sig, cwd, started=lambda: True, delay=1.0, bar=True):
    """Run gmixpy with `args` and stderr on a terminal, wait until its progress bar has appeared (unless not `bar`)
    and `started()` holds, let it run `delay` seconds more, send `sig`; return (exit status, what the terminal
    showed)."""
    term = Terminal(*args, cwd=cwd, preexec_fn=_default_sigint)
    deadline = time.monotonic() + 300

    def seen():
        return not bar or b"%" in term.shown or b"B/s" in term.shown

    while not (seen() and started()) and term.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert term.proc.poll() is None, f"finished before the signal: {term.text()}"
    time.sleep(delay)
    term.proc.send_signal(sig)
    return term.wait(timeout=120)


@pytest.fixture(scope="module")
def big_input(alice):
    # ~600 KB: tens of seconds with the tiny preset, so the signal always lands in the middle
    return b"".join(alice[i:] + alice[:i] for i in (0, 1000, 5000, 20000))


def writing(directory):
    """A test of whether a command has started writing its output (a temporary file) in `directory`."""
    return lambda: not no_temporaries(directory)


def _check(code, err, sig, fragment):
    want = 130 if sig == signal.SIGINT else 143
    assert code == want, (code, err)
    assert fragment in one_line(err), err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_compress(tmp_path, big_input, sig):
    src = tmp_path / "big.txt"
    src.write_bytes(big_input)
    out = tmp_path / "big.txt.gmx"
    out.write_bytes(b"previous archive")
    code, err = interrupt(["compress", src, "-p", "tiny", "--force"], sig, tmp_path, started=writing(tmp_path))
    _check(code, err, sig, f"{src} is intact")
    assert src.read_bytes() == big_input
    assert out.read_bytes() == b"previous archive"
    assert no_temporaries(tmp_path)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_compress_with_checkpoints(tmp_path, big_input, big_archive, sig):
    """Interrupted after a checkpoint: the checkpoint and the partial archive it names are kept (and the line says
    so), and resuming gives exactly the archive of an uninterrupted run."""
    src = tmp_path / "big.txt"
    src.write_bytes(big_input)
    ckpt = tmp_path / "big.txt.gmx.ckpt"
    partial = tmp_path / "big.txt.gmx.partial"
    code, err = interrupt(["compress", src, "-p", "tiny", "--checkpoint-every", "65536"], sig, tmp_path,
                          started=ckpt.exists, delay=0.5)
    history = tmp_path / "big.txt.gmx.partial.history"
    _check(code, err, sig, f"gmixpy resume {ckpt}; the archive so far is kept in {partial} (and the model's byte "
           f"history in {history}) for the resume")
    assert not (tmp_path / "big.txt.gmx").exists()
    assert no_temporaries(tmp_path)
    assert ckpt.exists() and partial.exists() and history.exists()
    _, meta, run_state = read_checkpoint(str(ckpt))
    assert "output" not in run_state and partial.stat().st_size >= meta["partial_length"]
    proc = run("resume", ckpt, "-q")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "big.txt.gmx").read_bytes() == big_archive
    assert not ckpt.exists() and not partial.exists() and not history.exists() and no_temporaries(tmp_path)


def test_interrupt_before_first_checkpoint_says_so(tmp_path, big_input):
    """A checkpoint interval longer than the input: none is written, so the line must not offer one to resume."""
    src = tmp_path / "big.txt"
    src.write_bytes(big_input)
    ckpt = tmp_path / "big.txt.gmx.ckpt"
    code, err = interrupt(["compress", src, "-p", "tiny", "--checkpoint-every", str(10 * len(big_input))],
                          signal.SIGINT, tmp_path, delay=0.2)
    _check(code, err, signal.SIGINT, "no checkpoint had been written yet; no partial output was left")
    assert "gmixpy resume" not in err
    assert not ckpt.exists() and not (tmp_path / "big.txt.gmx").exists() and no_temporaries(tmp_path)
    assert not (tmp_path / "big.txt.gmx.partial").exists()  # nothing refers to it: removed


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory, big_input):
    import gmixpy

    return gmixpy.compress(big_input, preset="tiny")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_decompress(tmp_path, big_archive, sig):
    src = tmp_path / "big.gmx"
    src.write_bytes(big_archive)
    out = tmp_path / "big"
    out.write_bytes(b"previous output")
    code, err = interrupt(["decompress", src, "--force"], sig, tmp_path, started=writing(tmp_path))
    _check(code, err, sig, f"{src} is intact")
    assert src.read_bytes() == big_archive
    assert out.read_bytes() == b"previous output"
    assert no_temporaries(tmp_path)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_train(tmp_path, big_input, sig):
    src = tmp_path / "corpus.txt"
    src.write_bytes(big_input)
    out = tmp_path / "m.gmxm"
    out.write_bytes(b"previous model")
    code, err = interrupt(["train", src, "-o", out, "-p", "tiny", "--force"], sig, tmp_path)
    _check(code, err, sig, "the input files are intact")
    assert out.read_bytes() == b"previous model"
    assert src.read_bytes() == big_input
    assert no_temporaries(tmp_path)


@pytest.fixture(scope="module")
def small_model(tmp_path_factory, alice):
    return save_trained_tiny(tmp_path_factory.mktemp("gen") / "m.gmxm", alice[:5000])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_generate_keeps_the_text(tmp_path, small_model, sig):
    """`generate -o FILE` interrupted: the text generated so far is not a half-written archive, so it is kept in
    FILE (replacing the previous one, as --force asked) and the line says so; it is exactly the beginning of what
    an uninterrupted run writes."""
    model = tmp_path / "m.gmxm"
    model.write_bytes(small_model.read_bytes())
    out = tmp_path / "text.txt"
    out.write_bytes(b"previous text")
    # generation shows no progress bar: wait for the temporary output instead
    code, err = interrupt(["generate", model, "-n", "100000000", "-o", out, "--force"], sig, tmp_path,
                          started=writing(tmp_path), bar=False)
    line = one_line(err)
    _check(code, err, sig, "the model file is intact")
    assert model.read_bytes() == small_model.read_bytes()
    kept = out.read_bytes()
    assert kept != b"previous text" and f"the {len(kept):,} bytes generated so far are in {out}" in line, line
    whole = subprocess.run(GMIXPY + ["generate", str(model), "-n", str(len(kept)), "-q"], capture_output=True,
                           timeout=300)
    assert whole.stdout == kept
    assert no_temporaries(tmp_path)


def test_interrupt_generate_before_any_text(tmp_path, small_model, monkeypatch):
    """Interrupted before the first byte (here while loading the model): the previous file stays and the line says
    that nothing was written."""
    from gmixpy.cli import main

    def interrupted_load(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(serialize, "load", interrupted_load)
    out = tmp_path / "text.txt"
    out.write_bytes(b"previous text")
    result = CliRunner().invoke(main, ["generate", str(small_model), "-o", str(out), "--force"])
    assert result.exit_code == 130
    assert "no output was written" in one_line(result.output)
    assert out.read_bytes() == b"previous text" and no_temporaries(tmp_path)


# ---- a full disk -------------------------------------------------------------------------------------------------

class _FullDisk:
    """A file object whose writes fail with ENOSPC once `limit` bytes have been written (like a full disk)."""

    def __init__(self, f, limit):
        self._f, self._left = f, limit

    def write(self, data):
        if len(data) > self._left:
            self._f.write(bytes(data[: self._left]))
            self._left = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._left -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)


@pytest.mark.parametrize("limit", [0, 100, 1000])
def test_full_disk_compress_and_decompress(tmp_path, monkeypatch, sample_text, limit):
    import gmixpy
    import gmixpy.files as files

    real = os.fdopen
    monkeypatch.setattr(files.os, "fdopen", lambda fd, mode="r", *a, **k: _FullDisk(real(fd, mode, *a, **k), limit))
    src = tmp_path / "s.txt"
    src.write_bytes(sample_text)
    runner = CliRunner()
    result = runner.invoke(main, ["compress", str(src), "-p", "tiny", "-q"])
    assert result.exit_code == 1, result.output
    line = one_line(result.output)
    assert "no space left on device" in line and "s.txt.gmx" in line, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.txt"]
    arc = tmp_path / "a.gmx"
    arc.write_bytes(gmixpy.compress(sample_text, preset="tiny"))
    result = runner.invoke(main, ["decompress", str(arc), "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 1 and "no space left on device" in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gmx", "s.txt"]


def test_full_disk_model_save(tmp_path, monkeypatch, sample_text):
    import gmixpy.files as files

    real = os.fdopen
    monkeypatch.setattr(files.os, "fdopen", lambda fd, mode="r", *a, **k: _FullDisk(real(fd, mode, *a, **k), 1000))
    src = tmp_path / "s.txt"
    src.write_bytes(sample_text)
    out = tmp_path / "m.gmxm"
    out.write_bytes(b"previous model")
    result = CliRunner().invoke(main, ["train", str(src), "-o", str(out), "-p", "tiny", "-q", "--force"])
    assert result.exit_code == 1, result.output
    assert "no space left on device" in result.output and "m.gmxm" in result.output
    assert out.read_bytes() == b"previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gmxm", "s.txt"]


def test_full_stdout_dev_full(tmp_path, sample_text):
    """`-o -` onto a full device (/dev/full): one line, exit status 1, no second report at exit."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    src = tmp_path / "s.txt"
    src.write_bytes(sample_text)
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(GMIXPY + ["compress", str(src), "-o", "-", "-p", "tiny", "-q"], stdout=full,
                              stderr=subprocess.PIPE, timeout=300)
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert "no space left on device" in one_line(err), err
