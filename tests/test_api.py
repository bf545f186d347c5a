"""The Python API as a user meets it: the README's snippets run as written, and compress, decompress, generate and
bits_per_byte agree with the command line."""
from __future__ import annotations

import inspect
import math
import re
from pathlib import Path

import pytest

import gmixpy
from gmixpy import serialize
from gmixpy.model import Model
from helpers import run, save_trained_tiny

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_snippets() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def test_readme_has_snippets():
    assert len(readme_snippets()) >= 2


@pytest.mark.parametrize("index", range(len(readme_snippets())))
def test_readme_snippet_runs_as_written(index, tmp_path, monkeypatch, capsys):
    """Each ```python block of the README, on its own, in an empty directory: what a user pasting it gets."""
    monkeypatch.chdir(tmp_path)
    code = readme_snippets()[index]
    exec(compile(code, f"README.md snippet {index + 1}", "exec"), {"__name__": "__readme__"})


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, alice) -> Path:
    return save_trained_tiny(tmp_path_factory.mktemp("api") / "m.gmxm", alice[:8000])


def test_generate_is_the_command_lines_text_and_leaves_the_model_alone(model_file):
    model = serialize.load(str(model_file))
    before = model.digest()
    text = gmixpy.generate(model, "Alice", n=80, temperature=0.7, seed=3)
    assert isinstance(text, bytes) and len(text) == 80
    assert model.digest() == before
    assert gmixpy.generate(model, b"Alice", n=80, temperature=0.7, seed=3) == text  # again: the same text
    proc = run("generate", model_file, "--prompt", "Alice", "-n", 80, "-t", 0.7, "--seed", 3, "-q")
    assert proc.stdout == text
    learned = gmixpy.generate(model, "Alice", n=80, temperature=0.7, seed=3, learn_prompt=True)
    proc = run("generate", model_file, "--prompt", "Alice", "-n", 80, "-t", 0.7, "--seed", 3, "-q", "--learn-prompt")
    assert proc.stdout == learned and model.digest() == before
    assert gmixpy.generate(model, n=0) == b""
    for bad in (math.nan, math.inf, -1.0):
        with pytest.raises(ValueError, match="temperature"):
            gmixpy.generate(model, "x", n=5, temperature=bad)
    with pytest.raises(ValueError, match="seed"):
        gmixpy.generate(model, "x", n=5, seed=-1)


def test_bits_per_byte_is_what_eval_says(model_file, tmp_path, alice):
    data = alice[20000:24000]
    path = tmp_path / "held.txt"
    path.write_bytes(data)
    for frozen in (False, True):
        said = run("eval", model_file, path, *(["--frozen"] if frozen else [])).stdout.decode()
        bpb = gmixpy.bits_per_byte(serialize.load(str(model_file)), data, learn=not frozen)
        assert f"{bpb:.4f} bits per byte" in said, (said, bpb)
    model = Model.new("tiny")
    assert gmixpy.bits_per_byte(model, b"", learn=True) == 0.0
    first = gmixpy.bits_per_byte(model, data, learn=True)
    assert gmixpy.bits_per_byte(model.copy(), data, learn=False) < first  # it learned
    with pytest.raises(TypeError):
        gmixpy.bits_per_byte(model, data)  # learn must be said


def test_saving_over_a_file_speaks_python(tmp_path):
    from gmixpy.files import OutputExists

    existing = tmp_path / "m.gmxm"
    existing.write_bytes(b"mine")
    with pytest.raises(OutputExists, match=r"pass force=True") as e:
        serialize.save(str(existing), Model.new("tiny"))
    assert "--force" not in str(e.value) and existing.read_bytes() == b"mine"


def test_public_names_are_documented():
    for fn in (gmixpy.compress, gmixpy.decompress, gmixpy.generate, gmixpy.bits_per_byte, gmixpy.Model.new,
               gmixpy.Model.copy, serialize.load, serialize.save):
        assert inspect.getdoc(fn) and len(inspect.getdoc(fn)) > 40, fn
        sig = inspect.signature(fn)
        assert sig.return_annotation is not inspect.Signature.empty, fn
        assert all(p.annotation is not inspect.Parameter.empty for p in sig.parameters.values()
                   if p.name not in ("self", "cls")), fn
    assert set(gmixpy.__all__) >= {"compress", "decompress", "generate", "bits_per_byte", "Model", "ArchiveError"}
    # gmixpy.generate stays the function when its module (gmixpy/generate.py) is imported too
    from gmixpy.generate import generate_bytes  # noqa: F401

    assert callable(gmixpy.generate) and inspect.isfunction(gmixpy.generate)
