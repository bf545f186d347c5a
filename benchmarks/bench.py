#!/usr/bin/env python3
"""Benchmark gmixpy against Python's standard-library compressors.

Usage (from the repository root)::

    make bench                                   # = .venv/bin/python benchmarks/bench.py
    make bench BENCH_ARGS="--presets tiny --max-bytes 20000"
    .venv/bin/python benchmarks/bench.py --presets fast,default --files data/alice29.txt
    .venv/bin/python benchmarks/bench.py --presets tiny --baselines zlib --max-bytes 5000 --json /tmp/b.json

For every file and every compressor it prints one table row (stdout): file, size, compressed bytes, bits per
byte, compression KB/s, decompression KB/s, peak resident memory (MB), baseline resident memory (MB) and whether
the round trip was byte-exact.  A one-line summary per compressor follows (total compressed bytes, mean bits per
byte over the files, aggregate bits per byte, total times).  Progress messages go to stderr.

Compressors
    gmixpy presets chosen with ``--presets`` (default: ``fast``; any of ``tiny``, ``fast``, ``default``), then the
    baselines chosen with ``--baselines`` (default: ``lzma,bz2,zlib``): lzma at preset 9 | PRESET_EXTREME (xz
    container), bz2 at level 9, zlib at level 9.

Files
    Everything in ``data/`` and, when present, in ``../shared/data`` relative to the repository root (recursively;
    hidden files and README files are skipped, and a file whose content is identical to one already listed is
    skipped with a note).  ``--files PATH...`` replaces that list.  ``--max-bytes N`` truncates every file to its
    first N bytes (for quick runs).

How it is measured
    Each (file, compressor) measurement runs in a fresh Python subprocess, so the peak resident memory reported is
    that of one compressor on one file: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` read in the child at the end
    (``/proc/self/status`` VmHWM is recorded too, in the JSON).  "base MB" is the child's resident memory right
    after its imports (and, for gmixpy, the warm-up), so "peak - base" is roughly the model's own memory.
    MB here means MiB (2**20 bytes).  The JSON also records the CPU time of each direction next to its wall time,
    which helps to read results taken on a busy machine.

    gmixpy kernels are Numba-compiled and cached on disk.  Before measuring, each gmixpy child warms up by
    compressing and decompressing a few bytes with the ``tiny`` preset (all presets share the compiled kernels);
    that time is excluded from the figures and reported separately as "compile/warm-up seconds" (the first child
    compiles when the cache is cold; later children only load the cache).  Compression and decompression are timed
    separately with ``time.perf_counter``.  KB/s = original bytes / 1000 / seconds.  gmixpy runs once per
    measurement; the much faster baselines are repeated (up to 20 times, while under 0.25 s in total) and the
    fastest run is reported, so that tiny inputs do not give timer noise.

Output
    ``--json PATH`` (default ``bench-results/bench-<timestamp>.json`` at the repository root; the directory is
    created and git-ignored) receives the same results plus machine information (python, numpy, numba and gmixpy
    versions, CPU model, nproc, load average, git commit).  It is rewritten after every row, so an interrupted run
    keeps what it measured.

Exit status: 0 when every round trip was byte-exact, 1 when one failed (a child that crashed, was killed or timed
out counts as a failure), 2 for usage errors.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = (REPO_ROOT / ".." / "shared" / "data").resolve()
GMIX_PRESETS = ("tiny", "fast", "default", "gmix", "gmix-fast")
BASELINES = ("lzma", "bz2", "zlib")
RESULT_MARK = "@@BENCH-RESULT@@ "
WARMUP_DATA = b"gmixpy warm-up: the quick brown fox jumps over the lazy dog. " * 2
BASELINE_MIN_TOTAL_S = 0.25
BASELINE_MAX_REPEATS = 20


# ----------------------------------------------------------------------------------------------------------------
# Child side: one measurement in a fresh interpreter.
# ----------------------------------------------------------------------------------------------------------------

def _proc_status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _maxrss_kb() -> int:
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss // 1024 if sys.platform == "darwin" else rss  # bytes on macOS, KiB on Linux


def _baseline_codec(name: str):
    import bz2
    import lzma
    import zlib

    if name == "lzma":
        return (lambda d: lzma.compress(d, preset=9 | lzma.PRESET_EXTREME)), lzma.decompress
    if name == "bz2":
        return (lambda d: bz2.compress(d, 9)), bz2.decompress
    if name == "zlib":
        return (lambda d: zlib.compress(d, 9)), zlib.decompress
    raise ValueError(f"unknown baseline compressor {name!r}")


def _gmix_codec(binary: str):
    """gmix's own command line (built outside the repository from its sources), through temporary files: the
    times include writing and reading them, which is negligible next to gmix's speed."""
    import tempfile

    def run(flag, data):
        with tempfile.TemporaryDirectory() as d:
            src, dst = Path(d) / "in", Path(d) / "out"
            src.write_bytes(data)
            # in the temporary directory: gmix writes analysis/*.tsv into its working directory
            subprocess.run([binary, flag, str(src), str(dst)], check=True, cwd=d, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)  # its progress lines
            return dst.read_bytes()

    return (lambda d: run("-c", d)), (lambda d: run("-d", d))


def _cpu() -> float:
    """CPU seconds of this process and of the children it waited for (gmix's binary runs as one)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _timed(fn, arg, repeat: bool):
    """Run fn(arg); with repeat, run it again while cheap and keep the fastest.  Returns (result, wall s, cpu s)."""
    best_wall = best_cpu = None
    total = 0.0
    runs = 0
    while True:
        c0 = _cpu()
        t0 = time.perf_counter()
        out = fn(arg)
        wall = time.perf_counter() - t0
        cpu = _cpu() - c0
        runs += 1
        total += wall
        if best_wall is None or wall < best_wall:
            best_wall, best_cpu = wall, cpu
        if not repeat or total >= BASELINE_MIN_TOTAL_S or runs >= BASELINE_MAX_REPEATS:
            return out, best_wall, best_cpu, runs


def child_main(compressor: str, path: str, max_bytes: int | None) -> int:
    res: dict = {"compressor": compressor}
    t_start = time.perf_counter()
    if compressor.startswith("gmixpy:"):
        import gmixpy

        preset = compressor.split(":", 1)[1]
        res["gmixpy_version"] = getattr(gmixpy, "__version__", None)
        t0 = time.perf_counter()
        blob = gmixpy.compress(WARMUP_DATA, "tiny")
        if gmixpy.decompress(blob) != WARMUP_DATA:
            raise RuntimeError("warm-up round trip failed")
        res["warmup_s"] = time.perf_counter() - t0
        res["import_s"] = t0 - t_start
        compress = lambda d: gmixpy.compress(d, preset)  # noqa: E731
        decompress = gmixpy.decompress
        repeat = False
    elif compressor.startswith("gmix-cpp:"):
        compress, decompress = _gmix_codec(compressor.split(":", 1)[1])
        res["warmup_s"] = None
        repeat = False
    else:
        compress, decompress = _baseline_codec(compressor)
        res["warmup_s"] = None
        repeat = True

    with open(path, "rb") as fh:
        data = fh.read() if max_bytes is None else fh.read(max_bytes)
    res["baseline_rss_kb"] = _proc_status_kb("VmRSS")
    res["baseline_hwm_kb"] = _proc_status_kb("VmHWM")

    blob, res["compress_s"], res["compress_cpu_s"], res["compress_runs"] = _timed(compress, data, repeat)
    out, res["decompress_s"], res["decompress_cpu_s"], res["decompress_runs"] = _timed(decompress, blob, repeat)

    res["size"] = len(data)
    res["compressed"] = len(blob)
    res["roundtrip_ok"] = out == data
    res["peak_rss_kb"] = _maxrss_kb()
    if compressor.startswith("gmix-cpp:"):  # gmix ran in a child process: its peak, not this interpreter's
        import resource

        res["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    res["vmhwm_kb"] = _proc_status_kb("VmHWM")
    sys.stdout.write(RESULT_MARK + json.dumps(res) + "\n")
    sys.stdout.flush()
    return 0


# ----------------------------------------------------------------------------------------------------------------
# Parent side.
# ----------------------------------------------------------------------------------------------------------------

def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _label(path: Path) -> str:
    p = path.resolve()
    for root, prefix in ((REPO_ROOT, ""), (SHARED_DATA, "shared/")):
        try:
            return prefix + str(p.relative_to(root))
        except ValueError:
            pass
    return str(path)


def _scan(directory: Path) -> list[Path]:
    found = []
    for p in sorted(directory.rglob("*")):
        rel = p.relative_to(directory)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.is_file() and not p.name.upper().startswith("README"):
            found.append(p)
    return found


def default_files() -> list[Path]:
    candidates = _scan(REPO_ROOT / "data") if (REPO_ROOT / "data").is_dir() else []
    if SHARED_DATA.is_dir():
        candidates += _scan(SHARED_DATA)
    else:
        log(f"{SHARED_DATA} not found; using data/ only")
    files, seen = [], {}
    for p in candidates:
        digest = _sha256(p)
        if digest in seen:
            log(f"skipping {_label(p)}: identical to {_label(seen[digest])}")
            continue
        seen[digest] = p
        files.append(p)
    return files


def machine_info() -> dict:
    from importlib import metadata

    def version(pkg):
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    cpu = None
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if cpu is None:
        cpu = platform.processor() or None

    def git(*args):
        try:
            r = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10)
            return r.stdout.strip() if r.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            return None

    status = git("status", "--porcelain")
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    return {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
        "numpy": version("numpy"),
        "numba": version("numba"),
        "llvmlite": version("llvmlite"),
        "gmixpy": version("gmixpy"),
        "cpu_model": cpu,
        "nproc": affinity or os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "mem_total_kb": _meminfo_total_kb(),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
    }


def _meminfo_total_kb() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def run_child(compressor: str, path: Path, max_bytes: int | None, timeout: float | None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_child", compressor, str(path)]
    if max_bytes is not None:
        cmd += ["--max-bytes", str(max_bytes)]
    t0 = time.perf_counter()
    try:
        # The child's stderr (warnings, tracebacks) goes straight to ours; its stdout carries the result line.
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, timeout=timeout,
                              cwd=str(REPO_ROOT))
    except subprocess.TimeoutExpired:
        return {"compressor": compressor, "error": f"timed out after {timeout} s", "roundtrip_ok": False}
    wall = time.perf_counter() - t0
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK):])
    if result is None:
        return {"compressor": compressor, "error": f"child exited with status {proc.returncode} and no result",
                "roundtrip_ok": False, "child_wall_s": wall}
    result["child_wall_s"] = wall
    return result


def derive(r: dict) -> dict:
    """Add the figures printed in the table (bits per byte, KB/s, MB) to a child result."""
    size = r.get("size")
    if size is not None and "compressed" in r:
        r["bits_per_byte"] = 8.0 * r["compressed"] / size if size else None
        r["compress_kb_s"] = size / 1000 / r["compress_s"] if r["compress_s"] > 0 else None
        r["decompress_kb_s"] = size / 1000 / r["decompress_s"] if r["decompress_s"] > 0 else None
        r["peak_rss_mb"] = r["peak_rss_kb"] / 1024
        r["baseline_rss_mb"] = r["baseline_rss_kb"] / 1024 if r.get("baseline_rss_kb") is not None else None
    return r


def _fmt(value, spec: str, width: int) -> str:
    return ("-" if value is None else format(value, spec)).rjust(width)


class Table:
    COLS = [("compressor", 14, "<"), ("size", 10, ">"), ("compressed", 10, ">"), ("bpb", 7, ">"),
            ("comp KB/s", 10, ">"), ("decomp KB/s", 11, ">"), ("peak MB", 9, ">"), ("base MB", 8, ">"),
            ("roundtrip", 9, ">")]

    def __init__(self, file_width: int):
        self.fw = max(file_width, 4)

    def header(self) -> str:
        head = "file".ljust(self.fw) + "  " + "  ".join(
            (name.ljust(w) if a == "<" else name.rjust(w)) for name, w, a in self.COLS)
        return head + "\n" + "-" * len(head)

    def row(self, label: str, r: dict) -> str:
        if "error" in r and "compressed" not in r:
            return (label.ljust(self.fw) + "  " + r["compressor"].ljust(14) + "  " + f"ERROR: {r['error']}")
        ok = "OK" if r["roundtrip_ok"] else "FAIL"
        cells = [r["compressor"].ljust(14), _fmt(r["size"], "d", 10), _fmt(r["compressed"], "d", 10),
                 _fmt(r["bits_per_byte"], ".3f", 7), _fmt(r["compress_kb_s"], ".1f", 10),
                 _fmt(r["decompress_kb_s"], ".1f", 11), _fmt(r["peak_rss_mb"], ".1f", 9),
                 _fmt(r["baseline_rss_mb"], ".1f", 8), ok.rjust(9)]
        return label.ljust(self.fw) + "  " + "  ".join(cells)


def summarize(rows: list[dict], compressors: list[str]) -> dict:
    out = {}
    for c in compressors:
        done = [r for r in rows if r["compressor"] == c and "compressed" in r]
        bpbs = [r["bits_per_byte"] for r in done if r.get("bits_per_byte") is not None]
        total_in = sum(r["size"] for r in done)
        total_out = sum(r["compressed"] for r in done)
        warm = [r["warmup_s"] for r in done if r.get("warmup_s") is not None]
        out[c] = {
            "files": len(done),
            "failed": sum(1 for r in rows if r["compressor"] == c and not r.get("roundtrip_ok")),
            "total_bytes": total_in,
            "total_compressed": total_out,
            "mean_bits_per_byte": sum(bpbs) / len(bpbs) if bpbs else None,
            "aggregate_bits_per_byte": 8.0 * total_out / total_in if total_in else None,
            "total_compress_s": sum(r["compress_s"] for r in done),
            "total_decompress_s": sum(r["decompress_s"] for r in done),
            "max_peak_rss_mb": max((r["peak_rss_mb"] for r in done), default=None),
            "warmup_s": warm,
        }
    return out


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="bench.py",
        description="Benchmark gmixpy presets against lzma, bz2 and zlib: compressed size, bits per byte, "
                    "compression/decompression speed and peak memory, one fresh subprocess per (file, compressor).",
        epilog="Examples:\n"
               "  .venv/bin/python benchmarks/bench.py --presets tiny --max-bytes 20000\n"
               "  .venv/bin/python benchmarks/bench.py --presets fast --files data/alice29.txt\n"
               "  make bench BENCH_ARGS='--presets fast,default --files data/alice29.txt'\n\n"
               "The table goes to stdout, progress to stderr. Exit status 1 if any round trip fails.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="fast",
                    help="comma-separated gmixpy presets to run, from: %s (default: fast; '' for none)"
                         % ",".join(GMIX_PRESETS))
    ap.add_argument("--baselines", default=",".join(BASELINES),
                    help="comma-separated standard-library compressors, from: %s (default: all; '' for none)"
                         % ",".join(BASELINES))
    ap.add_argument("--gmix", metavar="BINARY",
                    help="also run gmix's own C++ binary (built from its sources outside this repository), so that "
                         "speeds can be read as ratios measured in the same run")
    ap.add_argument("--files", nargs="+", metavar="PATH", type=Path,
                    help="files to benchmark (default: everything in data/ and ../shared/data)")
    ap.add_argument("--max-bytes", type=int, metavar="N", help="use only the first N bytes of every file")
    ap.add_argument("--json", type=Path, metavar="PATH",
                    help="where to write the JSON results (default: bench-results/bench-<timestamp>.json "
                         "at the repository root)")
    ap.add_argument("--timeout", type=float, metavar="SECONDS",
                    help="give up on a single (file, compressor) measurement after this long (default: no limit)")
    ap.add_argument("--_child", nargs=2, metavar=("COMPRESSOR", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    def split(text, allowed, what):
        names = [n.strip() for n in text.split(",") if n.strip()]
        bad = [n for n in names if n not in allowed]
        if bad:
            ap.error(f"unknown {what}: {', '.join(bad)} (choose from {', '.join(allowed)})")
        return list(dict.fromkeys(names))

    if args._child is None:
        args.presets = split(args.presets, GMIX_PRESETS, "preset")
        args.baselines = split(args.baselines, BASELINES, "baseline compressor")
        if not args.presets and not args.baselines:
            ap.error("nothing to run: --presets and --baselines are both empty")
    if args.max_bytes is not None and args.max_bytes <= 0:
        ap.error("--max-bytes must be positive")
    if args.files:
        missing = [str(p) for p in args.files if not p.is_file()]
        if missing:
            ap.error("not a file: " + ", ".join(missing))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args._child is not None:
        return child_main(args._child[0], args._child[1], args.max_bytes)

    files = list(dict.fromkeys(p.resolve() for p in args.files)) if args.files else default_files()
    if not files:
        log("no files to benchmark")
        return 2
    compressors = [f"gmixpy:{p}" for p in args.presets] + list(args.baselines)
    if args.gmix:
        compressors.append(f"gmix-cpp:{Path(args.gmix).resolve()}")
    labels = {p: _label(p) for p in files}

    started = _dt.datetime.now()
    json_path = args.json or REPO_ROOT / "bench-results" / f"bench-{started.strftime('%Y%m%d-%H%M%S')}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "started": started.isoformat(timespec="seconds"),
        "argv": sys.argv[1:] if argv is None else list(argv),
        "max_bytes": args.max_bytes,
        "machine": machine_info(),
        "compressors": compressors,
        "settings": {
            "lzma": "preset 9 | PRESET_EXTREME (xz)", "bz2": "level 9", "zlib": "level 9",
            "baseline_timing": f"fastest of up to {BASELINE_MAX_REPEATS} runs while total < "
                               f"{BASELINE_MIN_TOTAL_S} s",
            "gmixpy_timing": "one run, after a tiny-preset warm-up in the same process",
            "kb_per_s": "original bytes / 1000 / seconds",
        },
        "files": [{"path": str(p), "label": labels[p], "size": p.stat().st_size} for p in files],
        "results": [],
    }

    def write_json():
        tmp = json_path.with_suffix(json_path.suffix + ".tmp")
        tmp.write_text(json.dumps(report, indent=2) + "\n")
        tmp.replace(json_path)

    log(f"{len(files)} file(s) x {len(compressors)} compressor(s): {', '.join(compressors)}"
        + (f"; truncated to {args.max_bytes} bytes" if args.max_bytes else ""))
    log(f"JSON results: {json_path}")

    table = Table(max(len(s) for s in labels.values()))
    print(table.header(), flush=True)
    rows = []
    n_total = len(files) * len(compressors)
    interrupted = False
    try:
        for p in files:
            for c in compressors:
                log(f"[{len(rows) + 1}/{n_total}] {labels[p]} with {c} ...")
                r = derive(run_child(c, p, args.max_bytes, args.timeout))
                r["file"] = labels[p]
                r["path"] = str(p)
                rows.append(r)
                if r.get("warmup_s") is not None:
                    log(f"    compile/warm-up {r['warmup_s']:.1f} s, "
                        f"compress {r['compress_s']:.2f} s, decompress {r['decompress_s']:.2f} s")
                print(table.row(labels[p], r), flush=True)
                report["results"] = rows
                report["summary"] = summarize(rows, compressors)
                write_json()
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted; reporting what was measured")

    summary = summarize(rows, compressors)
    print()
    for c in compressors:
        s = summary[c]
        if not s["files"]:
            print(f"{c:<14}  no results" + (f"  FAILED {s['failed']}" if s["failed"] else ""))
            continue
        print(f"{c:<14}  files {s['files']:>2}  total {s['total_bytes']:>10d} -> {s['total_compressed']:>10d} bytes"
              f"  mean bpb {s['mean_bits_per_byte']:.3f}  aggregate bpb {s['aggregate_bits_per_byte']:.3f}"
              f"  comp {s['total_compress_s']:.2f} s  decomp {s['total_decompress_s']:.2f} s"
              f"  max peak {s['max_peak_rss_mb']:.1f} MB" + (f"  FAILED {s['failed']}" if s["failed"] else ""))
    warm = [r["warmup_s"] for r in rows if r.get("warmup_s") is not None]
    if warm:
        srt = sorted(warm)
        print(f"compile/warm-up seconds (excluded above; one per gmixpy child): first {warm[0]:.1f} s, "
              f"min {srt[0]:.1f}, median {srt[len(srt) // 2]:.1f}, max {srt[-1]:.1f}, total {sum(warm):.1f}  "
              "(a child compiles when the Numba cache is cold or the gmixpy sources changed; otherwise it loads "
              "the cache)")
    print(flush=True)

    report["finished"] = _dt.datetime.now().isoformat(timespec="seconds")
    report["interrupted"] = interrupted
    report["results"] = rows
    report["summary"] = summary
    report["warmup_s"] = warm
    failed = [r for r in rows if not r.get("roundtrip_ok")]
    report["all_roundtrips_ok"] = not failed and not interrupted
    write_json()
    log(f"wrote {json_path}")
    if failed:
        log(f"{len(failed)} round trip(s) FAILED: " + ", ".join(f"{r['file']} ({r['compressor']})" for r in failed))
        return 1
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
