"""The gmixpy command line.

Every command reports errors as one line on stderr with exit status 1 (usage errors: 2), never a traceback;
Ctrl-C exits with 130 and SIGTERM with 143, leaving no partial output.  Progress bars and summaries go to stderr,
so `-o -` output on stdout stays clean.
"""
from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import tempfile
import time

import click

from . import __version__


class Terminated(BaseException):
    """SIGTERM, turned into an exception so that clean-up runs."""


def _on_sigterm(signum, frame):
    raise Terminated()


def _describe_os_error(e: OSError) -> str:
    name = e.filename or ""
    if e.errno == errno.ENOSPC:
        return f"no space left on device{(' writing ' + str(name)) if name else ''}"
    if e.errno == errno.ENOENT:
        return f"{name}: no such file or directory"
    if e.errno == errno.EACCES:
        return f"{name}: permission denied"
    if e.errno == errno.EISDIR:
        return f"{name}: is a directory"
    if e.errno == errno.EEXIST:
        return f"{name} already exists (use --force to overwrite)"
    return f"{name + ': ' if name else ''}{e.strerror or e}"


def run_guarded(fn, *args, kept: str = "", left: str = "no partial output was left", checkpoint: str | None = None,
                **kwargs):
    """Run a command body, turning every expected failure into one line and an exit status.  On an interruption
    the line says what was `kept`, whether this run wrote a `checkpoint` to resume from, and what was `left`."""
    from .archive import ArchiveError
    from .files import OutputExists
    from .serialize import ModelFileError

    started = time.time()
    from . import _cache
    if _cache.cold and sys.stderr.isatty():  # else a silent minute at 0% looks like a hang
        click.echo("gmixpy: first run of this version: compiling the kernels (a few minutes, once)", err=True)

    def interrupted(how: str) -> str:
        said = [f"gmixpy: {how}"] + ([kept] if kept else [])
        if checkpoint:
            try:  # only a checkpoint written by this run belongs to it
                ours = os.stat(checkpoint).st_mtime >= started - 1
            except OSError:
                ours = False
            said.append(f"resume from the last checkpoint with: gmixpy resume {checkpoint}" if ours
                        else "no checkpoint had been written yet")
        return "\n" + "; ".join(said + [left])

    old = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return fn(*args, **kwargs)
    except (click.ClickException, click.exceptions.Exit, click.Abort):
        raise
    except KeyboardInterrupt:
        click.echo(interrupted("interrupted"), err=True)
        sys.exit(130)
    except Terminated:
        click.echo(interrupted("terminated"), err=True)
        sys.exit(143)
    except (ArchiveError, OutputExists, ModelFileError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        if isinstance(e, BrokenPipeError):
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
        raise click.ClickException(_describe_os_error(e)) from None
    except MemoryError:
        raise click.ClickException("out of memory") from None

    finally:
        signal.signal(signal.SIGTERM, old)


class Bar:
    """A tqdm progress bar on stderr counting bytes (silent with --quiet or when total is 0)."""

    def __init__(self, total, desc, quiet):
        self.bar = None
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1000, file=sys.stderr,
                            leave=False, dynamic_ncols=True, mininterval=0.5)

    def __call__(self, n):
        if self.bar is not None:
            self.bar.update(n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def summary(label, n_in, n_out, seconds, bits_base=None):
    bpb = 8.0 * (n_out if bits_base is None else bits_base) / n_in if n_in else 0.0
    rate = n_in / 1000.0 / seconds if seconds > 0 else 0.0
    return (f"{label}: {n_in:,} -> {n_out:,} bytes, {bpb:.4f} bits per byte, {seconds:.2f} s, "
            f"{rate:.2f} KB/s")


def _preset_choice():
    from .presets import PRESETS

    return click.Choice(sorted(PRESETS))


def checkpoint_options(what: str):
    """--checkpoint-every and --checkpoint, as compress and train take them."""
    def apply(command):
        command = click.option("--checkpoint", "checkpoint_path", type=click.Path(dir_okay=False),
                               help="Checkpoint path (default: OUTPUT.ckpt).")(command)
        return click.option("--checkpoint-every", type=click.IntRange(min=1), metavar="BYTES",
                            help=f"Write a resumable checkpoint every BYTES of {what}.")(command)
    return apply


def checkpoint_target(output: str, checkpoint_every: int | None, checkpoint_path: str | None) -> str | None:
    """Where this run's checkpoints go (OUTPUT.ckpt unless named), or None without --checkpoint-every."""
    return (checkpoint_path or output + ".ckpt") if checkpoint_every else None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="gmixpy")
def main():
    """gmixpy: a byte-level language model built from context-mixing compression (a Python port of gmix).

    \b
    Examples:
      gmixpy compress book.txt               # writes book.txt.gmx
      gmixpy decompress book.txt.gmx -o copy.txt
      gmixpy info book.txt.gmx
      gmixpy train corpus/ -o corpus.gmxm --test heldout.txt
      gmixpy generate corpus.gmxm --prompt "ROMEO:" -n 500 -t 0.8
      gmixpy eval corpus.gmxm heldout.txt --frozen

    Each command has its own --help.
    """


@main.command()
@click.argument("input", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("-o", "--output", help="Output path (default: INPUT.gmx; '-' for stdout).")
@click.option("-p", "--preset", default="default", show_default=True, type=_preset_choice(),
              help="Model preset (not with --model).")
@click.option("-m", "--model", "model_path", type=click.Path(dir_okay=False),
              help="Start from this trained model file; decompressing then needs the same file.")
@checkpoint_options("input")
@click.option("-f", "--force", is_flag=True, help="Overwrite the output if it exists.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@click.pass_context
def compress(ctx, input, output, preset, model_path, checkpoint_every, checkpoint_path, force, quiet):
    """Compress INPUT ('-' for stdin) into a .gmx archive.

    \b
    Examples:
      gmixpy compress data/alice29.txt -o alice.gmx --preset fast
      gmixpy compress big.txt --model shakespeare.gmxm
      gmixpy compress big.txt --checkpoint-every 1000000   # then, if interrupted: gmixpy resume big.txt.gmx.ckpt
    """
    from .files import same_file

    if output is None:
        if input == "-":
            raise click.UsageError("reading stdin needs -o OUTPUT (or -o - for stdout)")
        output = input + ".gmx"
    if same_file(input, output):
        raise click.ClickException("input and output are the same file")
    if model_path and ctx.get_parameter_source("preset") == click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("--preset and --model exclude each other: the model file fixes the specification")
    if checkpoint_every and (input == "-" or output == "-"):
        raise click.UsageError("checkpoints need a file as input and as output")
    checkpoint_path = checkpoint_target(output, checkpoint_every, checkpoint_path)

    def body():
        from .runs import CompressState, start_compression

        st = CompressState(input=input, output=output, preset=preset, model_path=model_path, force=force,
                           checkpoint_every=checkpoint_every or 0, checkpoint=checkpoint_path)
        _compress_run(start_compression(st), st, quiet)

    run_guarded(body, kept=f"{input} is intact", checkpoint=checkpoint_path)


def _compress_run(model, st, quiet):
    from .runs import run_compression

    start = time.perf_counter()
    bar = Bar(st.size, "compress", quiet or not st.size)
    bar(st.pos)
    try:
        total, end = run_compression(model, st, bar)
    finally:
        bar.close()
    if not quiet:
        click.echo(summary(st.input, total, end, time.perf_counter() - start), err=True)


@main.command()
@click.argument("input", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("-o", "--output", help="Output path (default: INPUT without .gmx; '-' for stdout).")
@click.option("-m", "--model", "model_path", type=click.Path(dir_okay=False),
              help="The model file the archive was compressed with.")
@click.option("-f", "--force", is_flag=True, help="Overwrite the output if it exists.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def decompress(input, output, model_path, force, quiet):
    """Decompress a .gmx archive INPUT ('-' for stdin).  The output is written only once its CRC32 matches.

    \b
    Example:  gmixpy decompress alice.gmx -o alice.txt
    """
    from .codec import decompress_file
    from .files import atomic_output, open_input, same_file

    if output is None:
        if input == "-" or not input.endswith(".gmx") or input == ".gmx":
            raise click.UsageError("cannot derive the output name: pass -o OUTPUT")
        output = input[:-4]
    if same_file(input, output):
        raise click.ClickException("input and output are the same file")

    def body():
        from . import serialize

        model = serialize.load(model_path) if model_path else None
        with contextlib.ExitStack() as stack:
            src, size = stack.enter_context(open_input(input))
            if size is None:  # stdin: spool it, so that the stream length is known and bounds the decoder
                spool = stack.enter_context(tempfile.TemporaryFile())
                while block := src.read(1 << 20):
                    spool.write(block)
                size = spool.tell()
                spool.seek(0)
                src = spool
            start = time.perf_counter()
            from .codec import read_header

            header = read_header(src, size)
            src.seek(0)
            bar = Bar(header.length, "decompress", quiet or header.length == 0)
            try:
                with atomic_output(output, force) as dst:
                    decompress_file(src, dst, size, model=model, progress=bar)
            finally:
                bar.close()
        if not quiet:
            click.echo(summary(input, header.length, size, time.perf_counter() - start), err=True)

    run_guarded(body, kept=f"{input} is intact")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
def info(file):
    """Print the header of an archive (or the summary of a model file)."""
    from .codec import read_header

    def body():
        with open(file, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            magic = f.read(4)
            f.seek(0)
            if magic == b"GMXP":
                h = read_header(f, size)
                bpb = 8.0 * size / h.length if h.length else 0.0
                click.echo(f"file:                  {file}")
                click.echo(f"format:                gmixpy archive, version {h.version}")
                click.echo(f"original length:       {h.length:,} bytes")
                click.echo(f"archive length:        {size:,} bytes ({bpb:.4f} bits per byte)")
                click.echo(f"CRC32 of original:     {h.crc32:08x}")
                click.echo(f"preset:                {h.preset or '(from a model file)'}")
                click.echo(f"specification digest:  {h.spec_digest.hex()}")
                click.echo(f"model digest:          {h.model_digest.hex() if h.with_model else '(none)'}")
                return
            from . import serialize

            if serialize.is_model_file(magic):
                for line in serialize.describe(file):
                    click.echo(line)
                return
            raise click.ClickException(f"{file}: not a gmixpy archive or model file")

    run_guarded(body)


@main.command()
@click.argument("data", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Model file to write.")
@click.option("-p", "--preset", default="default", show_default=True, type=_preset_choice(),
              help="Model preset for a new model (not with --from).")
@click.option("--from", "from_model", type=click.Path(dir_okay=False), help="Fine-tune this saved model.")
@click.option("--test", type=click.Path(dir_okay=False, exists=True),
              help="Held-out file: bits per byte measured at intervals on a copy of the model.")
@click.option("--test-every", type=click.IntRange(min=1), metavar="BYTES",
              help="Held-out interval (default: a tenth of the training data).")
@click.option("--metrics", type=click.Path(dir_okay=False), help="Write bytes/train/held-out bits per byte (TSV).")
@checkpoint_options("training data")
@click.option("-f", "--force", is_flag=True, help="Overwrite the output model if it exists.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@click.pass_context
def train(ctx, data, output, preset, from_model, test, test_every, metrics, checkpoint_every, checkpoint_path,
          force, quiet):
    """Train a model on DATA (files or directories, read recursively in sorted order), streamed.

    \b
    Examples:
      gmixpy train corpus/ -o corpus.gmxm --test heldout.txt --metrics train.tsv
      gmixpy train more.txt --from corpus.gmxm -o tuned.gmxm
    With --test the best model by held-out score is kept beside OUTPUT as OUTPUT.best.gmxm (stem + .best).
    """
    if from_model and ctx.get_parameter_source("preset") == click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("--preset and --from exclude each other: the saved model fixes the specification")
    checkpoint_path = checkpoint_target(output, checkpoint_every, checkpoint_path)

    def body():
        from .runs import start_training

        model, st = start_training(list(data), output, None if from_model else preset, from_model, test=test,
                                   test_every=test_every or 0, metrics=metrics, checkpoint=checkpoint_path,
                                   checkpoint_every=checkpoint_every or 0, force=force)
        _train_loop(model, st, quiet)

    run_guarded(body, kept="the input files are intact", checkpoint=checkpoint_path)


def _train_loop(model, st, quiet):
    from .runs import best_path, held_out, run_training

    start = time.perf_counter()
    done_before = st.done
    bar = Bar(st.total, "train", quiet)
    bar(st.done)

    def on_eval(done, train_bpb, score):
        if bar.bar is not None:
            bar.bar.set_postfix_str(f"train {train_bpb:.4f} bpb, held-out {score:.4f} bpb")

    def progress(n):
        bar(n)
        if bar.bar is not None and st.done and (st.test is None):
            bar.bar.set_postfix_str(f"train {st.train_bits / st.done:.4f} bpb", refresh=False)

    try:
        run_training(model, st, progress, on_eval)
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    if not quiet:
        rate = (st.done - done_before) / 1000 / seconds if seconds > 0 else 0.0
        click.echo(f"trained on {st.done:,} bytes in {seconds:.1f} s ({rate:.2f} KB/s): "
                   f"{st.train_bits / max(st.done, 1):.4f} bits per byte (training)", err=True)
        if st.test:
            frozen = held_out(model, st.test, learn=False)
            click.echo(f"held-out {st.test}: {st.rows[-1][2]:.4f} bits per byte (learning), {frozen:.4f} "
                       f"(frozen); best {st.best:.4f}, kept in {best_path(st.output)}",
                       err=True)
        click.echo(f"model written to {st.output} ({os.path.getsize(st.output):,} bytes)", err=True)


@main.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False, exists=True))
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def resume(checkpoint, quiet):
    """Continue an interrupted `compress` or `train` run from its CHECKPOINT.

    The result is byte-identical to an uninterrupted run; the checkpoint is removed when the run completes.
    """
    def body():
        from .runs import TrainState, resume

        model, st = resume(checkpoint)
        if isinstance(st, TrainState):
            _train_loop(model, st, quiet)
        else:
            _compress_run(model, st, quiet)

    run_guarded(body, kept=f"the checkpoint is intact; resume again with: gmixpy resume {checkpoint}")


@main.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, exists=True))
@click.option("--prompt", help="Prompt text.")
@click.option("--prompt-file", type=click.Path(dir_okay=False, exists=True), help="Read the prompt from a file.")
@click.option("-n", "--bytes", "n_bytes", default=500, show_default=True, type=click.IntRange(min=0),
              help="Bytes to generate.")
@click.option("-t", "--temperature", default=1.0, show_default=True, type=click.FloatRange(min=0.0),
              help="Sampling temperature (gmix: bit logits are divided by it; below 0.001 counts as 0.001).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0, max=2**64 - 1),
              help="Random seed: the same seed gives the same text.")
@click.option("--learn-prompt", is_flag=True, help="Learn from the prompt (as gmix does); off by default, so the "
              "model's long-term memory is untouched.")
@click.option("-k", "--top-k", default=0, show_default=True, type=click.IntRange(min=0),
              help="Sample whole bytes from the K most likely next bytes only (0: no limit).")
@click.option("--top-p", default=1.0, show_default=True, type=click.FloatRange(0.0, 1.0, min_open=True),
              help="Sample whole bytes from the smallest most likely set holding this share of the probability "
              "(after --top-k; 1: no cut).")
@click.option("--stop", metavar="STRING", help="End where the generated text first contains STRING (not written; "
              "backslash escapes such as \\n are understood).")
@click.option("--echo-prompt", is_flag=True, help="Write the prompt before the generated text.")
@click.option("-o", "--output", help="Write to this file instead of stdout.")
@click.option("-f", "--force", is_flag=True, help="Overwrite the output if it exists.")
@click.option("-q", "--quiet", is_flag=True, help="No summary line.")
def generate(model_path, prompt, prompt_file, n_bytes, temperature, seed, learn_prompt, top_k, top_p, stop,
             echo_prompt, output, force, quiet):
    """Generate text from MODEL with learning disabled: bit by bit as gmix, or, with --top-k / --top-p, byte by
    byte from the exact next-byte distribution (computed from the model's 255 bit predictions down the byte's bit
    tree: about 15 times slower than plain sampling with `default`, 1,000 to 1,400 bytes per second against
    20,000 with a trained model; 30 times with `tiny`).

    \b
    Examples:
      gmixpy generate shakespeare.gmxm --prompt "ROMEO:" -n 500 -t 0.8 --seed 1
      gmixpy generate shakespeare.gmxm --prompt "ROMEO:" --echo-prompt --top-k 10 --top-p 0.9 --stop '\\n\\n'
    """
    if prompt is not None and prompt_file:
        raise click.UsageError("give --prompt or --prompt-file, not both")
    stop_bytes = _unescape(stop) if stop else b""

    def body():
        from . import serialize
        from .files import atomic_output
        from .generate import generate_bytes

        text = prompt.encode() if prompt is not None else (open(prompt_file, "rb").read() if prompt_file else b"")
        model = serialize.load(model_path)
        sampling = dict(top_k=top_k, top_p=top_p, stop=stop_bytes, echo_prompt=echo_prompt)
        start = time.perf_counter()
        if output:
            with atomic_output(output, force) as f:
                n = generate_bytes(model, text, n_bytes, temperature, seed, learn_prompt, f.write, **sampling)
        else:
            out = sys.stdout.buffer

            def emit(block):
                try:
                    out.write(block)
                    out.flush()
                except BrokenPipeError:
                    raise
                except OSError as e:
                    from .files import stdout_failed

                    raise stdout_failed(e) from None

            n = generate_bytes(model, text, n_bytes, temperature, seed, learn_prompt, emit, **sampling)
            if n and not quiet and sys.stdout.isatty():
                out.write(b"\n")
        seconds = time.perf_counter() - start
        if not quiet:
            click.echo(f"generated {n:,} bytes in {seconds:.2f} s ({n / seconds if seconds else 0:.1f} bytes/s)",
                       err=True)

    run_guarded(body, kept="the model file is intact",
                left="no partial output was left" if output else "the text generated so far went to stdout")


def _unescape(text: str) -> bytes:
    """A command-line string with backslash escapes (\\n, \\t, \\\\, \\xHH) as bytes (UTF-8)."""
    import codecs

    try:
        return codecs.escape_decode(text.encode("utf-8"))[0]
    except ValueError as e:
        raise click.UsageError(f"bad escape in {text!r}: {e}") from None


@main.command(name="eval")
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, exists=True))
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option("--frozen", is_flag=True, help="Learning disabled (the language-model setting, like a validation "
              "loss); by default the model learns as it reads (the compression setting).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def evaluate_command(model_path, file, frozen, quiet):
    """Bits per byte of FILE under MODEL.

    \b
    Example:  gmixpy eval shakespeare.gmxm heldout.txt --frozen
    """
    def body():
        from . import serialize
        from .runs import evaluate_file

        model = serialize.load(model_path)
        bar = Bar(os.path.getsize(file), "eval", quiet)
        try:
            n, bits = evaluate_file(model, file, learn=not frozen, progress=bar)
        finally:
            bar.close()
        click.echo(f"{file}: {n:,} bytes, {bits / n if n else 0.0:.4f} bits per byte "
                   f"({'frozen' if frozen else 'learning'})")

    run_guarded(body)


@main.command()
@click.argument("paths", nargs=-1, required=True, metavar="[MODEL] FILE")
@click.option("-p", "--preset", type=_preset_choice(), help="Analyze with a fresh model of this preset instead of "
              "a model file (the default with FILE alone: default).")
@click.option("--frozen", is_flag=True, help="Learning disabled (the language-model setting); by default the model "
              "learns as it reads, exactly as compression does.")
@click.option("--tsv", type=click.Path(dir_okay=False), help="Write every row's numbers as TSV.")
@click.option("--html", type=click.Path(dir_okay=False), help="Write the surprise map: a self-contained page with "
              "the text shaded by each byte's cost (the first --map-bytes bytes; the totals cover the whole file).")
@click.option("--plot", type=click.Path(dir_okay=False), help="Draw the per-row bars as PNG (needs gmixpy[plot]).")
@click.option("--archive", type=click.Path(dir_okay=False), help="Also write the archive coded on the way, "
              "byte-identical to `gmixpy compress`'s (not with --frozen).")
@click.option("--map-bytes", default=262144, show_default=True, type=click.IntRange(0, 1 << 22), metavar="BYTES",
              help="Bytes of the file drawn in the HTML map (at most 4 MiB; the page takes about 7 bytes per byte "
              "of text shown).")
@click.option("--sort", default="bpb", show_default=True, type=click.Choice(["bpb", "weight", "order"]),
              help="Order of the table's rows: bits per byte alone, weight, or the specification's order.")
@click.option("-f", "--force", is_flag=True, help="Overwrite outputs that exist.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def analyze(paths, preset, frozen, tsv, html, plot, archive, map_bytes, sort, force, quiet):
    """Run FILE through MODEL (or a fresh --preset) and report, for every model input and every mixer, the bits
    per byte it alone would give, the weight the network gives it, and the ensemble's bits per byte.

    \b
    Examples:
      gmixpy analyze book.txt --html book.html                  # a fresh `default` model, learning
      gmixpy analyze shakespeare.gmxm heldout.txt --frozen --tsv rows.tsv --plot rows.png
    The HTML page shows the first --map-bytes bytes (256 KiB) shaded and says how many more there are.
    """
    from .files import OutputExists, same_file

    if len(paths) > 2:
        raise click.UsageError("give MODEL FILE, or FILE with --preset")
    if len(paths) == 2 and preset:
        raise click.UsageError("--preset and MODEL exclude each other: the model file fixes the specification")
    model_path, file = (paths[0], paths[1]) if len(paths) == 2 else (None, paths[0])
    if archive and frozen:
        raise click.UsageError("--archive needs learning (decompression learns): drop --frozen")
    outputs = [p for p in (tsv, html, plot, archive) if p]
    if len(set(outputs)) < len(outputs):
        raise click.UsageError("each output needs its own path")

    def body():
        from . import serialize
        from .analysis import analyze_file
        from .files import atomic_output
        from .model import Model

        for out in outputs:
            if same_file(file, out) or (model_path and same_file(model_path, out)):
                raise ValueError(f"{out} is one of the inputs: choose another output")
            if os.path.exists(out) and not force:
                raise OutputExists(f"{out} already exists (use --force to overwrite)")
        if plot:
            from .plot import pyplot

            pyplot()  # a missing extra is reported before the run, not after it
        model = serialize.load(model_path) if model_path else Model.new(preset or "default")
        bar = Bar(os.path.getsize(file), "analyze", quiet)
        try:
            result = analyze_file(model, file, learn=not frozen, map_bytes=map_bytes, archive_path=archive,
                                  force=force, preset=None if model_path else (preset or "default"),
                                  source=f"model {model_path}" if model_path else f"preset {preset or 'default'}",
                                  progress=bar)
        finally:
            bar.close()
        click.echo(f"{file}: " + result.table(sort))
        writers = []
        if tsv:
            writers.append((tsv, lambda f: f.write(result.tsv().encode())))
        if html:
            from .report_html import render

            writers.append((html, lambda f: f.write(render(result, os.path.basename(file)).encode())))
        if plot:
            from .plot import plot_analysis

            writers.append((plot, lambda f: plot_analysis(result, f, f"{os.path.basename(file)}: {result.source}")))
        for path, write in writers:
            with atomic_output(path, force) as f:
                write(f)
            if not quiet:
                click.echo(f"wrote {path} ({os.path.getsize(path):,} bytes)", err=True)

    run_guarded(body, kept=f"{file} is intact")


@main.command()
@click.argument("metrics", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--title", help="Title of the picture.")
@click.option("-f", "--force", is_flag=True, help="Overwrite the output if it exists.")
def plot(metrics, output, title, force):
    """Draw training and held-out bits per byte against bytes seen, from the TSV files `train --metrics` writes
    (one colour per file), as PNG.  Needs matplotlib: pip install 'gmixpy[plot]'.

    \b
    Example:  gmixpy plot train.tsv -o curve.png
    """
    def body():
        from .files import atomic_output
        from .plot import plot_metrics, pyplot, read_metrics

        pyplot()
        for path in metrics:
            read_metrics(path)  # a bad file is reported before anything is written
        with atomic_output(output, force) as f:
            plot_metrics(list(metrics), f, title or "")

    run_guarded(body)


if __name__ == "__main__":  # pragma: no cover
    main()
