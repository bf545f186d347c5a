"""Model files, training, fine-tuning, compression with a model, resume and generation (gmix's tester.cpp
guarantees and more)."""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest

import gmixpy
from gmixpy import serialize
from gmixpy.archive import ArchiveError, decode_header
from gmixpy.chunks import evaluate
from gmixpy.codec import compress_stream
from gmixpy.coder.arithmetic import coder_new
from gmixpy.generate import generate_bytes
from gmixpy.model import HISTORY, Model, walk
from gmixpy.runs import read_checkpoint
from helpers import assert_one_line_error, no_temporaries, run, trained_tiny


def same_memory(a, b) -> bool:
    return all(np.array_equal(x, y) and x.dtype == y.dtype for (_, x), (_, y) in zip(walk(a), walk(b)))


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, alice):
    path = tmp_path_factory.mktemp("m") / "alice.gmxm"
    serialize.save(str(path), trained_tiny(alice[:20000]))
    return path


def test_saved_model_predicts_exactly_as_before(tmp_path, alice):
    m = trained_tiny(alice[:15000])
    path = tmp_path / "m.gmxm"
    serialize.save(str(path), m)
    loaded = serialize.load(str(path))
    assert loaded.bytes_learned == 15000
    more = alice[15000:18000]
    # the coded bytes depend on every prediction bit for bit
    coded = []
    for model in (m, loaded):
        out = io.BytesIO()
        compress_stream(model, io.BytesIO(more), out)
        coded.append(out.getvalue())
    assert coded[0] == coded[1]
    # and the memories are still identical afterwards, in every array but the growing buffers' spare room
    for (name, a), (_, b) in zip(walk(m.ltm), walk(loaded.ltm)):
        if name == "history.history":
            n = int(m.ltm.history.history_length[0])
            a, b = a[:n], b[:n]
        elif name == "mixer.weights":
            n = int(m.ltm.mixer.weights_used[0])
            a, b = a[:n], b[:n]
        assert np.array_equal(a, b), name
    assert same_memory(m.stm, loaded.stm)


def test_model_file_is_small_when_sparse(tmp_path, alice):
    path = tmp_path / "m.gmxm"
    model = trained_tiny(alice[:5000])
    serialize.save(str(path), model)
    # the context maps' adaptive maps start non-zero (about 3.5 MB in tiny); the hashed tables stay sparse
    assert path.stat().st_size < 4_500_000


def test_save_is_deterministic(tmp_path, alice):
    m = trained_tiny(alice[:3000])
    serialize.save(str(tmp_path / "a.gmxm"), m)
    serialize.save(str(tmp_path / "b.gmxm"), m)
    assert (tmp_path / "a.gmxm").read_bytes() == (tmp_path / "b.gmxm").read_bytes()


def test_generation_leaves_long_term_memory_unchanged(model_file):
    m = serialize.load(str(model_file))
    before = [a.copy() for _, a in walk(m.ltm)]
    stm_before = [a.copy() for _, a in walk(m.stm)]
    out = []
    generate_bytes(m, b"Alice was ", 300, 0.8, 5, False, out.append)
    assert all(np.array_equal(x, a) for x, (_, a) in zip(before, walk(m.ltm)))
    assert not all(np.array_equal(x, a) for x, (_, a) in zip(stm_before, walk(m.stm)))  # short-term evolves
    assert len(b"".join(out)) == 300


def test_same_seed_same_text(model_file):
    def sample(seed):
        out = []
        generate_bytes(serialize.load(str(model_file)), b"The ", 200, 0.8, seed, False, out.append)
        return b"".join(out)

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)


def test_learn_prompt_changes_long_term_memory(model_file):
    m = serialize.load(str(model_file))
    before = [a.copy() for _, a in walk(m.ltm)]
    generate_bytes(m, b"a prompt to learn from", 10, 1.0, 0, True, lambda b: None)
    assert not all(np.array_equal(x, a) for x, (_, a) in zip(before, walk(m.ltm)))


def test_compress_with_model_round_trip_and_refusals(model_file, alice):
    m = serialize.load(str(model_file))
    data = alice[30000:34000]
    blob = gmixpy.compress(data, model=m)
    assert gmixpy.decompress(blob, model=m) == data
    assert len(blob) < len(gmixpy.compress(data, preset="tiny"))  # the trained model helps
    with pytest.raises(ArchiveError, match="with a model file"):
        gmixpy.decompress(blob)
    other = trained_tiny(alice[:1000])
    with pytest.raises(ArchiveError, match="different model"):
        gmixpy.decompress(blob, model=other)
    # the model passed in is not modified by compressing
    assert evaluate(serialize.load(str(model_file)), data, False) == evaluate(m, data, False)


def test_archive_records_the_state_it_was_coded_with(tmp_path, alice):
    """A model made in Python and saved afterwards, and a loaded model changed by learning: each archive names
    the exact state it was coded with, so the right state decodes it and any other is refused as such."""
    data = alice[50000:52000]
    fresh = Model.new("tiny")
    blob = gmixpy.compress(data, model=fresh)
    saved = tmp_path / "fresh.gmxm"
    serialize.save(str(saved), fresh)
    assert gmixpy.decompress(blob, model=serialize.load(str(saved))) == data
    (tmp_path / "fresh.gmx").write_bytes(blob)
    proc = run("decompress", tmp_path / "fresh.gmx", "--model", saved, "-o", tmp_path / "fresh.out", "-q")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "fresh.out").read_bytes() == data

    changed = serialize.load(str(saved))
    evaluate(changed, alice[:3000], learn=True)
    blob = gmixpy.compress(data, model=changed)
    assert gmixpy.decompress(blob, model=changed) == data
    with pytest.raises(ArchiveError, match="different model, or the same model in another state"):
        gmixpy.decompress(blob, model=serialize.load(str(saved)))
    (tmp_path / "changed.gmx").write_bytes(blob)
    proc = run("decompress", tmp_path / "changed.gmx", "--model", saved, "-o", tmp_path / "changed.out")
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "model digest mismatch" in err and "corrupt" not in err, err
    assert not (tmp_path / "changed.out").exists()
    # the digest follows the content: the changed model saved and loaded again decodes it
    serialize.save(str(tmp_path / "changed.gmxm"), changed)
    assert gmixpy.decompress(blob, model=serialize.load(str(tmp_path / "changed.gmxm"))) == data
    # frozen evaluation and generation move the short-term memory, so they change the state too
    before = changed.digest()
    evaluate(changed, b"more", learn=False)
    assert changed.digest() != before


def test_train_refuses_to_overwrite_its_input(tmp_path, alice):
    src = tmp_path / "d.txt"
    src.write_bytes(alice[:2000])
    for extra in ([], ["--metrics", src, "--test", src]):
        out = src if not extra else tmp_path / "m.gmxm"
        proc = run("train", src, "-o", out, "--force", "--preset", "tiny", *extra)
        err = proc.stderr.decode()
        assert proc.returncode == 1 and "is one of the inputs" in err and "Traceback" not in err, err
        assert src.read_bytes() == alice[:2000]


def test_cli_compress_with_model(tmp_path, model_file, alice):
    src = tmp_path / "part.txt"
    src.write_bytes(alice[40000:43000])
    assert run("compress", src, "--model", model_file, "-q").returncode == 0
    proc = run("decompress", f"{src}.gmx", "-o", tmp_path / "out.txt")
    assert proc.returncode == 1 and "model" in proc.stderr.decode() and "Traceback" not in proc.stderr.decode()
    assert not (tmp_path / "out.txt").exists()
    assert run("decompress", f"{src}.gmx", "-o", tmp_path / "out.txt", "--model", model_file, "-q").returncode == 0
    assert (tmp_path / "out.txt").read_bytes() == src.read_bytes()
    proc = run("compress", src, "--model", model_file, "--preset", "tiny", "-o", tmp_path / "x.gmx")
    assert proc.returncode == 2


@pytest.mark.parametrize("damage", ["flip", "truncate", "magic", "version", "empty"])
def test_damaged_model_files(tmp_path, model_file, damage):
    raw = bytearray(model_file.read_bytes())
    if damage == "flip":
        raw[len(raw) // 2] ^= 1
    elif damage == "truncate":
        raw = raw[: len(raw) // 3]
    elif damage == "magic":
        raw[0:4] = b"NOPE"
    elif damage == "version":
        raw[4] = 99
    else:
        raw = bytearray()
    bad = tmp_path / "bad.gmxm"
    bad.write_bytes(bytes(raw))
    with pytest.raises(serialize.ModelFileError):
        serialize.load(str(bad))
    assert_one_line_error(run("generate", bad, "-n", "5"), "")


def test_info_on_model(model_file):
    proc = run("info", model_file)
    out = proc.stdout.decode()
    assert proc.returncode == 0 and "bytes trained on:      20,000" in out and "tiny" in out


def test_train_directory_and_fine_tune(tmp_path, alice):
    d = tmp_path / "corpus"
    (d / "sub").mkdir(parents=True)
    (d / "b.txt").write_bytes(alice[:8000])
    (d / "sub" / "a.txt").write_bytes(alice[8000:16000])
    (tmp_path / "test.txt").write_bytes(alice[60000:64000])
    out = tmp_path / "m.gmxm"
    proc = run("train", d, "-o", out, "-p", "tiny", "--test", tmp_path / "test.txt", "--metrics",
               tmp_path / "m.tsv", "--dictionary", "off")  # the bytes as they are: compared with evaluate below
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr.decode()
    assert "bits per byte (training)" in err and "(frozen)" in err
    assert (tmp_path / "m.best.gmxm").exists()
    rows = (tmp_path / "m.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["bytes", "train_bpb", "test_bpb"] and len(rows) >= 2
    m = serialize.load(str(out))
    assert m.bytes_learned == 16000
    # directories are read in sorted order: b.txt, then sub/a.txt
    ref = Model.new("tiny")
    evaluate(ref, alice[:8000] + alice[8000:16000], True)
    assert same_memory(ref.stm, m.stm)
    # fine-tuning on new text changes the model and lowers bits per byte on that kind of text
    new_text = tmp_path / "new.txt"
    new_text.write_bytes(b"Twinkle, twinkle, little bat! How I wonder what you're at! " * 60)
    proc = run("eval", out, new_text, "--frozen")
    before = float(re.search(r"([0-9.]+) bits per byte", proc.stdout.decode()).group(1))
    assert proc.stdout.decode().strip().endswith("(frozen)")
    tuned = tmp_path / "tuned.gmxm"
    assert run("train", new_text, "--from", out, "-o", tuned, "-q").returncode == 0
    proc = run("eval", tuned, new_text, "--frozen")
    after = float(re.search(r"([0-9.]+) bits per byte", proc.stdout.decode()).group(1))
    assert after < before
    assert serialize.load(str(tuned)).bytes_learned == 16000 + new_text.stat().st_size
    assert run("train", new_text, "--from", out, "-p", "tiny", "-o", tmp_path / "x.gmxm").returncode == 2
    proc = run("train", new_text, "-o", tuned, "-p", "tiny")
    assert proc.returncode == 1 and "already exists" in proc.stderr.decode()


def _killed_after_first_checkpoint(tmp_path, data: bytes, every: int = 7500) -> tuple[Path, Path, Path, bytes]:
    """A compression of `data` with several checkpoints, killed outright (as by SIGKILL) right after the first:
    (input, output, checkpoint, the archive an uninterrupted run writes)."""
    src = tmp_path / "in.txt"
    src.write_bytes(data)
    whole = tmp_path / "whole.gmx"
    assert run("compress", src, "-o", whole, "-p", "tiny", "-q").returncode == 0
    out = tmp_path / "part.gmx"
    proc = run("compress", src, "-o", out, "-p", "tiny", "-q", "--checkpoint-every", every,
               env={"GMIXPY_KILL_AFTER_CHECKPOINT": "1"})
    assert proc.returncode == 137
    return src, out, Path(f"{out}.ckpt"), whole.read_bytes()


def test_resume_compress_gives_identical_archive(tmp_path, alice):
    _, out, ckpt, whole = _killed_after_first_checkpoint(tmp_path, alice[:30000])
    partial = Path(f"{out}.partial")
    assert ckpt.exists() and partial.exists() and not out.exists()
    _, meta, run_state = read_checkpoint(str(ckpt))
    assert "output" not in run_state and meta["partial"] == str(partial) and meta["pos"] == 7500
    head = decode_header(whole).size  # the header is written with the input's length and CRC32 only at the end
    assert partial.read_bytes()[head:meta["partial_length"]] == whole[head:meta["partial_length"]]
    proc = run("resume", ckpt, "-q")
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == whole
    assert not ckpt.exists() and not partial.exists()
    assert no_temporaries(tmp_path)


def test_resume_cuts_what_was_written_after_the_checkpoint(tmp_path, alice):
    """A run killed after its checkpoint had written more of the archive (or a run stopped between writing the
    final header and the rename): resume checks the bytes the checkpoint covers, drops the rest, and the result is
    still the uninterrupted run's."""
    _, out, ckpt, whole = _killed_after_first_checkpoint(tmp_path, alice[:30000])
    partial = Path(f"{out}.partial")
    length = read_checkpoint(str(ckpt))[1]["partial_length"]
    with open(partial, "r+b") as f:
        f.write(whole[:decode_header(whole).size])  # the final header, as finish_archive leaves it
        f.seek(0, 2)
        f.write(b"written after the checkpoint" * 100)
    with open(f"{out}.partial.history", "ab") as f:
        f.write(b"appended after the checkpoint" * 100)
    assert run("resume", ckpt, "-q").returncode == 0
    assert out.read_bytes() == whole and length < len(whole)


@pytest.mark.parametrize("kept", ["partial archive", "history file"])
@pytest.mark.parametrize("damage", ["missing", "changed", "shorter"])
def test_resume_refuses_missing_or_changed_kept_files(tmp_path, alice, damage, kept):
    """The partial archive and the history file a checkpoint names: resume checks the bytes the checkpoint vouches
    for (their length and CRC32) before anything is written."""
    src, out, ckpt, _ = _killed_after_first_checkpoint(tmp_path, alice[:30000])
    partial, history = Path(f"{out}.partial"), Path(f"{out}.partial.history")
    assert history.stat().st_size == read_checkpoint(str(ckpt))[1]["history_length"] > 7000
    damaged, other = (partial, history) if kept == "partial archive" else (history, partial)
    blob, untouched = bytearray(damaged.read_bytes()), other.read_bytes()
    if damage == "missing":
        damaged.unlink()
        said = f"the {kept} {damaged} is missing: cannot resume"
    else:
        if damage == "changed":
            blob[len(blob) // 2] ^= 1
        else:
            del blob[len(blob) // 2:]
        damaged.write_bytes(bytes(blob))
        said = f"the {kept} {damaged} has changed since the checkpoint was written: cannot resume"
    ckpt_bytes = ckpt.read_bytes()
    proc = run("resume", ckpt)
    assert assert_one_line_error(proc, said).endswith(said)
    assert ckpt.read_bytes() == ckpt_bytes and not out.exists() and src.read_bytes() == alice[:30000]
    assert other.read_bytes() == untouched
    assert damage == "missing" or damaged.read_bytes() == bytes(blob)  # refused before anything was written


def test_a_checkpoint_that_detached_the_history_needs_its_run(tmp_path, alice):
    """Only `resume` (read_checkpoint) gives a checkpoint its history back; loading it as a bare checkpoint is
    refused in one line, and a model file can never leave anything out."""
    _, out, ckpt, _ = _killed_after_first_checkpoint(tmp_path, alice[:30000])
    with pytest.raises(serialize.ModelFileError, match="keeps part of its model in a file of its run"):
        serialize.load_checkpoint(str(ckpt), {"coder": coder_new})
    model = read_checkpoint(str(ckpt))[0]
    assert model.history().tobytes() == Path(f"{out}.partial.history").read_bytes()
    with pytest.raises(ValueError, match="only growing buffers"):
        serialize.save_checkpoint(str(tmp_path / "x.ckpt"), model, {}, {}, detach=("ltm.lstm.weights",))


def test_resume_from_a_checkpoint_whose_model_holds_the_history(tmp_path, alice):
    """A checkpoint of the layout before the history file (its model holds the history, its meta names no history
    file) still resumes, to the same bytes, making the history file anew (an existing one is an output: refused
    without --force)."""
    _, out, ckpt, whole = _killed_after_first_checkpoint(tmp_path, alice[:30000])
    history = Path(f"{out}.partial.history")
    model, meta, run_state = read_checkpoint(str(ckpt))
    for key in ("history", "history_length", "history_crc"):
        del meta[key]
    serialize.save_checkpoint(str(ckpt), model, run_state, meta)
    assert_one_line_error(run("resume", ckpt), f"{history} already exists (use --force to overwrite)")
    history.unlink()
    assert run("resume", ckpt, "-q").returncode == 0
    assert out.read_bytes() == whole and not ckpt.exists() and not history.exists()


def test_fresh_compress_refuses_an_existing_partial_archive(tmp_path, alice):
    """OUTPUT.partial is an output like any other: not replaced without --force, never the input."""
    src = tmp_path / "in.txt"
    src.write_bytes(alice[:12000])
    out = tmp_path / "o.gmx"
    partial = tmp_path / "o.gmx.partial"
    partial.write_bytes(b"a file of the user's")
    args = ("compress", src, "-o", out, "-p", "tiny", "-q", "--checkpoint-every", 5000)
    assert_one_line_error(run(*args), f"{partial} already exists (use --force to overwrite)")
    assert partial.read_bytes() == b"a file of the user's" and not out.exists()
    assert not Path(f"{out}.ckpt").exists()
    assert run(*args, "--force").returncode == 0
    assert out.read_bytes() == gmixpy.compress(alice[:12000], preset="tiny")
    assert not partial.exists() and not Path(f"{out}.ckpt").exists()
    # the history file likewise
    history = tmp_path / "o.gmx.partial.history"
    history.write_bytes(b"a file of the user's")
    out.unlink()
    assert_one_line_error(run(*args), f"{history} already exists (use --force to overwrite)")
    assert history.read_bytes() == b"a file of the user's"
    assert run(*args, "--force").returncode == 0
    assert not history.exists()
    # without checkpoints there is no partial archive, and nothing refuses the file
    partial.write_bytes(b"a file of the user's")
    assert run("compress", src, "-o", out, "-p", "tiny", "-q", "--force").returncode == 0
    assert partial.read_bytes() == b"a file of the user's"
    # the input itself can never be the partial archive, even with --force
    assert_one_line_error(run("compress", partial, "-o", out, "-p", "tiny", "--force", "--checkpoint-every", 5000),
                          f"{partial} is the input {partial}: choose another output")
    assert partial.read_bytes() == b"a file of the user's"
    # nor can the checkpoint be the output or the partial archive (one would overwrite the other)
    archive = out.read_bytes()
    for ckpt, what in ((partial, "partial archive"), (out, "output")):
        assert_one_line_error(run("compress", src, "-o", out, "-p", "tiny", "--force", "--checkpoint-every", 5000,
                                  "--checkpoint", ckpt), f"{ckpt} cannot be both the checkpoint and the {what}")
    assert partial.read_bytes() == b"a file of the user's" and out.read_bytes() == archive


def test_resume_from_a_checkpoint_of_the_earlier_layout(tmp_path, alice):
    """A checkpoint written before the partial archive (its run state holds the archive so far, its meta no
    "partial") still resumes, to the same bytes, making the partial archive anew."""
    _, out, ckpt, whole = _killed_after_first_checkpoint(tmp_path, alice[:30000])
    partial = Path(f"{out}.partial")
    model, meta, run_state = read_checkpoint(str(ckpt))
    written = partial.read_bytes()[:meta.pop("partial_length")]
    for key in ("partial", "partial_crc", "history", "history_length", "history_crc"):
        del meta[key]
    serialize.save_checkpoint(str(ckpt), model, {"coder": run_state["coder"],
                                                 "output": np.frombuffer(written, np.uint8)}, meta)
    Path(f"{out}.partial.history").unlink()
    assert_one_line_error(run("resume", ckpt), f"{partial} already exists (use --force to overwrite)")
    partial.unlink()
    assert run("resume", ckpt, "-q").returncode == 0
    assert out.read_bytes() == whole and not ckpt.exists() and not partial.exists()


def test_checkpoints_do_not_grow_with_the_archive_or_the_history(tmp_path, alice, monkeypatch):
    """Each checkpoint is the model's tables plus a constant: what the same model saved without its history takes,
    and a few hundred bytes of coder and meta, however much of the archive and of the match history has been
    written (both used to be copied into every one).  The history goes to the history file, each checkpoint
    appending what is new."""
    from gmixpy.runs import CompressState, run_compression, start_compression

    src = tmp_path / "in.txt"
    src.write_bytes(alice[:60000])
    history = tmp_path / "o.gmx.partial.history"
    extra, lengths, kept = [], [], []
    save_checkpoint = serialize.save_checkpoint

    def measured(path, model, run_state, meta, detach=()):
        digest = save_checkpoint(path, model, run_state, meta, detach)
        assert detach == (HISTORY,) and list(run_state) == ["coder"]
        save_checkpoint(str(tmp_path / "bare.ckpt"), model, {}, {}, detach)
        extra.append(Path(path).stat().st_size - (tmp_path / "bare.ckpt").stat().st_size)
        lengths.append(meta["partial_length"])
        assert history.read_bytes() == model.history().tobytes()  # appended up to what the model has
        kept.append(meta["history_length"])
        return digest

    monkeypatch.setattr(serialize, "save_checkpoint", measured)
    st = CompressState(input=str(src), output=str(tmp_path / "o.gmx"), preset="tiny", checkpoint_every=10000,
                       checkpoint=str(tmp_path / "o.gmx.ckpt"), dictionary="off")
    run_compression(start_compression(st), st)
    assert len(extra) == 6 and lengths[-1] > lengths[0] + 10000
    assert all(0 < e < 1000 for e in extra), extra
    assert kept == sorted(kept) and kept[-1] > kept[0] + 10000
    assert (tmp_path / "o.gmx").read_bytes() == gmixpy.compress(alice[:60000], preset="tiny", dictionary="off")
    assert not history.exists() and not (tmp_path / "o.gmx.partial").exists()


def test_resume_train_gives_identical_model(tmp_path, alice):
    src = tmp_path / "in.txt"
    src.write_bytes(alice[:40000])
    test = tmp_path / "test.txt"
    test.write_bytes(alice[90000:93000])
    common = ["-p", "tiny", "-q", "--test", test, "--test-every", 10000]
    assert run("train", src, "-o", tmp_path / "whole.gmxm", *common).returncode == 0
    proc = run("train", src, "-o", tmp_path / "part.gmxm", *common, "--checkpoint-every", 20000,
               env={"GMIXPY_KILL_AFTER_CHECKPOINT": "1"})
    assert proc.returncode == 137
    proc = run("resume", tmp_path / "part.gmxm.ckpt", "-q")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "part.gmxm").read_bytes() == (tmp_path / "whole.gmxm").read_bytes()
    assert (tmp_path / "part.best.gmxm").read_bytes() == (tmp_path / "whole.best.gmxm").read_bytes()
    assert not (tmp_path / "part.gmxm.ckpt").exists()


def test_resume_refuses_changed_input(tmp_path, alice):
    src = tmp_path / "in.txt"
    src.write_bytes(alice[:30000])
    out = tmp_path / "o.gmx"
    run("compress", src, "-o", out, "-p", "tiny", "-q", "--checkpoint-every", 15000,
        env={"GMIXPY_KILL_AFTER_CHECKPOINT": "1"})
    src.write_bytes(b"X" + alice[1:30000])
    proc = run("resume", f"{out}.ckpt")
    assert proc.returncode == 1 and "changed" in proc.stderr.decode()


def test_generate_cli(model_file, tmp_path):
    proc = run("generate", model_file, "--prompt", "Alice", "-n", 64, "-t", 0.8, "--seed", 7, "-q")
    assert proc.returncode == 0 and len(proc.stdout) == 64
    again = run("generate", model_file, "--prompt", "Alice", "-n", 64, "-t", 0.8, "--seed", 7, "-q")
    assert again.stdout == proc.stdout
    out = tmp_path / "g.txt"
    assert run("generate", model_file, "-n", 10, "-o", out).returncode == 0
    assert len(out.read_bytes()) == 10
    assert run("generate", model_file, "-n", 10, "-o", out).returncode == 1  # exists, no --force


def test_copy_array_is_an_exact_independent_copy():
    from gmixpy.model import SPARSE_BLOCK, copy_array
    a = np.zeros(70 * SPARSE_BLOCK // 4, np.int32)   # big enough for the block-wise path
    a[5] = 7
    a[-1] = -3
    a[3 * SPARSE_BLOCK // 4 + 11] = 1
    b = copy_array(a)
    assert b.dtype == a.dtype and b.shape == a.shape and np.array_equal(a, b)
    b[5] = 0
    assert a[5] == 7


def test_compress_state_round_trips_through_a_checkpoint(tmp_path, alice):
    """CompressState.to_meta and from_meta are inverses, and from_meta refuses a state that does not belong to the
    checkpoint's model."""
    from gmixpy.runs import CompressState, start_compression

    src = tmp_path / "in.txt"
    src.write_bytes(alice[:3000])
    st = CompressState(input=str(src), output=str(tmp_path / "in.gmx"), preset="tiny", checkpoint_every=1000,
                       checkpoint=str(tmp_path / "c.ckpt"), pos=1000, crc=12345)
    model = start_compression(st)
    st.partial_length, st.partial_crc = 5000, 678
    run = {"coder": st.coder}
    back = CompressState.from_meta(st.to_meta(), run, model, "c.ckpt")
    assert back.to_meta() == st.to_meta() and back.header == st.header and back.written == b""
    assert back.partial == str(tmp_path / "in.gmx.partial")
    other = dict(st.to_meta(), preset="fast")
    with pytest.raises(serialize.ModelFileError, match=r"c.ckpt: damaged checkpoint \(bad compression state: preset"):
        CompressState.from_meta(other, run, model, "c.ckpt")
    for key, value in (("partial", "/etc/passwd"), ("partial", None), ("partial_length", 3),
                       ("partial_length", "5000"), ("partial_crc", -1), ("partial_crc", 1 << 32)):
        with pytest.raises(serialize.ModelFileError, match=rf"c.ckpt: damaged checkpoint \(bad compression state: "
                                                           rf"{key}\)"):
            CompressState.from_meta(dict(st.to_meta(), **{key: value}), run, model, "c.ckpt")
    with pytest.raises(serialize.ModelFileError, match=r"\(bad compression state: run state\)"):
        CompressState.from_meta(st.to_meta(), dict(run, output=np.zeros(3, np.uint8)), model, "c.ckpt")
    # the earlier layout: the archive so far in the run state, no partial archive in the meta
    old = {k: v for k, v in st.to_meta().items() if not k.startswith("partial")}
    back = CompressState.from_meta(old, dict(run, output=np.frombuffer(b"archive", np.uint8)), model, "c.ckpt")
    assert back.written == b"archive" and back.partial_length == 0 and back.partial == str(tmp_path / "in.gmx.partial")
    with pytest.raises(serialize.ModelFileError, match=r"\(bad compression state: run state\)"):
        CompressState.from_meta(old, run, model, "c.ckpt")
