"""Safe file output: nothing half-written ever takes the place of a user's file.

`atomic_output(path, force)` yields a temporary file beside the target (so the final rename stays on one file
system); on success it is flushed, fsynced and renamed into place, on any error or interruption it is removed.
An existing target is refused unless `force`.  Path "-" means stdout: the data is spooled to a temporary file and
copied to stdout only once complete and verified.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator


class OutputExists(Exception):
    pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str, force: bool = False) -> Iterator[BinaryIO]:
    """Yield a temporary file that replaces `path` when the block completes (see the module docstring)."""
    if path == "-":
        with tempfile.TemporaryFile() as tmp:
            try:
                yield tmp
                tmp.flush()
            except OSError as e:
                raise _named(e, "a temporary file") from None
            tmp.seek(0)
            out = sys.stdout.buffer
            try:
                shutil.copyfileobj(tmp, out)
                out.flush()
            except OSError as e:
                raise stdout_failed(e) from None
        return
    target = Path(path)
    if target.exists() and not force:
        raise OutputExists(f"{path} already exists (use --force to overwrite)")
    if target.is_dir():
        raise IsADirectoryError(21, "Is a directory", path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or Path("."))
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode a plain open() would
        with os.fdopen(fd, "w+b") as tmp:
            try:
                yield tmp
                tmp.flush()
                os.fsync(tmp.fileno())
            except OSError as e:
                raise _named(e, path) from None
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


def _named(e: OSError, name: str) -> OSError:
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
    return _named(e, "stdout")


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
    """Files named by `paths`: files as given, directories recursively in sorted order.  Raises OSError for a
    missing or unreadable path, ValueError when nothing is left."""
    out: list[Path] = []
    for name in paths:
        p = Path(name)
        if p.is_dir():
            found = sorted((q for q in p.rglob("*") if q.is_file()), key=lambda q: q.as_posix())
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(2, "No such file or directory", name)
    for p in out:
        if not os.access(p, os.R_OK):
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
