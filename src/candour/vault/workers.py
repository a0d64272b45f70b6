"""What the vault's worker processes (sealing at ingest, opening at linkage) share: dying with
their parent, and being stopped cleanly by it."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Iterable

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask Linux to kill this worker when its parent dies (even by ``kill -9``).

    Otherwise a sealing worker could go on writing a crashed batch's rows after recovery had
    removed them, and an opening worker could keep decrypted identities past the run that asked
    for them. Elsewhere a worker still stops at its next job, when it finds its pipe closed.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(1)


def stop_workers(procs: Iterable[subprocess.Popen[bytes]]) -> None:
    """Stop workers: closing their input ends their loop; one that hangs is killed."""
    procs = list(procs)
    for proc in procs:
        if proc.stdin is not None and not proc.stdin.closed:
            try:
                proc.stdin.close()
            except OSError:
                pass
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
