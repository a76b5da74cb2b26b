"""A throwaway PostgreSQL server for the tests: `initdb` and `pg_ctl` in a temporary folder, torn down after.

The cluster listens on a Unix socket in its own folder (trust authentication, for the tests' own connections)
and on 127.0.0.1 at a free port (password authentication, so a URL with a password is exercised for real).
`fsync=off`: the data is thrown away, and durability costs seconds on a busy disk. PostgreSQL refuses to run
as root, so as root (CI) the server runs as the unprivileged `postgres` user in a folder that user owns.

The binaries are found on PATH, else in `/usr/lib/postgresql/*/bin` (Debian's layout; `.ci/run` installs
Debian's `postgresql` package when neither has them). A cluster that cannot be started fails the tests that
need it with the reason; it is never a skip.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

#: The superuser the cluster is created with, and the unprivileged OS user that runs it when we are root.
SUPERUSER = "ormcp"
OS_USER = "postgres"
#: Bounds for pg_ctl's own waits (it polls the server itself): start-up on a busy 2-core machine, and stop.
START_TIMEOUT = 60
STOP_TIMEOUT = 30


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be found or started here; the message says why and how to fix it."""


def find_binary(name: str) -> str:
    """The path of PostgreSQL's `name` program: on PATH, else the newest Debian install.

    Raises:
        PostgresUnavailable: no PostgreSQL is installed.
    """
    if found := shutil.which(name):
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_key)
    if candidates:
        return candidates[-1]
    raise PostgresUnavailable(
        f"PostgreSQL's {name} is neither on PATH nor in /usr/lib/postgresql/*/bin: install PostgreSQL "
        "(Debian: apt-get install postgresql; .ci/run does this by itself)"
    )


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


class PostgresCluster:
    """One throwaway cluster: `start()`, `stop()` (also mid-test, to simulate an outage), `destroy()`."""

    def __init__(self) -> None:
        self.initdb = find_binary("initdb")
        self.pg_ctl = find_binary("pg_ctl")
        self.as_root = os.geteuid() == 0
        # Under /tmp rather than pytest's tmp_path: the unprivileged user must be able to reach the folder, and
        # a Unix socket path must stay under ~100 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="ormcp-pg-"))
        self.data = self.root / "data"
        self.socket_dir = str(self.root)
        self.port = _free_port()
        self.password = secrets.token_urlsafe(18)
        self._log = self.root / "server.log"
        if self.as_root:
            try:
                user = pwd.getpwnam(OS_USER)
            except KeyError:
                self.destroy()
                raise PostgresUnavailable(
                    f"running as root, and PostgreSQL refuses root: the unprivileged user {OS_USER!r} that runs "
                    "it does not exist (Debian's postgresql package creates it)"
                ) from None
            self._uid, self._gid = user.pw_uid, user.pw_gid
            os.chown(self.root, self._uid, self._gid)
        try:
            self._init()
        except BaseException:
            self.destroy()
            raise

    def url(self, database: str = "postgres", *, tcp: bool = False) -> str:
        """A `postgresql://` URL: over the Unix socket (no password), or over loopback TCP with the password."""
        if tcp:
            return f"postgresql://{SUPERUSER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{database}"
        return f"postgresql://{SUPERUSER}@/{database}?host={quote(self.socket_dir, safe='')}&port={self.port}"

    def _run(self, *command: str, timeout: float) -> None:
        prefix = _drop_privileges(self._uid, self._gid) if self.as_root else []
        try:
            result = subprocess.run(
                [*prefix, *command],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=self.root,
            )
        except subprocess.TimeoutExpired:
            raise PostgresUnavailable(f"{Path(command[0]).name} did not finish within {timeout:g} s") from None
        if result.returncode != 0:
            log = self._log.read_text(errors="replace")[-2000:] if self._log.exists() else ""
            raise PostgresUnavailable(
                f"{Path(command[0]).name} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}\n{log}"
            )

    def _init(self) -> None:
        password_file = self.root / "password"
        password_file.write_text(self.password + "\n")
        password_file.chmod(0o600)
        if self.as_root:
            os.chown(password_file, self._uid, self._gid)
        self._run(
            self.initdb,
            "--pgdata",
            str(self.data),
            "--username",
            SUPERUSER,
            "--pwfile",
            str(password_file),
            "--auth-local",
            "trust",
            "--auth-host",
            "scram-sha-256",
            "--encoding",
            "UTF8",
            "--no-instructions",
            timeout=START_TIMEOUT,
        )
        password_file.unlink()
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "32MB",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def start(self) -> None:
        """Start the server and wait (pg_ctl -w) until it accepts connections.

        Raises:
            PostgresUnavailable: it did not start; the message carries the end of the server's log.
        """
        self._run(
            self.pg_ctl,
            "start",
            "-w",
            "-t",
            str(START_TIMEOUT),
            "-D",
            str(self.data),
            "-l",
            str(self._log),
            timeout=START_TIMEOUT + 10,
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`: roll back open transactions and close every connection), waiting for it."""
        self._run(
            self.pg_ctl,
            "stop",
            "-w",
            "-t",
            str(STOP_TIMEOUT),
            "-m",
            mode,
            "-D",
            str(self.data),
            timeout=STOP_TIMEOUT + 10,
        )

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        """Stop the server if it runs (immediately: the data is thrown away) and delete the folder."""
        if self.data.exists() and self.running():
            with contextlib.suppress(PostgresUnavailable):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def _drop_privileges(uid: int, gid: int) -> list[str]:
    """The command prefix that runs a program as `uid`/`gid` (PostgreSQL refuses root)."""
    if runuser := shutil.which("runuser"):
        return [runuser, "-u", pwd.getpwuid(uid).pw_name, "--"]
    if setpriv := shutil.which("setpriv"):
        return [setpriv, f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--reset-env"]
    raise PostgresUnavailable("running as root, and neither runuser nor setpriv is there to drop privileges")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[PostgresCluster]:
    """A started cluster, destroyed on exit.

    Raises:
        PostgresUnavailable: PostgreSQL is not installed or would not start (the message says why).
    """
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


def create_database(cluster: PostgresCluster) -> str:
    """A new empty database in `cluster`; returns its Unix-socket URL."""
    import psycopg

    name = "t_" + secrets.token_hex(6)
    with psycopg.connect(cluster.url(), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return cluster.url(name)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One throwaway PostgreSQL server for the test session (see the module docstring).

    A PostgreSQL that cannot be started fails each test that needs it, with the reason: never a skip, so CI
    cannot pass without having run them.
    """
    try:
        cluster = PostgresCluster()
    except PostgresUnavailable as exc:
        pytest.fail(f"cannot create a throwaway PostgreSQL cluster: {exc}", pytrace=False)
    try:
        try:
            cluster.start()
        except PostgresUnavailable as exc:
            pytest.fail(f"cannot start a throwaway PostgreSQL server: {exc}", pytrace=False)
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """The URL of a new, empty database of its own for one test (over the cluster's Unix socket)."""
    if not postgres_cluster.running():  # a test that stopped the server and failed before restarting it
        postgres_cluster.start()
    return create_database(postgres_cluster)
