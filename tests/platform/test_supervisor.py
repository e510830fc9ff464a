"""`alliance up` end to end: it comes up ready, and nothing it started survives it, whether it is stopped
with Ctrl-C or killed outright."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import pytest

from alliance.processes import is_gone, wait_gone

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def platform_up():
    # A short path under /tmp: the embedded PostgreSQL's socket path has a length limit.
    data_dir = Path(tempfile.mkdtemp(prefix="alliance-up-", dir="/tmp"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLIANCE_")}
    env |= {"ALLIANCE_DATA_DIR": str(data_dir), "ALLIANCE_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "alliance", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read().decode(errors="replace")[-3000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        pytest.fail("alliance up did not become ready")
    # Worker and scheduler are up too (the worker's dramatiq forks its own processes).
    time.sleep(2)
    descendants = psutil.Process(process.pid).children(recursive=True)
    try:
        yield process, descendants
    finally:
        for p in [psutil.Process(process.pid), *descendants] if process.poll() is None else descendants:
            if not is_gone(p):
                p.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


def names(processes) -> set[str]:
    found = set()
    for p in processes:
        try:
            cmdline = " ".join(p.cmdline())
        except psutil.Error:
            continue
        for name in ("postgres", "redis-server", "serve", "scheduler", "worker", "dramatiq"):
            if name in cmdline:
                found.add(name)
    return found


def test_ctrl_c_stops_everything_it_started(platform_up):
    process, descendants = platform_up
    assert names(descendants) >= {"postgres", "redis-server", "serve", "scheduler", "worker", "dramatiq"}
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the foreground process group
    assert process.wait(timeout=60) == 0
    assert wait_gone(descendants, timeout=10), names(p for p in descendants if not is_gone(p))
    # The demo alliance was seeded and its scenario told through the SDK.
    output = process.stdout.read().decode(errors="replace")
    assert "alice gifts 50 BEANS to bob" in output and "the mug ships at 350 BEANS" in output, output[-3000:]
    assert "the platform's countersignature verifies" in output and "his alliance identity idn_" in output, output[-3000:]
    assert "the operator closes the day" in output and "statement" in output, output[-3000:]


def test_nothing_survives_a_killed_supervisor(platform_up):
    process, descendants = platform_up
    process.kill()
    process.wait()
    assert wait_gone(descendants, timeout=20), names(p for p in descendants if not is_gone(p))
