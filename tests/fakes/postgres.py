"""A throwaway PostgreSQL server for the team-store tests, from the Debian packages' binaries.

    server = PostgresServer().start()
    url = server.create_database("t1")   # postgresql://evalkit:PASS@127.0.0.1:PORT/t1
    server.stop()

The server listens on 127.0.0.1 only (a free port), keeps its socket and data in a fresh temporary
directory, and authenticates TCP clients by password (scram-sha-256) as the superuser ``evalkit``.
initdb refuses to run as root: under root the server binaries run as the ``postgres`` OS user, which
owns the temporary directory. ``EVALKIT_PG_BINDIR`` points the locator at a directory of binaries
(an empty one simulates a machine without PostgreSQL).
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

USER = "evalkit"
RUN_AS = "postgres"  # the OS user the server runs as when the tests run as root
READY_TIMEOUT_S = 30.0
REQUIRED = ("initdb", "pg_ctl", "postgres", "createdb")
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",  # 200 connections fit in a container's small shared memory
    "dynamic_shared_memory_type": "mmap",  # not /dev/shm (64 MB in many containers)
    "logging_collector": "off",
    "log_min_messages": "warning",
}


def _version_key(bindir: str) -> tuple[int, ...]:
    m = re.search(r"/postgresql/([0-9.]+)/bin", bindir)
    return tuple(int(p) for p in m.group(1).split(".") if p) if m else ()


def _has_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in REQUIRED)


def find_bindir() -> tuple[Path | None, str]:
    """(the server binaries' directory, or None with a one-line reason)."""
    override = os.environ.get("EVALKIT_PG_BINDIR")
    if override:
        path = Path(override)
        missing = [n for n in REQUIRED if not os.access(path / n, os.X_OK)]
        if missing:
            return None, f"no PostgreSQL server binaries ({', '.join(missing)}) in EVALKIT_PG_BINDIR={override}"
        return path, ""
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and _has_binaries(Path(out.stdout.strip())):
                return Path(out.stdout.strip()), ""
        except (OSError, subprocess.SubprocessError):
            pass
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if _has_binaries(Path(bindir)):
            return Path(bindir), ""
    return None, ("no PostgreSQL server binaries (initdb, pg_ctl, postgres) found via pg_config --bindir or "
                  "/usr/lib/postgresql/*/bin; install the Debian package `postgresql`")


def _run_as() -> Any:
    """The ``postgres`` account when running as root (initdb refuses root), else None."""
    if os.geteuid() != 0:
        return None
    import pwd

    return pwd.getpwnam(RUN_AS)


def available() -> str | None:
    """None when a server can be started here, else a one-line reason."""
    bindir, reason = find_bindir()
    if bindir is None:
        return reason
    if os.geteuid() == 0:
        try:
            _run_as()
        except KeyError:
            return f"running as root and there is no {RUN_AS!r} OS user to run PostgreSQL as (initdb refuses root)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_env() -> dict[str, str]:
    """The environment without PG* variables that would redirect the binaries elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.setdefault("LC_ALL", "C")
    return env


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, on a loopback port."""

    def __init__(self, bindir: Path | str | None = None) -> None:
        if bindir is None:
            found, reason = find_bindir()
            if found is None:
                raise RuntimeError(reason)
            bindir = found
        self.bindir = Path(bindir)
        self.password = secrets.token_urlsafe(18)  # URL-safe: no quoting in connection URLs
        self.host = "127.0.0.1"
        self.port = 0
        self.user = USER
        self.root: Path | None = None
        self._account = _run_as()

    # -- paths -----------------------------------------------------------------------------------------
    @property
    def datadir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def logfile(self) -> Path:
        assert self.root is not None
        return self.root / "server.log"

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"

    # -- running the binaries ---------------------------------------------------------------------------
    def _server_cmd(self, name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a server binary (as ``postgres`` under root) with a clean environment."""
        kwargs: dict[str, Any] = {}
        env = _clean_env()
        if self._account is not None:
            kwargs = {"user": self._account.pw_uid, "group": self._account.pw_gid, "extra_groups": []}
            env.update(HOME=str(self.root), USER=RUN_AS, LOGNAME=RUN_AS)
        return subprocess.run([str(self.bindir / name), *args], capture_output=True, text=True, env=env,
                              cwd=self.root, timeout=timeout, **kwargs)

    def _client_env(self) -> dict[str, str]:
        return {**_clean_env(), "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "10"}

    # -- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> PostgresServer:
        self.root = Path(tempfile.mkdtemp(prefix="evalkit-pg-"))  # short: the socket path limit is ~107 chars
        try:
            self._initdb()
            self._start_server()
        except BaseException:
            self.stop()
            raise
        return self

    def _initdb(self) -> None:
        assert self.root is not None
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        (self.root / "sock").mkdir()
        if self._account is not None:
            for path in (self.root, pwfile, self.root / "sock"):
                os.chown(path, self._account.pw_uid, self._account.pw_gid)
        res = self._server_cmd("initdb", "-D", str(self.datadir), "-U", USER, f"--pwfile={pwfile}",
                               "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8",
                               "--locale=C", "--no-sync", timeout=120)
        pwfile.unlink()
        if res.returncode != 0:
            raise RuntimeError(f"initdb failed (exit {res.returncode}): {(res.stdout + res.stderr)[-3000:]}")
        conf = self.datadir / "postgresql.conf"
        settings = {**SETTINGS, "unix_socket_directories": f"'{self.root / 'sock'}'"}
        with conf.open("a") as f:  # appending keeps the file's owner (postgres)
            f.write("\n# evalkit tests\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))

    def _start_server(self) -> None:
        last = ""
        for _attempt in range(3):  # another process may grab the free port first
            self.port = free_port()
            res = self._server_cmd("pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-w",
                                   "-t", str(int(READY_TIMEOUT_S)), "-o", f"-p {self.port}", "start",
                                   timeout=READY_TIMEOUT_S + 15)
            if res.returncode == 0 and self._wait_ready():
                return
            last = (res.stdout + res.stderr).strip()
            tail = self.log_tail()
            self._server_cmd("pg_ctl", "-D", str(self.datadir), "stop", "-m", "immediate", timeout=30)
            if "could not bind" not in tail and "already in use" not in tail:
                break
        raise RuntimeError(f"PostgreSQL did not become ready on 127.0.0.1:{self.port} within "
                           f"{READY_TIMEOUT_S:.0f} s: {last[-500:]}\n--- server log (tail) ---\n{self.log_tail()}")

    def _wait_ready(self) -> bool:
        """A TCP connection with the password succeeds (bounded)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                self.psql("postgres", "SELECT 1", timeout=10)
                return True
            except RuntimeError:
                time.sleep(0.2)
        return False

    def stop(self) -> None:
        """Stop the server at once (-m immediate) and remove its directory."""
        if self.root is None:
            return
        if (self.datadir / "postmaster.pid").exists():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self._server_cmd("pg_ctl", "-D", str(self.datadir), "stop", "-m", "immediate", timeout=30)
            self._kill_leftover()
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def _kill_leftover(self) -> None:
        """If pg_ctl could not stop it, SIGKILL the postmaster this server started (by its pid file)."""
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- clients --------------------------------------------------------------------------------------------
    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{dbname}"

    def psql(self, dbname: str, sql: str, timeout: float = 30) -> str:
        """Run ``sql`` through psql over TCP with the password; its output (unaligned, tuples only)."""
        psql = self.bindir / "psql"
        exe = str(psql) if psql.exists() else (shutil.which("psql") or "psql")
        try:
            res = subprocess.run([exe, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.host,
                                  "-p", str(self.port), "-U", self.user, "-d", dbname, "-c", sql],
                                 capture_output=True, text=True, env=self._client_env(), timeout=timeout)
        except (OSError, subprocess.SubprocessError) as e:
            raise RuntimeError(f"psql failed: {e}") from e
        if res.returncode != 0:
            raise RuntimeError(f"psql failed (exit {res.returncode}): {res.stderr.strip()[-1000:]}")
        return res.stdout.strip()

    def create_database(self, name: str | None = None) -> str:
        """Create database ``name`` (default: a unique name); its plain postgresql:// URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        res = subprocess.run([str(self.bindir / "createdb"), "-h", self.host, "-p", str(self.port), "-U", self.user,
                              name], capture_output=True, text=True, env=self._client_env(), timeout=60)
        if res.returncode != 0:
            raise RuntimeError(f"createdb {name} failed (exit {res.returncode}): {res.stderr.strip()[-1000:]}")
        return self.url(name)
