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


@contextlib.contextmanager
def atomic_output(path: str, force: bool = False) -> Iterator[BinaryIO]:
    if path == "-":
        with tempfile.TemporaryFile() as tmp:
            yield tmp
            tmp.flush()
            tmp.seek(0)
            out = sys.stdout.buffer
            shutil.copyfileobj(tmp, out)
            out.flush()
        return
    target = Path(path)
    if target.exists() and not force:
        raise OutputExists(f"{path} already exists (use --force to overwrite)")
    if target.is_dir():
        raise IsADirectoryError(21, "Is a directory", path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or Path("."))
    try:
        with os.fdopen(fd, "w+b") as tmp:
            yield tmp
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


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


def same_file(a: str, b: str) -> bool:
    if a == "-" or b == "-":
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
