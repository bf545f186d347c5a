"""The command line from a user's chair: what a terminal and a log file show, errors that name the user's path, and
the conventions users bring from xz, zstd and gzip (-c, -k, -d, several inputs, -v/-q, "-" for stdin)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from gmixpy.cli import main
from helpers import (
    COMPILE_NOTICE,
    GMIXPY,
    Terminal,
    assert_one_line_error,
    message_lines,
    no_temporaries,
    on_terminal,
    one_line,
    run,
    save_trained_tiny,
)


@pytest.fixture
def text(tmp_path, alice) -> Path:
    src = tmp_path / "a.txt"
    src.write_bytes(alice[:40000])
    return src


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, alice) -> Path:
    return save_trained_tiny(tmp_path_factory.mktemp("model") / "m.gmxm", alice[:5000])


# ---- the terminal and the logs -----------------------------------------------------------------------------------

def test_a_log_gets_the_summary_line_only(text):
    """stderr to a file or a pipe: no progress-bar frames, no carriage returns, just the summary; -v adds plain
    progress lines, -q leaves nothing."""
    proc = run("compress", text, "-p", "tiny")
    err = proc.stderr.decode()
    assert proc.returncode == 0 and "\r" not in err and "%|" not in err, err
    assert message_lines(err) == err.splitlines() and len(err.splitlines()) == 1, err
    assert re.fullmatch(rf"{re.escape(str(text))} -> {re.escape(str(text))}\.gmx: 40,000 -> [0-9,]+ bytes, "
                        r"[0-9.]+ bits per byte, [0-9.]+ s, [0-9.]+ KB/s", err.strip()), err
    proc = run("compress", text, "-p", "tiny", "-v", "--force")
    lines = proc.stderr.decode().splitlines()
    assert "\r" not in proc.stderr.decode() and len(lines) >= 5, lines
    assert all(re.match(rf"{re.escape(str(text))}: [0-9]+% \([0-9,]+ of 40,000 bytes\)", x) for x in lines[:-1])
    assert "bits per byte" in lines[-1]
    proc = run("compress", text, "-p", "tiny", "-q", "--force")
    assert proc.returncode == 0 and proc.stderr == b""


def test_a_terminal_gets_a_bar_once_work_starts(text, tmp_path):
    code, shown = on_terminal("compress", text, "-p", "tiny", "--force", cwd=tmp_path)
    assert code == 0 and ("%|" in shown or "B/s" in shown), shown
    assert "bits per byte" in message_lines(shown)[-1]
    # an error that comes at once is not preceded by an empty bar
    code, shown = on_terminal("compress", tmp_path / "missing.txt", "-p", "tiny", cwd=tmp_path)
    assert code == 1 and "%" not in shown and "B/s" not in shown, shown
    assert "missing.txt: no such file or directory" in one_line(shown)


def test_compile_notice_and_compile_time_out_of_the_rates(capsys):
    """Numba compiles a kernel on its first call when the disk cache lacks it: one notice on stderr (terminal or
    not), once per process, and the time it takes is kept out of the rates (a bar's clock is moved on by it)."""
    import numba

    from gmixpy import console as c

    c.watch_compiles()
    saved = (c.console.verbosity, c.console.announced)
    c.console.verbosity, c.console.announced = c.NORMAL, False
    try:
        clock = c.Stopwatch()
        bar = c.Bar(100, "test")
        numba.njit(lambda x: x + 1)(1)  # not cached: compiled now
        numba.njit(lambda x: x + 2)(1)
        err = capsys.readouterr().err
        assert err.count(COMPILE_NOTICE) == 1, err
        assert clock.compiling > 0 and clock.seconds < time.perf_counter() - clock.start
        bar.close()
    finally:
        c.console.verbosity, c.console.announced = saved


def test_compressed_data_is_not_written_to_a_terminal(text, tmp_path):
    for args in (["-o", "-"], ["-c"]):
        code, shown = on_terminal("compress", text, "-p", "tiny", *args, cwd=tmp_path, stdout_too=True)
        assert code == 1, shown
        assert "compressed data not written to a terminal; use -f to force" in one_line(shown)
    code, shown = on_terminal("compress", text, "-p", "tiny", "-c", "-f", "-q", cwd=tmp_path, stdout_too=True)
    assert code == 0 and "GMXP" in shown
    # decompressing to a terminal is what users want to read
    archive = tmp_path / "x.gmx"
    archive.write_bytes(run("compress", text, "-p", "tiny", "-c").stdout)
    code, shown = on_terminal("decompress", archive, "-c", "-q", cwd=tmp_path, stdout_too=True)
    assert code == 0 and "Alice" in shown


def test_decompression_summary_reads_input_to_output(text):
    assert run("compress", text, "-p", "tiny", "-q").returncode == 0
    archive = Path(f"{text}.gmx")
    text.unlink()
    proc = run("decompress", archive)
    line = one_line(proc.stderr)
    size = archive.stat().st_size
    assert line.startswith(f"{archive} -> {text}: {size:,} -> 40,000 bytes, "), line
    assert f"{8 * size / 40000:.4f} bits per byte" in line


def python_catches_sigint(pid: int) -> bool:
    """Python has installed its SIGINT handler in process `pid` (before that, SIGINT kills it outright, which a
    shell reports as status 130 too)."""
    with open(f"/proc/{pid}/status") as f:
        caught = next(line for line in f if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGINT - 1)))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
@pytest.mark.parametrize("delay", [0.2, 0.4, 0.8, 1.6])
def test_ctrl_c_at_any_moment(text, tmp_path, delay):
    """Ctrl-C in the first fraction of a second (imports, argument parsing) or later, in the work: one line, exit
    status 130, no traceback and no click 'Aborted!'.  (Only Python's own start-up and the package's cache set-up,
    before any gmixpy code can catch it, are left out: see the next two tests for the moments just after.)"""
    big = tmp_path / "big.txt"
    big.write_bytes(text.read_bytes() * 10)
    term = Terminal("compress", big, "-p", "tiny", "-o", tmp_path / "out.gmx", cwd=tmp_path,
                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not python_catches_sigint(term.proc.pid) and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(delay)
    term.proc.send_signal(signal.SIGINT)
    code, shown = term.wait(120)
    assert code == 130, shown
    assert "Aborted" not in shown
    assert one_line(shown).startswith("gmixpy: interrupted"), shown
    assert not (tmp_path / "out.gmx").exists() and no_temporaries(tmp_path)


def test_a_signal_inside_a_c_callback_is_not_printed(monkeypatch):
    """Ctrl-C while llvmlite runs one of its ctypes callbacks (Numba loading or compiling a kernel) raises inside
    the callback, where Python swallows the exception and prints "Exception ignored ..." with a traceback: that is
    kept quiet, and the interruption is raised again afterwards.  Other swallowed exceptions are still reported."""
    import ctypes

    from gmixpy import console as c

    reported = []
    monkeypatch.setattr("sys.unraisablehook", lambda hook_args: reported.append(hook_args.exc_type))

    def fail():
        raise ValueError("a real bug")

    interrupted = ctypes.CFUNCTYPE(None)(lambda: c.on_signal(signal.SIGINT, None))
    failing = ctypes.CFUNCTYPE(None)(fail)
    with c.signals_caught():
        interrupted()  # the exception is swallowed by ctypes
        failing()
        with pytest.raises(KeyboardInterrupt):
            c.raise_pending()
    assert reported == [ValueError]
    c.console.signal = None


def test_ctrl_c_while_importing_the_command_line():
    """The interrupt lands while `gmixpy` imports its command line (made certain here by an import that raises
    KeyboardInterrupt)."""
    code = ("import builtins\n"
            "real = builtins.__import__\n"
            "def interrupted(name, *args, **kwargs):\n"
            "    if name == 'cli':\n"
            "        raise KeyboardInterrupt\n"
            "    return real(name, *args, **kwargs)\n"
            "builtins.__import__ = interrupted\n"
            "from gmixpy.__main__ import run\n"
            "run()\n")
    proc = subprocess.run([GMIXPY[0], "-c", code, "compress", "x"], capture_output=True, timeout=300)
    assert proc.returncode == 130
    assert one_line(proc.stderr) == "gmixpy: interrupted; no partial output was left"


def test_ctrl_c_while_parsing_arguments(monkeypatch):
    import gmixpy.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "decompress_shorthand", interrupted)
    result = CliRunner().invoke(main, ["compress", "x"])
    assert result.exit_code == 130 and "Aborted" not in result.output
    assert one_line(result.output) == "gmixpy: interrupted; no partial output was left"


def test_help_is_not_cut_and_output_is_file_everywhere():
    runner = CliRunner()
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0 and "..." not in result.output.split("Commands:")[1], result.output
    for command in main.commands.values():
        assert command.short_help and command.short_help in result.output
        if any("-o" in p.opts for p in command.params):
            usage = runner.invoke(main, [command.name, "--help"]).output
            assert re.search(r"-o, --output FILE ", usage), (command.name, usage)


# ---- errors that name the right thing ----------------------------------------------------------------------------

def test_output_errors_name_the_users_path(text, tmp_path, monkeypatch):
    proc = run("compress", text, "-p", "tiny", "-o", tmp_path / "missing" / "x.gmx")
    line = assert_one_line_error(proc, f"{tmp_path / 'missing' / 'x.gmx'}: no such file or directory")
    assert ".tmp" not in line
    # a directory the process may not write to (root may write anywhere, so the refusal is simulated)
    import tempfile

    from gmixpy.files import atomic_output

    def refused(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", os.path.join(dir, ".x.gmx.abc123.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    with pytest.raises(PermissionError) as e:
        with atomic_output(str(tmp_path / "x.gmx")):
            pass
    assert e.value.filename == str(tmp_path / "x.gmx")


def test_output_that_is_a_directory(text, tmp_path):
    adir = tmp_path / "adir"
    adir.mkdir()
    for force in ([], ["--force"]):
        assert_one_line_error(run("compress", text, "-p", "tiny", "-o", adir, *force), f"{adir}: is a directory")
    assert list(adir.iterdir()) == []


def test_bad_inputs_are_one_line_and_status_1(text, tmp_path, model_file):
    missing, adir = tmp_path / "missing", tmp_path / "adir"
    adir.mkdir()
    archive = tmp_path / "a.gmx"
    archive.write_bytes(run("compress", text, "-p", "tiny", "-c").stdout)
    commands = [
        lambda bad: ["compress", bad, "-p", "tiny"],
        lambda bad: ["decompress", bad, "-o", tmp_path / "out"],
        lambda bad: ["info", bad],
        lambda bad: ["eval", bad, text],
        lambda bad: ["eval", model_file, bad],
        lambda bad: ["generate", bad, "-n", "3"],
        lambda bad: ["generate", model_file, "--prompt-file", bad, "-n", "3"],
        lambda bad: ["resume", bad],
        lambda bad: ["train", text, "-p", "tiny", "-o", tmp_path / "m.gmxm", "--test", bad],
        lambda bad: ["decompress", archive, "--model", bad, "-o", tmp_path / "out"],
        lambda bad: ["analyze", bad, "-p", "tiny"],
        lambda bad: ["analyze", bad, text],
        lambda bad: ["plot", bad, "-o", tmp_path / "out"],
    ]
    for bad, said in ((missing, "no such file or directory"), (adir, "is a directory")):
        for command in commands:
            assert_one_line_error(run(*command(bad)), f"{bad}: {said}")
    if os.geteuid() != 0:  # root reads anything
        unreadable = tmp_path / "unreadable"
        unreadable.write_bytes(b"x")
        unreadable.chmod(0)
        for command in commands:
            assert_one_line_error(run(*command(unreadable)), f"{unreadable}: permission denied")
    assert not (tmp_path / "out").exists() and not (tmp_path / "m.gmxm").exists()


def test_resume_force(tmp_path, alice):
    src = tmp_path / "in.txt"
    src.write_bytes(alice[:30000])
    out = tmp_path / "o.gmx"
    proc = run("compress", src, "-o", out, "-p", "tiny", "-q", "--checkpoint-every", 15000,
               env={"GMIXPY_KILL_AFTER_CHECKPOINT": "1"})
    assert proc.returncode == 137
    out.write_bytes(b"appeared meanwhile")
    ckpt = f"{out}.ckpt"
    assert_one_line_error(run("resume", ckpt), f"{out} already exists (use --force to overwrite)")
    assert out.read_bytes() == b"appeared meanwhile"
    assert run("resume", ckpt, "--force", "-q").returncode == 0
    assert out.read_bytes() == run("compress", src, "-p", "tiny", "-c", "-q").stdout


def test_temperature_must_be_finite(model_file, tmp_path):
    for t in ["nan", "inf", "-inf", "1e400", "-0.5"]:
        proc = run("generate", model_file, "-t", t, "-n", "5")
        assert proc.returncode == 2 and proc.stdout == b"" and "finite number" in proc.stderr.decode(), t
    assert run("generate", model_file, "-t", "0", "-n", "5", "-q").stdout.__len__() == 5


def test_metrics_without_test_and_protected(tmp_path, alice):
    src = tmp_path / "d.txt"
    src.write_bytes(alice[:40000])
    metrics = tmp_path / "curve.tsv"
    proc = run("train", src, "-o", tmp_path / "m.gmxm", "-p", "tiny", "--metrics", metrics, "--test-every", 10000,
               "--dictionary", "off")  # with the transform, intervals count transformed bytes (test_dictionary_model)
    assert proc.returncode == 0, proc.stderr
    rows = [r.split("\t") for r in metrics.read_text().splitlines()]
    assert rows[0] == ["bytes", "train_bpb"] and [r[0] for r in rows[1:]] == ["10000", "20000", "30000", "40000"]
    assert all(0 < float(r[1]) < 8 for r in rows[1:])
    metrics.write_text("my notes")
    proc = run("train", src, "-o", tmp_path / "m2.gmxm", "-p", "tiny", "--metrics", metrics)
    assert_one_line_error(proc, f"{metrics} already exists (use --force to overwrite)")
    assert metrics.read_text() == "my notes" and not (tmp_path / "m2.gmxm").exists()
    assert run("train", src, "-o", tmp_path / "m2.gmxm", "-p", "tiny", "--metrics", metrics, "-f", "-q"
               ).returncode == 0
    assert metrics.read_text().startswith("bytes\ttrain_bpb\n")


# ---- the conventions of xz, zstd and gzip ------------------------------------------------------------------------

def test_stdout_keep_and_the_d_shorthand(text, tmp_path):
    proc = run("compress", text, "-p", "tiny", "-c", "-k", "-q")
    assert proc.returncode == 0 and proc.stdout[:4] == b"GMXP" and text.exists()
    archive = tmp_path / "a.txt.gmx"
    archive.write_bytes(proc.stdout)
    for args in (["-dc", archive], ["-d", "-c", archive], ["--decompress", archive, "-c"],
                 ["decompress", "--stdout", "-k", archive]):
        proc = run(*args, "-q")
        assert proc.returncode == 0 and proc.stdout == text.read_bytes(), args
    text.unlink()
    assert run("-d", archive, "-q").returncode == 0 and text.exists() and archive.exists()
    proc = run("compress", text, "-c", "-o", tmp_path / "x.gmx")
    assert proc.returncode == 2


def test_several_inputs(tmp_path, alice):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes(alice[:3000])
    b.write_bytes(alice[3000:5000])
    proc = run("compress", a, tmp_path / "missing.txt", b, "-p", "tiny")
    assert proc.returncode == 1
    lines = message_lines(proc.stderr)
    assert len(lines) == 3 and "missing.txt: no such file or directory" in lines[1], lines
    assert lines[0].startswith(f"{a} -> {a}.gmx") and lines[2].startswith(f"{b} -> {b}.gmx")
    proc = run("decompress", f"{a}.gmx", f"{b}.gmx", "-c", "-q")
    assert proc.returncode == 0 and proc.stdout == alice[:5000]
    a.unlink()
    b.unlink()
    assert run("-d", f"{a}.gmx", f"{b}.gmx", "-q").returncode == 0
    assert a.read_bytes() + b.read_bytes() == alice[:5000]
    for args in (["compress", a, b, "-o", tmp_path / "x.gmx"], ["compress", a, b, "-c"],
                 ["decompress", f"{a}.gmx", f"{b}.gmx", "-o", tmp_path / "x"], ["compress", "-", "-", "-c"]):
        proc = run(*args, "-f")
        assert proc.returncode == 2 and "Traceback" not in proc.stderr.decode(), args


def test_stdin_for_train_eval_and_info(tmp_path, alice, model_file):
    data = alice[:20000]
    (tmp_path / "d.txt").write_bytes(data)
    proc = run("train", "-", "-o", tmp_path / "s.gmxm", "-p", "tiny", "-q", input=data)
    assert proc.returncode == 0, proc.stderr
    assert run("train", tmp_path / "d.txt", "-o", tmp_path / "f.gmxm", "-p", "tiny", "-q").returncode == 0
    from gmixpy import serialize

    assert serialize.load(str(tmp_path / "s.gmxm")).digest() == serialize.load(str(tmp_path / "f.gmxm")).digest()
    proc = run("eval", model_file, "-", "--frozen", input=alice[:3000])
    assert proc.returncode == 0 and proc.stdout.decode().startswith("(stdin): 3,000 bytes, ")
    proc = run("info", "-", input=model_file.read_bytes())
    assert proc.returncode == 0 and "bytes trained on:      5,000" in proc.stdout.decode()
    proc = run("info", "-", input=run("compress", "-", "-p", "tiny", input=data).stdout)
    assert proc.returncode == 0 and "original length:       20,000 bytes" in proc.stdout.decode()
    proc = run("train", "-", "-o", tmp_path / "c.gmxm", "-p", "tiny", "--checkpoint-every", 1000, input=data)
    assert_one_line_error(proc, "checkpoints need files")


def test_eval_stdin_matches_file(tmp_path, alice, model_file):
    (tmp_path / "d.txt").write_bytes(alice[:3000])
    from_file = run("eval", model_file, tmp_path / "d.txt", "--frozen").stdout.decode()
    from_stdin = run("eval", model_file, "-", "--frozen", input=alice[:3000]).stdout.decode()
    assert from_file.split(": ", 1)[1] == from_stdin.split(": ", 1)[1]


def test_compress_stdin_defaults_to_stdout(tmp_path, alice):
    proc = subprocess.run(GMIXPY + ["compress", "-p", "tiny", "-q", "-"], input=alice[:2000], capture_output=True,
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout[:4] == b"GMXP"
    back = subprocess.run(GMIXPY + ["-d", "-q", "-"], input=proc.stdout, capture_output=True, timeout=300)
    assert back.returncode == 0 and back.stdout == alice[:2000]


def test_kernel_cache_key_covers_the_kernels_and_nothing_else():
    """Editing the command line keeps the compiled kernels; editing anything a kernel is built from does not."""
    from gmixpy import _cache

    names = {str(p.relative_to(_cache.ROOT)) for p in _cache.kernel_sources()}
    assert {"engine.py", "predictor.py", "models/context_map.py", "mixer/sigmoid.py", "spec.py",
            "coder/arithmetic.py", "layout.py", "contexts/states.py"} <= names
    assert not names & {"cli.py", "codec.py", "runs.py", "archive.py", "console.py", "presets.py", "model.py"}


def test_kernel_cache_key_is_remembered_and_follows_the_sources(tmp_path, monkeypatch):
    """The key is computed once per state of the package's sources and then read back, so a short run does not
    parse the package at every start; an edit asks again, and only an edit to a kernel's source changes it."""
    from gmixpy import _cache

    key = _cache._source_hash(tmp_path)
    memos = list((tmp_path / "keys").iterdir())
    assert len(memos) == 1 and memos[0].read_text() == key == _cache._digest(_cache.kernel_sources())
    memos[0].write_text("remembered")
    assert _cache._source_hash(tmp_path) == "remembered"

    def edited(name):
        target = _cache.ROOT / name
        monkeypatch.setattr(Path, "read_bytes", lambda p, read=Path.read_bytes: read(p) + b"#" * (p == target))

    edited("cli.py")
    assert _cache._source_hash(tmp_path) == key
    edited("engine.py")
    assert _cache._source_hash(tmp_path) not in (key, "remembered")
    assert len(list((tmp_path / "keys").iterdir())) == 3
