"""A sealing worker process: ``python -m candour.vault.sealworker`` (see parallel.py).

Reads jobs from standard input and answers each on standard output, until its input closes.
"""

from __future__ import annotations

import sys

from candour.vault.parallel import receive, seal_share, send
from candour.vault.workers import die_with_parent


def main() -> None:
    """Serve sealing jobs until standard input closes."""
    die_with_parent()
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
