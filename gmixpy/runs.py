"""Long-running commands as resumable runs: train, compress with checkpoints, evaluation and generation.

A run's whole state is the model (long- and short-term memory) plus a few positions and counters, so a
checkpoint is a model file with that state beside it (serialize.save_checkpoint).  Checkpoints are taken at byte
positions that are multiples of the interval, and held-out evaluations likewise, so a resumed run does exactly
what the uninterrupted one would and writes byte-identical results.
"""
from __future__ import annotations

import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import engine, serialize

from .coder.arithmetic import CoderState, coder_new
from .files import atomic_output, input_files, same_file
from .model import Model, deep_copy

CHUNK = 1 << 14
Progress = Callable[[int], None]


def _nothing(_: int) -> None:
    pass


def after_checkpoint() -> None:
    """Fault injection for the resume tests: GMIXPY_KILL_AFTER_CHECKPOINT=1 ends the process at once (like
    SIGKILL: no clean-up runs) right after the first checkpoint is on disk."""
    if os.environ.get("GMIXPY_KILL_AFTER_CHECKPOINT") == "1":
        os._exit(137)


def evaluate(model: Model, data: bytes | np.ndarray, learn: bool) -> float:
    """Bits needed for `data` under `model`, learning as it reads when `learn` (the model is modified)."""
    arr = np.frombuffer(bytes(data), np.uint8) if not isinstance(data, np.ndarray) else data
    model.changed()
    pos, bits = 0, 0.0
    while pos < len(arr):
        end = min(len(arr), pos + CHUNK)
        while pos < end:
            pos, b = engine.evaluate_chunk(model.params, model.ltm, model.stm, arr, pos, end, learn)
            bits += b
            if pos < end:
                model.room()
    return bits


def trace(model: Model, data: bytes | np.ndarray, learn: bool = True, inputs: np.ndarray | None = None
          ) -> np.ndarray:
    """Every bit's prediction for `data` under `model`: float32[8 * len(data)], P(bit = 1) for each byte's bits
    from the most significant, the very values compression codes with.  Learns as it reads when `learn` (the model
    is modified).

    With `inputs` (float32[8 * len(data), n], C-contiguous, n at most len(model.spec.input_names())), row i also
    receives what each model told the mixers for bit i: the first n model inputs, in input_names() order, as
    logits (0 for a model with nothing to say)."""
    arr = np.frombuffer(bytes(data), np.uint8) if not isinstance(data, np.ndarray) else data
    probs = np.empty(8 * len(arr), np.float32)
    if inputs is None:
        inputs = np.zeros((0, 0), np.float32)
    elif (inputs.dtype != np.float32 or inputs.ndim != 2 or not inputs.flags.c_contiguous
          or inputs.shape[0] != len(probs) or inputs.shape[1] > len(model.spec.input_names())):
        raise ValueError(f"inputs must be a C-contiguous float32[{len(probs)}, n] array with n <= "
                         f"{len(model.spec.input_names())}")
    model.changed()
    pos = 0
    while pos < len(arr):
        end = min(len(arr), pos + CHUNK)
        while pos < end:
            pos = engine.trace_chunk(model.params, model.ltm, model.stm, arr, pos, end, learn, probs, inputs)
            if pos < end:
                model.room()
    return probs


def evaluate_file(model: Model, path: str | Path, learn: bool, progress: Progress = _nothing) -> tuple[int, float]:
    """(bytes, bits) of a file under `model`, streamed; with learn=False long-term memory is not written."""
    n, bits = 0, 0.0
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            bits += evaluate(model, block, learn)
            n += len(block)
            progress(len(block))
    return n, bits


def held_out(model: Model, path: str | Path, learn: bool) -> float:
    """Held-out bits per byte on a copy, so the model itself is not disturbed (as gmix's runner)."""
    if learn:
        probe = model.copy()
    else:  # long-term memory is only read: copy the running state alone
        probe = Model(model.spec, model.params, model.ltm, deep_copy(model.stm), model.meta)
    n, bits = evaluate_file(probe, path, learn)
    return bits / n if n else 0.0


# ---- training ------------------------------------------------------------------------------------------------

@dataclass
class TrainState:
    files: list[str]
    sizes: list[int]
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
    rows: list = field(default_factory=list)  # metrics: [bytes, train bpb, held-out bpb]
    start_bytes: int = 0          # bytes the model had learned before this run (fine-tuning)

    @property
    def total(self) -> int:
        return sum(self.sizes)

    def to_meta(self) -> dict:
        return {"command": "train", **{k: getattr(self, k) for k in self.__dataclass_fields__}}

    @classmethod
    def from_meta(cls, meta: dict) -> "TrainState":
        """The state saved in a checkpoint's meta; raises serialize.ModelFileError when a field is missing or
        of the wrong type (a damaged or crafted checkpoint), so nothing fails later half-way through a run."""
        def bad(key):
            return serialize.ModelFileError(f"damaged checkpoint (bad training state: {key})")

        def num(v, kind=int):
            return isinstance(v, kind) and not isinstance(v, bool) and (kind is not float or v == v)

        for key in ("files", "sizes", "output"):
            if key not in meta:
                raise bad(key)
        files, sizes = meta["files"], meta["sizes"]
        if not isinstance(files, list) or not all(isinstance(x, str) for x in files) or not files:
            raise bad("files")
        if not isinstance(sizes, list) or len(sizes) != len(files) or not all(num(x) and x >= 0 for x in sizes):
            raise bad("sizes")
        checks = {
            "output": lambda v: isinstance(v, str) and v != "",
            "test": lambda v: v is None or isinstance(v, str),
            "metrics": lambda v: v is None or isinstance(v, str),
            "checkpoint": lambda v: v is None or isinstance(v, str),
            "test_every": lambda v: num(v) and v >= 0,
            "checkpoint_every": lambda v: num(v) and v >= 0,
            "force": lambda v: isinstance(v, bool),
            "done": lambda v: num(v) and 0 <= v <= sum(sizes),
            "train_bits": lambda v: num(v, (int, float)) and v >= 0,
            "best": lambda v: v is None or num(v, (int, float)),
            "rows": lambda v: isinstance(v, list) and all(
                isinstance(r, list) and len(r) == 3 and all(num(x, (int, float)) for x in r) for r in v),
            "start_bytes": lambda v: num(v) and v >= 0,
        }
        for key, ok in checks.items():
            if key in meta and not ok(meta[key]):
                raise bad(key)
        return cls(**{k: meta[k] for k in cls.__dataclass_fields__ if k in meta})


def best_path(output: str) -> str:
    p = Path(output)
    return str(p.with_name(p.stem + ".best" + (p.suffix or ".gmxm")))


def _next_multiple(pos: int, every: int) -> int:
    return (pos // every + 1) * every if every > 0 else 1 << 62


def run_training(model: Model, st: TrainState, progress: Progress = _nothing,
                 on_eval: Callable[[int, float, float | None], None] | None = None) -> Model:
    """Train `model` on st.files from st.done onwards; evaluations and checkpoints at multiples of their
    intervals.  Saves st.output at the end (and the best model by held-out score beside it)."""
    offsets = np.cumsum([0] + st.sizes, dtype=np.int64)  # 64-bit on every platform
    start = time.perf_counter()
    while st.done < st.total:
        index = int(np.searchsorted(offsets, st.done, side="right") - 1)
        path = st.files[index]
        offset = st.done - int(offsets[index])
        stops = [int(offsets[index + 1]), st.done + CHUNK]
        if st.test and st.test_every:
            stops.append(_next_multiple(st.done, st.test_every))
        if st.checkpoint and st.checkpoint_every:
            stops.append(_next_multiple(st.done, st.checkpoint_every))
        stop = min(stops)
        with open(path, "rb") as f:
            f.seek(offset)
            block = f.read(stop - st.done)
        if os.path.getsize(path) != st.sizes[index]:
            raise ValueError(f"{path} changed size during training")
        if not block:
            raise ValueError(f"{path} is shorter than it was ({st.sizes[index]} bytes expected)")
        st.train_bits += evaluate(model, block, True)
        st.done += len(block)
        progress(len(block))
        if st.test and st.test_every and st.done % st.test_every == 0 and st.done < st.total:
            _evaluate_and_keep(model, st, on_eval)
        if st.checkpoint and st.checkpoint_every and st.done % st.checkpoint_every == 0 and st.done < st.total:
            serialize.save_checkpoint(st.checkpoint, model, {}, st.to_meta())
            after_checkpoint()
    if st.test:
        _evaluate_and_keep(model, st, on_eval)
    serialize.save(st.output, model, force=st.force)
    if st.checkpoint and os.path.exists(st.checkpoint):
        os.unlink(st.checkpoint)
    return model


def _evaluate_and_keep(model: Model, st: TrainState, on_eval) -> None:
    score = held_out(model, st.test, learn=True)
    train_bpb = st.train_bits / st.done if st.done else 0.0
    st.rows.append([st.done, train_bpb, score])
    if st.best is None or score < st.best:
        st.best = score
        serialize.save(best_path(st.output), model, force=True)
    if st.metrics:
        with atomic_output(st.metrics, force=True) as f:
            f.write(b"bytes\ttrain_bpb\ttest_bpb\n")
            for b, t, h in st.rows:
                f.write(f"{b}\t{t:.5f}\t{h:.5f}\n".encode())
    if on_eval:
        on_eval(st.done, train_bpb, score)


def start_training(data: list[str], output: str, preset: str | None, from_model: str | None, **options
                   ) -> tuple[Model, TrainState]:
    files = input_files(data)
    if os.path.exists(output) and not options.get("force"):
        raise FileExistsError(17, "already exists (use --force to overwrite)", output)
    test = options.get("test")
    outputs = [output, options.get("metrics"), options.get("checkpoint")] + ([best_path(output)] if test else [])
    for target in filter(None, outputs):
        for source in [str(p) for p in files] + ([test] if test else []):
            if same_file(source, target):
                raise ValueError(f"{target} is one of the inputs: choose another output")
    if from_model:
        model = serialize.load(from_model)
    else:
        model = Model.new(preset or "default")
    st = TrainState(files=[str(p) for p in files], sizes=[p.stat().st_size for p in files], output=output,
                    start_bytes=model.bytes_learned, **options)
    if st.test and st.test_every == 0:
        st.test_every = max(CHUNK, -(-st.total // 10))
    return model, st


# ---- compression with checkpoints ----------------------------------------------------------------------------

def compress_run(model: Model, src, dst, pos: int, crc: int, coder: CoderState,
                 checkpoint: Callable[[int, int], None] | None, every: int, progress: Progress = _nothing
                 ) -> tuple[int, int]:
    """Continue compressing src (positioned at byte `pos`) into dst (positioned after what was written).
    Calls checkpoint(pos, crc) at multiples of `every`.  Returns (bytes in, crc)."""
    model.changed()
    out = np.empty(CHUNK * engine.OUT_BYTES_PER_BYTE + 16, np.uint8)
    while True:
        want = CHUNK
        if checkpoint and every:
            want = min(want, _next_multiple(pos, every) - pos)
        block = src.read(want)
        if not block:
            break
        crc = zlib.crc32(block, crc)
        data = np.frombuffer(block, np.uint8)
        i = 0
        while i < len(data):
            j = i
            i, n = engine.compress_chunk(model.params, model.ltm, model.stm, coder, data, i, len(data), out, 0)
            dst.write(out[:n].tobytes())
            progress(i - j)
            if i < len(data):
                model.room()
        pos += len(block)
        if checkpoint and every and pos % every == 0:
            checkpoint(pos, crc)
    n = engine.compress_finish(coder, out, 0)
    dst.write(out[:n].tobytes())
    return pos, crc
