"""Pictures, with matplotlib (the optional extra `gmixpy[plot]`, Agg backend: no display needed).

`plot_metrics`: the training curve from the TSV `gmixpy train --metrics` writes (columns bytes, train_bpb,
test_bpb): training and held-out bits per byte against bytes seen.  `plot_analysis`: per-row bars of an Analysis,
bits per byte alone (with the ensemble's as a line) beside the weight the network gives each row.
"""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np

from .analysis import Analysis

INSTALL = "matplotlib is not installed: pip install 'gmixpy[plot]' (or pip install matplotlib)"


class MissingExtra(ValueError):
    """An optional dependency is missing (the message says what to install)."""


def pyplot():
    """matplotlib.pyplot on the Agg backend, or MissingExtra."""
    try:
        import matplotlib
    except ImportError:
        raise MissingExtra(INSTALL) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def read_metrics(path: str | Path) -> np.ndarray:
    """float64[rows, 3] (bytes, train_bpb, test_bpb) from a `train --metrics` TSV; ValueError naming the file when
    it is not one."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a metrics TSV (not text)") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or lines[0].split("\t") != ["bytes", "train_bpb", "test_bpb"]:
        raise ValueError(f"{path}: not a metrics TSV (expected the columns bytes, train_bpb, test_bpb that "
                         "`gmixpy train --metrics` writes)")
    rows = []
    for n, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        try:
            values = [float(c) for c in cells]
        except ValueError:
            values = []
        if len(values) != 3 or not all(np.isfinite(values)):
            raise ValueError(f"{path}: line {n} is not three numbers")
        rows.append(values)
    if not rows:
        raise ValueError(f"{path}: no measurements yet (the header only)")
    return np.array(rows, np.float64)


def plot_metrics(paths: list[str], out: BinaryIO, title: str = "") -> None:
    """Training (dashed) and held-out (solid) bits per byte against bytes seen, one colour per TSV, as PNG."""
    plt = pyplot()
    tables = [(p, read_metrics(p)) for p in paths]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    for k, (path, m) in enumerate(tables):
        color = f"C{k}"
        label = Path(path).name if len(tables) > 1 else ""
        ax.plot(m[:, 0], m[:, 2], "o-", color=color, label=f"held-out {label}".strip())
        ax.plot(m[:, 0], m[:, 1], "--", color=color, alpha=0.7, label=f"training {label}".strip())
    ax.set_xlabel("bytes seen")
    ax.set_ylabel("bits per byte")
    ax.set_title(title or "gmixpy training curve")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, format="png")
    plt.close(fig)


def plot_analysis(a: Analysis, out: BinaryIO, title: str = "") -> None:
    """Horizontal bars for every row, best first within the model inputs then the mixers: bits per byte alone
    (the ensemble's as a red line, 8 = no better than uniform) and the weight (layer-0 for inputs, final for
    mixers), as PNG."""
    plt = pyplot()
    rows = a.order("input", "bpb") + a.order("mixer", "bpb")
    bpb = a.bpb()[rows]
    weight = np.nan_to_num(a.weight()[rows])
    colors = ["C0" if a.kinds[i] == "input" else "C1" for i in rows]
    height = max(4.0, 0.16 * len(rows) + 1.5)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, height), dpi=100, sharey=True, layout="constrained",
                                      gridspec_kw={"width_ratios": [3, 2]})
    y = np.arange(len(rows))
    left.barh(y, bpb, color=colors, height=0.8)
    left.axvline(a.ensemble_bpb, color="red", linewidth=1, label=f"ensemble {a.ensemble_bpb:.3f}")
    left.set_yticks(y, [a.names[i] for i in rows], fontsize=6)
    left.set_ylim(len(rows) - 0.4, -0.6)  # best at the top, no empty margin
    left.set_xlabel("bits per byte, the row alone (blue: model inputs, orange: mixers)")
    left.set_xlim(0, max(8.0, float(bpb.max()) * 1.02))
    left.legend(loc="lower right")
    right.barh(y, weight, color=colors, height=0.8)
    right.set_xlabel("mean |weight|\n(inputs: layer-0 mixers; mixers: final mixer)")
    for ax in (left, right):
        ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle(title or "gmixpy analysis")
    fig.savefig(out, format="png")
    plt.close(fig)
