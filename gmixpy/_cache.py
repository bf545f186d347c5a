"""Where compiled kernels are cached (see _jit.py).  Imported by the package before anything imports Numba.

The cache directory is named after a hash of the kernels' sources: every module that defines a compiled function
and every package module those import, transitively (the constants and helpers a kernel is built from).  An edit
to the command line, the archive format or the run logic therefore keeps the compiled kernels; an edit to anything
a kernel is made of selects a fresh directory.
"""
from __future__ import annotations

import ast
import hashlib
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent
_DECORATED = re.compile(rb"^[ \t]*@njit", re.MULTILINE)


def _imports(path: Path) -> set[Path]:
    """The package modules `path` imports (relative imports only: the package never imports itself by name)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = path.parent
        for _ in range(node.level - 1):
            base = base.parent
        parts = node.module.split(".") if node.module else []
        target = base.joinpath(*parts)
        names = [alias.name for alias in node.names] if not parts else [""]
        for name in names:  # `from . import x` names modules; `from .x import y` names one
            module = target / name if name else target
            for candidate in (module.with_suffix(".py"), module / "__init__.py"):
                if candidate.is_file():
                    found.add(candidate)
    return found


def kernel_sources() -> list[Path]:
    """The modules compiled kernels are built from, sorted."""
    todo = [p for p in ROOT.rglob("*.py") if _DECORATED.search(p.read_bytes())]
    seen = set(todo)
    while todo:
        for module in _imports(todo.pop()):
            if module not in seen:
                seen.add(module)
                todo.append(module)
    return sorted(seen)


def _digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _source_hash(base: Path) -> str:
    """The kernels' hash.  Finding the kernels' modules parses the package (half a second, most of a short run's
    start), so the answer is remembered under a digest of every module's bytes: any edit asks again."""
    memo = base / "keys" / _digest(sorted(ROOT.rglob("*.py")))
    try:
        return memo.read_text(encoding="ascii").strip()
    except OSError:
        pass
    key = _digest(kernel_sources())
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        partial = memo.with_name(f"{memo.name}.{os.getpid()}.tmp")
        partial.write_text(key, encoding="ascii")
        os.replace(partial, memo)
    except OSError:
        pass  # a read-only cache only costs the parse again
    return key


def configure_cache() -> None:
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gmixpy" / "numba"
    target = base / _source_hash(base)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # Numba falls back to __pycache__ beside the sources
    os.environ["NUMBA_CACHE_DIR"] = str(target)
