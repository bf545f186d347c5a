"""Regenerate the golden files in tests/golden (from the repository root: python tests/make_golden.py).

The golden files are what guards bit-exact results across machines, Python, NumPy and Numba versions, and the
version policy: any change to model arithmetic bumps the archive format version (gmixpy/archive.py
FORMAT_VERSION: archives coded with the old arithmetic would not decode), any change to the model-file layout bumps
the model-file format version (gmixpy/serialize/model_file.py FORMAT_VERSION).  tests/golden/manifest.json records
the versions the golden files were made with and each file's SHA-256 and size, and which versions each depends on.

This script writes a golden file whose bytes changed only when one of the versions it depends on is newer in the
code than in the manifest; otherwise it writes nothing and says which version to bump.  When the archive format
version was bumped, the previous golden archive is kept as sample.tiny.v<old version>.gmx (never rewritten), and
tests/test_golden.py checks that every kept archive still decodes.  (The golden model file is recorded by its hash
only; a model file of an older format version is refused by gmixpy with a clear message, so none is kept.)
"""
from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
MANIFEST = GOLDEN / "manifest.json"
sys.path.insert(0, str(HERE.parent))

ARCHIVE, MODEL_FILE = "archive_format", "model_file_format"
DEPENDS_ON = {  # golden file -> the format versions whose bump allows its bytes to change
    "sample.tiny.gmx": [ARCHIVE],                    # model arithmetic, archive layout
    "model.tiny.gmxm": [ARCHIVE, MODEL_FILE],        # model arithmetic (what it learned), model-file layout
    "generated.tiny.txt": [ARCHIVE],                 # model arithmetic (sampling included)
}
NOT_STORED = {"model.tiny.gmxm"}  # recorded by its hash and size only (about 1 MB)


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


def code_versions() -> dict[str, int]:
    from gmixpy import archive
    from gmixpy.serialize import model_file

    return {ARCHIVE: archive.FORMAT_VERSION, MODEL_FILE: model_file.FORMAT_VERSION}


def record(data: bytes) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def load_manifest() -> dict:
    return json.loads(MANIFEST.read_text())


def refusals(manifest: dict, versions: dict[str, int], outputs: dict[str, bytes]) -> list[str]:
    """Why the new `outputs` may not replace the golden files of `manifest` with the code at `versions`
    (empty: they may)."""
    problems = []
    for key, version in versions.items():
        if version < manifest[key]:
            problems.append(f"{key} is {version} in the code but {manifest[key]} in the golden files")
    for name, data in outputs.items():
        if record(data) == {k: manifest["golden"][name][k] for k in ("sha256", "size")}:
            continue
        if not any(versions[key] > manifest[key] for key in DEPENDS_ON[name]):
            which = " or ".join(f"{key} (still {versions[key]})" for key in DEPENDS_ON[name])
            problems.append(f"{name} changed, but {which} was not bumped: a change to model arithmetic bumps "
                            "gmixpy/archive.py FORMAT_VERSION, one to the model-file layout "
                            "gmixpy/serialize/model_file.py FORMAT_VERSION; if neither was meant to change, "
                            "something made the results differ")
    return problems


def main() -> int:
    import gmixpy

    manifest = load_manifest()
    versions = code_versions()
    model = golden_model_bytes()
    outputs = {"sample.tiny.gmx": gmixpy.compress(golden_input(), preset="tiny"), "model.tiny.gmxm": model,
               "generated.tiny.txt": golden_generation(model)}
    problems = refusals(manifest, versions, outputs)
    if problems:
        print("make_golden: nothing written:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    old_archive = GOLDEN / "sample.tiny.gmx"
    if versions[ARCHIVE] > manifest[ARCHIVE] and old_archive.exists():
        kept = GOLDEN / f"sample.tiny.v{manifest[ARCHIVE]}.gmx"
        if not kept.exists():
            kept.write_bytes(old_archive.read_bytes())
            manifest["kept"][kept.name] = {**record(kept.read_bytes()), ARCHIVE: manifest[ARCHIVE]}
            print("kept", kept)
    for name, data in outputs.items():
        if name not in NOT_STORED:
            (GOLDEN / name).write_bytes(data)
        manifest["golden"][name] = {**record(data), "depends_on": DEPENDS_ON[name]}
    manifest.update(versions)
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    print("golden files written to", GOLDEN)
    return 0


if __name__ == "__main__":
    sys.exit(main())
