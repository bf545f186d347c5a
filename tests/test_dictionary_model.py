"""Models of dictionary-coded text (Model.dictionary, `train --dictionary`): a model trained on English-like text
learns its dictionary transform, records that in its file (model-file format 4), and every command that reads or
writes text with it applies the transform and undoes it: eval and held-out scores per byte of text, generation
decoded as it goes, compression with the model, fine-tuning, checkpoints and resume."""
from __future__ import annotations

import io

import pytest

import gmixpy
from gmixpy import serialize
from gmixpy.archive import decode_header
from gmixpy.chunks import evaluate
from gmixpy.generate import generate_bytes
from gmixpy.model import Model
from gmixpy.preprocess.dictionary import Decoder, Dictionary, DictionaryError, EncodingReader, encode
from gmixpy.serialize import model_file
from helpers import run, usage_error


@pytest.fixture(scope="module")
def texts(alice, tmp_path_factory):
    d = tmp_path_factory.mktemp("dictmodel")
    train, test = d / "train.txt", d / "test.txt"
    train.write_bytes(alice[:24000])
    test.write_bytes(alice[-6000:])
    return d, train, test


@pytest.fixture(scope="module")
def coded_model(texts):
    """`gmixpy train` on English text with the tiny preset: auto chooses the transform."""
    d, train, test = texts
    proc = run("train", train, "-o", d / "m.gmxm", "-p", "tiny", "--test", test, "--metrics", d / "m.tsv")
    assert proc.returncode == 0, proc.stderr
    return d / "m.gmxm"


def test_encoding_reader_streams_the_transform(alice):
    for block in (1, 7, 4096):
        reader = EncodingReader(io.BytesIO(alice[:9000]), block=block)
        parts = []
        while part := reader.read(1000):
            parts.append(part)
        assert b"".join(parts) == encode(alice[:9000]) and reader.consumed == 9000


def test_lenient_decoder_skips_what_it_cannot_undo():
    strict, lenient = Decoder(Dictionary.english()), Decoder(Dictionary.english(), lenient=True)
    bad = b"ab @ \xd0\xd0\xd0\xd0 \x07Xy\x0c"
    with pytest.raises(DictionaryError):
        strict.feed(bad)
        strict.finish()
    assert lenient.feed(bad) + lenient.finish() == b"ab  XY"  # "\xd0 " is a code too; upper goes on
    assert lenient.feed(encode(b"The word")) + lenient.finish() == b"The word"


def test_train_learns_the_transform_and_records_it(coded_model, texts, alice):
    d, train, test = texts
    model = serialize.load(str(coded_model))
    assert model.dictionary == "english"
    assert coded_model.read_bytes()[4] == 4  # model-file format 4 only for such a model
    assert model.bytes_learned == len(encode(alice[:24000]))
    info = run("info", coded_model).stdout.decode()
    assert "text coding:           English dictionary transform" in info
    rows = (d / "m.tsv").read_text().splitlines()
    assert rows[-1].startswith("24000\t")  # input bytes, not transformed ones
    plain = run("train", train, "-o", d / "p.gmxm", "-p", "tiny", "--dictionary", "off", "-q")
    assert plain.returncode == 0
    raw = serialize.load(str(d / "p.gmxm"))
    assert raw.dictionary is None and (d / "p.gmxm").read_bytes()[4] == model_file.PLAIN_VERSION
    assert "text coding:           none" in run("info", d / "p.gmxm").stdout.decode()


def test_eval_is_per_byte_of_text(coded_model, texts, alice):
    d, train, test = texts
    model = serialize.load(str(coded_model))
    expected = evaluate(model.frozen_copy(), encode(alice[-6000:]), False) / 6000
    out = run("eval", coded_model, test, "--frozen").stdout.decode()
    assert out.startswith(f"{test}: 6,000 bytes, {expected:.4f} bits per byte (frozen)")
    assert gmixpy.bits_per_byte(model.frozen_copy(), alice[-6000:], learn=False) == pytest.approx(expected)
    piped = run("eval", coded_model, "-", "--frozen", input=alice[-6000:]).stdout.decode()
    assert f"6,000 bytes, {expected:.4f}" in piped


def test_generation_decodes_and_leaves_the_model_alone(coded_model):
    model = serialize.load(str(coded_model))
    digest = model.digest()
    text = gmixpy.generate(model, "Alice was", n=300, temperature=0.7, seed=5)
    assert len(text) == 300 and model.digest() == digest
    assert gmixpy.generate(model, "Alice was", n=300, temperature=0.7, seed=5) == text
    assert not any(b >= 0x80 or b in (0x06, 0x07, 0x08, 0x0C) for b in text)  # decoded: no codes, flags, escapes
    assert text.count(b" ") > 20  # words
    # In blocks of any size, with a stop string, and as the command line writes it.
    shown = run("generate", coded_model, "--prompt", "Alice was", "-n", "300", "-t", "0.7", "--seed", "5", "-q")
    assert shown.returncode == 0 and shown.stdout == text
    cut, stop = [], text[150:154]
    generate_bytes(model.frozen_copy(), b"Alice was", 300, 0.7, 5, False, cut.append, stop=stop)
    assert b"".join(cut) == text[:text.find(stop)]
    top = []
    assert generate_bytes(model.frozen_copy(), b"Alice", 40, 1.0, 1, False, top.append, top_k=5) == 40
    assert len(b"".join(top)) == 40


def test_compress_with_the_model_uses_its_coding(coded_model, texts, alice, tmp_path):
    model = serialize.load(str(coded_model))
    text = alice[-6000:]
    blob = gmixpy.compress(text, model=model)
    h = decode_header(blob)
    assert h.with_model and h.with_dictionary
    assert gmixpy.decompress(blob, model=model) == text
    with pytest.raises(ValueError, match="does not fit the model"):
        gmixpy.compress(text, model=model, dictionary="off")
    out = tmp_path / "t.gmx"
    assert run("compress", texts[2], "-m", coded_model, "-o", out, "-q").returncode == 0
    assert out.read_bytes() == blob
    assert run("decompress", out, "-m", coded_model, "-o", tmp_path / "back", "-q").returncode == 0
    assert (tmp_path / "back").read_bytes() == text
    proc = run("compress", texts[2], "-m", coded_model, "--dictionary", "off", "-o", tmp_path / "x.gmx")
    assert proc.returncode != 0 and "does not fit the model" in proc.stderr.decode()
    assert proc.stderr.decode().count("\n") == 1


def test_fine_tuning_keeps_the_coding(coded_model, texts, alice, tmp_path):
    d, train, test = texts
    more = tmp_path / "more.txt"
    more.write_bytes(alice[30000:36000])
    assert run("train", more, "--from", coded_model, "-o", tmp_path / "t.gmxm", "-q").returncode == 0
    tuned = serialize.load(str(tmp_path / "t.gmxm"))
    assert tuned.dictionary == "english"
    assert tuned.bytes_learned == serialize.load(str(coded_model)).bytes_learned + len(encode(alice[30000:36000]))
    proc = run("train", more, "--from", coded_model, "--dictionary", "off", "-o", tmp_path / "u.gmxm")
    assert proc.returncode != 0 and "does not fit the model" in proc.stderr.decode()


def test_resume_of_a_coded_run_is_byte_identical(texts, alice, tmp_path):
    d, train, test = texts
    second = tmp_path / "second.txt"
    second.write_bytes(alice[40000:52000])
    args = ["train", train, second, "-p", "tiny", "--test", test, "--checkpoint-every", "7000", "-q"]
    whole = run(*args, "-o", tmp_path / "whole.gmxm", "--metrics", tmp_path / "whole.tsv")
    assert whole.returncode == 0, whole.stderr
    cut = run(*args, "-o", tmp_path / "cut.gmxm", "--metrics", tmp_path / "cut.tsv",
              env={"GMIXPY_KILL_AFTER_CHECKPOINT": "1"})
    assert cut.returncode == 137
    checkpoint = tmp_path / "cut.gmxm.ckpt"
    assert run("resume", checkpoint, "-q").returncode == 0
    assert (tmp_path / "cut.gmxm").read_bytes() == (tmp_path / "whole.gmxm").read_bytes()
    assert (tmp_path / "cut.tsv").read_bytes() == (tmp_path / "whole.tsv").read_bytes()


def test_stdin_trains_the_same_model(texts, alice, tmp_path):
    d, train, test = texts
    piped = run("train", "-", "-o", tmp_path / "s.gmxm", "-p", "tiny", "-q", input=alice[:24000])
    assert piped.returncode == 0, piped.stderr
    filed = run("train", train, "-o", tmp_path / "f.gmxm", "-p", "tiny", "-q")
    assert filed.returncode == 0
    assert serialize.load(str(tmp_path / "s.gmxm")).digest() == serialize.load(str(tmp_path / "f.gmxm")).digest()


def test_other_data_and_gmix_presets_stay_plain(binary_sample, tmp_path):
    data = tmp_path / "bin"
    data.write_bytes(binary_sample[:6000])
    assert run("train", data, "-o", tmp_path / "b.gmxm", "-p", "tiny", "-q").returncode == 0
    assert serialize.load(str(tmp_path / "b.gmxm")).dictionary is None
    # from stdin too, whose first MiB was read ahead to choose: the same model as from the file
    piped = run("train", "-", "-o", tmp_path / "p.gmxm", "-p", "tiny", "-q", input=binary_sample[:6000])
    assert piped.returncode == 0, piped.stderr
    assert serialize.load(str(tmp_path / "p.gmxm")).digest() == serialize.load(str(tmp_path / "b.gmxm")).digest()
    usage = run("train", data, "-o", tmp_path / "g.gmxm", "-p", "gmix-tiny", "--dictionary", "on")
    assert usage.returncode != 0 and "dictionary transform" in usage.stderr.decode()
    usage_error(run("train", data, "-o", tmp_path / "x.gmxm", "--dictionary", "sometimes"), "--dictionary")


def test_analyze_tells_a_coded_model_per_byte_of_text(coded_model, texts, alice, tmp_path):
    from gmixpy.analysis import analyze

    model = serialize.load(str(coded_model))
    text = alice[-6000:]
    bits = evaluate(model.frozen_copy(), encode(text), False)
    result = analyze(model.frozen_copy(), text, learn=False)
    assert result.n_bytes == len(text) and result.head == text  # the map shows the text
    assert result.ensemble_bits == pytest.approx(bits, rel=1e-6)
    assert float(result.costs.sum()) == pytest.approx(bits, rel=1e-4)  # every transformed byte's cost, moved
    shown = run("analyze", coded_model, texts[2], "--frozen", "--html", tmp_path / "map.html", "-q")
    assert shown.returncode == 0, shown.stderr
    assert f"{len(text):,} bytes, frozen" in shown.stdout.decode()
    proc = run("analyze", coded_model, texts[2], "--archive", tmp_path / "a.gmx")
    assert proc.returncode != 0 and "compress with it" in proc.stderr.decode()
    assert proc.stderr.decode().count("\n") == 1


def test_a_file_naming_an_unknown_coding_is_refused(coded_model, tmp_path):
    blob = bytearray(coded_model.read_bytes())
    at = blob.find(b'"dictionary":"english"')
    assert at > 0
    blob[at:at + 22] = b'"dictionary":"klingon"'
    import hashlib

    blob[-32:] = hashlib.sha256(bytes(blob[:-32])).digest()
    bad = tmp_path / "bad.gmxm"
    bad.write_bytes(bytes(blob))
    with pytest.raises(serialize.ModelFileError, match="unknown text coding"):
        serialize.load(str(bad))


def test_a_new_model_reads_bytes_as_they_are():
    assert Model.new("tiny").dictionary is None


@pytest.mark.parametrize("change", [
    {"dictionary": "yes"}, {"dictionary": True, "coded_sizes": []}, {"dictionary": True, "coded_sizes": [5, 6]},
    {"dictionary": True, "coded_sizes": [-1]}, {"dictionary": False, "coded_sizes": [3]},
    {"dictionary": True, "coded_sizes": [10], "done": 11}])
def test_a_training_checkpoint_with_a_bad_transform_state_is_refused(change):
    from gmixpy.runs import TrainState

    meta = {"files": ["a.txt"], "sizes": [100], "output": "m.gmxm", "done": 0, **change}
    with pytest.raises(serialize.ModelFileError, match="damaged checkpoint"):
        TrainState.from_meta(meta)
    ok = TrainState.from_meta({"files": ["a.txt"], "sizes": [100], "output": "m.gmxm", "dictionary": True,
                               "coded_sizes": [60], "done": 60})
    assert ok.total == 60 and ok.input_total == 100 and ok.input_done == 100


def test_intervals_count_transformed_bytes_and_rows_input_bytes(texts, alice, tmp_path):
    d, train, test = texts
    proc = run("train", train, "-o", tmp_path / "m.gmxm", "-p", "tiny", "--metrics", tmp_path / "m.tsv",
               "--test-every", 4000, "-q")
    assert proc.returncode == 0, proc.stderr
    coded = len(encode(alice[:24000]))
    rows = [r.split("\t") for r in (tmp_path / "m.tsv").read_text().splitlines()[1:]]
    assert len(rows) == -(-coded // 4000)
    assert [int(r[0]) for r in rows[:-1]] == [k * 4000 * 24000 // coded for k in range(1, len(rows))]
    assert rows[-1][0] == "24000"
