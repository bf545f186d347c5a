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
    return f"{name + ': ' if name else ''}{e.strerror or e}"


def run_guarded(fn, *args, kept: str = "", **kwargs):
    """Run a command body, turning every expected failure into one line and an exit status."""
    from .archive import ArchiveError
    from .files import OutputExists

    old = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return fn(*args, **kwargs)
    except (click.ClickException, click.exceptions.Exit, click.Abort):
        raise
    except KeyboardInterrupt:
        click.echo(f"\ngmixpy: interrupted{'; ' + kept if kept else ''}; no partial output was left", err=True)
        sys.exit(130)
    except Terminated:
        click.echo(f"\ngmixpy: terminated{'; ' + kept if kept else ''}; no partial output was left", err=True)
        sys.exit(143)
    except (ArchiveError, OutputExists, ValueError) as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="gmixpy")
def main():
    """gmixpy: a byte-level language model built from context-mixing compression (a Python port of gmix).

    \b
    Examples:
      gmixpy compress book.txt               # writes book.txt.gmx
      gmixpy decompress book.txt.gmx -o copy.txt
      gmixpy info book.txt.gmx
    """


@main.command()
@click.argument("input", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("-o", "--output", help="Output path (default: INPUT.gmx; '-' for stdout).")
@click.option("-p", "--preset", default="default", show_default=True, type=_preset_choice(),
              help="Model preset (ignored with --model).")
@click.option("-m", "--model", "model_path", type=click.Path(dir_okay=False),
              help="Start from this trained model file (issue: model files).")
@click.option("-f", "--force", is_flag=True, help="Overwrite the output if it exists.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def compress(input, output, preset, model_path, force, quiet):
    """Compress INPUT ('-' for stdin) into a .gmx archive.

    \b
    Example:  gmixpy compress data/alice29.txt -o alice.gmx --preset fast
    """
    from .codec import compress_file
    from .files import atomic_output, open_input, same_file

    if output is None:
        if input == "-":
            raise click.UsageError("reading stdin needs -o OUTPUT (or -o - for stdout)")
        output = input + ".gmx"
    if same_file(input, output):
        raise click.ClickException("input and output are the same file")

    def body():
        model = _load_model(model_path) if model_path else None
        with open_input(input) as (src, size):
            start = time.perf_counter()
            bar = Bar(size, "compress", quiet or size == 0)
            try:
                with atomic_output(output, force) as dst:
                    n_in, n_out = compress_file(src, dst, preset=preset, model=model, progress=bar)
            finally:
                bar.close()
        if not quiet:
            click.echo(summary(input, n_in, n_out, time.perf_counter() - start), err=True)

    run_guarded(body, kept=f"{input} is intact")


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
        model = _load_model(model_path) if model_path else None
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


def _load_model(path):
    from . import serialize

    return serialize.load(path)


if __name__ == "__main__":  # pragma: no cover
    main()
