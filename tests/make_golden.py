"""Regenerate the golden files in tests/golden (run from the repository root: python tests/make_golden.py).

Only do this after an intended change to the model arithmetic or the formats, and bump the archive/model format
version when old files would no longer decode: the golden files are what guards bit-exact results across
machines, Python, NumPy and Numba versions.
"""
from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def golden_input() -> bytes:
    text = (HERE.parent / "data" / "alice29.txt").read_bytes()[:4000]
    binary = bytes((i * 37 + (i >> 3)) & 0xFF for i in range(1000))
    return text + binary


def golden_model_bytes() -> bytes:
    from gmixpy import serialize
    from gmixpy.chunks import evaluate
    from gmixpy.model import Model

    m = Model.new("tiny")
    evaluate(m, golden_input(), learn=True)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "golden.gmxm"
        serialize.save(str(path), m)
        return path.read_bytes()


def golden_generation(model_bytes: bytes) -> bytes:
    from gmixpy import serialize
    from gmixpy.generate import generate_bytes

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "golden.gmxm"
        path.write_bytes(model_bytes)
        model = serialize.load(str(path))
    out = []
    generate_bytes(model, b"Alice ", 200, 0.8, 12345, False, out.append)
    return b"".join(out)


def main() -> None:
    import gmixpy

    golden = HERE / "golden"
    golden.mkdir(exist_ok=True)
    (golden / "sample.tiny.gmx").write_bytes(gmixpy.compress(golden_input(), preset="tiny"))
    model = golden_model_bytes()
    (golden / "generated.tiny.txt").write_bytes(golden_generation(model))
    (golden / "model.tiny.json").write_text(json.dumps({
        "sha256": hashlib.sha256(model).hexdigest(), "size": len(model)}, indent=2) + "\n")
    print("golden files written to", golden)


if __name__ == "__main__":
    main()
