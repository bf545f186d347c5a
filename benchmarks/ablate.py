"""Ablation: switch each component of the stronger ensemble off in turn and measure what it was worth.

For every variant (the full ensemble, the full ensemble without one component, gmix's own ensemble) and every
file, the file is coded from scratch, learning as compression does, and the script reports the size it would
compress to (the model's cross-entropy, which is the arithmetic coder's output within a few bytes) and the CPU
time per byte.  Components are the names in gmixpy.presets.FEATURES.

    .venv/bin/python benchmarks/ablate.py                      # every component, the default file set
    .venv/bin/python benchmarks/ablate.py --fast --only words,apm --files data/alice29.txt
    .venv/bin/python benchmarks/ablate.py --variants full,gmix --max-bytes 100000
    .venv/bin/python benchmarks/ablate.py --variants gmix,base,base-cm_sparse,full+lstm100 --cm gain=2,table_bits=20

Variants: `full` (every component in presets.FEATURES), `gmix`, a preset's name (`default`, `fast`), `-A-B...`
(full without components A, B, ...), `base-A...` (the components of the default preset, without A), `+P` after
any of these (add the component or part P: full+drop_skips), each optionally followed by @ and ContextMap options
for its context maps (`full@gain=2;limit=1023`).  --cm sets ContextMap options for every variant.  A variant
with `+dictionary` (`default+dictionary`, `base-words+dictionary`) codes each file after the dictionary transform
(preprocess/dictionary.py) where `gmixpy compress` would (English-like text); its sizes and times are still per
byte of the original file.

Runs use --jobs worker processes (default 2).  Each (variant, file) pair runs in a fresh process, so per-byte
times include no compilation (kernels are compiled once, first) but do include first-touching the tables.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = REPO.parent / "shared" / "data"
DEFAULT_FILES = ["tinyshakespeare.txt:100000", "canterbury/alice29.txt", "canterbury/asyoulik.txt",
                 "canterbury/cp.html", "canterbury/fields.c", "canterbury/grammar.lsp", "canterbury/xargs.1",
                 "canterbury/sum"]


def _spec(variant: str, neural: bool, shrink: int, cm_options: dict | None = None):
    from gmixpy import presets

    variant, _, options = variant.partition("@")
    variant = variant.replace("+dictionary", "")
    cm_options = {**(cm_options or {}), **_cm_options(options.replace(";", ","))}
    if variant == "gmix":
        return presets.gmix("ablate-gmix", neural, shrink)
    if variant in presets.PRESETS and variant not in ("full",):
        return presets.get(variant)
    features = set(presets.FEATURES)
    name = variant
    if variant.startswith("base"):
        features = set(presets.DEFAULT_FEATURES)
        variant = variant[len("base"):]
    elif variant.startswith("full"):
        variant = variant[len("full"):]
    for sign, part in re.findall(r"([+-])([a-z0-9_]+)", variant):  # base+drop_a-cm_b, -a-b, full+lstm100
        known = presets.DROPS + presets.TUNES + presets.FEATURES
        if sign == "+" and part not in known or sign == "-" and part not in features:
            raise SystemExit(f"unknown variant {name!r}: full, gmix, a preset, or full/base followed by -COMPONENT "
                             f"({', '.join(sorted(features))}) and +PART ({', '.join(presets.DROPS + presets.TUNES)})")
        (features.add if sign == "+" else features.discard)(part)
    if re.sub(r"[+-][a-z0-9_]+", "", variant):
        raise SystemExit(f"unknown variant {name!r}")
    return presets.stronger(f"ablate{name}", neural, shrink, features=tuple(sorted(features)),
                            cm_options=cm_options)


def _cm_options(text: str) -> dict:
    """"gain=2,deferred=false" -> {"gain": 2, "deferred": False}"""
    out = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        out[key] = {"true": True, "false": False}.get(value.lower(), None)
        if out[key] is None:
            out[key] = float(value) if "." in value else int(value)
    return out


def _run(job):
    variant, neural, shrink, path, limit, cm_options = job
    import numpy as np

    from gmixpy.model import Model
    from gmixpy.runs import evaluate

    data = original = Path(path).read_bytes()[: limit or None]
    if "+dictionary" in variant:  # where `gmixpy compress` would use it
        from gmixpy.codec import DICTIONARY_SAMPLE, use_dictionary
        from gmixpy.preprocess.dictionary import encode

        if use_dictionary("auto", "default", None, original[:DICTIONARY_SAMPLE]):
            data = encode(original)
    model = Model.new(_spec(variant, neural, shrink, cm_options))
    start = time.process_time()
    bits = evaluate(model, np.frombuffer(data, np.uint8), learn=True)
    seconds = time.process_time() - start
    return variant, path, len(original), bits / 8, seconds


def _resolve(name: str) -> tuple[str, int]:
    path, _, limit = name.partition(":")
    for base in (Path("."), SHARED, REPO / "data"):
        if (base / path).is_file():
            return str(base / path), int(limit or 0)
    raise SystemExit(f"no such file: {path}")


def main() -> None:
    from gmixpy import presets

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", default=",".join(DEFAULT_FILES),
                    help="comma-separated files (PATH or PATH:MAX_BYTES), looked up here, in ../shared/data, data/")
    ap.add_argument("--variants", help="comma-separated: full, gmix, -COMPONENT (default: full, gmix and every "
                    "component switched off in turn)")
    ap.add_argument("--only", help="with the default variants: only these components")
    ap.add_argument("--fast", action="store_true", help="without PPMd and the LSTM (the `fast` family)")
    ap.add_argument("--shrink", type=int, default=0, help="bits taken off every table (as the tiny preset)")
    ap.add_argument("--max-bytes", type=int, default=0, help="at most this many bytes of each file")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cm", default="", help="ContextMap options for every context map, e.g. gain=2,table_bits=20")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    components = args.only.split(",") if args.only else list(presets.FEATURES)
    variants = args.variants.split(",") if args.variants else ["full", "gmix"] + [f"-{c}" for c in components]
    files = [_resolve(f) for f in args.files.split(",") if f]
    cm = _cm_options(args.cm)
    jobs = [(v, not args.fast, args.shrink, path, min(x for x in (limit, args.max_bytes) if x) if (limit or
             args.max_bytes) else 0, cm) for v in variants for path, limit in files]
    for v in variants:  # every specification builds, before any worker starts
        _spec(v, not args.fast, args.shrink, cm)
    _run(("full", False, 12, str(REPO / "data" / "alice29.txt"), 100, {}))  # compile once, before the workers
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        results = pool.map(_run, jobs, chunksize=1)
    table = {(v, p): (n, size, sec) for v, p, n, size, sec in results}
    names = [Path(p).name for p, _ in files]
    print(f"{'variant':12s}" + "".join(f"{n[:14]:>15s}" for n in names) + f"{'total':>12s}{'us/B':>8s}")
    for v in variants:
        row = [table[(v, p)] for p, _ in files]
        total = sum(r[1] for r in row)
        usb = 1e6 * sum(r[2] for r in row) / sum(r[0] for r in row)
        print(f"{v:12s}" + "".join(f"{r[1]:15,.0f}" for r in row) + f"{total:12,.0f}{usb:8.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps([dict(variant=v, file=p, bytes=n, size=s, seconds=t)
                                               for v, p, n, s, t in results], indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
