"""Archives cut into blocks (format 4, flag bit 1): the same bytes whatever the number of workers, local or on a Dask
cluster; one block is the single stream it always was; damaged indexes and streams, dead workers and Ctrl-C end in
one line with nothing left behind (no partial output, no worker process)."""
from __future__ import annotations

import os
import signal
import struct
import sys
import time
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

import gmixpy
from gmixpy.archive import FLAG_BLOCKS, BlockIndex, decode_header, decode_index
from gmixpy.cli import main
from helpers import (
    Terminal,
    assert_one_line_error,
    no_temporaries,
    one_line,
    run,
    save_trained_tiny,
    trained_tiny,
    usage_error,
)

BLOCK = 4096


def shifted(data: bytes) -> bytes:
    """Text with every byte moved up by 128: as compressible, but left alone by the dictionary transform (its bytes
    would be escaped), so that these tests cut the input itself into blocks (tests/test_dictionary_archive.py cuts
    transformed text)."""
    return bytes(b ^ 0x80 for b in data)


@pytest.fixture(scope="module")
def text(alice) -> bytes:
    return shifted(alice[:4 * BLOCK + 1500])  # five blocks, the last a short one


@pytest.fixture(scope="module")
def blocked(text) -> bytes:
    return gmixpy.compress(text, preset="tiny", block_size=BLOCK)


def parse(archive: bytes):
    """(header, index or None, the streams) of an archive."""
    header = decode_header(archive)
    if not header.with_blocks:
        return header, None, [archive[header.size:]]
    index = decode_index(archive[header.size:], header.length, len(archive) - header.size)
    streams, at = [], header.size + index.size
    for n in index.streams:
        streams.append(archive[at:at + n])
        at += n
    return header, index, streams


# ---- the format --------------------------------------------------------------------------------------------------

def test_each_block_is_the_stream_a_whole_archive_of_it_has(text, blocked):
    """A block's stream is bit for bit the stream of an archive of that block alone (the same starting model), and
    an input of one block is written without an index: the single stream as before blocks existed."""
    header, index, streams = parse(blocked)
    assert header.with_blocks and header.length == len(text) and header.crc32 == zlib.crc32(text)
    assert index.block_size == BLOCK and index.block_lengths(len(text)) == [BLOCK] * 4 + [1500]
    for i, stream in enumerate(streams):
        block = text[i * BLOCK:(i + 1) * BLOCK]
        alone = gmixpy.compress(block, preset="tiny")
        assert not decode_header(alone).with_blocks
        assert parse(alone)[2][0] == stream, i
        assert index.crcs[i] == zlib.crc32(block)
    one = gmixpy.compress(text, preset="tiny", block_size=0)
    assert gmixpy.compress(text, preset="tiny", block_size=len(text)) == one
    assert not decode_header(one).flags & FLAG_BLOCKS
    assert gmixpy.decompress(blocked) == text and gmixpy.decompress(one) == text


def test_the_same_bytes_whatever_the_threads(text, blocked):
    for threads in (2, 0):
        assert gmixpy.compress(text, preset="tiny", block_size=BLOCK, threads=threads) == blocked
    assert gmixpy.decompress(blocked, threads=2) == text


def test_blocks_with_a_model(text, alice):
    """Every block starts from the model (its digest in the header); the workers share it, forked."""
    model = trained_tiny(alice[50000:56000])
    digest = model.digest()
    archive = gmixpy.compress(text, model=model, block_size=BLOCK, threads=2)
    assert model.digest() == digest
    assert archive == gmixpy.compress(text, model=model, block_size=BLOCK)
    header, _, streams = parse(archive)
    assert header.with_model and header.model_digest == digest
    assert parse(gmixpy.compress(text[:BLOCK], model=model))[2][0] == streams[0]
    assert gmixpy.decompress(archive, model=model, threads=2) == text
    with pytest.raises(gmixpy.ArchiveError, match="model digest mismatch"):
        gmixpy.decompress(archive, model=trained_tiny(b"something else entirely"), threads=2)


# ---- damage --------------------------------------------------------------------------------------------------------

def test_a_damaged_index_is_reported_as_such(text, blocked):
    header, index, _ = parse(blocked)
    at = header.size + 12 + 12 * 2  # the third block's stream length
    broken = blocked[:at] + bytes([blocked[at] ^ 1]) + blocked[at + 1:]
    with pytest.raises(gmixpy.ArchiveError, match=r"corrupt archive \(block index checksum mismatch\)"):
        gmixpy.decompress(broken)
    # A consistent index (checksum recomputed) whose streams do not fill the archive.
    forged = BlockIndex(BLOCK, [n + 1 if i == 2 else n for i, n in enumerate(index.streams)], index.crcs).encode()
    broken = blocked[:header.size] + forged + blocked[header.size + index.size:]
    with pytest.raises(gmixpy.ArchiveError, match="do not fill the archive"):
        gmixpy.decompress(broken)
    # A block claiming more than its stream can hold, and a count that does not match the length.
    body = struct.pack("<QI", BLOCK, 1) + struct.pack("<QI", 1, 0)
    with pytest.raises(gmixpy.ArchiveError, match="block index"):
        gmixpy.decompress(blocked[:header.size] + body + struct.pack("<I", zlib.crc32(body)) + b"x")
    with pytest.raises(gmixpy.ArchiveError, match="truncated archive"):
        gmixpy.decompress(blocked[:header.size + 20])


def test_a_damaged_stream_names_its_block(text, blocked):
    header, index, _ = parse(blocked)
    at = header.size + index.size + index.streams[0] + index.streams[1] // 2  # inside the second stream
    broken = blocked[:at] + bytes([blocked[at] ^ 0x40]) + blocked[at + 1:]
    with pytest.raises(gmixpy.ArchiveError, match="^block 2 of 5: .*corrupt archive"):
        gmixpy.decompress(broken, threads=2)


# ---- the command line ----------------------------------------------------------------------------------------------

@pytest.fixture
def src(tmp_path, text) -> Path:
    path = tmp_path / "a.txt"
    path.write_bytes(text)
    return path


def test_cli_threads_files_stdin_and_info(tmp_path, src, text, blocked):
    one = tmp_path / "one.gmx"
    assert run("compress", src, "-p", "tiny", "--block-size", "4K", "-T", "2", "-o", one).returncode == 0
    assert one.read_bytes() == blocked
    piped = run("compress", "-", "-p", "tiny", "--block-size", "4096", "-T", "0", input=text)
    assert piped.returncode == 0 and piped.stdout == blocked  # stdin: the streams spooled, the same bytes
    second = tmp_path / "b.txt"
    second.write_bytes(text[:3000])  # one block: no index
    proc = run("compress", src, second, "-p", "tiny", "--block-size", "4K", "-T", "2", "--force")
    assert proc.returncode == 0, proc.stderr
    said = proc.stderr.decode()  # -T 2 on a file of one block says that it runs on one core, and how to split it
    assert f"{second} is one block of at most 4,096 bytes, so it is coded on one core; --block-size 2K" in said
    assert f"{src} is one block" not in said
    assert run("compress", second, "-p", "tiny", "-T", "2", "-q", "--force").stderr == b""
    assert Path(f"{src}.gmx").read_bytes() == blocked
    assert Path(f"{second}.gmx").read_bytes() == gmixpy.compress(text[:3000], preset="tiny", block_size=0)
    info = run("info", one).stdout.decode()
    assert "blocks:                5 of 4,096 bytes (the last 1,500)" in info
    assert f"{zlib.crc32(text[:BLOCK]):08x}" in info and info.count("\n") == 17, info
    out = tmp_path / "back.txt"
    proc = run("decompress", one, "-o", out, "-T", "2")
    assert proc.returncode == 0 and out.read_bytes() == text, proc.stderr
    assert no_temporaries(tmp_path)


def test_cli_info_shortens_a_long_list(tmp_path, alice):
    path = tmp_path / "long.gmx"
    path.write_bytes(gmixpy.compress(shifted(alice[:14 * 1024]), preset="tiny", block_size=1024))
    info = run("info", path).stdout.decode()
    assert "blocks:                14 of 1,024 bytes" in info and "(4 more)" in info, info


def test_cli_options_that_do_not_go_together(src):
    usage_error(run("compress", src, "-p", "tiny", "-T", "2", "--checkpoint-every", "4096"), "codes one stream")
    usage_error(run("compress", src, "-p", "tiny", "--block-size", "8K", "--checkpoint-every", "4096"),
                "codes one stream")
    usage_error(run("compress", src, "-p", "tiny", "--block-size", "12Q"), "not a size in bytes")
    usage_error(run("compress", src, "-p", "tiny", "--block-size", "100"), "at least 1024 bytes")
    usage_error(run("compress", src, "-T", "2", "--scheduler", "tcp://127.0.0.1:1"), "exclude each other")


def test_cli_damage_is_one_line_and_leaves_nothing(tmp_path, blocked):
    header, index, _ = parse(blocked)
    bad_index = tmp_path / "index.gmx"
    at = header.size + 13
    bad_index.write_bytes(blocked[:at] + bytes([blocked[at] ^ 1]) + blocked[at + 1:])
    proc = run("decompress", bad_index, "-o", tmp_path / "x", "-T", "2", timeout=120)
    assert_one_line_error(proc, "corrupt archive (block index checksum mismatch)")
    bad_stream = tmp_path / "stream.gmx"
    at = header.size + index.size + sum(index.streams[:3]) + 5  # the fourth stream
    bad_stream.write_bytes(blocked[:at] + bytes([blocked[at] ^ 0x10]) + blocked[at + 1:])
    proc = run("decompress", bad_stream, "-o", tmp_path / "x", "-T", "2", timeout=120)
    assert_one_line_error(proc, "Error: block 4 of 5: ")
    assert not (tmp_path / "x").exists() and no_temporaries(tmp_path)


def test_scheduler_without_dask_says_what_to_install(src, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` raises ImportError
    for args in (["compress", str(src), "-p", "tiny"], ["decompress", str(src) + ".gmx"]):
        result = CliRunner().invoke(main, args + ["--scheduler", "tcp://127.0.0.1:8786"])
        assert result.exit_code == 1
        assert one_line(result.output) == "Error: --scheduler needs Dask: pip install 'gmixpy[dask]'"
    assert not Path(f"{src}.gmx").exists()


# ---- workers that die, Ctrl-C -------------------------------------------------------------------------------------

def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def long_input(alice) -> bytes:
    return alice[:120000]  # 30 blocks of 4 KiB: tens of seconds with tiny on 2 workers


def start_workers(tmp_path, data, *extra, group=False):
    """`gmixpy compress` with 2 workers on `data`, stderr on a terminal, once both workers run: (terminal, workers).
    With `group`, the command leads a process group of its own (for a Ctrl-C sent to the group, as a terminal
    does)."""
    path = tmp_path / "in.txt"
    path.write_bytes(data)

    def setup():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if group:
            os.setpgrp()

    term = Terminal("compress", path, "-p", "tiny", "--block-size", "4K", "-T", "2", *extra, cwd=tmp_path,
                    preexec_fn=setup)
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while len(workers) < 2 and term.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
        workers = [p for p in children(term.proc.pid) if alive(p)]
    assert len(workers) == 2, term.text()
    time.sleep(1.0)
    return term, workers


def test_a_dead_worker_is_one_line_and_no_hang(tmp_path, long_input):
    term, workers = start_workers(tmp_path, long_input)
    os.kill(workers[0], signal.SIGKILL)
    code, err = term.wait(timeout=120)
    assert code == 1, err
    assert "a worker process died" in one_line(err)
    assert not any(alive(p) for p in workers)
    assert not (tmp_path / "in.txt.gmx").exists() and no_temporaries(tmp_path)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_end_the_workers(tmp_path, long_input, sig):
    """Ctrl-C reaches the whole process group (the workers ignore it; the command ends them), SIGTERM only the
    command: either way one line, the usual status, no traceback from any process, no worker left."""
    term, workers = start_workers(tmp_path, long_input, group=True)
    if sig == signal.SIGINT:
        os.killpg(term.proc.pid, sig)
    else:
        term.proc.send_signal(sig)
    code, err = term.wait(timeout=60)
    assert code == (130 if sig == signal.SIGINT else 143), err
    assert "is intact" in one_line(err)
    time.sleep(0.5)
    assert not any(alive(p) for p in workers), [p for p in workers if alive(p)]
    assert not (tmp_path / "in.txt.gmx").exists() and no_temporaries(tmp_path)


def test_workers_end_when_the_command_is_killed(tmp_path, long_input):
    """SIGKILL leaves no clean-up to the command: the workers notice that their parent is gone and end."""
    term, workers = start_workers(tmp_path, long_input)
    term.proc.kill()
    term.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in workers)


# ---- a Dask cluster on the loopback interface ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster():
    """A scheduler and two single-threaded worker processes on 127.0.0.1, for this module's tests."""
    distributed = pytest.importorskip("distributed", reason="the cluster tests need pip install 'gmixpy[dask]'")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=40) as local:
        yield local.scheduler_address


def test_a_cluster_writes_the_same_archive(tmp_path, src, text, blocked, cluster):
    out = tmp_path / "cluster.gmx"
    started = time.monotonic()
    proc = run("compress", src, "-p", "tiny", "--block-size", "4K", "--scheduler", cluster, "-o", out,
               timeout=300)
    assert proc.returncode == 0 and proc.stderr.decode().count("\n") == 1, proc.stderr
    assert out.read_bytes() == blocked, time.monotonic() - started
    back = tmp_path / "back.txt"
    proc = run("decompress", out, "-o", back, "--scheduler", cluster, timeout=300)
    assert proc.returncode == 0 and back.read_bytes() == text, proc.stderr


def test_a_cluster_with_a_model(tmp_path, src, text, alice, cluster):
    """The model file's bytes go to each worker once; every block starts from the model the header names."""
    model = save_trained_tiny(tmp_path / "m.gmxm", alice[50000:56000])
    local, remote = tmp_path / "local.gmx", tmp_path / "remote.gmx"
    assert run("compress", src, "-m", model, "--block-size", "4K", "-T", "2", "-o", local).returncode == 0
    proc = run("compress", src, "-m", model, "--block-size", "4K", "--scheduler", cluster, "-o", remote, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert remote.read_bytes() == local.read_bytes()
    back = tmp_path / "back.txt"
    proc = run("decompress", remote, "-m", model, "-o", back, "--scheduler", cluster, timeout=300)
    assert proc.returncode == 0 and back.read_bytes() == text, proc.stderr


def test_an_unreachable_scheduler_is_one_line(src):
    pytest.importorskip("distributed")
    proc = run("compress", src, "-p", "tiny", "--block-size", "4K", "--scheduler", "tcp://127.0.0.1:9", timeout=120)
    assert_one_line_error(proc, "cannot reach the Dask scheduler at tcp://127.0.0.1:9")


def test_one_block_never_starts_workers(text, monkeypatch):
    """An input that fits in one block is coded here, whatever -T: no fork for nothing."""
    from gmixpy import parallel

    def refuse(*args):
        raise AssertionError("workers started for one block")

    monkeypatch.setattr(parallel, "Local", refuse)
    archive = gmixpy.compress(text[:3000], preset="tiny", threads=2)
    assert gmixpy.decompress(archive, threads=2) == text[:3000]
