"""Streaming compression and decompression of whole archives, on binary file objects.

The input is read in CHUNK-byte blocks and handed to the compiled chunk loops; memory does not grow with the
input beyond the model's own tables and history.  The archive header holds the length and the CRC32 of the
original bytes, which are only known at the end, so `compress_file` writes a placeholder header and fills it in
afterwards: its output must be seekable (commands write to a temporary file anyway).
"""
from __future__ import annotations

import zlib
from typing import BinaryIO, Callable

import numpy as np

from . import engine, presets
from .archive import FLAG_MODEL, MAX_EXPANSION, MAX_HEADER, ArchiveError, Header, decode_header
from .chunks import CHUNK, Progress, next_multiple, no_progress
from .coder.arithmetic import CoderState, coder_new
from .model import Model, huge_pages_for


def compress_chunks(model: Model, src: BinaryIO, dst: BinaryIO, pos: int, crc: int, coder: CoderState,
                    checkpoint: Callable[[int, int], None] | None = None, every: int = 0,
                    progress: Progress = no_progress) -> tuple[int, int]:
    """Continue compressing src (positioned at byte `pos`, whose first `pos` bytes have the CRC32 `crc`) into dst
    (positioned after what was written), then end the coded stream.  Calls checkpoint(pos, crc) at the multiples
    of `every`.  Returns (bytes in, CRC32)."""
    model.changed()
    out = np.empty(CHUNK * engine.OUT_BYTES_PER_BYTE + 16, np.uint8)
    while True:
        want = CHUNK
        if checkpoint and every:
            want = min(want, next_multiple(pos, every) - pos)
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


def compress_stream(model: Model, src: BinaryIO, dst: BinaryIO, progress: Progress = no_progress
                    ) -> tuple[int, int, int]:
    """Code every byte of src into the seekable dst, learning as it goes.  Returns (bytes in, CRC32, stream
    bytes out)."""
    start = dst.tell()
    total, crc = compress_chunks(model, src, dst, 0, 0, coder_new(), progress=progress)
    return total, crc, dst.tell() - start


def decompress_stream(model: Model, src: BinaryIO, dst: BinaryIO, length: int,
                      progress: Progress = no_progress) -> int:
    """Decode `length` bytes from the coded stream in src (which must end exactly where the stream does) into
    dst.  Returns their CRC32.  Raises ArchiveError when the stream runs out before `length` bytes are decoded
    or when data follows its end."""
    model.changed()
    coder = coder_new()
    capacity = 4 * CHUNK + 64
    inp = np.zeros(capacity, np.uint8)
    in_len = in_pos = 0
    base = 0  # stream offset of inp[0]
    final = False
    out = np.empty(CHUNK, np.uint8)

    def refill():
        nonlocal in_len, in_pos, final, base
        rest = in_len - in_pos
        if rest > 0:
            inp[:rest] = inp[in_pos:in_len]
        base += in_pos  # refill runs only before the end is reached, so in_pos <= in_len
        in_len, in_pos = max(rest, 0), 0
        while not final and in_len < capacity:
            block = src.read(capacity - in_len)
            if not block:
                final = True
                break
            inp[in_len:in_len + len(block)] = np.frombuffer(block, np.uint8)
            in_len += len(block)

    refill()
    in_pos = engine.decompress_start(coder, inp, 0, in_len)
    crc = done = 0
    while done < length:
        if not final and in_len - in_pos < 2 * CHUNK:
            refill()
        want = min(CHUNK, length - done)
        in_pos, n = engine.decompress_chunk(model.params, model.ltm, model.stm, coder, inp, in_pos, in_len, final,
                                            out, 0, want)
        if final and in_pos > in_len + 3:
            # A valid stream is never read more than 3 bytes past its end (the decoder's 4-byte window).
            raise ArchiveError("truncated or corrupt archive (the coded stream ends too early)")
        if n:
            block = out[:n].tobytes()
            crc = zlib.crc32(block, crc)
            dst.write(block)
            done += n
            progress(n)
        if n < want and (final or in_len - in_pos >= engine.IN_BYTES_PER_BYTE):
            model.room()
    # The encoder's last byte is the one before the decoder's 4-byte window runs 3 bytes past the stream: a
    # complete stream has exactly in_pos - 3 bytes.  Fewer means truncation, more means trailing data.
    end = base + in_pos - 3
    available = base + in_len
    if final and end > available:
        raise ArchiveError("truncated or corrupt archive (the coded stream ends too early)")
    if end < available or (not final and src.read(1)):
        raise ArchiveError("corrupt archive (unexpected data after the end of the coded stream)")
    return crc


def model_for_header(header: Header, model: Model | None) -> Model:
    """The starting model an archive was compressed with: a fresh preset or a copy of the given model, which
    must be in exactly the state the archive records (format 1 recorded the model file's checksum instead)."""
    if header.with_model:
        if model is None:
            raise ArchiveError("this archive was compressed with a model file: pass the same model (--model)")
        same = model.file_digest == header.model_digest if header.version == 1 else \
            model.digest() == header.model_digest
        if not same:
            raise ArchiveError("this archive was compressed with a different model, or the same model in another "
                               "state (model digest mismatch)")
        if header.size_class:
            raise ArchiveError("corrupt archive header (size class)")
        return model.copy()
    if model is not None:
        raise ArchiveError("this archive was compressed without a model file: do not pass --model")
    spec = presets.for_archive(header.preset, header.spec_digest)
    if spec is None:
        if header.preset not in presets.PRESETS and header.preset not in presets.LEGACY:
            raise ArchiveError(f"archive uses unknown preset {header.preset!r}")
        raise ArchiveError(f"archive was made with a different version of preset {header.preset!r} "
                           "(specification digest mismatch)")
    spec = presets.for_size_class(spec, header.preset, header.size_class)
    if spec is None:
        raise ArchiveError("corrupt archive header (size class)")
    return Model.new(spec, huge_pages=huge_pages_for(header.length))


def start_archive(preset: str, model: Model | None, length: int | None = None) -> tuple[Model, Header]:
    """The model to compress with and the archive header naming it; its length and CRC32 are filled in by
    finish_archive.  With `model`, a copy of it (which is not modified); else a fresh preset, its hashed tables
    sized for an input of `length` bytes when that is known (presets.for_length: the header records the size
    class, so decompression builds the same model)."""
    if model is not None:
        return model.copy(), Header(0, 0, model.spec.digest(), "", model.digest(), FLAG_MODEL)
    spec, size_class = presets.for_length(preset, length)
    work = Model.new(spec, huge_pages=huge_pages_for(length))
    return work, Header(0, 0, presets.get(preset).digest(), preset, size_class=size_class)


def finish_archive(dst: BinaryIO, start: int, header: Header, total: int, crc: int) -> int:
    """Rewrite the header at `start` of the seekable dst with the final length and CRC32; returns the end."""
    end = dst.tell()
    header.length, header.crc32 = total, crc
    dst.seek(start)
    dst.write(header.encode())
    dst.seek(end)
    return end


def compress_file(src: BinaryIO, dst: BinaryIO, preset: str = "default", model: Model | None = None,
                  progress: Progress = no_progress, length: int | None = None) -> tuple[int, int]:
    """Write a complete archive of src to the seekable dst.  Returns (bytes in, archive bytes).  `length`: how
    many bytes src holds, when known (the model's tables are then sized to it)."""
    work, header = start_archive(preset, model, length)
    start = dst.tell()
    dst.write(header.encode())
    total, crc, _ = compress_stream(work, src, dst, progress)
    return total, finish_archive(dst, start, header, total, crc) - start


def read_header(src: BinaryIO, archive_size: int | None = None) -> Header:
    """Read and check the header at the current position of src, leaving src just past it."""
    start = src.tell()
    head = src.read(MAX_HEADER)
    header = decode_header(head)
    src.seek(start + header.size)
    if archive_size is not None:
        stream = archive_size - header.size
        if header.length > (stream + 4) * MAX_EXPANSION:
            raise ArchiveError(f"corrupt archive (claims {header.length} bytes, more than its {stream}-byte "
                               "stream can hold)")
    return header


def decompress_file(src: BinaryIO, dst: BinaryIO, archive_size: int, model: Model | None = None,
                    progress: Progress = no_progress) -> Header:
    """Decode the archive in src (archive_size bytes from the current position) to dst and verify it."""
    header = read_header(src, archive_size)
    work = model_for_header(header, model)
    crc = decompress_stream(work, src, dst, header.length, progress)
    if crc != header.crc32:
        raise ArchiveError("corrupt archive (CRC32 of the decoded data does not match)")
    return header
