"""One writer per output folder: `DIR/.tifa.lock`, held with an OS lock (flock) for the whole run.

The kernel releases the lock when its process ends however it ends (SIGKILL included), so a lock
file left by a killed run is never mistaken for a live one: the next run takes it over and says
so. The file records who holds it (pid, host, start time, command) for the message a second run
prints. Worker processes never hold it: they are started with `spawn`, which does not inherit it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

LOCK_NAME = ".tifa.lock"


class OutputLocked(RuntimeError):
    def __init__(self, path: Path, holder: dict):
        self.path, self.holder = path, holder
        who = f"pid {holder.get('pid', '?')}" if holder else "another process"
        since = f", started {holder['started']}" if holder.get("started") else ""
        super().__init__(
            f"another tifa run ({who}{since}) is writing to {path.parent}; "
            f"the lock file {path} is held. Wait for it to finish, or stop it first."
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputLock:
    """`with OutputLock(out) as lock:` — raises OutputLocked at once when another run holds it.
    `lock.stale` describes the holder of a lock file left behind by a killed run, if any."""

    def __init__(self, out_dir: Path | str):
        self.path = Path(out_dir) / LOCK_NAME
        self.fd: int | None = None
        self.dir_fd: int | None = None
        self.stale: dict | None = None

    def _lock_folder(self) -> None:
        """The folder itself is locked too: a lock file someone deleted mid-run (rm
        .tifa.lock) let a second writer lock a new file of that name; a folder that holds the
        archive cannot be deleted under a run."""
        try:
            fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return  # a file system that cannot open folders: the lock file alone
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = {}
            try:
                with open(self.path, "rb") as fh:
                    holder = json.loads(fh.read() or b"{}")
            except (OSError, ValueError):
                pass
            raise OutputLocked(self.path, holder) from None
        except OSError:
            os.close(fd)  # flock unsupported here (some network file systems)
            return
        self.dir_fd = fd

    def acquire(self) -> OutputLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_folder()
        try:
            return self._acquire_file()
        except BaseException:
            self._unlock_folder()
            raise

    def _unlock_folder(self) -> None:
        if self.dir_fd is not None:
            os.close(self.dir_fd)
            self.dir_fd = None

    def _acquire_file(self) -> OutputLock:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read(fd)
                os.close(fd)
                raise OutputLocked(self.path, holder) from None
            # The holder before us may have removed the file between our open and our lock:
            # then we locked an orphaned inode, and must start again on the current file.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            break
        previous = _read(fd)
        if previous and previous.get("pid") != os.getpid():
            pid = previous.get("pid")
            alive = isinstance(pid, int) and previous.get("host") == socket.gethostname()
            previous["alive"] = alive and _pid_alive(pid)
            self.stale = previous
        os.ftruncate(fd, 0)
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
        }
        os.pwrite(fd, json.dumps(record).encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still locked: see acquire
        finally:
            os.close(self.fd)
            self.fd = None
            self._unlock_folder()

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read(fd: int) -> dict:
    try:
        data = os.pread(fd, 65536, 0)
        return json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
        return {}


def output_lock(out: Path | str) -> OutputLock | ObjectStoreLock:
    """The lock of an output folder: an OS lock for a local path, a lock object for a URL."""
    from pipeline.io.storage import is_url

    return ObjectStoreLock(str(out)) if is_url(out) else OutputLock(out)


class ObjectStoreLock:
    """`DIR/.tifa.lock` as an object, for an output in an object store (s3://…), which has no
    OS lock: a run refuses to start while the object names a holder that may be alive (its
    process on this host, or any holder on another host that started less than
    `STALE_AFTER_HOURS` ago) and removes it when it ends. Unlike flock this is advisory and a
    killed run's object stays until it is stale: `tifa run` names it in the message."""

    STALE_AFTER_HOURS = 12

    def __init__(self, out: str):
        from pipeline.io.storage import Store

        self.store = Store(out)
        self.path = LOCK_NAME
        self.stale: dict | None = None
        self.held = False

    def acquire(self) -> ObjectStoreLock:
        holder: dict = {}
        if self.store.exists(self.path):
            try:
                holder = json.loads(self.store.read_text(self.path) or "{}")
            except (OSError, ValueError):
                holder = {}
        if holder:
            if self._may_be_alive(holder):
                raise OutputLocked(Path(self.store.url(self.path)), holder)
            holder["alive"] = False
            self.stale = holder
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
        }
        self.store.write_text(self.path, json.dumps(record))
        self.held = True
        return self

    def _may_be_alive(self, holder: dict) -> bool:
        pid = holder.get("pid")
        if holder.get("host") == socket.gethostname() and isinstance(pid, int):
            return pid != os.getpid() and _pid_alive(pid)
        try:
            started = datetime.fromisoformat(holder["started"])
        except (KeyError, TypeError, ValueError):
            return False
        return (datetime.now(UTC) - started).total_seconds() < self.STALE_AFTER_HOURS * 3600

    def release(self) -> None:
        if self.held:
            self.store.remove(self.path)
            self.held = False

    def __enter__(self) -> ObjectStoreLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
