"""On-disk layout of a store folder, and the filesystem primitives the writer
and the compactor share (atomic publish, tmp naming, sweeping).

    STORE/
      catalog.duckdb                      views + schema_migrations (rebuilt by open_store)
      data/store_id.parquet               the store's id, written once: the views check it
      data/run=<run_id>/sample=<key>/     one committed sample: samples/maps/faces/metrics/sites.parquet
      data/run=<run_id>/segment=<uuid>/   compacted samples: same files + manifest.parquet
      data/run=<run_id>/metrics=<id>/     metrics added later by an evaluator (metrics.parquet)
      data/run=_empty/{sample,segment,metrics}=_empty/<table>.parquet
                                          typed empty files: every view glob matches at least one file
      runs/<run_id>/run.parquet           the run, written once
      runs/<run_id>/events/<ts>-<pid>-<uuid>.parquet   status events
      runs/_empty/...                     typed empty placeholders for the run globs
      tmp/<pid>-<uuid>-<host>[.suffix]    work in progress (swept when its pid is dead or it is old)
      locks/                              flock files (compaction)

Everything that readers can see appears by one ``rename`` of a complete file or
directory; nothing visible is ever modified in place.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import socket
import struct
import time
import uuid
from pathlib import Path

HOST = socket.gethostname()
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
EMPTY = "_empty"
TABLE_FILES = ("samples", "maps", "faces", "metrics", "sites", "manifest", "map_stats", "face_mass", "balance")
STALE_TMP_SECONDS = 15 * 60


class StoreError(RuntimeError):
    """Any error raised by the store package for a bad call or bad state."""


def validate_id(kind: str, value: str) -> str:
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        raise StoreError(
            f"invalid {kind} {value!r}: use 1-128 characters [A-Za-z0-9._-], starting with a letter or digit")
    return value


class Layout:
    """Paths of one store folder (absolute)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(os.path.abspath(os.fspath(root)))
        self.data = self.root / "data"
        self.runs = self.root / "runs"
        self.tmp = self.root / "tmp"
        self.locks = self.root / "locks"
        self.catalog = self.root / "catalog.duckdb"
        self.store_id_file = self.data / "store_id.parquet"
        # placeholders, one per kind of data directory ('_empty' can never be a run id)
        self.empty_dirs = [self.data / ("run=" + EMPTY) / (kind + "=" + EMPTY)
                           for kind in ("sample", "segment", "metrics")]
        self.empty_run = self.runs / EMPTY

    def ensure(self) -> None:
        for d in (self.data, self.runs, self.tmp, self.locks):
            d.mkdir(parents=True, exist_ok=True)

    def run_data(self, run_id: str) -> Path:
        return self.data / f"run={validate_id('run_id', run_id)}"

    def sample_dir(self, run_id: str, key: str) -> Path:
        return self.run_data(run_id) / f"sample={validate_id('sample_key', key)}"

    def run_dir(self, run_id: str) -> Path:
        return self.runs / validate_id("run_id", run_id)

    def sample_dirs(self, run_id: str) -> list[Path]:
        return _list(self.run_data(run_id), "sample=")

    def segment_dirs(self, run_id: str) -> list[Path]:
        return _list(self.run_data(run_id), "segment=")

    def metrics_dirs(self, run_id: str) -> list[Path]:
        return _list(self.run_data(run_id), "metrics=")

    def run_ids(self) -> list[str]:
        return sorted(p.name for p in _list(self.runs, "") if p.name != EMPTY and ID_RE.fullmatch(p.name))

    def new_tmp(self, suffix: str = "") -> Path:
        """A fresh path under tmp/ whose name records this process (for sweeping)."""
        return self.tmp / f"{os.getpid()}-{uuid.uuid4().hex}-{HOST}{suffix}"


def check_store_location(path: str | os.PathLike) -> Path:
    """Check, writing nothing, that ``path`` is a store folder this process can write, or a
    folder it can create.  Raises StoreError naming the path and the fix.  (As root, permission
    bits do not stop writes; a read-only filesystem does, and os.access reports it.)"""
    root = Path(os.path.abspath(os.fspath(path)))
    if root.exists() and not root.is_dir():
        raise StoreError(f"store {root} is a file, not a folder: give a folder for --store (it is created "
                         "if missing)")
    if root.is_dir():
        for sub in (root, *(root / d for d in ("data", "runs", "tmp", "locks"))):
            if sub.exists() and not sub.is_dir():
                raise StoreError(f"store {root}: {sub} is a file, not a folder; this is not a store (give "
                                 "another folder for --store)")
            if sub.is_dir() and not os.access(sub, os.W_OK | os.X_OK):
                raise StoreError(f"store {root}: no permission to write in {sub}; fix its permissions or give "
                                 "a folder you can write to")
        return root
    parent = root.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise StoreError(f"store {root} cannot be created: {parent} is a file, not a folder; give another "
                         "path for --store")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(f"store {root} cannot be created: no permission to write in {parent}; give a folder "
                         "you can write to")
    return root


def _list(parent: Path, prefix: str) -> list[Path]:
    try:
        return sorted(p for p in parent.iterdir() if p.name.startswith(prefix) and p.is_dir())
    except FileNotFoundError:
        return []


def key_of(dir_name: str) -> str:
    """'sample=abc' -> 'abc'."""
    return dir_name.split("=", 1)[1]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # an unreaped (killed) child is a zombie: dead for our purposes
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def sweep_tmp(layout: Layout, max_age_s: float = STALE_TMP_SECONDS,
              max_age_alive_s: float = 6 * 3600) -> list[str]:
    """Remove work in progress left by crashed processes; returns the names removed.

    Entry names are '<pid>-<uuid>-<host>[suffix]'.  An entry of this host is removed when its
    pid is dead (or, against pid reuse, older than max_age_alive_s); an entry of another host
    (shared filesystem) or with another name when older than max_age_s."""
    removed = []
    now = time.time()
    try:
        entries = list(layout.tmp.iterdir())
    except FileNotFoundError:
        return removed
    for p in entries:
        try:
            age = now - p.lstat().st_mtime
        except FileNotFoundError:
            continue
        parts = p.name.split("-", 2)
        if len(parts) == 3 and parts[0].isdigit() and (parts[2] == HOST or parts[2].startswith(HOST + ".")):
            pid = int(parts[0])
            stale = pid != os.getpid() and (not pid_alive(pid) or age > max_age_alive_s)
        else:
            stale = age > max_age_s
        if stale:
            _rm(p)
            removed.append(p.name)
    return removed


def _rm(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def fsync_path(p: Path) -> None:
    fd = os.open(p, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(d: Path) -> None:
    """fsync every file of a (flat) directory and the directory itself."""
    for f in d.iterdir():
        if f.is_file():
            fsync_path(f)
    fsync_path(d)


def publish(tmp: Path, target: Path, durable: bool = True) -> bool:
    """Atomically rename a finished tmp file/dir to target.

    Returns False (and discards tmp) when target already exists: first commit wins."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if durable:
        fsync_tree(tmp) if tmp.is_dir() else fsync_path(tmp)
    if target.exists():  # fast path; the rename below is the real arbiter
        _rm(tmp)
        return False
    try:
        if tmp.is_dir():
            os.rename(tmp, target)  # fails with ENOTEMPTY/EEXIST if a non-empty dir is there
        else:
            try:
                os.link(tmp, target)  # link() never replaces: first file wins
                os.unlink(tmp)
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                    raise
                os.rename(tmp, target)  # no hard links here (some network filesystems): names are unique
    except OSError as e:
        if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
            _rm(tmp)
            return False
        raise
    if durable:
        fsync_path(target.parent)
    return True


def replace_file(tmp: Path, target: Path, durable: bool = True) -> None:
    """Atomically replace target by tmp (last writer wins)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if durable:
        fsync_path(tmp)
    os.replace(tmp, target)
    if durable:
        fsync_path(target.parent)


_FLOCK = "hhqqi"  # struct flock: l_type, l_whence, l_start, l_len, l_pid (native alignment)


def catalog_reader_pid(layout: Layout) -> int | None:
    """The pid of a process that has the catalog open (DuckDB holds a shared POSIX lock on the
    database file of every connection, read-only ones included), or None when no process does
    or the platform cannot tell (no open-file-description locks: not Linux).

    Asks with F_OFD_GETLK, which places no lock.  Closing the descriptor drops the POSIX locks
    of this process on the file: harmless, nothing ever opens the catalog read-write (builds
    work on a copy), call it where this process holds no catalog connection."""
    cmd = getattr(fcntl, "F_OFD_GETLK", None)
    if cmd is None or not layout.catalog.exists():
        return None
    fd = os.open(layout.catalog, os.O_RDONLY)
    try:
        size = struct.calcsize(_FLOCK)
        request = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0).ljust(size + 8, b"\0")
        try:
            answer = fcntl.fcntl(fd, cmd, request)
        except OSError:
            return None
        l_type, _, _, _, pid = struct.unpack(_FLOCK, answer[:size])
        return None if l_type == fcntl.F_UNLCK else pid
    finally:
        os.close(fd)


def remove_dir(layout: Layout, d: Path) -> None:
    """Remove a published directory: one rename makes it vanish for readers, then rmtree."""
    trash = layout.new_tmp(".trash")
    try:
        os.rename(d, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def run_lock(layout: "Layout", run_id: str):
    """The run's maintenance lock (compaction, backfill, vacuum): an exclusive flock on
    STORE/locks/compact-<run_id>.lock, held until the returned file is closed."""
    lock = open(layout.locks / f"compact-{run_id}.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock
