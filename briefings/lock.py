"""Locks beside the state file, so two processes never work one store at once.

(On PostgreSQL, ``job_lock`` and ``daemon_lock`` are session advisory locks
instead: briefings/store/postgres.py, ``AdvisoryLock``.)

Two locks, both ``flock`` on a file next to the SQLite file (released by the
kernel when the process dies, however it dies):

- ``<state>.daemon.lock``: held by a daemon for its whole life; a second daemon
  for the same state file is refused at once.
- ``<state>.lock``: held for the length of one job (a daemon's collect or
  briefing, a `briefings run`, `collect` or `send`); others wait for it, up to a
  bound.

The holder writes its pid into the file, so a refusal can say who holds it.

A lock is the process's alone: a forked child (a parse worker) closes its copy of
every held lock's descriptor the moment it starts, so a child that outlives its
parent never keeps the parent's lock.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from briefings.errors import BriefingsError, StoreError, storage_fault


class LockBusy(BriefingsError):
    """Another process holds the lock."""

    exit_code = 3


_held: set[int] = set()  # descriptors of the locks this process holds


def _forget_held_in_child() -> None:
    """In a forked child: close the inherited lock descriptors (never unlock: the lock is the
    parent's, and flock locks belong to the descriptor both share)."""
    for fd in list(_held):
        try:
            os.close(fd)
        except OSError:
            pass
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_held_in_child)


class Lock:
    """What every lock of briefings offers (FileLock here; AdvisoryLock on PostgreSQL): acquire, release,
    and ``with lock.held(timeout):`` around one job. A taken lock has ``fd`` (the descriptor a forked child
    closes) and ``owner`` (the pid that took it)."""

    what: str
    fd: int | None
    owner: int | None

    def acquire(self, timeout: float = 0.0, *, should_stop: Callable[[], bool] | None = None) -> None:
        raise NotImplementedError

    def release(self) -> None:
        """Let go of the lock. A forked child's copy only forgets it: the lock is the parent's, and the child
        closed its descriptor when it started."""
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        if self.owner != os.getpid():
            self._forget()
            return
        _held.discard(fd)
        self._let_go(fd)

    def _let_go(self, fd: int) -> None:
        """Release what this process holds (fd: its descriptor)."""
        raise NotImplementedError

    def _forget(self) -> None:
        """Drop a forked copy's reference to the parent's lock, releasing nothing."""

    def _busy(self, holder: str, where: str, waited: float, timeout: float, stopping: bool) -> "LockBusy":
        """The refusal when the lock stays taken: who holds it, and how long this process waited."""
        if stopping:
            waited_text = f"; stopped waiting after {waited:.1f} s: briefings is stopping"
        else:
            waited_text = f"; waited {waited:.0f} s" if timeout else ""
        return LockBusy(f"{self.what}: the lock is held by {holder} ({where}){waited_text}",
                        "wait for it to finish, or stop it; the lock goes when its process ends")

    @contextmanager
    def held(self, timeout: float = 0.0, **kwargs) -> Iterator["Lock"]:
        self.acquire(timeout, **kwargs)
        try:
            yield self
        finally:
            self.release()


class FileLock(Lock):
    def __init__(self, path: Path, what: str):
        self.path = Path(path)
        self.what = what
        self.fd: int | None = None
        self.owner: int | None = None  # the pid that took it; a forked copy of this object is not

    def holder(self) -> str:
        try:
            pid = self.path.read_text().strip()
        except OSError:
            return "another process"
        return f"process {pid}" if pid.isdigit() else "another process"

    def acquire(self, timeout: float = 0.0, *, should_stop: Callable[[], bool] | None = None) -> None:
        """Take the lock, waiting up to timeout seconds; LockBusy if it stays taken."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise self._fault(exc) from exc
        started = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                stopping = bool(should_stop and should_stop())
                if waited >= timeout or stopping:
                    os.close(fd)
                    raise self._busy(self.holder(), str(self.path), waited, timeout, stopping) from None
                time.sleep(0.1)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            os.fsync(fd)
        except OSError as exc:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise self._fault(exc) from exc
        self.fd, self.owner = fd, os.getpid()
        _held.add(fd)

    def _fault(self, exc: OSError) -> BriefingsError:
        return storage_fault(exc, self.path, "the lock file") or StoreError(
            f"{self.path}: the lock file cannot be taken: {exc.strerror or exc}: check the folder of the [state] path")

    def _let_go(self, fd: int) -> None:
        try:
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def job_lock(state) -> FileLock:
    """The job lock of a state: a StateSettings (PostgreSQL: a session advisory lock) or an SQLite file's path."""
    if getattr(state, "url", ""):
        from briefings.store.postgres import JOB_LOCK, AdvisoryLock

        return AdvisoryLock(state.url, state.password_env, JOB_LOCK, "a job is running on this state")  # type: ignore[return-value]
    return FileLock(Path(f"{getattr(state, 'path', state)}.lock"), "a job is running on this state file")


def daemon_lock(state) -> FileLock:
    """The daemon lock of a state: a StateSettings (PostgreSQL: a session advisory lock) or an SQLite file's path."""
    if getattr(state, "url", ""):
        from briefings.store.postgres import DAEMON_LOCK, AdvisoryLock

        return AdvisoryLock(state.url, state.password_env, DAEMON_LOCK,  # type: ignore[return-value]
                            "another briefings daemon runs on this state")
    return FileLock(Path(f"{getattr(state, 'path', state)}.daemon.lock"), "another briefings daemon runs on this state file")
