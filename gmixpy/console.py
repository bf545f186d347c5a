"""What the command line shows on stderr besides errors (part of the command-line layer; the library never prints).

* Progress: a tqdm bar only when stderr is a terminal, drawn only once the first bytes are done (an error that
  comes at once is not preceded by an empty bar); with -v on a non-terminal, a plain line at every tenth of the
  work instead (a log gets no carriage returns); nothing with -q.
* A notice on stderr, terminal or not, when Numba compiles kernels in this process: kernels are compiled on their
  first call when the disk cache has no entry for them (a new version, a new machine), which takes up to a few
  minutes.  The time spent compiling is kept out of the progress bar's rate and ETA and out of the summary line.
* Summary lines: bytes in and out, bits per byte, seconds and KB/s.
* Signals while a command works (on_signal, raise_pending, leave): Ctrl-C and SIGTERM always end the command
  with its one line and status 130 / 143, even when they land inside a C callback or during shutdown.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

import click

QUIET, NORMAL, VERBOSE = 0, 1, 2


class Terminated(BaseException):
    """SIGTERM, turned into an exception so that clean-up runs."""


class _Console:
    """The process's one console: its verbosity (set by each command), the bars on screen, the compile watch, the
    signal received while a command works."""

    def __init__(self):
        self.process = False  # the gmixpy command's own process (set by __main__), not a caller in Python
        self.signal: int | None = None
        self.verbosity = NORMAL
        self.bars: list[Bar] = []
        self.compile_seconds = 0.0   # spent compiling kernels in this process so far
        self.compiling_since: float | None = None
        self.depth = 0
        self.announced = False
        self.watching = False
        self.previous_hook = sys.unraisablehook  # the sys.unraisablehook that signals_caught replaces


console = _Console()


def on_signal(signum, frame):
    """SIGINT and SIGTERM while a command works: raise KeyboardInterrupt or Terminated at once, and remember the
    signal, because an exception raised inside a C callback (llvmlite's, while Numba loads or compiles a kernel) is
    swallowed there; the next progress report (raise_pending) raises it again."""
    console.signal = signum
    raise KeyboardInterrupt if signum == signal.SIGINT else Terminated()


def _unraisable(hook_args) -> None:
    """sys.unraisablehook while signals are caught: an interruption's exception that a C callback swallowed (see
    on_signal) is not printed as "Exception ignored ..." with a traceback; raise_pending raises it again.  Anything
    else goes to the hook that was there before."""
    if isinstance(hook_args.exc_value, (KeyboardInterrupt, Terminated)):
        return
    console.previous_hook(hook_args)


@contextlib.contextmanager
def signals_caught():
    """While the block runs, SIGINT and SIGTERM raise KeyboardInterrupt and Terminated (on_signal), also inside C
    callbacks, where the exception is swallowed without a word (_unraisable) and raised again later."""
    console.signal = None
    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    console.previous_hook = sys.unraisablehook
    sys.unraisablehook = _unraisable
    try:
        yield
    finally:
        sys.unraisablehook = console.previous_hook
        for sig, handler in old.items():
            signal.signal(sig, handler)


def leave(status: int):
    """Exit with `status` once an interruption has been reported.  The gmixpy command's own process leaves at once
    (os._exit, signals ignored): every clean-up has run by then, and a late signal during the interpreter's
    shutdown would otherwise end it with a traceback or by the signal itself.  In-process callers (tests) get
    SystemExit."""
    if console.process:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status)
    sys.exit(status)


def raise_pending() -> None:
    """Raise again a signal's exception that was swallowed (see on_signal)."""
    if console.signal == signal.SIGINT:
        raise KeyboardInterrupt
    if console.signal is not None:
        raise Terminated()


def say(line: str) -> None:
    """A message line on stderr that does not garble a bar on screen."""
    bars = [b.bar for b in console.bars if b.bar is not None]
    for bar in bars:
        bar.clear()
    click.echo(line, err=True)
    for bar in bars:
        bar.refresh()


def watch_compiles() -> None:
    """Listen for Numba compilations (numba.core.event "numba:compile": fired only when a kernel is really
    compiled, not when it is loaded from the disk cache)."""
    if console.watching:
        return
    from numba.core import event

    class Listener(event.Listener):
        def on_start(self, ev):
            if console.depth == 0:
                console.compiling_since = time.perf_counter()
                if not console.announced and console.verbosity >= NORMAL:
                    console.announced = True
                    say("gmixpy: compiling the kernels for this version (once; up to a few minutes, not counted in "
                        "the rates)")
            console.depth += 1

        def on_end(self, ev):
            console.depth -= 1
            if console.depth == 0 and console.compiling_since is not None:
                spent = time.perf_counter() - console.compiling_since
                console.compiling_since = None
                console.compile_seconds += spent
                for bar in console.bars:
                    bar.pause(spent)

    event.register("numba:compile", Listener())
    console.watching = True


class Stopwatch:
    """Seconds of work since it was started: wall-clock time minus what was spent compiling kernels meanwhile."""

    def __init__(self):
        self.start = time.perf_counter()
        self.compile_start = console.compile_seconds

    @property
    def compiling(self) -> float:
        return console.compile_seconds - self.compile_start

    @property
    def seconds(self) -> float:
        return max(time.perf_counter() - self.start - self.compiling, 0.0)


class Bar:
    """Progress in bytes of one piece of work on stderr (see the module docstring).  `initial` bytes were done
    before (a resumed run); `total` may be None (stdin).  Called with the bytes just done."""

    def __init__(self, total: int | None, desc: str, quiet: bool = False, initial: int = 0,
                 verbose: bool | None = None):
        verbosity = QUIET if quiet else (VERBOSE if verbose else console.verbosity)
        self.total, self.desc, self.done = total, desc, initial
        self.mode = None
        if verbosity >= NORMAL and _stderr_is_terminal():
            self.mode = "bar"
        elif verbosity >= VERBOSE:
            self.mode = "lines"
        self.bar = None
        self.postfix = ""
        self.clock = Stopwatch()
        self.initial = initial
        self.next_line = self._next_step(initial)
        console.bars.append(self)

    def __call__(self, n: int) -> None:
        raise_pending()
        self.done += n
        if self.mode == "bar":
            if self.bar is None:  # the first bytes are done: draw it now, counting only what follows in the rate
                self._open()
            else:
                self.bar.update(n)
        elif self.mode == "lines" and self.done >= self.next_line:
            self.next_line = self._next_step(self.done)
            say(self._line())

    def note(self, text: str) -> None:
        """A short text after the bar (e.g. the current bits per byte)."""
        self.postfix = text
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)

    def pause(self, seconds: float) -> None:
        """Keep `seconds` (spent compiling) out of the rate and the ETA."""
        if self.bar is not None:
            self.bar.start_t += seconds
            self.bar.last_print_t += seconds

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self in console.bars:
            console.bars.remove(self)

    def _open(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, initial=self.done, desc=self.desc, unit="B", unit_scale=True,
                        unit_divisor=1000, file=sys.stderr, leave=False, dynamic_ncols=True, mininterval=0.5,
                        smoothing=0)
        if self.postfix:
            self.bar.set_postfix_str(self.postfix)

    def _next_step(self, done: int) -> int:
        """Where the next plain progress line is due: the next tenth of a known total, else the next doubling
        from 1 MiB."""
        if self.total:
            tenth = max(self.total // 10, 1)
            return (done // tenth + 1) * tenth
        return max(1 << 20, 2 * done)

    def _line(self) -> str:
        seconds = self.clock.seconds
        rate = (self.done - self.initial) / 1000 / seconds if seconds > 0 else 0.0
        if self.total:
            left = (self.total - self.done) / 1000 / rate if rate > 0 else 0.0
            where = (f"{100 * self.done // self.total}% ({self.done:,} of {self.total:,} bytes), {seconds:.1f} s, "
                     f"{rate:.2f} KB/s, {left:.0f} s left")
        else:
            where = f"{self.done:,} bytes, {seconds:.1f} s, {rate:.2f} KB/s"
        return f"{self.desc}: {where}" + (f", {self.postfix}" if self.postfix else "")


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def shown(path: str, stream: str) -> str:
    """A path as summaries show it: "-" is (stdin) or (stdout)."""
    return f"({stream})" if path == "-" else path


def summary(source: str, target: str, original: int, archive: int, clock: Stopwatch,
            decompressing: bool = False) -> str:
    """`SOURCE -> TARGET: IN -> OUT bytes, B bits per byte, S s, R KB/s`: bytes read and written in the order of the
    work, B archive bits per original byte, R original bytes per second; time spent compiling kernels is left out
    (and said)."""
    n_in, n_out = (archive, original) if decompressing else (original, archive)
    bpb = 8.0 * archive / original if original else 0.0
    seconds = clock.seconds
    rate = original / 1000.0 / seconds if seconds > 0 else 0.0
    extra = f" (and {clock.compiling:.1f} s compiling)" if clock.compiling >= 0.05 else ""
    return (f"{source} -> {target}: {n_in:,} -> {n_out:,} bytes, {bpb:.4f} bits per byte, {seconds:.2f} s{extra}, "
            f"{rate:.2f} KB/s")
