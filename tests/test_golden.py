"""Golden files: exact bytes that compression, model saving and generation must reproduce on any machine.

If one of these fails after a change that was meant to alter the model's arithmetic, regenerate them with
`python tests/make_golden.py` (and bump the format version if old files can no longer be read correctly).  If it
fails without such a change, determinism is broken: some result depends on the machine or library versions.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import gmixpy
from make_golden import golden_generation, golden_input, golden_model_bytes

GOLDEN = Path(__file__).resolve().parent / "golden"


def test_golden_archive_is_reproduced_exactly():
    expected = (GOLDEN / "sample.tiny.gmx").read_bytes()
    assert gmixpy.compress(golden_input(), preset="tiny") == expected


def test_golden_archive_decodes():
    assert gmixpy.decompress((GOLDEN / "sample.tiny.gmx").read_bytes()) == golden_input()


def test_format_1_archive_still_decodes():
    """Archives written by earlier versions keep decoding (version 1: made before the model digest changed)."""
    blob = (GOLDEN / "sample.tiny.v1.gmx").read_bytes()
    assert blob[4] == 1
    assert gmixpy.decompress(blob) == golden_input()


def test_golden_model_file_and_generation():
    model = golden_model_bytes()
    expected = json.loads((GOLDEN / "model.tiny.json").read_text())
    assert (len(model), hashlib.sha256(model).hexdigest()) == (expected["size"], expected["sha256"])
    assert golden_generation(model) == (GOLDEN / "generated.tiny.txt").read_bytes()
