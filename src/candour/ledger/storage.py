"""Where the log's files live, behind a small interface: a POSIX directory now, objects later.

Paths are ``/``-separated and relative to the store's root (``checkpoint``, ``tile/0/000``...).
Writes are atomic (a reader sees the old file or the new one, never a mix) and durable when
they return: data is fsynced before the rename, and every directory that gained a name is
fsynced after it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol


class Storage(Protocol):
    """The operations the log needs from a store of files."""

    def read(self, path: str) -> bytes | None:
        """The file's bytes, or None if it does not exist."""
        ...

    def write_many(self, files: Mapping[str, bytes]) -> None:
        """Write several files atomically each, all durable on return."""
        ...

    def delete(self, path: str) -> None:
        """Remove a file if present (durably)."""
        ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """Every file path under ``prefix``."""
        ...


def fsync_directory(directory: Path) -> None:
    """Make a directory's entries (new names, renames) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    # fsync releases the GIL, so syncing a batch's files in parallel lets the filesystem fold
    # them into fewer journal commits.
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="candour-fsync")
    return _pool


def _forget_pool() -> None:
    # A forked child inherits the pool object but not its threads; start afresh there.
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


class PosixStorage:
    """A directory on a POSIX filesystem, laid out so it can be served as static files."""

    def __init__(self, root: Path, file_mode: int = 0o644) -> None:
        self.root = root
        self.file_mode = file_mode

    def _full(self, path: str) -> Path:
        if path.startswith("/") or ".." in path.split("/"):
            raise ValueError(f"unsafe storage path {path!r}")
        return self.root / path

    def read(self, path: str) -> bytes | None:
        """The file's bytes, or None if it does not exist."""
        try:
            return self._full(path).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write(self, path: str, data: bytes) -> None:
        """Write one file atomically and durably."""
        self.write_many({path: data})

    def _write_tmp(self, target: Path, data: bytes) -> Path:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self.file_mode)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            # fdatasync suffices: the file is new, and its size is flushed with the data.
            os.fdatasync(fd)
        finally:
            os.close(fd)
        return tmp

    def write_many(self, files: Mapping[str, bytes]) -> None:
        """Write several files, each atomically; all are durable when this returns."""
        if not files:
            return
        targets = [(self._full(p), data) for p, data in files.items()]
        dirs: set[Path] = set()
        for target, _ in targets:
            if not target.parent.is_dir():
                self._make_dirs(target.parent, dirs)
            dirs.add(target.parent)
        if len(targets) == 1:
            tmps = [self._write_tmp(*targets[0])]
        else:
            tmps = list(_executor().map(lambda t: self._write_tmp(*t), targets))
        for tmp, (target, _) in zip(tmps, targets, strict=True):
            os.replace(tmp, target)
        if len(dirs) == 1:
            fsync_directory(next(iter(dirs)))
        else:
            list(_executor().map(fsync_directory, sorted(dirs)))

    def _make_dirs(self, directory: Path, touched: set[Path]) -> None:
        missing: list[Path] = []
        d = directory
        while not d.exists():
            missing.append(d)
            d = d.parent
        directory.mkdir(parents=True, exist_ok=True)
        # A new directory is only durable once its parent's entry for it is synced.
        for made in missing:
            touched.add(made.parent)

    def delete(self, path: str) -> None:
        """Remove a file if present, durably."""
        target = self._full(path)
        try:
            target.unlink()
        except FileNotFoundError:
            return
        fsync_directory(target.parent)

    def list(self, prefix: str = "") -> Iterator[str]:
        """Every file path under ``prefix``, skipping temporary files."""
        base = self._full(prefix) if prefix else self.root
        if not base.exists():
            return
        for dirpath, _dirnames, filenames in os.walk(base):
            for name in filenames:
                if name.startswith("."):
                    continue
                yield Path(dirpath, name).relative_to(self.root).as_posix()
