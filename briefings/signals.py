"""Signals to stop requests, for `briefings run`, `collect` and the daemon alike; parse workers that die
with their parent.

A signal never interrupts work where it stands: it sets a stop request that
the work polls at its safe points (between two feeds, two entries classified,
two sections rendered, two recipients), never inside a transaction. The work
then returns what it did, marked as stopped.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Callable, Iterable

StopCheck = Callable[[], bool]


class Stopped(Exception):
    """Raised at a safe point when a stop was requested; nothing half-done was stored."""


def check(stop: StopCheck | None) -> None:
    """A safe point: raise Stopped when a stop was requested."""
    if stop is not None and stop():
        raise Stopped()


class StopRequest:
    """A stop request that signals set; call it (``stop()``) to know whether one was made.

    Used as a context manager, it installs its handlers for the given signals (in the
    main thread only; elsewhere, only ``request()`` sets it) and puts the previous
    ones back on exit. A second Ctrl-C while stopping interrupts at once
    (KeyboardInterrupt), as people expect of a second Ctrl-C.
    """

    def __init__(self, signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP), *,
                 event: threading.Event | None = None, on_signal: Callable[[int], None] | None = None):
        self.signals = tuple(signals)
        self.event = event if event is not None else threading.Event()
        self.on_signal = on_signal
        self.signum: int | None = None  # the signal that made the request, if one did
        self._previous: dict[int, object] = {}

    def __call__(self) -> bool:
        return self.event.is_set()

    def request(self, signum: int | None = None) -> None:
        if self.event.is_set():
            return
        self.signum = signum
        self.event.set()

    @property
    def exit_code(self) -> int:
        """The conventional status of a process ended by that signal: 128 + its number."""
        return 128 + self.signum if self.signum else 0

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else "a stop request"

    def _handle(self, signum, frame) -> None:
        if self.event.is_set():
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        self.request(signum)
        if self.on_signal is not None:
            self.on_signal(signum)

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


# -- parse workers -------------------------------------------------------------------

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int | None) -> None:
    """In a worker process: be killed when the process that started it dies, however it dies.

    On Linux the kernel does it (PR_SET_PDEATHSIG); the check of the parent's pid
    right after covers a parent that died before that. Elsewhere a thread watches
    the parent's pid once a second. parent_pid: the pid the worker's parent must
    have (None when the worker comes from a fork server, whose own parent it is).
    """
    armed = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    parent = os.getppid()
    if parent_pid is not None and parent != parent_pid:
        os._exit(0)  # the parent is gone already: its child was handed to another process
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()


def _watch_parent(parent: int) -> None:
    import time

    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)
