"""Model files (.gmxm) and checkpoints: the whole model memory, derived from the NamedTuples.

Layout (integers little-endian):
    b"GMXM"  magic (4 bytes)
    u8       format version (FORMAT_VERSION)
    u8       kind: 1 = model, 2 = checkpoint (a model plus the state of an interrupted command)
    u16      reserved, 0
    u32      length of the JSON header, then the header: {"spec": <specification JSON>, "meta": {...},
             "arrays": [{"name", "dtype", "shape"}, ...]}, and from version 4 "dictionary": the coding of the bytes
             the model learned ("english": through the dictionary transform; model.Model.dictionary), and from
             version 5 "detached": growing buffers a checkpoint keeps in a file of its run instead (their arrays are
             stored with no bytes; runs.py: a compression's history)
    for each array in header order, its bytes (C order, little-endian) in 1 MiB blocks, each block
             u8 tag (0 = all zero, nothing follows; 1 = zlib) + u32 length + zlib data
    32 bytes SHA-256 of everything above: the file's checksum (format-1 archives recorded its first 16 bytes;
             archives now record the model's state digest, model.state_digest, which does not depend on the file)

The array list is not kept by hand: it is every array of the model's NamedTuples (walk()), so a new field is
saved and loaded without anyone listing it.  Loading rebuilds a fresh model from the specification and checks
that the file's arrays have exactly the names, dtypes and shapes that specification gives, so a damaged or
foreign file can never allocate more than the specification itself does.  Growing buffers (the history and the
mixer pool) are saved up to their used length only.  Nothing is unpickled or executed.

Files are written to a temporary file beside the target and renamed into place.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import __version__
from ..coder.arithmetic import CoderState, coder_check
from ..files import atomic_output
from ..model import GROWING, Model, content_arrays, walk
from ..predictor import check_model
from ..spec import Specification

MAGIC = b"GMXM"
FORMAT_VERSION = 5
# Version 4 only adds the header's "dictionary", version 5 "detached" (in checkpoints only): each is written only
# where it is used, so a model of bytes as they are is still written as version 3, which gmixpy versions before
# them read too.
PLAIN_VERSION = 3
DICTIONARY_VERSION = 4
DETACHED_VERSION = 5
DICTIONARIES = ("english",)  # the codings a model file may name
# Arrays a file of an earlier version does not have, by the version that added them: such a file is read with
# those arrays left as a new model has them (they belong to families its specification cannot contain).
ADDED_IN = {3: ("ltm.indirect.counts", "ltm.apm.", "ltm.context_map.", "stm.word.", "stm.record.", "stm.signals.",
               "stm.apm.", "stm.text.", "stm.context_map.")}
READABLE_VERSIONS = (2, 3, 4, 5)


def _added_after(version: int, name: str) -> bool:
    """True when array `name` did not exist in model files of `version`."""
    return any(name == n or (n.endswith(".") and name.startswith(n))
               for v, names in ADDED_IN.items() if v > version for n in names)
KIND_MODEL, KIND_CHECKPOINT = 1, 2
BLOCK = 1 << 20
MAX_JSON = 64 << 20
DIGEST = 32


# attach(meta, name, length) -> the first `length` items of a detached buffer (load_checkpoint)
Attach = Callable[[dict, str, int], np.ndarray]
BYTES = object()  # run-state template marker: a variable-length uint8 array
# run-state types saved beside a model -> the check of their values (see _check_values)
RUN_STATE_CHECKS = {CoderState: coder_check}


class ModelFileError(Exception):
    """The file is not a usable gmixpy model or checkpoint."""


def is_model_file(magic: bytes) -> bool:
    return magic[:4] == MAGIC


def _arrays(model: Model, extra: dict[str, Any] | None = None, stored: bool = False, detach=()):
    """(name, array) of everything saved, in order: long-term memory, short-term memory, then any extras.  With
    `stored`, growing buffers are cut to their used length (what the file holds), those in `detach` to nothing."""
    if stored:
        for name, array in content_arrays(model):
            yield name, (array[:0] if name in detach else array)
    else:
        yield from walk(model.ltm, "ltm.")
        yield from walk(model.stm, "stm.")
    for prefix, tree in (extra or {}).items():
        if isinstance(tree, np.ndarray):
            yield prefix, tree
        else:
            yield from walk(tree, prefix + ".")


class _HashingWriter:
    def __init__(self, f):
        self.f = f
        self.sha = hashlib.sha256()

    def write(self, data):
        self.sha.update(data)
        self.f.write(data)


def _write(f, kind: int, model: Model, meta: dict, extra: dict | None, detach: tuple[str, ...] = ()) -> bytes:
    w = _HashingWriter(f)
    stored = list(_arrays(model, extra, stored=True, detach=detach))
    header = {
        "spec": json.loads(model.spec.to_json()),
        "meta": meta,
        "arrays": [{"name": n, "dtype": a.dtype.str, "shape": list(a.shape)} for n, a in stored],
    }
    version = PLAIN_VERSION
    if model.dictionary is not None:
        header["dictionary"], version = model.dictionary, DICTIONARY_VERSION
    if detach:
        header["detached"], version = sorted(detach), DETACHED_VERSION
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    w.write(MAGIC + struct.pack("<BBHI", version, kind, 0, len(text)))
    w.write(text)
    for _, a in stored:
        raw = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
        for start in range(0, raw.size, BLOCK):
            block = raw[start:start + BLOCK]
            if not block.any():
                w.write(b"\x00")
            else:
                packed = zlib.compress(block.tobytes(), 1)
                w.write(struct.pack("<BI", 1, len(packed)))
                w.write(packed)
    digest = w.sha.digest()
    f.write(digest)
    return digest


def _with_provenance(model: Model, meta: dict | None) -> dict:
    return {"created_by": f"gmixpy {__version__}", "bytes_learned": model.bytes_learned, **(meta or {})}


def save(path: str, model: Model, force: bool = False, meta: dict | None = None) -> bytes:
    """Write `model` to the model file `path` (to a temporary file renamed into place when complete).  An existing
    file is replaced only with `force` (else gmixpy.files.OutputExists).  Returns the file's SHA-256."""
    with atomic_output(path, force) as f:
        return write_model(f, model, meta)


def write_model(f, model: Model, meta: dict | None = None) -> bytes:
    """Write the model file of `model` to the binary file object `f` (what `save` puts in its file; the Dask
    workers receive a model this way).  Returns the file's SHA-256."""
    return _write(f, KIND_MODEL, model, _with_provenance(model, meta), None)


def save_checkpoint(path: str, model: Model, run_state: dict[str, Any], meta: dict, detach: tuple[str, ...] = ()
                    ) -> bytes:
    """Write a checkpoint: the model plus `run_state` (NamedTuples or arrays, e.g. the coder) and `meta`
    (JSON: the command, its arguments, positions).  The growing buffers named in `detach` (keys of GROWING) are
    left out: the run keeps them elsewhere, and `load_checkpoint`'s `attach` gives them back.  Always replaces
    `path` atomically."""
    if not set(detach) <= set(GROWING):
        raise ValueError(f"only growing buffers can be detached, not {sorted(set(detach) - set(GROWING))}")
    with atomic_output(path, True) as f:
        return _write(f, KIND_CHECKPOINT, model, _with_provenance(model, meta), run_state, tuple(detach))


class _Reader:
    def __init__(self, f, size: int, path: str):
        self.f = f
        self.size = size
        self.path = path
        self.pos = 0
        self.sha = hashlib.sha256()

    def read(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.size - DIGEST:
            raise ModelFileError(f"{self.path}: truncated or damaged model file (it ends too early)")
        data = self.f.read(n)
        if len(data) != n:
            raise ModelFileError(f"{self.path}: truncated or damaged model file (it ends too early)")
        self.pos += n
        self.sha.update(data)
        return data


_DTYPE = re.compile(r"^[<>|][uif][1248]$")
_MAX_DIM = 1 << 48


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 1 << 40


def _spec_limits() -> tuple[dict[str, float], int]:
    """Upper bounds for the size fields of a specification read from a file: twice the largest value any
    built-in preset uses (one more for bit counts, twice as many models), so that a crafted file cannot make
    Model.new allocate or initialise absurd tables before its arrays are checked."""
    from .. import presets

    limits: dict[str, float] = {}
    items = 0
    for name in presets.PRESETS:
        doc = json.loads(presets.get(name).to_json())
        for section in ("contexts", "models", "mixers", "apms"):
            items = max(items, len(doc.get(section, [])))
            for item in doc.get(section, []):
                for k, v in item.items():
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        limits[k] = max(limits.get(k, 0), v)
        limits["history_reserve"] = max(limits.get("history_reserve", 0), doc["history_reserve"])
    return {k: (v + 1 if k.endswith("bits") else 2 * v) for k, v in limits.items()}, 2 * items


def _check_spec_doc(doc, path: str) -> None:
    if not isinstance(doc, dict):
        raise ModelFileError(f"{path}: damaged model file (unreadable specification)")
    if not isinstance(doc.get("name"), str) or len(doc["name"]) > 255:
        raise ModelFileError(f"{path}: damaged model file (bad specification: name)")
    limits, max_items = _spec_limits()
    for section in ("contexts", "models", "mixers", "apms"):
        items = doc.get(section, [] if section == "apms" else None)
        if not isinstance(items, list) or len(items) > max_items:
            raise ModelFileError(f"{path}: damaged model file (bad specification: {section})")
        for item in items:
            if not isinstance(item, dict):
                raise ModelFileError(f"{path}: damaged model file (bad specification: {section})")
            for k, v in item.items():
                if isinstance(v, list) and len(v) > 64:
                    raise ModelFileError(f"{path}: damaged model file (bad specification: {k})")
                _check_number(k, v, limits, path)
    _check_number("history_reserve", doc.get("history_reserve", 0), limits, path)


def _check_number(key, v, limits, path):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return
    if v != v or v < 0 or (key in limits and v > limits[key]):
        raise ModelFileError(f"{path}: specification field {key} = {v} is outside what this gmixpy loads")


def _check_declared(declared, path: str) -> list[tuple[str, str, tuple[int, ...]]]:
    """The header's array list as (name, dtype, shape), every field of the right type."""
    if not isinstance(declared, list):
        raise ModelFileError(f"{path}: damaged model file (bad array list)")
    out = []
    for d in declared:
        if not isinstance(d, dict) or set(d) != {"name", "dtype", "shape"}:
            raise ModelFileError(f"{path}: damaged model file (bad array entry)")
        name, dtype, shape = d["name"], d["dtype"], d["shape"]
        if not isinstance(name, str) or not isinstance(dtype, str) or not _DTYPE.match(dtype):
            raise ModelFileError(f"{path}: damaged model file (bad array entry {str(name)[:80]!r})")
        if not isinstance(shape, list) or len(shape) > 8 or not all(
                type(n) is int and 0 <= n <= _MAX_DIM for n in shape):
            raise ModelFileError(f"{path}: damaged model file (bad shape for {name[:80]!r})")
        out.append((name, dtype, tuple(shape)))
    return out


def _check_sizes(declared, size_left: int, path: str) -> None:
    """Before anything is allocated: every declared array must fit in the bytes the file has left (each 1 MiB
    block takes at least one byte, an all-zero block exactly one, a compressed one at least 1/1032 of what it
    holds) and all of them together in this machine's memory."""
    blocks = total = 0
    for name, dtype, shape in declared:
        nbytes = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
        blocks += -(-nbytes // BLOCK)
        total += nbytes * (2 if name in GROWING else 1)
    if blocks > size_left:
        raise ModelFileError(f"{path}: truncated or damaged file (its header declares {total:,} bytes of arrays, "
                             f"more than its {size_left:,} remaining bytes can hold)")
    if total > _physical_memory():
        raise ModelFileError(f"{path}: its arrays need {total:,} bytes, more than this machine's memory")


def _read(path: str, want_kind: int, run_state_template: dict | None = None, shown: str | None = None,
          attach: Attach | None = None):
    """Read the file at `path`; messages name it as `shown` (default: path).  A checkpoint's detached buffers are
    asked of `attach` (see load_checkpoint)."""
    p = Path(path)
    path = shown or path
    with open(p, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        r = _Reader(f, size, path)
        if size < 12 + DIGEST:
            head = f.read(4)
            if not is_model_file(head):
                raise ModelFileError(f"{path}: not a gmixpy model file")
            raise ModelFileError(f"{path}: truncated or damaged model file")
        head = r.read(12)
        if not is_model_file(head):
            raise ModelFileError(f"{path}: not a gmixpy model file")
        version, kind, _reserved, n_json = struct.unpack_from("<BBHI", head, 4)
        if version not in READABLE_VERSIONS:
            raise ModelFileError(f"{path}: model file format version {version} is not supported (this gmixpy "
                                 f"reads versions {', '.join(map(str, READABLE_VERSIONS))})")
        if kind != want_kind:
            what = {KIND_MODEL: "a model file", KIND_CHECKPOINT: "a checkpoint"}
            raise ModelFileError(f"{path}: is {what.get(kind, 'an unknown kind of file')}, "
                                 f"not {what[want_kind]}")
        if n_json > MAX_JSON:
            raise ModelFileError(f"{path}: damaged model file (header too large)")
        text = r.read(n_json)
        try:
            header = json.loads(text)
        except (ValueError, RecursionError):
            raise ModelFileError(f"{path}: damaged model file (unreadable header)") from None
        if not isinstance(header, dict) or not {"spec", "arrays", "meta"} <= set(header):
            raise ModelFileError(f"{path}: damaged model file (unreadable header)")
        meta = header["meta"]
        if not isinstance(meta, dict):
            raise ModelFileError(f"{path}: damaged model file (bad meta)")
        dictionary = None
        if version >= DICTIONARY_VERSION:
            dictionary = header.get("dictionary")
            # a version-5 file names it only for a model of dictionary-coded text
            if dictionary not in DICTIONARIES and not (version >= DETACHED_VERSION and "dictionary" not in header):
                raise ModelFileError(f"{path}: damaged model file (unknown text coding {str(dictionary)[:40]!r})")
        detached = header.get("detached", []) if version >= DETACHED_VERSION else []
        if (not isinstance(detached, list) or not all(isinstance(n, str) and n in GROWING for n in detached)
                or len(set(detached)) != len(detached) or (detached and want_kind != KIND_CHECKPOINT)):
            raise ModelFileError(f"{path}: damaged model file (bad list of detached buffers)")
        if detached and attach is None:
            raise ModelFileError(f"{path}: keeps part of its model in a file of its run, which only `resume` reads")
        declared = _check_declared(header["arrays"], path)
        _check_sizes(declared, size - DIGEST - r.pos, path)
        _check_spec_doc(header["spec"], path)
        try:
            spec = Specification.from_json(json.dumps(header["spec"]))
        except Exception:
            raise ModelFileError(f"{path}: damaged model file (unusable specification)") from None
        try:
            model = Model.new(spec, reserve=True)  # the growing pool below takes its reserve: learning never grows it
        except MemoryError:
            raise ModelFileError(f"{path}: not enough memory for this model's specification") from None
        except Exception:
            raise ModelFileError(f"{path}: damaged model file (unusable specification)") from None
        extra = {}
        variable = set()
        if run_state_template is not None:
            names = {name for name, _, _ in declared}
            for k, v in run_state_template.items():
                if not any(n == k or n.startswith(k + ".") for n in names):
                    continue  # this kind of run keeps no such state (a training run has no coder)
                if v is BYTES:  # a byte string of any length, e.g. the output written so far
                    variable.add(k)
                    extra[k] = np.zeros(0, np.uint8)
                else:
                    extra[k] = v() if callable(v) else v
        expected = [(n, a) for n, a in _arrays(model, extra) if not _added_after(version, n)]
        if len(declared) != len(expected):
            raise ModelFileError(f"{path}: its arrays do not match its specification (different gmixpy version?)")
        loaded: dict[str, np.ndarray] = {}
        replacements: dict[str, np.ndarray] = {}
        for (d_name, d_dtype, shape), (name, array) in zip(declared, expected):
            if d_name != name or d_dtype != array.dtype.str:
                raise ModelFileError(f"{path}: its arrays do not match its specification ({d_name[:80]!r})")
            if name in variable:
                if len(shape) != 1:
                    raise ModelFileError(f"{path}: damaged checkpoint (bad size for {name})")
                target = np.zeros(shape[0], np.uint8)
                replacements[name] = target
                view = target
            elif name in GROWING:
                # bounded by _check_sizes: the file's own bytes and the machine's memory
                if len(shape) != 1 or shape[0] < 0 or (name in detached and shape[0]):
                    raise ModelFileError(f"{path}: damaged model file (bad size for {name})")
                target = np.zeros(max(array.shape[0], 2 * shape[0]), array.dtype)
                replacements[name] = target
                view = target[: shape[0]]
            else:
                if shape != array.shape:
                    raise ModelFileError(f"{path}: array {name} has shape {shape}, its specification gives "
                                         f"{array.shape}")
                view = array
            _read_array(r, view, path)
            loaded[name] = view
        if r.pos != size - DIGEST:
            raise ModelFileError(f"{path}: damaged model file (unexpected trailing data)")
        digest = f.read(DIGEST)
        if digest != r.sha.digest():
            raise ModelFileError(f"{path}: damaged model file (checksum mismatch)")
        for name in detached:  # after the checksum: the length asked for is the file's own
            used = int(loaded[GROWING[name]][0])
            if not 0 <= used <= _physical_memory():
                raise ModelFileError(f"{path}: damaged model file (bad size for {name})")
            data = attach(meta, name, used)
            if data.dtype != replacements[name].dtype or data.shape != (used,):
                raise ModelFileError(f"{path}: damaged model file ({name} is not what the checkpoint says)")
            target = np.zeros(max(replacements[name].shape[0], 2 * used), data.dtype)
            target[:used] = data
            replacements[name], loaded[name] = target, target[:used]
        for name, used_name in GROWING.items():
            if loaded[name].shape[0] != int(loaded[used_name][0]):
                raise ModelFileError(f"{path}: damaged model file ({used_name} disagrees with {name})")
    model = _with_replacements(model, replacements)
    extra = {k: _replace_tree(v, k, replacements) for k, v in extra.items()}
    _check_values(model, extra, path)
    model.meta = meta
    model.dictionary = dictionary
    model.file_digest = digest[:16]
    return model, meta, extra, digest


def _check_values(model: Model, extra: dict, path: str) -> None:
    """After the checksum: every stored value within the range the kernels rely on (an index, a pointer, a loop
    bound, a finite float), so that a crafted file with a valid checksum is refused rather than run."""
    problem = check_model(model.params, model.ltm, model.stm)
    for value in extra.values():
        check = RUN_STATE_CHECKS.get(type(value))
        problem = problem or (check(value) if check else None)
    if problem:
        raise ModelFileError(f"{path}: damaged model file ({problem})")


def _read_array(r: _Reader, view: np.ndarray, path: str) -> None:
    raw = view.reshape(-1).view(np.uint8)
    for start in range(0, raw.size, BLOCK):
        n = min(BLOCK, raw.size - start)
        tag = r.read(1)[0]
        if tag == 0:
            if raw[start:start + n].any():  # arrays start zeroed: writing zeros would only make pages resident
                raw[start:start + n] = 0
            continue
        if tag != 1:
            raise ModelFileError(f"{path}: damaged model file (bad block tag)")
        (length,) = struct.unpack("<I", r.read(4))
        try:
            d = zlib.decompressobj()
            data = d.decompress(r.read(length), n + 1)
        except zlib.error:
            raise ModelFileError(f"{path}: damaged model file (bad compressed block)") from None
        if len(data) != n or d.unconsumed_tail or not d.eof:
            raise ModelFileError(f"{path}: damaged model file (block of the wrong size)")
        raw[start:start + n] = np.frombuffer(data, np.uint8)


def _replace_tree(tree, prefix, replacements):
    if isinstance(tree, np.ndarray):
        return replacements.get(prefix, tree)
    return type(tree)(*(_replace_tree(v, f"{prefix}.{n}", replacements) for n, v in zip(tree._fields, tree)))


def _with_replacements(model: Model, replacements) -> Model:
    return replace(model, ltm=_replace_tree(model.ltm, "ltm", replacements),
                   stm=_replace_tree(model.stm, "stm", replacements))


def load(path: str) -> Model:
    """The model saved in the model file `path`, exactly as it was saved.  Raises ModelFileError for a damaged or
    foreign file, OSError when it cannot be read, each with a one-line message naming the file."""
    return _read(path, KIND_MODEL)[0]


def load_checkpoint(path: str, run_state_template: dict, attach: Attach | None = None) -> tuple[Model, dict, dict]:
    """Load a checkpoint; `run_state_template` maps names to (factories of) the NamedTuples saved beside the
    model, giving their dtypes and shapes.  A buffer the checkpoint detached (save_checkpoint) is asked of
    `attach(meta, name, length)`, after the checksum: it returns the buffer's first `length` items, or raises
    (ModelFileError, ValueError, OSError) with one line; a checkpoint that detached one is refused without it.
    Returns (model, meta, run_state)."""
    try:
        model, meta, extra, _ = _read(path, KIND_CHECKPOINT, run_state_template, attach=attach)
    except ModelFileError as e:  # the reader's messages speak of a damaged model file; this one is a checkpoint
        message, prefix = str(e), f"{path}: "
        if message.startswith(prefix):
            message = prefix + message[len(prefix):].replace("damaged model file", "damaged checkpoint")
        raise ModelFileError(message) from None
    return model, meta, extra


def describe(path: str, shown: str | None = None) -> list[str]:
    """Lines for `gmixpy info MODEL`: specification, bytes trained on, file size, memory by family.  The file is
    named as `shown` (default: path)."""
    model, meta, _, digest = _read(path, KIND_MODEL, shown=shown)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        version = f.read(len(MAGIC) + 1)[-1]  # _read checked it is readable
    lines = [
        f"file:                  {shown or path}",
        f"format:                gmixpy model file, version {version}",
        f"file size:             {size:,} bytes",
        f"file digest:           {digest[:16].hex()}",
        f"model digest:          {model.digest().hex()} (what archives compressed with it record)",
        f"specification:         {model.spec.name} (digest {model.spec.digest().hex()})",
        f"models:                {len(model.spec.models)} ({len(model.spec.input_names())} mixer inputs), "
        f"{len(model.spec.mixers)} mixers",
        f"bytes trained on:      {int(meta.get('bytes_learned', model.bytes_learned)):,}"
        + (" (after the dictionary transform)" if model.dictionary else ""),
        "text coding:           " + ("English dictionary transform (applied to every input, undone on output)"
                                     if model.dictionary else "none (bytes as they are)"),
        f"created by:            {meta.get('created_by', '?')}",
        "memory by family (in memory when loaded):",
    ]
    for part, tree in (("long-term", model.ltm), ("short-term", model.stm)):
        for family, sub in zip(tree._fields, tree):
            n = sum(a.nbytes for _, a in walk(sub)) if not isinstance(sub, np.ndarray) else sub.nbytes
            lines.append(f"  {part + ' ' + family + ':':32s} {n / 1e6:12.3f} MB")
    return lines
