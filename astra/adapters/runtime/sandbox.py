"""The walls of a process runtime: a mount namespace (bubblewrap) where the platform's data
directory, its secrets file and its environment do not exist.

A bot process is untrusted (DESIGN: trust boundary). Without walls it runs as the platform's user
on the platform's filesystem and can write the store's files by path. Under `bwrap` it sees only:

- the interpreter, the virtualenv and the `astra` package, read-only (nothing else of the
  project: no data directory, no `.env`);
- `/usr` (and the merged-usr links), a few files of `/etc` that name resolution and TLS need;
- a private `/tmp` (its working directory), its own `/proc` (a new pid namespace: no platform
  process is visible) and a minimal `/dev`;
- the host's network, shared, so it reaches the internal API on 127.0.0.1 and Discord.

When the platform runs as root, the bot runs as an unprivileged user (65534, "nobody"): bwrap
sets up the mounts as root, then `setpriv` drops to that uid with no capabilities, no
supplementary groups and no new privileges (a setuid binary in /usr gains nothing). Run as any
other user, bwrap makes an unprivileged user namespace and the bot keeps that user.

A data directory that lies inside a bound tree (a virtualenv next to it, say) is covered by an
empty tmpfs, so it is absent there too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import astra

NOBODY = 65534
TMP_BYTES = 64 * 1024 * 1024  # the private /tmp lives in memory: bounded
CHECK_TIMEOUT = 20.0

# What Python, name resolution and TLS read from /etc; nothing else of it is mounted.
ETC_FILES = (
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
)
MERGED_USR = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


class SandboxUnavailable(RuntimeError):
    """bwrap is missing or cannot make a sandbox on this machine; the message says why."""


def _covered(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _ancestors(path: Path) -> list[Path]:
    return [p for p in reversed(path.parents) if p != Path("/")]


@dataclass(frozen=True)
class Sandbox:
    """Builds the command that runs a runtime inside its walls."""

    bwrap: str
    binds: tuple[Path, ...]  # read-only trees, seen at their own paths
    hidden: tuple[Path, ...]  # paths that must not exist inside (the data directory)
    source_root: Path  # the directory `astra` is imported from (PYTHONPATH inside)
    drop_to: int | None  # the uid (and gid) to run as, when the platform is root
    setpriv: str | None

    @classmethod
    def create(
        cls, data_dir: Path | str, *, python: str = sys.executable, user: int = NOBODY
    ) -> Sandbox:
        """A sandbox for runtimes of the platform whose data is in `data_dir`; raises
        SandboxUnavailable when bwrap is missing or does not work here."""
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxUnavailable("bwrap (Debian package bubblewrap) is not installed")
        root = os.geteuid() == 0
        setpriv = shutil.which("setpriv") if root else None
        if root and setpriv is None:
            raise SandboxUnavailable("setpriv (util-linux) is needed to drop root")
        package = Path(astra.__file__).resolve().parent
        trees = {
            Path(p).resolve()
            for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)
        }
        # The interpreter itself, wherever its symlinks lead (a venv's python is a link).
        trees.add(Path(python).resolve().parent.parent)
        trees.add(package)
        binds: list[Path] = []
        for tree in sorted(trees, key=lambda p: len(p.parts)):
            if tree == Path("/") or _covered(tree, binds) or _covered(tree, [Path("/usr")]):
                continue
            binds.append(tree)
        data = Path(data_dir).resolve()
        hidden = tuple(p for p in (data,) if _covered(p, [*binds, Path("/usr")]))
        sandbox = cls(bwrap, tuple(binds), hidden, package.parent, user if root else None,
                      setpriv)
        sandbox.check(python)
        return sandbox

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` (an interpreter and its arguments) run inside the sandbox."""
        args = [self.bwrap]
        if self.drop_to is None:
            # Not root: an unprivileged user namespace is what lets bwrap mount at all.
            args += ["--unshare-user", "--disable-userns"]
        args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        args += ["--ro-bind", "/usr", "/usr"]
        for name in MERGED_USR:
            target = Path("/") / name
            if target.is_symlink():
                args += ["--symlink", os.readlink(target), str(target)]
            elif target.is_dir():
                args += ["--ro-bind", str(target), str(target)]
        for path in ETC_FILES:
            args += ["--ro-bind-try", path, path]
        # The private /tmp first: bwrap mounts in order, and a virtualenv or checkout that lives
        # under /tmp (a CI clone, say) is bound on top of it below, not hidden by it.
        args += ["--proc", "/proc", "--dev", "/dev"]
        args += ["--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp"]
        made: set[Path] = set()
        for tree in self.binds:
            # Parents are made by bwrap, readable by the dropped user (the host's /root is not).
            for parent in _ancestors(tree):
                if parent not in made and not _covered(parent, [Path("/usr")]):
                    args += ["--perms", "0755", "--dir", str(parent)]
                    made.add(parent)
            args += ["--ro-bind", str(tree), str(tree)]
        for path in self.hidden:
            # Only an existing directory can be mounted over inside a read-only tree; one that
            # does not exist yet is not there to be seen (the platform makes it before a bot).
            if path.is_dir():
                args += ["--perms", "0000", "--tmpfs", str(path)]
        args += ["--chdir", "/tmp"]
        args += ["--setenv", "PYTHONPATH", str(self.source_root), "--setenv", "HOME", "/tmp"]
        args.append("--")
        if self.drop_to is not None:
            assert self.setpriv is not None
            uid = str(self.drop_to)
            args += [
                self.setpriv, "--reuid", uid, "--regid", uid, "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
            ]
        return args + list(argv)

    def check(self, python: str) -> None:
        """Start the interpreter inside once: a kernel without user namespaces, a container
        without the rights to mount, fail here rather than at every bot's start."""
        try:
            done = subprocess.run(
                self.command([python, "-c", "import astra"]),
                env={"PATH": "/usr/bin:/bin"},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=CHECK_TIMEOUT,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SandboxUnavailable(f"bwrap did not run: {exc}") from None
        if done.returncode != 0:
            reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise SandboxUnavailable(
                f"bwrap failed (exit {done.returncode}): {reason[-1] if reason else 'no output'}"
            )
