"""Fuzzing: damaged and crafted archives, model files and checkpoints must end in the original bytes or one clean
error, within bounded time and memory; never a traceback, a hang, a crash or an output file left behind.

The default run tries a few hundred cases; `make fuzz` (GMIXPY_FUZZ_CASES=5000) tries thousands.  Outcome counts
per mutation kind are printed (pytest -s) and written as fuzz-*.json to each test's temporary directory, or to
$GMIXPY_RESULTS (`make fuzz` writes them to bench-results/).
"""
from __future__ import annotations

import collections
import hashlib
import json
import os
import random
import re
import resource
import signal
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

import gmixpy
from gmixpy import presets, serialize
from gmixpy.archive import (
    FIXED_SIZE,
    FLAG_BLOCKS,
    FLAG_DICTIONARY,
    FORMAT_VERSION,
    ArchiveError,
    BlockIndex,
    decode_header,
    decode_index,
)
from gmixpy.cli import main as cli_main
from gmixpy.model import HISTORY
from gmixpy.runs import read_checkpoint
from helpers import message_lines, no_temporaries, one_line, results_dir, run, save_trained_tiny

REPO = Path(__file__).resolve().parent.parent
CASES = int(os.environ.get("GMIXPY_FUZZ_CASES", "500"))
CASE_SECONDS = 20.0  # no single case may take longer (a hang would)
RESULTS: dict[str, dict] = {}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def _normalise(message: str) -> str:
    """An error message without its numbers and file names, to count outcomes by kind."""
    message = re.sub(r"^\S*: ", "", message)
    message = re.sub(r"\d[\d,]*", "N", message)
    return message[:90]


def _record(table, kind, outcome):
    table.setdefault(kind, collections.Counter())[outcome] += 1


def _report(name, table, seconds, rss_before, directory):
    flat = {kind: dict(c.most_common()) for kind, c in sorted(table.items())}
    total = sum(sum(c.values()) for c in table.values())
    RESULTS[name] = {"cases": total, "seconds": round(seconds, 1), "peak_rss_growth_mb": round(_rss_mb() - rss_before),
                     "outcomes": flat}
    print(f"\n== {name}: {total} cases in {seconds:.1f} s")
    for kind, c in sorted(table.items()):
        print(f"  {kind:22s} " + "; ".join(f"{n} x {o}" for o, n in c.most_common()))
    (results_dir(directory) / f"fuzz-{name}.json").write_text(json.dumps(RESULTS[name], indent=1) + "\n")


# ---- archives ---------------------------------------------------------------------------------------------------

def _header_size(blob: bytes) -> int:
    return FIXED_SIZE + blob[52] + (12 if blob[5] & FLAG_DICTIONARY else 0) + 4


def _reheader(blob: bytes, **fields) -> bytes:
    """`blob` with header fields replaced and the header checksum recomputed (a crafted, not a damaged, file).
    The dictionary transform's part of the header (coded_length, coded_crc) stays where it was, whatever the
    flags say."""
    n = blob[52]
    h = _header_size(blob)
    body = bytearray(blob[:h - 4])
    if "coded_length" in fields:
        body[FIXED_SIZE + n:FIXED_SIZE + n + 8] = struct.pack("<Q", fields["coded_length"])
    if "coded_crc" in fields:
        body[FIXED_SIZE + n + 8:FIXED_SIZE + n + 12] = struct.pack("<I", fields["coded_crc"])
    if "length" in fields:
        body[8:16] = struct.pack("<Q", fields["length"])
    if "version" in fields:
        body[4] = fields["version"]
    if "flags" in fields:
        body[5] = fields["flags"]
    if "size_class" in fields:
        body[6] = fields["size_class"]
    if "spec_digest" in fields:
        body[20:36] = fields["spec_digest"]
    if "preset" in fields:
        name = fields["preset"]
        body = body[:52] + bytes([len(name)]) + name + body[FIXED_SIZE + n:]
    stream = blob[h:]
    return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body))) + stream


def _index_lies(blob: bytes, length: int) -> list[bytes]:
    """An archive with blocks whose index is crafted (its checksum recomputed): stream lengths moved from one block
    to the next, a different block size, a block count one off."""
    h = _header_size(blob)
    index = decode_index(blob[h:], length, len(blob) - h)
    rest = blob[h + index.size:]
    moved = list(index.streams)
    moved[0], moved[1] = moved[0] + 7, moved[1] - 7
    lies = [BlockIndex(index.block_size, moved, index.crcs),
            BlockIndex(index.block_size + 1, index.streams, index.crcs),
            BlockIndex(index.block_size, index.streams[:-1], index.crcs[:-1]),
            BlockIndex(index.block_size, [*index.streams, 0], [*index.crcs, 0]),
            BlockIndex(index.block_size, index.streams, index.crcs[::-1])]
    return [blob[:h] + lie.encode() + rest for lie in lies]


def _mutations(blobs, rng: random.Random, count: int):
    """(kind, original, mutated) for `count` cases, spread over the mutation kinds."""
    cases = []
    # exhaustive: truncation at every header offset, for every sample archive
    for data, blob in blobs:
        for cut in range(_header_size(blob) + 1):
            cases.append(("truncate_header", data, blob[:cut]))
    crafted = []
    for data, blob in blobs:
        length = len(data)
        if blob[5] & FLAG_DICTIONARY:
            coded = decode_header(blob).coded_length
            crafted += [("coded_length_lie", data, _reheader(blob, coded_length=coded + 1)),
                        ("coded_length_lie", data, _reheader(blob, coded_length=max(coded - 1, 0))),
                        ("coded_length_lie", data, _reheader(blob, coded_length=1 << 63)),
                        ("coded_crc_lie", data, _reheader(blob, coded_crc=decode_header(blob).coded_crc ^ 1)),
                        ("dictionary_flag", data, _reheader(blob, version=4))]
        crafted += [("dictionary_flag", data, _reheader(blob, flags=blob[5] ^ FLAG_DICTIONARY))]
        crafted += [("length_2**63", data, _reheader(blob, length=1 << 63)),
                    ("length_2**64-1", data, _reheader(blob, length=(1 << 64) - 1)),
                    ("length_lie", data, _reheader(blob, length=length + 1)),
                    ("length_lie", data, _reheader(blob, length=2 * length + 100)),
                    ("length_lie", data, _reheader(blob, length=max(length - 1, 0))),
                    ("length_lie", data, _reheader(blob, length=len(blob) * 8000)),
                    ("wrong_spec_digest", data, _reheader(blob, spec_digest=bytes(16))),
                    ("wrong_spec_digest", data, _reheader(blob, spec_digest=hashlib.sha256(b"x").digest()[:16])),
                    ("wrong_preset", data, _reheader(blob, preset=b"fast")),
                    ("wrong_preset", data, _reheader(blob, preset=b"nonexistent")),
                    ("wrong_preset", data, _reheader(blob, preset=b"")),
                    ("wrong_preset", data, _reheader(blob, preset=b"\xff\xfe")),
                    ("wrong_preset", data, _reheader(blob, preset=b"t" * 255)),
                    ("wrong_version", data, _reheader(blob, version=FORMAT_VERSION + 1)),
                    ("wrong_version", data, _reheader(blob, version=0)),
                    ("model_flag", data, _reheader(blob, flags=1)),
                    ("blocks_flag", data, _reheader(blob, flags=blob[5] ^ FLAG_BLOCKS)),
                    ("unknown_flags", data, _reheader(blob, flags=0x80)),
                    ("size_class", data, _reheader(blob, size_class=0)),
                    ("size_class", data, _reheader(blob, size_class=1)),
                    ("size_class", data, _reheader(blob, size_class=30)),
                    ("size_class", data, _reheader(blob, size_class=63)),
                    ("size_class", data, _reheader(blob, size_class=64)),
                    ("size_class", data, _reheader(blob, size_class=255)),
                    ("size_class", data, _reheader(blob, version=3, size_class=12))]
        if blob[5] & FLAG_BLOCKS:
            crafted += [("index_lie", data, b) for b in _index_lies(blob, decode_header(blob).stream_length)]
    cases += crafted
    kinds = ["bitflip_header", "bitflip_stream", "byte_scramble", "truncate_stream", "append_garbage",
             "splice_streams", "random_after_magic"]
    for i in range(count):
        kind = kinds[i % len(kinds)]
        data, blob = blobs[rng.randrange(len(blobs))]
        h = _header_size(blob)
        b = bytearray(blob)
        if kind == "bitflip_header":
            pos = rng.randrange(h)
            b[pos] ^= 1 << rng.randrange(8)
        elif kind == "bitflip_stream":
            pos = rng.randrange(h, len(b))
            b[pos] ^= 1 << rng.randrange(8)
        elif kind == "byte_scramble":
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(h, len(b))] ^= rng.randrange(1, 256)
        elif kind == "truncate_stream":
            b = b[:rng.randrange(h, len(b))]
        elif kind == "append_garbage":
            n = rng.choice([1, 2, 3, 4, 7, 64, 1000])
            b += bytes(n) if rng.random() < 0.3 else bytes(rng.randrange(256) for _ in range(n))
        elif kind == "splice_streams":
            _, other = blobs[rng.randrange(len(blobs))]
            b = b[:h] + other[_header_size(other):]
        elif kind == "random_after_magic":
            b = bytearray(b"GMXP" + bytes(rng.randrange(256) for _ in range(rng.randint(0, 200))))
        cases.append((kind, data, bytes(b)))
    return cases


@pytest.fixture(scope="module")
def archives(alice, binary_sample):
    samples = [alice[:1200], binary_sample[:800], b"", b"a" * 300, bytes(range(256))]
    out = [(d, gmixpy.compress(d, preset="tiny")) for d in samples]  # the text through the dictionary transform
    out.append((alice[:1200], gmixpy.compress(alice[:1200], preset="tiny", dictionary="off")))
    out.append((alice[:3600], gmixpy.compress(alice[:3600], preset="tiny", block_size=1024)))  # blocks, transformed
    assert out[0][1][5] & FLAG_DICTIONARY and out[-1][1][5] & (FLAG_DICTIONARY | FLAG_BLOCKS) == FLAG_DICTIONARY | \
        FLAG_BLOCKS
    assert gmixpy.decompress(out[0][1]) == out[0][0]  # compiles (or loads) the kernels before anything is timed
    return out


def test_fuzz_archives_api(archives, tmp_path):
    rng = random.Random(1)
    cases = _mutations(archives, rng, CASES)
    table: dict[str, collections.Counter] = {}
    failures = []
    rss_before = _rss_mb()
    start = time.perf_counter()
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        for kind, data, blob in cases:
            t0 = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
            try:
                out = gmixpy.decompress(blob)
                outcome = "original bytes" if out == data else "WRONG OUTPUT"
            except ArchiveError as e:
                outcome = "ArchiveError: " + _normalise(str(e))
            except _Timeout:
                outcome = "TIMEOUT"
            except Exception as e:  # noqa: BLE001 - any other exception is a finding
                outcome = f"UNEXPECTED {type(e).__name__}: {e}"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if outcome.startswith(("WRONG", "TIMEOUT", "UNEXPECTED")):
                failures.append((kind, outcome, blob[:80].hex()))
            _record(table, kind, outcome)
            assert time.perf_counter() - t0 < CASE_SECONDS
    finally:
        signal.signal(signal.SIGALRM, old)
    _report("archives", table, time.perf_counter() - start, rss_before, tmp_path)
    assert not failures, failures[:5]
    # appended garbage and lies about the length are errors, never silently accepted
    for kind in ("append_garbage", "length_2**63", "length_2**64-1", "wrong_spec_digest", "wrong_version",
                 "model_flag", "blocks_flag", "unknown_flags", "index_lie", "coded_length_lie", "coded_crc_lie",
                 "dictionary_flag"):
        assert "original bytes" not in table[kind], (kind, table[kind])
    assert _rss_mb() - rss_before < 500


def _cli_decompress(tmp: Path, index: int, blob: bytes):
    work = tmp / f"case{index}"
    work.mkdir()
    src = work / "in.gmx"
    src.write_bytes(blob)
    out = work / "out.bin"
    proc = run("decompress", src, "-o", out, timeout=120)
    return work, out, proc


def test_fuzz_archives_cli(archives, tmp_path):
    """A sample through the command line: exit status 1 and one error line, or the original; no output left."""
    rng = random.Random(2)
    n = max(8, CASES // 50)
    cases = rng.sample(_mutations(archives, rng, 200), n)
    table: dict[str, collections.Counter] = {}
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda ic: (ic[1], _cli_decompress(tmp_path, ic[0], ic[1][2])), enumerate(cases)))
    for (kind, data, _), (work, out, proc) in results:
        err = proc.stderr.decode(errors="replace")
        assert "Traceback" not in err, err
        if proc.returncode == 0:
            assert out.read_bytes() == data
            outcome = "original bytes"
        else:
            assert proc.returncode == 1, (kind, proc.returncode, err)
            line = one_line(err)
            assert not out.exists(), kind
            outcome = "exit 1: " + _normalise(line.replace("Error: ", ""))
        assert no_temporaries(work)
        _record(table, kind, outcome)
    _report("archives-cli", table, time.perf_counter() - start, _rss_mb(), tmp_path)


# ---- model files and checkpoints --------------------------------------------------------------------------------

def _split(raw: bytes):
    (n,) = struct.unpack_from("<I", raw, 8)
    return raw[:12], json.loads(raw[12:12 + n]), raw[12 + n:-32]


def _build(head: bytes, header, body: bytes, *, text: bytes | None = None) -> bytes:
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode() if text is None else text
    content = head[:8] + struct.pack("<I", len(text)) + text + body
    return content + hashlib.sha256(content).digest()


def _crafted(raw: bytes):
    """(kind, bytes) files with a valid checksum but a bad header."""
    head, header, body = _split(raw)
    arrays = header["arrays"]

    def with_array(i, **change):
        h = json.loads(json.dumps(header))
        h["arrays"][i].update(change)
        return _build(head, h, body)

    def with_header(fn):
        h = json.loads(json.dumps(header))
        fn(h)
        return _build(head, h, body)

    names = [a["name"] for a in arrays]
    growing = [names.index("ltm.history.history"), names.index("ltm.mixer.weights")]
    fixed = [i for i, a in enumerate(arrays) if a["shape"] and i not in growing]
    out = []
    for i in growing:
        for n in (1 << 62, 1 << 48, (1 << 40) + 3, -1, 10**30, 2.5, "7", None, True):
            out.append(("growing_size", with_array(i, shape=[n])))
        out.append(("growing_size", with_array(i, shape=[arrays[i]["shape"][0] + 1])))
        out.append(("growing_size", with_array(i, shape=[1, 1])))
    for i in fixed[:6]:
        shape = arrays[i]["shape"]
        out += [("wrong_shape", with_array(i, shape=[shape[0] + 1] + shape[1:])),
                ("wrong_shape", with_array(i, shape=shape + [1])),
                ("wrong_shape", with_array(i, shape=[])),
                ("wrong_shape", with_array(i, shape=5)),
                ("wrong_shape", with_array(i, shape=[1 << 62] * len(shape))),
                ("wrong_dtype", with_array(i, dtype="<f8")),
                ("wrong_dtype", with_array(i, dtype="O")),
                ("wrong_dtype", with_array(i, dtype="|V1000000000")),
                ("wrong_dtype", with_array(i, dtype=["<f4"])),
                ("wrong_name", with_array(i, name="ltm.something.else"))]
    out += [("missing_key", with_header(lambda h: h.pop("arrays"))),
            ("missing_key", with_header(lambda h: h.pop("spec"))),
            ("missing_key", with_header(lambda h: h.pop("meta"))),
            ("missing_key", with_header(lambda h: h["arrays"][3].pop("shape"))),
            ("missing_key", with_header(lambda h: h["spec"].pop("mixers"))),
            ("bad_types", with_header(lambda h: h.update(arrays={"a": 1}))),
            ("bad_types", with_header(lambda h: h.update(arrays="ltm"))),
            ("bad_types", with_header(lambda h: h.update(meta=[1, 2]))),
            ("bad_types", with_header(lambda h: h["arrays"].__setitem__(2, "x"))),
            ("bad_types", with_header(lambda h: h["arrays"].__setitem__(2, None))),
            ("extra_array", with_header(lambda h: h["arrays"].append({"name": "x", "dtype": "|u1", "shape": [4]}))),
            ("fewer_arrays", with_header(lambda h: h["arrays"].pop())),
            ("not_json", _build(head, header, body, text=b"{not json")),
            ("not_json", _build(head, header, body, text=b"[" * 100000 + b"]" * 100000)),
            ("not_json", _build(head, header, body, text=b"\xff\xfe\x00")),
            ("not_json", _build(head, header, body, text=b"")),
            ("not_json", _build(head, header, body, text=b"null"))]

    def spec_change(fn):
        return with_header(lambda h: fn(h["spec"]))

    def set_model_field(key, value):
        def fn(s):
            for m in s["models"]:
                if key in m:
                    m[key] = value
        return fn

    for key, value in [("table_bits", 60), ("table_bits", 40), ("table_bits", 30), ("table_bits", -3),
                       ("cells", 10**9), ("cells", 5000), ("horizon", 10**7), ("layers", 10**6),
                       ("memory_mb", 10**7), ("order", 10**9), ("limit", -1), ("table_bits", "16"),
                       ("learning_rate", float("nan")), ("context", "no_such_context")]:
        out.append(("wrong_spec", spec_change(set_model_field(key, value))))
    out += [("wrong_spec", spec_change(lambda s: s.update(history_reserve=1 << 60))),
            ("wrong_spec", spec_change(lambda s: s.update(history_reserve=-5))),
            ("wrong_spec", spec_change(lambda s: s["models"].append({"type": "Evil", "name": "__import__('os')"}))),
            ("wrong_spec", spec_change(lambda s: s["models"][0].update(type="__class__"))),
            ("wrong_spec", spec_change(lambda s: s["mixers"].clear())),
            ("wrong_spec", spec_change(lambda s: s["models"].extend(s["models"] * 8))),
            ("wrong_spec", spec_change(lambda s: s["contexts"][0].update(offsets=list(range(10**5))))),
            ("wrong_spec", spec_change(lambda s: s.update(name=["x"]))),
            ("other_spec", with_header(lambda h: h.update(spec=json.loads(
                presets.get("fast").to_json()))))]
    if "dictionary" in header:  # a model of dictionary-coded text: its header names the coding
        for v in ("klingon", None, 1, [], {}, "ENGLISH"):
            out.append(("bad_dictionary", with_header(lambda h, v=v: h.update(dictionary=v))))
        out.append(("bad_dictionary", with_header(lambda h: h.pop("dictionary"))))
    if "detached" in header:  # a checkpoint that keeps the history in its history file
        for v in ("ltm.history.history", ["ltm.lstm.weights"], ["ltm.history.history"] * 2, [None], {}, 1):
            out.append(("bad_detached", with_header(lambda h, v=v: h.update(detached=v))))
        out.append(("bad_detached", with_header(lambda h: h.update(detached=h["detached"] + ["ltm.mixer.weights"]))))
    else:  # a model file cannot leave anything out
        out.append(("bad_detached", _build(bytes([*head[:4], 5, *head[5:]]), {**header, "detached": [HISTORY]},
                                           body)))
    out += [("wrong_version", _build(bytes([*head[:4], serialize.model_file.FORMAT_VERSION + 1, *head[5:]]), header,
                                     body)),
            ("wrong_version", _build(bytes([*head[:4], 0, *head[5:]]), header, body)),
            ("wrong_kind", _build(bytes([*head[:5], 2 if head[5] == 1 else 1, *head[6:]]), header, body)),
            ("wrong_kind", _build(bytes([*head[:5], 9, *head[6:]]), header, body))]
    return out


def _damaged(raw: bytes, rng: random.Random, count: int):
    (n,) = struct.unpack_from("<I", raw, 8)
    out = [("truncate_header", raw[:cut]) for cut in range(0, min(len(raw), 12 + n + 8), max(1, (12 + n) // 60))]
    kinds = ["bitflip", "bitflip_json", "truncate", "append_garbage", "byte_scramble"]
    for i in range(count):
        kind = kinds[i % len(kinds)]
        b = bytearray(raw)
        if kind == "bitflip":
            p = rng.randrange(len(b))
            b[p] ^= 1 << rng.randrange(8)
        elif kind == "bitflip_json":
            p = rng.randrange(12, 12 + n)
            b[p] ^= 1 << rng.randrange(8)
        elif kind == "truncate":
            b = b[:rng.randrange(len(b))]
        elif kind == "append_garbage":
            b += bytes(rng.randrange(256) for _ in range(rng.choice([1, 31, 32, 100])))
        else:
            for _ in range(rng.randint(1, 6)):
                b[rng.randrange(len(b))] ^= rng.randrange(1, 256)
        out.append((kind, bytes(b)))
    return out


@pytest.fixture(scope="module")
def model_files(tmp_path_factory, alice):
    d = tmp_path_factory.mktemp("fuzzmodels")
    model_path = save_trained_tiny(d / "m.gmxm", alice[:3000])
    coded = serialize.load(str(model_path))
    coded.dictionary = "english"  # model-file format 4
    serialize.save(str(d / "coded.gmxm"), coded)
    # a compress checkpoint as a compression run writes it, at its start
    from gmixpy.runs import CompressState, start_compression

    src = d / "in.txt"
    src.write_bytes(alice[:4000])
    ckpt = d / "c.ckpt"
    st = CompressState(input=str(src), output=str(d / "in.txt.gmx"), preset="tiny", force=True, checkpoint_every=2000,
                       checkpoint=str(ckpt))
    fresh = start_compression(st)
    _write_partial(st)
    meta = st.to_meta()
    serialize.save_checkpoint(str(ckpt), fresh, {"coder": st.coder}, meta, detach=(HISTORY,))
    return d, model_path.read_bytes(), ckpt.read_bytes(), meta, (d / "coded.gmxm").read_bytes()


def _write_partial(st) -> None:
    """The partial archive of a compression checkpointed at its start (the header alone) and its history file
    (empty), as its checkpoint describes them; a resume renames the one and removes the other, so each case writes
    them again."""
    st.partial_length, st.partial_crc = len(st.written), zlib.crc32(st.written)
    Path(st.partial).write_bytes(st.written)
    Path(st.history).write_bytes(b"")


def _try_load(path: Path, checkpoint: bool):
    try:
        if checkpoint:
            read_checkpoint(str(path))
        else:
            serialize.load(str(path))
        return "loaded"
    except serialize.ModelFileError as e:
        return "ModelFileError: " + _normalise(str(e))
    except _Timeout:
        return "TIMEOUT"
    except Exception as e:  # noqa: BLE001
        return f"UNEXPECTED {type(e).__name__}: {str(e)[:200]}"


def test_fuzz_model_files(model_files, tmp_path):
    d, model_raw, ckpt_raw, _, coded_raw = model_files
    rng = random.Random(3)
    per_file = max(20, CASES // 4)
    table: dict[str, collections.Counter] = {}
    failures = []
    rss_before = _rss_mb()
    start = time.perf_counter()
    old = signal.signal(signal.SIGALRM, _alarm)
    path = d / "case.bin"
    try:
        for what, raw, checkpoint in (("model", model_raw, False), ("checkpoint", ckpt_raw, True),
                                      ("coded model", coded_raw, False)):
            for kind, blob in _crafted(raw) + _damaged(raw, rng, per_file):
                path.write_bytes(blob)
                signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
                try:
                    outcome = _try_load(path, checkpoint)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                if outcome.startswith(("TIMEOUT", "UNEXPECTED")) or (outcome == "loaded" and kind.startswith(
                        ("bitflip", "truncate", "byte_scramble", "append", "wrong_", "growing", "missing", "bad_"))):
                    failures.append((what, kind, outcome))
                _record(table, f"{what}:{kind}", outcome)
    finally:
        signal.signal(signal.SIGALRM, old)
    _report("models", table, time.perf_counter() - start, rss_before, tmp_path)
    assert not failures, failures[:10]
    assert _rss_mb() - rss_before < 1000


def test_model_loading_never_unpickles():
    """No pickle (or eval/exec) anywhere in the package: loading reads JSON and raw array bytes only."""
    root = REPO / "gmixpy"
    for p in root.rglob("*.py"):
        text = p.read_text()
        for pattern in (r"import (c?pickle|marshal|shelve|dill)", r"pickle\.", r"allow_pickle", r"(?<![\w.])eval\(",
                        r"(?<![\w.])exec\(", r"np\.load\(", r"__import__\("):
            assert not re.search(pattern, text), (p, pattern)


def test_fuzz_checkpoint_meta_resume(model_files, monkeypatch):
    """Crafted compress-checkpoint state (valid checksum, wrong field types) through `gmixpy resume`: a one-line
    error with exit status 1 every time, no traceback."""
    d, _, ckpt_raw, meta, _ = model_files
    head, header, body = _split(ckpt_raw)
    header_bytes = (d / "in.txt.gmx.partial").read_bytes()
    bad_values = [None, "x", -1, 1 << 70, 1.5, [], {}, True]
    cases = []
    for key in ("args", "pos", "crc", "spec_digest", "preset", "model_digest", "flags", "command", "partial",
                "partial_length", "partial_crc", "history", "history_length", "history_crc"):
        for v in bad_values:
            cases.append((key, v))
    for key in ("input", "output", "checkpoint_every", "force", "preset"):
        for v in bad_values:
            cases.append(("args." + key, v))
    table: dict[str, collections.Counter] = {}
    runner = CliRunner()
    monkeypatch.chdir(d)  # relative names in crafted args (e.g. output "x") land in the temporary directory
    start = time.perf_counter()
    for key, v in cases:
        h = json.loads(json.dumps(header))
        if key.startswith("args."):
            h["meta"]["args"][key[5:]] = v
        else:
            h["meta"][key] = v
        path = d / "crafted.ckpt"
        path.write_bytes(_build(head, h, body))
        (d / "in.txt.gmx.partial").write_bytes(header_bytes)
        (d / "in.txt.gmx.partial.history").write_bytes(b"")
        result = runner.invoke(cli_main, ["resume", str(path), "-q"])
        assert isinstance(result.exception, SystemExit) or result.exception is None, (key, v, result.exception)
        lines = message_lines(result.output)
        if result.exit_code == 0:
            outcome = "resumed"
        else:
            assert result.exit_code == 1, (key, v, result.output)
            assert len(lines) == 1, (key, v, result.output)
            outcome = "exit 1: " + _normalise(lines[0].replace("Error: ", ""))
        _record(table, "meta:" + key.split(".")[0], outcome)
    _report("checkpoint-meta", table, time.perf_counter() - start, _rss_mb(), d)
    # only harmless changes (args the resumed run does not use, e.g. force or the preset's name) may resume
    assert table["meta:args"]["resumed"] <= 6
    assert all(c["resumed"] == 0 for k, c in table.items() if k != "meta:args"), table
