"""A real PostgreSQL server for the tests and benchmarks: the one ASTRA_TEST_DATABASE_URL names,
or a throwaway cluster started here (initdb + pg_ctl in a temp dir, trust auth, a free port on
127.0.0.1) and stopped afterwards.

Each test gets a database of its own, created from a template that is migrated once per run
(CREATE DATABASE ... TEMPLATE copies it in milliseconds), and dropped after the test.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.ports import free_port

TEMPLATE = "astra_test_template"
_counter = itertools.count(1)


class PostgresUnavailable(RuntimeError):
    """No server to test against and none can be started here."""


def find_bin_dir() -> Path | None:
    """Debian's server binaries (initdb, pg_ctl), newest version first."""
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        for version in sorted(root.iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else 0,
                              reverse=True):
            if (version / "bin" / "initdb").exists():
                return version / "bin"
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class ThrowawayCluster:
    """initdb + pg_ctl start in a temp dir; `stop()` removes everything."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="astra-pg-"))
        self.data = self.dir / "data"
        # initdb refuses to run as root: the cluster belongs to `postgres` then.
        self.as_user = "postgres" if os.geteuid() == 0 else None
        self.started = False

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_user:
            cmd = ["runuser", "-u", self.as_user, "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise PostgresUnavailable(
                f"{args[0]} failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
            )

    def start(self) -> str:
        if self.as_user:
            try:
                pw = pwd.getpwnam(self.as_user)
            except KeyError:
                raise PostgresUnavailable("root, and no `postgres` user to run initdb") from None
            os.chmod(self.dir, 0o700)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            # Its parent must be traversable by postgres (a private TMPDIR would not be).
            parent_mode = os.stat(self.dir.parent).st_mode
            if not parent_mode & 0o001:
                raise PostgresUnavailable(f"{self.dir.parent} is not traversable by postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "-N")
        self.resume()
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def resume(self) -> None:
        """Start the server on this cluster's data and port (again, after `halt`)."""
        options = (
            f"-k {self.dir} -p {self.port} -c listen_addresses=127.0.0.1 "
            "-c max_connections=300 -c shared_buffers=64MB"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w",
                  "-t", "60", "-o", options, "start")
        self.started = True

    def halt(self, mode: str = "fast") -> None:
        """Stop the server and keep its data (`resume` starts it again): `fast` ends every
        session and shuts down cleanly, `immediate` is a crash (recovery on the next start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        self.started = False

    def stop(self) -> None:
        try:
            if self.started:
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            self.started = False
            shutil.rmtree(self.dir, ignore_errors=True)


def with_dbname(dsn: str, dbname: str) -> str:
    """The same server, another database; a URL stays a URL (what ASTRA_DATABASE_URL takes)."""
    if dsn.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(dsn)
        return urlunsplit((parts.scheme, parts.netloc, "/" + quote(dbname), parts.query, ""))
    params = conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return make_conninfo(**params)


class TestServer:
    """A PostgreSQL server the tests may create and drop databases on."""

    def __init__(self, admin_dsn: str, cluster: ThrowawayCluster | None) -> None:
        self.admin_dsn = admin_dsn
        self.cluster = cluster
        self._template_ready = False

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_dsn, autocommit=True)

    def _ensure_template(self) -> None:
        if self._template_ready:
            return
        from astra.adapters.store.postgresql import PostgresStore

        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(TEMPLATE)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
        store = PostgresStore(with_dbname(self.admin_dsn, TEMPLATE))
        store.migrate()
        store.close()
        self._template_ready = True

    def create_database(self, *, migrated: bool = True) -> str:
        """A new database (migrated unless told otherwise); returns its DSN."""
        name = f"astra_t{os.getpid()}_{next(_counter)}"
        if migrated:
            self._ensure_template()
        with self._admin() as conn:
            query = (
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(TEMPLATE))
                if migrated
                else sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            )
            conn.execute(query)
        return with_dbname(self.admin_dsn, name)

    def drop_database(self, dsn: str) -> None:
        name = conninfo_to_dict(dsn)["dbname"]
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))

    @contextmanager
    def database(self, *, migrated: bool = True) -> Iterator[str]:
        dsn = self.create_database(migrated=migrated)
        try:
            yield dsn
        finally:
            self.drop_database(dsn)

    def stop(self) -> None:
        if self._template_ready:
            try:
                with self._admin() as conn:
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(TEMPLATE)))
            except psycopg.Error:
                pass
        if self.cluster is not None:
            self.cluster.stop()


def start_server() -> TestServer:
    """ASTRA_TEST_DATABASE_URL if set, else a throwaway cluster; PostgresUnavailable if neither."""
    url = os.environ.get("ASTRA_TEST_DATABASE_URL", "").strip()
    if url:
        try:
            psycopg.connect(url, connect_timeout=5).close()
        except psycopg.OperationalError as exc:
            raise PostgresUnavailable(f"ASTRA_TEST_DATABASE_URL does not answer: {exc}") from None
        return TestServer(url, None)
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable(
            "no PostgreSQL server binaries (initdb, pg_ctl): install Debian's `postgresql` "
            "(scripts/test.sh does as root) or set ASTRA_TEST_DATABASE_URL"
        )
    cluster = ThrowawayCluster(bin_dir)
    try:
        dsn = cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return TestServer(dsn, cluster)
