"""Golden files: exact bytes that compression, model saving and generation must reproduce on any machine, and the
version policy that keeps them honest (tests/make_golden.py says how it works).

If a reproduction test fails after a change that was meant to alter the model's arithmetic or a file layout, bump
the format version it concerns and regenerate with `python tests/make_golden.py` (which refuses without the bump and
keeps the previous golden archive).  If it fails without such a change, determinism is broken: some result depends
on the machine or library versions.
"""
from __future__ import annotations

import hashlib

import pytest

import gmixpy
from gmixpy.archive import READABLE_VERSIONS
from make_golden import (
    ARCHIVE,
    DEPENDS_ON,
    GOLDEN,
    MODEL_FILE,
    NOT_STORED,
    code_versions,
    golden_generation,
    golden_input,
    golden_model_bytes,
    load_manifest,
    record,
    refusals,
)


@pytest.fixture(scope="module")
def manifest() -> dict:
    return load_manifest()


def test_golden_files_were_made_with_the_codes_format_versions(manifest):
    """A format version bumped in the code without regenerating the golden files (or golden files from another
    version) fails here: run tests/make_golden.py."""
    assert {key: manifest[key] for key in (ARCHIVE, MODEL_FILE)} == code_versions()


def test_golden_files_are_the_ones_the_manifest_records(manifest):
    """Golden bytes changed without make_golden.py (which refuses unless the format version was bumped) fail here."""
    assert set(manifest["golden"]) == set(DEPENDS_ON)
    for name, entry in manifest["golden"].items():
        assert entry["depends_on"] == DEPENDS_ON[name], name
        if name not in NOT_STORED:
            assert record((GOLDEN / name).read_bytes()) == {"sha256": entry["sha256"], "size": entry["size"]}, name
    for name, entry in manifest["kept"].items():
        assert record((GOLDEN / name).read_bytes()) == {"sha256": entry["sha256"], "size": entry["size"]}, name
    stored = {p.name for p in GOLDEN.iterdir()} - {"manifest.json"}
    assert stored == (set(manifest["golden"]) - NOT_STORED) | set(manifest["kept"])


def test_golden_archive_is_reproduced_exactly():
    expected = (GOLDEN / "sample.tiny.gmx").read_bytes()
    assert gmixpy.compress(golden_input(), preset="tiny") == expected


def test_golden_archive_decodes():
    assert gmixpy.decompress((GOLDEN / "sample.tiny.gmx").read_bytes()) == golden_input()


def test_kept_archives_of_older_versions_still_decode(manifest):
    """Every golden archive kept from an earlier archive format version (version 1: made before the model digest
    changed) is still readable and decodes to the golden input."""
    assert manifest["kept"]
    for name, entry in manifest["kept"].items():
        blob = (GOLDEN / name).read_bytes()
        assert blob[4] == entry[ARCHIVE] < manifest[ARCHIVE] and entry[ARCHIVE] in READABLE_VERSIONS, name
        assert gmixpy.decompress(blob) == golden_input(), name


def test_golden_model_file_and_generation(manifest):
    model = golden_model_bytes()
    expected = manifest["golden"]["model.tiny.gmxm"]
    assert (len(model), hashlib.sha256(model).hexdigest()) == (expected["size"], expected["sha256"])
    assert golden_generation(model) == (GOLDEN / "generated.tiny.txt").read_bytes()


def test_make_golden_refuses_changed_bytes_without_a_bump(manifest):
    versions = code_versions()
    same = {"sample.tiny.gmx": (GOLDEN / "sample.tiny.gmx").read_bytes()}
    changed = {"sample.tiny.gmx": same["sample.tiny.gmx"] + b"x"}
    assert refusals(manifest, versions, same) == []
    assert "sample.tiny.gmx changed, but archive_format" in refusals(manifest, versions, changed)[0]
    # a model-file bump does not cover an archive change; an archive bump does
    assert refusals(manifest, {**versions, MODEL_FILE: versions[MODEL_FILE] + 1}, changed)
    assert refusals(manifest, {**versions, ARCHIVE: versions[ARCHIVE] + 1}, changed) == []
    # the golden model changes with either bump, the generated text only with the archive's (arithmetic)
    model = {"model.tiny.gmxm": b"another model"}
    assert refusals(manifest, versions, model)
    assert refusals(manifest, {**versions, MODEL_FILE: versions[MODEL_FILE] + 1}, model) == []
    text = {"generated.tiny.txt": b"other text"}
    assert refusals(manifest, {**versions, MODEL_FILE: versions[MODEL_FILE] + 1}, text)
    # going back to an older version is refused whatever the bytes
    assert refusals(manifest, {**versions, ARCHIVE: versions[ARCHIVE] - 1}, same)
