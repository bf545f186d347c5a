"""Blocks coded side by side: in worker processes on this machine, or on a Dask cluster.

A job codes one block into a stream or decodes one stream into its block, always from a fresh copy of one
starting model (codec.code_block, codec.decode_block).  `Workers` says where the jobs run and `in_order` hands
their results back in block order, with at most `window` blocks in flight (read, running or done but not yet
written), so memory stays about two blocks per worker whatever the input's size.

* Inline (one thread): the jobs run in this process, one after the other.
* Local (`threads` > 1): processes forked from this one once the starting model exists, so that they share it
  copy-on-write: a model file is loaded once, never once per worker.  The kernels are loaded (or compiled) before
  the fork for the same reason.  The workers ignore SIGINT (Ctrl-C reaches the whole process group: this process
  answers it and ends them), end with SIGTERM, and end themselves if this process disappears (SIGKILL).
* Cluster (`scheduler`): the jobs go to the workers of a Dask distributed scheduler.  Each worker process builds
  the starting model once, with codec.model_for_header from the archive's header (the function decompression
  uses), from the model file's bytes (sent once to every worker) when there is a model, and keeps it for the
  blocks that follow.  Needs the extra: pip install 'gmixpy[dask]'.

Every pool runs the same function on the same bytes from the same starting state, so an archive is the same
bytes whether it was coded inline, by any number of local workers or on a cluster.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from .archive import ArchiveError, Header

if TYPE_CHECKING:  # pragma: no cover - the command line imports WorkerError without loading the kernels' modules
    from .chunks import Progress
    from .model import Model

POLL = 0.5  # seconds between progress reports while waiting for a job
DASK_MISSING = "--scheduler needs Dask: pip install 'gmixpy[dask]'"


class WorkerError(Exception):
    """A worker failed: its process died, the cluster was lost, or a job raised what jobs never raise."""


Task = tuple[Callable, tuple, int]  # (job, its arguments after the starting model, input bytes it stands for)


def cores() -> int:
    """The cores this process may run on (what -T 0 means)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Workers:
    """Where the blocks of an archive are coded: `threads` processes on this machine (0: one per core; 1: in this
    process), or the workers of the Dask scheduler at `scheduler` (an address such as tcp://host:8786)."""
    threads: int = 1
    scheduler: str | None = None

    def __post_init__(self):
        if self.threads < 0:
            raise ValueError(f"threads must be 0 (one per core) or more, not {self.threads}")

    @property
    def count(self) -> int:
        return self.threads or cores()

    @contextlib.contextmanager
    def pool(self, start: Model, header: Header, progress: Progress, blocks: int | None = None) -> Iterator:
        """A pool running jobs from `start` (the model `header` describes) for an archive of `blocks` blocks (None:
        not known yet); it reports the input bytes done to `progress`.  Ends its workers on the way out: at once
        (killed, or their jobs cancelled) when the block raised."""
        if self.scheduler is not None:
            pool = Cluster(self.scheduler, start, header, progress)
        elif min(self.count, blocks or self.count) > 1:
            pool = Local(start, min(self.count, blocks or self.count), progress)
        else:
            pool = Inline(start, progress)
        try:
            yield pool
        except BaseException:
            pool.abort()
            raise
        pool.close()


INLINE = Workers()  # one thread: the blocks one after the other in this process


def in_order(pool, tasks: Iterable[Task], count: int | None = None) -> Iterator:
    """Run every task on `pool` and yield the results in task order, with at most pool.window tasks in flight.
    The first failure of any task is raised as soon as it is known: an ArchiveError or MemoryError as it is, with
    the block named ("block 3 of 7: ..."), anything else as a WorkerError."""
    tasks = iter(tasks)
    pending: deque = deque()  # (index, future), in task order
    submitted = 0
    more = True
    while True:
        while more and len(pending) < pool.window:
            task = next(tasks, None)
            if task is None:
                more = False
                break
            pending.append((submitted, pool.submit(*task)))
            submitted += 1
        if not pending:
            return
        while not pending[0][1].done():
            pool.wait([f for _, f in pending if not f.done()], POLL)
            pool.report()
            for index, future in pending:
                if future.done():
                    _check(pool, index, future, count)
        index, future = pending.popleft()
        _check(pool, index, future, count)
        pool.report()
        yield future.result()


def _check(pool, index: int, future, count: int | None) -> None:
    """Raise what the job for block `index` failed with, if it did (see in_order)."""
    error = pool.error(future)
    if error is None:
        return
    block = f"block {index + 1}" + (f" of {count}" if count else "")
    if isinstance(error, ArchiveError):
        raise ArchiveError(f"{block}: {error}") from None
    if isinstance(error, MemoryError):
        raise MemoryError from None
    if isinstance(error, WorkerError):
        raise WorkerError(f"{error} ({block})") from None
    raise WorkerError(f"a worker failed on {block}: {type(error).__name__}: {error}") from None


# ---- in this process ---------------------------------------------------------------------------------------------

class Inline:
    """Jobs run at once in this process, reporting progress as they go."""
    window = 1

    def __init__(self, start: Model, progress: Progress):
        self.start, self.progress = start, progress

    def submit(self, job, args, weight):
        future = concurrent.futures.Future()
        try:
            future.set_result(job(self.start, *args, progress=self.progress))
        except Exception as e:
            future.set_exception(e)
        return future

    def wait(self, futures, timeout):
        pass

    def report(self):
        pass

    def error(self, future):
        return future.exception()

    def close(self):
        pass

    def abort(self):
        pass


# ---- worker processes on this machine ------------------------------------------------------------------------------

_start: Model | None = None    # in a local worker: the starting model, inherited from the parent at the fork
_counter = None                # in a local worker: the shared count of input bytes done (progress)


def load_kernels() -> None:
    """Load (or compile) the kernels that code and decode streams into this process, with a model of a few KB
    (every preset shares them), so that processes forked from it need not."""
    from io import BytesIO

    from .codec import compress_stream, decompress_stream
    from .model import Model

    out = BytesIO()
    compress_stream(Model.new("tiny"), BytesIO(b"gmixpy"), out)
    decompress_stream(Model.new("tiny"), BytesIO(out.getvalue()), BytesIO(), 6)


def _init_worker(start: Model, counter, parent: int) -> None:
    """A local worker's start: signals as the module docstring says, the inherited model and counter kept, and a
    watch that ends the worker when its parent is gone."""
    global _start, _counter
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    _start, _counter = start, counter

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _count(n: int) -> None:
    with _counter.get_lock():
        _counter.value += n


def _local_job(job, *args):
    return job(_start, *args, progress=_count)


class Local:
    """`threads` worker processes forked from this one (see the module docstring)."""

    def __init__(self, start: Model, threads: int, progress: Progress):
        import multiprocessing

        try:
            context = multiprocessing.get_context("fork")
        except ValueError:  # pragma: no cover - Windows
            raise ValueError("-T/--threads above 1 needs processes started by fork (Linux, macOS)") from None
        load_kernels()
        self.progress = progress
        self.counter = context.Value("q", 0)
        self.shown = 0
        self.window = 2 * threads
        self.executor = concurrent.futures.ProcessPoolExecutor(
            threads, mp_context=context, initializer=_init_worker, initargs=(start, self.counter, os.getpid()))
        self.processes: list = []

    def submit(self, job, args, weight):
        if self.processes:
            return self.executor.submit(_local_job, job, *args)
        # The first submission forks every worker: with SIGINT and SIGTERM blocked, so that none arrives in a
        # worker before it ignores them (the workers unblock them in _init_worker).
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            future = self.executor.submit(_local_job, job, *args)
            self.processes = list((getattr(self.executor, "_processes", None) or {}).values())
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        return future

    def wait(self, futures, timeout):
        concurrent.futures.wait(futures, timeout, concurrent.futures.FIRST_COMPLETED)

    def report(self):
        done = self.counter.value
        if done > self.shown:
            self.progress(done - self.shown)
            self.shown = done

    def error(self, future):
        error = future.exception()
        if isinstance(error, concurrent.futures.process.BrokenProcessPool):
            return WorkerError("a worker process died (out of memory? killed?)")
        return error

    def close(self):
        self.executor.shutdown(wait=True)

    def abort(self):
        """End the workers at once: a block in progress may have minutes left (Python 3.14 says so in public, with
        kill_workers; before it, the executor's processes are only reachable as _processes)."""
        if hasattr(self.executor, "kill_workers"):  # pragma: no cover - Python 3.14
            self.executor.kill_workers()
        processes = self.processes or list((getattr(self.executor, "_processes", None) or {}).values())
        self.executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(Exception):
                process.kill()
        for process in processes:
            with contextlib.suppress(Exception):
                process.join()


# ---- a Dask cluster ------------------------------------------------------------------------------------------------

def import_distributed():
    """The distributed package, or ValueError saying which extra to install."""
    try:
        import distributed
    except ImportError:
        raise ValueError(DASK_MISSING) from None
    return distributed


_cluster_starts: dict = {}  # in a Dask worker: the starting model of the archive being coded, by its identity
_cluster_lock = threading.Lock()


def _identity(header: Header) -> tuple:
    return (header.version, header.with_model, header.spec_digest, header.preset, header.model_digest,
            header.size_class)


def cluster_start(header: Header, model_file: bytes | None) -> Model:
    """On a Dask worker: the starting model of the archive `header` describes, built once per worker process with
    codec.model_for_header (from the model file's bytes when the archive needs a model) and kept for the blocks
    that follow (only the latest archive's)."""
    from .codec import model_for_header

    key = _identity(header)
    with _cluster_lock:
        start = _cluster_starts.get(key)
        if start is None:
            model = None
            if model_file is not None:
                import tempfile

                from . import serialize

                with tempfile.NamedTemporaryFile(prefix="gmixpy-model-", suffix=".gmxm") as f:
                    f.write(model_file)
                    f.flush()
                    model = serialize.load(f.name)
            _cluster_starts.clear()
            start = _cluster_starts[key] = model_for_header(header, model)
    return start


def _cluster_job(header: Header, model_file, job, *args):
    return job(cluster_start(header, model_file), *args, progress=lambda n: None)


class Cluster:
    """Jobs on the workers of a Dask distributed scheduler (see the module docstring)."""

    def __init__(self, address: str, start: Model, header: Header, progress: Progress):
        distributed = import_distributed()
        self.distributed = distributed
        try:
            self.client = distributed.Client(address, timeout=10, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as e:
            raise WorkerError(f"cannot reach the Dask scheduler at {address}: {str(e).strip().splitlines()[0]}"
                              ) from None
        load_kernels()  # fills the disk cache that workers on this machine read
        self.header, self.progress = header, progress
        self.window = 2 * max(1, sum(self.client.nthreads().values()))
        self.model_file = None
        if header.with_model:
            from io import BytesIO

            from .serialize import write_model

            f = BytesIO()
            write_model(f, start)
            self.model_file = self.client.scatter(f.getvalue(), broadcast=True)
        self.weights: dict = {}  # future -> input bytes it stands for, until reported

    def submit(self, job, args, weight):
        with self._said():
            args = [self.client.scatter(a) if isinstance(a, bytes) else a for a in args]
            future = self.client.submit(_cluster_job, self.header, self.model_file, job, *args, pure=False)
        self.weights[future] = weight
        return future

    def wait(self, futures, timeout):
        with self._said(), self.client.as_current(), contextlib.suppress(TimeoutError):
            self.distributed.wait(futures, timeout=timeout, return_when="FIRST_COMPLETED")

    @contextlib.contextmanager
    def _said(self):
        """Dask's own failures (a lost scheduler, ...) as a WorkerError of one line."""
        try:
            yield
        except (OSError, ValueError, RuntimeError) as e:
            raise WorkerError(f"the Dask cluster failed: {(str(e).strip() or type(e).__name__).splitlines()[0]}"
                              ) from None

    def report(self):
        done = [f for f in self.weights if f.done()]
        for future in done:
            if future.status == "finished":
                self.progress(self.weights[future])
            del self.weights[future]

    def error(self, future):
        if future.status == "finished":
            return None
        if future.status == "cancelled":
            return WorkerError("the Dask cluster cancelled a block")
        error = future.exception()
        if type(error).__name__ == "KilledWorker":
            return WorkerError("Dask workers died coding a block")
        return error

    def close(self):
        with contextlib.suppress(Exception):
            self.client.close()

    def abort(self):
        with contextlib.suppress(Exception):
            self.client.cancel(list(self.weights))
        self.close()
