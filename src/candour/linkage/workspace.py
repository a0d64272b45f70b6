"""The temporary workspace where decrypted identifiers exist, and only while linkage runs.

The workspace is a private directory (mode 0700) holding the decrypted identity table, the
engine's spill files and Spark's checkpoints. It is removed when the block ends, whether the
run succeeded, raised, or was interrupted by SIGINT or SIGTERM.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import pyarrow as pa
import pyarrow.parquet as pq

WORKSPACE_PREFIX = "candour-link-"


@dataclass(frozen=True)
class Workspace:
    """Paths inside one temporary linkage workspace."""

    root: Path

    @property
    def identities(self) -> Path:
        """The prepared (decrypted) identity table, as Parquet."""
        return self.root / "identities.parquet"

    @property
    def engine_dir(self) -> Path:
        """Where the engine may spill or checkpoint."""
        path = self.root / "engine"
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    def write_identities(self, table: pa.Table) -> Path:
        """Write the prepared identities for the engine to read."""
        pq.write_table(table, self.identities, compression="zstd")
        return self.identities


@contextmanager
def workspace(parent: Path | None = None) -> Iterator[Workspace]:
    """A fresh private workspace, always removed afterwards.

    ``parent`` defaults to the system temporary directory. SIGTERM is turned into an exception
    for the duration (main thread only), so a killed run still cleans up.
    """
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=WORKSPACE_PREFIX, dir=parent))
    os.chmod(root, 0o700)
    previous = None
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:

        def _on_term(signum: int, frame: FrameType | None) -> None:
            # SystemExit unwinds through every ``finally`` (this one included) and ends the
            # process with the conventional 128 + signal status.
            raise SystemExit(128 + signum)

        previous = signal.signal(signal.SIGTERM, _on_term)
    try:
        yield Workspace(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if in_main:
            signal.signal(signal.SIGTERM, previous)
