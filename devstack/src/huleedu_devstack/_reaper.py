"""Watchdog for one LocalStack, run as ``python -I -S _reaper.py ROOT PGDATA`` with stdin a
pipe (PGDATA: PostgreSQL's data dir, under ROOT unless the stack keeps it elsewhere).

The owning process keeps the pipe's write end open. When it dies in any way
(SIGKILL, os._exit, a crash) without stopping the stack, stdin reaches EOF and
this process stops every process under ROOT and removes ROOT. A clean
LocalStack.stop() removes ROOT first, so the watchdog then simply exits.
Runs by file path with only the standard library, so it needs no imports setup.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path


def _wait_for_eof() -> None:
    while True:
        try:
            if not os.read(0, 4096):
                return
        except InterruptedError:
            continue
        except OSError:
            return


def main() -> None:
    root = Path(sys.argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _wait_for_eof()
    if not root.is_dir():
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _procs  # type: ignore[import-not-found]

    data = Path(sys.argv[2]) if len(sys.argv) > 2 else root / "postgres" / "data"
    postmaster = _procs.read_postmaster_pid(data)
    _procs.kill_tree_under(root, postmaster)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
