"""The runtime image for the Docker tests, built here with no registry.

No base image can be pulled on this machine, so the image is made from what the host already has:
busybox (Debian's busybox-static), the interpreter that runs the tests (its binary, its standard
library without tests/tk/idle, and the shared libraries `ldd` lists), the project's runtime
dependencies (the distributions `astra` requires, taken from the venv) and the project's own source,
byte-compiled (the root filesystem is read-only in a container, so Python could not cache them).
That rootfs is streamed as a tar into `docker import`, then a tiny Dockerfile sets the non-root
user, PATH and the entrypoint, like the production Dockerfile does.

A label holds a hash of the sources (astra/**/*.py, pyproject.toml, this file) and of the
dependency versions: `build_test_image` does nothing when the image is up to date.

    .venv/bin/python -m tests.runtime_image      # build (or find) it and print the time taken
"""

from __future__ import annotations

import hashlib
import io
import os
import py_compile
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path, PurePosixPath

import docker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

TEST_IMAGE = "astra-runtime:test"
HASH_LABEL = "astra.source-hash"
USER_ID = 10001
ROOT = Path(__file__).resolve().parent.parent
PREFIX = PurePosixPath("/opt/python")
PY_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
PYC_TAG = sys.implementation.cache_tag  # cpython-311

# Parts of the standard library an instance never imports.
_STDLIB_SKIP = frozenset(
    {
        "site-packages",
        "test",
        "idlelib",
        "tkinter",
        "turtledemo",
        "ensurepip",
        "lib2to3",
        "pydoc_data",
        "venv",
        f"config-{PY_VERSION}-{sys.implementation._multiarch}",
    }
)
_DYNLOAD_SKIP_PREFIXES = ("_test", "_tkinter", "xxlimited", "_xxtestfuzz", "_ctypes_test")

DOCKERFILE = """\
FROM {base}
USER {uid}:{uid}
ENV PATH={prefix}/bin:/usr/bin:/bin \\
    PYTHONUNBUFFERED=1 \\
    PYTHONDONTWRITEBYTECODE=1 \\
    LANG=C.UTF-8
WORKDIR /tmp
ENTRYPOINT ["python", "-m", "astra.entrypoints.cli"]
CMD ["--help"]
"""


def source_hash() -> str:
    """What the image is made of: the project's code, this recipe, the interpreter and the
    versions of the dependencies."""
    h = hashlib.sha256()
    files = sorted(p for p in (ROOT / "astra").rglob("*.py") if "__pycache__" not in p.parts)
    for path in [*files, ROOT / "pyproject.toml", Path(__file__).resolve()]:
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(sys.version.encode())
    for dist in sorted(_runtime_distributions(), key=lambda d: d.metadata["Name"].lower()):
        h.update(f"{dist.metadata['Name']}=={dist.version}\0".encode())
    return h.hexdigest()


def build_test_image(tag: str = TEST_IMAGE, client: docker.DockerClient | None = None) -> str:
    """The id of an image `tag` running this checkout's code; built only when out of date."""
    client = client or docker.from_env()
    digest = source_hash()
    old_ids: list[str] = []
    try:
        current = client.images.get(tag)
    except docker.errors.ImageNotFound:
        current = None
    if current is not None:
        if (current.labels or {}).get(HASH_LABEL) == digest:
            return current.id
        old_ids.append(current.id)
    # Named per process: another process building the same sources removes its own base's name
    # when done, which must not pull this build's FROM away mid-build.
    base = f"{tag.split(':')[0]}-base:{digest[:12]}-{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="astra-image-") as tmp:
        rootfs_tar = Path(tmp) / "rootfs.tar"
        with tarfile.open(rootfs_tar, "w") as tar:
            _RootfsWriter(tar, Path(tmp) / "pyc").write()
        client.api.import_image_from_file(
            str(rootfs_tar), repository=base.split(":")[0], tag=base.split(":")[1]
        )
        context = Path(tmp) / "context"
        context.mkdir()
        (context / "Dockerfile").write_text(
            DOCKERFILE.format(base=base, uid=USER_ID, prefix=PREFIX)
        )
        image, _ = client.images.build(
            path=str(context), tag=tag, labels={HASH_LABEL: digest}, rm=True, forcerm=True
        )
    # The base stays as the new image's parent; only its name goes.
    for ref in (base, *old_ids):
        try:
            client.images.remove(ref, noprune=False)
        except docker.errors.APIError:
            pass  # still used by a container, or already gone
    return image.id


def _runtime_distributions() -> list[metadata.Distribution]:
    """`astra` and what it requires at run time (no extras), recursively."""
    seen: dict[str, metadata.Distribution] = {}
    stack = ["astra"]
    while stack:
        name = canonicalize_name(stack.pop())
        if name in seen:
            continue
        dist = metadata.distribution(name)
        seen[name] = dist
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                stack.append(req.name)
    return list(seen.values())


class _RootfsWriter:
    """Writes the image's root filesystem into an open tar, owned by root unless said."""

    def __init__(self, tar: tarfile.TarFile, scratch: Path) -> None:
        self.tar = tar
        self.scratch = scratch
        self.added: set[str] = set()
        self.site = PREFIX / "lib" / f"python{PY_VERSION}" / "site-packages"

    # -- tar entries -------------------------------------------------------------------------

    def _info(self, arcname: PurePosixPath, kind: bytes, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(str(arcname).lstrip("/"))
        info.type, info.mode, info.uid, info.gid = kind, mode, 0, 0
        info.mtime = int(time.time())
        return info

    def dir(self, arcname: PurePosixPath | str, mode: int = 0o755, uid: int = 0) -> None:
        arcname = PurePosixPath(arcname)
        for parent in reversed(arcname.parents):
            if str(parent) != "/" and str(parent) not in self.added:
                self.dir(parent)
        if str(arcname) in self.added:
            return
        info = self._info(arcname, tarfile.DIRTYPE, mode)
        info.uid = info.gid = uid
        self.tar.addfile(info)
        self.added.add(str(arcname))

    def symlink(self, arcname: PurePosixPath | str, target: str) -> None:
        arcname = PurePosixPath(arcname)
        if str(arcname) in self.added:
            return
        self.dir(arcname.parent)
        info = self._info(arcname, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.tar.addfile(info)
        self.added.add(str(arcname))

    def data(self, arcname: PurePosixPath | str, content: bytes, mode: int = 0o644) -> None:
        arcname = PurePosixPath(arcname)
        self.dir(arcname.parent)
        info = self._info(arcname, tarfile.REGTYPE, mode)
        info.size = len(content)
        self.tar.addfile(info, io.BytesIO(content))
        self.added.add(str(arcname))

    def file(self, arcname: PurePosixPath | str, source: Path) -> None:
        """A host file (symlinks followed), keeping its mtime: pyc files check it."""
        arcname = PurePosixPath(arcname)
        if str(arcname) in self.added:
            return
        self.dir(arcname.parent)
        st = source.stat()
        info = self._info(arcname, tarfile.REGTYPE, 0o755 if st.st_mode & 0o111 else 0o644)
        info.size, info.mtime = st.st_size, int(st.st_mtime)
        with open(source, "rb") as f:
            self.tar.addfile(info, f)
        self.added.add(str(arcname))

    # -- the filesystem ----------------------------------------------------------------------

    def write(self) -> None:
        for top in ("bin", "sbin", "lib", "lib64"):
            host = Path("/") / top
            if host.is_symlink():  # a merged-/usr host: the image mirrors it
                self.symlink(f"/{top}", os.readlink(host))
        self.dir("/tmp", 0o1777)
        self.dir("/home/astra", 0o755, uid=USER_ID)
        self.dir("/root", 0o700)
        self._etc()
        self._busybox()
        self._python()
        self._libraries()

    def _etc(self) -> None:
        self.data(
            "/etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\n"
            + f"astra:x:{USER_ID}:{USER_ID}:astra:/home/astra:/bin/sh\n".encode()
            + b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        self.data(
            "/etc/group",
            f"root:x:0:\nastra:x:{USER_ID}:\nnogroup:x:65534:\n".encode(),
        )
        ca = Path("/etc/ssl/certs/ca-certificates.crt")
        if ca.is_file():
            self.file("/etc/ssl/certs/ca-certificates.crt", ca)
            self.symlink("/usr/lib/ssl/cert.pem", "/etc/ssl/certs/ca-certificates.crt")
            self.symlink("/usr/lib/ssl/certs", "/etc/ssl/certs")

    def _busybox(self) -> None:
        busybox = shutil.which("busybox")
        if busybox is None:
            raise RuntimeError("busybox is missing: apt-get install busybox-static")
        self.file("/usr/bin/busybox", Path(busybox).resolve())
        applets = subprocess.run(
            [busybox, "--list"], check=True, capture_output=True, text=True
        ).stdout.split()
        for applet in applets:
            if applet != "busybox":
                self.symlink(f"/usr/bin/{applet}", "busybox")

    def _python(self) -> None:
        exe = Path(sys.executable).resolve()  # through the venv to the real interpreter
        self.file(PREFIX / "bin" / exe.name, exe)
        for alias in ("python3", "python"):
            self.symlink(PREFIX / "bin" / alias, exe.name)
        self.data(
            PREFIX / "bin" / "astra",
            f"#!{PREFIX}/bin/python3\nimport sys\nfrom astra.entrypoints.cli import main\n"
            "sys.exit(main())\n".encode(),
            0o755,
        )
        self.libpython = Path(sysconfig.get_config_var("LIBDIR") or "/nonexistent") / str(
            sysconfig.get_config_var("INSTSONAME") or "none"
        )
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        self.shared: list[Path] = [exe]
        for path in _walk(stdlib, skip_top=_STDLIB_SKIP):
            rel = path.relative_to(stdlib)
            if rel.parts[0] == "lib-dynload" and rel.name.startswith(_DYNLOAD_SKIP_PREFIXES):
                continue
            if "__pycache__" in rel.parts and not rel.name.endswith(f".{PYC_TAG}.pyc"):
                continue  # optimized (-O) caches: never used
            if path.suffix == ".so":
                self.shared.append(path)
            self.file(PREFIX / "lib" / f"python{PY_VERSION}" / rel.as_posix(), path)
        self._dependencies()
        self._project()

    def _dependencies(self) -> None:
        for dist in _runtime_distributions():
            if canonicalize_name(dist.metadata["Name"]) == "astra":
                continue
            base = Path(str(dist.locate_file("")))
            for rel in dist.files or []:
                source = Path(str(dist.locate_file(rel)))
                try:
                    inside = source.resolve().relative_to(base.resolve())
                except ValueError:
                    continue  # console scripts in bin/: not needed
                if not source.is_file() or "__pycache__" in inside.parts:
                    continue
                self.file(self.site / inside.as_posix(), source)
                if source.suffix == ".so":
                    self.shared.append(source)
                if source.suffix == ".py":
                    pyc = source.parent / "__pycache__" / f"{source.stem}.{PYC_TAG}.pyc"
                    if pyc.is_file():
                        arc = self.site / inside.parent.as_posix() / "__pycache__" / pyc.name
                        self.file(arc, pyc)

    def _project(self) -> None:
        """The source, compiled to unchecked-hash pycs (the image never changes underneath)."""
        for source in sorted((ROOT / "astra").rglob("*")):
            rel = source.relative_to(ROOT)
            if "__pycache__" in rel.parts or not source.is_file() or source.suffix == ".pyc":
                continue
            self.file(self.site / rel.as_posix(), source)
            if source.suffix == ".py":
                pyc = self.scratch / rel.parent / f"{source.stem}.{PYC_TAG}.pyc"
                pyc.parent.mkdir(parents=True, exist_ok=True)
                py_compile.compile(
                    str(source),
                    cfile=str(pyc),
                    dfile=str(self.site / rel.as_posix()),
                    doraise=True,
                    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
                )
                self.file(self.site / rel.parent.as_posix() / "__pycache__" / pyc.name, pyc)
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        info = self.site / f"astra-{project['version']}.dist-info"
        self.data(
            info / "METADATA",
            f"Metadata-Version: 2.1\nName: astra\nVersion: {project['version']}\n".encode(),
        )
        groups = dict(project.get("entry-points", {}))
        if project.get("scripts"):
            groups["console_scripts"] = project["scripts"]
        lines = []
        for group, entries in groups.items():
            lines.append(f"[{group}]")
            lines += [f"{name} = {target}" for name, target in entries.items()]
            lines.append("")
        self.data(info / "entry_points.txt", "\n".join(lines).encode())
        self.data(info / "top_level.txt", b"astra\n")

    def _libraries(self) -> None:
        """The shared libraries the interpreter and the extension modules load, at the paths the
        host has them (libpython goes to the system directory: the binary's RUNPATH points
        at the host's prefix)."""
        needed: dict[str, Path] = {}
        lib_dir: str | None = None
        site = Path(sysconfig.get_paths()["purelib"]).resolve()
        libpython = self.libpython.resolve() if self.libpython.is_file() else None
        for path in _ldd(self.shared):
            real = path.resolve()
            if real.is_relative_to(site) or real == libpython:
                continue  # bundled by a wheel (.libs) and copied with it; libpython: below
            arc = PurePosixPath(str(Path(os.path.realpath(path.parent)) / path.name))
            needed[str(arc)] = real
            if path.name.startswith("libc.so"):
                lib_dir = str(arc.parent)
        if lib_dir is None:
            raise RuntimeError("ldd listed no libc: cannot build the runtime image")
        if libpython is not None:
            needed[f"{lib_dir}/{self.libpython.name}"] = libpython
        for arc, real in sorted(needed.items()):
            self.file(arc, real)


def _walk(top: Path, skip_top: frozenset[str]) -> Iterator[Path]:
    for root, dirs, files in os.walk(top):
        if Path(root) == top:
            dirs[:] = [d for d in dirs if d not in skip_top]
        dirs.sort()
        for name in sorted(files):
            yield Path(root) / name


def _ldd(binaries: list[Path]) -> set[Path]:
    out = subprocess.run(
        ["ldd", *map(str, binaries)], capture_output=True, text=True, check=False
    ).stdout
    found: set[Path] = set()
    for line in out.splitlines():
        line = line.strip()
        if "=>" in line:
            target = line.split("=>", 1)[1].strip().split(" (")[0].strip()
            if target.startswith("/"):
                found.add(Path(target))
        elif line.startswith("/") and " (" in line:
            found.add(Path(line.split(" (")[0]))  # the dynamic loader
    return found


if __name__ == "__main__":
    started = time.perf_counter()
    image_id = build_test_image()
    print(f"{TEST_IMAGE} {image_id} ({time.perf_counter() - started:.1f}s)")
