"""The `gmixpy` command and `python -m gmixpy`.

Ctrl-C while Python is still importing the command line (the first fraction of a second), or before the command
has set up its own handling, gives the same one line and exit status 130 as later on, not a traceback.
"""
import os
import signal
import sys


def _interrupted() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    sys.stderr.write("\ngmixpy: interrupted; no partial output was left\n")
    sys.stderr.flush()
    os._exit(130)


def run() -> None:
    try:
        from .cli import main
        from .console import console

        console.process = True  # interruptions end this process at once (console.leave)
    except KeyboardInterrupt:
        _interrupted()
    try:
        main(prog_name="gmixpy")
    except KeyboardInterrupt:  # between here and the command's own handling (click's entry, option parsing)
        _interrupted()


if __name__ == "__main__":
    run()
