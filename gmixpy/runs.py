"""Long-running commands as runs: training and compression, resumable from checkpoints, and evaluation of files.

A run's whole state is the model (long- and short-term memory) plus a few positions and counters (TrainState,
CompressState), so a checkpoint is a model file with that state beside it (serialize.save_checkpoint: the state's
to_meta, and for compression the coder; `resume` reads it back).  A compression's archive is not copied into its
checkpoints, which would make them grow with it: it is written to a partial file beside the output that the
checkpoint names, with the length and CRC32 of what it covers.  Nor is the match models' history, which grows
with the input too: it is appended to a history file beside the partial archive, which the checkpoint names the
same way, and the checkpoint's model leaves it out (serialize's detached buffers).  So what a compression's
checkpoints write in all is linear in the input.
Checkpoints are taken at byte positions that are multiples of the interval, and held-out evaluations likewise, so
a resumed run does exactly what the uninterrupted one would and writes byte-identical results.
"""
from __future__ import annotations

import contextlib
import os
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from . import presets, serialize
from .archive import FLAG_DICTIONARY, FLAG_MODEL, Header
from .chunks import CHUNK, Progress, evaluate, next_multiple, no_progress
from .codec import (
    DICTIONARY_SAMPLE,
    Prefixed,
    coded_input,
    compress_archive,
    compress_chunks,
    finish_archive,
    read_sample,
    start_archive,
    stream_length,
    transform_input,
    use_dictionary,
)
from .coder.arithmetic import CoderState, coder_new
from .files import OutputExists, atomic_output, check_input, check_output, input_files, named, open_input, same_file
from .model import HISTORY, Model
from .parallel import INLINE, Workers
from .preprocess.dictionary import EncodingReader


def after_checkpoint() -> None:
    """Fault injection for the resume tests: GMIXPY_KILL_AFTER_CHECKPOINT=1 ends the process at once (like
    SIGKILL: no clean-up runs) right after the first checkpoint is on disk."""
    if os.environ.get("GMIXPY_KILL_AFTER_CHECKPOINT") == "1":
        os._exit(137)


def _number(v, kind=int) -> bool:
    """v is a number of `kind` (int by default), not a bool, not NaN."""
    return isinstance(v, kind) and not isinstance(v, bool) and (kind is not float or v == v)


# ---- evaluation ------------------------------------------------------------------------------------------------

def evaluate_file(model: Model, path: str | Path, learn: bool, progress: Progress = no_progress) -> tuple[int, float]:
    """(bytes, bits) of a file ("-": stdin) under `model`, streamed; with learn=False long-term memory is not
    written.  A model of dictionary-coded text reads the file's transform, and the bytes are the file's: its bits
    per byte are per byte of text, comparable with any other model's."""
    n, bits = 0, 0.0
    with open_input(str(path)) as (f, _):
        src = EncodingReader(f) if model.dictionary else f
        while block := src.read(CHUNK):
            bits += evaluate(model, block, learn)
            read = src.consumed if model.dictionary else n + len(block)
            progress(read - n)
            n = read
    return n, bits


def held_out(model: Model, path: str | Path, learn: bool) -> float:
    """Held-out bits per byte on a copy, so the model itself is not disturbed (as gmix's runner)."""
    if learn:
        probe = model.copy()
    else:  # long-term memory is only read: copy the running state alone
        probe = model.frozen_copy()
    n, bits = evaluate_file(probe, path, learn)
    return bits / n if n else 0.0


# ---- training ------------------------------------------------------------------------------------------------

STDIN = "-"


@dataclass
class TrainState:
    files: list[str]              # "-" is stdin (no checkpoints then)
    sizes: list[int]              # -1 for stdin until it ends
    output: str
    test: str | None = None
    test_every: int = 0
    metrics: str | None = None
    checkpoint: str | None = None
    checkpoint_every: int = 0
    force: bool = False
    done: int = 0                 # bytes trained on in this run
    train_bits: float = 0.0
    best: float | None = None     # best held-out bits per byte (learning)
    rows: list = field(default_factory=list)  # metrics: [bytes, train bpb, held-out bpb] ([bytes, train bpb]
    #                                               without a held-out file)
    start_bytes: int = 0          # bytes the model had learned before this run (fine-tuning)
    dictionary: bool = False      # the inputs are read through the dictionary transform (the model's coding): then
    #                               done, the intervals and the checkpoints count transformed bytes
    coded_sizes: list = field(default_factory=list)  # with dictionary: each input's transformed length (-1 for
    #                                                  stdin until it ends); [] without
    # The run's open state, never saved (to_meta and from_meta skip names starting with "_"):
    _stdin: "Prefixed | None" = field(default=None, repr=False)  # stdin with the first bytes that were read ahead
    #                                                               to choose the coding put back (start_training)
    _reader: "_Coded | None" = field(default=None, repr=False)  # the input being transformed as it is read

    @property
    def lengths(self) -> list[int]:
        """The length of each input as the model reads it: transformed or as it is."""
        return self.coded_sizes if self.dictionary else self.sizes

    @property
    def total(self) -> int | None:
        """Bytes the model reads; None while stdin, whose size is known only at its end, is still being read."""
        return None if any(s < 0 for s in self.lengths) else sum(self.lengths)

    @property
    def input_done(self) -> int:
        """Input bytes trained on so far: st.done itself, or with the transform the inputs read in full plus the
        share of the current one that its transformed bytes read so far stand for (exact at each input's end)."""
        if not self.dictionary:
            return self.done
        index, offset = _locate(self)
        whole = sum(self.sizes[:index])
        if index < len(self.sizes) and offset:
            if self.coded_sizes[index] < 0:  # stdin: what its reader has taken in
                whole += self._reader.reader.consumed if self._reader else 0
            else:
                whole += offset * self.sizes[index] // self.coded_sizes[index]
        return whole

    @property
    def input_total(self) -> int | None:
        """Input bytes to train on (None while stdin is being read)."""
        return None if any(s < 0 for s in self.sizes) else sum(self.sizes)

    @property
    def interval(self) -> int:
        """Bytes between held-out measurements and metrics rows (0: none)."""
        return self.test_every if (self.test or self.metrics) else 0

    def to_meta(self) -> dict:
        return {"command": "train", **{k: getattr(self, k) for k in _saved(self)}}

    def train_bpb(self) -> float:
        """Training bits per input byte so far."""
        return self.train_bits / max(self.input_done, 1)

    @classmethod
    def from_meta(cls, meta: dict) -> "TrainState":
        """The state saved in a checkpoint's meta; raises serialize.ModelFileError when a field is missing or
        of the wrong type (a damaged or crafted checkpoint), so nothing fails later half-way through a run."""
        def bad(key):
            return serialize.ModelFileError(f"damaged checkpoint (bad training state: {key})")

        for key in ("files", "sizes", "output"):
            if key not in meta:
                raise bad(key)
        dictionary, coded = meta.get("dictionary", False), meta.get("coded_sizes", [])
        if not isinstance(dictionary, bool):
            raise bad("dictionary")
        if not isinstance(coded, list) or (dictionary and (len(coded) != len(meta["files"]) or not all(
                _number(x) and x >= 0 for x in coded))) or (not dictionary and coded):
            raise bad("coded_sizes")
        files, sizes = meta["files"], meta["sizes"]
        if not isinstance(files, list) or not all(isinstance(x, str) for x in files) or not files:
            raise bad("files")
        if not isinstance(sizes, list) or len(sizes) != len(files) or not all(_number(x) and x >= 0 for x in sizes):
            raise bad("sizes")
        checks = {
            "output": lambda v: isinstance(v, str) and v != "",
            "test": lambda v: v is None or isinstance(v, str),
            "metrics": lambda v: v is None or isinstance(v, str),
            "checkpoint": lambda v: v is None or isinstance(v, str),
            "test_every": lambda v: _number(v) and v >= 0,
            "checkpoint_every": lambda v: _number(v) and v >= 0,
            "force": lambda v: isinstance(v, bool),
            "done": lambda v: _number(v) and 0 <= v <= sum(coded if dictionary else sizes),
            "train_bits": lambda v: _number(v, (int, float)) and v >= 0,
            "best": lambda v: v is None or _number(v, (int, float)),
            "rows": lambda v: isinstance(v, list) and all(
                isinstance(r, list) and len(r) in (2, 3) and all(_number(x, (int, float)) for x in r) for r in v),
            "start_bytes": lambda v: _number(v) and v >= 0,
        }
        for key, ok in checks.items():
            if key in meta and not ok(meta[key]):
                raise bad(key)
        return cls(**{k: meta[k] for k in _saved(cls) if k in meta})


def best_path(output: str) -> str:
    p = Path(output)
    return str(p.with_name(p.stem + ".best" + (p.suffix or ".gmxm")))


def _locate(st: TrainState) -> tuple[int, int]:
    """(index of the input, offset in it as the model reads it) of training byte st.done."""
    left = st.done
    for index, size in enumerate(st.lengths):
        if size < 0 or left < size:
            return index, left
        left -= size
    return len(st.lengths), 0


def _read_block(st: TrainState, index: int, offset: int, n: int) -> bytes:
    """Up to n bytes of input `index` from `offset` on, as the model reads them (b"" where stdin ends)."""
    if st.dictionary:
        return _read_coded(st, index, offset, n)
    path = st.files[index]
    if path == STDIN:  # read in order from the start: no checkpoints with stdin, so offset is where stdin is
        return _stdin(st).read(n)
    with open(path, "rb") as f:
        f.seek(offset)
        block = f.read(n)
    _unchanged(st, index)
    if not block:
        raise ValueError(f"{path} is shorter than it was ({st.sizes[index]} bytes expected)")
    return block


def _saved(state) -> list[str]:
    """The fields of a TrainState that its checkpoints save."""
    return [k for k in state.__dataclass_fields__ if not k.startswith("_")]


def _stdin(st: TrainState) -> Prefixed:
    """stdin, with the bytes read ahead to choose the coding first (one reader for the whole run)."""
    if st._stdin is None:
        st._stdin = Prefixed(b"", sys.stdin.buffer)
    return st._stdin


@dataclass
class _Coded:
    """An input being read through the dictionary transform."""
    index: int                    # which input
    position: int                 # transformed bytes read so far
    reader: EncodingReader
    file: BinaryIO | Prefixed     # what the reader reads (closed with it unless it is stdin)


def _unchanged(st: TrainState, index: int) -> None:
    path = st.files[index]
    if path != STDIN and os.path.getsize(path) != st.sizes[index]:
        raise ValueError(f"{path} changed size during training")


def _read_coded(st: TrainState, index: int, offset: int, n: int) -> bytes:
    """_read_block through the transform: the input's transform is streamed from an open reader that continues
    where the last block ended; any other position (a resumed run) transforms the input again from its start up
    to it, since the transform is a function of the whole input before that point."""
    current = st._reader
    if current is None or (current.index, current.position) != (index, offset):
        _close_reader(st)
        path = st.files[index]
        f = _stdin(st) if path == STDIN else open(path, "rb")
        current = st._reader = _Coded(index, 0, EncodingReader(f), f)
        while current.position < offset:
            skipped = current.reader.read(min(offset - current.position, CHUNK))
            if not skipped:
                raise ValueError(f"{path} is shorter than it was ({st.sizes[index]:,} bytes expected)")
            current.position += len(skipped)
    block = current.reader.read(n)
    current.position += len(block)
    _unchanged(st, index)
    if not block and st.coded_sizes[index] >= 0:
        raise ValueError(f"{st.files[index]} is shorter than it was ({st.sizes[index]:,} bytes expected)")
    return block


def _close_reader(st: TrainState) -> None:
    current = st._reader
    if current is not None and not isinstance(current.file, Prefixed):  # a file it opened, not stdin
        current.file.close()
    st._reader = None


def run_training(model: Model, st: TrainState, progress: Progress = no_progress,
                 on_eval: Callable[[int, float, float | None], None] | None = None) -> Model:
    """Train `model` on st.files from st.done onwards; evaluations, metrics rows and checkpoints at multiples of
    their intervals.  Saves st.output at the end (and the best model by held-out score beside it)."""
    index, offset = _locate(st)
    try:
        _train(model, st, index, offset, progress, on_eval)
    finally:
        _close_reader(st)
    if (st.test or st.metrics) and not (st.rows and st.rows[-1][0] == st.input_done):
        _evaluate_and_keep(model, st, on_eval)
    serialize.save(st.output, model, force=st.force)
    if st.checkpoint and os.path.exists(st.checkpoint):
        os.unlink(st.checkpoint)
    return model


def _train(model: Model, st: TrainState, index: int, offset: int, progress: Progress, on_eval) -> None:
    while index < len(st.files):
        size = st.lengths[index]
        stops = [st.done + CHUNK] + ([st.done - offset + size] if size >= 0 else [])
        if st.interval:
            stops.append(next_multiple(st.done, st.interval))
        if st.checkpoint and st.checkpoint_every:
            stops.append(next_multiple(st.done, st.checkpoint_every))
        block = _read_block(st, index, offset, min(stops) - st.done)
        if not block:  # stdin has ended
            if st.dictionary:
                st.sizes[index] = st._reader.reader.consumed
                st.coded_sizes[index] = offset
            else:
                st.sizes[index] = offset
            index, offset = index + 1, 0
            continue
        before = st.input_done
        st.train_bits += evaluate(model, block, True)
        st.done += len(block)
        offset += len(block)
        if offset == size:
            index, offset = index + 1, 0
        progress(st.input_done - before)
        more = st.total is None or st.done < st.total
        if st.interval and st.done % st.interval == 0 and more:
            _evaluate_and_keep(model, st, on_eval)
        if st.checkpoint and st.checkpoint_every and st.done % st.checkpoint_every == 0 and more:
            serialize.save_checkpoint(st.checkpoint, model, {}, st.to_meta())
            after_checkpoint()


def _evaluate_and_keep(model: Model, st: TrainState, on_eval) -> None:
    """A metrics row at st.done: training bits per byte so far and, with a held-out file, its score (the best
    model so far is kept beside the output).  Bytes are input bytes, also with the transform (st.input_done)."""
    done = st.input_done
    train_bpb = st.train_bits / done if done else 0.0
    score = None
    if st.test:
        score = held_out(model, st.test, learn=True)
        st.rows.append([done, train_bpb, score])
        if st.best is None or score < st.best:
            st.best = score
            serialize.save(best_path(st.output), model, force=True)
    else:
        st.rows.append([done, train_bpb])
    if st.metrics:
        with atomic_output(st.metrics, force=True) as f:
            f.write(b"bytes\ttrain_bpb\ttest_bpb\n" if st.test else b"bytes\ttrain_bpb\n")
            for row in st.rows:
                f.write(("\t".join([str(row[0])] + [f"{x:.5f}" for x in row[1:]]) + "\n").encode())
    if on_eval:
        on_eval(st.done, train_bpb, score)


def train_outputs(output: str, test: str | None, metrics: str | None, checkpoint: str | None) -> list[str]:
    """Every file a training run writes: the model, the best model (with a held-out file), the metrics and the
    checkpoint."""
    return [p for p in (output, best_path(output) if test else None, metrics, checkpoint) if p]


def start_training(data: list[str], output: str, preset: str | None, from_model: str | None,
                   dictionary: str = "auto", **options) -> tuple[Model, TrainState]:
    """A new training run on `data` (files, directories, "-" for stdin): its model and state.  Every output is
    checked first (none may exist without force, none may be one of the inputs).  `dictionary` ("auto", "on",
    "off"; codec.use_dictionary) chooses whether a new model learns text through the dictionary transform, decided
    on the first MiB of the data; a model to fine-tune keeps the coding it learned."""
    files = input_files(data)
    names = [str(p) for p in files]
    test = options.get("test")
    if names.count(STDIN) > 1:
        raise ValueError("stdin (-) can be read only once")
    if STDIN in names and options.get("checkpoint"):
        raise ValueError("checkpoints need files as training data, not stdin")
    if test:
        check_input(test)
    outputs = train_outputs(output, test, options.get("metrics"), options.get("checkpoint"))
    for target in outputs:
        check_output(target, options.get("force", False))
        for source in names + ([test] if test else []):
            if same_file(source, target):
                raise ValueError(f"{target} is one of the inputs: choose another output")
    base = serialize.load(from_model) if from_model else None
    sample = _training_sample(names) if base is None and dictionary != "off" else b""
    coded = use_dictionary(dictionary, preset or "default", base, sample)
    model = base if base is not None else Model.new(preset or "default")
    model.dictionary = "english" if coded else None
    sizes = [-1 if p == STDIN else os.path.getsize(p) for p in names]
    st = TrainState(files=names, sizes=sizes, output=output, start_bytes=model.bytes_learned, dictionary=coded,
                    coded_sizes=[_coded_size(p) for p in names] if coded else [], **options)
    if STDIN in names:
        st._stdin = Prefixed(sample if STDIN == names[0] else b"", sys.stdin.buffer)
    if st.interval == 0 and (st.test or st.metrics):
        st.test_every = max(CHUNK, -(-st.total // 10)) if st.total is not None else 1 << 20
    return model, st


def _training_sample(names: list[str]) -> bytes:
    """The first DICTIONARY_SAMPLE bytes of the training data (its first inputs), which choose the coding; stdin's
    are kept for the run (_stdin)."""
    sample = b""
    for name in names:
        if len(sample) >= DICTIONARY_SAMPLE:
            break
        if name == STDIN:
            sample += read_sample(sys.stdin.buffer)[: DICTIONARY_SAMPLE - len(sample)] if not sample else b""
            break
        with open(name, "rb") as f:
            sample += f.read(DICTIONARY_SAMPLE - len(sample))
    return sample


def _coded_size(path: str) -> int:
    """The length of a file's transform (-1 for stdin, known at its end), by transforming it once."""
    if path == STDIN:
        return -1
    n = 0
    with open(path, "rb") as f:
        reader = EncodingReader(f)
        while block := reader.read(CHUNK):
            n += len(block)
    return n


# ---- compression with checkpoints ----------------------------------------------------------------------------

COMPRESS_ARGS = ("input", "output", "preset", "model_path", "force", "checkpoint_every", "checkpoint")


def partial_path(output: str) -> str:
    """Where a compression with checkpoints writes its archive until it is complete: beside the output (so that the
    final rename stays on one file system), under a name fixed by the output (so that a checkpoint can name it and
    `resume` finds it), and not hidden, because it grows as large as the archive and outlives an interruption."""
    return output + ".partial"


def history_path(output: str) -> str:
    """Where a compression with checkpoints keeps the match history its checkpoints leave out: beside the partial
    archive, for the same reasons."""
    return partial_path(output) + ".history"


def _history_meta(meta: dict, path: str) -> tuple[str, int, int]:
    """(file, length, CRC32) of the history that the compression checkpoint `path` keeps in its history file;
    ModelFileError when its meta names another file (a crafted checkpoint must not make resume cut another) or
    has no length and CRC32."""
    args = meta.get("args")
    output = args.get("output") if isinstance(args, dict) else None
    file, length, crc = meta.get("history"), meta.get("history_length"), meta.get("history_crc")
    if (not isinstance(output, str) or file != history_path(output) or not _number(length) or length < 0
            or not _number(crc) or not 0 <= crc < 1 << 32):
        raise serialize.ModelFileError(f"{path}: damaged checkpoint (bad compression state: history)")
    return file, length, crc


def _attach_history(path: str):
    """load_checkpoint's `attach` for the compression checkpoint `path`: the history from its history file,
    whose first bytes must be the ones the checkpoint vouches for."""
    def attach(meta: dict, name: str, length: int) -> np.ndarray:
        file, recorded, crc = _history_meta(meta, path)
        if name != HISTORY or length != recorded:
            raise serialize.ModelFileError(f"{path}: damaged checkpoint (bad compression state: history)")
        try:
            with open(file, "rb") as f:
                data = f.read(length)
        except FileNotFoundError:
            raise ValueError(f"the history file {file} is missing: cannot resume") from None
        if len(data) != length or zlib.crc32(data) != crc:
            raise ValueError(f"the history file {file} has changed since the checkpoint was written: cannot resume")
        return np.frombuffer(data, np.uint8)
    return attach


@dataclass
class CompressState:
    """A compression run: its arguments and how far it got.  A checkpoint's meta holds {"command": "compress",
    "args": {COMPRESS_ARGS}, "pos", "crc", the archive header's "spec_digest", "preset", "model_digest", "flags",
    "partial", "partial_length", "partial_crc", and "history", "history_length", "history_crc"}; its run state
    holds the coder.  The archive written so far stays in the partial file, whose first partial_length bytes the
    checkpoint vouches for by their CRC32, and the match history in the history file likewise, so a checkpoint
    costs the size of the model's tables whatever the size of the input (it used to hold the archive and the
    history, which made frequent checkpoints on a long input quadratic in I/O).

    Checkpoints of the earlier layouts still resume: one whose run state holds the archive so far (run state
    "output", no "partial" in the meta) writes it to a new partial file; one whose model holds the history (no
    "history" in the meta) writes it to a new history file.  Both then go on as any other."""
    input: str
    output: str
    preset: str = "default"          # what the command line was given (the header says what was used)
    model_path: str | None = None
    checkpoint: str | None = None
    checkpoint_every: int = 0
    force: bool = False
    pos: int = 0                     # input bytes coded so far
    crc: int = 0                     # CRC32 of those bytes
    header: Header | None = None     # the archive's header; its length and CRC32 are filled in at the end
    coder: CoderState | None = None  # the arithmetic coder's registers
    partial: str | None = None       # the archive being written, when checkpoints are on (partial_path)
    partial_length: int = 0          # archive bytes the checkpoint covers (0: the partial file is yet to be made)
    partial_crc: int = 0             # their CRC32, the header counted as first written (length and CRC32 zero)
    written: bytes = b""             # bytes to write before the coder's next output: the header in a new run, the
    #                                  archive so far when resuming an earlier layout's checkpoint, else nothing
    history: str | None = None       # the match history's file, when checkpoints are on (history_path)
    history_length: int = 0          # history bytes the checkpoint covers (those the checkpoint's model has)
    history_crc: int = 0             # their CRC32
    history_named: bool = False      # the checkpoint resumed from names the history file; not saved
    size: int | None = None          # of the input (None: stdin until it is read), for progress; not saved
    block_size: int = 0              # input bytes per block (0: one stream, as with checkpoints); not saved
    workers: Workers = INLINE        # where the blocks are coded; not saved
    dictionary: str = "auto"         # the dictionary transform: auto, on or off (codec.use_dictionary); not saved:
    #                                  the header's flags say whether it was used
    sample: bytes = b""              # stdin's first bytes, read ahead to choose; not saved
    coded: BinaryIO | None = None    # with the transform: the transformed input, a temporary file ...
    coded_size: int = 0              # ... of this many bytes; not saved
    original: tuple[int, int] | None = None  # with the transform: the input's length and CRC32; not saved

    @property
    def resumable(self) -> bool:
        """Checkpoints are on: the archive goes to the partial file, which an interruption keeps."""
        return bool(self.checkpoint and self.checkpoint_every)

    def to_meta(self) -> dict:
        h = self.header
        return {"command": "compress", "args": {k: getattr(self, k) for k in COMPRESS_ARGS}, "pos": self.pos,
                "crc": self.crc, "spec_digest": h.spec_digest.hex(), "preset": h.preset,
                "model_digest": h.model_digest.hex(), "flags": h.flags, "size_class": h.size_class,
                "partial": self.partial, "partial_length": self.partial_length, "partial_crc": self.partial_crc,
                "history": self.history, "history_length": self.history_length, "history_crc": self.history_crc}

    @classmethod
    def from_meta(cls, meta: dict, run: dict, model: Model, path: str) -> "CompressState":
        """The run saved in checkpoint `path` (its meta and run state; `model` is the checkpoint's model).  Raises
        serialize.ModelFileError when a field is missing, of the wrong type or does not match the model (a
        damaged or crafted checkpoint), so nothing fails later half-way through a run."""
        def bad(key):
            return serialize.ModelFileError(f"{path}: damaged checkpoint (bad compression state: {key})")

        def is_int(v, low=0, high=1 << 63):
            return type(v) is int and low <= v < high

        def is_hex16(v):
            try:
                return isinstance(v, str) and len(bytes.fromhex(v)) == 16
            except ValueError:
                return False

        args = meta.get("args")
        if not isinstance(args, dict):
            raise bad("args")
        for key in ("input", "output"):
            if not isinstance(args.get(key), str) or not args[key] or args[key] == "-":
                raise bad(key)
        for key in ("preset", "model_path", "checkpoint"):
            if args.get(key) is not None and not isinstance(args[key], str):
                raise bad(key)
        if not isinstance(args.get("force", False), bool) or not is_int(args.get("checkpoint_every"), 1):
            raise bad("checkpoint_every")
        if not is_int(meta.get("pos")):
            raise bad("pos")
        if not is_int(meta.get("crc"), 0, 1 << 32):
            raise bad("crc")
        if not is_hex16(meta.get("spec_digest")) or not is_hex16(meta.get("model_digest")):
            raise bad("digest")
        preset = meta.get("preset")
        if not isinstance(preset, str) or len(preset) > 255 or not preset.isascii():
            raise bad("preset")
        if not is_int(meta.get("flags"), 0, 8) or meta["flags"] & ~(FLAG_MODEL | FLAG_DICTIONARY):
            raise bad("flags")
        size_class = meta.get("size_class", 0)
        if not is_int(size_class, 0, 64) or (meta["flags"] & FLAG_MODEL and size_class):
            raise bad("size class")
        if not meta["flags"] & FLAG_MODEL:
            try:
                declared = presets.get(preset)
            except ValueError:
                declared = None
            used = declared and presets.for_size_class(declared, preset, size_class)
            if not used or used.digest() != model.spec.digest():
                raise bad("preset")
            if meta["spec_digest"] != declared.digest().hex():
                raise bad("specification digest")
        elif meta["spec_digest"] != model.spec.digest().hex():
            raise bad("specification digest")
        header = Header(0, 0, bytes.fromhex(meta["spec_digest"]), preset, bytes.fromhex(meta["model_digest"]),
                        meta["flags"], size_class=size_class)
        partial = partial_path(args["output"])
        if "partial" in meta:  # this layout: the archive so far is in the partial file
            # Only the name the output gives: a crafted checkpoint must not make resume cut and rename another file.
            if meta["partial"] != partial:
                raise bad("partial")
            if not is_int(meta.get("partial_length"), header.size):
                raise bad("partial_length")
            if not is_int(meta.get("partial_crc"), 0, 1 << 32):
                raise bad("partial_crc")
            if "coder" not in run or "output" in run:
                raise bad("run state")
            length, crc, written = meta["partial_length"], meta["partial_crc"], b""
        else:  # the earlier layout: the archive so far is in the checkpoint; a new partial file will hold it
            if "coder" not in run or "output" not in run:
                raise bad("run state")
            length, crc, written = 0, 0, run["output"].tobytes()
        history, history_length, history_crc = history_path(args["output"]), 0, 0
        if "history" in meta:  # this layout: the history is in the history file (attached to the model on loading)
            history, history_length, history_crc = _history_meta(meta, path)
            if history_length != len(model.history()):
                raise bad("history")
        return cls(**{k: args[k] for k in COMPRESS_ARGS if k in args}, pos=meta["pos"], crc=meta["crc"],
                   header=header, coder=run["coder"], partial=partial, partial_length=length, partial_crc=crc,
                   written=written, history=history, history_length=history_length, history_crc=history_crc,
                   history_named="history" in meta)


def _same_path(a: str, b: str) -> bool:
    """`a` and `b` name the same file, or would once created."""
    return same_file(a, b) or Path(a).resolve() == Path(b).resolve()


def _check_targets(st: CompressState, new: list[str]) -> None:
    """Before any work: the files in `new` may be written (check_output), and no file the run writes is its input,
    nor its checkpoint the output, the partial archive or the history file (the run would overwrite one with the
    other, and remove the checkpoint at the end)."""
    for target in new:
        check_output(target, st.force)
    for target in filter(None, [st.output, st.partial, st.history, st.checkpoint]):
        if same_file(st.input, target):
            raise ValueError(f"{target} is the input {st.input}: choose another output")
    for target, what in ((st.output, "output"), (st.partial, "partial archive"), (st.history, "history file")):
        if target and st.checkpoint and _same_path(st.checkpoint, target):
            raise ValueError(f"{st.checkpoint} cannot be both the checkpoint and the {what}: choose another "
                             "checkpoint")


def start_compression(st: CompressState) -> Model:
    """The model a new compression run starts from (a fresh preset, or st.model_path loaded), with st's header,
    coder and input size set.  The input and every output are checked first: with checkpoints, the partial
    archive too (an existing file is replaced only with st.force, as an output)."""
    check_input(st.input)
    st.partial = partial_path(st.output) if st.resumable else None
    st.history = history_path(st.output) if st.resumable else None
    _check_targets(st, list(filter(None, [st.output, st.checkpoint, st.partial, st.history])))
    base = serialize.load(st.model_path) if st.model_path else None
    with open_input(st.input) as (src, st.size):
        sample = read_sample(src) if st.dictionary != "off" else b""
        coded, coded_size, st.original = coded_input(st.dictionary, st.preset, base, Prefixed(sample, src),
                                                     st.size, sample)
    if st.original:
        st.coded, st.coded_size, st.size = coded, coded_size, st.original[0]
    elif st.input == "-":
        st.sample = sample  # read from stdin, which cannot be read again
    model, st.header = start_archive(st.preset, base, stream_length(coded_size, st.block_size), bool(st.original))
    st.coder, st.written = coder_new(), st.header.encode()
    st.partial_length = st.partial_crc = st.history_length = st.history_crc = 0
    st.history_named = False
    return model


def transform(st: CompressState) -> None:
    """Put st.input through the dictionary transform into the temporary file st.coded (a run that starts, or one
    that resumes: the transform is deterministic), of st.coded_size bytes; st.original is the input's length and
    CRC32."""
    with open_input(st.input) as (src, size):
        st.coded, st.coded_size, length, crc = transform_input(Prefixed(st.sample, src), size)
    st.sample, st.original, st.size = b"", (length, crc), length


def input_position(st: CompressState, pos: int) -> int:
    """The input byte that position `pos` of what is coded corresponds to (in proportion, with the transform),
    for progress: a user follows the input's bytes, not the transformed ones."""
    if st.original is None or not st.coded_size:
        return pos
    return pos * st.original[0] // st.coded_size


def _in_input_bytes(st: CompressState, progress: Progress) -> Progress:
    """`progress` told in input bytes while the transformed bytes are coded (input_position)."""
    if st.original is None:
        return progress
    done, shown = st.pos, input_position(st, st.pos)

    def told(n: int) -> None:
        nonlocal done, shown
        done += n
        now = input_position(st, done)
        progress(now - shown)
        shown = now
    return told


@contextlib.contextmanager
def _coded_input(st: CompressState):
    """What the run codes, and its size: the transformed input, or the input (after stdin's read-ahead)."""
    if st.coded is not None:
        try:
            st.coded.seek(0)
            yield st.coded, st.coded_size
        finally:
            st.coded.close()
            st.coded = None
        return
    with open_input(st.input) as (src, size):
        yield (Prefixed(st.sample, src) if st.sample else src), size


def crc_of_next(f: BinaryIO, n: int, crc: int = 0) -> tuple[int, int]:
    """The CRC32 of the next n bytes of f, continued from `crc`, and how many of them f did not have."""
    while n:
        block = f.read(min(n, 1 << 20))
        if not block:
            break
        crc = zlib.crc32(block, crc)
        n -= len(block)
    return crc, n


def run_compression(model: Model, st: CompressState, progress: Progress = no_progress) -> tuple[int, int]:
    """Compress st.input into st.output from st.pos on, writing checkpoints at the multiples of
    st.checkpoint_every (the archive then goes through st.partial, see _compress_resumable); removes the checkpoint
    when the archive is complete.  Without checkpoints, an input of more than st.block_size bytes is cut into
    blocks coded by st.workers (codec.compress_archive).  Returns (bytes in, archive bytes)."""
    progress = _in_input_bytes(st, progress)
    if not st.resumable:
        with _coded_input(st) as (src, size), atomic_output(st.output, st.force) as dst:
            return compress_archive(model, st.header, src, dst, size, st.block_size, st.workers, progress,
                                    st.original)
    with _coded_input(st) as (src, _):
        if st.pos:
            check, remaining = crc_of_next(src, st.pos)
            if remaining or check != st.crc:
                raise ValueError(f"{st.input} changed since the checkpoint was written: cannot resume")
        total, end = _compress_resumable(model, st, src, progress)
    for done in (st.checkpoint, st.history):
        if os.path.exists(done):
            os.unlink(done)
    return total, end


class _Counted:
    """Passes writes on to `f`, keeping their total length and CRC32 from (length, crc): what a checkpoint records
    of the partial archive, known without reading it back."""

    def __init__(self, f: BinaryIO, length: int, crc: int):
        self.f, self.length, self.crc = f, length, crc

    def write(self, data: bytes) -> None:
        self.f.write(data)
        self.length += len(data)
        self.crc = zlib.crc32(data, self.crc)


def _compress_resumable(model: Model, st: CompressState, src: BinaryIO, progress: Progress) -> tuple[int, int]:
    """run_compression with checkpoints: the archive is written to st.partial and renamed to st.output once
    complete, the match history appended to st.history at each checkpoint.  Once a checkpoint names them they
    outlive an interruption or an error, for `resume` to go on from; before that nothing refers to them and they
    are removed."""
    # a resumed run's checkpoint names them already (an earlier layout's, maybe not both)
    referenced = {st.partial: st.partial_length > 0, st.history: st.history_named}
    dst = history = None
    try:
        dst = _open_partial(st)
        history = _open_history(st)
        with dst, history:
            out = _Counted(dst, st.partial_length, st.partial_crc)
            out.write(st.written)
            kept = _Counted(history, st.history_length, st.history_crc)

            def checkpoint(at, crc_at):
                kept.write(model.history(kept.length).tobytes())
                for f in (dst, history):  # a checkpoint must not vouch for bytes that a crash could still lose
                    f.flush()
                    os.fsync(f.fileno())
                st.pos, st.crc, st.partial_length, st.partial_crc = at, crc_at, out.length, out.crc
                st.history_length, st.history_crc = kept.length, kept.crc
                serialize.save_checkpoint(st.checkpoint, model, {"coder": st.coder}, st.to_meta(), detach=(HISTORY,))
                referenced[st.partial] = referenced[st.history] = True
                after_checkpoint()

            total, crc = compress_chunks(model, src, out, st.pos, st.crc, st.coder, checkpoint, st.checkpoint_every,
                                         progress)
            end = finish_archive(dst, 0, st.header, total, crc, st.original)
            dst.flush()
            os.fsync(dst.fileno())
        check_output(st.output, st.force)  # a file may have appeared there during a long run
        try:
            os.replace(st.partial, st.output)
        except OSError as e:
            raise OSError(e.errno, e.strerror, st.output) from None
    except BaseException as e:
        for made in filter(None, (dst, history)):
            made.close()
            if not referenced[made.name]:
                with contextlib.suppress(OSError):
                    os.unlink(made.name)
        if isinstance(e, OSError):
            raise named(e, st.output) from None
        raise
    return (st.original[0] if st.original else total), end


def _open_kept(path: str, named_by_checkpoint: bool, force: bool, what: str,
               go_on: Callable[[BinaryIO], None]) -> BinaryIO:
    """A file that a compression with checkpoints keeps (the partial archive, the history file), open where the
    run goes on.  One that no checkpoint names yet is created: an existing file was refused at the start unless
    `force`, and is replaced, not written through (it may be a link).  One that the checkpoint names is reopened,
    and `go_on` checks it and positions it; `what` names it when it is missing."""
    if not named_by_checkpoint:
        if force:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        try:
            return open(path, "x+b")
        except FileExistsError:  # it appeared since the run was checked
            raise OutputExists(path) from None
    try:
        f = open(path, "r+b")
    except FileNotFoundError:
        raise ValueError(f"the {what} {path} is missing: cannot resume") from None
    try:
        go_on(f)
    except BaseException:
        f.close()
        raise
    return f


def _open_partial(st: CompressState) -> BinaryIO:
    """The partial archive (_open_kept).  A resumed run checks that its first st.partial_length bytes are the ones
    the checkpoint vouches for, and cuts off what was written after the checkpoint."""
    def go_on(f: BinaryIO) -> None:
        # The header at the start is rewritten with the input's length and CRC32 when the archive is complete, so
        # a run stopped between that and the rename leaves it changed: the checkpoint counted it as first written
        # (rebuilt here from its meta), and that is what is checked and put back.
        head = st.header.encode()
        f.seek(len(head))
        check, remaining = crc_of_next(f, st.partial_length - len(head), zlib.crc32(head))
        if remaining or check != st.partial_crc:
            raise ValueError(f"the partial archive {st.partial} has changed since the checkpoint was written: "
                             "cannot resume")
        f.seek(0)
        f.write(head)
        f.truncate(st.partial_length)
        f.seek(st.partial_length)
    return _open_kept(st.partial, st.partial_length > 0, st.force, "partial archive", go_on)


def _open_history(st: CompressState) -> BinaryIO:
    """The history file (_open_kept): a new run creates it, and so does one resumed from a checkpoint whose model
    held the history.  A resumed run cuts off what was written after the checkpoint (loading the checkpoint
    checked the bytes before)."""
    def go_on(f: BinaryIO) -> None:
        f.truncate(st.history_length)
        f.seek(st.history_length)
    return _open_kept(st.history, st.history_named, st.force, "history file", go_on)


def _remove_orphans(output: str) -> None:
    """Temporary outputs left by a run that was killed outright (SIGKILL) before its checkpoint's resume."""
    p = Path(output)
    for orphan in p.parent.glob(f".{p.name}.*.tmp"):
        with contextlib.suppress(OSError):
            orphan.unlink()


# ---- resuming ------------------------------------------------------------------------------------------------

def read_checkpoint(checkpoint: str) -> tuple[Model, dict, dict]:
    """The model, meta and run state (the coder; the archive so far in a checkpoint of the earliest layout) of the
    checkpoint of a compression or training run, the history file's bytes attached to the model."""
    return serialize.load_checkpoint(checkpoint, {"coder": coder_new, "output": serialize.BYTES},
                                     attach=_attach_history(checkpoint))


def resume(checkpoint: str, force: bool = False) -> tuple[Model, CompressState | TrainState]:
    """The model and the state of the run interrupted at `checkpoint` (compress or train), ready to go on with
    run_compression or run_training; its checkpoints now go to `checkpoint`.  With `force` its output may replace
    an existing file even if the interrupted run was not allowed to."""
    model, meta, run = read_checkpoint(checkpoint)
    command = meta.get("command")
    if command == "compress":
        st = CompressState.from_meta(meta, run, model, checkpoint)
        st.checkpoint, st.force = checkpoint, st.force or force
        # an earlier layout's checkpoint makes its partial archive or history file anew: an existing one is then
        # refused, as an output
        _check_targets(st, [st.output] + ([] if st.partial_length else [st.partial])
                       + ([] if "history" in meta else [st.history]))
        _remove_orphans(st.output)
        st.size = os.path.getsize(st.input)
        if st.header.with_dictionary:
            transform(st)
        return model, st
    if command == "train":
        st = TrainState.from_meta(meta)
        if st.dictionary != (model.dictionary is not None):
            raise serialize.ModelFileError(f"{checkpoint}: damaged checkpoint (its model and its run disagree on "
                                           "the dictionary transform)")
        st.checkpoint, st.force = checkpoint, st.force or force
        check_output(st.output, st.force)
        return model, st
    raise ValueError(f"{checkpoint}: unknown command {command!r} in checkpoint")
