"""Streaming compression and decompression of whole archives, on binary file objects.

The input is read in CHUNK-byte blocks and handed to the compiled chunk loops; memory does not grow with the
input beyond the model's own tables and history.  The archive header holds the length and the CRC32 of the
original bytes, which are only known at the end, so `compress_file` writes a placeholder header and fills it in
afterwards: its output must be seekable (commands write to a temporary file anyway).

An input longer than the block size is cut into blocks, each coded into a stream of its own from a fresh copy of
the starting model (code_block, decode_block), and the archive gets a block index (archive.py).  The blocks are
independent, so they can be coded side by side (parallel.Workers), and the archive is the same bytes however
they were: only the block size changes it.  An input of one block is written as it always was, without an index:
one stream, bit for bit the stream a whole archive of it had before blocks existed.
"""
from __future__ import annotations

import contextlib
import shutil
import tempfile
import zlib
from io import BytesIO
from typing import BinaryIO, Callable, Iterator

import numpy as np

from . import engine, presets
from .archive import (
    DEFAULT_BLOCK_SIZE,
    FLAG_BLOCKS,
    FLAG_DICTIONARY,
    FLAG_MODEL,
    MAX_EXPANSION,
    MAX_HEADER,
    ArchiveError,
    BlockIndex,
    Header,
    decode_header,
    decode_index,
    index_size,
)
from .chunks import CHUNK, Progress, next_multiple, no_progress
from .coder.arithmetic import CoderState, coder_new
from .model import Model, huge_pages_for
from .parallel import INLINE, Workers, in_order
from .preprocess.dictionary import Decoder, Dictionary, DictionaryError, Encoder

MAX_BLOCKS = (1 << 32) - 1  # the index counts blocks in 32 bits
# The dictionary transform (preprocess/dictionary.py): English-like text coded as word codes.  Only the stronger
# presets use it (the gmix ports reproduce gmix's archives) and only without a model file (a model learned
# untransformed bytes).  `auto` uses it when it shortens the input's first DICTIONARY_SAMPLE bytes to at most
# DICTIONARY_RATIO of their length: text in English and English-like markup and code shrinks to 0.65-0.85, while
# other languages, binaries and most data grow (their bytes >= 128 are escaped) or barely shrink.
DICTIONARY_PRESETS = presets.SIZED
DICTIONARY_SAMPLE = 1 << 20
DICTIONARY_RATIO = 0.9
DICTIONARY_SETTINGS = ("auto", "on", "off")


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
        return model.copy(huge_pages_for(header.stream_length), reserve=True)
    if model is not None:
        raise ArchiveError("this archive was compressed without a model file: do not pass --model")
    spec = presets.for_archive(header.preset, header.spec_digest)
    if spec is None:
        if header.preset not in presets.PRESETS and header.preset not in presets.LEGACY:
            raise ArchiveError(f"archive uses unknown preset {header.preset!r}")
        raise ArchiveError(f"archive was made with a different version of preset {header.preset!r} "
                           "(specification digest mismatch)")
    spec = presets.for_size_class(spec, header.preset, header.size_class, header.version)
    if spec is None:
        raise ArchiveError("corrupt archive header (size class)")
    return Model.new(spec, huge_pages=huge_pages_for(header.stream_length), reserve=True)


def start_archive(preset: str, model: Model | None, length: int | None = None, dictionary: bool = False
                  ) -> tuple[Model, Header]:
    """The model to compress with and the archive header naming it; its length and CRC32 are filled in by
    finish_archive.  With `model`, a copy of it (which is not modified); else a fresh preset, its hashed tables
    sized for a stream of `length` bytes when that is known (presets.for_length: the header records the size
    class, so decompression builds the same model).  Either way its mixer weight pool is reserved, so that coding
    never grows it (model.pool_reserve; model_for_header does the same for decompression).  `dictionary`: the
    stream is the input after the dictionary transform (use_dictionary)."""
    flags = FLAG_DICTIONARY if dictionary else 0
    if model is not None:
        header = Header(0, 0, model.spec.digest(), "", model.digest(), FLAG_MODEL | flags)
        return model.copy(huge_pages_for(length), reserve=True), header
    spec, size_class = presets.for_length(preset, length)
    work = Model.new(spec, huge_pages=huge_pages_for(length), reserve=True)
    return work, Header(0, 0, presets.get(preset).digest(), preset, flags=flags, size_class=size_class)


def dictionary_available(preset: str) -> bool:
    """Whether the dictionary transform may code an input for a fresh model of `preset`: the stronger presets only
    (the gmix ports reproduce gmix's archives).  A model file decides by itself (Model.dictionary)."""
    return preset in DICTIONARY_PRESETS


def use_dictionary(setting: str, preset: str, model: Model | None, sample: bytes) -> bool:
    """Whether to code an input through the dictionary transform: `setting` is "off", "on" (ValueError where the
    transform is not available: a gmix preset) or "auto": where it is available, when it shortens `sample`, the
    input's first DICTIONARY_SAMPLE bytes, to at most DICTIONARY_RATIO of their length.  With `model` it is the
    coding the model learned, whatever the sample (ValueError when `setting` asks for the other)."""
    if setting not in DICTIONARY_SETTINGS:
        raise ValueError(f"unknown dictionary setting {setting!r} (choose from {', '.join(DICTIONARY_SETTINGS)})")
    if model is not None:
        coded = model.dictionary is not None
        if setting != "auto" and (setting == "on") != coded:
            learned = "text through the dictionary transform" if coded else "bytes as they are"
            raise ValueError(f"--dictionary {setting} does not fit the model, which learned {learned}: a model "
                             "always reads the coding it learned (leave --dictionary at auto)")
        return coded
    available = dictionary_available(preset)
    if setting == "on" and not available:
        raise ValueError(f"the dictionary transform is for the presets {', '.join(DICTIONARY_PRESETS)}")
    if setting != "auto":
        return setting == "on"
    if not (available and sample):
        return False
    encoder = Encoder(Dictionary.english())
    return len(encoder.feed(sample)) + len(encoder.finish()) <= DICTIONARY_RATIO * len(sample)


def read_sample(src: BinaryIO) -> bytes:
    """The first DICTIONARY_SAMPLE bytes of src (fewer only if it has fewer), which use_dictionary looks at."""
    return _read_full(src, DICTIONARY_SAMPLE)


def transform_input(src: BinaryIO, size: int | None) -> tuple[BinaryIO, int, int, int]:
    """src through the dictionary transform into a new temporary file (the caller closes it): returns (the file,
    at its start; its length; the original's length and CRC32).  ValueError when src does not hold `size` bytes
    (None: any number) because it changed while it was read."""
    encoder, decoder = Encoder(Dictionary.english()), Decoder(Dictionary.english())
    out = tempfile.TemporaryFile(prefix="gmixpy-dictionary-")
    try:
        length = crc = back_length = back_crc = 0
        for block in iter(lambda: src.read(DICTIONARY_SAMPLE), b""):
            length += len(block)
            crc = zlib.crc32(block, crc)
            coded = encoder.feed(block)
            out.write(coded)
            back = decoder.feed(coded)
            back_length, back_crc = back_length + len(back), zlib.crc32(back, back_crc)
        coded = encoder.finish()
        out.write(coded)
        back = decoder.feed(coded) + decoder.finish()
        back_length, back_crc = back_length + len(back), zlib.crc32(back, back_crc)
        if size is not None and length != size:
            raise ValueError(f"the input changed size while it was compressed ({size:,} bytes when it started)")
        # Undone at once, so that an input the transform could not reproduce is never written as an archive.
        if (back_length, back_crc) != (length, crc):
            raise ValueError("the dictionary transform does not reproduce this input: compress it with "
                             "--dictionary off")
        coded = out.tell()
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return out, coded, length, crc


class Prefixed:
    """A reader of `first` and then of src: an input whose first bytes were read ahead (use_dictionary's sample)."""

    def __init__(self, first: bytes, src: BinaryIO):
        self.first, self.src = first, src

    def read(self, n: int = -1) -> bytes:
        if not self.first:
            return self.src.read(n)
        if n is None or n < 0:
            out, self.first = self.first + self.src.read(), b""
            return out
        out, self.first = self.first[:n], self.first[n:]
        return out


class _Untransformed:
    """Writes to dst the dictionary transform's inverse of what is written to it, keeping the length and CRC32 of
    what it wrote: an archive's decoded stream on its way to the original bytes."""

    def __init__(self, dst: BinaryIO):
        self.dst, self.decoder, self.length, self.crc = dst, Decoder(Dictionary.english()), 0, 0

    def write(self, data) -> None:
        self._out(self.decoder.feed, bytes(data))

    def finish(self) -> None:
        self._out(self.decoder.finish)

    def _out(self, decode, *data) -> None:
        try:
            data = decode(*data)
        except DictionaryError as e:
            raise ArchiveError(f"corrupt archive (dictionary transform: {e})") from None
        self.dst.write(data)
        self.length += len(data)
        self.crc = zlib.crc32(data, self.crc)


def stream_length(size: int | None, block_size: int) -> int | None:
    """The most bytes one coded stream of an input of `size` bytes holds: the input's, or a block's when it is cut
    into blocks; for an input of unknown size (a pipe), a block's, or None without blocks.  What the starting
    model's tables are sized for (start_archive): so a pipe of several blocks is coded as the same bytes in a file
    are."""
    if size is None:
        return block_size or None
    return min(size, block_size) if block_size else size


def finish_archive(dst: BinaryIO, start: int, header: Header, total: int, crc: int,
                   original: tuple[int, int] | None = None) -> int:
    """Rewrite the header at `start` of the seekable dst with the final length and CRC32 of the coded bytes (and,
    with the dictionary transform, the `original` input's length and CRC32); returns the end."""
    end = dst.tell()
    if header.with_dictionary:
        header.coded_length, header.coded_crc = total, crc
        header.length, header.crc32 = original
    else:
        header.length, header.crc32 = total, crc
    dst.seek(start)
    dst.write(header.encode())
    dst.seek(end)
    return end


def code_block(start: Model, data: bytes, progress: Progress = no_progress) -> bytes:
    """The coded stream of one block: `data` coded from a fresh copy of `start` (which is not modified), exactly
    as a whole archive of these bytes is coded."""
    out = BytesIO()
    compress_stream(start.copy(), BytesIO(data), out, progress)
    return out.getvalue()


def decode_block(start: Model, stream: bytes, length: int, crc: int, progress: Progress = no_progress) -> bytes:
    """The `length` original bytes of one block's coded stream, decoded from a fresh copy of `start` (which is not
    modified) and checked against the block's CRC32.  Raises ArchiveError."""
    out = BytesIO()
    if decompress_stream(start.copy(), BytesIO(stream), out, length, progress) != crc:
        raise ArchiveError("corrupt archive (CRC32 of the decoded block does not match)")
    return out.getvalue()


def block_count(length: int, block_size: int) -> int:
    """Blocks of an input of `length` bytes (one for an empty input; one stream when block_size is 0)."""
    return max(1, -(-length // block_size)) if block_size else 1


def _read_blocks(src: BinaryIO, block_size: int, size: int | None) -> Iterator[bytes]:
    """src in blocks of block_size bytes (the last may be shorter).  With the input's `size` known, it must have
    exactly that many bytes (ValueError otherwise: the file changed while it was read)."""
    total = 0
    while block := _read_full(src, block_size):
        total += len(block)
        if size is not None and total > size:
            break
        yield block
    if size is not None and total != size:
        raise ValueError(f"the input changed size while it was compressed ({size:,} bytes when it started)")


def _read_full(src: BinaryIO, n: int) -> bytes:
    """Up to n bytes: fewer only at the end of src (a pipe may return less at a time)."""
    parts, left = [], n
    while left and (part := src.read(left)):
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def compress_archive(start: Model, header: Header, src: BinaryIO, dst: BinaryIO, size: int | None = None,
                     block_size: int = DEFAULT_BLOCK_SIZE, workers: Workers = INLINE,
                     progress: Progress = no_progress, original: tuple[int, int] | None = None) -> tuple[int, int]:
    """Write a complete archive of src, `size` bytes (None: unknown, a pipe), to the seekable dst, starting from
    the model and header start_archive gave (the model is learned on when the input is one block).  An input of
    more than `block_size` bytes (0: no limit) is cut into blocks coded by `workers`; without a known size the
    streams are spooled to a temporary file, because the index, which comes first, is known only at the end.
    With the dictionary transform, src holds the transformed bytes and `original` the input's (length, CRC32).
    Returns (input bytes, archive bytes)."""
    base = dst.tell()
    dst.write(header.encode())

    def finish(total, crc):
        return (original[0] if original else total), finish_archive(dst, base, header, total, crc, original) - base

    if not block_size or (size is not None and size <= block_size):
        total, crc, _ = compress_stream(start, src, dst, progress)
        return finish(total, crc)
    blocks = _read_blocks(src, block_size, size)
    first = next(blocks, b"")
    second = next(blocks, None)
    if second is None:  # a pipe of one block
        total, crc, _ = compress_stream(start, BytesIO(first), dst, progress)
        return finish(total, crc)
    count = block_count(size, block_size) if size is not None else None
    if count is not None and count > MAX_BLOCKS:
        raise ValueError(f"{count:,} blocks are more than an archive holds: choose a larger block size")
    streams: list[int] = []
    crcs: list[int] = []
    total = crc = 0

    def tasks():
        nonlocal total, crc
        for block in _chain(first, second, blocks):
            crcs.append(zlib.crc32(block))
            crc = zlib.crc32(block, crc)
            total += len(block)
            if len(crcs) > MAX_BLOCKS:
                raise ValueError(f"more than {MAX_BLOCKS:,} blocks: choose a larger block size")
            yield code_block, (block,), len(block)

    with contextlib.ExitStack() as stack:
        if count is not None:  # the index's place is reserved and filled in at the end
            body = dst
            dst.write(bytes(index_size(count)))
        else:
            body = stack.enter_context(tempfile.TemporaryFile(prefix="gmixpy-streams-"))
        with workers.pool(start, header, progress, count) as pool:
            for stream in in_order(pool, tasks(), count):
                body.write(stream)
                streams.append(len(stream))
        index = BlockIndex(block_size, streams, crcs)
        if body is dst:
            end = dst.tell()
            dst.seek(base + header.size)
            dst.write(index.encode())
            dst.seek(end)
        else:
            dst.write(index.encode())
            body.seek(0)
            shutil.copyfileobj(body, dst)
    header.flags |= FLAG_BLOCKS
    return finish(total, crc)


def _chain(first: bytes, second: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield second
    yield from rest


def compress_file(src: BinaryIO, dst: BinaryIO, preset: str = "default", model: Model | None = None,
                  progress: Progress = no_progress, size: int | None = None,
                  block_size: int = DEFAULT_BLOCK_SIZE, workers: Workers = INLINE,
                  dictionary: str = "auto") -> tuple[int, int]:
    """Write a complete archive of src (`size` bytes, if known) to the seekable dst, from a fresh `preset` or from
    `model` (not modified), cut into blocks of `block_size` bytes coded by `workers` when it is longer than one
    (see compress_archive), through the dictionary transform as `dictionary` says (use_dictionary).  Returns
    (bytes in, archive bytes)."""
    sample = read_sample(src) if dictionary != "off" else b""
    coded, coded_size, original = coded_input(dictionary, preset, model, Prefixed(sample, src), size, sample)
    with coded if original else contextlib.nullcontext():
        work, header = start_archive(preset, model, stream_length(coded_size, block_size), original is not None)
        return compress_archive(work, header, coded, dst, coded_size, block_size, workers, progress, original)


def coded_input(setting: str, preset: str, model: Model | None, src: BinaryIO, size: int | None,
                sample: bytes) -> tuple[BinaryIO, int | None, tuple[int, int] | None]:
    """What a compression codes of src (`size` bytes, None: unknown; `sample`: its first bytes, for the choice):
    (src, size, None) where use_dictionary says no, without reading src; otherwise src through the dictionary
    transform (transform_input: a temporary file the caller closes, its length, and the original's length and
    CRC32).  The word list is loaded once for the choice and the transform, and let go before the model is."""
    with Dictionary.shared():
        if not use_dictionary(setting, preset, model, sample):
            return src, size, None
        coded, coded_size, length, crc = transform_input(src, size)
    return coded, coded_size, (length, crc)


def read_header(src: BinaryIO, archive_size: int | None = None) -> Header:
    """Read and check the header at the current position of src, leaving src just past it."""
    start = src.tell()
    head = src.read(MAX_HEADER)
    header = decode_header(head)
    src.seek(start + header.size)
    if archive_size is not None:
        stream = archive_size - header.size
        if header.stream_length > (stream + 4) * MAX_EXPANSION:
            raise ArchiveError(f"corrupt archive (claims {header.stream_length} bytes, more than its {stream}-byte "
                               "stream can hold)")
    return header


def read_index(src: BinaryIO, header: Header, archive_size: int) -> BlockIndex:
    """Read and check the block index that follows `header` at the current position of src, in an archive of
    archive_size bytes; leaves src at the first stream.  Each block's claimed length is bounded by its stream's
    (MAX_EXPANSION), so a damaged index cannot make a worker decode more than its stream could hold."""
    rest = archive_size - header.size
    head = src.read(min(12, rest))
    count = int.from_bytes(head[8:12], "little") if len(head) == 12 else 0
    data = head + src.read(max(0, min(index_size(count), rest) - len(head)))
    index = decode_index(data, header.stream_length, rest)
    src.seek(src.tell() - len(data) + index.size)
    for i, (n, stream) in enumerate(zip(index.block_lengths(header.stream_length), index.streams)):
        if n > (stream + 4) * MAX_EXPANSION:
            raise ArchiveError(f"corrupt archive (block index: block {i + 1} claims {n} bytes, more than its "
                               f"{stream}-byte stream can hold)")
    return index


def decompress_file(src: BinaryIO, dst: BinaryIO, archive_size: int, model: Model | None = None,
                    progress: Progress = no_progress, workers: Workers = INLINE) -> Header:
    """Decode the archive in src (archive_size bytes from the current position) to dst and verify it: each block's
    CRC32 (by the worker that decodes it, with `workers`) and the whole output's."""
    header = read_header(src, archive_size)
    work = model_for_header(header, model)
    out = _Untransformed(dst) if header.with_dictionary else dst
    if not header.with_blocks:
        crc = decompress_stream(work, src, out, header.stream_length, progress)
    else:
        index = read_index(src, header, archive_size)
        lengths = index.block_lengths(header.stream_length)

        def tasks():
            for stream, n, block_crc in zip(index.streams, lengths, index.crcs):
                data = _read_full(src, stream)
                if len(data) < stream:
                    raise ArchiveError("truncated archive (a block's stream ends early)")
                yield decode_block, (data, n, block_crc), n

        crc = 0
        with workers.pool(work, header, progress, len(lengths)) as pool:
            for block in in_order(pool, tasks(), len(lengths)):
                crc = zlib.crc32(block, crc)
                out.write(block)
    if crc != header.stream_crc:
        raise ArchiveError("corrupt archive (CRC32 of the decoded data does not match)")
    if header.with_dictionary:
        out.finish()
        if (out.length, out.crc) != (header.length, header.crc32):
            raise ArchiveError("corrupt archive (length or CRC32 of the original bytes does not match)")
    return header
