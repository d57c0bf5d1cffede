"""Instance runtimes as supervised subprocesses: the embedded default where no Docker engine
answers, so `astra serve` runs bots on any machine.

Each runtime is `python -m astra.entrypoints.cli instance run ID` in its own session, with a
minimal environment (its bot token, its id and runtime credential, the platform's internal API
URL and the public endpoints — no data directory, no vault key, nothing from the platform's
environment). Its output goes to data/instances/<id>/runtime.log, which the platform opened for
it. A thread per runtime restarts it when it crashes, up to a limit; then it stays down with
`crash_loop`.

The contract is the Docker runtime's (the bot reaches its data only through the internal API),
and so are the walls, with a `Sandbox` (`sandbox.py`, bubblewrap): the bot runs in a mount
namespace without the data directory, the secrets file or any platform process, as an
unprivileged user when the platform is root. Without one (`ASTRA_PROCESS_ISOLATION=off`, or a
development machine without bwrap) it runs as the platform's user in a private scratch working
directory, and a compromised bot could reach the platform's files by path. What the platform
reads back (the log, the pid file) is read as a tenant-writable file (`safe_files`) either way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from astra.adapters.runtime.safe_files import read_capped
from astra.adapters.runtime.sandbox import Sandbox, SandboxUnavailable
from astra.adapters.runtime.units import spec_digest, tenant_variables, unit_command
from astra.ports.runtime import ProcessState, RuntimeSpec, RuntimeState, is_pool_id, pool_name

log = logging.getLogger("astra.runtime")

LOG_TAIL_BYTES = 256 * 1024
ENTRY = ("-m", "astra.entrypoints.cli")

STOP_TIMEOUT = 15.0
EXIT_INVALID_TOKEN = 3  # `astra instance run` exits with it when Discord refuses the token


def _gone(pid: int) -> bool:
    """Exited (a zombie counts: it only waits for its parent to read its status)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def _group_members(pgid: int) -> list[int]:
    """The live processes of a process group (a runtime's session: bwrap and what it runs)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _ask_to_stop(pgid: int, *, sandboxed: bool) -> None:
    """SIGTERM to a runtime's process group. bwrap, the group's leader when sandboxed, dies of
    it at once (it does not pass it on) while its child drains for seconds: it is spared, so it
    lives as long as the bot and waiting on it waits for the bot. Everything else in the group
    gets the signal (the bot; bwrap's init in the pid namespace ignores it)."""
    if not sandboxed:
        os.killpg(pgid, signal.SIGTERM)
        return
    for pid in _group_members(pgid):
        if pid != pgid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def spec_hash(spec: RuntimeSpec) -> str:
    """Identifies a spec without keeping its secrets around in clear."""
    return spec_digest(spec)


def runtime_environment(spec: RuntimeSpec) -> dict[str, str]:
    """The whole environment a runtime gets. Built from nothing, on purpose."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        **spec.environment,
        **tenant_variables(spec),
    }
    return env


@dataclass
class _Supervised:
    spec: RuntimeSpec
    digest: str
    proc: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float | None = None
    exit_code: int | None = None
    error: str | None = None
    stopping: bool = False
    state: ProcessState = ProcessState.EXITED
    scratch: str | None = None  # the runtime's private working directory
    lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None


class ProcessRuntime:
    name = "process"

    def __init__(
        self,
        data_dir: Path | str,
        *,
        restart_limit: int = 3,
        python: str = sys.executable,
        backoff: float = 1.0,
        sandbox: Sandbox | Literal["auto"] | None = "auto",
        entry: Sequence[str] = ENTRY,
    ) -> None:
        """`sandbox`: the walls each runtime runs in; "auto" makes them when bwrap works here
        and runs without them (saying so) when it does not; None runs without. `entry`: what
        the interpreter runs before the unit's arguments (the CLI; a test's own code)."""
        self.data_dir = Path(data_dir).resolve()
        self.restart_limit = restart_limit
        self.python = python
        self.backoff = backoff
        self.entry = tuple(entry)
        if sandbox == "auto":
            try:
                sandbox = Sandbox.create(self.data_dir, python=python)
            except SandboxUnavailable as exc:
                log.warning("runtime.unsandboxed reason=%s: bots run as the platform's user "
                            "and can reach its files", exc)
                sandbox = None
        self.sandbox: Sandbox | None = sandbox
        self._runtimes: dict[str, _Supervised] = {}
        self._lock = threading.Lock()

    def available(self) -> bool:
        return True

    def _unit_dir(self, unit_id: str) -> Path:
        # A pool's files live apart from the instances' data directories.
        if is_pool_id(unit_id):
            return self.data_dir / "pools" / pool_name(unit_id)
        return self.data_dir / "instances" / unit_id

    def _log_path(self, instance_id: str) -> Path:
        return self._unit_dir(instance_id) / "runtime.log"

    def _pid_path(self, instance_id: str) -> Path:
        return self._unit_dir(instance_id) / "runtime.pid"

    def _kill_orphan(self, instance_id: str) -> None:
        """A runtime left running by a platform that died (kill -9) would be a second bot on
        the same token: end it before starting ours. Only a process whose command line is this
        instance's `instance run` is touched."""
        path = self._pid_path(instance_id)
        try:
            pid = int(read_capped(path, 32).strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return
        name = pool_name(instance_id) if is_pool_id(instance_id) else instance_id
        verb = b"--pool" if is_pool_id(instance_id) else b"run"
        if cmdline[-3:-1] != [verb, name.encode()] and cmdline[-2:] != [verb, name.encode()]:
            return
        try:
            _ask_to_stop(pid, sandboxed=cmdline[0].endswith(b"bwrap"))
            # As long as a stop of our own: the bot finishes the clicks and the delivery in hand.
            deadline = time.monotonic() + STOP_TIMEOUT
            while time.monotonic() < deadline:
                if _gone(pid):
                    return
                time.sleep(0.05)
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _spawn(self, sup: _Supervised) -> None:
        spec = sup.spec
        log_path = self._log_path(spec.instance_id)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._kill_orphan(spec.instance_id)
        argv = [self.python, *self.entry, *unit_command(spec)]
        if self.sandbox is not None:
            argv, cwd = self.sandbox.command(argv), None  # its own /tmp, inside
        else:
            if sup.scratch is None:
                sup.scratch = tempfile.mkdtemp(prefix=f"astra-runtime-{spec.instance_id}-")
            cwd = sup.scratch
        # O_NOFOLLOW: a log path the tenant replaced with a symlink is not followed.
        fd = os.open(
            log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        with open(fd, "ab", buffering=0) as output:
            sup.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=runtime_environment(spec),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._pid_path(spec.instance_id).write_text(str(sup.proc.pid))
        sup.started_at = time.time()
        sup.state = ProcessState.RUNNING
        sup.exit_code = None

    def _supervise(self, sup: _Supervised) -> None:
        while True:
            proc = sup.proc
            assert proc is not None
            code = proc.wait()
            with sup.lock:
                sup.exit_code = code
                if sup.stopping:
                    sup.state = ProcessState.EXITED
                    return
                if code == EXIT_INVALID_TOKEN:
                    sup.state, sup.error = ProcessState.EXITED, "invalid_token"
                    return
                if sup.restarts >= self.restart_limit:
                    sup.state, sup.error = ProcessState.EXITED, "crash_loop"
                    return
                sup.restarts += 1
                sup.state = ProcessState.RESTARTING
            time.sleep(self.backoff * sup.restarts)
            with sup.lock:
                if sup.stopping:
                    sup.state = ProcessState.EXITED
                    return
                self._spawn(sup)

    def _state(self, sup: _Supervised | None) -> RuntimeState:
        if sup is None:
            return RuntimeState(ProcessState.MISSING)
        return RuntimeState(
            sup.state,
            restarts=sup.restarts,
            exit_code=sup.exit_code,
            started_at=sup.started_at,
            error=sup.error,
        )

    def ensure(self, spec: RuntimeSpec) -> RuntimeState:
        digest = spec_hash(spec)
        with self._lock:
            current = self._runtimes.get(spec.instance_id)
        if (
            current is not None
            and current.digest == digest
            and current.state in (ProcessState.RUNNING, ProcessState.RESTARTING)
        ):
            return self._state(current)
        if current is not None and current.digest == digest and current.error:
            return self._state(current)  # crashed past its limit: stays down until restart()
        if current is not None:
            self._terminate(current)
        sup = _Supervised(spec=spec, digest=digest)
        with sup.lock:
            self._spawn(sup)
        sup.thread = threading.Thread(
            target=self._supervise, args=(sup,), daemon=True, name=f"runtime-{spec.instance_id}"
        )
        sup.thread.start()
        with self._lock:
            self._runtimes[spec.instance_id] = sup
        return self._state(sup)

    def _terminate(self, sup: _Supervised) -> None:
        with sup.lock:
            sup.stopping = True
            proc = sup.proc
        if proc is not None and proc.poll() is None:
            try:
                _ask_to_stop(proc.pid, sandboxed=self.sandbox is not None)
            except ProcessLookupError:
                pass
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if sup.thread is not None:
            sup.thread.join(STOP_TIMEOUT)
        sup.state = ProcessState.EXITED
        if sup.scratch is not None:
            shutil.rmtree(sup.scratch, ignore_errors=True)
            sup.scratch = None

    def stop(self, instance_id: str) -> RuntimeState:
        with self._lock:
            sup = self._runtimes.get(instance_id)
        if sup is not None:
            self._terminate(sup)
        return self._state(sup)

    def restart(self, instance_id: str) -> RuntimeState:
        with self._lock:
            sup = self._runtimes.pop(instance_id, None)
        if sup is None:
            return RuntimeState(ProcessState.MISSING)
        self._terminate(sup)
        return self.ensure(sup.spec)

    def remove(self, instance_id: str) -> None:
        with self._lock:
            sup = self._runtimes.pop(instance_id, None)
        if sup is not None:
            self._terminate(sup)

    def status(self, instance_id: str) -> RuntimeState:
        with self._lock:
            sup = self._runtimes.get(instance_id)
        return self._state(sup)

    def logs(self, instance_id: str, lines: int = 100) -> list[str]:
        try:
            data = read_capped(self._log_path(instance_id), LOG_TAIL_BYTES, tail=True)
        except OSError:
            return []
        text = data.decode("utf-8", "replace").splitlines()
        return text[-max(1, lines):]

    def instances(self) -> list[str]:
        with self._lock:
            return sorted(self._runtimes)

    def shutdown(self) -> None:
        """Stop every runtime (when `astra serve` stops)."""
        for instance_id in self.instances():
            self.remove(instance_id)
