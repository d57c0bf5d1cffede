"""JsonStore: the embedded store behind the `Store` port (files in ASTRA_DATA_DIR)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from astra import __version__
from astra.ports.store import (
    INSTANCE_COLLECTIONS,
    PORTAL,
    InvalidDomain,
    Problem,
    StoreCorrupt,
    StoreError,
)

from .files import make_dirs_durably, replace_atomically
from .layout import INSTANCE_ID_RE, domain_paths
from .locks import SERVE_LOCK_FILE, DomainLock, ServeLockHeld, serving_pid
from .migrations import MIGRATIONS, SCHEMA_VERSION, Migration
from .state import DomainState
from .unit_of_work import InstanceUnitOfWork, PortalUnitOfWork

MANIFEST = "backup.json"
# Files a data directory may hold before it holds data: restoring over them needs no --force.
_NOT_DATA = ("README.md", ".secrets.json", SERVE_LOCK_FILE)


class _Session:
    """The `with` block of one unit of work: lock, catch up, hand out the unit, release.

    A plain class rather than @contextmanager: this runs on every commit, and the generator
    machinery was a measurable share of a commit's CPU time."""

    __slots__ = ("domain", "lock", "probe", "state", "uow", "write")

    def __init__(self, domain: str, state: DomainState, lock: DomainLock, write: bool,
                 probe: bool = False) -> None:
        self.domain, self.state, self.lock, self.write = domain, state, lock, write
        self.probe = probe

    def __enter__(self) -> Any:
        domain, write = self.domain, self.write
        if domain == PORTAL:
            make_dirs_durably(self.state.paths.directory)
        self.lock.acquire(exclusive=write, create=write or domain == PORTAL, probe=self.probe)
        try:
            self.state.refresh()
        except BaseException:
            self.lock.release()
            raise
        self.uow = (
            PortalUnitOfWork(self.state, write)
            if domain == PORTAL
            else InstanceUnitOfWork(domain, self.state, write)
        )
        return self.uow

    def __exit__(self, *exc: object) -> None:
        self.uow.rollback()
        self.uow.closed = True
        self.lock.release()


class JsonStore:
    def __init__(
        self,
        data_dir: Path | str,
        *,
        schema_version: int = SCHEMA_VERSION,
        migrations: dict[int, Migration] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.schema_version = schema_version
        self.migrations = MIGRATIONS if migrations is None else migrations
        self._states: dict[str, DomainState] = {}
        self._locks: dict[str, DomainLock] = {}
        self._registry_lock = threading.Lock()

    def _domain(self, domain: str) -> tuple[DomainState, DomainLock]:
        state = self._states.get(domain)
        if state is not None:
            return state, self._locks[domain]
        with self._registry_lock:
            state = self._states.get(domain)
            if state is None:
                paths = domain_paths(self.data_dir, domain)
                state = DomainState(paths, self.schema_version, self.migrations)
                self._locks[domain] = DomainLock(domain, paths.lock)
                self._states[domain] = state  # last: the lock-free read above relies on it
            return state, self._locks[domain]

    def _uow(self, domain: str, write: bool) -> _Session:
        state, lock = self._domain(domain)
        return _Session(domain, state, lock, write)

    def portal(self, *, write: bool = True) -> Any:
        return self._uow(PORTAL, write)

    def instance(self, instance_id: str, *, write: bool = True) -> Any:
        if instance_id == PORTAL:
            raise InvalidDomain("'portal' is not an instance id")
        return self._uow(instance_id, write)

    def instance_ids(self) -> list[str]:
        root = self.data_dir / "instances"
        if not root.is_dir():
            return []
        return sorted(
            p.name
            for p in root.iterdir()
            if p.is_dir()
            and INSTANCE_ID_RE.fullmatch(p.name)
            and ((p / "journal.log").exists() or any(p.glob("*.json")))
        )

    def instances_with(self, collection: str, **equals: Any) -> list[str]:
        # Every instance is read (each is in memory once loaded); a damaged one is listed, so
        # the caller meets its error where it handles one instance's trouble. So is one whose
        # lock is not free this instant (a probe, no wait): a stock import holding one seller's
        # lock must not make every loop's look at every seller wait out the lock's deadline.
        if collection not in INSTANCE_COLLECTIONS:
            raise StoreError(f"no collection {collection!r} in an instance")
        out = []
        for instance_id in self.instance_ids():
            state, lock = self._domain(instance_id)
            try:
                with _Session(instance_id, state, lock, False, probe=True) as uow:
                    if uow.repo(collection).first(**equals) is None:
                        continue
            except StoreError:
                pass
            out.append(instance_id)
        return out

    def open(self, *, quarantine: bool = False) -> dict[str, StoreCorrupt]:
        """Load every domain now, so a damaged file is found at start-up, not by a request.

        A damaged portal domain always stops start-up (nothing can be served without it). A
        damaged instance domain stops it too, unless `quarantine`: then it is left as it is
        (never overwritten), returned with its problem, and every use of it keeps raising
        StoreCorrupt, while every other instance is served."""
        with self._uow(PORTAL, write=False):
            pass
        damaged: dict[str, StoreCorrupt] = {}
        for domain in self.instance_ids():
            try:
                with self._uow(domain, write=False):
                    pass
            except StoreCorrupt as exc:
                if not quarantine:
                    raise
                damaged[domain] = exc
        return damaged

    def close(self) -> None:
        """Release files and locks. Using the store again afterwards reloads from disk."""
        for state in self._states.values():
            state.close()
            state.loaded = False
        for lock in self._locks.values():
            lock.close()

    # -- operations ----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        try:
            with self._uow(PORTAL, write=False) as uow:
                users = uow.users.count()
            return {"ok": True, "schema": self.schema_version, "users": users}
        except StoreCorrupt as exc:
            return {"ok": False, "error": "corrupt", "file": exc.path, "problem": exc.problem}
        except (StoreError, OSError) as exc:
            return {"ok": False, "error": type(exc).__name__, "problem": str(exc)}

    def check(self) -> list[Problem]:
        """What `astra doctor` prints. Reads with fresh state and shared locks; writes nothing."""
        problems: list[Problem] = []
        if not self.data_dir.exists():
            return [
                Problem(
                    "info",
                    str(self.data_dir),
                    "data directory does not exist yet",
                    "it is created on first start",
                )
            ]
        root = self.data_dir / "instances"
        if root.is_dir():
            for p in sorted(root.iterdir()):
                if not INSTANCE_ID_RE.fullmatch(p.name):
                    problems.append(
                        Problem(
                            "warning",
                            str(p),
                            "not a valid instance directory",
                            "move it out of data/instances",
                        )
                    )
        for domain in [PORTAL, *self.instance_ids()]:
            paths = domain_paths(self.data_dir, domain)
            state = DomainState(paths, self.schema_version, self.migrations)
            lock = DomainLock(domain, paths.lock)
            try:
                with lock.hold(exclusive=False, create=False, check_order=False):
                    state.load()
            except StoreCorrupt as exc:
                problems.append(
                    Problem(
                        "error",
                        exc.path,
                        exc.problem,
                        "restore this file from a backup (astra restore); Astra will not start "
                        "while it is damaged and never overwrites it",
                    )
                )
                continue
            finally:
                state.close()
                lock.close()
            if state.torn is not None:
                problems.append(
                    Problem(
                        "warning",
                        str(paths.journal),
                        f"interrupted commit at byte {state.torn.offset} "
                        f"({state.torn.length} bytes, "
                        f"{state.torn.reason}); it was never acknowledged",
                        "nothing to do: the next write discards it",
                    )
                )
            if state.schema < self.schema_version:
                problems.append(
                    Problem(
                        "info",
                        str(paths.directory),
                        f"schema {state.schema} will be migrated to {self.schema_version}",
                        "happens on the next write; take a backup first",
                    )
                )
            for tmp in state.stray_tmp_files():
                problems.append(
                    Problem(
                        "info", str(tmp), "leftover temporary file of a crash", "safe to delete"
                    )
                )
        return problems

    @contextmanager
    def _hold_everything(self) -> Iterator[list[tuple[str, DomainState]]]:
        """Shared locks on every instance (sorted) then the portal: one consistent moment."""
        domains = [*self.instance_ids(), PORTAL]
        with ExitStack() as stack:
            held = []
            for domain in domains:
                state, lock = self._domain(domain)
                stack.enter_context(lock.hold(exclusive=False, create=True, check_order=False))
                state.refresh()
                held.append((domain, state))
            yield held

    def backup(self, dest: Path | str) -> dict[str, Any]:
        dest = Path(dest).resolve()
        if dest == self.data_dir or self.data_dir in dest.parents:
            raise StoreError("the backup destination must be outside the data directory")
        if dest.exists() and any(dest.iterdir()):
            raise StoreError(f"backup destination {dest} is not empty")
        make_dirs_durably(dest)
        manifest: dict[str, Any] = {
            "format": "astra-backup",
            "astra_version": __version__,
            "schema": self.schema_version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "domains": {},
        }
        with self._hold_everything() as held:
            for domain, state in held:
                target = dest if domain == PORTAL else dest / "instances" / domain
                manifest["domains"][domain] = {"seq": state.seq, "files": state.copy_to(target)}
            secrets_file = self.data_dir / ".secrets.json"
            if secrets_file.exists():
                # Development secrets decrypt the stored bot tokens: a backup without them would
                # restore unreadable tokens.
                replace_atomically(dest / ".secrets.json", secrets_file.read_bytes())
                manifest["includes_dev_secrets"] = True
        replace_atomically(dest / MANIFEST, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        return manifest


def verify_backup(src: Path) -> dict[str, Any]:
    """Check a backup's manifest and checksums and that it loads; returns the manifest."""
    import hashlib

    try:
        manifest = orjson.loads((src / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise StoreError(f"{src} is not an Astra backup (no {MANIFEST})") from None
    except orjson.JSONDecodeError as exc:
        raise StoreCorrupt(src / MANIFEST, f"invalid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "astra-backup":
        raise StoreCorrupt(src / MANIFEST, "not an Astra backup manifest")
    for domain, info in manifest.get("domains", {}).items():
        base = src if domain == PORTAL else src / "instances" / domain
        for name, meta in info.get("files", {}).items():
            path = base / name
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise StoreCorrupt(path, "listed in the manifest but missing") from None
            if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
                raise StoreCorrupt(path, "checksum does not match the manifest")
    problems = [p for p in JsonStore(src).check() if p.severity == "error"]
    if problems:
        raise StoreCorrupt(problems[0].path, problems[0].message)
    return manifest


def restore(src: Path | str, data_dir: Path | str, *, force: bool = False) -> dict[str, Any]:
    """Put a backup in place of `data_dir`. A non-empty data dir is kept aside, never deleted."""
    import shutil

    src, data_dir = Path(src).resolve(), Path(data_dir).resolve()
    manifest = verify_backup(src)
    pid = serving_pid(data_dir)
    if pid is not None:
        # Moved aside under it, a server would keep writing into the old copy.
        raise ServeLockHeld(data_dir, pid if pid > 0 else None)
    if data_dir.exists() and any(p.name not in _NOT_DATA for p in data_dir.iterdir()):
        if not force:
            raise StoreError(f"{data_dir} is not empty; pass --force to replace it")
        if DomainLock(PORTAL, data_dir / ".portal.lock").is_held_elsewhere():
            raise StoreError(f"{data_dir} is in use by a running Astra; stop it first")
        aside = data_dir.with_name(f"{data_dir.name}.pre-restore-{datetime.now(UTC):%Y%m%dT%H%M%S}")
        os.rename(data_dir, aside)
        manifest["previous_data_moved_to"] = str(aside)
    staging = data_dir.with_name(f".{data_dir.name}.restoring-{os.getpid()}")
    shutil.copytree(src, staging, ignore=shutil.ignore_patterns(MANIFEST))
    for root, _dirs, files in os.walk(staging):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
    if data_dir.exists():
        # Nothing but a README or fresh development secrets is here (checked above): keep them
        # unless the backup brings its own.
        for name in _NOT_DATA:
            if (data_dir / name).exists() and not (staging / name).exists():
                os.rename(data_dir / name, staging / name)
        for name in _NOT_DATA:
            (data_dir / name).unlink(missing_ok=True)
        data_dir.rmdir()
    os.rename(staging, data_dir)
    make_dirs_durably(data_dir)
    return manifest
