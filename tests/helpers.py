"""What the test files share: the command line run as users run it, its one-line errors, no temporaries left
behind, a trained tiny model, and where measurements go."""
from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

GMIXPY = [sys.executable, "-m", "gmixpy"]


def run(*args, input=None, cwd=None, env=None, timeout=600) -> subprocess.CompletedProcess:
    """`gmixpy ARGS...` in a real process (stdout and stderr captured as bytes); `env` adds to the environment."""
    return subprocess.run(GMIXPY + [str(a) for a in args], input=input, capture_output=True, cwd=cwd, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


class Terminal:
    """`gmixpy ARGS...` with stderr (and with `stdout_too` stdout as well) on a pseudo-terminal, as in an interactive
    shell; a thread collects what the terminal shows.  Otherwise stdout goes to `stdout`."""

    def __init__(self, *args, cwd=None, stdout=subprocess.DEVNULL, stdout_too=False, preexec_fn=None):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
        self.proc = subprocess.Popen(GMIXPY + [str(a) for a in args], cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=slave if stdout_too else stdout, stderr=slave, preexec_fn=preexec_fn)
        os.close(slave)
        self.shown = bytearray()
        self.thread = threading.Thread(target=self._read, args=(master,), daemon=True)
        self.thread.start()

    def _read(self, fd):
        try:
            while chunk := os.read(fd, 4096):
                self.shown.extend(chunk)
        except OSError:  # EIO: the process and its children have closed the terminal
            pass
        finally:
            os.close(fd)

    def text(self) -> str:
        return bytes(self.shown).decode(errors="replace")

    def wait(self, timeout=600) -> tuple[int, str]:
        """(exit status, everything the terminal showed)."""
        code = self.proc.wait(timeout=timeout)
        self.thread.join(timeout=10)
        return code, self.text()


def on_terminal(*args, cwd=None, stdout_too=False, timeout=600) -> tuple[int, str]:
    """Run `gmixpy ARGS...` with stderr on a terminal (see Terminal): (exit status, what the terminal showed)."""
    return Terminal(*args, cwd=cwd, stdout_too=stdout_too).wait(timeout)


COMPILE_NOTICE = "gmixpy: compiling the kernels"


def message_lines(err: str | bytes) -> list[str]:
    """The lines of a command's stderr that are messages: not progress-bar redraws, not the notice that kernels
    are being compiled (which any command may give when the kernel cache lacks what it needs)."""
    if isinstance(err, bytes):
        err = err.decode(errors="replace")
    return [x for x in err.replace("\r", "\n").splitlines()
            if x.strip() and "%|" not in x and "B/s]" not in x and not x.startswith(COMPILE_NOTICE)]


def one_line(err: str | bytes) -> str:
    """The single message line of a command's stderr (no traceback, nothing else)."""
    text = err.decode(errors="replace") if isinstance(err, bytes) else err
    assert "Traceback" not in text, text
    lines = message_lines(text)
    assert len(lines) == 1, text
    return lines[0]


def assert_one_line_error(proc: subprocess.CompletedProcess, fragment: str, status: int = 1) -> str:
    """The process failed with `status` and said so in one line containing `fragment`; returns that line."""
    assert proc.returncode == status, proc.stderr
    line = one_line(proc.stderr)
    assert fragment in line, proc.stderr
    return line


def usage_error(proc: subprocess.CompletedProcess, fragment: str) -> None:
    """The process stopped at a usage error: exit status 2, no traceback, `fragment` in what it said."""
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 2 and "Traceback" not in err and fragment in err, err


def no_temporaries(directory: Path) -> bool:
    """No temporary output (`.NAME.*.tmp`, see gmixpy/files.py) is left in `directory`."""
    return [p.name for p in Path(directory).iterdir() if p.name.endswith(".tmp")] == []


def trained_tiny(text: bytes):
    """A `tiny` model that has learned `text`."""
    from gmixpy.chunks import evaluate
    from gmixpy.model import Model

    model = Model.new("tiny")
    evaluate(model, text, learn=True)
    return model


def save_trained_tiny(path: Path, text: bytes) -> Path:
    """A model file at `path` holding a `tiny` model that has learned `text`."""
    from gmixpy import serialize

    serialize.save(str(path), trained_tiny(text), force=True)
    return path


def results_dir(tmp_path: Path) -> Path:
    """Where a test writes its measurements: $GMIXPY_RESULTS (`make fuzz` sets bench-results) or its own temporary
    directory, never the repository by default."""
    directory = Path(os.environ.get("GMIXPY_RESULTS") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory
