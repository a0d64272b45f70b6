"""A sealing worker process: ``python -m candour.vault.sealworker`` (see parallel.py).

Reads jobs from standard input and answers each on standard output, until its input closes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

from candour.vault.parallel import receive, seal_share, send

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when its parent dies (even by ``kill -9``).

    Otherwise a worker could go on writing a crashed batch's rows after recovery had removed
    them. Elsewhere the worker still stops at its next job, when it finds its pipe closed.
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


def main() -> None:
    """Serve sealing jobs until standard input closes."""
    _die_with_parent()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while (job := receive(stdin)) is not None:
        try:
            rows = seal_share(
                job["sealer"], job["rows_file"], job["groups"], job["vault_url"], job["source"],
                job["batch_id"],
            )
            send(stdout, ("ok", rows))
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which rolls back
            send(stdout, ("error", f"{type(exc).__name__}: {exc}"))


if __name__ == "__main__":
    main()
