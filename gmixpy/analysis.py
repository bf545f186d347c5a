"""Looking inside the model: how well each mixer input and each mixer alone predicts a text, and what weight the
network gives it (gmix's EnableAnalysis, extended).

`analyze(model, data)` (or `analyze_stream` on a file object) runs the data through the model exactly as
compression does (learning; or frozen, learn=False) and returns an `Analysis`:

* **bits alone**, for every row: the cross-entropy that row's logit alone would give, taken through logistic and
  clamped to [1e-4, 1 - 1e-4] like the coded probability.  Rows are the model inputs by their names from the
  specification (Specification.input_names()), then every mixer.  An input that is inactive (0) costs 1 bit per
  bit.  The final mixer's row is the ensemble's own cross-entropy.
* **the ensemble's bits**: -log2 of every coded probability, summed; and the coded stream itself (the analysis
  codes as it goes, with the same kernels as compression, so the archive it can write is byte-identical to
  `gmixpy compress --dictionary off`'s: the analysis is of the bytes as they are), whose size agrees with the
  cross-entropy to within a few bytes.
* **weights**.  The final mixer mixes mixer outputs (and the skip-connected inputs, the LSTM's), not the model
  inputs, so each input's weight is measured where it enters the network: `l0_weight` is the mean absolute weight
  the layer-0 mixers give it, over every bit and every layer-0 mixer, using the weight set that mixer's context
  selected for that bit, as it was when it made the prediction (a weight set not allocated yet counts as 0);
  weighted by use, since every bit counts once.  `l0_contribution` is the same mean of |weight * input|: how far,
  in logit units, the input moved a layer-0 mixer's output (an inactive input contributes nothing whatever its
  weight).  For the mixers (and the skip-connected inputs), `final_weight` / `final_contribution` are the same
  means for the final mixer's weight on them.
* **per-byte costs** of the first `map_bytes` bytes, for the surprise map (report_html.py).

A model of dictionary-coded text (Model.dictionary) is analyzed on the text's transform, as it reads text; bits per
byte are per byte of the text and the surprise map shows the text, each transformed byte's cost spread over the
letters it decodes to (_as_text).

All of it is accumulated inside the compiled kernel (engine.analyze_chunk): per row a float64 sum and a per-byte
product (one log per byte and row), never an array per bit.  It costs about 15% more time than compression with
`default` and 40% more with `tiny` (see the README).
"""
from __future__ import annotations

import io
import zlib
from dataclasses import dataclass, field, replace
from typing import BinaryIO

import numpy as np

from . import engine, presets
from .archive import DICTIONARY_HEADER_BYTES, FLAG_MODEL, Header
from .chunks import CHUNK, Progress, no_progress
from .codec import finish_archive
from .coder.arithmetic import coder_new
from .model import Model
from .preprocess.dictionary import Decoder, Dictionary, EncodingReader

MAP_BYTES = 256 * 1024  # default number of leading bytes whose costs are kept for the surprise map
SORTS = ("bpb", "weight", "order")


@dataclass
class Analysis:
    """The result of `analyze`.  Per-row arrays follow `names`: the model inputs, then the mixers."""

    names: list[str]
    kinds: list[str]                  # "input", "mixer" (layer 0 or 1) or "final"
    bits: np.ndarray                  # float64[rows], bits the row alone would have cost
    active: np.ndarray                # float64[rows], share of bits at which the row's logit was not 0
    l0_weight: np.ndarray             # float64[rows], mean |weight| in the layer-0 mixers (NaN for mixers)
    l0_contribution: np.ndarray       # float64[rows], mean |weight * input| in the layer-0 mixers (NaN for mixers)
    final_weight: np.ndarray          # float64[rows], mean |weight| in the final mixer (NaN if not read by it)
    final_contribution: np.ndarray    # float64[rows], mean |weight * input| in the final mixer (likewise)
    n_bytes: int
    ensemble_bits: float              # -log2 of the coded probabilities, summed
    stream_bytes: int                 # the coded stream's length
    header_bytes: int                 # the archive header's length (what `compress` adds to the stream)
    learn: bool
    source: str = ""                  # what model ran: "preset NAME" or a model file
    costs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # bits of each of the first bytes
    head: bytes = b""                 # those first bytes

    @property
    def ensemble_bpb(self) -> float:
        return self.ensemble_bits / self.n_bytes if self.n_bytes else 0.0

    @property
    def archive_bytes(self) -> int:
        return self.stream_bytes + self.header_bytes

    def bpb(self) -> np.ndarray:
        """Bits per byte of every row alone."""
        return self.bits / self.n_bytes if self.n_bytes else np.zeros_like(self.bits)

    def weight(self) -> np.ndarray:
        """The weight shown for each row: layer-0 weight for inputs, final-mixer weight for mixers."""
        return np.where(np.isnan(self.l0_weight), self.final_weight, self.l0_weight)

    def order(self, kind: str, sort: str = "bpb") -> list[int]:
        """Row indices of one kind ("input" or "mixer", the final mixer included) in the given order."""
        rows = [i for i, k in enumerate(self.kinds) if (k == kind or (kind == "mixer" and k == "final"))]
        if sort == "bpb":
            return sorted(rows, key=lambda i: (self.bits[i], i))
        if sort == "weight":
            w = np.nan_to_num(self.weight(), nan=-1.0)
            return sorted(rows, key=lambda i: (-w[i], i))
        return rows

    def summary(self) -> list[str]:
        setting = "learning (the compression setting)" if self.learn else "frozen (learning disabled)"
        archive = 8.0 * self.archive_bytes / self.n_bytes if self.n_bytes else 0.0
        return [
            f"{self.n_bytes:,} bytes, {setting}, {self.source}",
            f"ensemble: {self.ensemble_bpb:.4f} bits per byte ({self.ensemble_bits / 8:,.1f} bytes of cross-entropy); "
            f"coded stream {self.stream_bytes:,} bytes + {self.header_bytes}-byte header = {self.archive_bytes:,} "
            f"bytes ({archive:.4f} bits per byte)",
        ]

    def table(self, sort: str = "bpb") -> str:
        """The readable table: the model inputs, then the mixers, each sorted by `sort` (bpb, weight, order)."""
        bpb = self.bpb()
        ens = self.ensemble_bpb

        def num(v, fmt):
            return format("-", f">{fmt.split('.')[0]}") if np.isnan(v) else format(v, fmt)

        width = max(24, max(len(n) for n in self.names))
        head = (f"{'':>{width}}  {'bpb alone':>9} {'- ensemble':>10} {'active':>7} {'l0 |w|':>8} {'l0 |w*x|':>8} "
                f"{'final |w|':>9} {'final |w*x|':>11}")
        lines = []
        for kind, title in (("input", "model inputs"), ("mixer", "mixers (the final mixer's row is the ensemble)")):
            lines += ["", f"{title}, sorted by {sort}:", head]
            for i in self.order(kind, sort):
                lines.append(f"{self.names[i]:<{width}}  {bpb[i]:9.4f} {bpb[i] - ens:+10.4f} "
                             f"{100 * self.active[i]:6.1f}% {num(self.l0_weight[i], '8.4f')} "
                             f"{num(self.l0_contribution[i], '8.4f')} {num(self.final_weight[i], '9.4f')} "
                             f"{num(self.final_contribution[i], '11.4f')}")
        return "\n".join(self.summary() + lines)

    def tsv(self) -> str:
        """Every row in specification order, tab-separated with a header line; the first row is the ensemble."""
        cols = "kind\tindex\tname\tbits\tbpb\tactive\tl0_weight\tl0_contribution\tfinal_weight\tfinal_contribution"
        out = [cols, f"ensemble\t-1\tensemble\t{self.ensemble_bits:.6f}\t{self.ensemble_bpb:.6f}\t1\t\t\t\t"]
        bpb = self.bpb()

        def num(v):
            return "" if np.isnan(v) else f"{v:.6g}"

        for i, name in enumerate(self.names):
            out.append(f"{self.kinds[i]}\t{i}\t{name}\t{self.bits[i]:.6f}\t{bpb[i]:.6f}\t{self.active[i]:.6f}\t"
                       f"{num(self.l0_weight[i])}\t{num(self.l0_contribution[i])}\t{num(self.final_weight[i])}\t"
                       f"{num(self.final_contribution[i])}")
        return "\n".join(out) + "\n"


def archive_header(model: Model, preset: str | None, size_class: int = 0) -> Header:
    """The header `gmixpy compress --dictionary off` writes for this model: a preset's name and size class (the
    model must then be what codec.start_archive made for them) or, with preset None, the model's digest."""
    if preset:
        return Header(0, 0, presets.get(preset).digest(), preset, size_class=size_class)
    return Header(0, 0, model.spec.digest(), "", model.digest(), FLAG_MODEL)


def _sums(model: Model, map_bytes: int) -> engine.AnalysisSums:
    n_in = len(model.spec.input_names())
    rows = n_in + len(model.spec.mixers)
    final_width = int(model.params.mixer.width[-1])
    return engine.AnalysisSums(
        bits=np.zeros(rows), product=np.ones(rows), logits=np.zeros(rows + 8, np.float32),
        active=np.zeros(rows, np.int64), weight0=np.zeros(n_in), contribution0=np.zeros(n_in),
        weight_final=np.zeros(final_width), contribution_final=np.zeros(final_width), ensemble=np.zeros(1),
        counted=np.zeros(1, np.int64), costs=np.zeros(map_bytes, np.float32))


def analyze_stream(model: Model, src: BinaryIO, learn: bool = True, *, map_bytes: int = MAP_BYTES,
                   archive: BinaryIO | None = None, preset: str | None = None, size_class: int = 0, source: str = "",
                   progress: Progress = no_progress) -> Analysis:
    """Analyze everything src holds (see the module docstring); the model learns as it reads when `learn` (and is
    modified in either case: its running state moves on).  With `archive` (a seekable binary file, learning
    only), the archive `gmixpy compress` would write is written to it: the header names `preset` when given (the
    model must then be a fresh Model.new(preset)), else the model's digest as it was before the run."""
    if archive is not None and not learn:
        raise ValueError("an archive can only be written while learning (decompression learns)")
    if map_bytes < 0:
        raise ValueError("map_bytes must not be negative")
    reader = None
    if model.dictionary:  # the model reads the text's transform (see _as_text)
        if archive is not None:
            raise ValueError("an archive cannot be written for a model of dictionary-coded text: compress with it")
        src = reader = EncodingReader(src)
    header = archive_header(model, preset, size_class)
    model.changed()
    sums = _sums(model, map_bytes)
    coder = coder_new()
    out = np.empty(CHUNK * engine.OUT_BYTES_PER_BYTE + 16, np.uint8)
    start = archive.tell() if archive is not None else 0
    if archive is not None:
        archive.write(header.encode())
    total = stream = crc = 0
    head = bytearray()
    while block := src.read(CHUNK):
        data = np.frombuffer(block, np.uint8)
        crc = zlib.crc32(block, crc)
        if len(head) < map_bytes:
            head += block[:map_bytes - len(head)]
        i = 0
        while i < len(data):
            j = i
            i, n = engine.analyze_chunk(model.params, model.ltm, model.stm, coder, sums, data, i, len(data), learn,
                                        out, 0, total)
            stream += n
            if archive is not None:
                archive.write(out[:n].tobytes())
            progress(i - j)
            if i < len(data):
                model.room()
        total += len(block)
    n = engine.compress_finish(coder, out, 0)
    stream += n
    if archive is not None:
        archive.write(out[:n].tobytes())
        finish_archive(archive, start, header, total, crc)
    result = _result(model, sums, total, stream, header.size, learn, source, bytes(head))
    return result if reader is None else _as_text(result, reader.consumed)


def _as_text(result: Analysis, n_bytes: int) -> Analysis:
    """The analysis of a model of dictionary-coded text, which ran on the transform of `n_bytes` bytes of text, told
    per byte of that text: the bits per byte divide by n_bytes, the archive header is what `compress --model`
    writes with the transform, and the surprise map's costs move from the transformed bytes to the text they
    decode to.  Each transformed byte's cost goes to the text its arrival completes in the decoder (a word code
    to its word's letters, evenly), and the cost of a byte that completes nothing (a flag, the first byte of a
    longer code) waits for the next text, so the costs still add up to what the bytes cost."""
    decoder = Decoder(Dictionary.english(), lenient=True)
    costs: list[np.ndarray] = []
    text: list[bytes] = []
    pending = 0.0
    for i in range(len(result.costs)):
        pending += float(result.costs[i])
        out = decoder.feed(result.head[i:i + 1])
        if out:
            costs.append(np.full(len(out), pending / len(out), np.float32))
            text.append(out)
            pending = 0.0
    if pending and costs:
        costs[-1][-1] += pending
    return replace(result, n_bytes=n_bytes, header_bytes=result.header_bytes + DICTIONARY_HEADER_BYTES,
                   costs=np.concatenate(costs) if costs else np.zeros(0, np.float32), head=b"".join(text))


def analyze(model: Model, data: bytes, learn: bool = True, *, map_bytes: int = MAP_BYTES, preset: str | None = None,
            source: str = "") -> Analysis:
    """Analyze `data` under `model` (learning as compression does, or frozen with learn=False); the model is
    modified as it reads.  See the module docstring for what is measured.  `preset` only names the archive
    header whose size is reported (a fresh preset's; by default a model's, as `compress --model` writes).

    >>> from gmixpy.model import Model
    >>> result = analyze(Model.new("tiny"), b"an example " * 50)
    >>> print(result.table())            # doctest: +SKIP
    """
    return analyze_stream(model, io.BytesIO(bytes(data)), learn, map_bytes=map_bytes, preset=preset, source=source)


def analyze_file(model: Model, path: str, learn: bool = True, *, map_bytes: int = MAP_BYTES,
                 archive_path: str | None = None, force: bool = False, preset: str | None = None, size_class: int = 0,
                 source: str = "", progress: Progress = no_progress) -> Analysis:
    """analyze_stream on a file; with archive_path the archive is written there atomically (refused if it exists,
    unless force)."""
    from .files import atomic_output

    options = dict(map_bytes=map_bytes, preset=preset, size_class=size_class, source=source, progress=progress)
    with open(path, "rb") as src:
        if archive_path is None:
            return analyze_stream(model, src, learn, **options)
        with atomic_output(archive_path, force) as dst:
            return analyze_stream(model, src, learn, archive=dst, **options)


def _result(model: Model, sums: engine.AnalysisSums, n_bytes: int, stream: int, header_bytes: int, learn: bool,
            source: str, head: bytes) -> Analysis:
    spec, mp = model.spec, model.params.mixer
    inputs = spec.input_names()
    n_in, layers = len(inputs), [m.layer for m in spec.mixers]
    n0, n_skip = layers.count(0), len(mp.skip_index)
    rows = n_in + len(layers)
    counted = max(int(sums.counted[0]), 1)
    l0_weight = np.full(rows, np.nan)
    l0_contribution = np.full(rows, np.nan)
    l0_weight[:n_in] = sums.weight0 / (counted * n0)
    l0_contribution[:n_in] = sums.contribution0 / (counted * n0)
    # The final mixer reads [layer-0 outputs | skip-connected inputs | layer-1 outputs]: map those to rows.
    final_rows = [n_in + k for k in range(n0)] + [int(i) for i in mp.skip_index] + \
                 [n_in + n0 + k for k in range(layers.count(1))]
    final_weight = np.full(rows, np.nan)
    final_contribution = np.full(rows, np.nan)
    final_weight[final_rows] = sums.weight_final[:len(final_rows)] / counted
    final_contribution[final_rows] = sums.contribution_final[:len(final_rows)] / counted
    assert len(final_rows) == n0 + n_skip + layers.count(1)
    kinds = ["input"] * n_in + ["final" if layer == 2 else "mixer" for layer in layers]
    return Analysis(
        names=_unique(inputs + [m.name or f"mixer {k}" for k, m in enumerate(spec.mixers)]), kinds=kinds,
        bits=sums.bits.copy(), active=sums.active / counted, l0_weight=l0_weight, l0_contribution=l0_contribution,
        final_weight=final_weight, final_contribution=final_contribution, n_bytes=n_bytes,
        ensemble_bits=float(sums.ensemble[0]), stream_bytes=stream, header_bytes=header_bytes, learn=learn,
        source=source, costs=sums.costs[:min(n_bytes, len(sums.costs))].copy(), head=head)


def _unique(names: list[str]) -> list[str]:
    """The names, a repeated one numbered in order of appearance (gmix has two mixers named "Mixer0(last byte)")."""
    seen: dict[str, int] = {}
    total = {n: names.count(n) for n in names}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(f"{n} #{seen[n]}" if total[n] > 1 else n)
    return out
