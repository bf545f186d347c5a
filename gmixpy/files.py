"""Safe file output: nothing half-written ever takes the place of a user's file.

`atomic_output(path, force)` yields a temporary file beside the target (so the final rename stays on one file
system); on success it is flushed, fsynced and renamed into place, on any error or interruption it is removed
(unless `keep_partial`: then an interruption renames what was written so far into place).  An existing target is
refused unless `force`.  Path "-" means stdout: the data is spooled to a temporary file and copied to stdout only
once complete and verified.  Errors name the target, never the temporary file.

`check_output` and `check_input` refuse at once, before any work, what atomic_output or open would refuse later.

A compression with checkpoints writes its archive otherwise: to OUTPUT.partial, which an interruption keeps so that
`resume` can go on from it, and which is renamed into place only when the archive is complete (runs.py).
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator


class OutputExists(Exception):
    """An output that exists and may not be replaced.  Its message is the library's (force=True); the command line
    says --force instead, from `path`."""

    def __init__(self, path: str):
        super().__init__(f"{path} already exists (pass force=True to overwrite it)")
        self.path = path


def check_output(path: str, force: bool = False) -> None:
    """Raise at once what writing `path` would raise later: IsADirectoryError for a directory, OutputExists for an
    existing file without `force`, FileNotFoundError / PermissionError (naming `path`) for a missing or unwritable
    directory.  "-" (stdout) passes."""
    if path == "-":
        return
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
    if target.exists() and not force:
        raise OutputExists(path)
    parent = target.parent
    if not parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "Permission denied", path)


def check_input(path: str) -> None:
    """Raise at once what reading the file `path` would raise (FileNotFoundError, IsADirectoryError,
    PermissionError, naming `path`).  "-" (stdin) passes."""
    if path == "-":
        return
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
    if not p.exists():
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
    if not os.access(p, os.R_OK):
        raise PermissionError(errno.EACCES, "Permission denied", path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str, force: bool = False, keep_partial: bool = False) -> Iterator[BinaryIO]:
    """Yield a temporary file that replaces `path` when the block completes (see the module docstring).  With
    `keep_partial`, an interruption (KeyboardInterrupt, SIGTERM: a BaseException that is not an Exception) after
    something was written also puts it in place; errors still remove it."""
    if path == "-":
        with tempfile.TemporaryFile() as tmp:
            try:
                yield tmp
                tmp.flush()
            except OSError as e:
                raise named(e, "a temporary file") from None
            tmp.seek(0)
            out = sys.stdout.buffer
            try:
                shutil.copyfileobj(tmp, out)
                out.flush()
            except OSError as e:
                raise stdout_failed(e) from None
        return
    check_output(path, force)
    target = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or Path("."))
    except OSError as e:  # a missing or read-only directory: name the user's path, not the temporary one
        raise OSError(e.errno, e.strerror, path) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode a plain open() would
        with os.fdopen(fd, "w+b") as tmp:
            try:
                yield tmp
                tmp.flush()
                os.fsync(tmp.fileno())
            except OSError as e:
                raise named(e, path) from None
        _replace(tmp_name, path)
    except BaseException as e:
        if keep_partial and not isinstance(e, Exception) and _nonempty(tmp_name):
            with contextlib.suppress(OSError):
                _replace(tmp_name, path)
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


def _replace(tmp_name: str, path: str) -> None:
    try:
        os.replace(tmp_name, path)
    except OSError as e:
        raise OSError(e.errno, e.strerror, path) from None


def _nonempty(name: str) -> bool:
    try:
        return os.path.getsize(name) > 0
    except OSError:
        return False


def named(e: OSError, name: str) -> OSError:
    """`e` with a file name, so that "no space left on device" says where (writes to a file object lose it)."""
    if e.filename is None and e.errno is not None and not isinstance(e, BrokenPipeError):
        return OSError(e.errno, e.strerror, name)
    return e


def stdout_failed(e: OSError) -> OSError:
    """A failed write to stdout: point stdout at /dev/null so that the interpreter's final flush of what is still
    buffered does not report the same failure a second time, and name it in the error."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        fd = sys.stdout.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
    return named(e, "stdout")


@contextlib.contextmanager
def open_input(path: str) -> Iterator[tuple[BinaryIO, int | None]]:
    """Open an input for reading: yields (file, size or None when unknown).  "-" is stdin."""
    if path == "-":
        yield sys.stdin.buffer, None
        return
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(21, "Is a directory", path)
    with open(p, "rb") as f:
        yield f, os.fstat(f.fileno()).st_size


def input_files(paths: list[str]) -> list[Path]:
    """Files named by `paths`: files as given, directories recursively in sorted order, "-" (stdin) as given.
    Raises OSError for a missing or unreadable path, ValueError when nothing is left."""
    out: list[Path] = []
    for name in paths:
        p = Path(name)
        if name == "-":  # stdin, read by the caller
            out.append(p)
        elif p.is_dir():
            found = sorted((q for q in p.rglob("*") if q.is_file()), key=lambda q: q.as_posix())
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(2, "No such file or directory", name)
    for p in out:
        if str(p) != "-" and not os.access(p, os.R_OK):
            raise PermissionError(13, "Permission denied", str(p))
    if not out:
        raise ValueError("no input files found")
    return out


def same_file(a: str, b: str) -> bool:
    if a == "-" or b == "-":
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
