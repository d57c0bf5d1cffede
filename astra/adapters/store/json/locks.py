"""Locks on a domain: a thread lock inside the process, `flock` across processes.

flock locks belong to an open file description, so each process (and each store object) opens its
own lock file. Deadlock is ruled out by a fixed order: a thread may hold at most one instance
lock, and may take the portal lock after it, never before it. `hold_all` (for backups) takes every
instance in sorted order and then the portal, which cannot form a cycle with units of work that
follow that rule.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from astra.ports.store import PORTAL, LockOrderError, StoreBusy, StoreError

from .files import make_dirs_durably

_held = threading.local()

# A unit of work waits this long for its domain's lock, then gives up with StoreBusy: a domain
# held by something stuck (a hung process, a tenant holding flock on a file it could reach)
# costs requests on that domain a 503, not every thread of the platform. Normal commits hold a
# lock for milliseconds; a backup's hold_all for as long as copying takes.
LOCK_DEADLINE_SECONDS = 10.0
STUCK_RETRY_SECONDS = 5.0
STUCK_THREAD_WAIT_SECONDS = 0.5


class HoldMeter:
    """The longest time any domain lock of this process was held, per domain, since `reset()`.

    Cheap enough to be always on (a clock read and a comparison per unit of work) and silent:
    benchmarks and tests read it to check that no unit of work (a chunk of a stock import, say)
    keeps a domain from everyone else for long; nothing is logged."""

    def __init__(self) -> None:
        self.longest: dict[str, float] = {}

    def record(self, domain: str, seconds: float) -> None:
        if seconds > self.longest.get(domain, 0.0):
            self.longest[domain] = seconds

    def max_ms(self, domain: str | None = None) -> float:
        if domain is not None:
            return self.longest.get(domain, 0.0) * 1000
        return max(self.longest.values(), default=0.0) * 1000

    def reset(self) -> None:
        self.longest = {}


HOLDS = HoldMeter()


def _stack() -> list[str]:
    stack = getattr(_held, "stack", None)
    if stack is None:
        stack = _held.stack = []
    return stack


class DomainLock:
    def __init__(self, domain: str, path: Path) -> None:
        self.domain = domain
        self.path = path
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._locked_fd: int | None = None
        self._pid = os.getpid()
        self._stuck_until = 0.0
        self._borrowed: int | None = None  # a waiter's descriptor holding the lock (_flock)
        self._taken_at = 0.0

    def _file(self, create: bool) -> int | None:
        if self._fd is not None and self._pid != os.getpid():
            self._fd = None  # inherited across fork: the description is shared with the parent
        if self._fd is None:
            if not self.path.parent.exists():
                if not create:
                    return None
                make_dirs_durably(self.path.parent)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def acquire(self, *, exclusive: bool, create: bool = True, check_order: bool = True,
                probe: bool = False) -> bool:
        """Take the lock; returns False (and locks nothing across processes) when the domain's
        directory does not exist and `create` is False: there is nothing to read yet. A `probe`
        does not wait: a lock not free this instant is StoreBusy at once, and (a busy moment
        being no sign of a stuck domain) the requests that come next still wait for it."""
        stack = _stack()
        if check_order and stack:
            if self.domain in stack:
                raise LockOrderError(f"nested unit of work on {self.domain!r} in one thread")
            if self.domain != PORTAL:
                raise LockOrderError(
                    f"unit of work on {self.domain!r} opened while holding {stack!r}: "
                    "open instance units of work first, the portal last"
                )
        # A domain found stuck a moment ago is tried once, not waited for again: requests for
        # it fail fast instead of each holding one of the platform's threads for the deadline.
        stuck = probe or time.monotonic() < self._stuck_until
        wait = 0.0 if stuck else LOCK_DEADLINE_SECONDS
        deadline = time.monotonic() + wait
        # Stuck or not, another thread of this process may be in the middle of a commit (a
        # few milliseconds): that is worth a short wait, not a failure (a write that follows a
        # commit, such as an event's staff notice, would be lost to it).
        thread_wait = wait if wait else (0.0 if probe else STUCK_THREAD_WAIT_SECONDS)
        taken = (
            self._thread_lock.acquire(timeout=thread_wait)
            if thread_wait
            else self._thread_lock.acquire(blocking=False)
        )
        if not taken:
            self._stuck(mark=not probe)
        try:
            fd = self._file(create)
            locked = (
                self._flock(fd, exclusive, deadline, mark=not probe) if fd is not None else None
            )
        except BaseException:
            self._thread_lock.release()
            raise
        self._locked_fd = locked
        if not probe:
            self._stuck_until = 0.0  # taken: whatever held it has let go
        stack.append(self.domain)
        self._taken_at = time.monotonic()
        return fd is not None

    def _stuck(self, mark: bool = True) -> None:
        if mark:
            self._stuck_until = time.monotonic() + STUCK_RETRY_SECONDS
        raise StoreBusy(self.domain, LOCK_DEADLINE_SECONDS)

    def _flock(self, fd: int, exclusive: bool, deadline: float, mark: bool = True) -> int:
        """flock with a deadline; returns the descriptor that holds the lock.

        Free: taken at once on our own descriptor. Held by another process: a helper thread
        waits on a second descriptor of the same file with a plain blocking flock (woken the
        moment the holder lets go, as a blocking flock is: polling would add its pause to every
        contended commit). flock has no timeout, so past the deadline the wait is abandoned:
        the helper gives the lock back the moment it gets it, and closes its descriptor."""
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            self._stuck(mark)
        waiter = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        got = threading.Event()
        gate = threading.Lock()
        abandoned = False

        def wait() -> None:
            fcntl.flock(waiter, mode)
            with gate:
                if abandoned:
                    fcntl.flock(waiter, fcntl.LOCK_UN)
                    os.close(waiter)
                    return
                got.set()

        threading.Thread(target=wait, daemon=True, name=f"flock-{self.domain}").start()
        got.wait(remaining)
        with gate:
            if got.is_set():
                self._borrowed = waiter
                return waiter
            abandoned = True
        self._stuck()
        raise AssertionError("unreachable")

    def release(self) -> None:
        HOLDS.record(self.domain, time.monotonic() - self._taken_at)
        _stack().pop()
        fd, self._locked_fd = self._locked_fd, None
        borrowed, self._borrowed = self._borrowed, None
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            if borrowed is not None:
                os.close(borrowed)  # the waiter's descriptor, used for this hold only
            self._thread_lock.release()

    @contextmanager
    def hold(
        self, *, exclusive: bool, create: bool = True, check_order: bool = True
    ) -> Iterator[bool]:
        locked = self.acquire(exclusive=exclusive, create=create, check_order=check_order)
        try:
            yield locked
        finally:
            self.release()

    def is_held_elsewhere(self) -> bool:
        """True when another process holds this lock (used to refuse a restore under a live
        platform)."""
        fd = self._file(create=False)
        if fd is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


SERVE_LOCK_FILE = ".serve.lock"


class ServeLock:
    """Held by `astra serve` for its whole life, on `<data>/.serve.lock` (with its pid inside).

    Domain locks are taken only for the length of a unit of work, so they cannot tell whether a
    platform is running; this one can. A second `serve` on the same data, or a `restore` that
    would move the data from under a running one, checks it and refuses. The kernel drops an
    flock when its process dies, so a killed server leaves nothing stale behind.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / SERVE_LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take it, or raise ServeLockHeld naming the process that has it."""
        make_dirs_durably(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ServeLockHeld(self.path.parent, serving_pid(self.path.parent)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class ServeLockHeld(StoreError):
    def __init__(self, data_dir: Path, pid: int | None) -> None:
        who = f"astra serve (pid {pid})" if pid else "astra serve"
        super().__init__(f"{data_dir} is in use by {who}; stop it first")
        self.pid = pid


def serving_pid(data_dir: Path) -> int | None:
    """The pid of the `astra serve` running on `data_dir`, or None when none is."""
    path = Path(data_dir) / SERVE_LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raw = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(raw) if raw.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
