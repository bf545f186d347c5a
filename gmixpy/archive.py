"""The archive format (.gmx), version 7: the layout of version 5 (6 and 7 change only what a size class cuts).  All
integers little-endian.

    offset  size  field
    0       4     magic b"GMXP"
    4       1     format version (7; versions 1 to 6 are read too)
    5       1     flags: bit 0 = compressed with a model file (its digest is in `model digest`);
                  bit 1 = the input was cut into independently coded blocks (a block index follows the header);
                  bit 2 = the coded bytes are the input after the dictionary transform (preprocess/dictionary.py
                  with the bundled English word list); the header then ends with the coded bytes' length and CRC32
    6       1     size class: 0 = the tables as the specification declares them; k = 1..63: the hashed tables were
                  sized for an input of at most 2**k bytes (presets.sized).  Versions 1 to 3: 0.
    7       1     reserved, 0
    8       8     original length in bytes (uint64)
    16      4     CRC32 of the original bytes
    20      16    specification digest (first 16 bytes of SHA-256 of the specification's canonical JSON, as
                  declared: before any sizing)
    36      16    model digest: the state digest of the model compressed with (model.state_digest), zeros
                  without a model.  Version 1 recorded the first 16 bytes of the model file's SHA-256 instead,
                  which did not describe a model created in Python or changed after loading.
    52      1     length n of the preset name (0 with a model)
    53      n     preset name, ASCII
    53+n    12    only with flag bit 2: 8 length of the coded (transformed) bytes, 4 their CRC32; call this t
    53+n+t  4     CRC32 of the header bytes before it
    57+n+t  ...   without blocks: the arithmetic-coded stream (coder/arithmetic.py), to the end of the file

The original length and CRC32 are always the input's as the user gave it.  With the transform, everything coded
(the stream, the block index and its blocks, the size class) is about the transformed bytes, which decode to the
original through the transform's inverse.

With blocks (flag bit 1), the block index follows the header:

    0       8     block size: input bytes per block (the last block may be shorter)
    8       4     block count m (at least 1)
    12      12*m  per block: 8 stream length in bytes, 4 CRC32 of the block's original bytes
    12+12m  4     CRC32 of the index bytes before it

and then the m coded streams back to back, each coded from the same starting model as a whole archive would be
(a block is a stream of its own: a one-block archive's stream is the plain archive's stream, bit for bit).  With
the transform, the blocks cut the transformed bytes and their CRC32s are of those.

The header checksum lets damage to the header be reported as such; the CRC32 of the original bytes rejects any
decoded output that differs from what was compressed.  A stream cannot decode to more than MAX_EXPANSION bytes per
stream byte (the coder never spends less than about 1/5600 of a bit on a byte), so a header claiming more is
rejected before anything is decoded.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

MAGIC = b"GMXP"
FORMAT_VERSION = 7
# 1: the model digest is the model file's checksum (see codec.model_for_header).  3: the model arithmetic gained
# the stronger ensemble's families (context maps, word, record, text and signal contexts, APMs, adaptive Indirect
# rates, warm-started mixers); version 2 archives use only gmix's and decode as before.  4: blocks and the size
# class; a version-3 archive is a version-4 one with neither.  5: the dictionary transform (flag bit 2) and the
# retuned `default` and `tiny` presets; a version-4 archive is a version-5 one without the transform.  6: the
# Indirect tables of a sized preset keep fewer rows (presets.INDIRECT_EXTRA); the layout is version 5's.  7: the
# LSTM of a sized preset has fewer cells in the small size classes (presets.LSTM_CELLS); the layout is version 5's.
READABLE_VERSIONS = (1, 2, 3, 4, 5, 6, 7)
FLAG_MODEL = 1
FLAG_BLOCKS = 2
FLAG_DICTIONARY = 4
_CODED = struct.Struct("<QI")  # with FLAG_DICTIONARY: length and CRC32 of the transformed bytes
DICTIONARY_HEADER_BYTES = _CODED.size  # what FLAG_DICTIONARY adds to a header
MAX_SIZE_CLASS = 63
MAX_EXPANSION = 8192  # decoded bytes per stream byte that no valid stream exceeds
# Input bytes per block unless told otherwise (compress --block-size): an input of up to this many bytes is one
# stream.  Every block starts from the same untrained model, so smaller blocks cost ratio; the README ("Blocks and
# threads") gives the measurements it was chosen from.
DEFAULT_BLOCK_SIZE = 16 << 20
_FIXED = struct.Struct("<4sBBBBQI16s16sB")  # the fixed part, up to the preset name
FIXED_SIZE = _FIXED.size  # 53
MAX_HEADER = FIXED_SIZE + 255 + _CODED.size + 4


class ArchiveError(Exception):
    """The file is not a gmixpy archive, or it is damaged."""


@dataclass
class Header:
    length: int
    crc32: int
    spec_digest: bytes
    preset: str = ""
    model_digest: bytes = bytes(16)
    flags: int = 0
    version: int = FORMAT_VERSION
    size_class: int = 0  # 0: tables as declared; k: sized for inputs of at most 2**k bytes (presets.sized)
    coded_length: int = 0  # with the dictionary transform: the transformed bytes' length ...
    coded_crc: int = 0     # ... and CRC32 (what the stream holds); without it, the same as length and crc32

    @property
    def with_model(self) -> bool:
        return bool(self.flags & FLAG_MODEL)

    @property
    def with_blocks(self) -> bool:
        return bool(self.flags & FLAG_BLOCKS)

    @property
    def with_dictionary(self) -> bool:
        return bool(self.flags & FLAG_DICTIONARY)

    @property
    def stream_length(self) -> int:
        """Bytes the coded stream (or the blocks together) decodes to: the transformed bytes' with the
        dictionary transform, else the original's."""
        return self.coded_length if self.with_dictionary else self.length

    @property
    def stream_crc(self) -> int:
        return self.coded_crc if self.with_dictionary else self.crc32

    def encode(self) -> bytes:
        name = self.preset.encode("ascii")
        body = _FIXED.pack(MAGIC, self.version, self.flags, self.size_class, 0, self.length, self.crc32,
                           self.spec_digest, self.model_digest, len(name)) + name
        if self.with_dictionary:
            body += _CODED.pack(self.coded_length, self.coded_crc)
        return body + struct.pack("<I", zlib.crc32(body))

    @property
    def size(self) -> int:
        return FIXED_SIZE + len(self.preset.encode("ascii")) + (_CODED.size if self.with_dictionary else 0) + 4


def decode_header(data: bytes) -> Header:
    """Parse the header at the start of `data` (which may hold more).  Raises ArchiveError."""
    if len(data) < 4 or data[:4] != MAGIC:
        raise ArchiveError("not a gmixpy archive (bad magic bytes)")
    if len(data) < FIXED_SIZE:
        raise ArchiveError("truncated archive (incomplete header)")
    magic, version, flags, size_class, reserved, length, crc, spec_digest, model_digest, n = _FIXED.unpack_from(data)
    if version not in READABLE_VERSIONS:
        raise ArchiveError(f"archive format version {version} is not supported (this gmixpy reads versions "
                           f"{', '.join(map(str, READABLE_VERSIONS))})")
    known = FLAG_MODEL | (FLAG_BLOCKS if version >= 4 else 0) | (FLAG_DICTIONARY if version >= 5 else 0)
    end = FIXED_SIZE + n + (_CODED.size if flags & known & FLAG_DICTIONARY else 0)
    if len(data) < end + 4:
        raise ArchiveError("truncated archive (incomplete header)")
    (stored,) = struct.unpack_from("<I", data, end)
    if zlib.crc32(data[:end]) != stored:
        raise ArchiveError("corrupt archive header (checksum mismatch)")
    try:
        preset = data[FIXED_SIZE:FIXED_SIZE + n].decode("ascii")
    except UnicodeDecodeError:
        raise ArchiveError("corrupt archive header (preset name)") from None
    coded_length, coded_crc = _CODED.unpack_from(data, FIXED_SIZE + n) if flags & known & FLAG_DICTIONARY else (0, 0)
    if reserved != 0 or flags & ~known or (version < 4 and size_class != 0):
        raise ArchiveError("corrupt archive header (unknown flags)")
    if size_class > MAX_SIZE_CLASS:
        raise ArchiveError("corrupt archive header (size class)")
    return Header(length=length, crc32=crc, spec_digest=spec_digest, preset=preset, model_digest=model_digest,
                  flags=flags, version=version, size_class=size_class, coded_length=coded_length,
                  coded_crc=coded_crc)


@dataclass
class BlockIndex:
    """The block index of an archive with blocks: the input cut into `block_size`-byte blocks (the last may be
    shorter), each coded into a stream of its own."""
    block_size: int
    streams: list[int]  # stream length in bytes, per block
    crcs: list[int]     # CRC32 of the block's original bytes, per block

    def encode(self) -> bytes:
        body = struct.pack("<QI", self.block_size, len(self.streams))
        body += b"".join(struct.pack("<QI", n, c) for n, c in zip(self.streams, self.crcs))
        return body + struct.pack("<I", zlib.crc32(body))

    @property
    def size(self) -> int:
        return index_size(len(self.streams))

    def block_lengths(self, length: int) -> list[int]:
        """Input bytes per block, for an original of `length` bytes."""
        return [max(0, min(self.block_size, length - i * self.block_size)) for i in range(len(self.streams))]


def index_size(count: int) -> int:
    return 12 + 12 * count + 4


def decode_index(data: bytes, length: int, stream_bytes: int) -> BlockIndex:
    """Parse a block index at the start of `data` for an original of `length` bytes followed by `stream_bytes`
    bytes of archive (the index and the streams).  Raises ArchiveError."""
    if len(data) < 12:
        raise ArchiveError("truncated archive (incomplete block index)")
    block_size, count = struct.unpack_from("<QI", data)
    if block_size < 1 or count < 1 or count != -(-length // block_size) + (length == 0):
        raise ArchiveError("corrupt archive (block index does not match the original length)")
    end = index_size(count) - 4
    if len(data) < end + 4:
        raise ArchiveError("truncated archive (incomplete block index)")
    (stored,) = struct.unpack_from("<I", data, end)
    if zlib.crc32(data[:end]) != stored:
        raise ArchiveError("corrupt archive (block index checksum mismatch)")
    pairs = [struct.unpack_from("<QI", data, 12 + 12 * i) for i in range(count)]
    index = BlockIndex(block_size, [n for n, _ in pairs], [c for _, c in pairs])
    if sum(index.streams) + index.size != stream_bytes:
        raise ArchiveError("corrupt archive (the block streams do not fill the archive)")
    return index
