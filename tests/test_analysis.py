"""`analyze`: per-input and per-mixer costs, weights, the ensemble against the coded size, archives unchanged by
the analysis, the HTML surprise map (in headless Chromium when it is installed) and the pictures."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import gmixpy
from gmixpy import serialize
from gmixpy.analysis import analyze, analyze_stream
from gmixpy.chunks import evaluate, trace
from gmixpy.model import Model, walk
from gmixpy.report_html import cost_class, render
from helpers import assert_one_line_error, no_temporaries, run, save_trained_tiny, trained_tiny, usage_error

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def text(alice) -> bytes:
    return alice[:6000]


@pytest.fixture(scope="module")
def result(text):
    return analyze(Model.new("tiny"), text, preset="tiny", source="preset tiny")


def test_ensemble_is_the_coded_size(result, text):
    # the same kernels as compression: the archive's size is the analysis's, and the cross-entropy agrees with it
    assert result.archive_bytes == len(gmixpy.compress(text, preset="tiny", dictionary="off"))
    assert abs(result.ensemble_bits / 8 - result.stream_bytes) < 8
    assert result.ensemble_bits == pytest.approx(evaluate(Model.new("tiny"), text, learn=True), rel=1e-12)
    # the map's costs add up to the ensemble; the final mixer's row is the ensemble where no APM stage follows it
    final = result.kinds.index("final")
    assert Model.new("tiny").spec.apms and result.bits[final] != result.ensemble_bits
    plain = analyze(Model.new("gmix-tiny"), text)
    assert plain.bits[plain.kinds.index("final")] == pytest.approx(plain.ensemble_bits, rel=1e-9)
    assert float(result.costs.astype(np.float64).sum()) == pytest.approx(result.ensemble_bits, rel=1e-6)
    assert len(result.costs) == len(text) and result.head == text


def test_map_costs_across_chunks(alice):
    """Past the first 16 KiB block too, each byte's cost lands at its own position; bytes past map_bytes are not
    kept."""
    got = analyze(Model.new("tiny"), alice[:40000], map_bytes=30000)
    assert len(got.costs) == 30000 and got.head == alice[:30000]
    assert float(got.costs.astype(np.float64).sum()) == pytest.approx(
        evaluate(Model.new("tiny"), alice[:30000], learn=True), rel=1e-6)
    assert (got.costs > 0).all()


def test_rows_are_the_inputs_and_mixers(result):
    spec = Model.new("tiny").spec
    assert result.names[:len(spec.input_names())] == spec.input_names()
    assert len(result.names) == len(spec.input_names()) + len(spec.mixers) == len(set(result.names))
    assert result.kinds.count("final") == 1 and result.kinds[-1] == "final"
    n_in = len(spec.input_names())
    assert not np.isnan(result.l0_weight[:n_in]).any() and np.isnan(result.l0_weight[n_in:]).all()
    # the final mixer reads every layer-0 and layer-1 mixer and the skip-connected LSTM, nothing else
    reads = ~np.isnan(result.final_weight)
    assert reads[n_in:-1].all() and not reads[-1]
    assert [result.names[i] for i in np.flatnonzero(reads[:n_in])] == ["LSTM"]
    assert (result.bpb() > 0).all() and (result.bpb() < 8 * 13.3).all()


def test_input_costs_match_the_traced_inputs(text):
    """The kernel's per-input sums against the same costs computed here from every bit's traced inputs."""
    model = Model.new("tiny")
    n = len(model.spec.input_names())
    inputs = np.zeros((8 * len(text), n), np.float32)
    trace(model, text, learn=True, inputs=inputs)
    bits = np.unpackbits(np.frombuffer(text, np.uint8)).astype(bool)
    p = np.clip(1.0 / (1.0 + np.exp(-inputs.astype(np.float64))), 1e-4, 1 - 1e-4)
    cost = -np.log2(np.where(bits[:, None], p, 1.0 - p)).sum(axis=0)
    got = analyze(Model.new("tiny"), text)
    assert np.allclose(got.bits[:n], cost, rtol=1e-5)
    assert np.array_equal(got.active[:n], (inputs != 0).mean(axis=0))


def test_weights_measure_the_weight_sets_used(alice):
    """Frozen, every weight of the network set to 0.25: each input gets the same mean |weight| (0.25 times the
    share of layer-0 mixer uses that found an allocated weight set), and so does every row of the final mixer."""
    model = trained_tiny(alice[:8000])
    used = int(model.ltm.mixer.weights_used[0])
    model.ltm.mixer.weights[:used] = 0.25
    got = analyze(model, alice[8000:10000], learn=False)
    n_in = len(model.spec.input_names())
    w = got.l0_weight[:n_in]
    assert np.allclose(w, w[0], rtol=1e-12) and 0.2 < w[0] <= 0.25
    f = got.final_weight[~np.isnan(got.final_weight)]
    assert np.allclose(f, 0.25)  # one final weight set, always allocated after training
    # a fresh model that does not learn has no weight sets at all: every mixer says 0, the ensemble 8 bits a byte
    fresh = analyze(Model.new("tiny"), alice[:2000], learn=False)
    assert fresh.ensemble_bpb == pytest.approx(8.0)
    assert not fresh.l0_weight[:n_in].any() and not np.nan_to_num(fresh.final_weight).any()


def test_frozen_analysis_leaves_long_term_memory_alone(alice):
    """With learning disabled the analysis writes no long-term memory (tables, weights, LSTM: bit-identical), and it
    measures what frozen evaluation measures."""
    model = trained_tiny(alice[:8000])
    before = model.copy()
    got = analyze(model, alice[8000:11000], learn=False)
    for (name, a), (_, b) in zip(walk(model.ltm), walk(before.ltm)):
        assert np.array_equal(a, b), name
    assert got.ensemble_bits == pytest.approx(evaluate(before.copy(), alice[8000:11000], learn=False), rel=1e-12)


def test_analysis_archive_is_byte_identical(text, tmp_path):
    out = io.BytesIO()
    analyze_stream(Model.new("tiny"), io.BytesIO(text), archive=out, preset="tiny")
    assert out.getvalue() == gmixpy.compress(text, preset="tiny", dictionary="off")
    # and with a model file, from the command line, next to every other output
    model = save_trained_tiny(tmp_path / "m.gmxm", text[:3000])
    sample = tmp_path / "in.txt"
    sample.write_bytes(text[3000:])
    assert run("compress", sample, "--model", model, "-o", tmp_path / "a.gmx", "-q").returncode == 0
    proc = run("analyze", model, sample, "--archive", tmp_path / "b.gmx", "--tsv", tmp_path / "t.tsv", "--html",
               tmp_path / "p.html", "-q")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "a.gmx").read_bytes() == (tmp_path / "b.gmx").read_bytes()
    back = run("decompress", tmp_path / "b.gmx", "--model", model, "-o", tmp_path / "back.txt")
    assert back.returncode == 0 and (tmp_path / "back.txt").read_bytes() == text[3000:]


def test_cli_table_tsv_and_errors(tmp_path, text):
    sample = tmp_path / "in.txt"
    sample.write_bytes(text)
    proc = run("analyze", sample, "--preset", "tiny", "--tsv", tmp_path / "rows.tsv", "--sort", "weight", "-q")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert "ensemble:" in out and "cm_orders[last_byte]-stretch" in out and "Mixer(final layer)" in out
    rows = (tmp_path / "rows.tsv").read_text().splitlines()
    assert rows[0].startswith("kind\tindex\tname\tbits\tbpb") and rows[1].startswith("ensemble\t")
    assert len(rows) == 2 + len(Model.new("tiny").spec.input_names()) + len(Model.new("tiny").spec.mixers)
    # outputs are not overwritten without --force, and every mistake is one line
    assert_one_line_error(run("analyze", sample, "--preset", "tiny", "--tsv", tmp_path / "rows.tsv"), "--force")
    usage_error(run("analyze", sample, "--preset", "tiny", "--frozen", "--archive", tmp_path / "x.gmx"), "--archive")
    usage_error(run("analyze", "a", "b", "c"), "MODEL FILE")
    assert_one_line_error(run("analyze", tmp_path / "missing.txt", "--preset", "tiny"), "no such file")
    assert_one_line_error(run("analyze", sample, sample, "--tsv", tmp_path / "t2.tsv"), "model file")
    assert_one_line_error(run("analyze", sample, "--preset", "tiny", "--html", sample, "--force"),
                          "one of the inputs")
    assert no_temporaries(tmp_path)


def test_html_page(binary_sample):
    data = "Ünïcödé text\twith\r\nlines and a \u20ac sign.\n".encode() * 20 + binary_sample[:500] + b"\xe2\x82"
    model = Model.new("tiny")
    page = render(analyze(model, data, map_bytes=len(data) - 100), "mixed <input>")
    assert page.startswith("<!DOCTYPE html>") and "mixed &lt;input&gt;" in page
    # self-contained: no script, nothing fetched
    lowered = page.lower()
    assert "<script" not in lowered and "src=" not in lowered and "url(" not in lowered and "<link" not in lowered
    # characters, marks and escapes
    assert "Ünïcödé" in page and "\u20ac" in page and "\u21b5" in page and "\u2192" in page
    assert "\\x00" in page
    assert f"Showing the first {len(data) - 100:,} of {len(data):,} bytes" in page
    assert "cm_orders[last_byte]-stretch" in page and "Mixer(final layer)" in page
    assert cost_class(0.1) == 0 and cost_class(0.5) == 1 and cost_class(100) == 11
    # bounded: a few bytes of page per byte shown, and a table row per input and mixer
    rows = len(model.spec.input_names()) + len(model.spec.mixers)
    assert len(page.encode()) < 20 * len(data) + 250 * rows + 20000


def test_html_map_of_an_empty_file():
    page = render(analyze(Model.new("tiny"), b""), "empty")
    assert "0 bytes" in page and "<pre class=map></pre>" in page


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium; "
                    "`make html-check` does it)")
def test_html_page_in_chromium(tmp_path, alice):
    page = tmp_path / "alice.html"
    page.write_text(render(analyze(Model.new("tiny"), alice[:4000]), "alice29.txt"), encoding="utf-8")
    profile = tempfile.mkdtemp(dir=tmp_path)
    shot = tmp_path / "shot.png"
    base = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run(base + ["--dump-dom", page.as_uri()], capture_output=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert b"Surprise map of alice29.txt" in dom.stdout and b"<table>" in dom.stdout
    proc = subprocess.run(base + ["--window-size=1200,900", f"--screenshot={shot}", page.as_uri()],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    matplotlib_image = pytest.importorskip("matplotlib.image", reason="reading the screenshot needs gmixpy[plot]")

    pixels = matplotlib_image.imread(str(shot))
    assert pixels.shape[:2] == (900, 1200)
    # the page is drawn: many colours, shades of the map among them (red well above blue somewhere)
    rgb = pixels[..., :3].reshape(-1, 3)
    assert len(np.unique((rgb * 255).astype(np.uint8), axis=0)) > 50
    assert ((rgb[:, 0] - rgb[:, 2]) > 0.5).mean() > 0.01


def test_plots(tmp_path, alice):
    pytest.importorskip("matplotlib", reason="the plot extra (gmixpy[plot]) is not installed")
    import matplotlib.image

    train, held = tmp_path / "train.txt", tmp_path / "held.txt"
    train.write_bytes(alice[:12000])
    held.write_bytes(alice[20000:22000])
    proc = run("train", train, "--preset", "tiny", "--test", held, "--test-every", 3000, "--metrics",
               tmp_path / "m.tsv", "-o", tmp_path / "m.gmxm", "-q")
    assert proc.returncode == 0, proc.stderr
    proc = run("plot", tmp_path / "m.tsv", "-o", tmp_path / "curve.png")
    assert proc.returncode == 0, proc.stderr
    assert matplotlib.image.imread(str(tmp_path / "curve.png")).shape[:2] == (500, 800)
    assert_one_line_error(run("plot", tmp_path / "m.tsv", "-o", tmp_path / "curve.png"), "--force")
    proc = run("analyze", tmp_path / "m.gmxm", held, "--frozen", "--plot", tmp_path / "bars.png", "-q")
    assert proc.returncode == 0, proc.stderr
    assert matplotlib.image.imread(str(tmp_path / "bars.png")).shape[1] == 1100
    bad = tmp_path / "bad.tsv"
    bad.write_text("bytes\ttrain_bpb\n1\t2\n")
    assert_one_line_error(run("plot", bad, "-o", tmp_path / "x.png"), "not a metrics TSV")
    assert not (tmp_path / "x.png").exists() and no_temporaries(tmp_path)


def test_plot_without_matplotlib_says_what_to_install(tmp_path):
    tsv = tmp_path / "m.tsv"
    tsv.write_text("bytes\ttrain_bpb\ttest_bpb\n1000\t3.0\t3.5\n")
    code = "import sys; sys.modules['matplotlib'] = None; from gmixpy.cli import main; main()"
    for args in (["plot", str(tsv), "-o", str(tmp_path / "c.png")],
                 ["analyze", str(tsv), "--preset", "tiny", "--plot", str(tmp_path / "b.png")]):
        proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, timeout=300,
                              env=dict(os.environ))
        assert_one_line_error(proc, "pip install 'gmixpy[plot]'")
    assert not Path(tmp_path / "c.png").exists()


def test_model_file_analysis_leaves_the_file_alone(tmp_path, text):
    model = save_trained_tiny(tmp_path / "m.gmxm", text)
    before = model.read_bytes()
    sample = tmp_path / "s.txt"
    sample.write_bytes(text[:1000])
    assert run("analyze", model, sample, "-q").returncode == 0
    assert model.read_bytes() == before
    assert serialize.load(str(model)).bytes_learned == len(text)

