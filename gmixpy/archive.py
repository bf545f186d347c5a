"""The archive format (.gmx), version 2.  All integers little-endian.

    offset  size  field
    0       4     magic b"GMXP"
    4       1     format version (2; version 1 is read too)
    5       1     flags: bit 0 = compressed with a model file (its digest is in `model digest`)
    6       2     reserved, 0
    8       8     original length in bytes (uint64)
    16      4     CRC32 of the original bytes
    20      16    specification digest (first 16 bytes of SHA-256 of the specification's canonical JSON)
    36      16    model digest: the state digest of the model compressed with (model.state_digest), zeros
                  without a model.  Version 1 recorded the first 16 bytes of the model file's SHA-256 instead,
                  which did not describe a model created in Python or changed after loading.
    52      1     length n of the preset name (0 with a model)
    53      n     preset name, ASCII
    53+n    4     CRC32 of header bytes 0 .. 53+n
    57+n    ...   the arithmetic-coded stream (coder/arithmetic.py), to the end of the file

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
FORMAT_VERSION = 3
# 1: the model digest is the model file's checksum (see codec.model_for_header).  3: the model arithmetic gained
# the stronger ensemble's families (context maps, word, record, text and signal contexts, APMs, adaptive Indirect
# rates, warm-started mixers); version 2 archives use only gmix's and decode as before.
READABLE_VERSIONS = (1, 2, 3)
FLAG_MODEL = 1
MAX_EXPANSION = 8192  # decoded bytes per stream byte that no valid stream exceeds
_FIXED = struct.Struct("<4sBBHQI16s16sB")  # the fixed part, up to the preset name
FIXED_SIZE = _FIXED.size  # 53
MAX_HEADER = FIXED_SIZE + 255 + 4


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

    @property
    def with_model(self) -> bool:
        return bool(self.flags & FLAG_MODEL)

    def encode(self) -> bytes:
        name = self.preset.encode("ascii")
        body = _FIXED.pack(MAGIC, self.version, self.flags, 0, self.length, self.crc32, self.spec_digest,
                           self.model_digest, len(name)) + name
        return body + struct.pack("<I", zlib.crc32(body))

    @property
    def size(self) -> int:
        return FIXED_SIZE + len(self.preset.encode("ascii")) + 4


def decode_header(data: bytes) -> Header:
    """Parse the header at the start of `data` (which may hold more).  Raises ArchiveError."""
    if len(data) < 4 or data[:4] != MAGIC:
        raise ArchiveError("not a gmixpy archive (bad magic bytes)")
    if len(data) < FIXED_SIZE:
        raise ArchiveError("truncated archive (incomplete header)")
    magic, version, flags, reserved, length, crc, spec_digest, model_digest, n = _FIXED.unpack_from(data)
    if version not in READABLE_VERSIONS:
        raise ArchiveError(f"archive format version {version} is not supported (this gmixpy reads versions "
                           f"{', '.join(map(str, READABLE_VERSIONS))})")
    end = FIXED_SIZE + n
    if len(data) < end + 4:
        raise ArchiveError("truncated archive (incomplete header)")
    (stored,) = struct.unpack_from("<I", data, end)
    if zlib.crc32(data[:end]) != stored:
        raise ArchiveError("corrupt archive header (checksum mismatch)")
    try:
        preset = data[FIXED_SIZE:end].decode("ascii")
    except UnicodeDecodeError:
        raise ArchiveError("corrupt archive header (preset name)") from None
    if reserved != 0 or flags & ~FLAG_MODEL:
        raise ArchiveError("corrupt archive header (unknown flags)")
    return Header(length=length, crc32=crc, spec_digest=spec_digest, preset=preset, model_digest=model_digest,
                  flags=flags, version=version)
