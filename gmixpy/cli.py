"""The gmixpy command line.

Every command reports errors as one line on stderr with exit status 1 (usage errors: 2), never a traceback;
Ctrl-C exits with 130 and SIGTERM with 143, leaving no partial output (but the partial archive a compression's
checkpoint goes on from, and the text `generate -o` had written).  Progress, notices and summaries go to
stderr (see console.py), so `-o -` output on stdout stays clean.  The conventions of xz and zstd hold where they
fit: -c/--stdout, -k/--keep (inputs are never deleted anyway), `gmixpy -d` for decompress, several inputs each to
its own output, -v/-q, "-" for stdin and stdout, no compressed data to a terminal without -f.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import stat
import sys
import tempfile
import time

import click

from . import __version__
from .console import (
    NORMAL,
    QUIET,
    VERBOSE,
    Bar,
    Stopwatch,
    Terminated,
    console,
    leave,
    raise_pending,
    shown,
    signals_caught,
    summary,
    watch_compiles,
)


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


def run_guarded(fn, *args, kept: str = "", left="no partial output was left", checkpoint: str | None = None,
                **kwargs):
    """Run a command body, turning every expected failure into one line and an exit status.  On an interruption
    the line says what was `kept`, whether this run wrote a `checkpoint` to resume from, and what was `left` (a
    string, or a function giving it at that moment)."""
    from .archive import ArchiveError
    from .files import OutputExists
    from .parallel import WorkerError
    from .serialize import ModelFileError

    started = time.time()
    watch_compiles()

    def interrupted(how: str) -> str:
        said = [f"gmixpy: {how}"] + ([kept] if kept else [])
        if checkpoint:
            try:  # only a checkpoint written by this run belongs to it
                ours = os.stat(checkpoint).st_mtime >= started - 1
            except OSError:
                ours = False
            said.append(f"resume from the last checkpoint with: gmixpy resume {checkpoint}" if ours
                        else "no checkpoint had been written yet")
        return "\n" + "; ".join(said + [left() if callable(left) else left])

    with signals_caught():
        try:
            result = fn(*args, **kwargs)
            if console.signal is not None:  # its exception was swallowed (see on_signal) and the work got done first
                click.echo(f"\ngmixpy: {'interrupted' if console.signal == signal.SIGINT else 'terminated'}; the work "
                           "was already complete", err=True)
                leave(130 if console.signal == signal.SIGINT else 143)
            return result
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo(interrupted("interrupted"), err=True)
            leave(130)
        except Terminated:
            click.echo(interrupted("terminated"), err=True)
            leave(143)
        except OutputExists as e:
            raise click.ClickException(f"{e.path} already exists (use --force to overwrite)") from None
        except (ArchiveError, ModelFileError, ValueError, WorkerError) as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:
            if isinstance(e, BrokenPipeError):
                with contextlib.suppress(OSError):
                    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                sys.exit(141)
            raise click.ClickException(_describe_os_error(e)) from None
        except MemoryError:
            raise click.ClickException("out of memory") from None


def for_each(inputs, one) -> None:
    """one(input) for every input in order.  As with xz, an input that fails is reported in its one line and the
    others go on; the exit status is then 1.  (An interruption stops them all.)"""
    failed = False
    for name in inputs:
        try:
            one(name)
        except click.ClickException as e:
            if len(inputs) == 1:
                raise
            e.show()
            failed = True
    if failed:
        sys.exit(1)


def _preset_choice():
    from .presets import PRESETS

    return click.Choice(sorted(PRESETS))


# What the presets are, for every --preset's help (the README's table says more).
PRESETS_HELP = ("default: the strongest (PPMd, the LSTM, context maps), up to about 1.5 GB (a short file needs "
                "less: its tables follow its size); fast: without PPMd and the "
                "LSTM, about 3 times as fast; gmix, gmix-fast: gmix's own ensembles, bit-exact; tiny, gmix-tiny: "
                "tables of a few KB, for tests.")


def checkpoint_options(what: str):
    """--checkpoint-every and --checkpoint, as compress and train take them."""
    def apply(command):
        command = click.option("--checkpoint", "checkpoint_path", type=click.Path(),
                               help="Checkpoint path (default: OUTPUT.ckpt).")(command)
        return click.option("--checkpoint-every", type=click.IntRange(min=1), metavar="BYTES",
                            help=f"Write a resumable checkpoint every BYTES of {what} (bytes as the model reads "
                            "them: after the dictionary transform, where it is used).")(command)
    return apply


def checkpoint_target(output: str, checkpoint_every: int | None, checkpoint_path: str | None) -> str | None:
    """Where this run's checkpoints go (OUTPUT.ckpt unless named), or None without --checkpoint-every."""
    return (checkpoint_path or output + ".ckpt") if checkpoint_every else None


class ByteSize(click.ParamType):
    """A number of bytes, with an optional binary suffix: 4096, 64K, 16M, 1G (K = 1,024; KiB and MiB are read too)."""
    name = "bytes"
    _FORM = re.compile(r"(\d+)([KMG]?)(?:I?B)?")

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        match = self._FORM.fullmatch(str(value).strip().upper())
        if not match:
            self.fail(f"{value!r} is not a size in bytes (such as 4096, 64K, 16M or 1G)", param, ctx)
        return int(match[1]) << {"": 0, "K": 10, "M": 20, "G": 30}[match[2]]


def block_size_option(command):
    """--block-size, as compress takes it."""
    from .archive import DEFAULT_BLOCK_SIZE

    def check(ctx, param, value):
        if value is not None and 0 < value < MIN_BLOCK_SIZE:
            raise click.BadParameter(f"a block holds at least {MIN_BLOCK_SIZE} bytes (0: one stream)")
        return value

    return click.option("--block-size", type=ByteSize(), metavar="BYTES", callback=check,
                        help=f"Cut inputs longer than this into blocks coded independently, each from the same "
                        f"starting model, so that -T can code them side by side (and decompress too); smaller "
                        f"blocks cost ratio.  0: one stream whatever the size.  Suffixes K, M, G (1M = 1,048,576).  "
                        f"Only the block size changes the archive's bytes, never -T.  [default: "
                        f"{DEFAULT_BLOCK_SIZE >> 20}M]")(command)


MIN_BLOCK_SIZE = 1024


def workers_options(what: str, same: str = ""):
    """-T/--threads and --scheduler, as compress and decompress take them."""
    def apply(command):
        command = click.option("--scheduler", metavar="ADDRESS",
                               help=f"{what} on the workers of a Dask cluster, whose scheduler is at ADDRESS "
                               f"(tcp://HOST:PORT){same}.  Needs pip install 'gmixpy[dask]'.")(command)
        return click.option("-T", "--threads", type=click.IntRange(min=0), metavar="N",
                            help=f"{what} in N worker processes (0: one per core) [default: 1].")(command)
    return apply


def workers_for(threads: int | None, scheduler: str | None):
    """The Workers that -T and --scheduler name; a missing Dask is said before any work."""
    from .parallel import DASK_MISSING, Workers

    if scheduler is not None:
        if threads is not None:
            raise click.UsageError("-T and --scheduler exclude each other: the cluster's workers code the blocks")
        try:
            import distributed  # noqa: F401 - only whether it is there
        except ImportError:
            raise click.ClickException(DASK_MISSING) from None
        import logging

        logging.getLogger("distributed").setLevel(logging.ERROR)  # its notices are not gmixpy's one-line messages
    return Workers(1 if threads is None else threads, scheduler)


def output_option(help: str, **kwargs):
    """-o/--output, shown as FILE in every command."""
    return click.option("-o", "--output", metavar="FILE", help=help, **kwargs)


def verbosity_options(command):
    """-q/--quiet and -v/--verbose (see console.py); the command passes them to set_verbosity."""
    command = click.option("-v", "--verbose", is_flag=True,
                           help="Also when stderr is not a terminal (a log): a progress line every tenth.")(command)
    return click.option("-q", "--quiet", is_flag=True,
                        help="Errors only: no progress, notices or summary.")(command)


def set_verbosity(quiet: bool, verbose: bool = False) -> None:
    console.verbosity = QUIET if quiet else VERBOSE if verbose else NORMAL


def stdout_keep_options(command):
    """-c/--stdout and -k/--keep, as in xz, gzip and zstd."""
    command = click.option("-k", "--keep", is_flag=True,
                           help="Keep the input files: always so (gmixpy never deletes its inputs); accepted for "
                           "xz and gzip habits.")(command)
    return click.option("-c", "--stdout", "to_stdout", is_flag=True, help="Write to stdout (like -o -).")(command)


def one_output(inputs: tuple[str, ...], output: str | None, to_stdout: bool) -> str | None:
    """The output that -o or -c names (None: each input's default), checked against the inputs."""
    if to_stdout:
        if output not in (None, "-"):
            raise click.UsageError("-c writes to stdout: do not also give -o")
        output = "-"
    if output is not None and output != "-" and len(inputs) > 1:
        raise click.UsageError("-o names one output: with several inputs, leave it out (each input gets its own)")
    if list(inputs).count("-") > 1:
        raise click.UsageError("stdin (-) can be read only once")
    return output


def interrupted_outside() -> None:
    """Ctrl-C outside a command's work (parsing arguments, importing): the same one line and status as inside."""
    click.echo("\ngmixpy: interrupted; no partial output was left", err=True)
    leave(130)


_DECOMPRESS_SHORT = re.compile(r"-[a-zA-Z]*d[a-zA-Z]*")


def decompress_shorthand(args: list[str]) -> list[str]:
    """`gmixpy -d ARGS` is `gmixpy decompress ARGS`, as `xz -d`; so are clusters such as -dc, -dk or -dcf
    (`decompress -c`, ...) and --decompress.  Only as the first argument."""
    if args and (args[0] == "--decompress" or _DECOMPRESS_SHORT.fullmatch(args[0])):
        rest = "" if args[0] == "--decompress" else args[0][1:].replace("d", "", 1)
        return ["decompress"] + (["-" + rest] if rest else []) + args[1:]
    return args


class Gmixpy(click.Group):
    """The top-level command: the -d shorthand, a fresh verbosity for every command (tests run several in one
    process), and Ctrl-C outside a command's work given the same one line and exit status as inside it."""

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, decompress_shorthand(list(args)))

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt:
            interrupted_outside()

    def invoke(self, ctx):
        console.verbosity = NORMAL
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            interrupted_outside()


@click.group(cls=Gmixpy, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="gmixpy")
def main():
    """gmixpy: a byte-level language model built from context-mixing compression (a Python port of gmix).

    \b
    Examples:
      gmixpy compress book.txt               # writes book.txt.gmx
      gmixpy decompress book.txt.gmx -o copy.txt
      gmixpy -d book.txt.gmx                 # the same as decompress, as with xz; -dc writes to stdout
      gmixpy info book.txt.gmx
      gmixpy train corpus/ -o corpus.gmxm --test heldout.txt
      gmixpy generate corpus.gmxm --prompt "ROMEO:" -n 500 -t 0.8
      gmixpy eval corpus.gmxm heldout.txt --frozen

    Each command has its own --help.
    """


@main.command(short_help="Compress files into .gmx archives.")
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True, type=click.Path(allow_dash=True))
@output_option("Output path (default: INPUT.gmx; stdout for stdin; '-' for stdout); one input only.")
@stdout_keep_options
@click.option("-p", "--preset", default="default", show_default=True, type=_preset_choice(),
              help="Model preset (not with --model).  " + PRESETS_HELP)
@click.option("-m", "--model", "model_path", metavar="FILE", type=click.Path(),
              help="Start from this trained model file; decompressing then needs the same file.")
@click.option("--dictionary", default="auto", show_default=True, type=click.Choice(["auto", "on", "off"]),
              help="Code English-like text as codes from a bundled English word list (undone by decompress): "
                   "auto when that shortens the input's first MiB by a tenth or more, with the presets default, "
                   "fast and tiny; with --model, when the model learned text that way (train --dictionary).")
@workers_options("Code the blocks", "; the same bytes as a local run")
@block_size_option
@checkpoint_options("input")
@click.option("-f", "--force", is_flag=True,
              help="Overwrite existing outputs; write compressed data to a terminal.")
@verbosity_options
@click.pass_context
def compress(ctx, inputs, output, to_stdout, keep, preset, model_path, dictionary, threads, scheduler, block_size,
             checkpoint_every, checkpoint_path, force, quiet, verbose):
    """Compress each INPUT ('-' for stdin) into its own .gmx archive.

    \b
    Examples:
      gmixpy compress data/alice29.txt -o alice.gmx --preset fast
      gmixpy compress a.txt b.txt            # writes a.txt.gmx and b.txt.gmx
      gmixpy compress big.txt --model shakespeare.gmxm
      gmixpy compress big.txt --checkpoint-every 1000000   # then, if interrupted: gmixpy resume big.txt.gmx.ckpt
      tar c dir | gmixpy compress - > dir.tar.gmx
      gmixpy compress big.txt -T 0 --block-size 4M         # 4 MiB blocks, coded on every core
      gmixpy compress big.txt --block-size 4M --scheduler tcp://10.0.0.1:8786   # on a Dask cluster

    Inputs of more than --block-size bytes are cut into blocks, coded independently; -T or --scheduler code them
    side by side, one input after the other.  Checkpoints code one stream (not with -T, --scheduler or
    --block-size).
    """
    set_verbosity(quiet, verbose)
    output = one_output(inputs, output, to_stdout)
    if to_stdout and len(inputs) > 1:
        raise click.UsageError("-c with several inputs would concatenate archives, which gmixpy does not decode: "
                               "compress one input at a time")
    if model_path and ctx.get_parameter_source("preset") == click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("--preset and --model exclude each other: the model file fixes the specification")
    outputs = {name: output or ("-" if name == "-" else name + ".gmx") for name in inputs}
    if checkpoint_every and "-" in list(inputs) + list(outputs.values()):
        raise click.UsageError("checkpoints need a file as input and as output")
    if checkpoint_path and len(inputs) > 1:
        raise click.UsageError("--checkpoint names one file: with several inputs, leave it out (each run "
                               "checkpoints to its OUTPUT.ckpt)")
    if checkpoint_every and (threads not in (None, 1) or scheduler or block_size):
        raise click.UsageError("--checkpoint-every codes one stream: not with -T, --scheduler or --block-size")
    if "-" in outputs.values() and not force and sys.stdout.isatty():
        raise click.ClickException("compressed data not written to a terminal; use -f to force")
    workers = workers_for(threads, scheduler)
    if block_size is None:
        from .archive import DEFAULT_BLOCK_SIZE

        block_size = 0 if checkpoint_every else DEFAULT_BLOCK_SIZE

    if dictionary == "on" and not model_path:
        from .codec import DICTIONARY_PRESETS, dictionary_available

        if not dictionary_available(preset):
            raise click.UsageError(f"--dictionary on is for the presets {', '.join(DICTIONARY_PRESETS)}")

    def one(input):
        _compress_one(input, outputs[input], preset, model_path, checkpoint_every, checkpoint_path, force,
                      block_size, workers, dictionary)

    for_each(inputs, one)


def _compress_one(input, output, preset, model_path, checkpoint_every, checkpoint_path, force, block_size, workers,
                  dictionary):
    from .files import same_file

    if same_file(input, output):
        raise click.ClickException(f"{input}: input and output are the same file")
    checkpoint_path = checkpoint_target(output, checkpoint_every, checkpoint_path)
    run = {}

    def body():
        from .runs import CompressState, start_compression

        st = run["state"] = CompressState(input=input, output=output, preset=preset, model_path=model_path,
                                          force=force, checkpoint_every=checkpoint_every or 0,
                                          checkpoint=checkpoint_path, block_size=block_size, workers=workers,
                                          dictionary=dictionary)
        model = start_compression(st)
        one_block_notice(input, block_size, workers, st.coded_size if st.original else None)
        _compress_run(model, st)

    run_guarded(body, kept=f"{shown(input, 'stdin')} is intact", checkpoint=checkpoint_path,
                left=lambda: partial_left(run.get("state")))


def one_block_notice(input, block_size, workers, coded: int | None = None) -> None:
    """Say so when -T asks for several workers but the file is one block that could be cut: it is coded on one core
    (as xz and zstd do with a file of one block), which a user asking for threads would not expect silently.  With
    the dictionary transform, `coded` is the transformed length, which is what blocks cut."""
    if workers.scheduler is not None or workers.count < 2 or not block_size or console.verbosity < NORMAL:
        return
    from .codec import block_count

    try:
        st = os.stat(input) if input != "-" else None
    except OSError:
        return  # the run itself says what is wrong with the input
    if st is None or not stat.S_ISREG(st.st_mode):
        return
    size = st.st_size if coded is None else coded
    if size <= MIN_BLOCK_SIZE:
        return
    if block_count(size, block_size) == 1:
        kib = -(-max(MIN_BLOCK_SIZE, -(-size // workers.count)) // 1024)  # a share per worker, in whole KiB
        after = "" if coded is None else f" after the dictionary transform ({coded:,} bytes)"
        click.echo(f"gmixpy: {input} is one block of at most {block_size:,} bytes{after}, so it is coded on one "
                   f"core; --block-size {kib}K would cut it into {block_count(size, kib * 1024)} blocks for the "
                   f"{workers.count} workers (each learning from scratch, at some cost in ratio)", err=True)


def partial_left(st) -> str:
    """What an interrupted compression left: the partial archive and the history file its checkpoint goes on
    from, once a checkpoint names them (before that the run removes them)."""
    partial = getattr(st, "partial", None)
    if partial and getattr(st, "partial_length", 0) and os.path.exists(partial):
        history = getattr(st, "history", None)
        also = f" (and the model's byte history in {history})" if history and os.path.exists(history) else ""
        return f"the archive so far is kept in {partial}{also} for the resume"
    return "no partial output was left"


def _compress_run(model, st):
    from .runs import input_position, run_compression

    clock = Stopwatch()
    bar = Bar(st.size, shown(st.input, "stdin"), initial=input_position(st, st.pos))
    try:
        total, end = run_compression(model, st, bar)
    finally:
        bar.close()
    if console.verbosity >= NORMAL:
        click.echo(summary(shown(st.input, "stdin"), shown(st.output, "stdout"), total, end, clock), err=True)


@main.command(short_help="Decompress .gmx archives.")
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True, type=click.Path(allow_dash=True))
@output_option("Output path (default: INPUT without .gmx; stdout for stdin; '-' for stdout); one input only.")
@stdout_keep_options
@click.option("-m", "--model", "model_path", metavar="FILE", type=click.Path(),
              help="The model file the archives were compressed with.")
@workers_options("Decode the blocks of archives with blocks")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
@verbosity_options
def decompress(inputs, output, to_stdout, keep, model_path, threads, scheduler, force, quiet, verbose):
    """Decompress each .gmx archive INPUT ('-' for stdin).  An output is written only once its CRC32 matches.

    \b
    Examples:
      gmixpy decompress alice.gmx -o alice.txt
      gmixpy -d a.txt.gmx b.txt.gmx          # writes a.txt and b.txt
      gmixpy -dc alice.gmx | less            # to stdout (several archives: one after the other)
      gmixpy -d big.txt.gmx -T 0             # the blocks on every core
    """
    set_verbosity(quiet, verbose)
    output = one_output(inputs, output, to_stdout)
    workers = workers_for(threads, scheduler)

    def one(input):
        _decompress_one(input, output or _decompressed_name(input), model_path, force, workers)

    for_each(inputs, one)


def _decompressed_name(input: str) -> str:
    if input == "-":
        return "-"
    if not input.endswith(".gmx") or os.path.basename(input) == ".gmx":
        raise click.ClickException(f"{input}: no .gmx suffix to remove: pass -o OUTPUT (or -c)")
    return input[:-4]


def _decompress_one(input, output, model_path, force, workers):
    from .files import same_file

    if same_file(input, output):
        raise click.ClickException(f"{input}: input and output are the same file")

    def body():
        from . import serialize
        from .codec import decompress_file, read_header
        from .files import atomic_output, check_input, check_output, open_input

        check_input(input)
        check_output(output, force)
        model = serialize.load(model_path) if model_path else None
        with contextlib.ExitStack() as stack:
            src, size = stack.enter_context(open_input(input))
            if size is None:  # stdin: spool it, so that the stream length is known and bounds the decoder
                src, size = _spool(stack, src)
            clock = Stopwatch()
            header = read_header(src, size)
            src.seek(0)
            bar = Bar(header.stream_length, shown(input, "stdin"))
            try:
                with atomic_output(output, force) as dst:
                    decompress_file(src, dst, size, model=model, progress=bar, workers=workers)
            finally:
                bar.close()
        if console.verbosity >= NORMAL:
            click.echo(summary(shown(input, "stdin"), shown(output, "stdout"), header.length, size, clock,
                               decompressing=True), err=True)

    run_guarded(body, kept=f"{shown(input, 'stdin')} is intact")


def _spool(stack: contextlib.ExitStack, src):
    """Copy a stream (stdin) to a temporary file (with a name): (that file at its start, its size)."""
    spool = stack.enter_context(tempfile.NamedTemporaryFile(prefix="gmixpy-stdin-"))
    while block := src.read(1 << 20):
        spool.write(block)
    size = spool.tell()
    spool.seek(0)
    return spool, size


@main.command(short_help="Show an archive's header or a model file's summary.")
@click.argument("file", type=click.Path(allow_dash=True))
def info(file):
    """Print the header of an archive (and its blocks, if it has some), or the summary of a model file, FILE ('-'
    for stdin)."""
    from .codec import read_header

    def body():
        from .files import check_input

        check_input(file)
        with contextlib.ExitStack() as stack:
            if file == "-":
                f, size = _spool(stack, sys.stdin.buffer)
            else:
                f = stack.enter_context(open(file, "rb"))
                size = os.fstat(f.fileno()).st_size
            name = shown(file, "stdin")
            magic = f.read(4)
            f.seek(0)
            if magic == b"GMXP":
                h = read_header(f, size)
                bpb = 8.0 * size / h.length if h.length else 0.0
                click.echo(f"file:                  {name}")
                click.echo(f"format:                gmixpy archive, version {h.version}")
                click.echo(f"original length:       {h.length:,} bytes")
                click.echo(f"archive length:        {size:,} bytes ({bpb:.4f} bits per byte)")
                click.echo(f"CRC32 of original:     {h.crc32:08x}")
                click.echo(f"preset:                {h.preset or '(from a model file)'}")
                click.echo(f"specification digest:  {h.spec_digest.hex()}")
                click.echo("hashed tables:         " + (f"sized for inputs up to {1 << h.size_class:,} bytes (size "
                                                         f"class {h.size_class})" if h.size_class else "as declared"))
                click.echo(f"model digest:          {h.model_digest.hex() if h.with_model else '(none)'}")
                click.echo("dictionary transform:  " + (f"English, {h.coded_length:,} bytes coded (CRC32 "
                                                         f"{h.coded_crc:08x})" if h.with_dictionary else "none"))
                if h.with_blocks:
                    from .codec import read_index

                    for line in _block_lines(read_index(f, h, size), h.stream_length):
                        click.echo(line)
                return
            from . import serialize

            if serialize.is_model_file(magic):
                for line in serialize.describe(f.name if file == "-" else file, shown=name):
                    click.echo(line)
                return
            raise click.ClickException(f"{name}: not a gmixpy archive or model file")

    run_guarded(body)


def _block_lines(index, length: int, shown: int = 5) -> list[str]:
    """`info`'s lines on the blocks: their count and size, then input bytes, stream bytes and CRC32 per block (the
    first and last `shown` when there are many)."""
    lengths = index.block_lengths(length)
    count = len(lengths)
    lines = [f"blocks:                {count:,} of {index.block_size:,} bytes"
             + (f" (the last {lengths[-1]:,})" if lengths[-1] != index.block_size else ""),
             f"  {'block':>8}  {'input bytes':>14}  {'stream bytes':>14}  {'bits per byte':>13}  CRC32"]
    rows = list(range(count)) if count <= 2 * shown + 1 else [*range(shown), None, *range(count - shown, count)]
    for i in rows:
        if i is None:
            lines.append(f"  {'...':>8}  ({count - 2 * shown:,} more)")
            continue
        bpb = 8.0 * index.streams[i] / lengths[i] if lengths[i] else 0.0
        lines.append(f"  {i + 1:>8}  {lengths[i]:>14,}  {index.streams[i]:>14,}  {bpb:>13.4f}  {index.crcs[i]:08x}")
    return lines


@main.command(short_help="Train a model file on text (files, directories, stdin).")
@click.argument("data", nargs=-1, required=True, type=click.Path(allow_dash=True))
@output_option("Model file to write.", required=True, type=click.Path())
@click.option("-p", "--preset", default="default", show_default=True, type=_preset_choice(),
              help="Model preset for a new model (not with --from).  " + PRESETS_HELP)
@click.option("--from", "from_model", metavar="FILE", type=click.Path(),
              help="Fine-tune this saved model.")
@click.option("--test", metavar="FILE", type=click.Path(),
              help="Held-out file: bits per byte measured at intervals on a copy of the model.")
@click.option("--test-every", type=click.IntRange(min=1), metavar="BYTES",
              help="Interval of held-out measurements and metrics rows, in bytes as the model reads them (after "
              "the dictionary transform, where it is used; the rows count input bytes) (default: a tenth of the "
              "training data; 1 MiB when reading stdin).")
@click.option("--metrics", metavar="FILE", type=click.Path(),
              help="Write the training curve at every interval (TSV: bytes, train_bpb, and test_bpb with --test).")
@click.option("--dictionary", default="auto", show_default=True, type=click.Choice(["auto", "on", "off"]),
              help="Learn English-like text as codes from a bundled English word list (as compress does; eval, "
                   "generate and compress --model then apply it and undo it by themselves): auto when that "
                   "shortens the data's first MiB by a tenth or more, with the presets default, fast and tiny.  "
                   "With --from, the model's own coding.")
@checkpoint_options("training data")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs (model, best model, metrics).")
@verbosity_options
@click.pass_context
def train(ctx, data, output, preset, from_model, test, test_every, metrics, dictionary, checkpoint_every,
          checkpoint_path, force, quiet, verbose):
    """Train a model on DATA (files, directories read recursively in sorted order, or '-' for stdin), streamed.

    \b
    Examples:
      gmixpy train corpus/ -o corpus.gmxm --test heldout.txt --metrics train.tsv
      gmixpy train more.txt --from corpus.gmxm -o tuned.gmxm
      cat *.txt | gmixpy train - -o notes.gmxm -p fast
    With --test the best model by held-out score is kept beside OUTPUT as OUTPUT.best.gmxm (stem + .best).
    """
    set_verbosity(quiet, verbose)
    if from_model and ctx.get_parameter_source("preset") == click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("--preset and --from exclude each other: the saved model fixes the specification")
    if test == "-":
        raise click.UsageError("--test needs a file: it is read again at every interval")
    checkpoint_path = checkpoint_target(output, checkpoint_every, checkpoint_path)

    def body():
        from .runs import start_training

        model, st = start_training(list(data), output, None if from_model else preset, from_model,
                                   dictionary=dictionary, test=test, test_every=test_every or 0, metrics=metrics,
                                   checkpoint=checkpoint_path, checkpoint_every=checkpoint_every or 0, force=force)
        _train_loop(model, st)

    run_guarded(body, kept="the input files are intact", checkpoint=checkpoint_path)


def _train_loop(model, st):
    from .runs import best_path, held_out, run_training

    clock = Stopwatch()
    done_before = st.input_done
    bar = Bar(st.input_total, "train", initial=done_before)

    def on_eval(done, train_bpb, score):
        bar.note(f"train {train_bpb:.4f} bpb" + (f", held-out {score:.4f} bpb" if score is not None else ""))

    def progress(n):
        bar(n)
        if st.done and st.test is None:
            bar.note(f"train {st.train_bpb():.4f} bpb")

    try:
        run_training(model, st, progress, on_eval)
    finally:
        bar.close()
    seconds = clock.seconds
    if console.verbosity >= NORMAL:
        rate = (st.input_done - done_before) / 1000 / seconds if seconds > 0 else 0.0
        compiling = f" (and {clock.compiling:.1f} s compiling)" if clock.compiling >= 0.05 else ""
        coded = f", {st.done:,} after the dictionary transform" if st.dictionary else ""
        click.echo(f"trained on {st.input_done:,} bytes{coded} in {seconds:.1f} s{compiling} ({rate:.2f} KB/s): "
                   f"{st.train_bpb():.4f} bits per byte (training)", err=True)
        if st.test:
            frozen = held_out(model, st.test, learn=False)
            click.echo(f"held-out {st.test}: {st.rows[-1][2]:.4f} bits per byte (learning), {frozen:.4f} "
                       f"(frozen); best {st.best:.4f}, kept in {best_path(st.output)}",
                       err=True)
        if st.metrics:
            click.echo(f"training curve written to {st.metrics} ({len(st.rows)} rows)", err=True)
        click.echo(f"model written to {st.output} ({os.path.getsize(st.output):,} bytes)", err=True)


@main.command(short_help="Continue an interrupted compress or train run.")
@click.argument("checkpoint", type=click.Path())
@click.option("-f", "--force", is_flag=True, help="Overwrite the run's output if it exists by now.")
@verbosity_options
def resume(checkpoint, force, quiet, verbose):
    """Continue an interrupted `compress` or `train` run from its CHECKPOINT.

    The result is byte-identical to an uninterrupted run; the checkpoint is removed when the run completes.
    """
    set_verbosity(quiet, verbose)
    run = {}

    def body():
        from .files import check_input
        from .runs import TrainState, resume

        check_input(checkpoint)
        model, st = run["state"] = resume(checkpoint, force)
        if isinstance(st, TrainState):
            _train_loop(model, st)
        else:
            _compress_run(model, st)

    run_guarded(body, kept=f"the checkpoint is intact; resume again with: gmixpy resume {checkpoint}",
                left=lambda: partial_left(run.get("state", (None, None))[1]))


def finite_temperature(ctx, param, value):
    """A temperature must be a finite number >= 0 (nan, inf and 1e400 are not)."""
    import math

    if value is not None and not (math.isfinite(value) and value >= 0):
        raise click.BadParameter(f"{value} is not a finite number >= 0")
    return value


@main.command(short_help="Generate text from a model file.")
@click.argument("model_path", metavar="MODEL", type=click.Path())
@click.option("--prompt", help="Prompt text.")
@click.option("--prompt-file", metavar="FILE", type=click.Path(), help="Read the prompt from a file.")
@click.option("-n", "--bytes", "n_bytes", default=500, show_default=True, type=click.IntRange(min=0),
              help="Bytes to generate.")
@click.option("-t", "--temperature", default=1.0, show_default=True, type=float, callback=finite_temperature,
              help="Sampling temperature (gmix: bit logits are divided by it; below 0.001 counts as 0.001).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0, max=2**64 - 1),
              help="Random seed: the same seed gives the same text.")
@click.option("--learn-prompt", is_flag=True, help="Learn from the prompt (as gmix does); off by default, so the "
              "model's long-term memory is untouched.")
@click.option("--top-k", default=0, show_default=True, type=click.IntRange(min=0), metavar="K",
              help="Sample whole bytes from the K most likely next bytes only (0: no limit).")
@click.option("--top-p", default=1.0, show_default=True, type=click.FloatRange(0.0, 1.0, min_open=True), metavar="P",
              help="Sample whole bytes from the smallest most likely set holding this share of the probability "
              "(after --top-k; 1: no cut).")
@click.option("--stop", metavar="STRING", help="End where the generated text first contains STRING (not written; "
              "backslash escapes such as \\n are understood).")
@click.option("--echo-prompt", is_flag=True, help="Write the prompt before the generated text.")
@output_option("Write to this file instead of stdout (if interrupted, the text generated so far is kept).")
@click.option("-f", "--force", is_flag=True, help="Overwrite the output if it exists.")
@click.option("-q", "--quiet", is_flag=True, help="No notices or summary line.")
def generate(model_path, prompt, prompt_file, n_bytes, temperature, seed, learn_prompt, top_k, top_p, stop,
             echo_prompt, output, force, quiet):
    """Generate text from MODEL with learning disabled: bit by bit as gmix, or, with --top-k / --top-p, byte by
    byte from the exact next-byte distribution (computed from the model's 255 bit predictions down the byte's bit
    tree: 10 to 15 times slower than plain sampling with `default`, 1,000 to 1,400 bytes per second against
    11,000 to 19,000 with a trained model; 30 times with `tiny`).

    \b
    Examples:
      gmixpy generate shakespeare.gmxm --prompt "ROMEO:" -n 500 -t 0.8 --seed 1
      gmixpy generate shakespeare.gmxm --prompt "ROMEO:" --echo-prompt --top-k 10 --top-p 0.9 --stop '\\n\\n'
    """
    set_verbosity(quiet)
    if prompt is not None and prompt_file:
        raise click.UsageError("give --prompt or --prompt-file, not both")
    stop_bytes = _unescape(stop) if stop else b""
    written = [0]  # bytes of generated text already out

    def body():
        from . import serialize
        from .files import atomic_output, check_input, check_output
        from .generate import generate_bytes

        for name in filter(None, [model_path, prompt_file]):
            check_input(name)
        if output:
            check_output(output, force)
        text = prompt.encode() if prompt is not None else (open(prompt_file, "rb").read() if prompt_file else b"")
        model = serialize.load(model_path)
        sampling = dict(top_k=top_k, top_p=top_p, stop=stop_bytes, echo_prompt=echo_prompt)
        clock = Stopwatch()
        if output:
            with atomic_output(output, force, keep_partial=True) as f:
                def keep(block):
                    raise_pending()
                    f.write(block)
                    written[0] += len(block)

                n = generate_bytes(model, text, n_bytes, temperature, seed, learn_prompt, keep, **sampling)
        else:
            out = sys.stdout.buffer

            def emit(block):
                raise_pending()
                try:
                    out.write(block)
                    out.flush()
                except BrokenPipeError:
                    raise
                except OSError as e:
                    from .files import stdout_failed

                    raise stdout_failed(e) from None
                written[0] += len(block)

            n = generate_bytes(model, text, n_bytes, temperature, seed, learn_prompt, emit, **sampling)
            if n and not quiet and sys.stdout.isatty():
                out.write(b"\n")
        seconds = clock.seconds
        if not quiet:
            click.echo(f"generated {n:,} bytes in {seconds:.2f} s ({n / seconds if seconds else 0:.1f} bytes/s)",
                       err=True)

    def left() -> str:
        if not output:
            return "the text generated so far went to stdout"
        if written[0]:
            return f"the {written[0]:,} bytes generated so far are in {output}"
        return "no output was written"

    run_guarded(body, kept="the model file is intact", left=left)


def _unescape(text: str) -> bytes:
    """A command-line string with backslash escapes (\\n, \\t, \\\\, \\xHH) as bytes (UTF-8)."""
    import codecs

    try:
        return codecs.escape_decode(text.encode("utf-8"))[0]
    except ValueError as e:
        raise click.UsageError(f"bad escape in {text!r}: {e}") from None


@main.command(name="eval", short_help="Measure a file's bits per byte under a model.")
@click.argument("model_path", metavar="MODEL", type=click.Path())
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--frozen", is_flag=True, help="Learning disabled (the language-model setting, like a validation "
              "loss); by default the model learns as it reads (the compression setting).")
@verbosity_options
def evaluate_command(model_path, file, frozen, quiet, verbose):
    """Bits per byte of FILE ('-' for stdin) under MODEL, on stdout.

    \b
    Example:  gmixpy eval shakespeare.gmxm heldout.txt --frozen
    """
    set_verbosity(quiet, verbose)

    def body():
        from . import serialize
        from .files import check_input
        from .runs import evaluate_file

        check_input(model_path)
        check_input(file)
        model = serialize.load(model_path)
        bar = Bar(None if file == "-" else os.path.getsize(file), shown(file, "stdin"))
        try:
            n, bits = evaluate_file(model, file, learn=not frozen, progress=bar)
        finally:
            bar.close()
        click.echo(f"{shown(file, 'stdin')}: {n:,} bytes, {bits / n if n else 0.0:.4f} bits per byte "
                   f"({'frozen' if frozen else 'learning'})")

    if model_path == "-":
        raise click.UsageError("MODEL must be a file (only FILE can be stdin)")
    run_guarded(body)


@main.command(short_help="Per-input bits per byte and weights, a surprise map.")
@click.argument("paths", nargs=-1, required=True, metavar="[MODEL] FILE")
@click.option("-p", "--preset", type=_preset_choice(), help="Analyze with a fresh model of this preset instead of "
              "a model file (the default with FILE alone: default).  " + PRESETS_HELP)
@click.option("--frozen", is_flag=True, help="Learning disabled (the language-model setting); by default the model "
              "learns as it reads, exactly as compression does.")
@click.option("--tsv", type=click.Path(dir_okay=False), help="Write every row's numbers as TSV.")
@click.option("--html", type=click.Path(dir_okay=False), help="Write the surprise map: a self-contained page with "
              "the text shaded by each byte's cost (the first --map-bytes bytes; the totals cover the whole file).")
@click.option("--plot", type=click.Path(dir_okay=False), help="Draw the per-row bars as PNG (needs gmixpy[plot]).")
@click.option("--archive", type=click.Path(dir_okay=False), help="Also write the archive coded on the way, "
              "byte-identical to `gmixpy compress --dictionary off`'s (one stream: to `--block-size 0`'s for a "
              "file of more than one block; not with --frozen).")
@click.option("--map-bytes", default=262144, show_default=True, type=click.IntRange(0, 1 << 22), metavar="BYTES",
              help="Bytes of the file drawn in the HTML map (at most 4 MiB; the page takes about 7 bytes per byte "
              "of text shown).")
@click.option("--sort", default="bpb", show_default=True, type=click.Choice(["bpb", "weight", "order"]),
              help="Order of the table's rows: bits per byte alone, weight, or the specification's order.")
@click.option("-f", "--force", is_flag=True, help="Overwrite outputs that exist.")
@click.option("-q", "--quiet", is_flag=True, help="Errors and the table only: no progress, notices or 'wrote' lines.")
def analyze(paths, preset, frozen, tsv, html, plot, archive, map_bytes, sort, force, quiet):
    """Run FILE through MODEL (or a fresh --preset) and report, for every model input and every mixer, the bits
    per byte it alone would give, the weight the network gives it, and the ensemble's bits per byte.

    \b
    Examples:
      gmixpy analyze book.txt --html book.html                  # a fresh `default` model, learning
      gmixpy analyze shakespeare.gmxm heldout.txt --frozen --tsv rows.tsv --plot rows.png
    The HTML page shows the first --map-bytes bytes (256 KiB) shaded and says how many more there are.
    """
    from .files import same_file

    set_verbosity(quiet)
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
        from .codec import start_archive
        from .files import atomic_output, check_input, check_output

        for name in filter(None, [model_path, file]):
            check_input(name)
        for out in outputs:
            if same_file(file, out) or (model_path and same_file(model_path, out)):
                raise ValueError(f"{out} is one of the inputs: choose another output")
            check_output(out, force)
        if plot:
            from .plot import pyplot

            pyplot()  # a missing extra is reported before the run, not after it
        if model_path:
            model, size_class = serialize.load(model_path), 0
        else:  # the model `compress` would start from, its tables sized to the file
            model, header = start_archive(preset or "default", None, os.path.getsize(file))
            size_class = header.size_class
        bar = Bar(os.path.getsize(file), "analyze", quiet)
        try:
            result = analyze_file(model, file, learn=not frozen, map_bytes=map_bytes, archive_path=archive,
                                  force=force, preset=None if model_path else (preset or "default"),
                                  size_class=size_class,
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


@main.command(short_help="Draw a training curve from train --metrics TSVs.")
@click.argument("metrics", nargs=-1, required=True, type=click.Path())
@output_option("PNG file to write.", required=True)
@click.option("--title", help="Title of the picture.")
@click.option("-f", "--force", is_flag=True, help="Overwrite the output if it exists.")
def plot(metrics, output, title, force):
    """Draw training and held-out bits per byte against bytes seen, from the TSV files `train --metrics` writes
    (one colour per file), as PNG.  Needs matplotlib: pip install 'gmixpy[plot]'.

    \b
    Example:  gmixpy plot train.tsv -o curve.png
    """
    def body():
        from .files import atomic_output, check_input, check_output
        from .plot import plot_metrics, pyplot, read_metrics

        pyplot()
        for path in metrics:
            check_input(path)
            read_metrics(path)  # a bad file is reported before anything is written
        check_output(output, force)
        with atomic_output(output, force) as f:
            plot_metrics(list(metrics), f, title or "")

    run_guarded(body)


if __name__ == "__main__":  # pragma: no cover
    main()
